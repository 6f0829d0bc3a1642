#!/usr/bin/env bash
# goslo through the goslo proxy against the raw direct zmq echo, in one run:
# a redis-server on a free loopback port, `goslo proxy`, a proxy-mode
# `goslo bench rpc-server`, then `goslo bench rpc-client` through the proxy
# and `goslo bench raw` for each measure, plus a goslo call without the
# proxy (the latency the proxy adds) (zmq-wire.md §6.2: every CALL and
# its REPLY cross the proxy's two ROUTERs); then the Python driver with its
# own proxy, and across (below).
# DURATION (seconds, default 5) sets the length of each measure; ACKS=1
# turns rpc_use_acks on.
set -euo pipefail
cd "$(dirname "$0")/.."
d="${DURATION:-5}"
tmp=$(mktemp -d)
go build -o "$tmp/goslo" ./cmd/goslo
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
rpid=$!
acks=false
[ "${ACKS:-0}" = 1 ] && acks=true
q="rpc_zmq_host=127.0.0.1&rpc_zmq_bind_address=127.0.0.1&use_router_proxy=true&rpc_use_acks=$acks"
url="zmq+redis://127.0.0.1:$port?$q"
printf '[oslo_messaging_zmq]\nrpc_zmq_bind_address = 127.0.0.1\n' >"$tmp/proxy.conf"
mkfifo "$tmp/in" "$tmp/pin"
sleep 0.5
"$tmp/goslo" proxy -c "$tmp/proxy.conf" -u "zmq+redis://127.0.0.1:$port" -H 127.0.0.1 <"$tmp/pin" >"$tmp/proxy.out" 2>"$tmp/proxy.log" &
ppid=$!
exec 4>"$tmp/pin"
sleep 0.5
"$tmp/goslo" bench rpc-server --url "$url" --topic bench --server s1 <"$tmp/in" 2>"$tmp/server.log" &
spid=$!
exec 3>"$tmp/in"
# A direct-mode server too, for the latency the proxy adds.
durl="zmq+redis://127.0.0.1:$port?rpc_zmq_host=127.0.0.1&rpc_zmq_bind_address=127.0.0.1"
mkfifo "$tmp/din"
"$tmp/goslo" bench rpc-server --url "$durl" --topic benchd --server s1 <"$tmp/din" 2>"$tmp/dserver.log" &
dpid=$!
exec 5>"$tmp/din"
cleanup() {
	for p in ${py1:-} ${py2:-} ${g2:-} ${pypp:-} ${r2pid:-}; do kill "$p" 2>/dev/null || true; done
	echo quit >&3 || true; wait "$spid" 2>/dev/null || true
	echo quit >&5 || true; wait "$dpid" 2>/dev/null || true
	echo quit >&4 || true; wait "$ppid" 2>/dev/null || true
	kill "$rpid" 2>/dev/null || true; wait "$rpid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
sleep 1
echo "proxy: $(cat "$tmp/proxy.out")"
run() { echo "$1: $("$tmp/goslo" bench "${@:2}" 2>/dev/null | tail -n 1)"; }
run "goslo call c=1  via proxy" rpc-client --url "$url" --topic bench --server s1 --mode call --concurrency 1 --duration "$d"
run "goslo call c=1  direct   " rpc-client --url "$durl" --topic benchd --server s1 --mode call --concurrency 1 --duration "$d"
run "raw   call c=1  direct   " raw --mode call --concurrency 1 --duration "$d"
run "goslo cast c=1  via proxy" rpc-client --url "$url" --topic bench --server s1 --mode cast --concurrency 1 --duration "$d"
run "raw   cast c=1  direct   " raw --mode cast --concurrency 1 --duration "$d"
run "goslo call c=10 via proxy" rpc-client --url "$url" --topic bench --server s1 --mode call --concurrency 10 --duration "$d"
# The Python driver (oslo.messaging 8.1.4 from .tox/zmq814, as `make deps`
# builds it) in the same run: its own proxy (the real
# oslo-messaging-zmq-proxy, testdata/python/zmq_proxy.py) on a second
# redis-server, so that neither world's clients connect to the other's
# proxy; a Python client and server through it, and a goslo client and
# server through it; then a Python client and server through the goslo
# proxy.
py=.tox/zmq814/bin/python
if [ -x "$py" ]; then
	port2=$(free)
	redis-server --port "$port2" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" >"$tmp/redis2.log" 2>&1 &
	r2pid=$!
	sleep 0.5
	url2="zmq+redis://127.0.0.1:$port2?$q"
	PYTHONWARNINGS=ignore "$py" testdata/python/zmq_proxy.py -c "$tmp/proxy.conf" -u "zmq+redis://127.0.0.1:$port2" -H 127.0.0.1 >"$tmp/pyproxy.out" 2>"$tmp/pyproxy.log" &
	pypp=$!
	# Servers look their proxies up when they start: the proxy first.
	for _ in $(seq 150); do grep -q ready "$tmp/pyproxy.out" 2>/dev/null && break; sleep 0.1; done
	mkfifo "$tmp/py1" "$tmp/py2" "$tmp/gin2"
	PYTHONWARNINGS=ignore "$py" testdata/python/bench_peer.py server "$url2" pybench s1 <"$tmp/py1" >"$tmp/py1.out" 2>"$tmp/py1.log" &
	py1=$!
	exec 6>"$tmp/py1"
	PYTHONWARNINGS=ignore "$py" testdata/python/bench_peer.py server "$url" pybench s1 <"$tmp/py2" >"$tmp/py2.out" 2>"$tmp/py2.log" &
	py2=$!
	exec 7>"$tmp/py2"
	"$tmp/goslo" bench rpc-server --url "$url2" --topic bench --server s1 <"$tmp/gin2" 2>"$tmp/gserver2.log" &
	g2=$!
	exec 8>"$tmp/gin2"
	for _ in $(seq 150); do [ "$(cat "$tmp/py1.out" "$tmp/py2.out" 2>/dev/null | grep -c ready)" = 2 ] && break; sleep 0.1; done
	sleep 1
	echo "python proxy: $(grep ready "$tmp/pyproxy.out")"
	pyrun() { echo "$1: $(PYTHONWARNINGS=ignore "$py" testdata/python/bench_peer.py "$2" "$3" pybench s1 "$d" 2>"$tmp/pyclient.log" | tail -n 1)"; [ -s "$tmp/pyclient.log" ] && tail -n 3 "$tmp/pyclient.log" >&2 || true; }
	pyrun "python call c=1  via python proxy (python server)" client "$url2"
	pyrun "python cast c=1  via python proxy (python server)" cast "$url2"
	run "goslo  call c=1  via python proxy (goslo server) " rpc-client --url "$url2" --topic bench --server s1 --mode call --concurrency 1 --duration "$d"
	run "goslo  cast c=1  via python proxy (goslo server) " rpc-client --url "$url2" --topic bench --server s1 --mode cast --concurrency 1 --duration "$d"
	pyrun "python call c=1  via goslo proxy  (python server)" client "$url"
	pyrun "python cast c=1  via goslo proxy  (python server)" cast "$url"
	echo quit >&6 || true; wait "$py1" 2>/dev/null || true
	echo quit >&7 || true; wait "$py2" 2>/dev/null || true
	echo quit >&8 || true; wait "$g2" 2>/dev/null || true
	# SIGTERM: a background job of a script ignores SIGINT.
	kill "$pypp" 2>/dev/null || true; wait "$pypp" 2>/dev/null || true
	kill "$r2pid" 2>/dev/null || true; wait "$r2pid" 2>/dev/null || true
else
	echo "python rows skipped: $py is missing (run make deps)" >&2
fi
