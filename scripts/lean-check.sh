#!/usr/bin/env bash
# A library user's view of the core module: a throwaway consumer module in a
# temporary directory imports only github.com/goslo/goslo (a replace to this
# repository), is tidied, and its module graph and build are checked:
#   - no Prometheus, protobuf or other metrics module anywhere in
#     `go mod graph` / `go list -m all` (they belong to extra/gosloprom and
#     cmd/goslo, modules of their own);
#   - no test-only module (testify, goleak) among the modules its packages
#     are built from (`go list -deps`), nor in its go.mod.
# testify and goleak do stay in `go list -m all`: the core's go.mod requires
# them for its own tests, and module graph pruning keeps a dependency's own
# requirements in the graph. The consumer's go.sum holds their hashes too
# (go mod tidy keeps what `go test github.com/goslo/goslo` would need), but
# its go.mod does not require them and no package of theirs is built into
# it. The script prints that view.
# Offline-friendly: the root go.sum seeds the consumer's (no checksum
# database lookup) and the module cache of a built tree answers the rest.
#   scripts/lean-check.sh       (make lean)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export GOWORK=off GOFLAGS=-mod=mod

cat >"$tmp/go.mod" <<EOF
module example.com/leanconsumer

go 1.26.0

require github.com/goslo/goslo v0.0.0-00010101000000-000000000000

replace github.com/goslo/goslo => $repo
EOF
cat >"$tmp/main.go" <<'EOF'
package main

import (
	"context"
	"fmt"

	"github.com/goslo/goslo"
)

func main() {
	tr, err := goslo.NewTransport(context.Background(), "zmq+dummy://")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tr.Close()
}
EOF
cp go.sum "$tmp/go.sum"
cd "$tmp"
go mod tidy

fail=0
heavy='prometheus|protobuf|client_golang|client_model|beorn7/perks|munnerz/goautoneg'
testonly='stretchr/testify|go.uber.org/goleak'
graph=$(go mod graph)
mods=$(go list -m all)
built=$(go list -deps -f '{{with .Module}}{{.Path}}{{end}}' . | sort -u)
if grep -E "$heavy" <<<"$graph"; then
  echo "lean-check: FAIL: the consumer's module graph (go mod graph) holds the modules above" >&2
  fail=1
fi
if grep -E "$heavy" <<<"$mods"; then
  echo "lean-check: FAIL: go list -m all holds the modules above" >&2
  fail=1
fi
if grep -E "$heavy|$testonly" <<<"$built"; then
  echo "lean-check: FAIL: the consumer is built from the modules above (go list -deps)" >&2
  fail=1
fi
if grep -E "$heavy|$testonly" go.mod; then
  echo "lean-check: FAIL: the consumer's tidied go.mod requires the modules above" >&2
  fail=1
fi
# A check that cannot fail is no check: the graph must at least hold goslo
# and its real dependencies.
for m in github.com/goslo/goslo github.com/pebbe/zmq4 github.com/redis/go-redis/v9; do
  grep -q "^$m" <<<"$built" || { echo "lean-check: FAIL: $m missing from the consumer's build" >&2; fail=1; }
done
echo "lean-check: modules the consumer is built from (go list -deps):"
sed 's/^/  /' <<<"$built"
echo "lean-check: go list -m all ($(wc -l <<<"$mods") modules; in the graph but not built: $(grep -E "$testonly" <<<"$mods" | tr '\n' ' '))"
[ "$fail" = 0 ] && echo "lean-check: ok"
exit "$fail"
