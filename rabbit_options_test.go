package goslo

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRabbitClientOptions: oslo's TransportOptions(at_least_once=True)
// and retry through the public API on RabbitMQ (the driver's tests cover
// the details): a CALL or CAST nobody can take fails with
// ErrMessageUndeliverable; with the broker down, retry 0 fails at once
// with ErrMessageDeliveryFailure, for the client and the notifier.
func TestRabbitClientOptions(t *testing.T) {
	tr, n := rabbitTransport(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	srv, err := NewRPCServer(tr, Target{Topic: "opts", Server: "s1"}, NewEndpoint("", "").Handle("ping",
		func(context.Context, *Map, *Map) (any, error) { return "pong", nil }))
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	defer srv.Stop(ctx)

	alo := NewRPCClient(tr, Target{Topic: "opts"}).Prepare(PrepareOptions{TransportOptions: &TransportOptions{AtLeastOnce: true}})
	res, err := alo.Call(ctx, nil, "ping", nil)
	require.NoError(t, err)
	require.Equal(t, "pong", res)
	nobody := NewRPCClient(tr, Target{Topic: "opts-nobody"}).Prepare(PrepareOptions{TransportOptions: &TransportOptions{AtLeastOnce: true}})
	_, err = nobody.Call(ctx, nil, "ping", nil)
	require.ErrorIs(t, err, ErrMessageUndeliverable)
	require.ErrorIs(t, nobody.Cast(ctx, nil, "ping", nil), ErrMessageUndeliverable)
	// Prepare keeps the options unless given again.
	require.ErrorIs(t, nobody.Prepare(PrepareOptions{Timeout: time.Second}).Cast(ctx, nil, "ping", nil), ErrMessageUndeliverable)
	require.NoError(t, nobody.Prepare(PrepareOptions{TransportOptions: &TransportOptions{}}).Cast(ctx, nil, "ping", nil))

	n.Stop()
	zero := 0
	start := time.Now()
	err = NewRPCClient(tr, Target{Topic: "opts"}).Prepare(PrepareOptions{Retry: &zero}).Cast(ctx, nil, "ping", nil)
	require.ErrorIs(t, err, ErrMessageDeliveryFailure)
	err = NewNotifier(tr, "p", "opts").WithRetry(0).Info(ctx, nil, "e.t", nil)
	require.ErrorIs(t, err, ErrMessageDeliveryFailure)
	require.Less(t, time.Since(start), 10*time.Second)
	// The default ([oslo_messaging_notifications] retry = -1) waits.
	short, cancel2 := context.WithTimeout(ctx, time.Second)
	defer cancel2()
	err = NewNotifier(tr, "p", "opts").Info(short, nil, "e.t", nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
