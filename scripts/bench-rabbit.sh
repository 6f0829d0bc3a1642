#!/usr/bin/env bash
# goslo on RabbitMQ against the raw amqp091-go echo and the Python 18.3.1
# driver, in one run, on a private broker: its own epmd, node name, AMQP and
# distribution ports (free loopback ports, never 5672/4369), cookie and
# directories in a temp dir; every process started here is stopped by pid.
#
#   goslo  rpc-server + rpc-client (call c=1, c=10, c=128, cast c=1, c=10): needs goslo's
#          rabbit driver; a row that fails is printed as unavailable
#   raw    goslo bench raw-server + raw (call c=1, c=10, c=128; cast c=1
#          with confirms, without confirms; cast c=10 with confirms)
#   python testdata/python/bench_peer.py server + client (call c=1, c=10,
#          cast c=1) with oslo.messaging 18.3.1 (PY, else .tox/rabbit1831,
#          else .tox/modern)
#
# DURATION (seconds, default 5) sets the length of each measure; SEQ_ROUNDS
# (default 3) how many times goslo's and raw's sequential rows take turns;
# RAW_REPLY_CHANNELS (default 30) the raw server's confirming reply channels.
set -euo pipefail
cd "$(dirname "$0")/.."
d="${DURATION:-5}"
. scripts/rabbit-node.sh
go build -o "$tmp/goslo" ./cmd/goslo
echo "broker: rabbitmq-server $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo '?') on 127.0.0.1:$port, DURATION=$d s"

row() { # label, then the command printing a result line last
	local label=$1 line
	shift
	line=$("$@" 2>"$tmp/row.log" | tail -n 1) || true
	if [ -z "$line" ] || [ "${line#\{}" = "$line" ]; then
		echo "$label: unavailable ($(tail -n 1 "$tmp/row.log" 2>/dev/null))"
	else
		echo "$label: $line"
	fi
}

# goslo's own rabbit driver and the raw amqp091-go echo, both servers up
# before the first row.
gok=0 rawok=0
if start_server goslo "" "$tmp/goslo" bench rpc-server --url "$url" --topic bench --server s1; then
	gok=1
else
	echo "goslo  rows: unavailable (goslo bench rpc-server on $url: $(tail -n 1 "$tmp/goslo.log"))"
fi
if start_server raw '"ready"' "$tmp/goslo" bench raw-server --url "$url" --topic rawbench --server s1 --reply-channels "${RAW_REPLY_CHANNELS:-30}"; then
	rawok=1
else
	echo "raw    rows: unavailable (goslo bench raw-server: $(tail -n 1 "$tmp/raw.log"))"
fi
g() { row "$1" timeout $((${d%.*} + 60)) "$tmp/goslo" bench rpc-client --url "$url" --topic bench --server s1 "${@:2}" --duration "$d"; }
r() { row "$1" timeout $((${d%.*} + 60)) "$tmp/goslo" bench raw --url "$url" --topic rawbench --server s1 "${@:2}" --duration "$d"; }

# Sequential calls, goslo and raw taking turns (SEQ_ROUNDS each, default
# 3): this VM's thread wake-ups change regime from minute to minute, so a
# p50 ratio is read within a round, goslo and raw seconds apart.
for i in $(seq "${SEQ_ROUNDS:-3}"); do
	[ "$gok" = 1 ] && g "goslo  call c=1   #$i" --mode call --concurrency 1
	[ "$rawok" = 1 ] && r "raw    call c=1   #$i" --mode call --concurrency 1
done
if [ "$gok" = 1 ]; then
	g "goslo  call c=10 " --mode call --concurrency 10
	g "goslo  call c=128" --mode call --concurrency 128
	g "goslo  cast c=1  " --mode cast --concurrency 1
	g "goslo  cast c=10 " --mode cast --concurrency 10
fi
if [ "$rawok" = 1 ]; then
	r "raw    call c=10 " --mode call --concurrency 10
	r "raw    call c=128" --mode call --concurrency 128
	r "raw    cast c=1  confirm" --mode cast --concurrency 1 --confirm=true
	r "raw    cast c=1  no confirm" --mode cast --concurrency 1 --confirm=false
	r "raw    cast c=10 confirm" --mode cast --concurrency 10 --confirm=true
fi

# The Python 18.3.1 driver.
py="${PY:-}"
if [ -z "$py" ]; then
	for e in rabbit1831 modern; do
		if [ -x ".tox/$e/bin/python" ]; then py=.tox/$e/bin/python; break; fi
	done
fi
pyver=$([ -n "$py" ] && "$py" -c 'from importlib.metadata import version; print(version("oslo.messaging"))' 2>/dev/null || true)
if [ -z "$pyver" ]; then
	echo "python rows skipped: no oslo.messaging interpreter (set PY, or run make deps for .tox/modern)" >&2
else
	[ "$pyver" = 18.3.1 ] || echo "note: $py has oslo.messaging $pyver, not 18.3.1" >&2
	export PYTHONWARNINGS=ignore PYTHONDONTWRITEBYTECODE=1
	if start_server py '"ready"' "$py" testdata/python/bench_peer.py server "$url" pybench s1; then
		p() { row "$1" timeout $((${d%.*} + 90)) "$py" testdata/python/bench_peer.py "$2" "$url" pybench s1 "$d" "$3"; }
		p "python call c=1   ($pyver)" client 1
		p "python call c=10  ($pyver)" client 10
		p "python cast c=1   ($pyver)" cast 1
	else
		echo "python rows: unavailable (bench_peer.py server: $(tail -n 1 "$tmp/py.log"))"
	fi
fi
