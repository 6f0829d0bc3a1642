// Package zmqwire builds and parses the multipart messages of
// oslo.messaging 8.1.4's zmq driver, hop by hop (zmq-wire.md §3–§11), and
// makes the ids they carry: str(uuid.uuid1()) message ids and
// str(uuid.uuid4()) identities. Only driver/zmq (and goslo's tests) use
// it; driver/zmq re-exports what its API names: MsgType with its values,
// FrameError and ErrBadFrames.
package zmqwire
