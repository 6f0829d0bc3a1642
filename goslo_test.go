package goslo

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/envelope"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func localTransport(t *testing.T, opts ...Option) *Transport {
	opts = append([]Option{WithOptions(func(c *compat.Config) {
		c.ZMQ.RPCZMQHost = "127.0.0.1"
		c.ZMQ.RPCZMQBindAddress = "127.0.0.1"
	})}, opts...)
	tr, err := NewTransport(context.Background(), "zmq+dummy://", opts...)
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close() })
	return tr
}

type demoEndpoint struct{ name string }

func (e *demoEndpoint) Echo(_ context.Context, _ *Map, args *Map) (any, error) { return args, nil }
func (e *demoEndpoint) WhoAmI(context.Context, *Map, *Map) (any, error)        { return e.name, nil }
func (e *demoEndpoint) Fail(_ context.Context, _ *Map, args *Map) (any, error) {
	m, _ := args.Get("message")
	s, _ := m.(string)
	return nil, envelope.ValueError(s)
}
func (e *demoEndpoint) Context(_ context.Context, rctx *Map, _ *Map) (any, error) { return rctx, nil }
func (e *demoEndpoint) NotAHandler(int)                                           {}

func TestRPCRoundTrip(t *testing.T) {
	for _, ser := range []string{"json", "msgpack"} {
		t.Run(ser, func(t *testing.T) {
			tr := localTransport(t, WithOptions(func(c *compat.Config) { c.ZMQ.RPCZMQSerialization = ser }))
			ctx := context.Background()
			ep, err := EndpointOf(&demoEndpoint{name: "srv1"}, "", "1.3")
			require.NoError(t, err)
			srv, err := NewRPCServer(tr, Target{Topic: "demo", Server: "srv1"}, ep)
			require.NoError(t, err)
			require.NoError(t, srv.Start(ctx))

			cl := NewRPCClient(tr, Target{Topic: "demo", Version: "1.0"}).Prepare(PrepareOptions{Server: "srv1", Timeout: 5 * time.Second})
			rctx := NewMap("user", "alice")
			res, err := cl.Call(ctx, rctx, "echo", NewMap("x", int64(1), "s", "\u2603"))
			require.NoError(t, err)
			require.True(t, envelope.Equal(NewMap("x", int64(1), "s", "\u2603"), res))
			res, err = cl.Call(ctx, rctx, "who_am_i", nil)
			require.NoError(t, err)
			require.Equal(t, "srv1", res)
			res, err = cl.Call(ctx, rctx, "context", nil)
			require.NoError(t, err)
			require.True(t, envelope.Equal(rctx, res))

			_, err = cl.Call(ctx, rctx, "fail", NewMap("message", "bad"))
			var re *RemoteError
			require.True(t, errors.As(err, &re))
			require.Equal(t, "ValueError", re.Class)
			_, err = cl.Call(ctx, rctx, "nope", nil)
			require.ErrorIs(t, err, ErrNoSuchMethod)
			_, err = cl.Prepare(PrepareOptions{Version: "2.0"}).Call(ctx, rctx, "echo", nil)
			require.ErrorIs(t, err, ErrUnsupportedVersion)
			_, err = cl.Prepare(PrepareOptions{Namespace: "other"}).Call(ctx, rctx, "echo", nil)
			require.ErrorIs(t, err, ErrUnsupportedVersion, "a namespace mismatch is UnsupportedVersion, as in oslo")
			fan := true
			_, err = cl.Prepare(PrepareOptions{Fanout: fan}).Call(ctx, rctx, "echo", nil)
			require.ErrorIs(t, err, compat.ErrInvalidTarget)
			require.NoError(t, cl.Cast(ctx, rctx, "echo", NewMap("c", true)))

			tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			_, err = NewRPCClient(tr, Target{Topic: "nobody"}).Call(tctx, rctx, "echo", nil)
			require.ErrorIs(t, err, ErrMessagingTimeout)

			require.NoError(t, srv.Stop(ctx))
			srv.Wait()
		})
	}
}

func TestNotifications(t *testing.T) {
	tr := localTransport(t)
	ctx := context.Background()
	var mu sync.Mutex
	var got []Notification
	handler := func(_ context.Context, n Notification) error {
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
		return nil
	}
	l := NewNotificationListener(tr, []string{"notifications"},
		&NotificationEndpoint{Handlers: map[string]NotificationHandler{"info": handler, "error": handler}})
	require.NoError(t, l.Start(ctx))
	n := NewNotifier(tr, "compute.host-1")
	require.NoError(t, n.Info(ctx, NewMap("user", "u"), "compute.instance.create.end", NewMap("id", int64(7))))
	require.NoError(t, n.Error(ctx, nil, "compute.instance.create.error", "boom"))
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 2 }, 5*time.Second, 10*time.Millisecond)
	mu.Lock()
	for _, x := range got {
		require.Equal(t, "compute.host-1", x.PublisherID)
		require.Len(t, x.MessageID, 36)
		require.Contains(t, []string{"INFO", "ERROR"}, x.Priority)
	}
	mu.Unlock()
	require.NoError(t, l.Stop(ctx))
}

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{"Echo": "echo", "WhoAmI": "who_am_i", "GetHTTPStatus": "get_http_status", "Context": "context"} {
		require.Equal(t, want, SnakeCase(in))
	}
}

func TestStopDrainsThenCancels(t *testing.T) {
	tr := localTransport(t)
	ctx := context.Background()
	started := make(chan struct{}, 2)
	ep := NewEndpoint("", "").
		Handle("quick", func(ctx context.Context, _ *Map, _ *Map) (any, error) {
			started <- struct{}{}
			time.Sleep(100 * time.Millisecond)
			return "done", nil
		}).
		Handle("forever", func(ctx context.Context, _ *Map, _ *Map) (any, error) {
			started <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		})
	srv, err := NewRPCServer(tr, Target{Topic: "drain", Server: "s"}, ep)
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	cl := NewRPCClient(tr, Target{Topic: "drain", Server: "s"})
	quick := make(chan any, 1)
	go func() { v, _ := cl.Call(ctx, nil, "quick", nil); quick <- v }()
	go func() { _ = cl.Cast(ctx, nil, "forever", nil) }()
	<-started
	<-started
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	// "forever" still ran when sctx ended: Stop says so (the driver's
	// contract) after cancelling its context.
	require.ErrorIs(t, srv.Stop(sctx), context.DeadlineExceeded)
	require.Less(t, time.Since(t0), 2*time.Second, "Stop cancels handlers once its context ends")
	require.Equal(t, "done", <-quick, "the in-flight call was drained and answered")
}
