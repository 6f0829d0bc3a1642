#!/usr/bin/env bash
# Installs what goslo's build and tests need, idempotently:
#   Debian packages libzmq3-dev, pkg-config, redis-server, redis-sentinel, tox,
#   chromium, npm (apt-get, only when running as root), then the tox
#   environments of the interop suite (tox.ini: zmq814 and modern) from the
#   package index, and the diagram check's npm packages (npm ci).
# Fails loudly when something is missing and cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
pkg-config --exists libzmq 2>/dev/null || missing+=(libzmq3-dev)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-sentinel >/dev/null || missing+=(redis-sentinel)
command -v tox >/dev/null || missing+=(tox)
command -v python3.11 >/dev/null || missing+=(python3.11 python3.11-venv)
# msgpack 1.0.3 (pinned for 8.1.4) has no CPython 3.11 wheel: pip compiles it.
[ -f /usr/include/python3.11/Python.h ] || missing+=(python3.11-dev)
command -v gcc >/dev/null || missing+=(gcc)
# The diagram check (make docs-check): Debian's Chromium and Node.js with npm.
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v npm >/dev/null || missing+=(nodejs npm)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "deps: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  elif [[ " ${missing[*]} " == *" tox "* ]] && command -v pip3 >/dev/null; then
    echo "deps: not root; pip install --user tox"
    pip3 install --user -q tox
    export PATH="$HOME/.local/bin:$PATH"
  fi
fi

# Re-check: anything still missing is fatal.
fail=0
pkg-config --exists libzmq || { echo "deps: MISSING libzmq (install libzmq3-dev)"; fail=1; }
for c in redis-server redis-sentinel tox npm; do
  command -v "$c" >/dev/null || { echo "deps: MISSING $c"; fail=1; }
done
[ -x /usr/bin/chromium ] || [ -n "${CHROMIUM:-}" ] || { echo "deps: MISSING chromium (or set CHROMIUM)"; fail=1; }
[ "$fail" = 0 ] || { echo "deps: cannot continue; run as root or install the above"; exit 1; }

# The diagram check's npm packages, as locked (mermaid, playwright-core; no browser download).
lock_sum=$(sha256sum scripts/mermaid-check/package-lock.json | cut -d' ' -f1)
if [ "$(cat scripts/mermaid-check/node_modules/.goslo-lock 2>/dev/null)" != "$lock_sum" ]; then
  echo "deps: npm ci (scripts/mermaid-check)"
  (cd scripts/mermaid-check && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund -q >/dev/null 2>&1) ||
    { echo "deps: FAILED: npm ci in scripts/mermaid-check"; exit 1; }
  echo "$lock_sum" > scripts/mermaid-check/node_modules/.goslo-lock
fi

# The Python peers. tox reuses an environment whose deps are unchanged.
echo "deps: building tox environments (zmq814, modern)"
if ! tox -e zmq814,modern --notest -q >.tox-build.log 2>&1; then
  cat .tox-build.log
  echo "deps: FAILED to build the interop environments (see above)"
  exit 1
fi
# Each environment's smoke test: versions and the three 8.1.4 shims.
for env in zmq814 modern; do
  PYTHONPATH=testdata/python PYTHONWARNINGS=ignore ".tox/$env/bin/python" testdata/python/check_env.py "$env" 2>/dev/null
done
rm -f .tox-build.log
