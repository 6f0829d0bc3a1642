package zmq

import (
	"context"
	"errors"
	"time"

	"github.com/goslo/goslo/matchmaker"
)

// Observer receives the driver's events for metrics. It is called on hot
// paths, so implementations must be cheap and safe for concurrent use;
// with no Observer (the default) nothing is counted and nothing costs.
// The metrics package implements it with Prometheus.
type Observer interface {
	// Sent counts a message written to a socket (requests, replies, acks).
	Sent(t MsgType)
	// Received counts a well-formed message taken from a socket.
	Received(t MsgType)
	// Dropped counts a message given up, with a short reason:
	// "malformed", "duplicate", "no_hosts", "timeout", "queue_full",
	// "closed", "send_failed", "server_gone" (a CALL whose server's
	// connection closed before the reply: see ServerGoneError), or, for a message given up whole on
	// receipt before its type is known (t is 0), "oversized" (its parts
	// add up to more than MaxMessageSize) or "too_many_parts".
	Dropped(t MsgType, reason string)
	// Call reports one CALL's duration and outcome ("ok", "timeout" or
	// "error"; a remote failure is "ok" here: the reply came).
	Call(d time.Duration, outcome string)
}

// DropReason classifies a send error for Observer.Dropped.
func DropReason(err error) string {
	switch {
	case errors.Is(err, matchmaker.ErrNoHosts):
		return "no_hosts"
	case errors.Is(err, ErrQueueFull):
		return "queue_full"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, errNoProxyReady), errors.Is(err, errNotSent):
		return "timeout"
	case errors.Is(err, ErrClosed), errors.Is(err, errLoopClosed):
		return "closed"
	}
	return "send_failed"
}
