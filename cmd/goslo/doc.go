// Command goslo is the command-line face of goslo: it serves, calls,
// casts, notifies, listens, proxies, bridges, records, replays and
// benchmarks on an OpenStack RPC bus, as a peer of Python oslo.messaging
// services.
//
// Usage:
//
//	goslo <command> [flags]
//
// The commands, in the order of `goslo help`, which prints every flag:
//
//	goslo demo      one process: server, client (call, cast, fanout, failing call), notifier and listener on the dummy matchmaker
//	goslo serve     an RPC server with a built-in endpoint (echo, context, fail, sleep, whoami) or a scripted one (--script)
//	goslo call      call a method and print its result as JSON
//	goslo cast      cast a method (--fanout to every server of the topic)
//	goslo notify    send a notification
//	goslo listen    print notifications as JSON lines
//	goslo proxy     a drop-in for oslo-messaging-zmq-proxy (same flags and config)
//	goslo bridge    join two buses (zmq and RabbitMQ, or two of a kind) for a migration
//	goslo record    write the traffic of a topic (and notification topics) as JSON lines
//	goslo replay    send a recording again; --compare reports every reply that differs
//	goslo bench     rpc-server, rpc-client, notify, raw and raw-server, in the style of oslo's simulator
//	goslo version   the goslo version and the oslo.messaging release it follows
//
// The --url of a command is a transport URL:
// rabbit://user:pass@host:port[,host:port...]/vhost for RabbitMQ (its
// query parameters set [oslo_messaging_rabbit] options), or
// zmq[+redis|+dummy]://... for ZeroMQ with a matchmaker; --config FILE
// reads an oslo INI configuration file. docs/operations.md and docs/migration.md describe
// running the server, the proxy and the bridge; `make demo` runs
// `goslo demo`.
//
// GOSLO_CPUPROFILE, when set, names a file that receives a CPU profile of
// the whole run.
package main
