package envelope

import (
	"fmt"
	"strings"
	"time"
)

// Request is the RPC message dict built by oslo's RPCClient: method, args
// (keyword arguments in call order), and namespace and version, each sent
// only when set. An empty Namespace or Version means "not sent" (None).
type Request struct {
	Method    string
	Args      *Map
	Namespace string
	Version   string
}

// Map returns the message dict in the reference's key order:
// method, args, [namespace], [version]. A nil Args is sent as {}.
func (r Request) Map() *Map {
	m := MapWithCap(4)
	m.Append("method", r.Method)
	args := r.Args
	if args == nil {
		args = &Map{}
	}
	m.Append("args", args)
	if r.Namespace != "" {
		m.Append("namespace", r.Namespace)
	}
	if r.Version != "" {
		m.Append("version", r.Version)
	}
	return m
}

// DispatchVersion is the version the dispatcher matches: the sent one, or
// "1.0" when none was sent.
func (r Request) DispatchVersion() string {
	if r.Version == "" {
		return "1.0"
	}
	return r.Version
}

// ParseRequest reads a message dict as oslo's dispatcher does
// (msg.get("method"), msg.get("args", {}), ...). A message that is not a dict
// or has a non-string method or version, or non-dict args, is an error: the
// reference raises in the dispatcher and the caller gets it as a failure.
func ParseRequest(msg any) (Request, error) {
	m, ok := msg.(*Map)
	if !ok {
		return Request{}, &DecodeError{Codec: "request", Offset: -1, Reason: fmt.Sprintf("message is %s, not a dict", typeName(msg))}
	}
	var r Request
	for _, kv := range m.Items() {
		switch kv.Key {
		case "method", "namespace", "version":
			if kv.Value == nil {
				continue
			}
			s, ok := kv.Value.(string)
			if !ok {
				return Request{}, &DecodeError{Codec: "request", Offset: -1, Reason: fmt.Sprintf("%q is %s, not a string", kv.Key, typeName(kv.Value))}
			}
			switch kv.Key {
			case "method":
				r.Method = s
			case "namespace":
				r.Namespace = s
			default:
				r.Version = s
			}
		case "args":
			if kv.Value == nil {
				continue
			}
			a, ok := kv.Value.(*Map)
			if !ok {
				return Request{}, &DecodeError{Codec: "request", Offset: -1, Reason: fmt.Sprintf(`"args" is %s, not a dict`, typeName(kv.Value))}
			}
			r.Args = a
		}
	}
	if r.Args == nil {
		r.Args = &Map{}
	}
	return r, nil
}

// AppendPair appends the two-element array [a, b] in codec c: the payload
// frame of every zmq message ([context, message] or [reply_body, failure]).
func AppendPair(c Codec, dst []byte, a, b any) ([]byte, error) {
	return c.Append(dst, []any{a, b})
}

// DecodePair reads a payload frame that must be a two-element array, as
// every zmq receiver requires (zmq-wire.md §11).
func DecodePair(c Codec, payload []byte) (any, any, error) {
	v, err := c.Decode(payload)
	if err != nil {
		return nil, nil, err
	}
	l, ok := v.([]any)
	if !ok || len(l) != 2 {
		n := -1
		if ok {
			n = len(l)
		}
		reason := fmt.Sprintf("payload is %s, not a 2-element array", typeName(v))
		if n >= 0 {
			reason = fmt.Sprintf("payload is a %d-element array, not 2", n)
		}
		return nil, nil, &DecodeError{Codec: c.Name(), Offset: -1, Reason: reason}
	}
	return l[0], l[1], nil
}

// EncodeRequest writes the payload [context, message] of a request.
func EncodeRequest(c Codec, ctx any, r Request) ([]byte, error) {
	if ctx == nil {
		ctx = &Map{}
	}
	return AppendPair(c, nil, ctx, r.Map())
}

// EncodeReply writes the payload [reply_body, failure] of a reply; failure
// is sent as null when err is nil, and then body is the result.
func EncodeReply(c Codec, body any, err error) ([]byte, error) {
	if err == nil {
		return AppendPair(c, nil, body, nil)
	}
	f, ferr := MarshalFailure(err)
	if ferr != nil {
		return nil, ferr
	}
	return AppendPair(c, nil, nil, f)
}

// DecodeReply reads a reply payload. As in the reference a failure is
// raised only when it is truthy (a non-empty string); then the returned error
// is a *RemoteError. A failure that is not a string is a *DecodeError.
func DecodeReply(c Codec, payload []byte) (body any, remote *RemoteError, err error) {
	body, failure, err := DecodePair(c, payload)
	if err != nil {
		return nil, nil, err
	}
	switch f := failure.(type) {
	case nil:
		return body, nil, nil
	case string:
		if f == "" {
			return body, nil, nil
		}
		re, err := ParseFailure(f)
		if err != nil {
			return nil, nil, err
		}
		return nil, re, nil
	case []byte: // a Python 2 msgpack peer sends text as bin
		if len(f) == 0 {
			return body, nil, nil
		}
		re, err := ParseFailure(string(f))
		if err != nil {
			return nil, nil, err
		}
		return nil, re, nil
	}
	return nil, nil, &DecodeError{Codec: c.Name(), Offset: -1, Reason: fmt.Sprintf("reply failure is %s, not a string or null", typeName(failure))}
}

// Notification priorities, upper case as in the message dict.
const (
	PriorityAudit    = "AUDIT"
	PriorityDebug    = "DEBUG"
	PriorityInfo     = "INFO"
	PriorityWarn     = "WARN"
	PriorityError    = "ERROR"
	PriorityCritical = "CRITICAL"
	PrioritySample   = "SAMPLE"
)

// Priorities lists every priority in oslo's order.
var Priorities = []string{PriorityAudit, PriorityDebug, PriorityInfo, PriorityWarn, PriorityError, PriorityCritical, PrioritySample}

// NormalizePriority returns the upper-case priority for any spelling
// ("info", "warning"), or an error for an unknown one.
func NormalizePriority(p string) (string, error) {
	u := strings.ToUpper(p)
	if u == "WARNING" {
		u = PriorityWarn
	}
	for _, q := range Priorities {
		if q == u {
			return u, nil
		}
	}
	return "", fmt.Errorf("envelope: unknown notification priority %q", p)
}

// Notification is the message dict of Notifier._notify.
type Notification struct {
	MessageID   string // uuid4, hyphenated
	PublisherID string
	EventType   string
	Priority    string // upper case
	Payload     any
	Timestamp   string // FormatTimestamp(utcnow)
}

// Map returns the dict with keys in the reference's order.
func (n Notification) Map() *Map {
	m := MapWithCap(6)
	m.Append("message_id", n.MessageID)
	m.Append("publisher_id", n.PublisherID)
	m.Append("event_type", n.EventType)
	m.Append("priority", n.Priority)
	m.Append("payload", n.Payload)
	m.Append("timestamp", n.Timestamp)
	return m
}

// ParseNotification reads a notification dict. Missing keys are empty, as
// the listener's dispatcher reads them with get(); a priority that is not a
// string is an error.
func ParseNotification(msg any) (Notification, error) {
	m, ok := msg.(*Map)
	if !ok {
		return Notification{}, &DecodeError{Codec: "notification", Offset: -1, Reason: fmt.Sprintf("message is %s, not a dict", typeName(msg))}
	}
	var n Notification
	for _, kv := range m.Items() {
		var dst *string
		switch kv.Key {
		case "message_id":
			dst = &n.MessageID
		case "publisher_id":
			dst = &n.PublisherID
		case "event_type":
			dst = &n.EventType
		case "priority":
			dst = &n.Priority
		case "timestamp":
			dst = &n.Timestamp
		case "payload":
			n.Payload = kv.Value
			continue
		default:
			continue
		}
		switch s := kv.Value.(type) {
		case string:
			*dst = s
		case []byte:
			*dst = string(s)
		case nil:
		default:
			return Notification{}, &DecodeError{Codec: "notification", Offset: -1, Reason: fmt.Sprintf("%q is %s, not a string", kv.Key, typeName(kv.Value))}
		}
	}
	return n, nil
}

// FormatTimestamp writes t (in UTC) as Python's str(datetime.utcnow()):
// "YYYY-MM-DD HH:MM:SS.ffffff", and without any fraction when the
// microseconds are zero.
func FormatTimestamp(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		return t.Format("2006-01-02 15:04:05")
	}
	return t.Format("2006-01-02 15:04:05.000000")
}
