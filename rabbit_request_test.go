package goslo

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRabbitRequestDeadline: a RabbitMQ CALL's deadline (receipt + the
// expiration property, the caller's timeout) reaches the handler through
// RequestFrom; a CAST has none.
func TestRabbitRequestDeadline(t *testing.T) {
	tr, _ := rabbitTransport(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := make(chan RequestInfo, 2)
	ep := NewEndpoint("", "").Handle("when", func(ctx context.Context, _ *Map, _ *Map) (any, error) {
		info, ok := RequestFrom(ctx)
		if ok {
			got <- *info
		}
		return nil, nil
	})
	srv, err := NewRPCServer(tr, Target{Topic: "dl", Server: "s1"}, ep)
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	defer srv.Stop(ctx)
	cl := NewRPCClient(tr, Target{Topic: "dl", Server: "s1"}).Prepare(PrepareOptions{Timeout: 7 * time.Second})

	sent := time.Now()
	// No deadline on the context: the client's timeout (7 s) is the
	// expiration.
	_, err = cl.Call(context.Background(), nil, "when", nil)
	require.NoError(t, err)
	info := <-got
	require.Equal(t, "call", info.Type)
	require.False(t, info.Deadline.IsZero(), "a CALL's deadline reaches the handler")
	require.WithinDuration(t, sent.Add(7*time.Second), info.Deadline, time.Second)

	require.NoError(t, cl.Cast(ctx, nil, "when", nil))
	select {
	case info = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("cast not handled")
	}
	require.Equal(t, "cast", info.Type)
	require.True(t, info.Deadline.IsZero(), "a CAST carries no deadline")
}
