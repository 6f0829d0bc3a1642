# Sourced by scripts/bench-rabbit.sh and scripts/soak-rabbit.sh: a private
# rabbitmq node as internal/rabbittest starts them (its own epmd, node name,
# AMQP and distribution ports on free loopback ports, never 5672/4369,
# cookie and directories in a temp dir). Sets tmp, url, broker, port; pids
# (stopped in reverse order at exit, each by its pid) and fds (write ends of
# servers' stdin fifos, sent "quit" first) are the caller's to fill. Every
# process started is stopped by pid at exit.
tmp=$(mktemp -d)
pids=()     # stopped in reverse order at exit, each by its pid
fds=()      # our write ends of the servers' stdin fifos (they stop on "quit")
broker=""   # rabbitmq-server's pid (its own process group)
epmdpid=""

stop_pid() { # pid [seconds]: SIGTERM, then SIGKILL after the grace period
	local p=$1 n=$(( ${2:-10} * 10 ))
	kill -TERM "$p" 2>/dev/null || return 0
	for _ in $(seq "$n"); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}
cleanup() {
	set +e
	# A subshell per write: a server that already died gives SIGPIPE there.
	for f in "${fds[@]}"; do (echo quit >&"$f") 2>/dev/null; done
	sleep 1
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}" 5; done
	if [ -n "$broker" ]; then
		# The script's pid leads the group holding beam.smp and its
		# helpers: TERM the script (it stops the node), then the group.
		stop_pid "$broker" 30
		for _ in $(seq 100); do kill -0 -- "-$broker" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- "-$broker" 2>/dev/null
	fi
	[ -n "$epmdpid" ] && stop_pid "$epmdpid" 5
	rm -rf "$tmp"
}
trap cleanup EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(freeport) dist=$(freeport) epmdport=$(freeport)

# A private node, as internal/rabbittest starts them.
rbin=/usr/lib/rabbitmq/bin
[ -x "$rbin/rabbitmq-server" ] || { echo "rabbitmq-server missing: run make deps (apt-get install -y rabbitmq-server)" >&2; exit 1; }
mkdir -p "$tmp/rmq/home" "$tmp/rmq/data" "$tmp/rmq/log"
head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F >"$tmp/rmq/home/.erlang.cookie"
chmod 400 "$tmp/rmq/home/.erlang.cookie"
echo "[]." >"$tmp/rmq/enabled_plugins"
printf 'loopback_users.guest = true\nlog.console = false\n' >"$tmp/rmq/rabbitmq.conf"
epmd -port "$epmdport" -address 127.0.0.1 &
epmdpid=$!
node="goslo-bench-$$@localhost"
env -i HOME="$tmp/rmq/home" PATH="$PATH" LANG=C.UTF-8 \
	ERL_EPMD_PORT="$epmdport" ERL_EPMD_ADDRESS=127.0.0.1 \
	RABBITMQ_CONF_ENV_FILE="$tmp/rmq/rabbitmq-env.conf" \
	RABBITMQ_NODENAME="$node" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
	RABBITMQ_NODE_PORT="$port" RABBITMQ_DIST_PORT="$dist" \
	RABBITMQ_CONFIG_FILE="$tmp/rmq/rabbitmq.conf" \
	RABBITMQ_ADVANCED_CONFIG_FILE="$tmp/rmq/advanced.config" \
	RABBITMQ_ENABLED_PLUGINS_FILE="$tmp/rmq/enabled_plugins" \
	RABBITMQ_MNESIA_BASE="$tmp/rmq/data" RABBITMQ_LOG_BASE="$tmp/rmq/log" \
	RABBITMQ_PLUGINS_EXPAND_DIR="$tmp/rmq/data/plugins-expand" \
	RABBITMQ_PID_FILE="$tmp/rmq/data/rabbit.pid" \
	RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false" \
	setsid "$rbin/rabbitmq-server" >"$tmp/rmq/log/stdout.log" 2>&1 &
broker=$!
probe='import socket,sys
s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),timeout=1); s.sendall(b"AMQP\0\0\x09\x01")
sys.exit(0 if s.recv(1)==b"\x01" else 1)'
for i in $(seq 1200); do
	python3 -c "$probe" "$port" 2>/dev/null && break
	kill -0 "$broker" 2>/dev/null || { echo "rabbitmq-server exited:" >&2; tail -n 30 "$tmp/rmq/log/stdout.log" >&2; exit 1; }
	[ "$i" = 1200 ] && { echo "rabbitmq-server did not start in 120 s" >&2; exit 1; }
	sleep 0.1
done
url="rabbit://guest:guest@127.0.0.1:$port/"

# start_server NAME READY_PATTERN CMD...: runs CMD with a fifo as stdin
# (stopped with "quit"), waits up to 15 s for READY_PATTERN on its stdout
# (empty: alive after 2 s). Returns 1 if it died.
start_server() {
	local name=$1 ready=$2
	shift 2
	mkfifo "$tmp/$name.in"
	"$@" <"$tmp/$name.in" >"$tmp/$name.out" 2>"$tmp/$name.log" &
	pids+=($!)
	local p=$!
	local fd
	exec {fd}>"$tmp/$name.in"
	fds+=("$fd")
	local n=150
	[ -z "$ready" ] && n=20
	for _ in $(seq "$n"); do
		kill -0 "$p" 2>/dev/null || return 1
		if [ -n "$ready" ]; then grep -q "$ready" "$tmp/$name.out" 2>/dev/null && return 0; fi
		sleep 0.1
	done
	[ -z "$ready" ] && kill -0 "$p" 2>/dev/null
}
