package zmq

import "github.com/goslo/goslo/internal/zmqwire"

// MsgType is the zmq driver's message type, the type frame of every
// message (zmq-wire.md §3): what an Observer is told of.
type MsgType = zmqwire.MsgType

// The message types of oslo's zmq_names.
const (
	Call       = zmqwire.Call
	Cast       = zmqwire.Cast
	CastFanout = zmqwire.CastFanout
	Notify     = zmqwire.Notify
	Reply      = zmqwire.Reply
	Ack        = zmqwire.Ack
)

// ErrBadFrames is matched by every *FrameError.
var ErrBadFrames = zmqwire.ErrBadFrames

// FrameError is a multipart message a receiver drops, with the reason a
// Python receiver would log (zmq-wire.md §11).
type FrameError = zmqwire.FrameError
