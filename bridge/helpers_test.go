package bridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/bridge"
	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/envelope"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testLogger() *slog.Logger {
	lvl := slog.LevelWarn
	if os.Getenv("BRIDGE_TEST_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// zmqTransport is a zmq bus on the Redis matchmaker at addr, on loopback.
func zmqTransport(t testing.TB, addr string) *goslo.Transport {
	t.Helper()
	tr, err := goslo.NewTransport(context.Background(), "zmq+redis://"+addr, goslo.WithLogger(testLogger()), goslo.WithOptions(func(c *compat.Config) {
		c.ZMQ.RPCZMQHost = "127.0.0.1"
		c.ZMQ.RPCZMQBindAddress = "127.0.0.1"
		c.ZMQ.ZMQTargetUpdate = 2 // routing tables refreshed every 2 s (bridge failover)
	}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func rabbitTransport(t testing.TB, url string) *goslo.Transport {
	t.Helper()
	tr, err := goslo.NewTransport(context.Background(), url, goslo.WithLogger(testLogger()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// event is what a test server saw.
type event struct {
	Server string
	Method string
	Kind   string // "call" or "cast"
	Args   *goslo.Map
	Ctx    *goslo.Map
}

// testServer is a Go RPC server of topic named name on a bus.
type testServer struct {
	name   string
	srv    *goslo.RPCServer
	events chan event
}

func startServer(t testing.TB, tr *goslo.Transport, topic, name string) *testServer {
	t.Helper()
	s := &testServer{name: name, events: make(chan event, 1000)}
	rec := func(method, kind string) goslo.Handler {
		return func(ctx context.Context, rctx *goslo.Map, args *goslo.Map) (any, error) {
			s.events <- event{Server: name, Method: method, Kind: kind, Args: args, Ctx: rctx}
			return nil, nil
		}
	}
	ep := goslo.NewEndpoint("", "1.0").
		Handle("echo", func(_ context.Context, _ *goslo.Map, args *goslo.Map) (any, error) { return args, nil }).
		Handle("whoami", func(context.Context, *goslo.Map, *goslo.Map) (any, error) { return name, nil }).
		Handle("context", func(_ context.Context, rctx *goslo.Map, _ *goslo.Map) (any, error) { return rctx, nil }).
		Handle("boom", func(_ context.Context, _ *goslo.Map, args *goslo.Map) (any, error) {
			m, _ := args.Get("message")
			msg, _ := m.(string)
			return nil, envelope.ValueError(msg)
		}).
		Handle("slow", func(ctx context.Context, _ *goslo.Map, args *goslo.Map) (any, error) {
			v, _ := args.Get("seconds")
			sec, _ := v.(float64)
			select {
			case <-time.After(time.Duration(sec * float64(time.Second))):
			case <-ctx.Done():
			}
			return sec, nil
		}).
		Handle("cast_me", rec("cast_me", "cast")).
		Handle("fanout_me", rec("fanout_me", "cast"))
	srv, err := goslo.NewRPCServer(tr, goslo.Target{Topic: topic, Server: name}, ep)
	require.NoError(t, err)
	require.NoError(t, srv.Start(context.Background()))
	s.srv = srv
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
	})
	return s
}

func (s *testServer) next(t testing.TB, d time.Duration) event {
	t.Helper()
	select {
	case e := <-s.events:
		return e
	case <-time.After(d):
		t.Fatalf("server %s: no event within %v", s.name, d)
	}
	return event{}
}

func (s *testServer) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case e := <-s.events:
		t.Fatalf("server %s: unexpected event %+v", s.name, e)
	case <-time.After(d):
	}
}

func client(tr *goslo.Transport, topic, server string, timeout time.Duration) *goslo.RPCClient {
	return goslo.NewRPCClient(tr, goslo.Target{Topic: topic, Server: server, Version: "1.0"}).Prepare(goslo.PrepareOptions{Timeout: timeout})
}

// counter is an Observer that counts, for the tests.
type counter struct {
	mu        sync.Mutex
	forwarded map[string]int // "dir kind"
	failed    map[string]int // "dir kind reason"
	inFlight  map[string]int
}

func newCounter() *counter {
	return &counter{forwarded: map[string]int{}, failed: map[string]int{}, inFlight: map[string]int{}}
}

func (c *counter) Forwarded(dir, topic string, kind driver.Kind) {
	c.mu.Lock()
	c.forwarded[dir+" "+kind.String()]++
	c.mu.Unlock()
}

func (c *counter) Failed(dir, topic string, kind driver.Kind, reason string) {
	c.mu.Lock()
	c.failed[dir+" "+kind.String()+" "+reason]++
	c.mu.Unlock()
}

func (c *counter) InFlight(dir, topic string, delta int) {
	c.mu.Lock()
	c.inFlight[dir] += delta
	c.mu.Unlock()
}

func (c *counter) Mirrors(string, int) {}

func (c *counter) get(m map[string]int, k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return m[k]
}

func (c *counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forwarded, c.failed = map[string]int{}, map[string]int{}
}

func (c *counter) snapshot() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprint(c.forwarded, c.failed)
}

// bridgeOpts are a test bridge's knobs.
type bridgeOpts struct {
	topics, notifications []string
	servers               [2]map[string][]string // RabbitMQ sides' server lists
	names                 [2]string
	group                 string
	obs                   bridge.Observer
}

// startBridge runs a bridge on its own transports of the two URLs (as a
// separate process would).
func startBridge(t testing.TB, mk [2]func(testing.TB) *goslo.Transport, o bridgeOpts) *bridge.Bridge {
	t.Helper()
	log := testLogger()
	var sides [2]bridge.Side
	for i := range sides {
		tr := mk[i](t)
		s, closeReg, err := bridge.SideFor(o.names[i], tr.Driver(), tr.Config(), o.servers[i], log)
		require.NoError(t, err)
		t.Cleanup(func() { _ = closeReg() })
		sides[i] = s
	}
	group := o.group
	if group == "" {
		group = "test"
	}
	b, err := bridge.New(bridge.Config{A: sides[0], B: sides[1], Topics: o.topics, Notifications: o.notifications,
		DiscoverEvery: 200 * time.Millisecond, CallTimeout: 15 * time.Second,
		Lease: bridge.LeaseFor(group, log, sides[0], sides[1]), Observer: o.obs, Logger: log})
	require.NoError(t, err)
	require.NoError(t, b.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = b.Stop(ctx)
	})
	return b
}

// waitMirrors waits until b runs exactly want.
func waitMirrors(t testing.TB, b interface{ Mirrors() []string }, want ...string) {
	t.Helper()
	require.Eventually(t, func() bool { return fmt.Sprint(b.Mirrors()) == fmt.Sprint(want) }, 20*time.Second, 20*time.Millisecond,
		"mirrors: %v, want %v", b.Mirrors(), want)
}

// notes collects notifications a listener got.
type notes struct {
	mu  sync.Mutex
	got []goslo.Notification
}

func (n *notes) handler(_ context.Context, x goslo.Notification) error {
	n.mu.Lock()
	n.got = append(n.got, x)
	n.mu.Unlock()
	return nil
}

func (n *notes) ids() map[string]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]int{}
	for _, x := range n.got {
		out[x.EventType+"/"+x.Priority]++
	}
	return out
}

func startListener(t testing.TB, tr *goslo.Transport, topic string) *notes {
	t.Helper()
	n := &notes{}
	h := map[string]goslo.NotificationHandler{}
	for _, p := range bridge.Priorities {
		h[p] = n.handler
	}
	l := goslo.NewNotificationListener(tr, []string{topic}, &goslo.NotificationEndpoint{Handlers: h})
	require.NoError(t, l.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = l.Stop(ctx)
	})
	return n
}
