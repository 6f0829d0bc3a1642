#!/usr/bin/env bash
# A CALL through `goslo bridge`, every piece its own process, as deployed: a
# private rabbitmq node and redis-server (free loopback ports, stopped by
# pid), a `goslo bench rpc-server` on each bus (zy on zmq, rx on RabbitMQ),
# one `goslo bridge` between them, and `goslo bench rpc-client` on each bus.
# Rounds (ROUNDS, default 3) take the four paths in turn, seconds apart, so
# that each ratio is read within a round: zmq alone (to zy), RabbitMQ alone
# (to rx), zmq -> RabbitMQ (a zmq client to rx), RabbitMQ -> zmq (a rabbit
# client to zy); one caller each (p50/p99), then 10 callers once per path.
# Each round ends with its ratios, and the run with their medians over the
# rounds (the VM's wake-up regime drifts between rounds): ROUNDS rounds of
# one caller, then ROUNDS10 (default 3) rounds of 10 callers.
#
#   DURATION=2 ROUNDS=9 ROUNDS10=5 ./scripts/bench-bridge.sh
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

field() { # name, JSON result line: the number
	sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p" <<<"$2"
}
medians() { # printf format (rounds, median of column 1, of column 2): lines "a b" on stdin
	awk -v fmt="$1" '
		{ a[NR] = $1; b[NR] = $2 }
		function median(v, n,   i, j, t) {
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
			return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		}
		END { printf fmt, NR, median(a, NR), median(b, NR) }'
}
ratios=()
for i in $(seq "${ROUNDS:-3}"); do
	z=$(client "$zurl" zy --duration "$d")
	echo "zmq alone            c=1  #$i: $z"
	r=$(client "$url" rx --duration "$d")
	echo "rabbit alone         c=1  #$i: $r"
	zr=$(client "$zurl" rx --duration "$d")
	echo "zmq -> rabbit bridge c=1  #$i: $zr"
	rz=$(client "$url" zy --duration "$d")
	echo "rabbit -> zmq bridge c=1  #$i: $rz"
	sum=$(awk -v a="$(field p50_us "$z")" -v b="$(field p50_us "$r")" 'BEGIN { print a + b }')
	line=$(awk -v s="$sum" -v x="$(field p50_us "$zr")" -v y="$(field p50_us "$rz")" \
		'BEGIN { printf "%.2f %.2f", x / s, y / s }')
	ratios+=("$line")
	echo "  round $i: p50 through the bridge / (zmq p50 + rabbit p50 = $sum us): zmq->rabbit ${line% *}x, rabbit->zmq ${line#* }x"
done
printf '%s\n' "${ratios[@]}" |
	medians 'c=1 median over %d rounds: zmq->rabbit %.2fx, rabbit->zmq %.2fx the sum of the buses alone (target <= 1.2x)\n'
shares=()
for i in $(seq "${ROUNDS10:-3}"); do
	z=$(client "$zurl" zy --duration "$d" --concurrency 10)
	echo "zmq alone            c=10 #$i: $z"
	r=$(client "$url" rx --duration "$d" --concurrency 10)
	echo "rabbit alone         c=10 #$i: $r"
	zr=$(client "$zurl" rx --duration "$d" --concurrency 10)
	echo "zmq -> rabbit bridge c=10 #$i: $zr"
	rz=$(client "$url" zy --duration "$d" --concurrency 10)
	echo "rabbit -> zmq bridge c=10 #$i: $rz"
	line=$(awk -v z="$(field per_s "$z")" -v r="$(field per_s "$r")" -v x="$(field per_s "$zr")" -v y="$(field per_s "$rz")" \
		'BEGIN { s = z < r ? z : r; printf "%.0f %.0f %.0f", s, 100 * x / s, 100 * y / s }')
	shares+=("${line#* }")
	read -r slow xs ys <<<"$line"
	echo "  round $i: c=10 through the bridge / the slower bus alone ($slow/s): zmq->rabbit $xs%, rabbit->zmq $ys%"
done
printf '%s\n' "${shares[@]}" |
	medians 'c=10 median over %d rounds: zmq->rabbit %.0f%%, rabbit->zmq %.0f%% of the slower bus alone (target >= 60%%)\n'
