#!/usr/bin/env bash
# The soak of issue 11 on a private broker: COUNT casts (default 1M) to a
# goslo server, then COUNT calls, each with CONCURRENCY callers (default 10),
# sampling the resident memory (VmRSS) of the server and of the client every
# SAMPLE seconds (default 10). It prints each run's result line (sent,
# received, errors: a lost call is an error, a lost cast is sent - received)
# and the RSS samples, then the first and last sample of each process.
#
#   COUNT=1000000 ./scripts/soak-rabbit.sh
set -euo pipefail
cd "$(dirname "$0")/.."
count="${COUNT:-1000000}"
conc="${CONCURRENCY:-10}"
sample="${SAMPLE:-10}"
. scripts/rabbit-node.sh
go build -o "$tmp/goslo" ./cmd/goslo
echo "broker: rabbitmq-server $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo '?') on 127.0.0.1:$port; COUNT=$count CONCURRENCY=$conc"

rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo gone; }

start_server goslo "" "$tmp/goslo" bench rpc-server --url "$url" --topic soak --server s1 ||
	{ echo "goslo bench rpc-server did not start: $(tail -n 3 "$tmp/goslo.log")" >&2; exit 1; }
server=${pids[-1]}

for mode in cast call; do
	"$tmp/goslo" bench rpc-client --url "$url" --topic soak --server s1 --mode "$mode" \
		--concurrency "$conc" --count "$count" --duration 1e6 >"$tmp/$mode.out" 2>"$tmp/$mode.log" &
	client=$!
	pids+=("$client")
	t0=$SECONDS
	first=""
	while kill -0 "$client" 2>/dev/null; do
		line="$mode t=$((SECONDS - t0))s server_rss_kb=$(rss "$server") client_rss_kb=$(rss "$client")"
		echo "$line"
		[ -z "$first" ] && first=$line
		last=$line
		sleep "$sample"
	done
	wait "$client" || { echo "$mode client failed: $(tail -n 3 "$tmp/$mode.log")" >&2; exit 1; }
	echo "$mode result: $(tail -n 1 "$tmp/$mode.out")"
	echo "$mode rss first: $first"
	echo "$mode rss last:  $last"
done
