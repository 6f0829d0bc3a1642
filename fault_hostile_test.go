package goslo

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/redis/go-redis/v9"
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

// redisTransport is a transport on the Redis at addr (loopback, quiet).
func redisTransport(t *testing.T, addr string, mutate ...func(*compat.Config)) *Transport {
	opts := []Option{WithLogger(slog.New(slog.DiscardHandler)), WithOptions(func(c *compat.Config) {
		c.ZMQ.RPCZMQHost = "127.0.0.1"
		c.ZMQ.RPCZMQBindAddress = "127.0.0.1"
		for _, f := range mutate {
			f(c)
		}
	})}
	tr, err := NewTransport(context.Background(), "zmq+redis://"+addr, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close() })
	return tr
}

// TestCastsReachRestartedServer: a direct-mode server is killed (its
// records stay in Redis) and a new one starts on a new port; the client,
// which had resolved the target before, sends casts: they reach the new
// server (the client reads the target again once its queue stops
// draining, as a CALL does), instead of waiting for the dead address until
// their deadline.
func TestCastsReachRestartedServer(t *testing.T) {
	r := redistest.Start(t)
	ctx := context.Background()
	target := Target{Topic: "recast", Server: "s"}
	var got [2]atomic.Int64
	serve := func(tr *Transport, i int) *RPCServer {
		ep := NewEndpoint("", "1.0").Handle("note", func(context.Context, *Map, *Map) (any, error) {
			got[i].Add(1)
			return nil, nil
		})
		srv, err := NewRPCServer(tr, target, ep)
		require.NoError(t, err)
		require.NoError(t, srv.Start(ctx))
		return srv
	}
	trA := redisTransport(t, r.Addr)
	serve(trA, 0)
	cl := NewRPCClient(redisTransport(t, r.Addr), Target{Topic: "recast", Server: "s", Version: "1.0"})
	require.NoError(t, cl.Cast(ctx, nil, "note", nil))
	require.Eventually(t, func() bool { return got[0].Load() == 1 }, 5*time.Second, 10*time.Millisecond)

	trA.Close() // killed: its records stay until they expire
	serve(redisTransport(t, r.Addr), 1)
	const n = 50
	start := time.Now()
	for i := 0; i < n; i++ {
		require.NoError(t, cl.Cast(ctx, nil, "note", NewMap("i", int64(i))))
	}
	require.Eventually(t, func() bool { return got[1].Load() == n }, 15*time.Second, 10*time.Millisecond,
		"%d of %d casts reached the restarted server", got[1].Load(), n)
	t.Logf("%d casts sent after the restart reached the new server in %v", n, time.Since(start).Round(time.Millisecond))
}

// TestRedisOutageKeepsCallsFlowing: Redis is killed while a client calls
// a server that is still reachable, past the client's routing-table
// refresh: the calls keep succeeding on the last known routes. Redis is
// restarted empty: the server registers again within the liveness
// interval (10 s), not at its next zmq_target_update (60 s here).
func TestRedisOutageKeepsCallsFlowing(t *testing.T) {
	if testing.Short() {
		t.Skip("a Redis outage; about 15 s")
	}
	r := redistest.Start(t)
	ctx := context.Background()
	trS := redisTransport(t, r.Addr, func(c *compat.Config) { c.ZMQ.ZMQTargetUpdate, c.ZMQ.ZMQTargetExpire = 60, 120 })
	trC := redisTransport(t, r.Addr, func(c *compat.Config) { c.ZMQ.ZMQTargetUpdate, c.ZMQ.ZMQTargetExpire = 1, 2 })
	target := Target{Topic: "outage", Server: "s"}
	ep := NewEndpoint("", "1.0").Handle("echo", func(_ context.Context, _ *Map, a *Map) (any, error) { return a, nil })
	srv, err := NewRPCServer(trS, target, ep)
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	defer srv.Stop(ctx)
	cl := NewRPCClient(trC, Target{Topic: "outage", Server: "s", Version: "1.0"})
	okUp, failedUp, err := measureCalls(ctx, cl, time.Second, 2*time.Second)
	require.Zero(t, failedUp, "%v", err)

	r.Kill()
	time.Sleep(1200 * time.Millisecond) // past the client's zmq_target_update: its routes are due for a refresh
	okDown, failedDown, err := measureCalls(ctx, cl, 2*time.Second, 2*time.Second)
	require.Zero(t, failedDown, "calls failed while Redis was down (%d ok): %v", okDown, err)

	r.Restart() // empty
	start := time.Now()
	key := compat.TargetKey(compat.Router, target)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	defer rc.Close()
	require.Eventually(t, func() bool {
		hosts, err := rc.SMembers(ctx, key).Result()
		return err == nil && len(hosts) == 1
	}, 20*time.Second, 50*time.Millisecond, "the server did not register again")
	reg := time.Since(start)
	okAfter, failedAfter, err := measureCalls(ctx, cl, time.Second, 2*time.Second)
	require.Zero(t, failedAfter, "%v", err)
	t.Logf("calls/s: %.0f with Redis, %.0f with Redis down (0 failed), %.0f after; the server registered again %v after Redis came back",
		float64(okUp), float64(okDown)/2, float64(okAfter), reg.Round(time.Millisecond))
}
