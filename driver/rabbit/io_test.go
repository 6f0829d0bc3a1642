package rabbit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/driver/rabbit"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/rabbittest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testLogger() *slog.Logger {
	if os.Getenv("GOSLO_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

var vhostN atomic.Int32

// open builds a transport on a fresh vhost of n (or on vhost when given).
func open(t *testing.T, n *rabbittest.Node, vhost string, mutate func(*compat.Config)) *rabbit.Transport {
	t.Helper()
	if vhost == "" {
		vhost = fmt.Sprintf("goslo-io-%d", vhostN.Add(1))
		n.AddVhost(vhost)
	}
	return openURL(t, n.URL(vhost), mutate)
}

func openURL(t *testing.T, raw string, mutate func(*compat.Config)) *rabbit.Transport {
	t.Helper()
	u, err := compat.ParseTransportURL(raw)
	require.NoError(t, err)
	cfg := compat.DefaultConfig("goslo-test-host")
	cfg.Rabbit.KombuReconnectDelay = 0.1
	cfg.Rabbit.RabbitRetryInterval = 0
	cfg.Rabbit.RabbitRetryBackoff = 1
	cfg.Rabbit.RabbitIntervalMax = 1
	if mutate != nil {
		mutate(cfg)
	}
	tr, err := rabbit.Open(context.Background(), u, cfg, rabbit.OpenOptions{Logger: testLogger()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func reqMsg(method string, kv ...any) driver.Message {
	return driver.Message{Context: envelope.NewMap("user", "u1"), Body: envelope.NewMap("method", method, "args", envelope.NewMap(kv...))}
}

// echoServer answers echo with its args, boom with a ValueError, slow
// after the "for" seconds, and records every request.
type echoServer struct {
	name string
	mu   sync.Mutex
	got  []*driver.Request
	seen chan *driver.Request
}

func newEcho(name string) *echoServer {
	return &echoServer{name: name, seen: make(chan *driver.Request, 100)}
}

func (e *echoServer) handle(ctx context.Context, r *driver.Request) error {
	e.mu.Lock()
	e.got = append(e.got, r)
	e.mu.Unlock()
	e.seen <- r
	body, _ := r.Body.(*envelope.Map)
	method, _ := body.Get("method")
	args, _ := body.Get("args")
	switch method {
	case "echo":
		return r.Reply(envelope.NewMap("server", e.name, "args", args), nil)
	case "boom":
		return r.Reply(nil, envelope.ValueError("kaboom"))
	case "slow":
		a := args.(*envelope.Map)
		d, _ := a.Get("for")
		select {
		case <-time.After(time.Duration(d.(int64)) * time.Second):
		case <-ctx.Done():
		}
		return r.Reply("slept", nil)
	}
	return r.Reply(nil, envelope.NoSuchMethodError(fmt.Sprint(method)))
}

func listen(t *testing.T, tr *rabbit.Transport, target compat.Target, h driver.Handler) driver.Server {
	t.Helper()
	s, err := tr.Listen(ctxT(t, 30*time.Second), target, h)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return s
}

func TestBroker(t *testing.T) {
	n := rabbittest.Start(t)
	t.Run("RPC", func(t *testing.T) { testRPC(t, n) })
	t.Run("CallMonitor", func(t *testing.T) { testCallMonitor(t, n) })
	t.Run("Notifications", func(t *testing.T) { testNotifications(t, n) })
	t.Run("ReplyQueueMissing", func(t *testing.T) { testReplyQueueMissing(t, n) })
	t.Run("Close", func(t *testing.T) { testClose(t, n) })
	t.Run("ConnectionOptions", func(t *testing.T) { testConnectionOptions(t, n) })
	t.Run("DurableMismatch", func(t *testing.T) { testDurableMismatch(t, n) })
	t.Run("ConsumerCancel", func(t *testing.T) { testConsumerCancel(t, n) })
	t.Run("StreamFanout", func(t *testing.T) { testStreamFanout(t, n) })
	t.Run("Topology", func(t *testing.T) { testTopology(t, n) })
	t.Run("TopologyQuorum", func(t *testing.T) { testTopologyQuorum(t, n) })
	t.Run("Blocked", func(t *testing.T) { testBlocked(t, n) })
	t.Run("PipelinedCasts", func(t *testing.T) { testPipelinedCasts(t, n) })
	t.Run("PipelinedNack", func(t *testing.T) { testPipelinedNack(t, n) })
	t.Run("PipelinedKill", func(t *testing.T) { testPipelinedKill(t, n) })
	t.Run("Restart", func(t *testing.T) { testRestart(t, n) })
}

func testRPC(t *testing.T, n *rabbittest.Node) {
	vhost := "goslo-rpc"
	n.AddVhost(vhost)
	srvT := open(t, n, vhost, nil)
	cliT := open(t, n, vhost, nil)
	e1, e2 := newEcho("srv1"), newEcho("srv2")
	listen(t, srvT, compat.Target{Topic: "demo", Server: "srv1"}, e1.handle)
	listen(t, srvT, compat.Target{Topic: "demo", Server: "srv2"}, e2.handle)

	// call to the topic and to one server
	res, err := cliT.Call(ctxT(t, 10*time.Second), compat.Target{Topic: "demo"}, reqMsg("echo", "a", int64(1)))
	require.NoError(t, err)
	require.Contains(t, []any{"srv1", "srv2"}, mustGet(res, "server"))
	res, err = cliT.Call(ctxT(t, 10*time.Second), compat.Target{Topic: "demo", Server: "srv2"}, reqMsg("echo", "a", int64(2)))
	require.NoError(t, err)
	require.Equal(t, "srv2", mustGet(res, "server"))
	r := <-e2.seen
	for len(e2.seen) > 0 || r.Kind != driver.KindCall {
		r = <-e2.seen
	}
	require.Equal(t, driver.KindCall, r.Kind)
	uctx := r.Context.(*envelope.Map)
	u, _ := uctx.Get("user")
	require.Equal(t, "u1", u)

	// remote error
	_, err = cliT.Call(ctxT(t, 10*time.Second), compat.Target{Topic: "demo", Server: "srv1"}, reqMsg("boom"))
	var re *envelope.RemoteError
	require.ErrorAs(t, err, &re)
	require.Equal(t, "ValueError", re.Class)
	require.Contains(t, re.Message, "kaboom")
	_, err = cliT.Call(ctxT(t, 10*time.Second), compat.Target{Topic: "demo", Server: "srv1"}, reqMsg("nope"))
	require.ErrorIs(t, err, envelope.ErrNoSuchMethod)

	// timeout: nobody listens on the topic
	start := time.Now()
	_, err = cliT.Call(ctxT(t, 1500*time.Millisecond), compat.Target{Topic: "nobody"}, reqMsg("echo"))
	require.ErrorIs(t, err, envelope.ErrMessagingTimeout)
	require.Less(t, time.Since(start), 3*time.Second)

	// cast and fanout
	drain(e1.seen)
	drain(e2.seen)
	require.NoError(t, cliT.Cast(ctxT(t, 10*time.Second), compat.Target{Topic: "demo", Server: "srv1"}, reqMsg("echo", "c", int64(1))))
	r = waitReq(t, e1.seen)
	require.Equal(t, driver.KindCast, r.Kind)
	require.NoError(t, cliT.Cast(ctxT(t, 10*time.Second), compat.Target{Topic: "demo", Fanout: true}, reqMsg("echo", "f", int64(1))))
	require.Equal(t, driver.KindFanout, waitReq(t, e1.seen).Kind)
	require.Equal(t, driver.KindFanout, waitReq(t, e2.seen).Kind)

	// concurrent calls share the reply queue
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res, err := cliT.Call(ctxT(t, 20*time.Second), compat.Target{Topic: "demo"}, reqMsg("echo", "i", int64(i)))
			if err == nil {
				a := mustGet(res, "args").(*envelope.Map)
				if v, _ := a.Get("i"); v != int64(i) {
					err = fmt.Errorf("call %d got %v", i, v)
				}
			}
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func mustGet(v any, k string) any {
	m, ok := v.(*envelope.Map)
	if !ok {
		return nil
	}
	x, _ := m.Get(k)
	return x
}

func drain(c chan *driver.Request) {
	for len(c) > 0 {
		<-c
	}
}

func waitReq(t *testing.T, c chan *driver.Request) *driver.Request {
	t.Helper()
	select {
	case r := <-c:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no request arrived")
	}
	return nil
}

func testCallMonitor(t *testing.T, n *rabbittest.Node) {
	vhost := "goslo-cm"
	n.AddVhost(vhost)
	srvT := open(t, n, vhost, nil)
	cliT := open(t, n, vhost, nil)
	e := newEcho("srv1")
	listen(t, srvT, compat.Target{Topic: "cm", Server: "srv1"}, e.handle)
	// The handler takes 3 s; the call monitor (2 s) is kept alive by the
	// heartbeats every second.
	m := reqMsg("slow", "for", int64(3))
	m.CallMonitorTimeout = 2 * time.Second
	res, err := cliT.Call(ctxT(t, 10*time.Second), compat.Target{Topic: "cm"}, m)
	require.NoError(t, err)
	require.Equal(t, "slept", res)

	// A server that never answers nor beats: the call monitor fires.
	blackhole := func(ctx context.Context, r *driver.Request) error { return nil }
	listen(t, srvT, compat.Target{Topic: "cm-dead", Server: "x"}, blackhole)
	m = reqMsg("x")
	m.CallMonitorTimeout = time.Second
	start := time.Now()
	_, err = cliT.Call(ctxT(t, 10*time.Second), compat.Target{Topic: "cm-dead"}, m)
	require.ErrorIs(t, err, envelope.ErrMessagingTimeout)
	var te *rabbit.TimeoutError
	require.ErrorAs(t, err, &te)
	require.True(t, te.CallMonitor)
	require.Less(t, time.Since(start), 5*time.Second)
}

func notification(prio, event string) driver.Message {
	nm := envelope.Notification{MessageID: envelope.NewUUID4().String(), PublisherID: "compute.host-1", EventType: event,
		Priority: prio, Payload: envelope.NewMap("k", "v"), Timestamp: envelope.FormatTimestamp(time.Now())}
	return driver.Message{Context: envelope.NewMap("user", "u1", "auth_token", "secret"), Body: nm.Map()}
}

type noteSink struct {
	got     chan *driver.Request
	requeue atomic.Int32 // how many more to requeue
}

func (s *noteSink) handle(ctx context.Context, r *driver.Request) error {
	s.got <- r
	if s.requeue.Add(-1) >= 0 {
		return driver.ErrRequeue
	}
	return nil
}

func listenNotes(t *testing.T, tr *rabbit.Transport, targets []compat.Target, o driver.ListenOptions, h driver.Handler) driver.Server {
	t.Helper()
	s, err := tr.ListenNotifications(ctxT(t, 30*time.Second), targets, o, h)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return s
}

func testNotifications(t *testing.T, n *rabbittest.Node) {
	vhost := "goslo-notes"
	n.AddVhost(vhost)
	notT := open(t, n, vhost, nil)
	lisT := open(t, n, vhost, nil)
	// backlog: the notifier declares the queue itself
	require.NoError(t, notT.Notify(ctxT(t, 10*time.Second), compat.Target{Topic: "notifications.info"}, notification("INFO", "early")))

	main := &noteSink{got: make(chan *driver.Request, 10)}
	main.requeue.Store(1)
	pool := &noteSink{got: make(chan *driver.Request, 10)}
	pool.requeue.Store(1)
	listenNotes(t, lisT, []compat.Target{{Topic: "notifications.info"}, {Topic: "notifications.error"}}, driver.ListenOptions{AllowRequeue: true}, main.handle)
	listenNotes(t, lisT, []compat.Target{{Topic: "notifications.info"}}, driver.ListenOptions{Pool: "audit-pool"}, pool.handle)

	// the backlog arrives, is requeued once (allowed) and comes back
	r := waitReq(t, main.got)
	require.Equal(t, "early", mustGet(r.Body, "event_type"))
	r = waitReq(t, main.got)
	require.Equal(t, "early", mustGet(r.Body, "event_type"))
	require.Nil(t, mustGet(r.Context, "auth_token"), "notifiers redact the token")
	require.Equal(t, "u1", mustGet(r.Context, "user"))

	require.NoError(t, notT.Notify(ctxT(t, 10*time.Second), compat.Target{Topic: "notifications.info"}, notification("INFO", "after")))
	require.Equal(t, "after", mustGet(waitReq(t, main.got).Body, "event_type"))
	// the pool gets its own copy; its requeue is not allowed: acked, not redelivered
	require.Equal(t, "after", mustGet(waitReq(t, pool.got).Body, "event_type"))
	select {
	case r := <-pool.got:
		t.Fatalf("pool listener got a redelivery: %v", mustGet(r.Body, "event_type"))
	case <-time.After(500 * time.Millisecond):
	}
	require.NoError(t, notT.Notify(ctxT(t, 10*time.Second), compat.Target{Topic: "notifications.error"}, notification("ERROR", "bad")))
	require.Equal(t, "bad", mustGet(waitReq(t, main.got).Body, "event_type"))

	// nothing left unacked anywhere
	require.Eventually(t, func() bool {
		for _, q := range n.ListQueues(vhost, "name", "messages") {
			if fmt.Sprint(q["messages"]) != "0" {
				return false
			}
		}
		return true
	}, 10*time.Second, 200*time.Millisecond)
}

func testReplyQueueMissing(t *testing.T, n *rabbittest.Node) {
	vhost := "goslo-missing"
	n.AddVhost(vhost)
	tr := open(t, n, vhost, func(c *compat.Config) { c.Rabbit.KombuMissingConsumerRetryTimeout = 1 })
	replied := make(chan error, 2)
	h := func(ctx context.Context, r *driver.Request) error {
		replied <- r.Reply("x", nil)
		return nil
	}
	listen(t, tr, compat.Target{Topic: "mq", Server: "s"}, h)
	// A hand-made CALL whose reply queue does not exist.
	body, err := rabbit.EncodeRequest(rabbit.Request{Message: envelope.NewMap("method", "m", "args", envelope.NewMap()),
		MsgID: rabbit.NewUniqueHex(), ReplyQ: "reply_missing", UniqueID: rabbit.NewUniqueHex()})
	require.NoError(t, err)
	pub(t, n, vhost, "openstack", "mq", body)
	start := time.Now()
	select {
	case err := <-replied:
		require.ErrorIs(t, err, rabbit.ErrUndeliverable)
		require.GreaterOrEqual(t, time.Since(start), 700*time.Millisecond)
	case <-time.After(10 * time.Second):
		t.Fatal("no reply attempt ended")
	}
}

func testClose(t *testing.T, n *rabbittest.Node) {
	tr := open(t, n, "", nil)
	e := newEcho("s")
	s, err := tr.Listen(ctxT(t, 10*time.Second), compat.Target{Topic: "cl", Server: "s"}, e.handle)
	require.NoError(t, err)
	_, err = tr.Call(ctxT(t, 10*time.Second), compat.Target{Topic: "cl"}, reqMsg("echo"))
	require.NoError(t, err)
	require.NoError(t, tr.Close())
	require.NoError(t, tr.Close())
	_, err = tr.Call(ctxT(t, 10*time.Second), compat.Target{Topic: "cl"}, reqMsg("echo"))
	require.ErrorIs(t, err, driver.ErrClosed)
	require.ErrorIs(t, tr.Cast(ctxT(t, 10*time.Second), compat.Target{Topic: "cl"}, reqMsg("echo")), driver.ErrClosed)
	require.ErrorIs(t, tr.Notify(ctxT(t, 10*time.Second), compat.Target{Topic: "n.info"}, notification("INFO", "x")), driver.ErrClosed)
	_, err = tr.Listen(ctxT(t, 10*time.Second), compat.Target{Topic: "cl", Server: "s"}, e.handle)
	require.ErrorIs(t, err, driver.ErrClosed)
	require.NoError(t, s.Stop(ctxT(t, 10*time.Second)))

	// A call in flight when the transport closes ends with ErrClosed.
	tr2 := open(t, n, "", nil)
	listen(t, tr2, compat.Target{Topic: "cl2", Server: "s"}, func(ctx context.Context, r *driver.Request) error { return nil })
	done := make(chan error, 1)
	go func() {
		_, err := tr2.Call(ctxT(t, 20*time.Second), compat.Target{Topic: "cl2"}, reqMsg("x"))
		done <- err
	}()
	time.Sleep(500 * time.Millisecond)
	require.NoError(t, tr2.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, driver.ErrClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("call did not end at Close")
	}
}

// testBlocked raises a memory alarm: a publisher waits (bounded by its
// context) and goes on when the alarm clears.
func testBlocked(t *testing.T, n *rabbittest.Node) {
	tr := open(t, n, "", nil)
	require.NoError(t, tr.Cast(ctxT(t, 10*time.Second), compat.Target{Topic: "bl"}, reqMsg("x")))
	n.SetMemoryAlarm(true)
	defer n.SetMemoryAlarm(false)
	time.Sleep(500 * time.Millisecond)
	err := tr.Cast(ctxT(t, 2*time.Second), compat.Target{Topic: "bl"}, reqMsg("x"))
	require.Error(t, err)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	done := make(chan error, 1)
	go func() { done <- tr.Cast(ctxT(t, 30*time.Second), compat.Target{Topic: "bl"}, reqMsg("x")) }()
	time.Sleep(time.Second)
	n.SetMemoryAlarm(false)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("publish did not resume after the alarm")
	}
}

// testRestart restarts the broker under a running server and client:
// both reconnect, re-declare, and calls resume.
func testRestart(t *testing.T, n *rabbittest.Node) {
	vhost := "goslo-restart"
	n.AddVhost(vhost)
	srvT := open(t, n, vhost, nil)
	cliT := open(t, n, vhost, nil)
	e := newEcho("s1")
	listen(t, srvT, compat.Target{Topic: "rs", Server: "s1"}, e.handle)
	_, err := cliT.Call(ctxT(t, 10*time.Second), compat.Target{Topic: "rs"}, reqMsg("echo"))
	require.NoError(t, err)
	before := consumerTags(t, n, vhost)

	n.Restart()

	var lastErr error
	ok := false
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		_, lastErr = cliT.Call(ctxT(t, 3*time.Second), compat.Target{Topic: "rs", Server: "s1"}, reqMsg("echo"))
		if lastErr == nil {
			ok = true
			break
		}
	}
	require.True(t, ok, "calls did not resume: %v", lastErr)
	require.Eventually(t, func() bool { return fmt.Sprint(consumerTags(t, n, vhost)) == fmt.Sprint(before) }, 10*time.Second, 200*time.Millisecond)
}

// consumerTags is "queue-shape:tag" of every consumer of vhost, sorted.
func consumerTags(t *testing.T, n *rabbittest.Node, vhost string) []string {
	var out []string
	for _, c := range n.ListConsumers(vhost, "queue_name", "consumer_tag") {
		out = append(out, shape(fmt.Sprint(c["queue_name"]))+":"+fmt.Sprint(c["consumer_tag"]))
	}
	sortStrings(out)
	return out
}

var _ = errors.New
