#!/usr/bin/env bash
# goslo against the raw zmq echo, in one run, as oslo's simulator would be
# used: a redis-server on a free loopback port, `goslo bench rpc-server`, then
# `goslo bench rpc-client` and `goslo bench raw` for each measure.
# DURATION (seconds, default 5) sets the length of each measure.
set -euo pipefail
cd "$(dirname "$0")/.."
d="${DURATION:-5}"
tmp=$(mktemp -d)
go build -o "$tmp/goslo" ./cmd/goslo
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
rpid=$!
mkfifo "$tmp/in"
url="zmq+redis://127.0.0.1:$port?rpc_zmq_host=127.0.0.1&rpc_zmq_bind_address=127.0.0.1"
sleep 0.5
"$tmp/goslo" bench rpc-server --url "$url" --topic bench --server s1 <"$tmp/in" 2>"$tmp/server.log" &
spid=$!
exec 3>"$tmp/in"
cleanup() { echo quit >&3 || true; wait "$spid" 2>/dev/null || true; kill "$rpid" 2>/dev/null || true; wait "$rpid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
sleep 1
run() { echo "$1: $("$tmp/goslo" bench "${@:2}" 2>/dev/null | tail -n 1)"; }
run "goslo call c=1 " rpc-client --url "$url" --topic bench --server s1 --mode call --concurrency 1 --duration "$d"
run "raw   call c=1 " raw --mode call --concurrency 1 --duration "$d"
run "goslo call c=10" rpc-client --url "$url" --topic bench --server s1 --mode call --concurrency 10 --duration "$d"
run "raw   call c=10" raw --mode call --concurrency 10 --duration "$d"
run "goslo cast c=1 " rpc-client --url "$url" --topic bench --server s1 --mode cast --concurrency 1 --duration "$d"
run "raw   cast c=1 " raw --mode cast --concurrency 1 --duration "$d"
# The Python driver (oslo.messaging 8.1.4 from .tox/zmq814, as `make deps`
# builds it), sequential calls, in the same run: Python to Python, and each
# side against the other.
py=.tox/zmq814/bin/python
if [ -x "$py" ]; then
	mkfifo "$tmp/pyin"
	PYTHONWARNINGS=ignore "$py" testdata/python/bench_peer.py server "$url" pybench s1 <"$tmp/pyin" >"$tmp/py.out" 2>"$tmp/py.log" &
	pypid=$!
	exec 6>"$tmp/pyin"
	for _ in $(seq 100); do grep -q ready "$tmp/py.out" 2>/dev/null && break; sleep 0.1; done
	pyrun() { echo "$1: $(PYTHONWARNINGS=ignore "$py" testdata/python/bench_peer.py client "$url" "$2" s1 "$d" 2>/dev/null | tail -n 1)"; }
	pyrun "python call c=1 (python server)" pybench
	pyrun "python call c=1 (goslo server) " bench
	run "goslo call c=1 (python server) " rpc-client --url "$url" --topic pybench --server s1 --mode call --concurrency 1 --duration "$d"
	echo quit >&6 || true
	wait "$pypid" 2>/dev/null || true
else
	echo "python rows skipped: $py is missing (run make deps)" >&2
fi
