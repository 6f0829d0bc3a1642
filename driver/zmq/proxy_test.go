package zmq

import (
	"context"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/internal/zmqwire"
	"github.com/goslo/goslo/matchmaker"
)

func testProxy(t *testing.T, mm matchmaker.Matchmaker, o ProxyOptions) *Proxy {
	o.Host, o.BindAddress, o.MinPort, o.MaxPort, o.BindRetries = "127.0.0.1", "127.0.0.1", 49153, 65536, 100
	p, err := NewProxy(context.Background(), mm, o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	return p
}

// TestProxyDropsBadInput: malformed, truncated, unknown-type and
// unknown-version messages are dropped and counted; the proxy keeps
// routing; a message for an unknown routing key is dropped, as in the
// reference, but counted.
func TestProxyDropsBadInput(t *testing.T) {
	mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer mm.Close()
	p := testProxy(t, mm, ProxyOptions{})
	require.Equal(t, DoubleRouter, p.Kind())
	pubs, err := mm.Publishers(context.Background())
	require.NoError(t, err)
	require.Equal(t, []matchmaker.Publisher{{Pub: p.Publisher(), Frontend: p.Frontend()}}, pubs)
	routers, _ := mm.Routers(context.Background())
	require.Equal(t, []string{p.Backend()}, routers)

	zctx, err := zmq.NewContext()
	require.NoError(t, err)
	defer zctx.Term()
	cli, _ := zctx.NewSocket(zmq.DEALER)
	defer cli.Close()
	cli.SetLinger(0)
	cli.SetIdentity("127.0.0.1/c1")
	require.NoError(t, cli.Connect(zmqwire.TCPAddress(p.Frontend())))
	srv, _ := zctx.NewSocket(zmq.DEALER)
	defer srv.Close()
	srv.SetLinger(0)
	srv.SetIdentity("127.0.0.1/t/s/1")
	require.NoError(t, srv.Connect(zmqwire.TCPAddress(p.Backend())))
	srv.SetRcvtimeo(5 * time.Second)
	// The proxy routes to srv only once its ROUTER attached srv's
	// connection (identity learnt); a message it read from srv proves it
	// did: a truncated one, dropped and counted.
	_, err = srv.SendMessage("x")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return p.Stats().Dropped == 1 }, 10*time.Second, 5*time.Millisecond, "%+v", p.Stats())

	bad := [][]string{
		{"x"},                 // truncated
		{"", "1.0", "1", "k"}, // too short
		{"nodelim", "1.0", "1", "127.0.0.1/t/s/1", "m", "p"}, // no delimiter
		{"", "1.0", "9", "127.0.0.1/t/s/1", "m", "p"},        // unknown type
		{"", "2.0", "1", "127.0.0.1/t/s/1", "m", "p"},        // unknown version
		{"", "1.0", "1", "127.0.0.1/nobody", "m", "p"},       // unroutable: silently lost
	}
	for _, m := range bad {
		parts := make([]any, len(m))
		for i, f := range m {
			parts[i] = f
		}
		_, err := cli.SendMessage(parts...)
		require.NoError(t, err)
	}
	_, err = cli.SendMessage("", "1.0", "2", "127.0.0.1/t/s/1", "mid-1", "payload")
	require.NoError(t, err)
	got, err := srv.RecvMessage(0)
	require.NoError(t, err)
	require.Equal(t, []string{"", "1.0", "127.0.0.1/c1", "2", "mid-1", "payload"}, got)
	// Five malformed, one unroutable (silently lost in the reference; counted
	// here), besides srv's probe. The proxy counts a forward once its send
	// returns, which may be after the server has the message: wait for the
	// counts.
	require.Eventually(t, func() bool { st := p.Stats(); return st.Dropped == 1+6 && st.FrontToBack == 1 }, 10*time.Second, 10*time.Millisecond, "%+v", p.Stats())
	require.EqualValues(t, 0, p.Stats().BackToFront)
}

// TestProxyKinds: the ports select the kind as in the reference; a single
// router registers its frontend as its router and routes on one socket.
func TestProxyKinds(t *testing.T) {
	require.Equal(t, SingleRouter, ProxyOptions{FrontendPort: 5000}.Kind())
	require.Equal(t, DoubleRouter, ProxyOptions{FrontendPort: 5000, BackendPort: 5001}.Kind())
	require.Equal(t, DoubleRouter, ProxyOptions{BackendPort: 5001}.Kind())
	require.Equal(t, LocalPublisher, ProxyOptions{LocalPublisher: true, FrontendPort: 5000}.Kind())

	mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer mm.Close()
	l, err := zmq.NewSocket(zmq.REP) // only to find a free port
	require.NoError(t, err)
	require.NoError(t, l.Bind("tcp://127.0.0.1:*"))
	ep, _ := l.GetLastEndpoint()
	l.Close()
	port := 0
	for i := len(ep) - 1; i >= 0; i-- {
		if ep[i] == ':' {
			port = atoi(ep[i+1:])
			break
		}
	}
	time.Sleep(50 * time.Millisecond)
	p := testProxy(t, mm, ProxyOptions{FrontendPort: port})
	require.Equal(t, SingleRouter, p.Kind())
	require.Equal(t, compat.HostPort("127.0.0.1", port), p.Frontend())
	routers, _ := mm.Routers(context.Background())
	require.Equal(t, []string{p.Frontend()}, routers)

	// Through a single router: a proxy-mode server and client on one socket.
	d, err := NewZMQ(mm, proxyModeOptions(2, nil))
	require.NoError(t, err)
	defer d.Close()
	s, err := d.Listen(context.Background(), compat.Target{Topic: "one", Server: "s"}, func(r *Request) { _ = r.Reply([]byte("pong")) })
	require.NoError(t, err)
	defer s.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reply, err := d.Call(ctx, compat.Target{Topic: "one", Server: "s"}, []byte("ping"))
	require.NoError(t, err)
	require.Equal(t, "pong", string(reply))

	// Stop unregisters.
	require.NoError(t, p.Stop(context.Background()))
	routers, _ = mm.Routers(context.Background())
	require.Empty(t, routers)
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestLocalPublisher: a local publisher proxy subscribes to every central
// publisher and republishes; a consumer with subscribe_on pointing at it
// gets the fanouts that clients send through the central proxy.
func TestLocalPublisher(t *testing.T) {
	mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer mm.Close()
	central := testProxy(t, mm, ProxyOptions{PubSub: true})
	local := testProxy(t, mm, ProxyOptions{LocalPublisher: true})
	require.Equal(t, LocalPublisher, local.Kind())
	pubs, _ := mm.Publishers(context.Background())
	require.Len(t, pubs, 1, "a local publisher registers nothing")

	o := proxyModeOptions(2, func(c *compat.Config) { c.ZMQ.UsePubSub = true })
	srvOpts := o
	srvOpts.SubscribeOn = []string{local.Publisher()}
	srvD, err := NewZMQ(mm, srvOpts)
	require.NoError(t, err)
	defer srvD.Close()
	cliD, err := NewZMQ(mm, o)
	require.NoError(t, err)
	defer cliD.Close()
	got := make(chan string, 4)
	s, err := srvD.Listen(context.Background(), compat.Target{Topic: "lp", Server: "s"}, func(r *Request) { got <- r.Type.String() + " " + string(r.Payload) })
	require.NoError(t, err)
	defer s.Stop(context.Background())
	// The local publisher's own SUB must be subscribed upstream before the
	// fanout leaves: the slow-joiner window of any PUB/SUB chain.
	require.Eventually(t, func() bool {
		if err := cliD.Cast(context.Background(), compat.Target{Topic: "lp", Fanout: true}, []byte("f")); err != nil {
			return false
		}
		select {
		case m := <-got:
			require.Equal(t, "CAST_FANOUT f", m)
			return true
		case <-time.After(200 * time.Millisecond):
			return false
		}
	}, 5*time.Second, time.Millisecond)
	// The counters move just after the sends the consumer already saw.
	require.Eventually(t, func() bool { return local.Stats().Published > 0 && central.Stats().Published > 0 },
		10*time.Second, time.Millisecond, "local %+v, central %+v", local.Stats(), central.Stats())
}

// TestServerIdentityTakeover: a proxy-mode server started after another of
// its target stopped (same driver) takes over its identity, and its
// registration; two live servers of one target never share one.
func TestServerIdentityTakeover(t *testing.T) {
	mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
	d, err := NewZMQ(mm, proxyModeOptions(1, func(c *compat.Config) { c.ZMQ.RPCUseAcks = true }))
	require.NoError(t, err)
	defer d.Close()
	ctx := context.Background()
	tg := compat.Target{Topic: "t", Server: "s"}
	h := func(r *Request) {}
	a, err := d.Listen(ctx, tg, h)
	require.NoError(t, err)
	b, err := d.Listen(ctx, tg, h)
	require.NoError(t, err)
	require.NotEqual(t, a.addr, b.addr, "two live servers, two identities")
	require.NotSame(t, a.cache, b.cache)
	first, cache := a.addr, a.cache
	require.NoError(t, a.Stop(ctx))
	hosts, _ := mm.Hosts(ctx, tg, compat.Dealer)
	require.Equal(t, []string{b.addr}, hosts)

	a2, err := d.Listen(ctx, tg, h)
	require.NoError(t, err)
	defer a2.Stop(ctx)
	require.Equal(t, first, a2.addr, "the stopped server's identity is taken over")
	require.Same(t, cache, a2.cache, "and its TTL cache")
	hosts, _ = mm.Hosts(ctx, tg, compat.Dealer)
	require.ElementsMatch(t, []string{b.addr, first}, hosts)
	require.NoError(t, b.Stop(ctx))

	// Another target has its own.
	o2, err := d.Listen(ctx, compat.Target{Topic: "t", Server: "other"}, h)
	require.NoError(t, err)
	defer o2.Stop(ctx)
	require.NotEqual(t, first, o2.addr)
	require.Contains(t, o2.addr, "/t/other/")
}

// proxyModeOptions is the driver options of a proxy-mode peer on loopback
// with the given workers; edit changes the config first.
func proxyModeOptions(workers int, edit func(*compat.Config)) Options {
	c := compat.DefaultConfig("127.0.0.1")
	c.ZMQ.RPCZMQBindAddress = "127.0.0.1"
	c.ZMQ.UseRouterProxy = true
	if edit != nil {
		edit(c)
	}
	o := OptionsFrom(c)
	o.Workers = workers
	return o
}
