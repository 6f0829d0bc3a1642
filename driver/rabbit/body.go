package rabbit

import (
	"bytes"
	"compress/bzip2"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/goslo/goslo/envelope"
)

// Message properties (§7.1).
const (
	ContentTypeJSON        = "application/json"
	ContentEncodingUTF8    = "utf-8"
	DeliveryModePersistent = 2
	CompressionHeader      = "compression"
	CompressionGzip        = "application/x-gzip" // zlib data, despite the name (§7.6)
	CompressionBZ2         = "application/x-bz2"
)

// MaxBodySize bounds a decompressed body: a receiver refuses (rejects)
// anything larger rather than inflating it.
const MaxBodySize = 64 << 20

// Errors. A decoder error that matches ErrReject means the delivery must be
// rejected without requeue (basic.reject requeue=false), as Python's
// consumer callback does for anything it cannot decode (§8.1 step 2).
var (
	ErrReject         = errors.New("rabbit: undecodable message (reject without requeue)")
	ErrMissingFailure = errors.New("rabbit: reply without 'failure' key (Python raises KeyError: 'failure')")
	ErrBZ2Unsupported = errors.New("rabbit: bz2 compression cannot be written (Go has a bzip2 reader only)")
)

// RejectError is a message a receiver must reject without requeue; Err is
// the reason (for example an *envelope.UnsupportedEnvelopeVersionError).
type RejectError struct{ Err error }

func (e *RejectError) Error() string { return "rabbit: reject: " + e.Err.Error() }
func (e *RejectError) Unwrap() error { return e.Err }

// Is matches ErrReject.
func (e *RejectError) Is(t error) bool { return t == ErrReject }

func reject(format string, a ...any) error { return &RejectError{Err: fmt.Errorf(format, a...)} }

// Properties are the basic properties goslo sets on a publish, and the ones
// a receiver looks at. Headers holds the table as sent: always present
// (empty) on publishes, {compression: ...} when compressed.
type Properties struct {
	ContentType     string
	ContentEncoding string
	Headers         Args
	DeliveryMode    uint8
	Priority        uint8
	Expiration      string // CALL only: the timeout in ms as a decimal string
}

// PublishProperties are kombu's properties for every publish (§7.1):
// application/json, utf-8, headers {} (or {compression}), delivery mode 2,
// priority 0, and for a CALL (callTimeout > 0) expiration
// str(int(timeout·1000)). compressionHeader is CompressionGzip,
// CompressionBZ2 or "".
func PublishProperties(compressionHeader string, callTimeout time.Duration) Properties {
	p := Properties{ContentType: ContentTypeJSON, ContentEncoding: ContentEncodingUTF8, Headers: Args{},
		DeliveryMode: DeliveryModePersistent}
	if compressionHeader != "" {
		p.Headers = Args{{CompressionHeader, compressionHeader}}
	}
	if callTimeout > 0 {
		p.Expiration = strconv.FormatInt(callTimeout.Milliseconds(), 10)
	}
	return p
}

// CompressionHeaderFor maps kombu_compression to the header value:
// "gzip" → CompressionGzip, "bz2" → CompressionBZ2, "" → "".
func CompressionHeaderFor(kombuCompression string) (string, error) {
	switch kombuCompression {
	case "":
		return "", nil
	case "gzip":
		return CompressionGzip, nil
	case "bz2":
		return CompressionBZ2, nil
	}
	return "", fmt.Errorf("rabbit: unknown kombu_compression %q", kombuCompression)
}

// CompressBody compresses an encoded body for the header value given:
// zlib (RFC 1950, Python's zlib.compress level 6 default) for gzip; bz2 is
// refused (ErrBZ2Unsupported; compat.Config.ValidateRabbit refuses it up
// front). "" returns body unchanged.
func CompressBody(body []byte, header string) ([]byte, error) {
	switch header {
	case "":
		return body, nil
	case CompressionGzip:
		var b bytes.Buffer
		w, _ := zlib.NewWriterLevel(&b, 6)
		w.Write(body)
		w.Close()
		return b.Bytes(), nil
	case CompressionBZ2:
		return nil, ErrBZ2Unsupported
	}
	return nil, fmt.Errorf("rabbit: unknown compression %q", header)
}

// DecompressBody undoes the compression named by a delivery's headers
// ("compression"), whatever the receiver's own kombu_compression (§7.6).
// Faults are reject errors.
func DecompressBody(body []byte, headers Args) ([]byte, error) {
	h, ok := headers.Get(CompressionHeader)
	if !ok {
		return body, nil
	}
	var r io.Reader
	switch h {
	case CompressionGzip:
		zr, err := zlib.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, reject("zlib: %v", err)
		}
		r = zr
	case CompressionBZ2:
		r = bzip2.NewReader(bytes.NewReader(body))
	default:
		return nil, reject("unknown compression %v", h)
	}
	out, err := io.ReadAll(io.LimitReader(r, MaxBodySize+1))
	if err != nil {
		return nil, reject("decompress: %v", err)
	}
	if len(out) > MaxBodySize {
		return nil, reject("decompressed body over %d bytes", MaxBodySize)
	}
	return out, nil
}

// decodeBody is kombu's reading of a delivery: the content type must be
// application/json (without it kombu hands over raw bytes and the driver
// rejects, §12), the body is decompressed, decoded (any JSON spacing), and
// kombu's {"__type__", "__value__"} objects become Go values.
func decodeBody(body []byte, p Properties) (any, error) {
	if p.ContentType != ContentTypeJSON {
		return nil, reject("content_type %q is not %s", p.ContentType, ContentTypeJSON)
	}
	body, err := DecompressBody(body, p.Headers)
	if err != nil {
		return nil, err
	}
	v, err := envelope.DecodeJSON(body)
	if err != nil {
		return nil, &RejectError{Err: err}
	}
	return KombuDecode(v), nil
}

// openEnvelope is deserialize_msg: a dict with both envelope keys must be
// version 2.0 (else reject) and its inner message a JSON dict; any other
// dict is a bare (1.0) message.
func openEnvelope(v any) (*envelope.Map, bool, error) {
	m, ok := v.(*envelope.Map)
	if !ok {
		return nil, false, reject("body is not a JSON object")
	}
	enveloped := m.Has(envelope.EnvelopeVersionKey) && m.Has(envelope.EnvelopeMessageKey)
	inner, err := envelope.Unwrap(m)
	if err != nil {
		return nil, enveloped, &RejectError{Err: err}
	}
	im, ok := inner.(*envelope.Map)
	if !ok {
		return nil, enveloped, reject("message is not a JSON object")
	}
	return im, enveloped, nil
}

// Keys the AMQP drivers add to message dicts (§7.3).
const (
	keyMsgID    = "_msg_id"
	keyReplyQ   = "_reply_q"
	keyTimeout  = "_timeout"
	keyUniqueID = "_unique_id"
	ctxPrefix   = "_context_"
)

// Request is an RPC request as the rabbit driver carries it (§7.3).
type Request struct {
	// Message is the request dict without the driver's keys: method, args,
	// [namespace], [version] (envelope.Request.Map builds it; ParseRequest
	// reads it), or whatever else a peer sent, in order.
	Message *envelope.Map
	// Context is the un-flattened context, in order; nil or empty adds no
	// key.
	Context *envelope.Map
	// MsgID and ReplyQ are set for a CALL and empty for a CAST.
	MsgID  string
	ReplyQ string
	// Timeout is the call-monitor timeout of a CALL (an integer) or nil
	// (sent as null). A server sends heartbeats only when it is non-nil.
	Timeout any
	// UniqueID is sent on every message; "" on decode means absent.
	UniqueID string
}

// IsCall reports whether the request expects a reply.
func (r Request) IsCall() bool { return r.MsgID != "" }

// Parse reads Message as the dispatcher does (envelope.ParseRequest).
func (r Request) Parse() (envelope.Request, error) { return envelope.ParseRequest(r.Message) }

// Map flattens the request into the dict Python sends: Message's keys,
// then _msg_id, _reply_q, _timeout (CALL), _unique_id, _context_<key>...
func (r Request) Map() *envelope.Map {
	m := envelope.MapWithCap(r.Message.Len() + 4 + r.Context.Len())
	for _, kv := range r.Message.Items() {
		m.Append(kv.Key, kv.Value)
	}
	if r.IsCall() {
		m.Append(keyMsgID, r.MsgID)
		m.Append(keyReplyQ, r.ReplyQ)
		m.Append(keyTimeout, r.Timeout)
	}
	if r.UniqueID != "" {
		m.Append(keyUniqueID, r.UniqueID)
	}
	for _, kv := range r.Context.Items() {
		m.Append(ctxPrefix+kv.Key, kv.Value)
	}
	return m
}

// EncodeRequest writes the body of an RPC request: always enveloped
// ({"oslo.version": "2.0", "oslo.message": "<inner JSON>"}), with Python's
// separators and escaping.
func EncodeRequest(r Request) ([]byte, error) {
	return encodeEnveloped(r.Map())
}

func encodeEnveloped(inner *envelope.Map) ([]byte, error) {
	w, err := envelope.Wrap(inner)
	if err != nil {
		return nil, err
	}
	return envelope.MarshalJSON(w)
}

// DecodeRequest reads a delivery at an RPC server (§8.1): content type,
// compression, JSON, envelope (2.0 only, or a bare dict), then the
// driver's keys are taken out and the context un-flattened. Every error
// matches ErrReject.
func DecodeRequest(body []byte, p Properties) (Request, error) {
	v, err := decodeBody(body, p)
	if err != nil {
		return Request{}, err
	}
	m, _, err := openEnvelope(v)
	if err != nil {
		return Request{}, err
	}
	return splitMessage(m), nil
}

// splitMessage takes the driver's keys out of a message dict and
// un-flattens its context.
func splitMessage(m *envelope.Map) Request {
	var r Request
	r.Message = envelope.MapWithCap(4)
	for _, kv := range m.Items() {
		switch {
		case kv.Key == keyMsgID:
			r.MsgID = textOf(kv.Value)
		case kv.Key == keyReplyQ:
			r.ReplyQ = textOf(kv.Value)
		case kv.Key == keyTimeout:
			r.Timeout = kv.Value
		case kv.Key == keyUniqueID:
			r.UniqueID = textOf(kv.Value)
		case strings.HasPrefix(kv.Key, ctxPrefix):
			if r.Context == nil {
				r.Context = envelope.MapWithCap(8)
			}
			r.Context.Set(kv.Key[len(ctxPrefix):], kv.Value)
		default:
			r.Message.Append(kv.Key, kv.Value)
		}
	}
	return r
}

// textOf is a string value, or its JSON text for anything else (Python
// would carry any value; goslo compares ids as strings).
func textOf(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case nil:
		return ""
	}
	b, _ := envelope.MarshalJSON(v)
	return string(b)
}

// Reply is an RPC reply or call-monitor heartbeat (§7.4).
type Reply struct {
	Result any
	// Failure is the serialized remote exception (envelope.MarshalFailure)
	// or nil.
	Failure  any
	Ending   bool
	MsgID    string
	UniqueID string
}

// Heartbeat is the call-monitor heartbeat for a request: result and
// failure null, ending false. Send it only when the request's Timeout is
// non-nil (§8.4, §9.1).
func Heartbeat(msgID, uniqueID string) Reply { return Reply{MsgID: msgID, UniqueID: uniqueID} }

// IsHeartbeat reports a call-monitor heartbeat.
func (r Reply) IsHeartbeat() bool { return !r.Ending && r.Result == nil && r.Failure == nil }

// Map is the reply dict in Python's key order.
func (r Reply) Map() *envelope.Map {
	return envelope.NewMap("result", r.Result, "failure", r.Failure, "ending", r.Ending,
		keyMsgID, r.MsgID, keyUniqueID, r.UniqueID)
}

// EncodeReply writes an enveloped reply body.
func EncodeReply(r Reply) ([]byte, error) { return encodeEnveloped(r.Map()) }

// DecodeReply reads a delivery on a reply queue (§9.1): enveloped or bare,
// any spacing. A reply without "failure" gives ErrMissingFailure (the
// Python caller gets KeyError: 'failure'); a missing "ending" is false (the
// Python caller keeps waiting); a missing "result" is nil. Undecodable
// bodies match ErrReject (the Python client acks every reply anyway).
func DecodeReply(body []byte, p Properties) (Reply, error) {
	v, err := decodeBody(body, p)
	if err != nil {
		return Reply{}, err
	}
	m, _, err := openEnvelope(v)
	if err != nil {
		return Reply{}, err
	}
	var r Reply
	r.Result, _ = m.Get("result")
	f, ok := m.Get("failure")
	if !ok {
		return Reply{}, ErrMissingFailure
	}
	r.Failure = f
	r.Ending = truthy(m, "ending")
	if v, ok := m.Get(keyMsgID); ok {
		r.MsgID = textOf(v)
	}
	if v, ok := m.Get(keyUniqueID); ok {
		r.UniqueID = textOf(v)
	}
	return r, nil
}

func truthy(m *envelope.Map, k string) bool {
	v, _ := m.Get(k)
	switch x := v.(type) {
	case bool:
		return x
	case nil:
		return false
	case string:
		return x != ""
	case int64:
		return x != 0
	case float64:
		return x != 0
	}
	return true
}

// ReplyWaiter folds the replies of one call as the Python client does
// (§9.1): heartbeats restart the call-monitor timer, a non-null result
// with ending false is kept (servers before 4.0.0 sent the result, then an
// ending-only message), and the call completes on ending with the last
// non-null result, or with the failure.
type ReplyWaiter struct {
	result any
}

// Add takes one reply. done is true when the call is complete; then
// failure is the remote exception string (nil on success) and result the
// value. heartbeat is true for a call-monitor heartbeat.
func (w *ReplyWaiter) Add(r Reply) (done, heartbeat bool, result, failure any) {
	if f, ok := r.Failure.(string); ok && f != "" {
		return true, false, nil, f
	}
	if !r.Ending {
		if r.Result == nil {
			return false, true, nil, nil
		}
		w.result = r.Result
		return false, false, nil, nil
	}
	if r.Result != nil {
		return true, false, r.Result, nil
	}
	return true, false, w.result, nil
}

// Notification is a notification message as the rabbit driver carries it
// (§7.5).
type Notification struct {
	// Message is the notification dict (envelope.Notification.Map), in
	// order.
	Message  *envelope.Map
	UniqueID string
	// Context is the un-flattened context; plain-dict contexts are
	// dropped by 14.4.0+ Python notifiers (§9.2), so it is usually nil.
	Context *envelope.Map
}

// Map flattens the notification: its keys, _unique_id, _context_<key>...
func (n Notification) Map() *envelope.Map {
	return Request{Message: n.Message, UniqueID: n.UniqueID, Context: n.Context}.Map()
}

// EncodeNotification writes a notification body: enveloped for the
// messagingv2 driver (v2 true), else bare with kombu's encoding of time
// values ({"__type__": "datetime", "__value__": isoformat}).
func EncodeNotification(n Notification, v2 bool) ([]byte, error) {
	if v2 {
		return encodeEnveloped(n.Map())
	}
	return envelope.MarshalJSON(KombuEncode(n.Map()))
}

// DecodeNotification reads a delivery at a notification listener (§10.1):
// the decode and reject rules of DecodeRequest, enveloped or bare. v2
// reports whether it was enveloped.
func DecodeNotification(body []byte, p Properties) (n Notification, v2 bool, err error) {
	v, err := decodeBody(body, p)
	if err != nil {
		return Notification{}, false, err
	}
	m, v2, err := openEnvelope(v)
	if err != nil {
		return Notification{}, false, err
	}
	r := splitMessage(m)
	return Notification{Message: r.Message, UniqueID: r.UniqueID, Context: r.Context}, v2, nil
}

// KombuEncode returns v with every time.Time replaced by kombu's
// {"__type__": "datetime", "__value__": isoformat()} and every
// envelope.Date by {"__type__": "date", ...}: what kombu's JSON encoder
// writes for bare bodies (§7.2). Maps and lists are copied, not modified.
func KombuEncode(v any) any {
	switch x := v.(type) {
	case time.Time:
		return envelope.NewMap("__type__", "datetime", "__value__", isoformat(x))
	case envelope.Date:
		return envelope.NewMap("__type__", "date", "__value__", fmt.Sprintf("%04d-%02d-%02d", x.Year, int(x.Month), x.Day))
	case *envelope.Map:
		if x == nil {
			return v
		}
		m := envelope.MapWithCap(x.Len())
		for _, kv := range x.Items() {
			m.Append(kv.Key, KombuEncode(kv.Value))
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i := range x {
			l[i] = KombuEncode(x[i])
		}
		return l
	}
	return v
}

// KombuDecode returns v with kombu's datetime and date objects (a dict of
// exactly "__type__" and "__value__") turned into time.Time (UTC location
// for a naive value) and envelope.Date, anywhere in the value, as Python
// receivers using kombu do. Objects of other types, or that do not parse,
// stay dicts.
func KombuDecode(v any) any {
	switch x := v.(type) {
	case *envelope.Map:
		if x.Len() == 2 {
			typ, _ := x.Get("__type__")
			val, ok := x.Get("__value__")
			s, isStr := val.(string)
			if ok && isStr {
				switch typ {
				case "datetime":
					if t, err := parseISO(s); err == nil {
						return t
					}
				case "date":
					if t, err := time.Parse("2006-01-02", s); err == nil {
						return envelope.Date{Year: t.Year(), Month: t.Month(), Day: t.Day()}
					}
				}
			}
		}
		var m *envelope.Map
		for i, kv := range x.Items() {
			nv := KombuDecode(kv.Value)
			if m == nil && !sameValue(nv, kv.Value) {
				m = envelope.MapWithCap(x.Len())
				for _, prev := range x.Items()[:i] {
					m.Append(prev.Key, prev.Value)
				}
			}
			if m != nil {
				m.Append(kv.Key, nv)
			}
		}
		if m != nil {
			return m
		}
	case []any:
		for i := range x {
			x[i] = KombuDecode(x[i])
		}
	}
	return v
}

func sameValue(a, b any) bool {
	ma, ok1 := a.(*envelope.Map)
	mb, ok2 := b.(*envelope.Map)
	if ok1 || ok2 {
		return ok1 && ok2 && ma == mb
	}
	_, t1 := a.(time.Time)
	_, t2 := b.(time.Time)
	_, d1 := a.(envelope.Date)
	_, d2 := b.(envelope.Date)
	return !(t1 || t2 || d1 || d2)
}

// isoformat is Python's datetime.isoformat(): fraction only when the
// microseconds are not zero; "+HH:MM" for an aware (non-UTC location)
// value.
func isoformat(t time.Time) string {
	s := t.Format("2006-01-02T15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	if t.Location() != time.UTC {
		s += t.Format("-07:00")
	}
	return s
}

func parseISO(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05.999999", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999-07:00", "2006-01-02T15:04:05-07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not an isoformat datetime: %q", s)
}
