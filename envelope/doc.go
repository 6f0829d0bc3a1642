// Package envelope turns oslo.messaging payloads into Go values and back,
// byte for byte as the Python reference writes them.
//
// It holds the two codecs of the zmq driver (rpc_zmq_serialization = json or
// msgpack), which reproduce oslo.serialization's jsonutils.dumps and
// msgpackutils.dumps exactly; the value model they share (see value.go: an
// ordered Map for dicts, and a Go type for every Python type the codecs move);
// the message shapes (the RPC request dict, the [context, message] request
// pair, the [reply_body, failure] reply pair and the notification dict); the
// oslo envelope 2.0 used by AMQP drivers and bridges; and the remote-exception
// failure string.
//
// Decoders never panic: every malformed input yields a *DecodeError naming the
// codec, the offset and what is wrong. Encoders refuse values Python could not
// have produced (an *EncodeError) rather than writing bytes no peer would.
//
// The protocol is described in the repository's spec files; see oslo-common.md
// §2–§9 and zmq-wire.md §7.
package envelope
