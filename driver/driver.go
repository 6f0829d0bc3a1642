package driver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/envelope"
)

// Kind is what a message is for.
type Kind int

// The kinds of message a driver carries.
const (
	KindCall         Kind = iota + 1 // an RPC CALL: one server answers
	KindCast                         // an RPC CAST to one server of the target
	KindFanout                       // an RPC CAST to every server of the topic
	KindNotification                 // a notification
)

// String is the kind as logs and observers name it.
func (k Kind) String() string {
	switch k {
	case KindCall:
		return "call"
	case KindCast:
		return "cast"
	case KindFanout:
		return "fanout"
	case KindNotification:
		return "notification"
	}
	return "unknown"
}

// Message is an outgoing RPC request or notification as the API hands it to
// a driver: the serialized request context and the message dict. The driver
// puts both on its wire in its own way (zmq: a [context, message] pair in
// the configured codec; rabbit: the context flattened into the dict as
// _context_* keys, inside envelope 2.0).
type Message struct {
	// Context is the serialized request context: a dict (*envelope.Map),
	// or nil for none.
	Context any
	// Body is the message dict: method, args, [namespace], [version] for
	// RPC; the notification dict (envelope.Notification.Map) otherwise.
	Body *envelope.Map
	// CallMonitorTimeout is oslo's call_monitor_timeout of a CALL (zero:
	// none). Drivers that carry it (rabbit: _timeout, in whole seconds)
	// fail the call when the server sends no heartbeat for that long;
	// others ignore it.
	CallMonitorTimeout time.Duration
	// Timeout is a CALL's timeout when the API chose it (rpc_response_timeout
	// or the client's, for a context without a deadline); zero when the
	// caller's deadline rules. A driver that puts the timeout on the wire
	// (rabbit: the expiration, str(int(timeout*1000)) in Python) writes this
	// one rather than the time left, which is a few µs less.
	Timeout time.Duration
	// AtLeastOnce is oslo's TransportOptions(at_least_once=True) for a
	// CALL or CAST to a topic or server (not fanout): a driver that can
	// tell (rabbit: mandatory) fails the send with an error matching
	// envelope.ErrMessageUndeliverable when no queue takes the message,
	// instead of losing it. Others ignore it.
	AtLeastOnce bool
	// Retry is oslo's retry of the send while the bus cannot be reached:
	// nil means the driver's default (rabbit: for ever for RPC,
	// [oslo_messaging_notifications] retry for notifications), a negative
	// value for ever, 0 no retry, N at most N retries; a driver that gives
	// up returns an error matching envelope.ErrMessageDeliveryFailure. The
	// context still bounds every send. The zmq driver reads its own retry
	// (zmq.WithRetry) and ignores this field.
	Retry *int
}

// Request is one incoming message, handed to a Handler on a worker
// goroutine (never on the goroutine that owns a socket or channel).
type Request struct {
	Kind  Kind
	MsgID string // the wire's message id, for logs (may be empty)
	// Context is the request context as decoded (a dict, usually).
	Context any
	// Body is the decoded message dict (any value a peer sent: the API
	// checks it).
	Body any
	// Deadline is the caller's deadline when the wire carries one (zero
	// otherwise).
	Deadline time.Time

	reply func(result any, failure error) error
}

// ContextDict reads a request context as drivers carry it (Message.Context,
// Request.Context): a dict, or nil for none.
func ContextDict(v any) (*envelope.Map, error) {
	switch c := v.(type) {
	case nil:
		return nil, nil
	case *envelope.Map:
		return c, nil
	}
	return nil, fmt.Errorf("the request context must be a dict (got %T)", v)
}

// NewRequest builds a Request for a driver; reply sends the answer of a
// CALL (nil for other kinds).
func NewRequest(kind Kind, msgID string, ctx, body any, deadline time.Time, reply func(result any, failure error) error) *Request {
	return &Request{Kind: kind, MsgID: msgID, Context: ctx, Body: body, Deadline: deadline, reply: reply}
}

// Reply answers a CALL with a result, or with failure when it is not nil
// (a *envelope.RemoteError keeps its class; other errors reach Python
// callers as RuntimeError). It is a no-op for other kinds. An error means
// the reply could not be encoded or sent; it is not retried.
func (r *Request) Reply(result any, failure error) error {
	if r.reply == nil {
		return nil
	}
	return r.reply(result, failure)
}

// ErrRequeue, returned by a notification handler, asks for the
// notification to be delivered again (oslo's NotificationResult.REQUEUE).
// Drivers that cannot requeue (zmq) log and drop it; RabbitMQ requeues it
// when the listener allows requeueing, and acks it otherwise.
var ErrRequeue = errors.New("goslo: requeue")

// Handler serves one incoming message. For notifications its error
// decides the acknowledgement as oslo's NotificationDispatcher does: nil
// acks; ErrRequeue, or any other error (an endpoint that raised), asks for
// a requeue, which happens only where the driver can and the listener
// allows it (AllowRequeue), and is an ack otherwise. For RPC the handler
// answers through Request.Reply and its error is only logged.
type Handler func(ctx context.Context, r *Request) error

// Server is a running consumer: an RPC server's queues or sockets, or a
// notification listener's.
type Server interface {
	// Stop stops taking messages, lets in-flight handlers finish and
	// reply, and releases the consumer, bounded by ctx: when ctx ends it
	// returns ctx.Err() and handlers still running finish in the
	// background (their replies may still be sent).
	Stop(ctx context.Context) error
	// Addr is where the server can be reached, for logs ("" when the
	// driver has no such notion).
	Addr() string
}

// ListenOptions are a notification listener's.
type ListenOptions struct {
	// Pool is oslo's listener pool name: listeners of one pool share the
	// notifications ("" = no pool).
	Pool string
	// AllowRequeue lets a handler's ErrRequeue requeue the notification.
	AllowRequeue bool
}

// Driver is what every bus implements under the public API. Every method
// is safe for concurrent use; every blocking one is bounded by its
// context.
type Driver interface {
	// Call sends a CALL to one server of t and returns the decoded result,
	// or the remote failure as a *envelope.RemoteError, or an error that
	// matches envelope.ErrMessagingTimeout when ctx's deadline passes.
	Call(ctx context.Context, t compat.Target, m Message) (any, error)
	// Cast sends a CAST (to every server of the topic when t.Fanout).
	Cast(ctx context.Context, t compat.Target, m Message) error
	// Notify sends a notification to t.Topic ("<topic>.<priority>", lower
	// case) on t.Exchange (or the control exchange).
	Notify(ctx context.Context, t compat.Target, m Message) error
	// Listen starts an RPC server of t (topic and server set).
	Listen(ctx context.Context, t compat.Target, h Handler) (Server, error)
	// ListenNotifications starts one listener for every target (topic
	// "<topic>.<priority>", optional exchange).
	ListenNotifications(ctx context.Context, targets []compat.Target, o ListenOptions, h Handler) (Server, error)
	// Close releases everything; later calls fail with an error that
	// matches ErrClosed. It is idempotent, and bounded by limits of the
	// driver's own (a driver that is a Shutdowner: Shutdown with them).
	Close() error
}

// Shutdowner is an optional interface of a Driver: a graceful close
// bounded by a context, as net/http.Server's Shutdown is to its Close.
//
// Shutdown refuses new work at once (calls, sends and listens fail with an
// error matching ErrClosed), stops the servers and listeners started on
// the driver, letting their in-flight handlers finish and reply, and lets
// outgoing messages the driver still holds leave, then releases
// everything, all within ctx. When ctx ends first it closes at once what
// is left (a handler that does not return keeps only its own goroutine,
// which ends when it returns; its reply is dropped) and returns an error
// matching ctx.Err() (errors.Is); the driver is fully closed either way.
// Afterwards it is as after Close. Shutdown and Close are idempotent and
// safe for concurrent use: every call returns once the driver is closed,
// and a call whose context ends forces a shutdown or Close in progress.
type Shutdowner interface {
	Shutdown(ctx context.Context) error
}

// ErrServerGone matches a CALL that failed before its deadline because
// the connection to its server ended without the reply while the server
// is still registered (killed, crashed, or its host lost): no reply can
// come, and whether the server ran the call is unknown, as with a
// timeout. Such an error matches envelope.ErrMessagingTimeout too. The zmq
// driver returns it (a *zmq.ServerGoneError); RabbitMQ has no such case
// (its replies wait in queues that outlive a server).
var ErrServerGone = errors.New("goslo: the server went away before replying")

// ErrClosed is returned by a driver that was closed; goslo.ErrClosed is
// the same value.
var ErrClosed = envelope.ErrClosed

type sentIDKey struct{}

// WithSentID returns a context under which a driver's Call and Cast report
// the id the message gets on its wire (zmq: the message id; RabbitMQ: the
// _msg_id of a CALL, the _unique_id of a CAST) to f, on the calling
// goroutine, before sending. Tools that join two buses (the bridge) log
// both sides' ids with it.
func WithSentID(ctx context.Context, f func(id string)) context.Context {
	return context.WithValue(ctx, sentIDKey{}, f)
}

// ReportSentID is how a driver tells WithSentID's function the id of the
// message it is sending (nothing happens without one).
func ReportSentID(ctx context.Context, id string) {
	if f, ok := ctx.Value(sentIDKey{}).(func(string)); ok {
		f(id)
	}
}
