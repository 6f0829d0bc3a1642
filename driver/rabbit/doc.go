// Package rabbit is the RabbitMQ (AMQP 0-9-1) driver of goslo, a peer of
// the rabbit driver of oslo.messaging 18.3.1 (kombu 5.7.0, py-amqp 5.4.2).
//
// This package is built in two layers. The files named here are pure: they
// do no I/O, hold no state beyond their arguments, and are tested
// byte-for-byte against the captures of the real Python driver in
// ../shared/vectors/rabbit:
//
//   - names.go: every wire string (exchange, queue, routing key, consumer
//     tag, connection name, client properties), each built by exactly one
//     function;
//   - args.go: AMQP field tables as ordered Args with the field types
//     py-amqp writes (int32 'I', string 'S', bool 't'), convertible to
//     amqp091-go's amqp.Table;
//   - topology.go: the exchange, queue, binding, qos and consume commands
//     each component sends, computed from the [oslo_messaging_rabbit]
//     options (Topology), in the order the Python driver sends them;
//   - body.go: message bodies (RPC request, reply, call-monitor heartbeat,
//     notification; the oslo envelope; kombu's datetime objects;
//     compression) and their properties, with the decoders a receiver
//     needs and their reject rules.
//
// The I/O half (connections, channels, confirms, reconnection with
// github.com/rabbitmq/amqp091-go) lives in the same package and uses only
// these functions to build what it sends.
//
// The wire is specified in the repository's spec file rabbit-wire.md
// (section numbers in comments refer to it), with the shared message
// semantics in oslo-common.md.
//
// Decoders never panic: malformed input yields an error, and errors that
// oblige a receiver to reject a delivery without requeueing it match
// ErrReject (errors.Is), as Python's consumer callback does for every
// message it cannot decode (§8.1).
package rabbit
