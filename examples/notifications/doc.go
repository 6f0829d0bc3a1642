// Command notifications prints the nova-style notifications of a bus, as
// a billing or monitoring consumer would: one line per notification with
// its priority, event_type, publisher_id, the request context's user and
// the payload.
//
// It shows the notification half of the public API: a
// goslo.NotificationListener on one topic whose NotificationEndpoint
// filters event types with a regular expression and has one handler per
// priority (info, warn, error).
//
//	go run ./examples/notifications --url 'zmq+redis://127.0.0.1:6379?rpc_zmq_host=127.0.0.1' \
//	    --topic notifications --event 'compute\.instance\..*'
//
// Without --url it uses oslo's default transport, the Redis matchmaker on
// 127.0.0.1:6379. It runs until interrupted. A Python service notifies it
// as it notifies any oslo.messaging listener
// (oslo_messaging.Notifier(transport, publisher_id, driver="messaging",
// topics=["notifications"]).info(ctxt, "compute.instance.create.end", payload)).
// `go test ./examples/notifications` sends notifications through a goslo
// Notifier on the in-process matchmaker and checks what it prints.
package main
