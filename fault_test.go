package goslo

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
)

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestProxyRestartMidTraffic restarts the proxy (same ports, as a
// supervisor would) while a client calls and casts with rpc_use_acks:
// calls resume without restarting the client or the server, casts lost in
// the dead proxy are resent when no ACK comes, and the server's TTL cache
// makes every cast run exactly once although some arrive twice.
func TestProxyRestartMidTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a proxy; about 10 s")
	}
	tr := localTransport(t, WithOptions(func(c *compat.Config) {
		c.ZMQ.UseRouterProxy = true
		c.ZMQ.RPCUseAcks = true
		c.ZMQ.RPCAckTimeoutBase = 1
		c.ZMQ.RPCRetryAttempts = -1 // resend until acked
	}))
	ctx := context.Background()
	po := driver.ProxyOptionsFrom(tr.Config())
	po.Host, po.FrontendPort, po.BackendPort, po.PublisherPort = "127.0.0.1", freePort(t), freePort(t), freePort(t)
	px, err := driver.NewProxy(ctx, tr.Matchmaker(), po)
	require.NoError(t, err)

	var mu sync.Mutex
	runs := map[int64]int{}
	ep := NewEndpoint("", "1.0").
		Handle("echo", func(_ context.Context, _ *Map, a *Map) (any, error) { return a, nil }).
		Handle("note", func(_ context.Context, _ *Map, a *Map) (any, error) {
			v, _ := a.Get("i")
			mu.Lock()
			runs[v.(int64)]++
			mu.Unlock()
			return nil, nil
		})
	srv, err := NewRPCServer(tr, Target{Topic: "restart", Server: "s"}, ep)
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	defer srv.Stop(ctx)
	cl := NewRPCClient(tr, Target{Topic: "restart", Server: "s", Version: "1.0"})

	var calls, failed atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // calls all along, each with a short deadline
		defer close(done)
		for i := int64(0); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := cl.Call(c, nil, "echo", NewMap("i", i))
			cancel()
			if err != nil {
				failed.Add(1)
				continue
			}
			calls.Add(1)
		}
	}()
	const casts = 300
	for i := int64(0); i < casts; i++ {
		if i == casts/3 {
			before := calls.Load()
			require.NoError(t, px.Close()) // the proxy dies with what it holds
			time.Sleep(500 * time.Millisecond)
			px, err = driver.NewProxy(ctx, tr.Matchmaker(), po)
			require.NoError(t, err)
			defer px.Close()
			t.Logf("proxy restarted after %d calls", before)
		}
		require.NoError(t, cl.Cast(ctx, nil, "note", NewMap("i", i)))
		time.Sleep(5 * time.Millisecond)
	}
	afterRestart := calls.Load()
	require.Eventually(t, func() bool { return calls.Load() > afterRestart+50 }, 10*time.Second, 10*time.Millisecond, "calls did not resume")
	close(stop)
	<-done
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(runs) == casts
	}, 15*time.Second, 20*time.Millisecond, "casts lost: %d of %d arrived", func() int { mu.Lock(); defer mu.Unlock(); return len(runs) }(), casts)
	mu.Lock()
	for i, n := range runs {
		require.Equal(t, 1, n, "cast %d ran %d times", i, n)
	}
	mu.Unlock()
	t.Log(fmt.Sprintf("%d calls (%d timed out around the restart), %d casts each run once", calls.Load(), failed.Load(), casts))
}
