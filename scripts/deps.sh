#!/usr/bin/env bash
# Installs what goslo needs, idempotently (a second run installs nothing and
# takes about a second; the full mode lets tox reuse its environments).
#
#   scripts/deps.sh --demo   what `make demo` needs: the cgo build against
#                            libzmq (Debian libzmq3-dev, pkg-config, and gcc
#                            with libc6-dev if the machine has no C compiler).
#   scripts/deps.sh          what `make test` needs: the above, plus Debian
#                            redis-server, redis-sentinel, rabbitmq-server
#                            (Erlang comes with it), tox, python3.11, chromium
#                            and npm; then every tox environment of tox.ini's
#                            envlist, each smoke-tested by check_env.py, and the
#                            diagram check's npm packages (npm ci).
#
# Debian packages are installed with apt-get only when running as root;
# otherwise the script says what to install and fails. Debian starts
# rabbitmq-server (and with systemd, epmd) as system services on install:
# they are stopped and disabled, because the tests start private nodes on
# their own ports and a system node would hold 5672/25672/4369 and use CPU.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full
case "${1:-}" in
  "") ;;
  --demo) mode=demo ;;
  *) echo "usage: $0 [--demo]" >&2; exit 2 ;;
esac

is_root() { [ "$(id -u)" = 0 ]; }

# apt_install PKG...: apt-get install as root (a failure is fatal); returns 1
# when not root.
apt_install() {
  [ $# -gt 0 ] || return 0
  is_root || return 1
  echo "deps: apt-get install $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || { echo "deps: FAILED: apt-get update"; exit 1; }
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null || { echo "deps: FAILED: apt-get install $*"; exit 1; }
}

# The cgo build (make demo, go build ./...): libzmq through pkg-config, and a
# C compiler with the C library headers.
missing=()
command -v pkg-config >/dev/null || missing+=(pkg-config)
pkg-config --exists libzmq 2>/dev/null || missing+=(libzmq3-dev)
cc=$(go env CC 2>/dev/null || true)
command -v "${cc:-gcc}" >/dev/null || missing+=(gcc)
[ -f /usr/include/stdio.h ] || missing+=(libc6-dev)

if [ "$mode" = demo ]; then
  if [ ${#missing[@]} -gt 0 ] && ! apt_install "${missing[@]}"; then
    echo "deps: make demo needs ${missing[*]} (the cgo build against libzmq) and is not running as root."
    echo "deps: install them with: sudo apt-get install --no-install-recommends ${missing[*]}"
    exit 1
  fi
  pkg-config --exists libzmq || { echo "deps: MISSING libzmq after installing it (pkg-config cannot find libzmq.pc)"; exit 1; }
  exit 0
fi

command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-sentinel >/dev/null || missing+=(redis-sentinel)
# /usr/sbin is not on every user's PATH: check the files Debian installs.
{ [ -x /usr/sbin/rabbitmq-server ] && [ -x /usr/sbin/rabbitmqctl ]; } || missing+=(rabbitmq-server)
command -v tox >/dev/null || missing+=(tox)
command -v python3.11 >/dev/null || missing+=(python3.11 python3.11-venv)
# msgpack 1.0.3 (pinned for 8.1.4) has no CPython 3.11 wheel: pip compiles it.
[ -f /usr/include/python3.11/Python.h ] || missing+=(python3.11-dev)
command -v gcc >/dev/null || [[ " ${missing[*]} " == *" gcc "* ]] || missing+=(gcc)
# The diagram check (make docs-check): Debian's Chromium and Node.js with npm.
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v npm >/dev/null || missing+=(nodejs npm)

if [ ${#missing[@]} -gt 0 ] && ! apt_install "${missing[@]}"; then
  echo "deps: not root; cannot apt-get install ${missing[*]}"
  if [[ " ${missing[*]} " == *" tox "* ]] && command -v pip3 >/dev/null; then
    echo "deps: pip install --user tox"
    pip3 install --user -q tox
    export PATH="$HOME/.local/bin:$PATH"
  fi
fi

# Re-check: anything still missing is fatal.
fail=0
pkg-config --exists libzmq 2>/dev/null || { echo "deps: MISSING libzmq (install libzmq3-dev pkg-config)"; fail=1; }
for c in redis-server redis-sentinel tox npm gcc; do
  command -v "$c" >/dev/null || { echo "deps: MISSING $c"; fail=1; }
done
for c in rabbitmq-server rabbitmqctl; do
  [ -x "/usr/sbin/$c" ] || { echo "deps: MISSING /usr/sbin/$c (install rabbitmq-server)"; fail=1; }
done
[ -x /usr/bin/chromium ] || [ -n "${CHROMIUM:-}" ] || { echo "deps: MISSING chromium (or set CHROMIUM)"; fail=1; }
[ "$fail" = 0 ] || { echo "deps: cannot continue; run as root or install the above"; exit 1; }

# The system RabbitMQ: stopped and disabled (the tests run their own nodes).
# Only the service's processes are touched: a node or epmd that someone
# started by hand, or that a test started, runs as another user.
quiet_rabbitmq_service() {
  if [ -d /run/systemd/system ]; then
    local u units=()
    for u in rabbitmq-server.service epmd.socket epmd.service; do
      if [ "$(systemctl is-enabled "$u" 2>/dev/null)" = enabled ] || systemctl is-active --quiet "$u" 2>/dev/null; then
        units+=("$u")
      fi
    done
    [ ${#units[@]} -gt 0 ] || return 0
    if is_root; then
      echo "deps: systemctl disable --now ${units[*]} (the tests start private nodes)"
      systemctl disable --now "${units[@]}" >/dev/null 2>&1
    else
      echo "deps: WARNING: ${units[*]} enabled or running; as root: systemctl disable --now ${units[*]}"
    fi
    return 0
  fi
  # No systemd (a container, sysvinit): the init script and its pid file.
  local pid pids
  if [ -r /var/run/rabbitmq/pid ] && pid=$(cat /var/run/rabbitmq/pid 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    if is_root; then
      echo "deps: /etc/init.d/rabbitmq-server stop (the tests start private nodes)"
      /etc/init.d/rabbitmq-server stop >/dev/null 2>&1 || echo "deps: WARNING: could not stop the rabbitmq-server service (pid $pid)"
    else
      echo "deps: WARNING: the rabbitmq-server service runs (pid $pid); as root: /etc/init.d/rabbitmq-server stop"
    fi
  fi
  if is_root && compgen -G '/etc/rc[2-5].d/S*rabbitmq-server' >/dev/null; then
    echo "deps: update-rc.d rabbitmq-server disable"
    update-rc.d rabbitmq-server disable >/dev/null 2>&1 || true
  fi
  # The service's node started epmd as the rabbitmq user; it outlives the node.
  if getent passwd rabbitmq >/dev/null && pids=$(pgrep -u rabbitmq -x epmd); then
    if is_root; then
      echo "deps: stopping the rabbitmq service's epmd (pid ${pids//$'\n'/ })"
      # shellcheck disable=SC2086
      kill $pids 2>/dev/null || true
    else
      echo "deps: WARNING: the rabbitmq service's epmd runs (pid ${pids//$'\n'/ }); as root: kill it"
    fi
  fi
}
quiet_rabbitmq_service

# The diagram check's npm packages, as locked (mermaid, playwright-core; no browser download).
lock_sum=$(sha256sum scripts/mermaid-check/package-lock.json | cut -d' ' -f1)
if [ "$(cat scripts/mermaid-check/node_modules/.goslo-lock 2>/dev/null)" != "$lock_sum" ]; then
  echo "deps: npm ci (scripts/mermaid-check)"
  (cd scripts/mermaid-check && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund -q >/dev/null 2>&1) ||
    { echo "deps: FAILED: npm ci in scripts/mermaid-check"; exit 1; }
  echo "$lock_sum" > scripts/mermaid-check/node_modules/.goslo-lock
fi

# The Python peers: every environment of tox.ini's envlist (zmq814, modern,
# and rabbit1831 once tox.ini lists it). tox reuses an environment whose deps
# are unchanged.
mapfile -t envs < <(python3 - <<'EOF'
import configparser, re
c = configparser.ConfigParser(interpolation=None)
c.read("tox.ini")
for e in re.split(r"[\s,]+", c.get("tox", "envlist", fallback="")):
    if e:
        print(e)
EOF
)
[ ${#envs[@]} -gt 0 ] || { echo "deps: tox.ini has no envlist"; exit 1; }
env_csv=$(IFS=,; echo "${envs[*]}")
echo "deps: building tox environments ($env_csv)"
if ! tox -e "$env_csv" --notest -q >.tox-build.log 2>&1; then
  cat .tox-build.log
  echo "deps: FAILED to build the interop environments (see above)"
  exit 1
fi
rm -f .tox-build.log
# Each environment's smoke test: versions (and for zmq814 the three 8.1.4 shims).
for env in "${envs[@]}"; do
  if ! out=$(PYTHONPATH=testdata/python PYTHONWARNINGS=ignore ".tox/$env/bin/python" testdata/python/check_env.py "$env" 2>&1); then
    echo "$out"
    echo "deps: FAILED: the $env environment's smoke test (testdata/python/check_env.py)"
    exit 1
  fi
  echo "$out" | tail -n 1
done
