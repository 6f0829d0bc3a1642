package goslo

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/goslo/goslo/compat"
	zmqdrv "github.com/goslo/goslo/driver/zmq"
	"github.com/goslo/goslo/internal/rabbittest"
	"github.com/goslo/goslo/internal/redistest"
)

// shutdownSlack is how long past its context's deadline Shutdown may take
// to close what is left at once (generous: a correctness bound, not a
// performance figure).
const shutdownSlack = 2 * time.Second

var shutdownSeq atomic.Int64

// TestTransportShutdown runs Transport.Shutdown on both drivers, with a
// server transport and a separate client transport on the same bus (zmq
// over a real redis, RabbitMQ on a private node).
func TestTransportShutdown(t *testing.T) {
	r := redistest.Start(t)
	n := rabbittest.Start(t)
	n.AddVhost("goslo-shutdown")
	buses := []struct {
		name string
		open func(t *testing.T) *Transport
	}{
		{"zmq", func(t *testing.T) *Transport {
			tr, err := NewTransport(context.Background(), "zmq+redis://"+r.Addr, WithOptions(func(c *compat.Config) {
				c.ZMQ.RPCZMQHost = "127.0.0.1"
				c.ZMQ.RPCZMQBindAddress = "127.0.0.1"
			}))
			require.NoError(t, err)
			t.Cleanup(func() { tr.Close() })
			return tr
		}},
		{"rabbit", func(t *testing.T) *Transport {
			tr, err := NewTransport(context.Background(), n.URL("goslo-shutdown"), WithOptions(func(c *compat.Config) {
				c.Rabbit.KombuReconnectDelay = 0.1
				c.Rabbit.RabbitRetryInterval = 0
				c.Rabbit.RabbitIntervalMax = 1
			}))
			require.NoError(t, err)
			t.Cleanup(func() { tr.Close() })
			return tr
		}},
	}
	for _, b := range buses {
		t.Run(b.name+"/Drains", func(t *testing.T) { shutdownDrains(t, b.open) })
		t.Run(b.name+"/Bounded", func(t *testing.T) { shutdownBounded(t, b.open) })
		t.Run(b.name+"/ConcurrentClose", func(t *testing.T) { shutdownConcurrent(t, b.open) })
		t.Run(b.name+"/BehindStop", func(t *testing.T) { shutdownBehindStop(t, b.open) })
	}
}

// blockingServer starts an RPC server on srvTr whose method "slow" sends
// its context to started and returns "done" once release is closed
// (ignoring its context).
func blockingServer(t *testing.T, tr *Transport) (target Target, srv *RPCServer, started chan context.Context, release chan struct{}) {
	target = Target{Topic: fmt.Sprintf("shutdown-%d", shutdownSeq.Add(1)), Server: "s"}
	started, release = make(chan context.Context, 4), make(chan struct{})
	ep := NewEndpoint("", "").Handle("slow", func(ctx context.Context, _ *Map, _ *Map) (any, error) {
		started <- ctx
		<-release
		return "done", nil
	})
	srv, err := NewRPCServer(tr, target, ep)
	require.NoError(t, err)
	require.NoError(t, srv.Start(context.Background()))
	return target, srv, started, release
}

type callResult struct {
	v   any
	err error
}

// callAsync calls "slow" on target from cl.
func callAsync(cl *Transport, target Target, timeout time.Duration) chan callResult {
	got := make(chan callResult, 1)
	go func() {
		v, err := NewRPCClient(cl, target).Prepare(PrepareOptions{Timeout: timeout}).Call(context.Background(), nil, "slow", nil)
		got <- callResult{v, err}
	}()
	return got
}

func awaitStarted(t *testing.T, started chan context.Context) context.Context {
	t.Helper()
	select {
	case ctx := <-started:
		return ctx
	case <-time.After(20 * time.Second):
		t.Fatal("the handler did not start")
		return nil
	}
}

// requireClosed checks that tr refuses new work with ErrClosed (after
// Close or Shutdown).
func requireClosed(t *testing.T, tr *Transport, target Target) {
	t.Helper()
	ctx := context.Background()
	_, err := NewRPCClient(tr, target).Call(ctx, nil, "slow", nil)
	require.ErrorIs(t, err, ErrClosed, "Call")
	require.ErrorIs(t, NewRPCClient(tr, target).Cast(ctx, nil, "slow", nil), ErrClosed, "Cast")
	require.ErrorIs(t, NewNotifier(tr, "p").Info(ctx, nil, "e", nil), ErrClosed, "Notify")
	srv, err := NewRPCServer(tr, Target{Topic: "after-shutdown", Server: "s"}, NewEndpoint("", ""))
	require.NoError(t, err)
	require.ErrorIs(t, srv.Start(ctx), ErrClosed, "RPCServer.Start")
	l := NewNotificationListener(tr, []string{"after-shutdown"}, &NotificationEndpoint{Handlers: map[string]NotificationHandler{
		"info": func(context.Context, Notification) error { return nil }}})
	require.ErrorIs(t, l.Start(ctx), ErrClosed, "NotificationListener.Start")
}

// shutdownDrains: Shutdown waits for a handler in flight, whose reply
// still reaches its caller, and refuses new work meanwhile.
func shutdownDrains(t *testing.T, open func(*testing.T) *Transport) {
	srvTr, clTr := open(t), open(t)
	target, srv, started, release := blockingServer(t, srvTr)
	got := callAsync(clTr, target, 30*time.Second)
	hctx := awaitStarted(t, started)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srvTr.Shutdown(ctx) }()
	select {
	case err := <-shut:
		close(release)
		t.Fatalf("Shutdown returned (%v) while a handler was still running", err)
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, hctx.Err(), "the handler's context is live while Shutdown drains")
	_, err := NewRPCClient(srvTr, target).Prepare(PrepareOptions{Timeout: time.Second}).Call(context.Background(), nil, "slow", nil)
	require.ErrorIs(t, err, ErrClosed, "a call begun during Shutdown")
	close(release)
	select {
	case err := <-shut:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown did not return once the handler had")
	}
	select {
	case res := <-got:
		require.NoError(t, res.err, "the reply of the drained handler")
		require.Equal(t, "done", res.v)
	case <-time.After(30 * time.Second):
		t.Fatal("the call did not return")
	}
	within(t, 5*time.Second, "RPCServer.Wait after Shutdown", srv.Wait, nil)
	require.NoError(t, srv.Stop(context.Background()), "Stop after Shutdown")
	requireClosed(t, srvTr, target)
	require.NoError(t, srvTr.Close(), "Close after Shutdown")
	require.NoError(t, srvTr.Shutdown(context.Background()), "a second Shutdown")
}

// shutdownBounded: with a handler that ignores its context, Shutdown
// returns soon after its context ends, with an error matching
// context.DeadlineExceeded, cancels the handler's context, and leaves
// nothing running once the handler returns.
func shutdownBounded(t *testing.T, open func(*testing.T) *Transport) {
	leaks := goleak.IgnoreCurrent()
	b := startBlockedCall(t, open)
	defer b.unblock()
	srvTr, target, srv, hctx, unblock := b.srvTr, b.target, b.srv, b.hctx, b.unblock

	const bound = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	begun := time.Now()
	var err error
	within(t, bound+shutdownSlack, "Shutdown with a blocked handler", func() { err = srvTr.Shutdown(ctx) }, unblock)
	require.Error(t, err)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.GreaterOrEqual(t, time.Since(begun), bound-10*time.Millisecond, "Shutdown gave up before its context ended")
	select {
	case <-hctx.Done():
	case <-time.After(time.Second):
		t.Fatal("the handler's context was not cancelled when Shutdown's ended")
	}
	requireClosed(t, srvTr, target)
	require.NoError(t, srv.Stop(context.Background()), "Stop after Shutdown")
	require.ErrorIs(t, srvTr.Shutdown(context.Background()), context.DeadlineExceeded, "a later Shutdown reports the first one's outcome")

	unblock()
	b.end(t) // a timeout, or a server gone: the reply had no way out
	goleak.VerifyNone(t, leaks)
}

// shutdownBehindStop: a Stop without a deadline waits for a blocked
// handler; a Shutdown after it is still bounded by its own context (the
// rabbit driver's server Stop ran once, and a second caller waited for
// the first however long it took).
func shutdownBehindStop(t *testing.T, open func(*testing.T) *Transport) {
	b := startBlockedCall(t, open)
	defer b.unblock()
	stopped := make(chan error, 1)
	go func() { stopped <- b.srv.Stop(context.Background()) }()
	time.Sleep(100 * time.Millisecond) // the Stop waits for the handler

	const bound = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	within(t, bound+shutdownSlack, "Shutdown behind a Stop without a deadline", func() { _ = b.srvTr.Shutdown(ctx) }, b.unblock)
	b.unblock()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("the Stop did not return once the handler had")
	}
	b.end(t)
}

// blockedCall is a server on its own transport whose handler blocks until
// unblock (once; later calls do nothing), and a call to it from another
// transport, taken by the handler.
type blockedCall struct {
	srvTr, clTr *Transport
	target      Target
	srv         *RPCServer
	hctx        context.Context // the handler's
	got         chan callResult
	unblock     func()
}

func startBlockedCall(t *testing.T, open func(*testing.T) *Transport) *blockedCall {
	b := &blockedCall{srvTr: open(t), clTr: open(t)}
	var started chan context.Context
	var release chan struct{}
	b.target, b.srv, started, release = blockingServer(t, b.srvTr)
	var once sync.Once
	b.unblock = func() { once.Do(func() { close(release) }) }
	b.got = callAsync(b.clTr, b.target, 5*time.Second)
	b.hctx = awaitStarted(t, started)
	return b
}

// end waits for the call to end (however) and closes the client transport.
func (b *blockedCall) end(t *testing.T) {
	t.Helper()
	select {
	case <-b.got:
	case <-time.After(20 * time.Second):
		t.Fatal("the call did not end")
	}
	require.NoError(t, b.clTr.Close())
}

// shutdownConcurrent: Close and Shutdown called together (under -race)
// all return once the transport is closed; a Shutdown whose context ends
// forces a Close that waits for a handler.
func shutdownConcurrent(t *testing.T, open func(*testing.T) *Transport) {
	srvTr, clTr := open(t), open(t)
	target, _, started, release := blockingServer(t, srvTr)
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock()
	got := callAsync(clTr, target, 5*time.Second)
	awaitStarted(t, started)

	const bound = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func() { defer wg.Done(); _ = srvTr.Close() }()
		go func() { defer wg.Done(); errs <- srvTr.Shutdown(ctx) }()
	}
	within(t, bound+shutdownSlack, "Close and Shutdown together", wg.Wait, unblock)
	close(errs)
	for err := range errs {
		require.ErrorIs(t, err, context.DeadlineExceeded, "a Shutdown whose context ended")
	}
	requireClosed(t, srvTr, target)
	unblock()
	select {
	case <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("the call did not end")
	}
}

// TestShutdownQueuedCast (zmq): a CAST still queued for a connection
// being made leaves during Shutdown when the peer comes within ctx; with
// no peer, Shutdown gives up when ctx ends and reports the discarded
// message (ErrDiscarded) with the deadline.
func TestShutdownQueuedCast(t *testing.T) {
	ctx := context.Background()
	zctx, err := zmq.NewContext()
	require.NoError(t, err)
	defer func() { require.NoError(t, zctx.Term()) }()

	t.Run("Leaves", func(t *testing.T) {
		tr := localTransport(t)
		port := redistest.FreePort(t)
		target := Target{Topic: "queued", Server: "s"}
		require.NoError(t, tr.Matchmaker().Register(ctx, target, fmt.Sprintf("127.0.0.1:%d", port), compat.Router, time.Minute))
		require.NoError(t, NewRPCClient(tr, target).Cast(ctx, nil, "hello", nil), "the cast is queued")

		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		shut := make(chan error, 1)
		go func() { shut <- tr.Shutdown(sctx) }()
		time.Sleep(100 * time.Millisecond) // Shutdown is draining
		router, err := zctx.NewSocket(zmq.ROUTER)
		require.NoError(t, err)
		defer func() { _ = router.SetLinger(0); _ = router.Close() }()
		require.NoError(t, router.Bind(fmt.Sprintf("tcp://127.0.0.1:%d", port)))
		require.NoError(t, router.SetRcvtimeo(20*time.Second))
		msg, err := router.RecvMessageBytes(0)
		require.NoError(t, err, "the queued cast arrived")
		require.NotEmpty(t, msg)
		select {
		case err := <-shut:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Fatal("Shutdown did not return")
		}
	})

	t.Run("Discarded", func(t *testing.T) {
		tr := localTransport(t)
		target := Target{Topic: "queued", Server: "s"}
		require.NoError(t, tr.Matchmaker().Register(ctx, target, fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t)), compat.Router, time.Minute))
		require.NoError(t, NewRPCClient(tr, target).Cast(ctx, nil, "hello", nil), "the cast is queued")
		const bound = 300 * time.Millisecond
		sctx, cancel := context.WithTimeout(ctx, bound)
		defer cancel()
		var err error
		within(t, bound+shutdownSlack, "Shutdown with a queued cast no peer takes", func() { err = tr.Shutdown(sctx) }, nil)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorIs(t, err, zmqdrv.ErrDiscarded)
	})
}

// TestRabbitShutdownBrokerDown: with the broker unreachable, a CALL that
// is starting the reply queue retries until its timeout; Shutdown must
// not wait for it (it held the driver's lock the shutdown took first, so
// a 200 ms Shutdown took the call's whole timeout).
func TestRabbitShutdownBrokerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there: connection refused
	tr, err := NewTransport(context.Background(), "rabbit://guest:guest@"+addr+"/", WithOptions(func(c *compat.Config) {
		c.Rabbit.KombuReconnectDelay = 0.1
		c.Rabbit.RabbitRetryInterval = 0
		c.Rabbit.RabbitIntervalMax = 1
	}))
	require.NoError(t, err)
	got := make(chan error, 1)
	go func() {
		_, err := NewRPCClient(tr, Target{Topic: "down", Server: "s"}).Prepare(PrepareOptions{Timeout: 20 * time.Second}).
			Call(context.Background(), nil, "m", nil)
		got <- err
	}()
	time.Sleep(500 * time.Millisecond) // the call is retrying the broker
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = tr.Shutdown(ctx)
	require.Less(t, time.Since(start), 200*time.Millisecond+shutdownSlack, "Shutdown waited for the call: %v", err)
	select {
	case err := <-got:
		require.ErrorIs(t, err, ErrClosed)
	case <-time.After(shutdownSlack):
		t.Fatal("the call in flight did not end with the shutdown")
	}
}
