package bridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
	zmqdrv "github.com/goslo/goslo/driver/zmq"
	"github.com/goslo/goslo/internal/rabbittest"
	"github.com/goslo/goslo/internal/redistest"
)

// checkPair runs the same checks over any pair: a server on each bus
// reached from the other under its own name, casts, a failure, fanout
// once each, notifications once each, and no mirror of a mirror.
func checkPair(t *testing.T, b mirrorer, trs [2]*goslo.Transport, names [2]string, wantMirrors ...string) {
	ctx := context.Background()
	s0 := startServer(t, trs[0], "pt", names[0])
	s1 := startServer(t, trs[1], "pt", names[1])
	l0 := startListener(t, trs[0], "pn")
	l1 := startListener(t, trs[1], "pn")
	waitMirrors(t, b, wantMirrors...)
	srvs := [2]*testServer{s0, s1}
	for i := range 2 {
		cl := client(trs[i], "pt", "", 10*time.Second)
		other := names[1-i]
		res, err := cl.Prepare(goslo.PrepareOptions{Server: other}).Call(ctx, goslo.NewMap("user", "u"), "whoami", nil)
		require.NoError(t, err)
		require.Equal(t, other, res)
		_, err = cl.Prepare(goslo.PrepareOptions{Server: other}).Call(ctx, nil, "boom", goslo.NewMap("message", "bad"))
		var re *goslo.RemoteError
		require.ErrorAs(t, err, &re)
		require.Equal(t, "ValueError", re.Class)
		require.NoError(t, cl.Prepare(goslo.PrepareOptions{Server: other}).Cast(ctx, nil, "cast_me", nil))
		require.Equal(t, other, srvs[1-i].next(t, 10*time.Second).Server)
		require.NoError(t, cl.Prepare(goslo.PrepareOptions{Fanout: true}).Cast(ctx, nil, "fanout_me", nil))
		srvs[0].next(t, 10*time.Second)
		srvs[1].next(t, 10*time.Second)
		srvs[0].none(t, 500*time.Millisecond)
		srvs[1].none(t, 10*time.Millisecond)
	}
	require.NoError(t, goslo.NewNotifier(trs[0], "p0", "pn").Info(ctx, nil, "from.0", nil))
	require.NoError(t, goslo.NewNotifier(trs[1], "p1", "pn").Error(ctx, nil, "from.1", nil))
	want := map[string]int{"from.0/INFO": 1, "from.1/ERROR": 1}
	for _, l := range []*notes{l0, l1} {
		require.Eventually(t, func() bool { return len(l.ids()) == 2 }, 10*time.Second, 20*time.Millisecond, "%v", l.ids())
	}
	time.Sleep(700 * time.Millisecond)
	require.Equal(t, want, l0.ids())
	require.Equal(t, want, l1.ids())
	require.Equal(t, wantMirrors, b.Mirrors())
}

type mirrorer = interface{ Mirrors() []string }

// TestRabbitRabbit bridges two virtual hosts of one broker: RabbitMQ
// servers are known from the --server lists.
func TestRabbitRabbit(t *testing.T) {
	node := rabbittest.Start(t)
	node.AddVhost("east")
	node.AddVhost("west")
	mk := [2]func(testing.TB) *goslo.Transport{
		func(t testing.TB) *goslo.Transport { return rabbitTransport(t, node.URL("east")) },
		func(t testing.TB) *goslo.Transport { return rabbitTransport(t, node.URL("west")) },
	}
	trs := [2]*goslo.Transport{mk[0](t), mk[1](t)}
	b := startBridge(t, mk, bridgeOpts{topics: []string{"pt"}, notifications: []string{"pn"}, names: [2]string{"east", "west"},
		servers: [2]map[string][]string{{"pt": {"e1"}}, {"": {"w1"}}}})
	checkPair(t, b, trs, [2]string{"e1", "w1"}, "east:pt.w1", "west:pt.e1")
}

// TestZmqZmq bridges two zmq buses, each with its own Redis matchmaker:
// servers are found in the matchmakers, mirrors are told apart by the
// bridge's markers.
func TestZmqZmq(t *testing.T) {
	r0, r1 := redistest.Start(t), redistest.Start(t)
	mk := [2]func(testing.TB) *goslo.Transport{
		func(t testing.TB) *goslo.Transport { return zmqTransport(t, r0.Addr) },
		func(t testing.TB) *goslo.Transport { return zmqTransport(t, r1.Addr) },
	}
	trs := [2]*goslo.Transport{mk[0](t), mk[1](t)}
	b := startBridge(t, mk, bridgeOpts{topics: []string{"pt"}, notifications: []string{"pn"}, names: [2]string{"zmq0", "zmq1"}})
	checkPair(t, b, trs, [2]string{"z0", "z1"}, "zmq0:pt.z1", "zmq1:pt.z0")
}

// TestZmqZmqTwoBridges: two bridges of one group between two zmq buses
// share the lease in the first bus's matchmaker: both serve calls, one
// forwards fanouts; when it stops, the other takes over.
func TestZmqZmqTwoBridges(t *testing.T) {
	r0, r1 := redistest.Start(t), redistest.Start(t)
	mk := [2]func(testing.TB) *goslo.Transport{
		func(t testing.TB) *goslo.Transport { return zmqTransport(t, r0.Addr) },
		func(t testing.TB) *goslo.Transport { return zmqTransport(t, r1.Addr) },
	}
	trs := [2]*goslo.Transport{mk[0](t), mk[1](t)}
	s0 := startServer(t, trs[0], "pt", "z0")
	s1 := startServer(t, trs[1], "pt", "z1")
	o := bridgeOpts{topics: []string{"pt"}, names: [2]string{"zmq0", "zmq1"}, group: "two"}
	b1 := startBridge(t, mk, o)
	waitMirrors(t, b1, "zmq0:pt.z1", "zmq1:pt.z0")
	b2 := startBridge(t, mk, o)
	waitMirrors(t, b2, "zmq0:pt.z1", "zmq1:pt.z0")
	require.True(t, b1.Active())
	require.False(t, b2.Active())
	time.Sleep(3 * time.Second) // the clients' routing tables learn b2's mirrors
	ctx := context.Background()
	fanouts := func() {
		t.Helper()
		for i := range 2 {
			require.NoError(t, client(trs[i], "pt", "", 10*time.Second).Prepare(goslo.PrepareOptions{Fanout: true}).Cast(ctx, nil, "fanout_me", nil))
			s0.next(t, 10*time.Second)
			s1.next(t, 10*time.Second)
			s0.none(t, 500*time.Millisecond)
			s1.none(t, 10*time.Millisecond)
		}
	}
	fanouts()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	require.NoError(t, b1.Stop(sctx))
	cancel()
	require.Eventually(t, b2.Active, 10*time.Second, 10*time.Millisecond)
	time.Sleep(3 * time.Second) // the clients' routing tables forget b1's mirrors
	fanouts()
	for i := range 2 {
		other := [2]string{"z1", "z0"}[i]
		res, err := client(trs[i], "pt", other, 10*time.Second).Call(ctx, nil, "whoami", nil)
		require.NoError(t, err)
		require.Equal(t, other, res)
	}
}

// TestZmqProxyRabbit: the zmq side in proxy mode (use_router_proxy, a goslo
// proxy): zmq servers are found under their DEALER keys, and the mirrors
// of RabbitMQ servers register there as proxy-mode servers do.
func TestZmqProxyRabbit(t *testing.T) {
	red := redistest.Start(t)
	node := rabbittest.Start(t)
	node.AddVhost("px")
	mkZ := func(t testing.TB) *goslo.Transport {
		t.Helper()
		tr, err := goslo.NewTransport(context.Background(), "zmq+redis://"+red.Addr, goslo.WithLogger(testLogger()), goslo.WithOptions(func(c *compat.Config) {
			c.ZMQ.RPCZMQHost = "127.0.0.1"
			c.ZMQ.RPCZMQBindAddress = "127.0.0.1"
			c.ZMQ.ZMQTargetUpdate = 2
			c.ZMQ.UseRouterProxy = true
		}))
		require.NoError(t, err)
		t.Cleanup(func() { _ = tr.Close() })
		return tr
	}
	mk := [2]func(testing.TB) *goslo.Transport{mkZ, func(t testing.TB) *goslo.Transport { return rabbitTransport(t, node.URL("px")) }}
	trs := [2]*goslo.Transport{mk[0](t), mk[1](t)}
	po := zmqdrv.ProxyOptionsFrom(trs[0].Config())
	po.Host = "127.0.0.1"
	px, err := zmqdrv.NewProxy(context.Background(), trs[0].Matchmaker(), po)
	require.NoError(t, err)
	t.Cleanup(func() { _ = px.Stop(context.Background()) })
	b := startBridge(t, mk, bridgeOpts{topics: []string{"pt"}, notifications: []string{"pn"}, names: [2]string{"zmq", "rabbit"},
		servers: [2]map[string][]string{nil, {"": {"r1"}}}})
	checkPair(t, b, trs, [2]string{"z1", "r1"}, "rabbit:pt.z1", "zmq:pt.r1")
}
