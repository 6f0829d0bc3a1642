package goslo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/redistest"
)

// within runs f and fails the test when it does not return in d; unblock
// is then called (to free what f waits for) before failing.
func within(t *testing.T, d time.Duration, what string, f func(), unblock func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		if unblock != nil {
			unblock()
		}
		<-done
		t.Fatalf("%s did not return within %s", what, d)
	}
}

// TestRPCServerRestart: Start after Stop restarts the server for real
// (as oslo's MessageHandlingServer allows): the handlers get a live
// context, Wait follows each run, and every Stop is safe.
func TestRPCServerRestart(t *testing.T) {
	tr := localTransport(t)
	ctx := context.Background()
	ep := NewEndpoint("", "").Handle("alive", func(ctx context.Context, _ *Map, _ *Map) (any, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return "yes", nil
	})
	srv, err := NewRPCServer(tr, Target{Topic: "restart", Server: "s"}, ep)
	require.NoError(t, err)
	cl := NewRPCClient(tr, Target{Topic: "restart", Server: "s"}).Prepare(PrepareOptions{Timeout: 5 * time.Second})
	for run := 0; run < 3; run++ {
		require.NoError(t, srv.Start(ctx), "run %d", run)
		require.NoError(t, srv.Start(ctx), "a second Start of a running server is a no-op")
		res, err := cl.Call(ctx, nil, "alive", nil)
		require.NoError(t, err, "run %d", run)
		require.Equal(t, "yes", res)
		waited := make(chan struct{})
		go func() { srv.Wait(); close(waited) }()
		select {
		case <-waited:
			t.Fatalf("run %d: Wait returned before Stop", run)
		case <-time.After(20 * time.Millisecond):
		}
		require.NotPanics(t, func() { require.NoError(t, srv.Stop(ctx)) }, "run %d", run)
		<-waited
		require.NotPanics(t, func() { require.NoError(t, srv.Stop(ctx)) }, "a second Stop is a no-op")
	}
}

// TestRPCServerStopBounded: Stop returns ctx.Err() when its context ends
// while handlers that ignore their context still run; their replies are
// still sent when they return.
func TestRPCServerStopBounded(t *testing.T) {
	tr := localTransport(t)
	ctx := context.Background()
	started := make(chan struct{}, 2)
	release := map[string]chan struct{}{"a": make(chan struct{}), "b": make(chan struct{})}
	var onceA, onceB sync.Once
	freeA := func() { onceA.Do(func() { close(release["a"]) }) }
	unblock := func() { freeA(); onceB.Do(func() { close(release["b"]) }) }
	defer unblock()
	ep := NewEndpoint("", "").Handle("stuck", func(_ context.Context, _ *Map, a *Map) (any, error) {
		k, _ := a.Get("k")
		started <- struct{}{}
		<-release[k.(string)]
		return "late " + k.(string), nil
	})
	srv, err := NewRPCServer(tr, Target{Topic: "stuck", Server: "s"}, ep)
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	cl := NewRPCClient(tr, Target{Topic: "stuck", Server: "s"}).Prepare(PrepareOptions{Timeout: 10 * time.Second})
	type result struct {
		v   any
		err error
	}
	res := map[string]chan result{"a": make(chan result, 1), "b": make(chan result, 1)}
	for k, ch := range res {
		go func() { v, err := cl.Call(ctx, nil, "stuck", NewMap("k", k)); ch <- result{v, err} }()
	}
	<-started
	<-started
	sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	within(t, 3*time.Second, "RPCServer.Stop", func() {
		require.ErrorIs(t, srv.Stop(sctx), context.DeadlineExceeded)
	}, unblock)
	// "a" answers while "b" still holds the server open.
	freeA()
	r := <-res["a"]
	require.NoError(t, r.err)
	require.Equal(t, "late a", r.v, "the late reply is still sent")
	unblock()
	// The last reply races with the close of the socket, which a client
	// DEALER with ZMQ_IMMEDIATE may see first: not asserted here.
	<-res["b"]
}

// TestListenerStopBounded: the same for a notification listener, whose
// handlers get a context that is cancelled when the listener stops.
func TestListenerStopBounded(t *testing.T) {
	tr := localTransport(t)
	ctx := context.Background()
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock()
	var hctx atomic.Value
	l := NewNotificationListener(tr, []string{"stuck"}, &NotificationEndpoint{Handlers: map[string]NotificationHandler{
		"info": func(ctx context.Context, _ Notification) error {
			hctx.Store(ctx)
			close(started)
			<-release
			return nil
		}}})
	require.NoError(t, l.Start(ctx))
	require.NoError(t, NewNotifier(tr, "p", "stuck").Info(ctx, nil, "e", "x"))
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("no notification")
	}
	h := hctx.Load().(context.Context)
	require.NotNil(t, h.Done(), "the handler's context can be cancelled")
	require.NoError(t, h.Err())
	sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	within(t, 3*time.Second, "NotificationListener.Stop", func() {
		require.ErrorIs(t, l.Stop(sctx), context.DeadlineExceeded)
	}, unblock)
	require.Error(t, h.Err(), "the handler's context is cancelled once the listener stops")
}

// TestTransportClose: Close is idempotent and safe concurrently; every
// operation after it, and a call in flight at it, fails with ErrClosed.
func TestTransportClose(t *testing.T) {
	tr := localTransport(t)
	ctx := context.Background()

	// A "server" that takes the CALL and never answers.
	zctx, err := zmq.NewContext()
	require.NoError(t, err)
	router, err := zctx.NewSocket(zmq.ROUTER)
	require.NoError(t, err)
	port := redistest.FreePort(t)
	require.NoError(t, router.Bind(fmt.Sprintf("tcp://127.0.0.1:%d", port)))
	defer func() { _ = router.SetLinger(0); _ = router.Close(); _ = zctx.Term() }()
	target := Target{Topic: "silent", Server: "s"}
	require.NoError(t, tr.Matchmaker().Register(ctx, target, fmt.Sprintf("127.0.0.1:%d", port), compat.Router, time.Minute))

	inflight := make(chan error, 1)
	go func() {
		_, err := NewRPCClient(tr, target).Prepare(PrepareOptions{Timeout: 20 * time.Second}).Call(ctx, nil, "echo", nil)
		inflight <- err
	}()
	_, err = router.RecvMessageBytes(0) // the CALL is on its way
	require.NoError(t, err)

	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); require.NoError(t, tr.Close()) }()
	}
	wg.Wait()
	require.NoError(t, tr.Close())
	select {
	case err := <-inflight:
		require.ErrorIs(t, err, ErrClosed, "a call in flight at Close")
	case <-time.After(5 * time.Second):
		t.Fatal("a call in flight at Close did not return")
	}

	requireClosed(t, tr, target)
}

// TestNotificationPriorityKeys: handler keys are priorities in any case;
// an unknown priority fails Start.
func TestNotificationPriorityKeys(t *testing.T) {
	tr := localTransport(t)
	ctx := context.Background()
	got := make(chan Notification, 4)
	l := NewNotificationListener(tr, []string{"keys"}, &NotificationEndpoint{Handlers: map[string]NotificationHandler{
		"INFO":  func(_ context.Context, n Notification) error { got <- n; return nil },
		"Error": func(_ context.Context, n Notification) error { got <- n; return nil },
	}})
	require.NoError(t, l.Start(ctx))
	defer l.Stop(ctx)
	n := NewNotifier(tr, "p", "keys")
	require.NoError(t, n.Info(ctx, nil, "e.info", "x"))
	require.NoError(t, n.Error(ctx, nil, "e.error", "y"))
	seen := map[string]bool{}
	for len(seen) < 2 {
		select {
		case x := <-got:
			seen[x.EventType] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("handlers keyed INFO/Error were not called: %v", seen)
		}
	}

	bad := NewNotificationListener(tr, []string{"keys"}, &NotificationEndpoint{Handlers: map[string]NotificationHandler{
		"informational": func(context.Context, Notification) error { return nil }}})
	err := bad.Start(ctx)
	require.Error(t, err)
	require.Contains(t, err.Error(), "informational")
	require.NoError(t, bad.Stop(ctx))
}

// logRecorder keeps the messages logged at Warn or above.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	s := rec.Message
	rec.Attrs(func(a slog.Attr) bool { s += " " + a.Key + "=" + a.Value.String(); return true })
	r.mu.Lock()
	r.msgs = append(r.msgs, s)
	r.mu.Unlock()
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }
func (r *logRecorder) has(sub string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if strings.Contains(m, sub) {
			return true
		}
	}
	return false
}

// TestNotificationHandlerPanics: a panicking notification handler is
// recovered and logged, as an RPC handler's panic is, and the listener
// goes on.
func TestNotificationHandlerPanics(t *testing.T) {
	logs := &logRecorder{}
	tr := localTransport(t, WithLogger(slog.New(logs)))
	ctx := context.Background()
	got := make(chan string, 2)
	l := NewNotificationListener(tr, []string{"panics"}, &NotificationEndpoint{Handlers: map[string]NotificationHandler{
		"info": func(_ context.Context, n Notification) error {
			if n.EventType == "boom" {
				panic("handler bug")
			}
			got <- n.EventType
			return nil
		}}})
	require.NoError(t, l.Start(ctx))
	defer l.Stop(ctx)
	n := NewNotifier(tr, "p", "panics")
	require.NoError(t, n.Info(ctx, nil, "boom", nil))
	require.NoError(t, n.Info(ctx, nil, "fine", nil))
	select {
	case e := <-got:
		require.Equal(t, "fine", e)
	case <-time.After(5 * time.Second):
		t.Fatal("the listener stopped after a handler panicked")
	}
	require.Eventually(t, func() bool { return logs.has("handler bug") }, 2*time.Second, 10*time.Millisecond, "the panic is logged")
}

// panicSerializer panics in the step named by where.
type panicSerializer struct {
	NoOpSerializer
	where string
}

func (p panicSerializer) DeserializeContext(v any) (*Map, error) {
	if p.where == "context" {
		panic("serializer bug: context")
	}
	return p.NoOpSerializer.DeserializeContext(v)
}
func (p panicSerializer) DeserializeEntity(rctx *Map, v any) (any, error) {
	if p.where == "deserialize" {
		panic("serializer bug: deserialize")
	}
	return v, nil
}
func (p panicSerializer) SerializeEntity(rctx *Map, v any) (any, error) {
	if p.where == "serialize" {
		panic("serializer bug: serialize")
	}
	return v, nil
}

// TestSerializerPanics: a panicking Serializer on a server is a
// RuntimeError reply; on a listener it is recovered and logged.
func TestSerializerPanics(t *testing.T) {
	logs := &logRecorder{}
	tr := localTransport(t, WithLogger(slog.New(logs)))
	ctx := context.Background()
	for _, where := range []string{"context", "deserialize", "serialize"} {
		t.Run(where, func(t *testing.T) {
			ep := NewEndpoint("", "").Handle("echo", func(_ context.Context, _ *Map, a *Map) (any, error) { return a, nil })
			target := Target{Topic: "ser-" + where, Server: "s"}
			srv, err := NewRPCServer(tr, target, ep, WithSerializer(panicSerializer{where: where}))
			require.NoError(t, err)
			require.NoError(t, srv.Start(ctx))
			defer srv.Stop(ctx)
			_, err = NewRPCClient(tr, target).Prepare(PrepareOptions{Timeout: 5 * time.Second}).Call(ctx, nil, "echo", NewMap("a", int64(1)))
			var re *RemoteError
			require.True(t, errors.As(err, &re), "%v", err)
			require.Equal(t, "RuntimeError", re.Class)
			require.Contains(t, re.Message, "serializer bug")
		})
	}
	t.Run("listener", func(t *testing.T) {
		got := make(chan string, 2)
		l := NewNotificationListener(tr, []string{"ser-listener"}, &NotificationEndpoint{Handlers: map[string]NotificationHandler{
			"info": func(_ context.Context, n Notification) error { got <- n.EventType; return nil }}})
		l.SetSerializer(panicSerializer{where: "deserialize"})
		require.NoError(t, l.Start(ctx))
		defer l.Stop(ctx)
		require.NoError(t, NewNotifier(tr, "p", "ser-listener").Info(ctx, nil, "e", "x"))
		require.Eventually(t, func() bool { return logs.has("serializer bug: deserialize") }, 5*time.Second, 10*time.Millisecond)
		require.Len(t, got, 0, "a notification the serializer could not read is not handled")
	})
}

// TestUnserializableResultLogged: a result the codec cannot encode is
// logged, and the caller gets a RuntimeError instead.
func TestUnserializableResultLogged(t *testing.T) {
	logs := &logRecorder{}
	tr := localTransport(t, WithLogger(slog.New(logs)))
	ctx := context.Background()
	ep := NewEndpoint("", "").
		Handle("chan", func(context.Context, *Map, *Map) (any, error) { return make(chan int), nil }).
		Handle("badfail", func(context.Context, *Map, *Map) (any, error) {
			re := envelope.NewRemoteError(envelope.ModuleBuiltins, "ValueError", "bad")
			re.Kwargs = NewMap("c", make(chan int))
			return nil, re
		})
	srv, err := NewRPCServer(tr, Target{Topic: "unser", Server: "s"}, ep)
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	defer srv.Stop(ctx)
	cl := NewRPCClient(tr, Target{Topic: "unser", Server: "s"}).Prepare(PrepareOptions{Timeout: 5 * time.Second})
	for _, m := range []string{"chan", "badfail"} {
		_, err = cl.Call(ctx, nil, m, nil)
		var re *RemoteError
		require.True(t, errors.As(err, &re), "%s: %v", m, err)
		require.Equal(t, "RuntimeError", re.Class, m)
		require.Contains(t, re.Message, "not serializable", m)
	}
	require.True(t, logs.has("result not serializable"), "the substituted result is logged")
	require.True(t, logs.has("failure not serializable"), "the substituted failure is logged")
}

// TestDispatchUnexpectedVersionError: a version check failing with an
// error that is not a *compat.VersionError is a RuntimeError, not a panic.
func TestDispatchUnexpectedVersionError(t *testing.T) {
	old := versionIsCompatible
	defer func() { versionIsCompatible = old }()
	versionIsCompatible = func(string, string) (bool, error) { return false, errors.New("odd failure") }
	ep := NewEndpoint("", "1.x").Handle("m", func(context.Context, *Map, *Map) (any, error) { return nil, nil })
	var err error
	require.NotPanics(t, func() { _, err = dispatch([]*Endpoint{ep}, envelope.Request{Method: "m", Version: "1.0"}) })
	var re *RemoteError
	require.True(t, errors.As(err, &re), "%v", err)
	require.Equal(t, "RuntimeError", re.Class)
	require.Contains(t, re.Message, "odd failure")

	// A wrapped *compat.VersionError keeps its Python class.
	versionIsCompatible = func(string, string) (bool, error) {
		return false, fmt.Errorf("wrapped: %w", &compat.VersionError{Version: "x", Class: "ValueError", Reason: "bad int"})
	}
	_, err = dispatch([]*Endpoint{ep}, envelope.Request{Method: "m", Version: "1.0"})
	require.True(t, errors.As(err, &re), "%v", err)
	require.Equal(t, "ValueError", re.Class)
	require.Equal(t, "bad int", re.Message)
}

// upperSerializer upper-cases string payloads on the way out.
type upperSerializer struct{ NoOpSerializer }

func (upperSerializer) SerializeEntity(_ *Map, v any) (any, error) {
	if s, ok := v.(string); ok {
		return strings.ToUpper(s), nil
	}
	return v, nil
}

// TestNotifierWithSerializer: WithSerializer returns a copy that uses the
// serializer; the original keeps its own.
func TestNotifierWithSerializer(t *testing.T) {
	tr := localTransport(t)
	ctx := context.Background()
	got := make(chan any, 2)
	l := NewNotificationListener(tr, []string{"ser"}, &NotificationEndpoint{Handlers: map[string]NotificationHandler{
		"info": func(_ context.Context, n Notification) error { got <- n.Payload; return nil }}})
	require.NoError(t, l.Start(ctx))
	defer l.Stop(ctx)
	n := NewNotifier(tr, "p", "ser")
	up := n.WithSerializer(upperSerializer{})
	require.NotSame(t, n, up)
	require.NoError(t, up.Info(ctx, nil, "e", "shout"))
	require.Equal(t, "SHOUT", <-got)
	require.NoError(t, n.Info(ctx, nil, "e", "quiet"))
	require.Equal(t, "quiet", <-got)
	require.IsType(t, upperSerializer{}, up.WithSerializer(nil).serializer, "nil keeps the serializer")
}
