#!/usr/bin/env bash
# goslo through the goslo proxy against the raw direct zmq echo, in one run:
# a redis-server on a free loopback port, `goslo proxy`, a proxy-mode
# `goslo bench rpc-server`, then `goslo bench rpc-client` through the proxy
# and `goslo bench raw` for each measure, plus a goslo call without the
# proxy (the latency the proxy adds) (zmq-wire.md §6.2: every CALL and
# its REPLY cross the proxy's two ROUTERs).
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
