// Package driver is the seam between goslo's public API (package goslo)
// and the buses under it. Every transport driver implements Driver:
// driver/zmq (oslo.messaging 8.1.4's ZeroMQ driver and its proxy) and
// driver/rabbit (oslo.messaging 18.3.1's rabbit driver).
// The API, and the bridge that joins two buses, talk to a bus only
// through this interface. The package does no I/O; it imports only
// compat and envelope, and drivers import it, never each other.
//
// # Sending
//
// The API hands a driver a Message: the serialized request context (a
// dict, or nil) and the message dict, with the oslo options a send can
// carry (CallMonitorTimeout, Timeout, AtLeastOnce, Retry). Each driver
// puts them on its own wire: zmq as a [context, message] pair in the
// payload codec, RabbitMQ with the context flattened into the dict as
// _context_* keys inside envelope 2.0. Call, Cast and Notify are bounded
// by their context; a CALL whose context has no deadline waits for
// oslo's rpc_response_timeout (or the client's timeout). Under a context made by WithSentID,
// Call and Cast report the id the message gets on the wire (the driver
// calls ReportSentID before sending).
//
// # Receiving
//
// Listen and ListenNotifications start a Server. For each message the
// driver decodes, it builds a Request with NewRequest, passing the
// function that sends a CALL's reply, and runs the API's Handler on a
// worker goroutine, never on the goroutine that owns a socket or a
// channel. The handler answers a CALL with Request.Reply. For a
// notification its error decides the acknowledgement: nil acks;
// ErrRequeue or any other error asks for a requeue, which happens only
// where the driver can requeue and ListenOptions.AllowRequeue is set.
// ContextDict reads a request context as drivers carry it.
//
// # Errors
//
// A driver's errors mirror oslo's and work with errors.Is and errors.As:
// a remote failure is an *envelope.RemoteError; a CALL with no reply
// before its deadline matches envelope.ErrMessagingTimeout; a CALL whose
// server went away before replying matches ErrServerGone (and
// ErrMessagingTimeout); every method of a closed driver fails with an
// error matching ErrClosed (the same value as goslo.ErrClosed).
package driver
