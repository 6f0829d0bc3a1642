#!/usr/bin/env bash
# A CALL through `goslo bridge`, every piece its own process, as deployed: a
# private rabbitmq node and redis-server (free loopback ports, stopped by
# pid), a `goslo bench rpc-server` on each bus (zy on zmq, rx on RabbitMQ),
# one `goslo bridge` between them, and `goslo bench rpc-client` on each bus.
# Rounds (ROUNDS, default 3) take the four paths in turn, seconds apart, so
# that each ratio is read within a round: zmq alone (to zy), RabbitMQ alone
# (to rx), zmq -> RabbitMQ (a zmq client to rx), RabbitMQ -> zmq (a rabbit
# client to zy); one caller each (p50/p99), then 10 callers once per path.
#
#   DURATION=3 ./scripts/bench-bridge.sh
set -euo pipefail
cd "$(dirname "$0")/.."
d="${DURATION:-5}"
. scripts/rabbit-node.sh
go build -o "$tmp/goslo" ./cmd/goslo
rport=$(freeport)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$tmp/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
zurl="zmq+redis://127.0.0.1:$rport?rpc_zmq_host=127.0.0.1&rpc_zmq_bind_address=127.0.0.1"
echo "broker: rabbitmq-server $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo '?') on 127.0.0.1:$port; redis on $rport; DURATION=$d s"

start_server zy "" "$tmp/goslo" bench rpc-server --url "$zurl" --topic bb --server zy || { echo "zmq server: $(tail -n 3 "$tmp/zy.log")" >&2; exit 1; }
start_server rx "" "$tmp/goslo" bench rpc-server --url "$url" --topic bb --server rx || { echo "rabbit server: $(tail -n 3 "$tmp/rx.log")" >&2; exit 1; }
start_server bridge "" "$tmp/goslo" bridge --url "$zurl" --url "$url" --topic bb --server rx --discover-every 0.5 ||
	{ echo "bridge: $(tail -n 3 "$tmp/bridge.log")" >&2; exit 1; }

client() { # url server flags...: one bench run, its result line
	local u=$1 s=$2
	shift 2
	timeout $((${d%.*} + 60)) "$tmp/goslo" bench rpc-client --url "$u" --topic bb --server "$s" "$@" 2>>"$tmp/client.log" | tail -n 1
}
# Both mirrors answer before the first row (discovery takes two rounds).
for _ in $(seq 300); do
	client "$zurl" rx --duration 0.1 >/dev/null 2>&1 && client "$url" zy --duration 0.1 >/dev/null 2>&1 && break
	sleep 0.2
done

for i in $(seq "${ROUNDS:-3}"); do
	echo "zmq alone            c=1  #$i: $(client "$zurl" zy --duration "$d")"
	echo "rabbit alone         c=1  #$i: $(client "$url" rx --duration "$d")"
	echo "zmq -> rabbit bridge c=1  #$i: $(client "$zurl" rx --duration "$d")"
	echo "rabbit -> zmq bridge c=1  #$i: $(client "$url" zy --duration "$d")"
done
echo "zmq alone            c=10: $(client "$zurl" zy --duration "$d" --concurrency 10)"
echo "rabbit alone         c=10: $(client "$url" rx --duration "$d" --concurrency 10)"
echo "zmq -> rabbit bridge c=10: $(client "$zurl" rx --duration "$d" --concurrency 10)"
echo "rabbit -> zmq bridge c=10: $(client "$url" zy --duration "$d" --concurrency 10)"
