#!/usr/bin/env bash
# Tests scripts/deps.sh's decisions without changing the machine: fake id,
# pkg-config, apt-get, systemctl, update-rc.d and tox on a private PATH, and
# (as root, where unshare works) a private mount namespace with a tmpfs /run
# for the service checks. Nothing is installed, started or stopped except the
# stand-in processes this script starts itself.
#   scripts/deps-test.sh        (make deps-test)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
tmp=$(mktemp -d)
chmod 755 "$tmp"
started=()
cleanup() {
  local p
  for p in "${started[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
pass=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
die() { echo "FAIL $*"; [ -f "$tmp/out" ] && sed 's/^/     | /' "$tmp/out"; exit 1; }

# fake NAME BODY: an executable stand-in in $tmp/fake.
mkdir -p "$tmp/fake" "$tmp/state"
fake() { printf '#!/bin/bash\n%s\n' "$2" >"$tmp/fake/$1"; chmod +x "$tmp/fake/$1"; }
fake id '[ "$1" = -u ] && { echo "${FAKE_UID:-0}"; exit 0; }; exec /usr/bin/id "$@"'
fake pkg-config '[ "$1 $2" = "--exists libzmq" ] && { [ -e "$STATE/libzmq" ]; exit; }; exec /usr/bin/pkg-config "$@"'
# apt-get logs its arguments; install of libzmq3-dev "works" when FAKE_APT_WORKS=1,
# and then provides pkg-config and gcc in $MINBIN (the "fresh machine" PATH).
fake apt-get 'echo "$*" >>"$STATE/apt.log"
if [ "$1" = install ] && [ "${FAKE_APT_WORKS:-1}" = 1 ]; then
  for a; do case $a in
    libzmq3-dev) /usr/bin/touch "$STATE/libzmq" ;;
    pkg-config) [ -n "${MINBIN:-}" ] && /bin/ln -sf "$FAKEDIR/pkg-config" "$MINBIN/pkg-config" ;;
    gcc) [ -n "${MINBIN:-}" ] && /bin/ln -sf /usr/bin/gcc "$MINBIN/gcc" ;;
  esac; done
fi
exit 0'

# run_deps ARGS...: deps.sh with the fakes first on PATH; output in $tmp/out.
run_deps() {
  rm -f "$tmp/state/apt.log"
  set +e
  env STATE="$tmp/state" FAKEDIR="$tmp/fake" PATH="${FAKE_PATH:-$tmp/fake:$PATH}" "$repo/scripts/deps.sh" "$@" >"$tmp/out" 2>&1
  rc=$?
  set -e
}
apt_log() { cat "$tmp/state/apt.log" 2>/dev/null || true; }

# --demo, libzmq present: nothing installed, and fast.
touch "$tmp/state/libzmq"
start=$(date +%s%N)
run_deps --demo
ms=$((($(date +%s%N) - start) / 1000000))
[ "$rc" = 0 ] && [ -z "$(apt_log)" ] || die "demo with libzmq present: rc=$rc, apt: $(apt_log)"
[ "$ms" -lt 5000 ] || die "demo with libzmq present took ${ms} ms"
ok "--demo, libzmq present: no apt-get, ${ms} ms"

# --demo as root, libzmq missing: apt-get installs libzmq3-dev only, then succeeds.
rm -f "$tmp/state/libzmq"
run_deps --demo
[ "$rc" = 0 ] || die "demo as root without libzmq: rc=$rc"
[ "$(apt_log)" = $'update -qq\ninstall -y -qq --no-install-recommends libzmq3-dev' ] || die "demo apt-get calls: $(apt_log)"
ok "--demo as root, libzmq missing: apt-get install libzmq3-dev, then runs"

# --demo as root, apt-get does not deliver: fatal, with a message.
rm -f "$tmp/state/libzmq"
FAKE_APT_WORKS=0 run_deps --demo
[ "$rc" != 0 ] && grep -q 'MISSING libzmq' "$tmp/out" || die "demo when apt-get does not deliver: rc=$rc"
ok "--demo as root, apt-get does not deliver: fails with 'MISSING libzmq'"

# --demo not root: no apt-get, says what to run, fails.
rm -f "$tmp/state/libzmq"
FAKE_UID=1000 run_deps --demo
[ "$rc" != 0 ] && [ -z "$(apt_log)" ] || die "demo not root: rc=$rc apt: $(apt_log)"
grep -q 'sudo apt-get install --no-install-recommends libzmq3-dev' "$tmp/out" || die "demo not root: no instruction"
ok "--demo not root: no apt-get; prints 'sudo apt-get install ... libzmq3-dev' and fails"

# --demo on a machine without pkg-config or a C compiler (a PATH of only
# bash, dirname and go): pkg-config, libzmq3-dev and gcc, nothing else.
minbin="$tmp/minbin"
mkdir -p "$minbin"
for c in bash dirname go; do ln -s "$(command -v "$c")" "$minbin/$c"; done
ln -s "$tmp/fake/id" "$minbin/id"
ln -s "$tmp/fake/apt-get" "$minbin/apt-get"
rm -f "$tmp/state/libzmq"
MINBIN="$minbin" FAKE_PATH="$minbin" run_deps --demo
[ "$rc" = 0 ] || die "demo on a bare PATH: rc=$rc"
[ "$(apt_log | tail -n 1)" = "install -y -qq --no-install-recommends pkg-config libzmq3-dev gcc" ] ||
  die "demo on a bare PATH: apt-get $(apt_log | tail -n 1)"
MINBIN="$minbin" FAKE_PATH="$minbin" run_deps --demo
[ "$rc" = 0 ] && [ -z "$(apt_log)" ] || die "demo on the bare PATH, second run: rc=$rc apt: $(apt_log)"
ok "--demo, no pkg-config and no gcc: apt-get install pkg-config libzmq3-dev gcc; a second run installs nothing"

run_deps --bogus
[ "$rc" = 2 ] || die "unknown flag: rc=$rc"
ok "unknown flag: usage, exit 2"

# The full mode's service handling, in a private mount namespace (root only).
if [ "$(/usr/bin/id -u)" != 0 ] || ! unshare -m --propagation private true 2>/dev/null; then
  echo "skip the service checks (need root and unshare)"
  echo "deps-test: $pass passed"
  exit 0
fi
if [ ! -x /usr/sbin/rabbitmq-server ] || [ ! -f .tox/zmq814/bin/python ]; then
  echo "skip the service checks (rabbitmq-server or the tox environments are not installed: run make deps)"
  echo "deps-test: $pass passed"
  exit 0
fi
touch "$tmp/state/libzmq"
fake tox 'echo "$*" >>"$STATE/tox.log"'
fake systemctl 'echo "$*" >>"$STATE/systemctl.log"
case "$1 $2" in
  "is-enabled rabbitmq-server.service"|"is-enabled epmd.socket") echo enabled ;;
  is-enabled*) echo static ;;
  is-active*) exit 3 ;;
esac'
fake update-rc.d 'echo "$*" >>"$STATE/update-rc.d.log"'

# systemd: rabbitmq-server.service and epmd.socket enabled, epmd.service static.
unshare -m --propagation private bash -c '
  mount -t tmpfs goslo-deps-test /run && mkdir -p /run/systemd/system &&
  env STATE="$1/state" PATH="$1/fake:$PATH" "$2/scripts/deps.sh"' _ "$tmp" "$repo" >"$tmp/out" 2>&1 || die "full mode under systemd"
grep -qx 'disable --now rabbitmq-server.service epmd.socket' "$tmp/state/systemctl.log" ||
  die "systemctl calls: $(cat "$tmp/state/systemctl.log")"
envs=$(python3 -c 'import configparser; c = configparser.ConfigParser(interpolation=None); c.read("tox.ini"); print(",".join(e.strip() for e in c["tox"]["envlist"].replace("\n", ",").split(",") if e.strip()))')
grep -qx -- "-e $envs --notest -q" "$tmp/state/tox.log" || die "tox calls: $(cat "$tmp/state/tox.log")"
ok "full mode, systemd: systemctl disable --now rabbitmq-server.service epmd.socket; tox -e $envs"

# No systemd: a running service (pid file), its init script, and an epmd of the
# rabbitmq user; an epmd of another user is left alone.
cp /bin/sleep "$tmp/epmd"
setpriv --reuid=rabbitmq --regid=rabbitmq --clear-groups "$tmp/epmd" 300 &
svc_epmd=$!
"$tmp/epmd" 300 &
own_epmd=$!
sleep 300 &
node=$!
started+=("$svc_epmd" "$own_epmd" "$node")
sleep 0.2
svc_epmd_pid=$(pgrep -u rabbitmq -x epmd) || die "the stand-in epmd of the rabbitmq user did not start"
[ "$svc_epmd_pid" = "$svc_epmd" ] || die "another epmd of the rabbitmq user runs ($svc_epmd_pid); not touching it"
printf '#!/bin/sh\necho "$*" >>%s/state/init.log\n[ "$1" = stop ] && kill %s\nexit 0\n' "$tmp" "$node" >"$tmp/init"
chmod +x "$tmp/init"
unshare -m --propagation private bash -c '
  mount -t tmpfs goslo-deps-test /run && mkdir -p /run/rabbitmq && echo "$3" >/run/rabbitmq/pid &&
  mount --bind "$1/init" /etc/init.d/rabbitmq-server &&
  env STATE="$1/state" PATH="$1/fake:$PATH" "$2/scripts/deps.sh"' _ "$tmp" "$repo" "$node" >"$tmp/out" 2>&1 || die "full mode without systemd"
[ "$(cat "$tmp/state/init.log")" = stop ] || die "init script calls: $(cat "$tmp/state/init.log" 2>/dev/null)"
sleep 0.2
kill -0 "$node" 2>/dev/null && die "the service's node still runs"
pgrep -u rabbitmq -x epmd >/dev/null && die "the service's epmd still runs"
kill -0 "$own_epmd" || die "an epmd of another user was stopped"
rc_note="(not enabled at boot: no update-rc.d)"
if compgen -G '/etc/rc[2-5].d/S*rabbitmq-server' >/dev/null; then
  grep -qx 'rabbitmq-server disable' "$tmp/state/update-rc.d.log" || die "update-rc.d calls: $(cat "$tmp/state/update-rc.d.log" 2>/dev/null)"
  rc_note="update-rc.d disable,"
fi
ok "full mode, no systemd: init script stop, $rc_note the rabbitmq user's epmd stopped, another user's epmd left"

echo "deps-test: $pass passed"
