package interop

// Go ⇄ real oslo.messaging 18.3.1 peers (rabbit_peer.py, tox environment
// rabbit1831) on one private rabbitmq-server node shared by the binary
// (sharedRabbit), each test in its own vhost. The Python peer is the judge
// of compatibility: every case is checked on the side that receives.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/envelope"
)

// pyArg renders a Go value for a rabbit_peer.py request (tagged form).
func pyArg(t testing.TB, v any) any {
	t.Helper()
	out, err := ToTagged(v)
	require.NoError(t, err)
	return out
}

// pyValue reads a tagged value of an answer or event into a model value.
func pyValue(t testing.TB, v any) any {
	t.Helper()
	if raw, ok := v.(json.RawMessage); ok {
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		var x any
		require.NoError(t, dec.Decode(&x))
		v = x
	}
	out, err := FromTagged(v)
	require.NoError(t, err, "tagged value %v", v)
	return out
}

// rabbitRichArgs are arguments with unicode, a datetime, a big int, a
// float, null, a bool and nesting.
func rabbitRichArgs() *goslo.Map {
	return goslo.NewMap(
		"text", "na\u00efve caf\u00e9 \u65e5\u672c \U0001F680 \"quoted\" \\ back",
		"when", time.Date(2017, 3, 14, 15, 9, 26, 535897000, time.UTC),
		"big", int64(1)<<40,
		"neg", int64(-7),
		"pi", 3.25,
		"none", nil,
		"yes", true,
		"nested", goslo.NewMap("l", []any{int64(1), "two", 3.5, nil, true}, "empty", goslo.NewMap()),
	)
}

// payload100K is about 100 KB of text that is not trivially compressible
// and has non-ASCII characters (sent as \uXXXX escapes by Python).
func payload100K() string {
	var b strings.Builder
	for i := 0; b.Len() < 100*1024; i++ {
		fmt.Fprintf(&b, "%06d:é☃-%x|", i, i*2654435761)
	}
	return b.String()
}

// pyCtx is the ctxt a Python endpoint sees for a dict context sent over
// rabbit: the unflattened _context_* keys in order, then client_timeout
// (the request's _timeout, null without call monitor) that the Python
// server adds itself (impl_rabbit/amqp unpack_context), for any caller.
func pyCtx(rctx *goslo.Map) *goslo.Map {
	want := goslo.NewMap()
	for _, kv := range rctx.Items() {
		want.Set(kv.Key, kv.Value)
	}
	want.Set("client_timeout", nil)
	return want
}

func requireRemote(t testing.TB, err error, module, class string) *goslo.RemoteError {
	t.Helper()
	require.Error(t, err)
	var re *goslo.RemoteError
	require.True(t, errors.As(err, &re), "want a *goslo.RemoteError %s.%s, got %T: %v", module, class, err, err)
	require.Equal(t, class, re.Class, "remote class (%v)", err)
	require.Equal(t, module, re.Module, "remote module (%v)", err)
	return re
}

// TestRabbitGoClientPythonServer: a goslo client against two real 18.3.1
// RPC servers (srv1, srv2) of topic demo: call with rich arguments, a
// dict context round trip, ValueError, NoSuchMethod, UnsupportedVersion,
// namespace/version, MessagingTimeout (and an expired CALL the server
// never sees), call-monitor kept alive by Python heartbeats, 100 KB both
// ways, cast, fanout, and 1,000 sequential calls.
func TestRabbitGoClientPythonServer(t *testing.T) {
	defer stopSharedOnPanic()
	_, url := rabbitVhost(t, "goslo-go2py")
	py := StartRabbitPeer(t, "server", url, RabbitPeerConfig{Topic: "demo", Servers: []string{"srv1", "srv2"}})
	tr := goRabbit(t, url)
	cli := goslo.NewRPCClient(tr, goslo.Target{Topic: "demo", Version: "1.0"}).Prepare(goslo.PrepareOptions{Timeout: 20 * time.Second})
	rctx := goslo.NewMap("user", "alice", "project_id", "p1", "roles", []any{"admin", "member"}, "user_name", "Zo\u00eb", "is_admin", false)

	call := func(t *testing.T, c *goslo.RPCClient, method string, args *goslo.Map) (any, error) {
		t.Helper()
		ctx, cancel := callCtx(60 * time.Second)
		defer cancel()
		return c.Call(ctx, rctx, method, args)
	}
	event := func(t *testing.T, method string) map[string]any {
		t.Helper()
		ev := py.Event(10 * time.Second)
		require.Equal(t, "request", ev["event"], "%v", ev)
		require.Equal(t, method, ev["method"], "%v", ev)
		return ev
	}

	within(t, "call rich args", func(t *testing.T) {
		res, err := call(t, cli, "echo", rabbitRichArgs())
		require.NoError(t, err)
		want := rabbitRichArgs()
		want.Set("when", "2017-03-14T15:09:26.535897") // oslo's jsonutils writes a datetime as its ISO string
		require.True(t, envelope.Equal(want, res), "echo returned %s", envelope.Repr(res))
		ev := event(t, "echo")
		got := pyValue(t, ev["args"]).(*goslo.Map)
		require.True(t, envelope.Equal(want, got), "python endpoint saw %s", envelope.Repr(got))
	}, py)

	within(t, "dict context round trip", func(t *testing.T) {
		res, err := call(t, cli.Prepare(goslo.PrepareOptions{Server: "srv1"}), "context", goslo.NewMap())
		require.NoError(t, err)
		m, ok := res.(*goslo.Map)
		require.True(t, ok, "context returned %s", envelope.Repr(res))
		// The Python server unflattens the _context_* keys in order and
		// adds client_timeout (from _timeout: null, no call monitor), as
		// it does for a Python caller (amqp.unpack_context).
		want := pyCtx(rctx)
		require.Equal(t, mapKeys(want), mapKeys(m), "the Python endpoint's ctxt keys (unflattened _context_*)")
		require.True(t, envelope.Equal(want, m), "context returned %s", envelope.Repr(m))
		ev := event(t, "context")
		require.Equal(t, "srv1", ev["server"])
		require.True(t, envelope.Equal(want, pyValue(t, ev["context"])), "python ctxt %v", ev["context"])
	}, py)

	within(t, "ValueError", func(t *testing.T) {
		_, err := call(t, cli, "boom", goslo.NewMap("message", "kaboom: sp\u00e9cial \u2603"))
		re := requireRemote(t, err, "builtins", "ValueError")
		require.True(t, strings.HasPrefix(re.Message, "kaboom: sp\u00e9cial \u2603"), re.Message)
		require.NotEmpty(t, re.Traceback, "the Python traceback travels in the failure")
		event(t, "boom")
	}, py)

	within(t, "NoSuchMethod and UnsupportedVersion", func(t *testing.T) {
		_, err := call(t, cli, "no_such_method", goslo.NewMap())
		requireRemote(t, err, "oslo_messaging.rpc.dispatcher", "NoSuchMethod")
		require.ErrorIs(t, err, goslo.ErrNoSuchMethod)
		_, err = call(t, cli.Prepare(goslo.PrepareOptions{Version: "2.0"}), "echo", goslo.NewMap())
		re := requireRemote(t, err, "oslo_messaging.rpc.dispatcher", "UnsupportedVersion")
		require.ErrorIs(t, err, goslo.ErrUnsupportedVersion)
		require.Contains(t, re.Message, "Endpoint does not support RPC version 2.0. Attempted method: echo")
		py.NoEvent(300 * time.Millisecond)
	}, py)

	within(t, "namespace and version", func(t *testing.T) {
		res, err := call(t, cli.Prepare(goslo.PrepareOptions{Namespace: "ns", Version: "2.1"}), "ns_ping", goslo.NewMap("x", int64(1)))
		require.NoError(t, err)
		want := goslo.NewMap("pong", goslo.NewMap("x", int64(1)))
		m := res.(*goslo.Map)
		pong, _ := m.Get("pong")
		require.True(t, envelope.Equal(want.Items()[0].Value, pong), "%s", envelope.Repr(res))
		require.Equal(t, "NsEndpoint", event(t, "ns_ping")["endpoint"])
	}, py)

	within(t, "MessagingTimeout", func(t *testing.T) {
		start := time.Now()
		_, err := cli.Prepare(goslo.PrepareOptions{Server: "srv1", Timeout: 2 * time.Second}).Call(t.Context(), rctx, "slow", goslo.NewMap("seconds", 3.0))
		el := time.Since(start)
		require.ErrorIs(t, err, goslo.ErrMessagingTimeout, "%v", err)
		require.Contains(t, err.Error(), "Timed out waiting for a reply to message ID ")
		// At its timeout, not before; a loaded race run may wake late (the
		// 3 s reply, had the timeout been missed, is no error above).
		require.GreaterOrEqual(t, el, 1900*time.Millisecond, "timed out after %v", el)
		require.Less(t, el, 4*time.Second, "timed out after %v", el)
		event(t, "slow")
		require.Equal(t, "slow_done", py.Event(10 * time.Second)["event"]) // its late reply is dropped by the Go client

		// Nobody serves the topic: lost in the broker, timeout.
		start = time.Now()
		_, err = goslo.NewRPCClient(tr, goslo.Target{Topic: "nobody"}).Prepare(goslo.PrepareOptions{Timeout: time.Second}).Call(t.Context(), rctx, "echo", goslo.NewMap())
		require.ErrorIs(t, err, goslo.ErrMessagingTimeout)
		el = time.Since(start)
		require.GreaterOrEqual(t, el, 900*time.Millisecond, "timed out after %v", el)
		require.Less(t, el, 3*time.Second, "timed out after %v", el)
		// the client still works after two timeouts (late reply dropped)
		res, err := call(t, cli, "whoami", goslo.NewMap())
		require.NoError(t, err)
		require.Contains(t, []any{"srv1", "srv2"}, res)
		event(t, "whoami")
	}, py)

	within(t, "call monitor", func(t *testing.T) {
		c := cli.Prepare(goslo.PrepareOptions{Server: "srv2", Timeout: 10 * time.Second, CallMonitorTimeout: 2 * time.Second})
		start := time.Now()
		res, err := c.Call(t.Context(), rctx, "slow", goslo.NewMap("seconds", 3.5))
		el := time.Since(start)
		require.NoError(t, err, "a Go call with call_monitor_timeout=2 to a 3.5 s Python endpoint must be kept alive by its heartbeats")
		require.True(t, envelope.Equal(3.5, res), "%s", envelope.Repr(res))
		require.GreaterOrEqual(t, el, 3400*time.Millisecond)
		ev := event(t, "slow")
		require.Equal(t, "srv2", ev["server"])
		require.Equal(t, "slow_done", py.Event(10 * time.Second)["event"])
	}, py)

	within(t, "100 KB both ways", func(t *testing.T) {
		big := payload100K()
		res, err := call(t, cli, "echo", goslo.NewMap("blob", big, "n", int64(len(big))))
		require.NoError(t, err)
		m := res.(*goslo.Map)
		got, _ := m.Get("blob")
		require.Equal(t, big, got)
		event(t, "echo")
	}, py)

	within(t, "cast and fanout", func(t *testing.T) {
		require.NoError(t, cli.Prepare(goslo.PrepareOptions{Server: "srv2"}).Cast(t.Context(), rctx, "cast_me", goslo.NewMap("n", int64(7))))
		ev := event(t, "cast_me")
		require.Equal(t, "srv2", ev["server"])
		require.True(t, envelope.Equal(goslo.NewMap("n", int64(7)), pyValue(t, ev["args"])))
		require.True(t, envelope.Equal(pyCtx(rctx), pyValue(t, ev["context"])), "cast context %v", ev["context"])

		require.NoError(t, cli.Cast(t.Context(), rctx, "cast_me", goslo.NewMap("n", int64(8))))
		event(t, "cast_me")

		fan := true
		require.NoError(t, cli.Prepare(goslo.PrepareOptions{Fanout: fan}).Cast(t.Context(), rctx, "fanout_me", goslo.NewMap("n", int64(9))))
		got := map[any]int{}
		for i := 0; i < 2; i++ {
			got[event(t, "fanout_me")["server"]]++
		}
		require.Equal(t, map[any]int{"srv1": 1, "srv2": 1}, got)
		py.NoEvent(time.Second)
	}, py)

	within(t, "1000 sequential calls", func(t *testing.T) {
		start := time.Now()
		c := cli.Prepare(goslo.PrepareOptions{Timeout: 10 * time.Second})
		for i := 0; i < 1000; i++ {
			res, err := c.Call(t.Context(), rctx, "echo", goslo.NewMap("i", int64(i)))
			require.NoError(t, err, "call %d", i)
			m, ok := res.(*goslo.Map)
			require.True(t, ok, "call %d returned %s", i, envelope.Repr(res))
			v, _ := m.Get("i")
			require.Equal(t, int64(i), v, "call %d", i)
			ev := py.Event(10 * time.Second)
			require.Equal(t, "echo", ev["method"])
		}
		py.NoEvent(200 * time.Millisecond)
		t.Logf("1000 sequential Go calls to the Python server in %v", time.Since(start).Round(time.Millisecond))
	}, py)

	within(t, "expired CALL never reaches the server", func(t *testing.T) {
		// The topic queue exists (a server declared it and stopped) but
		// nobody consumes: the CALL waits in the queue with expiration
		// "1000" and the broker drops it before the Python server starts.
		g := startGoRPC(t, tr, "latepy", "gone")
		require.NoError(t, g.Srv.Stop(t.Context()))
		start := time.Now()
		res, err := goslo.NewRPCClient(tr, goslo.Target{Topic: "latepy"}).Prepare(goslo.PrepareOptions{Timeout: time.Second}).Call(t.Context(), rctx, "echo", goslo.NewMap("expired", true))
		require.ErrorIs(t, err, goslo.ErrMessagingTimeout, "answered %s", envelope.Repr(res))
		g.None(t, 0)
		time.Sleep(time.Until(start.Add(1500 * time.Millisecond)))
		late := StartRabbitPeer(t, "server", url, RabbitPeerConfig{Topic: "latepy", Servers: []string{"late"}})
		late.NoEvent(1500 * time.Millisecond)
		res, err = call(t, goslo.NewRPCClient(tr, goslo.Target{Topic: "latepy"}), "whoami", goslo.NewMap())
		require.NoError(t, err)
		require.Equal(t, "late", res)
		require.Equal(t, "whoami", late.Event(10 * time.Second)["method"])
	}, py)
}

// TestRabbitPythonClientGoServer: a real 18.3.1 RPC client against two
// goslo servers (gosrv1, gosrv2) of topic gotopic: the same cases the other
// way round; the Go handler sees the flattened _context_* keys as the
// original context, and a Python RequestContext as its 17 keys.
func TestRabbitPythonClientGoServer(t *testing.T) {
	defer stopSharedOnPanic()
	_, url := rabbitVhost(t, "goslo-py2go")
	tr := goRabbit(t, url)
	g1 := startGoRPC(t, tr, "gotopic", "gosrv1")
	g2 := startGoRPC(t, tr, "gotopic", "gosrv2")
	py := StartRabbitPeer(t, "client", url, RabbitPeerConfig{})
	ctxDict := goslo.NewMap("user", "u1", "project_id", "p1", "roles", []any{"reader"}, "nested", goslo.NewMap("a", int64(1)))

	next := func(t *testing.T, method string) goSeen {
		t.Helper()
		select {
		case s := <-g1.Seen:
			require.Equal(t, method, s.Method)
			return s
		case s := <-g2.Seen:
			require.Equal(t, method, s.Method)
			return s
		case <-time.After(10 * time.Second):
			t.Fatalf("no Go server handled %s", method)
		}
		return goSeen{}
	}
	req := func(fields map[string]any) map[string]any {
		out := map[string]any{"topic": "gotopic", "version": "1.0", "timeout": 20}
		for k, v := range fields {
			out[k] = v
		}
		return out
	}

	within(t, "call rich args", func(t *testing.T) {
		args := rabbitRichArgs()
		rep := py.Do("call", req(map[string]any{"method": "echo", "args": pyArg(t, args), "context": pyArg(t, ctxDict)}))
		require.NoError(t, rep.Err())
		want := rabbitRichArgs()
		want.Set("when", "2017-03-14T15:09:26.535897")
		require.True(t, envelope.Equal(want, next(t, "echo").Args), "Go endpoint args")
		got := pyValue(t, rep.Result)
		require.True(t, envelope.Equal(want, got), "Python got %s", envelope.Repr(got))
	}, py)

	within(t, "context flattening", func(t *testing.T) {
		rep := py.Do("call", req(map[string]any{"method": "context", "server": "gosrv2", "context": pyArg(t, ctxDict)}))
		require.NoError(t, rep.Err())
		s := next(t, "context")
		require.Equal(t, "gosrv2", s.Server)
		// _context_user … arrive as the original keys, in order, with
		// nothing else (no _msg_id, _reply_q, _timeout, _unique_id).
		require.Equal(t, mapKeys(ctxDict), mapKeys(s.Ctx))
		require.True(t, envelope.Equal(ctxDict, s.Ctx), "Go handler ctx %s", envelope.Repr(s.Ctx))
		require.Equal(t, 0, s.Args.Len(), "args %s", envelope.Repr(s.Args))
		require.True(t, envelope.Equal(ctxDict, pyValue(t, rep.Result)), "round trip %s", rep.Result)
	}, py)

	within(t, "RequestContext", func(t *testing.T) {
		rep := py.Do("call", req(map[string]any{"method": "context", "context_kind": "request_context",
			"context": map[string]any{"user": "u9", "project_id": "p9", "auth_token": "tok", "roles": []any{"admin"}, "request_id": "req-1"}}))
		require.NoError(t, rep.Err())
		s := next(t, "context")
		want := []string{"user", "project_id", "system_scope", "project", "domain", "user_domain", "project_domain",
			"is_admin", "read_only", "show_deleted", "auth_token", "request_id", "global_request_id", "resource_uuid",
			"roles", "user_identity", "is_admin_project"}
		require.ElementsMatch(t, want, mapKeys(s.Ctx), "RequestContext.to_dict() keys")
		for k, v := range map[string]any{"user": "u9", "project_id": "p9", "auth_token": "tok", "request_id": "req-1"} {
			got, _ := s.Ctx.Get(k)
			require.Equal(t, v, got, k)
		}
	}, py)

	within(t, "ValueError from a Go handler", func(t *testing.T) {
		rep := py.Do("call", req(map[string]any{"method": "boom", "args": map[string]any{"message": "go kaboom \u2603"}}))
		require.Error(t, rep.Err())
		require.Equal(t, "ValueError", rep.Error.Class, "%+v", rep.Error)
		require.Equal(t, "builtins", rep.Error.Module)
		require.True(t, strings.HasPrefix(rep.Error.Message, "go kaboom \u2603"), rep.Error.Message)
		next(t, "boom")
	}, py)

	within(t, "NoSuchMethod and UnsupportedVersion", func(t *testing.T) {
		rep := py.Do("call", req(map[string]any{"method": "no_such_method"}))
		require.Error(t, rep.Err())
		// oslo_messaging.rpc.dispatcher is not an allowed remote module:
		// the caller gets a RemoteError naming the class.
		require.Equal(t, "RemoteError", rep.Error.Class, "%+v", rep.Error)
		require.Equal(t, "NoSuchMethod", rep.Error.ExcType)
		require.Contains(t, rep.Error.Value, "Endpoint does not support RPC method no_such_method")

		rep = py.Do("call", req(map[string]any{"method": "echo", "version": "2.0"}))
		require.Error(t, rep.Err())
		require.Equal(t, "RemoteError", rep.Error.Class, "%+v", rep.Error)
		require.Equal(t, "UnsupportedVersion", rep.Error.ExcType)
		require.Contains(t, rep.Error.Value, "Endpoint does not support RPC version 2.0. Attempted method: echo")

		rep = py.Do("call", req(map[string]any{"method": "ns_ping", "namespace": "ns", "version": "2.1", "args": map[string]any{"x": 1}}))
		require.NoError(t, rep.Err())
		require.Equal(t, "NsEndpoint", next(t, "ns_ping").Endpoint)
	}, py)

	within(t, "MessagingTimeout", func(t *testing.T) {
		rep := py.Do("call", req(map[string]any{"method": "slow", "server": "gosrv1", "args": map[string]any{"seconds": 3}, "timeout": 2}))
		require.Error(t, rep.Err())
		require.Equal(t, "MessagingTimeout", rep.Error.Class, "%+v", rep.Error)
		require.GreaterOrEqual(t, rep.ElapsedMS, int64(1900)) // at its timeout, not before; late only under load
		require.Less(t, rep.ElapsedMS, int64(4000))
		require.Equal(t, "gosrv1", next(t, "slow").Server)
		time.Sleep(1500 * time.Millisecond) // the Go reply arrives late and is dropped by Python
		rep = py.Do("call", req(map[string]any{"method": "whoami", "server": "gosrv1"}))
		require.NoError(t, rep.Err())
		require.JSONEq(t, `"gosrv1"`, string(rep.Result))
		next(t, "whoami")
	}, py)

	within(t, "call monitor", func(t *testing.T) {
		rep := py.Do("call", req(map[string]any{"method": "slow", "server": "gosrv2", "args": map[string]any{"seconds": 3.5},
			"call_monitor_timeout": 2, "timeout": 10}))
		require.NoError(t, rep.Err(), "Python call_monitor_timeout=2 to a 3.5 s Go handler: the Go server must send heartbeats")
		require.GreaterOrEqual(t, rep.ElapsedMS, int64(3400))
		require.Equal(t, "gosrv2", next(t, "slow").Server)
	}, py)

	within(t, "100 KB both ways", func(t *testing.T) {
		big := payload100K()
		rep := py.Do("call", req(map[string]any{"method": "echo", "args": map[string]any{"blob": big}}))
		require.NoError(t, rep.Err())
		s := next(t, "echo")
		got, _ := s.Args.Get("blob")
		require.Equal(t, big, got)
		res := pyValue(t, rep.Result).(*goslo.Map)
		back, _ := res.Get("blob")
		require.Equal(t, big, back)
	}, py)

	within(t, "cast", func(t *testing.T) {
		rep := py.Do("cast", req(map[string]any{"method": "cast_me", "server": "gosrv1", "args": map[string]any{"n": 7}, "context": pyArg(t, ctxDict)}))
		require.NoError(t, rep.Err())
		s := g1.Next(t, 10*time.Second)
		require.Equal(t, "cast_me", s.Method)
		require.True(t, envelope.Equal(goslo.NewMap("n", int64(7)), s.Args))
		require.True(t, envelope.Equal(ctxDict, s.Ctx))
		g2.None(t, 300*time.Millisecond)
	}, py)

	within(t, "1000 sequential calls", func(t *testing.T) {
		start := time.Now()
		for i := 0; i < 1000; i++ {
			rep := py.Do("call", req(map[string]any{"method": "echo", "args": map[string]any{"i": i}, "timeout": 10}))
			require.NoError(t, rep.Err(), "call %d", i)
			res := pyValue(t, rep.Result).(*goslo.Map)
			v, _ := res.Get("i")
			require.Equal(t, int64(i), v, "call %d", i)
			next(t, "echo")
		}
		g1.None(t, 100*time.Millisecond)
		g2.None(t, 100*time.Millisecond)
		t.Logf("1000 sequential Python calls to the Go servers in %v", time.Since(start).Round(time.Millisecond))
	}, py)

	within(t, "expired CALL never reaches the server", func(t *testing.T) {
		g := startGoRPC(t, tr, "lateg", "late")
		require.NoError(t, g.Srv.Stop(t.Context()))
		rep := py.Do("call", map[string]any{"topic": "lateg", "method": "echo", "args": map[string]any{"expired": true}, "timeout": 1})
		require.Error(t, rep.Err())
		require.Equal(t, "MessagingTimeout", rep.Error.Class)
		time.Sleep(500 * time.Millisecond)
		g = startGoRPC(t, tr, "lateg", "late")
		g.None(t, time.Second)
		rep = py.Do("call", map[string]any{"topic": "lateg", "method": "whoami", "timeout": 10})
		require.NoError(t, rep.Err())
		require.JSONEq(t, `"late"`, string(rep.Result))
		require.Equal(t, "whoami", g.Next(t, 5*time.Second).Method)
	}, py)
}

// TestRabbitCompression: kombu_compression=gzip on both sides (zlib body,
// header compression: application/x-gzip, §7.6): a Go client calls a
// Python server and a Python client calls a Go server, each decompressing
// what the other compressed (requests and replies).
func TestRabbitCompression(t *testing.T) {
	defer stopSharedOnPanic()
	n, url := rabbitVhost(t, "goslo-gzip") // firehose on
	trace := traceVhost(t, n.AMQPURL("goslo-gzip"))
	opts := []string{"oslo_messaging_rabbit.kombu_compression=gzip"}
	ps := StartRabbitPeers(t,
		RabbitPeerSpec{"server", url, RabbitPeerConfig{Topic: "pyzip", Servers: []string{"pysrv"}, Opts: opts}},
		RabbitPeerSpec{"client", url, RabbitPeerConfig{Opts: opts}})
	pysrv, pycli := ps[0], ps[1]
	tr := goRabbit(t, url, func(c *compat.Config) { c.Rabbit.KombuCompression = "gzip" })
	g := startGoRPC(t, tr, "gozip", "gosrv")
	big := payload100K()

	within(t, "Go client to Python server", func(t *testing.T) {
		res, err := goslo.NewRPCClient(tr, goslo.Target{Topic: "pyzip"}).Prepare(goslo.PrepareOptions{Timeout: 20 * time.Second}).
			Call(t.Context(), goslo.NewMap("user", "z"), "echo", goslo.NewMap("blob", big))
		require.NoError(t, err)
		got, _ := res.(*goslo.Map).Get("blob")
		require.Equal(t, big, got)
		require.Equal(t, "echo", pysrv.Event(10 * time.Second)["method"])
	}, pysrv)

	within(t, "Python client to Go server", func(t *testing.T) {
		rep := pycli.Do("call", map[string]any{"topic": "gozip", "method": "echo", "args": map[string]any{"blob": big}, "timeout": 20})
		require.NoError(t, rep.Err())
		back, _ := pyValue(t, rep.Result).(*goslo.Map).Get("blob")
		require.Equal(t, big, back)
		s := g.Next(t, 10*time.Second)
		got, _ := s.Args.Get("blob")
		require.Equal(t, big, got)
	}, pycli)
	within(t, "every publish is compressed", func(t *testing.T) {
		ms := trace.collect()
		kinds := map[string]int{}
		for _, m := range ms {
			kinds[m.Kind]++
			h, _ := m.Props["headers"].(amqp.Table)
			require.Equal(t, "application/x-gzip", h["compression"], "%s to %q/%q: %v", m.Kind, m.Exchange, m.RoutingKey, m.Props)
			require.Equal(t, "application/json", m.Props["content_type"])
		}
		require.Equal(t, 4, len(ms), "two calls and two replies: %v", kinds)
		require.Equal(t, 2, kinds["call"], "%v", kinds)
		require.Equal(t, 2, kinds["reply"], "%v", kinds)
	})
}
