#!/usr/bin/env bash
# Runs every fuzz target of the module for a short time (FUZZTIME, default 10s).
set -euo pipefail
cd "$(dirname "$0")/.."
t="${FUZZTIME:-10s}"
n=0
for pkg in $(go list ./...); do
  for f in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "fuzz: $pkg $f ($t)"
    go test "$pkg" -run '^$' -fuzz "^${f}\$" -fuzztime "$t"
    n=$((n+1))
  done
done
echo "fuzz: $n targets, none failed"
[ "$n" -gt 0 ]
