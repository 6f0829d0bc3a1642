package rabbit

import (
	"context"
	"fmt"

	"github.com/goslo/goslo/envelope"
)

// ErrMessageDeliveryFailure is envelope.ErrMessageDeliveryFailure (oslo's
// MessageDeliveryFailure): matched by a *DeliveryFailureError.
var ErrMessageDeliveryFailure = envelope.ErrMessageDeliveryFailure

// DeliveryFailureError is a publish given up after the retries its retry
// option allowed (§11.3: kombu's autoretry with max_retries, which raises
// MessageDeliveryFailure "Unable to connect to AMQP server on <host>
// after <retry> tries"). Err is the last failure.
type DeliveryFailureError struct {
	Exchange   string
	RoutingKey string
	Retry      int // the retry option: tries after the first
	Err        error
}

func (e *DeliveryFailureError) Error() string {
	return fmt.Sprintf("rabbit driver: unable to publish to exchange %q, routing key %q after %d retries: %v", e.Exchange, e.RoutingKey, e.Retry, e.Err)
}

// Is matches ErrMessageDeliveryFailure.
func (e *DeliveryFailureError) Is(t error) bool { return t == ErrMessageDeliveryFailure }

// Unwrap is the last failure.
func (e *DeliveryFailureError) Unwrap() error { return e.Err }

type retryKey struct{}

// withRetry bounds the publishes made with the returned context by oslo's
// retry: nil takes def; a negative value is for ever (the context's
// bound only), 0 no retry, N at most N retries after the first attempt.
func withRetry(ctx context.Context, retry *int, def int) context.Context {
	n := def
	if retry != nil {
		n = *retry
	}
	if n < 0 {
		return ctx
	}
	return context.WithValue(ctx, retryKey{}, n)
}

// retryBound is the retry bound of ctx: ok false means for ever. While a
// publish is bounded its connection attempts are counted as tries: each
// publish attempt dials once (dialer.connect) instead of dialling until
// the context ends.
func retryBound(ctx context.Context) (n int, ok bool) {
	n, ok = ctx.Value(retryKey{}).(int)
	return n, ok
}
