package goslo

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	driver "github.com/goslo/goslo/driver/zmq"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/rabbittest"
)

// rabbitTransport is a transport of the rabbit driver on a private
// broker (one per test), reconnecting quickly, with more options if given.
func rabbitTransport(t *testing.T, more ...func(*compat.Config)) (*Transport, *rabbittest.Node) {
	n := rabbittest.Start(t)
	n.AddVhost("goslo-conformance")
	tr, err := NewTransport(context.Background(), n.URL("goslo-conformance"), WithOptions(func(c *compat.Config) {
		c.Rabbit.KombuReconnectDelay = 0.1
		c.Rabbit.RabbitRetryInterval = 0
		c.Rabbit.RabbitIntervalMax = 1
		for _, f := range more {
			f(c)
		}
	}))
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close() })
	return tr, n
}

// quorumQueueManager is the quorum + queue-manager deployment (spec §5.2).
func quorumQueueManager(c *compat.Config) {
	c.Rabbit.RabbitQuorumQueue = true
	c.Rabbit.RabbitTransientQuorumQueue = true
	c.Rabbit.UseQueueManager = true
	c.Rabbit.Hostname = "goslo-conformance"
}

// features of a mode under test, in the style of watermill's test suite.
type mode struct {
	name          string
	dynamic       bool
	serialization string
	calls         int // sequential calls that must all succeed
	routerProxy   bool
	pubSub        bool
	acks          bool
	rabbit        bool // the RabbitMQ driver on a private broker
	rabbitOpts    func(*compat.Config)
}

var modes = []mode{
	{name: "direct-static-json", serialization: "json", calls: 100000},
	{name: "direct-static-msgpack", serialization: "msgpack", calls: 10000},
	{name: "direct-dynamic-json", dynamic: true, serialization: "json", calls: 3000},
	{name: "proxy-json", routerProxy: true, serialization: "json", calls: 20000},
	{name: "proxy-msgpack", routerProxy: true, serialization: "msgpack", calls: 3000},
	{name: "proxy-pubsub-json", routerProxy: true, pubSub: true, serialization: "json", calls: 3000},
	{name: "proxy-acks-json", routerProxy: true, acks: true, serialization: "json", calls: 3000},
	{name: "proxy-pubsub-acks-json", routerProxy: true, pubSub: true, acks: true, serialization: "json", calls: 3000},
	{name: "direct-pubsub-json", pubSub: true, serialization: "json", calls: 3000},
	{name: "rabbit", rabbit: true, calls: 3000},
	{name: "rabbit-quorum-qmanager", rabbit: true, rabbitOpts: quorumQueueManager, calls: 3000},
}

// TestConformance runs one suite in every mode goslo implements: every
// message type, timeouts, a server restarted mid-run (on RabbitMQ the
// broker too), and many sequential calls with none lost.
func TestConformance(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { conformance(t, m) })
	}
}

func conformance(t *testing.T, m mode) {
	calls := m.calls
	if testing.Short() {
		calls = 500
	}
	var tr *Transport
	var node *rabbittest.Node
	if m.rabbit {
		var opts []func(*compat.Config)
		if m.rabbitOpts != nil {
			opts = append(opts, m.rabbitOpts)
		}
		tr, node = rabbitTransport(t, opts...)
	} else {
		tr = localTransport(t, WithOptions(func(c *compat.Config) {
			c.ZMQ.RPCZMQSerialization = m.serialization
			c.ZMQ.UseDynamicConnections = m.dynamic
			c.ZMQ.UseRouterProxy = m.routerProxy
			c.ZMQ.UsePubSub = m.pubSub
			c.ZMQ.RPCUseAcks = m.acks
			c.ZMQ.RPCAckTimeoutBase = 1
		}))
	}
	ctx := context.Background()
	if m.routerProxy || m.pubSub {
		po := driver.ProxyOptionsFrom(tr.Config())
		po.Host = "127.0.0.1"
		px, err := driver.NewProxy(ctx, tr.Matchmaker(), po)
		require.NoError(t, err)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("proxy stats: %+v", px.Stats())
			}
			_ = px.Stop(context.Background())
		})
	}
	var mu sync.Mutex
	seen := map[string]int{}
	ep := NewEndpoint("", "1.0").
		Handle("echo", func(_ context.Context, _ *Map, a *Map) (any, error) { return a, nil }).
		Handle("note", func(_ context.Context, _ *Map, a *Map) (any, error) {
			v, _ := a.Get("k")
			mu.Lock()
			seen[v.(string)]++
			mu.Unlock()
			return nil, nil
		}).
		Handle("slow", func(ctx context.Context, _ *Map, _ *Map) (any, error) {
			time.Sleep(300 * time.Millisecond)
			return "late", nil
		})
	start := func(name string) *RPCServer {
		s, err := NewRPCServer(tr, Target{Topic: "conf", Server: name}, ep)
		require.NoError(t, err)
		require.NoError(t, s.Start(ctx))
		return s
	}
	s1, s2 := start("a"), start("b")
	cl := NewRPCClient(tr, Target{Topic: "conf", Version: "1.0"}).Prepare(PrepareOptions{Server: "a", Timeout: 5 * time.Second})

	// Every message type.
	res, err := cl.Call(ctx, nil, "echo", NewMap("x", "y"))
	require.NoError(t, err)
	require.True(t, envelope.Equal(NewMap("x", "y"), res))
	require.NoError(t, cl.Cast(ctx, nil, "note", NewMap("k", "cast")))
	fan := true
	require.NoError(t, cl.Prepare(PrepareOptions{Fanout: fan}).Cast(ctx, nil, "note", NewMap("k", "fanout")))
	got := make(chan string, 2)
	l := NewNotificationListener(tr, []string{"notes-conf"}, &NotificationEndpoint{Handlers: map[string]NotificationHandler{
		"info": func(_ context.Context, n Notification) error { got <- n.EventType; return nil }}})
	require.NoError(t, l.Start(ctx))
	require.NoError(t, NewNotifier(tr, "p", "notes-conf").Info(ctx, nil, "e.t", nil))
	select {
	case e := <-got:
		require.Equal(t, "e.t", e)
	case <-time.After(5 * time.Second):
		t.Fatal("notification lost")
	}
	require.NoError(t, l.Stop(ctx))
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen["cast"] == 1 && seen["fanout"] == 2
	}, 5*time.Second, 10*time.Millisecond)

	// Timeouts: a slow method, and a target nobody serves.
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = cl.Call(tctx, nil, "slow", nil)
	cancel()
	require.ErrorIs(t, err, ErrMessagingTimeout)
	tctx, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = NewRPCClient(tr, Target{Topic: "nobody"}).Call(tctx, nil, "echo", nil)
	cancel()
	require.ErrorIs(t, err, ErrMessagingTimeout)

	// A server restarted mid-run: calls resume.
	require.NoError(t, s1.Stop(ctx))
	s1 = start("a")
	require.Eventually(t, func() bool {
		c, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := cl.Call(c, nil, "echo", nil)
		return err == nil
	}, 10*time.Second, time.Millisecond)

	if node != nil {
		// The broker restarted mid-run: servers, listener queues and the
		// reply queue come back, and calls resume.
		node.Restart()
		began := time.Now()
		require.Eventually(t, func() bool {
			c, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := cl.Call(c, nil, "echo", nil)
			return err == nil
		}, 60*time.Second, 10*time.Millisecond)
		t.Logf("%s: calls resumed %v after the broker was back", m.name, time.Since(began).Round(time.Millisecond))
		require.NoError(t, cl.Cast(ctx, nil, "note", NewMap("k", "after-restart")))
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return seen["after-restart"] == 1
		}, 10*time.Second, 10*time.Millisecond)
	}

	// Sequential calls: none lost.
	began := time.Now()
	for i := 0; i < calls; i++ {
		res, err := cl.Call(ctx, nil, "echo", NewMap("i", int64(i)))
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if v, _ := res.(*Map).Get("i"); v != int64(i) {
			t.Fatalf("call %d answered %s", i, envelope.Repr(res))
		}
	}
	t.Logf("%s: %d sequential calls, none lost (%v)", m.name, calls, time.Since(began).Round(time.Millisecond))
	require.NoError(t, s1.Stop(ctx))
	require.NoError(t, s2.Stop(ctx))
}

// TestRabbitNotificationListenerOptions: a pool listener and a listener
// allowing requeues, through the public API.
func TestRabbitNotificationListenerOptions(t *testing.T) {
	tr, _ := rabbitTransport(t)
	ctx := context.Background()
	main := make(chan string, 10)
	pool := make(chan string, 10)
	var calls atomic.Int32
	l1 := NewNotificationListener(tr, []string{"opts"}, &NotificationEndpoint{Handlers: map[string]NotificationHandler{
		"info": func(_ context.Context, n Notification) error {
			main <- n.EventType
			if calls.Add(1) == 1 {
				return ErrRequeue // the first delivery only
			}
			return nil
		}}}).AllowRequeue()
	l2 := NewNotificationListener(tr, []string{"opts"}, &NotificationEndpoint{Handlers: map[string]NotificationHandler{
		"info": func(_ context.Context, n Notification) error { pool <- n.EventType; return ErrRequeue }}}).WithPool("opts-pool")
	require.NoError(t, l1.Start(ctx))
	require.NoError(t, l2.Start(ctx))
	require.NoError(t, NewNotifier(tr, "p", "opts").Info(ctx, nil, "e.t", nil))
	for i := 0; i < 2; i++ { // delivered, requeued, delivered again
		select {
		case e := <-main:
			require.Equal(t, "e.t", e)
		case <-time.After(5 * time.Second):
			t.Fatal("notification not redelivered")
		}
	}
	select {
	case <-pool:
	case <-time.After(5 * time.Second):
		t.Fatal("pool listener got nothing")
	}
	select {
	case <-pool:
		t.Fatal("the pool listener does not allow requeues: acked, not redelivered")
	case <-time.After(500 * time.Millisecond):
	}
	require.NoError(t, l1.Stop(ctx))
	require.NoError(t, l2.Stop(ctx))
}
