// Command goslo is the command-line face of goslo.
//
// Commands:
//
//	goslo demo      one process: server, client, notifier and listener on real zmq sockets
//	goslo serve     an RPC server with a built-in endpoint (echo, context, fail, sleep, whoami) or a scripted one (--script)
//	goslo call      call a method and print its result as JSON
//	goslo cast      cast a method
//	goslo notify    send a notification
//	goslo listen    print notifications as JSON lines
//	goslo proxy     a drop-in for oslo-messaging-zmq-proxy (same flags and config)
//	goslo bridge    join two buses (zmq and RabbitMQ, or two of a kind) for a migration
//	goslo record    write the traffic of a topic (and notification topics) as JSON lines
//	goslo replay    send a recording again; --compare reports every reply that differs
//	goslo bench     rpc-server, rpc-client and the raw zmq and rabbit baselines, in the style of oslo's simulator
//	goslo version   the goslo version and the oslo.messaging release it follows
package main
