package main

import (
	"fmt"
	"io"
	"os"
)

const version = "0.1.0-dev"

func main() {
	stop := startProfile(os.Stderr)
	code := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "demo":
		if err := demo(stdout); err != nil {
			fmt.Fprintln(stderr, "goslo demo:", err)
			return 1
		}
		return 0
	case "serve":
		return serve(args[1:], stdin, stdout, stderr)
	case "call", "cast":
		return callOrCast(args[0], args[1:], stdout, stderr)
	case "notify":
		return notifyCmd(args[1:], stdout, stderr)
	case "listen":
		return listenCmd(args[1:], stdin, stdout, stderr)
	case "bench":
		return bench(args[1:], stdin, stdout, stderr)
	case "proxy":
		return proxyCmd(args[1:], stdin, stdout, stderr)
	case "bridge":
		return bridgeCmd(args[1:], stdin, stdout, stderr)
	case "record":
		return recordCmd(args[1:], stdin, stderr)
	case "replay":
		return replayCmd(args[1:], stdout, stderr)
	case "version", "--version", "-V":
		fmt.Fprintf(stdout, "goslo %s (wire-compatible with oslo.messaging 8.1.4, zmq message version 1.0)\n", version)
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "goslo: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: goslo <command>

URL is a transport URL: rabbit://user:pass@host:port[,host:port...]/vhost
(RabbitMQ; query parameters set [oslo_messaging_rabbit] options) or
zmq[+redis|+dummy]://... (ZeroMQ with a matchmaker).

commands:
  demo      run a server, a client (call, cast, fanout, failing call), a
            notifier and a listener in one process on the dummy matchmaker
  serve     --url URL [--config FILE] --topic T [--server S] [--script FILE]
            an RPC server with echo, context, fail, sleep and whoami, or
            the methods of a script (YAML or JSON: results, errors, delays,
            matches on args; SIGHUP reloads it; see examples/ci); one
            JSON line per request; stops on SIGINT, SIGTERM or "quit";
            --metrics-addr HOST:PORT serves Prometheus metrics (also on
            listen, proxy and bench rpc-server)
  call      --url URL --topic T [--server S] [--timeout SECONDS] [--version V]
            [--namespace NS] [--context JSON] METHOD [ARGS_JSON]
  cast      the same as call, plus [--fanout]; waits for nothing
  notify    --url URL --topic T --priority P --event-type E [--publisher-id ID]
            [--context JSON] [--driver messaging|messagingv2] PAYLOAD_JSON
            (--driver: the notification format, messagingv2 by default or
            as --config's [oslo_messaging_notifications] driver says;
            accepted and ignored on zmq, which sends both bare)
  listen    --url URL --topic T [--priority P]... [--count N] [--pool NAME]
            (--pool: RabbitMQ only; refused on zmq, which has no pools)
  proxy     [-c CONFIG] [-u URL] [-H HOST] [-f PORT] [-b PORT] [-p PORT] [-lp]
            [-a] [-l LOGFILE] [-d]: oslo-messaging-zmq-proxy's flags and
            [zmq_proxy_opts]; SIGINT and SIGTERM unregister it
  bridge    --url URL_A --url URL_B --topic T [--topic T2...] [--notifications N...]
            [--server [TOPIC:]NAME...] [--group G] [--config FILE] [--metrics-addr HOST:PORT]
            joins two buses: every server of a bridged topic is reachable from
            the other bus under its own name (zmq servers are found in the
            matchmaker, RabbitMQ servers are the --server list, checked by
            passive declares); runs until SIGINT, SIGTERM or "quit", then
            drains (--drain SECONDS); see docs/migration.md
  record    --url URL --topic T [--notifications N]... --out FILE.jsonl
            [--server S --forward TOPIC (zmq)] [--firehose (RabbitMQ)]
            one JSON line per message to T (time, type, target, method,
            args, context, message_id, reply) and per notification; on zmq
            it serves T as S and forwards to the real servers on TOPIC; on
            RabbitMQ it reads a copy through its own queue (replies too
            with --firehose: rabbitmqctl trace_on); stops on SIGINT,
            SIGTERM or "quit"
  replay    --url URL --in FILE.jsonl [--rate N] [--compare] [--topic T]
            [--timeout SECONDS] sends the recorded calls, casts and
            notifications again (--rate: at most N per second); --compare
            prints one JSON line per reply that differs, exit status 1
  bench     rpc-server --url URL --topic T [--server S]
            rpc-client --url URL --topic T [--server S] --mode call|cast
                       --concurrency N --duration SECONDS [--payload-bytes B]
            notify --url URL --topic T --server S --concurrency N --duration SECONDS
                   (INFO notifications to T.info, counted by the rpc-server)
            raw --mode call|cast --concurrency N --duration SECONDS
                (the in-process zmq echo; with --url rabbit://... [--topic T]
                [--server S] [--confirm=false] it calls a raw-server)
            raw-server --url rabbit://... [--topic T] [--server S]
                (the bare amqp091-go echo with the reference's topology;
                prints {"ready": ...}, stops on "quit", SIGINT, SIGTERM)
            (clients print one JSON line: mode, concurrency, duration_s,
            drain_s, sent, received, errors, per_s, p50_us, p99_us; a cast
            or notify rate counts the drain, the time its last messages
            took to arrive after the window)
  version   print the version
`)
}
