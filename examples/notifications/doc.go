// Command notifications prints the nova-style notifications of a bus, as
// a billing or monitoring consumer would: one line per notification with
// its priority, event_type, publisher_id and payload.
//
//	go run ./examples/notifications --url 'zmq+redis://127.0.0.1:6379?rpc_zmq_host=127.0.0.1' \
//	    --topic notifications --event 'compute\.instance\..*'
//
// A Python service notifies it as it notifies any oslo.messaging listener
// (oslo_messaging.Notifier(transport, publisher_id, driver="messaging",
// topics=["notifications"]).info(ctxt, "compute.instance.create.end", payload)).
package main
