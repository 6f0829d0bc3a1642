package gosloprom_test

import (
	"context"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
	driver "github.com/goslo/goslo/driver/zmq"
	"github.com/goslo/goslo/extra/gosloprom"
	"github.com/goslo/goslo/matchmaker"
)

// metric finds the series of name whose labels include want.
func metric(t *testing.T, reg prometheus.Gatherer, name string, want map[string]string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

func counter(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	if m := metric(t, reg, name, labels); m != nil {
		return m.GetCounter().GetValue()
	}
	return 0
}

// TestMetricsCount: calls, a cast, a timeout and a malformed frame show
// up with their types and reasons, and CALL latencies in the histogram.
func TestMetricsCount(t *testing.T) {
	reg := prometheus.NewRegistry()
	ctx := context.Background()
	m, err := gosloprom.New(reg)
	require.NoError(t, err)
	tr, err := goslo.NewTransport(ctx, "zmq+dummy://", goslo.WithDriverObserver(m), goslo.WithOptions(func(c *compat.Config) {
		c.ZMQ.RPCZMQHost, c.ZMQ.RPCZMQBindAddress = "127.0.0.1", "127.0.0.1"
		c.MatchmakerRedis.CheckTimeout = 100
	}))
	require.NoError(t, err)
	defer tr.Close()
	ep := goslo.NewEndpoint("", "1.0").Handle("echo", func(_ context.Context, _ *goslo.Map, a *goslo.Map) (any, error) { return a, nil })
	srv, err := goslo.NewRPCServer(tr, goslo.Target{Topic: "m", Server: "s"}, ep)
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	defer srv.Stop(ctx)
	cl := goslo.NewRPCClient(tr, goslo.Target{Topic: "m", Server: "s", Version: "1.0"}).Prepare(goslo.PrepareOptions{Timeout: 5 * time.Second})
	for i := 0; i < 3; i++ {
		_, err := cl.Call(ctx, nil, "echo", nil)
		require.NoError(t, err)
	}
	require.NoError(t, cl.Cast(ctx, nil, "echo", nil))
	_, err = goslo.NewRPCClient(tr, goslo.Target{Topic: "nobody"}).Prepare(goslo.PrepareOptions{Timeout: time.Second}).Call(ctx, nil, "echo", nil)
	require.ErrorIs(t, err, goslo.ErrMessagingTimeout)

	// A request with an unknown version, straight to the server's ROUTER.
	zctx, err := zmq.NewContext()
	require.NoError(t, err)
	d, _ := zctx.NewSocket(zmq.DEALER)
	d.SetLinger(0)
	require.NoError(t, d.Connect("tcp://"+srv.Addr()))
	_, err = d.SendMessage("", "9.9", "1", "mid", "[{}, {}]")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return counter(t, reg, "goslo_messages_dropped_total", map[string]string{"type": "unknown", "reason": "malformed"}) == 1 &&
			counter(t, reg, "goslo_messages_received_total", map[string]string{"type": "CAST"}) == 1
	}, 5*time.Second, 10*time.Millisecond)
	d.Close()
	zctx.Term()

	require.Equal(t, 4.0, counter(t, reg, "goslo_messages_sent_total", map[string]string{"type": "CALL"}), "3 calls and the timed-out one")
	require.Equal(t, 3.0, counter(t, reg, "goslo_messages_received_total", map[string]string{"type": "CALL"}))
	require.Equal(t, 3.0, counter(t, reg, "goslo_messages_received_total", map[string]string{"type": "REPLY"}))
	require.Equal(t, 3.0, counter(t, reg, "goslo_messages_sent_total", map[string]string{"type": "REPLY"}))
	require.Equal(t, 1.0, counter(t, reg, "goslo_messages_sent_total", map[string]string{"type": "CAST"}))
	require.Equal(t, 1.0, counter(t, reg, "goslo_messages_dropped_total", map[string]string{"type": "CALL", "reason": "timeout"}))
	ok := metric(t, reg, "goslo_call_duration_seconds", map[string]string{"outcome": "ok"})
	require.NotNil(t, ok)
	require.EqualValues(t, 3, ok.GetHistogram().GetSampleCount())
	require.EqualValues(t, 1, metric(t, reg, "goslo_call_duration_seconds", map[string]string{"outcome": "timeout"}).GetHistogram().GetSampleCount())
	require.Zero(t, counter(t, reg, "goslo_matchmaker_errors_total", map[string]string{"op": "hosts"}), "nobody registered is not a matchmaker error")
}

type failingMM struct{ matchmaker.Matchmaker }

func (failingMM) Routers(context.Context) ([]string, error) {
	return nil, &matchmaker.UnavailableError{Op: "read", Addrs: []string{"127.0.0.1:1"}}
}

// TestMetricsMatchmakerAndProxy: failed matchmaker operations are counted
// by operation; a proxy's counters are exported.
func TestMetricsMatchmakerAndProxy(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := gosloprom.New(reg)
	require.NoError(t, err)
	dummy := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer dummy.Close()
	mm := m.Matchmaker(failingMM{dummy})
	_, err = mm.Routers(context.Background())
	require.ErrorIs(t, err, matchmaker.ErrMatchmakerUnavailable)
	require.Equal(t, 1.0, counter(t, reg, "goslo_matchmaker_errors_total", map[string]string{"op": "routers"}))

	px, err := driver.NewProxy(context.Background(), mm, driver.ProxyOptions{Host: "127.0.0.1", BindAddress: "127.0.0.1",
		MinPort: 49153, MaxPort: 65536, BindRetries: 50})
	require.NoError(t, err)
	defer px.Close()
	require.NoError(t, m.Proxy(px))
	zctx, err := zmq.NewContext()
	require.NoError(t, err)
	c, _ := zctx.NewSocket(zmq.DEALER)
	c.SetLinger(0)
	require.NoError(t, c.Connect("tcp://"+px.Frontend()))
	_, err = c.SendMessage("", "1.0", "2", "127.0.0.1/nobody", "mid", "[{}, {}]") // unroutable
	require.NoError(t, err)
	_, err = c.SendMessage("garbage")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return counter(t, reg, "goslo_proxy_dropped_total", nil) == 2 }, 5*time.Second, 10*time.Millisecond)
	c.Close()
	zctx.Term()
	require.NotNil(t, metric(t, reg, "goslo_proxy_messages_total", map[string]string{"direction": "front_to_back"}))
}
