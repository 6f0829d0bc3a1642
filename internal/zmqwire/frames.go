package zmqwire

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/goslo/goslo/compat"
)

// MessageVersion is the zmq driver's message version, the literal frame
// "1.0" of every message (zmq-wire.md §3).
const MessageVersion = "1.0"

// MsgType is the message type frame: the ASCII decimal of the type.
type MsgType int

// The message types of oslo's zmq_names.
const (
	Call       MsgType = 1
	Cast       MsgType = 2
	CastFanout MsgType = 3
	Notify     MsgType = 4
	Reply      MsgType = 5
	Ack        MsgType = 6
)

func (t MsgType) String() string {
	switch t {
	case Call:
		return "CALL"
	case Cast:
		return "CAST"
	case CastFanout:
		return "CAST_FANOUT"
	case Notify:
		return "NOTIFY"
	case Reply:
		return "REPLY"
	case Ack:
		return "ACK"
	}
	return "TYPE(" + strconv.Itoa(int(t)) + ")"
}

// IsRequest reports types 1–4; IsMultisend types 3 and 4.
func (t MsgType) IsRequest() bool   { return t >= Call && t <= Notify }
func (t MsgType) IsMultisend() bool { return t == CastFanout || t == Notify }
func (t MsgType) IsResponse() bool  { return t == Reply || t == Ack }

// Frame returns the canonical type frame ("1" … "6").
func (t MsgType) Frame() []byte { return []byte{byte('0' + t)} }

var (
	versionFrame = []byte(MessageVersion)
	emptyFrame   = []byte{}
)

// ErrBadFrames is matched by every *FrameError.
var ErrBadFrames = errors.New("driver: malformed message")

// FrameError is a multipart message a receiver drops, with the reason a
// Python receiver would log (zmq-wire.md §11).
type FrameError struct {
	Hop    string // "direct server", "proxy server", "client", "proxy", "sub"
	MsgID  string // when it could be read
	Reason string
}

func (e *FrameError) Error() string {
	s := "driver: " + e.Hop + " dropped a message: " + e.Reason
	if e.MsgID != "" {
		s += " (message " + e.MsgID + ")"
	}
	return s
}

// Is matches ErrBadFrames.
func (e *FrameError) Is(t error) bool { return t == ErrBadFrames }

// ParseType reads a type frame as Python's int() does ("01" and " 1" are
// accepted by Python receivers, so they are here).
func ParseType(b []byte) (MsgType, bool) {
	if len(b) == 1 && b[0] >= '0' && b[0] <= '9' { // the canonical form
		return MsgType(b[0] - '0'), true
	}
	n, ok := compat.PyInt(string(b))
	if !ok || !n.IsInt64() || n.Int64() < 0 || n.Int64() > 1<<20 {
		return 0, false
	}
	return MsgType(n.Int64()), true
}

// withMsgID fills in a *FrameError's MsgID from frames[i] when that frame
// is there and reads as an id, so that a drop's log line names the
// message even when another frame was wrong (deferred by the parsers).
func withMsgID(err *error, frames [][]byte, i int) {
	var fe *FrameError
	if *err == nil || !errors.As(*err, &fe) || fe.MsgID != "" || i >= len(frames) || len(frames[i]) > maxLoggedID {
		return
	}
	if id, ok := ReadMsgID(frames[i]); ok {
		fe.MsgID = id
	}
}

// maxLoggedID bounds an id copied into a FrameError (oslo's are UUIDs).
const maxLoggedID = 256

// ReadMsgID reads a message id frame: non-empty UTF-8.
func ReadMsgID(b []byte) (string, bool) {
	if len(b) == 0 || !utf8.Valid(b) {
		return "", false
	}
	return string(b), true
}

// Incoming is a request as a server receives it.
type Incoming struct {
	// Identity is the sender's routing identity: the client DEALER's (direct
	// mode, prepended by the ROUTER) or the reply id frame (proxy mode).
	Identity []byte
	Type     MsgType
	MsgID    string
	Payload  []byte
}

// Response is a REPLY or an ACK as a client receives it.
type Response struct {
	// Sender is the address frame of a proxy-mode response (the server's
	// DEALER identity, or the proxy's own for a pub/sub ack); nil in direct mode.
	Sender  []byte
	Type    MsgType
	MsgID   string
	Payload []byte // nil for an ACK
}

// DirectRequest builds the frames a direct-mode client DEALER sends:
// "" · 1.0 · type · msgid · payload.
func DirectRequest(t MsgType, id string, payload []byte) [][]byte {
	return [][]byte{emptyFrame, versionFrame, t.Frame(), []byte(id), payload}
}

// ParseDirectRequest reads what a direct-mode server ROUTER receives:
// identity · "" · 1.0 · type · msgid · payload, with the checks of the
// reference's RouterConsumer.
func ParseDirectRequest(frames [][]byte) (_ *Incoming, err error) {
	defer withMsgID(&err, frames, 4)
	const hop = "direct server"
	if len(frames) < 1 || len(frames[0]) == 0 {
		return nil, &FrameError{Hop: hop, Reason: "Empty routing identity"}
	}
	if len(frames) < 2 || len(frames[1]) != 0 {
		return nil, &FrameError{Hop: hop, Reason: "Empty delimiter expected!"}
	}
	if len(frames) < 3 || string(frames[2]) != MessageVersion {
		v := ""
		if len(frames) >= 3 {
			v = string(frames[2])
		}
		return nil, &FrameError{Hop: hop, Reason: fmt.Sprintf("Message version %s is not supported.", v)}
	}
	if len(frames) != 6 {
		return nil, &FrameError{Hop: hop, Reason: fmt.Sprintf("%d frames, expected 6", len(frames))}
	}
	return requestTail(hop, frames, frames[0])
}

// requestTail reads the type · msgid · payload that end both modes'
// six-frame requests (frames[3:6]), the sender being identity.
func requestTail(hop string, frames [][]byte, identity []byte) (*Incoming, error) {
	t, ok := ParseType(frames[3])
	if !ok || !t.IsRequest() {
		return nil, &FrameError{Hop: hop, Reason: "Request expected!"}
	}
	id, ok := ReadMsgID(frames[4])
	if !ok {
		return nil, &FrameError{Hop: hop, Reason: "Message id expected!"}
	}
	return &Incoming{Identity: identity, Type: t, MsgID: id, Payload: frames[5]}, nil
}

// DirectReply builds what a direct-mode server ROUTER sends for a CALL:
// identity · "" · 1.0 · 5 · msgid · payload (the identity is consumed by
// the ROUTER for routing).
func DirectReply(identity []byte, id string, payload []byte) [][]byte {
	return [][]byte{identity, emptyFrame, versionFrame, Reply.Frame(), []byte(id), payload}
}

// ParseDirectResponse reads what a direct-mode client DEALER receives:
// "" · 1.0 · 5 · msgid · payload.
func ParseDirectResponse(frames [][]byte) (_ *Response, err error) {
	defer withMsgID(&err, frames, 3)
	const hop = "client"
	if len(frames) < 1 || len(frames[0]) != 0 {
		return nil, &FrameError{Hop: hop, Reason: "Empty delimiter expected!"}
	}
	if len(frames) < 2 || string(frames[1]) != MessageVersion {
		return nil, &FrameError{Hop: hop, Reason: "Message version is not supported."}
	}
	if len(frames) < 3 {
		return nil, &FrameError{Hop: hop, Reason: "Response expected!"}
	}
	t, ok := ParseType(frames[2])
	if !ok || !t.IsResponse() {
		return nil, &FrameError{Hop: hop, Reason: "Response expected!"}
	}
	if len(frames) < 4 {
		return nil, &FrameError{Hop: hop, Reason: "Message id expected!"}
	}
	id, ok := ReadMsgID(frames[3])
	if !ok {
		return nil, &FrameError{Hop: hop, Reason: "Message id expected!"}
	}
	r := &Response{Type: t, MsgID: id}
	switch {
	case t == Reply && len(frames) == 5:
		r.Payload = frames[4]
	case t == Ack && len(frames) == 4:
	default:
		return nil, &FrameError{Hop: hop, MsgID: id, Reason: fmt.Sprintf("%d frames for a %s", len(frames), t)}
	}
	return r, nil
}

// ProxyRequest builds what a proxy-mode client DEALER sends to a proxy
// frontend: "" · 1.0 · type · routing key · msgid · payload.
func ProxyRequest(t MsgType, key []byte, id string, payload []byte) [][]byte {
	return [][]byte{emptyFrame, versionFrame, t.Frame(), key, []byte(id), payload}
}

// ParseProxyServerRequest reads what a proxy-mode server DEALER receives
// from a proxy backend: "" · 1.0 · reply id · type · msgid · payload.
func ParseProxyServerRequest(frames [][]byte) (_ *Incoming, err error) {
	defer withMsgID(&err, frames, 4)
	const hop = "proxy server"
	if len(frames) < 1 || len(frames[0]) != 0 {
		return nil, &FrameError{Hop: hop, Reason: "Empty delimiter expected!"}
	}
	if len(frames) < 2 || string(frames[1]) != MessageVersion {
		return nil, &FrameError{Hop: hop, Reason: "Message version is not supported."}
	}
	if len(frames) != 6 {
		return nil, &FrameError{Hop: hop, Reason: fmt.Sprintf("%d frames, expected 6", len(frames))}
	}
	if len(frames[2]) == 0 {
		return nil, &FrameError{Hop: hop, Reason: "Reply id expected!"}
	}
	return requestTail(hop, frames, frames[2])
}

// ProxyReply builds a proxy-mode server's REPLY: "" · 1.0 · 5 · reply id ·
// msgid · payload.
func ProxyReply(replyID []byte, id string, payload []byte) [][]byte {
	return [][]byte{emptyFrame, versionFrame, Reply.Frame(), replyID, []byte(id), payload}
}

// ProxyAck builds a proxy-mode server's ACK: "" · 1.0 · 6 · reply id · msgid.
func ProxyAck(replyID []byte, id string) [][]byte {
	return [][]byte{emptyFrame, versionFrame, Ack.Frame(), replyID, []byte(id)}
}

// ParseProxyResponse reads what a proxy-mode client DEALER receives:
// "" · 1.0 · sender · 5|6 · msgid [· payload].
func ParseProxyResponse(frames [][]byte) (_ *Response, err error) {
	defer withMsgID(&err, frames, 4)
	const hop = "client"
	if len(frames) < 1 || len(frames[0]) != 0 {
		return nil, &FrameError{Hop: hop, Reason: "Empty delimiter expected!"}
	}
	if len(frames) < 2 || string(frames[1]) != MessageVersion {
		return nil, &FrameError{Hop: hop, Reason: "Message version is not supported."}
	}
	if len(frames) < 3 || len(frames[2]) == 0 {
		return nil, &FrameError{Hop: hop, Reason: "Reply id expected!"}
	}
	if len(frames) < 4 {
		return nil, &FrameError{Hop: hop, Reason: "Response expected!"}
	}
	t, ok := ParseType(frames[3])
	if !ok || !t.IsResponse() {
		return nil, &FrameError{Hop: hop, Reason: "Response expected!"}
	}
	if len(frames) < 5 {
		return nil, &FrameError{Hop: hop, Reason: "Message id expected!"}
	}
	id, ok := ReadMsgID(frames[4])
	if !ok {
		return nil, &FrameError{Hop: hop, Reason: "Message id expected!"}
	}
	r := &Response{Sender: frames[2], Type: t, MsgID: id}
	switch {
	case t == Reply && len(frames) == 6:
		r.Payload = frames[5]
	case t == Ack && len(frames) == 5:
	default:
		return nil, &FrameError{Hop: hop, MsgID: id, Reason: fmt.Sprintf("%d frames for a %s", len(frames), t)}
	}
	return r, nil
}

// ProxyRoute applies the proxy's single routing rule to what a proxy
// ROUTER received, [sender, "", ver, type, key, mid, rest...], giving what
// it writes on the other ROUTER, [key, "", ver, sender, type, mid, rest...]
// (type and address swap places). It returns the type, for the pub/sub
// decision, and a *FrameError for what the reference proxy drops.
func ProxyRoute(frames [][]byte) ([][]byte, MsgType, error) {
	t, err := CheckProxyInput(frames)
	if err != nil {
		return nil, 0, err
	}
	out := make([][]byte, len(frames))
	copy(out, frames)
	SwapRoute(out)
	return out, t, nil
}

// CheckProxyInput applies the reference proxy's checks to what a proxy
// ROUTER received.
func CheckProxyInput(frames [][]byte) (_ MsgType, err error) {
	defer withMsgID(&err, frames, 5)
	const hop = "proxy"
	if len(frames) < 6 {
		return 0, &FrameError{Hop: hop, Reason: fmt.Sprintf("%d frames, expected at least 6", len(frames))}
	}
	if len(frames[1]) != 0 {
		return 0, &FrameError{Hop: hop, Reason: "Empty delimiter expected!"}
	}
	t, ok := ParseType(frames[3])
	if !ok || t < Call || t > Ack {
		return 0, &FrameError{Hop: hop, Reason: "Unknown message type"}
	}
	if string(frames[2]) != MessageVersion {
		return 0, &FrameError{Hop: hop, Reason: "Dropping message with unsupported version " + strconv.Quote(string(frames[2]))}
	}
	return t, nil
}

// SwapRoute turns [sender, "", ver, type, key, mid, rest...] into
// [key, "", ver, sender, type, mid, rest...] in place.
func SwapRoute(f [][]byte) {
	f[0], f[4] = f[4], f[0]
	f[3], f[4] = f[4], f[3]
}

// Publish builds what the proxy PUB sends for a fanout or notification:
// topic · 1.0 · type · msgid · payload.
func Publish(topic []byte, t MsgType, id string, payload []byte) [][]byte {
	return [][]byte{topic, versionFrame, t.Frame(), []byte(id), payload}
}

// ParseSub reads what a SUB consumer receives; as in the reference the
// topic and message id are not checked beyond their presence.
func ParseSub(frames [][]byte) (_ *Incoming, _ []byte, err error) {
	defer withMsgID(&err, frames, 3)
	const hop = "sub"
	if len(frames) != 5 {
		return nil, nil, &FrameError{Hop: hop, Reason: fmt.Sprintf("%d frames, expected 5", len(frames))}
	}
	if string(frames[1]) != MessageVersion {
		return nil, nil, &FrameError{Hop: hop, Reason: "Message version is not supported."}
	}
	t, ok := ParseType(frames[2])
	if !ok || !t.IsMultisend() {
		return nil, nil, &FrameError{Hop: hop, Reason: "Fanout or notification expected!"}
	}
	return &Incoming{Type: t, MsgID: string(frames[3]), Payload: frames[4]}, frames[0], nil
}
