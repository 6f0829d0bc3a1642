package goslo

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	driver "github.com/goslo/goslo/driver/zmq"
	"github.com/goslo/goslo/internal/redistest"
)

// measureCalls calls cl for d and returns how many calls succeeded and
// how many failed (each bounded by timeout).
func measureCalls(ctx context.Context, cl *RPCClient, d, timeout time.Duration) (ok, failed int, lastErr error) {
	end := time.Now().Add(d)
	for i := int64(0); time.Now().Before(end); i++ {
		c, cancel := context.WithTimeout(ctx, timeout)
		_, err := cl.Call(c, nil, "echo", NewMap("i", i))
		cancel()
		if err != nil {
			failed++
			lastErr = err
			continue
		}
		ok++
	}
	return ok, failed, lastErr
}

// TestProxyStuckPeerCostsOnlyItsOwnTraffic: a backend DEALER that never
// reads is flooded with casts through the proxy while a healthy server
// takes calls. The stuck peer's queue fills and its messages are dropped
// and counted (ProxyStats.Overflow); calls to the healthy server keep
// succeeding. (Before, the proxy's single loop waited up to 1 s for room
// at each message to the stuck peer, and every call timed out.)
func TestProxyStuckPeerCostsOnlyItsOwnTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("floods a proxy; about 8 s")
	}
	tr := localTransport(t, WithLogger(slog.New(slog.DiscardHandler)), WithOptions(func(c *compat.Config) { c.ZMQ.UseRouterProxy = true }))
	ctx := context.Background()
	po := driver.ProxyOptionsFrom(tr.Config())
	po.Host, po.FrontendPort, po.BackendPort, po.PublisherPort = "127.0.0.1", redistest.FreePort(t), redistest.FreePort(t), redistest.FreePort(t)
	po.HWM = 1000 // the stuck peer's queue fills in a moment
	po.Logger = slog.New(slog.DiscardHandler)
	px, err := driver.NewProxy(ctx, tr.Matchmaker(), po)
	require.NoError(t, err)
	defer px.Close()

	ep := NewEndpoint("", "1.0").Handle("echo", func(_ context.Context, _ *Map, a *Map) (any, error) { return a, nil })
	srv, err := NewRPCServer(tr, Target{Topic: "healthy", Server: "h"}, ep)
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	defer srv.Stop(ctx)
	healthy := NewRPCClient(tr, Target{Topic: "healthy", Server: "h", Version: "1.0"})

	// The stuck peer: a server's DEALER, registered, connected, never read.
	zctx := newZctx(t)
	stuckTarget := Target{Topic: "stuck", Server: "s"}
	stuck := newRaw(t, zctx, zmq.DEALER, "127.0.0.1/stuck/s/x")
	require.NoError(t, stuck.s.SetRcvhwm(10))
	require.NoError(t, stuck.s.SetRcvbuf(4096))
	require.NoError(t, stuck.s.Connect("tcp://"+px.Backend()))
	require.NoError(t, tr.Matchmaker().Register(ctx, stuckTarget, "127.0.0.1/stuck/s/x", compat.Dealer, time.Minute))
	time.Sleep(200 * time.Millisecond) // the proxy has seen its identity

	const window, timeout = 2 * time.Second, 2 * time.Second
	okBefore, failedBefore, err := measureCalls(ctx, healthy, window, timeout)
	require.Zero(t, failedBefore, "no stuck peer yet: %v", err)

	var casts atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // floods the stuck peer until the end
		defer wg.Done()
		cl := NewRPCClient(tr, Target{Topic: "stuck", Server: "s", Version: "1.0"})
		for {
			select {
			case <-stop:
				return
			default:
			}
			c, cancel := context.WithTimeout(ctx, time.Second)
			if cl.Cast(c, nil, "m", NewMap("pad", "0123456789012345678901234567890123456789")) == nil {
				casts.Add(1)
			}
			cancel()
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	require.Eventually(t, func() bool { return px.Stats().Overflow > 0 }, 20*time.Second, 10*time.Millisecond,
		"the stuck peer's queue never filled (%d casts sent)", casts.Load())
	okDuring, failedDuring, err := measureCalls(ctx, healthy, window, timeout)
	st := px.Stats()
	t.Logf("healthy server: %.0f calls/s alone, %.0f calls/s while a stuck peer is flooded (%d casts sent to it, %d dropped by the proxy as overflow, %d dropped in all)",
		float64(okBefore)/window.Seconds(), float64(okDuring)/window.Seconds(), casts.Load(), st.Overflow, st.Dropped)
	require.Zero(t, failedDuring, "calls to the healthy server failed while a peer was stuck: %v", err)
	require.Positive(t, okDuring)
}
