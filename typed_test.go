package goslo

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type hostState struct {
	Host     string    `json:"host"`
	Node     string    `json:"nodename"`
	FreeRAM  int       `json:"free_ram_mb"`
	Updated  time.Time `json:"updated"`
	Disabled bool      `json:"disabled,omitempty"`
}

type selectArgs struct {
	Spec struct {
		NumInstances int               `json:"num_instances"`
		Flavor       string            `json:"flavor"`
		Hints        map[string]string `json:"scheduler_hints,omitempty"`
	} `json:"spec_obj"`
	Alternates bool `json:"return_alternates"`
}

func startServer(t *testing.T, tr *Transport, target Target, opts ...ServerOption) *RPCServer {
	t.Helper()
	srv, err := NewRPCServer(tr, target, opts...)
	require.NoError(t, err)
	require.NoError(t, srv.Start(context.Background()))
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	return srv
}

func TestTypedHandlerAndCallAs(t *testing.T) {
	tr := localTransport(t)
	ctx := context.Background()
	when := time.Date(2024, 1, 2, 3, 4, 5, 678901000, time.UTC)
	ep := NewEndpoint("", "")
	Handle(ep, "select_destinations", func(_ context.Context, a selectArgs) ([]hostState, error) {
		if a.Spec.NumInstances < 1 {
			return nil, ValueError("num_instances must be positive")
		}
		out := make([]hostState, a.Spec.NumInstances)
		for i := range out {
			out[i] = hostState{Host: "h" + string(rune('0'+i)), Node: a.Spec.Flavor, FreeRAM: 512 * (i + 1), Updated: when}
		}
		return out, nil
	})
	Handle(ep, "raw", func(_ context.Context, m *Map) (*Map, error) { return m, nil })
	startServer(t, tr, Target{Topic: "sched", Server: "s1"}, ep)
	cl := NewRPCClient(tr, Target{Topic: "sched"})

	var args selectArgs
	args.Spec.NumInstances, args.Spec.Flavor = 2, "m1.tiny"
	hosts, err := CallAs[[]hostState](ctx, cl, nil, "select_destinations", args)
	require.NoError(t, err)
	require.Equal(t, []hostState{{"h0", "m1.tiny", 512, when, false}, {"h1", "m1.tiny", 1024, when, false}}, hosts)

	// The same result untyped is the dict a Python endpoint returns (JSON:
	// the datetime as to_primitive's text).
	raw, err := cl.Call(ctx, nil, "select_destinations", &args)
	require.NoError(t, err)
	require.Equal(t, `[{"host": "h0", "nodename": "m1.tiny", "free_ram_mb": 512, "updated": "2024-01-02T03:04:05.678901"}, `+
		`{"host": "h1", "nodename": "m1.tiny", "free_ram_mb": 1024, "updated": "2024-01-02T03:04:05.678901"}]`, reprOf(raw))

	// A struct's args arrive as kwargs, in field order.
	m, err := CallAs[*Map](ctx, cl, nil, "raw", args)
	require.NoError(t, err)
	require.Equal(t, []string{"spec_obj", "return_alternates"}, m.Keys())
	m, err = CallAs[*Map](ctx, cl, nil, "raw", map[string]int{"b": 1, "a": 2})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, m.Keys())

	// Arguments that do not fit: a TypeError naming the argument.
	_, err = cl.Call(ctx, nil, "select_destinations", NewMap("spec_obj", NewMap("num_instances", "two")))
	var re *RemoteError
	require.ErrorAs(t, err, &re)
	require.Equal(t, "TypeError", re.Class)
	require.Equal(t, "select_destinations(): argument spec_obj.num_instances: got a string, want Go int", re.Message)

	// The handler's error keeps its class.
	_, err = CallAs[[]hostState](ctx, cl, nil, "select_destinations", nil)
	require.ErrorAs(t, err, &re)
	require.Equal(t, "ValueError", re.Class)

	// A result that does not fit the caller's type: a FieldError.
	_, err = CallAs[[]int](ctx, cl, nil, "select_destinations", args)
	var fe *FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "[0]", fe.Path)

	// Args that are no dict are refused before anything is sent.
	_, err = cl.Call(ctx, nil, "raw", []int{1})
	require.ErrorContains(t, err, "goslo: args")
}

func reprOf(v any) string {
	if m, ok := v.(*Map); ok {
		return m.String()
	}
	if l, ok := v.([]any); ok {
		s := "["
		for i, e := range l {
			if i > 0 {
				s += ", "
			}
			s += reprOf(e)
		}
		return s + "]"
	}
	return NewMap("v", v).String()
}

func TestRequestFromAndMiddleware(t *testing.T) {
	tr := localTransport(t)
	ctx := context.Background()
	var order []string
	var mu sync.Mutex
	note := func(s string) {
		mu.Lock()
		order = append(order, s)
		mu.Unlock()
	}
	mw := func(name string) Middleware {
		return func(next Handler) Handler {
			return func(ctx context.Context, rctx *Map, args *Map) (any, error) {
				info, _ := RequestFrom(ctx)
				note(name + ">" + info.Method)
				res, err := next(ctx, rctx, args)
				note("<" + name)
				return res, err
			}
		}
	}
	denyAnon := func(next Handler) Handler {
		return func(ctx context.Context, rctx *Map, args *Map) (any, error) {
			if u, _ := rctx.Get("user"); u == nil {
				return nil, NewRemoteError("nova.exception", "Forbidden", "anonymous")
			}
			return next(ctx, rctx, args)
		}
	}
	got := make(chan RequestInfo, 1)
	ep := NewEndpoint("admin", "1.3")
	Handle(ep, "who", func(ctx context.Context, _ *Map) (string, error) {
		info, ok := RequestFrom(ctx)
		if !ok {
			return "", errors.New("no request info")
		}
		got <- *info
		note("handler")
		return info.MessageID, nil
	})
	var observed atomic.Int32
	target := Target{Topic: "info", Server: "s1"}
	startServer(t, tr, target, ep, WithMiddleware(mw("a")), WithMiddleware(mw("b"), denyAnon),
		WithObserver(func(RequestInfo) { observed.Add(1) }))

	cl := NewRPCClient(tr, Target{Topic: "info", Namespace: "admin", Version: "1.2"})
	id, err := CallAs[string](ctx, cl, NewMap("user", "u1"), "who", NewMap("x", int64(1)))
	require.NoError(t, err)
	info := <-got
	require.Equal(t, id, info.MessageID)
	require.NotEmpty(t, info.MessageID)
	require.Equal(t, "call", info.Type)
	require.Equal(t, "who", info.Method)
	require.Equal(t, "admin", info.Namespace)
	require.Equal(t, "1.2", info.Version)
	require.Equal(t, target, info.Target)
	require.Equal(t, `{"user": "u1"}`, info.RequestContext.String())
	require.Equal(t, `{"x": 1}`, info.Args.String())
	require.Equal(t, []string{"a>who", "b>who", "handler", "<b", "<a"}, order)

	_, err = cl.Call(ctx, nil, "who", nil)
	var re *RemoteError
	require.ErrorAs(t, err, &re)
	require.Equal(t, "Forbidden", re.Class)
	// Dispatch failures skip the middleware; the observer sees them all.
	_, err = cl.Call(ctx, nil, "nope", nil)
	require.ErrorIs(t, err, ErrNoSuchMethod)
	require.EqualValues(t, 3, observed.Load())

	_, ok := RequestFrom(ctx)
	require.False(t, ok)
}

func TestHandlerContextCancelledOnStop(t *testing.T) {
	tr := localTransport(t)
	ctx := context.Background()
	started := make(chan struct{})
	ep := NewEndpoint("", "")
	Handle(ep, "block", func(ctx context.Context, _ *Map) (any, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	srv, err := NewRPCServer(tr, Target{Topic: "blk", Server: "s"}, ep)
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	require.NoError(t, NewRPCClient(tr, Target{Topic: "blk"}).Cast(ctx, nil, "block", nil))
	<-started
	stopCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, srv.Stop(stopCtx), context.DeadlineExceeded)
}

func TestWithConcurrencyBounds(t *testing.T) {
	tr := localTransport(t)
	ctx := context.Background()
	var running, peak atomic.Int32
	release := make(chan struct{})
	arrived := make(chan struct{}, 10)
	ep := NewEndpoint("", "")
	Handle(ep, "work", func(context.Context, *Map) (any, error) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		arrived <- struct{}{}
		<-release
		running.Add(-1)
		return nil, nil
	})
	startServer(t, tr, Target{Topic: "conc", Server: "s"}, ep, WithConcurrency(2))
	cl := NewRPCClient(tr, Target{Topic: "conc"})
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := cl.Call(ctx, nil, "work", nil)
			require.NoError(t, err)
		}()
	}
	<-arrived
	<-arrived
	// Two run; the three others wait for a slot, so releasing one lets
	// exactly one more in.
	for range 3 {
		release <- struct{}{}
		<-arrived
	}
	close(release)
	wg.Wait()
	require.EqualValues(t, 2, peak.Load())

	_, err := NewRPCServer(tr, Target{Topic: "conc", Server: "s"}, ep, WithConcurrency(0))
	require.Error(t, err)
	_, err = NewRPCServer(tr, Target{Topic: "conc", Server: "s"}, WithConcurrency(1))
	require.ErrorContains(t, err, "at least one endpoint")
}

func TestDeprecatedSettersApplyAtStartWithoutRace(t *testing.T) {
	tr := localTransport(t)
	ctx := context.Background()
	ep := NewEndpoint("", "").Handle("echo", func(_ context.Context, _ *Map, a *Map) (any, error) { return a, nil })
	srv := startServer(t, tr, Target{Topic: "dep", Server: "s"}, ep)
	cl := NewRPCClient(tr, Target{Topic: "dep"})
	var seen atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			srv.SetObserver(func(RequestInfo) { seen.Add(1) })
		}
	}()
	for range 20 {
		_, err := cl.Call(ctx, nil, "echo", nil)
		require.NoError(t, err)
	}
	<-done
	require.Zero(t, seen.Load(), "the running server keeps its configuration")
	require.NoError(t, srv.Stop(ctx))
	require.NoError(t, srv.Start(ctx))
	_, err := cl.Call(ctx, nil, "echo", nil)
	require.NoError(t, err)
	require.EqualValues(t, 1, seen.Load())
}

func TestPrepareClearAndCanSendVersion(t *testing.T) {
	tr := localTransport(t)
	cl := NewRPCClient(tr, Target{Topic: "compute", Server: "h1", Version: "5.0", Namespace: "ns"})
	p := cl.Prepare(PrepareOptions{Fanout: true})
	require.True(t, p.Target().Fanout)
	p = p.Prepare(PrepareOptions{Clear: ClearServer | ClearFanout, Version: "5.1"})
	require.Equal(t, Target{Topic: "compute", Version: "5.1", Namespace: "ns"}, p.Target())
	p = p.Prepare(PrepareOptions{Clear: ClearVersion | ClearNamespace})
	require.Equal(t, Target{Topic: "compute"}, p.Target())
	require.Equal(t, "h1", cl.Target().Server, "Prepare leaves the original alone")

	require.True(t, cl.CanSendVersion("9.9"), "no cap: anything goes")
	capped := cl.Prepare(PrepareOptions{VersionCap: "5.1"})
	require.True(t, capped.CanSendVersion("5.1"))
	require.True(t, capped.CanSendVersion("5.0"))
	require.True(t, capped.CanSendVersion(""), "the client's own 5.0")
	require.False(t, capped.CanSendVersion("5.2"))
	require.False(t, capped.CanSendVersion("6.0"))
	require.False(t, capped.CanSendVersion("x"))
	require.False(t, capped.Prepare(PrepareOptions{Version: "5.3"}).CanSendVersion(""))
}

func TestNotifyPriority(t *testing.T) {
	tr := localTransport(t)
	ctx := context.Background()
	got := make(chan Notification, 2)
	h := func(_ context.Context, n Notification) error { got <- n; return nil }
	l := NewNotificationListener(tr, []string{"prio"}, &NotificationEndpoint{Handlers: map[string]NotificationHandler{"warn": h, "info": h}})
	require.NoError(t, l.Start(ctx))
	defer l.Stop(ctx)
	n := NewNotifier(tr, "p1", "prio")
	type payload struct {
		ID   int    `json:"instance_id"`
		Name string `json:"name,omitempty"`
	}
	require.NoError(t, n.Prepare("p2").Notify(ctx, nil, "warning", "e.warn", payload{ID: 7}))
	w := <-got
	require.Equal(t, "WARN", w.Priority)
	require.Equal(t, "p2", w.PublisherID)
	var p payload
	require.NoError(t, Decode(w.Payload, &p))
	require.Equal(t, payload{ID: 7}, p)
	require.NoError(t, n.Notify(ctx, nil, PriorityInfo, "e.info", nil))
	require.Equal(t, "p1", (<-got).PublisherID)

	err := n.Notify(ctx, nil, "loud", "e", nil)
	require.ErrorContains(t, err, `unknown notification priority "loud"`)
	require.Error(t, Priority("loud").Validate())
	require.NoError(t, PriorityCritical.Validate())
}

func TestRaisingPythonExceptionsFromTheRootPackage(t *testing.T) {
	tr := localTransport(t)
	ctx := context.Background()
	ep := NewEndpoint("", "")
	Handle(ep, "fail", func(_ context.Context, a struct {
		Kind string `json:"kind"`
	}) (any, error) {
		switch a.Kind {
		case "value":
			return nil, ValueError("bad value")
		case "key":
			return nil, BuiltinError("KeyError", "k")
		case "nova":
			return nil, NewRemoteError("nova.exception", "NoValidHost", "no host")
		}
		return nil, Expected(TypeError("expected"))
	})
	startServer(t, tr, Target{Topic: "raise", Server: "s"}, ep)
	cl := NewRPCClient(tr, Target{Topic: "raise"})
	for kind, want := range map[string][2]string{
		"value": {ModuleBuiltins, "ValueError"}, "key": {ModuleBuiltins, "KeyError"},
		"nova": {"nova.exception", "NoValidHost"}, "other": {ModuleBuiltins, "TypeError"},
	} {
		_, err := cl.Call(ctx, nil, "fail", NewMap("kind", kind))
		require.True(t, IsRemote(err))
		require.False(t, IsTimeout(err))
		var re *RemoteError
		require.ErrorAs(t, err, &re)
		require.Equal(t, want, [2]string{re.Module, re.Class}, kind)
	}
}
