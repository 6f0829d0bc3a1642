package interop

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
	driver "github.com/goslo/goslo/driver/zmq"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/redistest"
	"github.com/goslo/goslo/matchmaker"
)

// goDriver is a goslo zmq driver on the Redis at addr, with the options a
// Python peer of the same deployment uses.
func goDriver(t *testing.T, addr string, dynamic ...bool) *driver.ZMQ {
	ctx := context.Background()
	cfg := compat.DefaultConfig("127.0.0.1")
	cfg.ZMQ.RPCZMQBindAddress = "127.0.0.1"
	cfg.ZMQ.UseDynamicConnections = len(dynamic) > 0 && dynamic[0]
	cfg.ZMQ.RPCZMQSerialization = "json" // the codec is the caller's: the driver moves bytes
	mm, err := matchmaker.NewRedis(ctx, []matchmaker.RedisAddr{{Addr: addr}}, matchmaker.ConfigFrom(cfg))
	require.NoError(t, err)
	d, err := driver.NewZMQ(mm, driver.OptionsFrom(cfg))
	require.NoError(t, err)
	t.Cleanup(func() { d.Close(); mm.Close() })
	return d
}

func pyTransportURL(addr string, codec ...string) string {
	u := "zmq+redis://" + addr + "?rpc_zmq_host=127.0.0.1&rpc_zmq_bind_address=127.0.0.1"
	if len(codec) > 0 {
		u += "&rpc_zmq_serialization=" + codec[0]
	}
	return u
}

var codecs = []envelope.Codec{envelope.JSON, envelope.Msgpack}

// richArgs are args with unicode, a datetime, a big int and nesting.
func richArgs() *envelope.Map {
	return envelope.NewMap(
		"text", "na\u00efve caf\u00e9 \u65e5\u672c \U0001F680",
		"when", time.Date(2017, 3, 14, 15, 9, 26, 535897000, time.UTC),
		"big", int64(1)<<40,
		"nested", envelope.NewMap("l", []any{int64(1), "two", 3.5, nil, true}),
	)
}

// TestGoClientPythonServer: a goslo client calls, casts and fans out to a
// real oslo.messaging 8.1.4 RPC server (direct mode, JSON, Redis matchmaker).
func TestGoClientPythonServer(t *testing.T) {
	for _, c := range codecs {
		t.Run(c.Name(), func(t *testing.T) { goClientPythonServer(t, c) })
	}
}

func goClientPythonServer(t *testing.T, codec envelope.Codec) {
	r := redistest.Start(t)
	py := StartProc(t, EnvZMQ814, "rpc_peer.py", "server", pyTransportURL(r.Addr, codec.Name()), "demo", "srv1")
	d := goDriver(t, r.Addr)
	target := compat.Target{Topic: "demo", Server: "srv1", Version: "1.0"}
	ctxDict := envelope.NewMap("user", "alice", "roles", []any{"admin"}, "user_name", "Zo\u00eb")

	call := func(method string, args *envelope.Map, version string) (any, *envelope.RemoteError) {
		t.Helper()
		payload, err := envelope.EncodeRequest(codec, ctxDict, envelope.Request{Method: method, Args: args, Version: version})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		reply, err := d.Call(ctx, target, payload)
		require.NoError(t, err, method)
		body, remote, err := envelope.DecodeReply(codec, reply)
		require.NoError(t, err)
		return body, remote
	}

	body, remote := call("echo", richArgs(), "1.0")
	require.Nil(t, remote)
	want := richArgs()
	if codec == envelope.JSON {
		want.Set("when", "2017-03-14T15:09:26.535897") // a datetime arrives as its JSON string
	}
	require.True(t, envelope.Equal(want, body), "echo returned %s", envelope.Repr(body))
	var seen struct {
		Type, Method string
		Context      any
	}
	py.NextJSON(10*time.Second, &seen)
	require.Equal(t, "echo", seen.Method)

	body, remote = call("context", envelope.NewMap(), "1.0")
	require.Nil(t, remote)
	require.True(t, envelope.Equal(ctxDict, body), "context round trip: %s", envelope.Repr(body))
	py.Next(10 * time.Second)

	_, remote = call("fail", envelope.NewMap("message", "kaboom \u2603"), "1.0")
	require.NotNil(t, remote)
	require.Equal(t, "ValueError", remote.Class)
	require.Equal(t, "builtins", remote.Module)
	require.Equal(t, "kaboom \u2603", remote.Message)
	py.Next(10 * time.Second)

	_, remote = call("no_such_method", envelope.NewMap(), "1.0")
	require.ErrorIs(t, remote, envelope.ErrNoSuchMethod)
	_, remote = call("echo", envelope.NewMap(), "2.0")
	require.ErrorIs(t, remote, envelope.ErrUnsupportedVersion)
	require.Equal(t, "Endpoint does not support RPC version 2.0. Attempted method: echo", remote.Message)

	body, remote = call("whoami", envelope.NewMap(), "")
	require.Nil(t, remote)
	require.Equal(t, "srv1", body)
	py.Next(10 * time.Second)

	// A cast and a fanout reach the endpoint; nothing comes back.
	for _, tg := range []compat.Target{target, {Topic: "demo", Fanout: true}} {
		payload, err := envelope.EncodeRequest(codec, ctxDict, envelope.Request{Method: "echo", Args: envelope.NewMap("cast", tg.Fanout), Version: "1.0"})
		require.NoError(t, err)
		require.NoError(t, d.Cast(context.Background(), tg, payload))
		var got struct {
			Method string
			Args   any
		}
		py.NextJSON(10*time.Second, &got)
		require.Equal(t, "echo", got.Method)
	}
	t.Log("goslo client -> python 8.1.4 server: call (rich args), context, ValueError, NoSuchMethod, UnsupportedVersion, whoami, cast, fanout")
}

// goEndpoint serves the contract of `goslo serve` on the driver directly:
// echo, context, fail, whoami; NoSuchMethod and UnsupportedVersion as oslo.
func goEndpoint(t *testing.T, name string, codec envelope.Codec) driver.Handler {
	return func(r *driver.Request) {
		ctxv, msg, err := envelope.DecodePair(codec, r.Payload)
		if err != nil {
			t.Errorf("bad payload from python: %v", err)
			return
		}
		req, err := envelope.ParseRequest(msg)
		var body any
		if err == nil {
			ok, verr := compat.VersionIsCompatible("1.3", req.DispatchVersion())
			switch {
			case verr != nil:
				err = verr
			case !ok:
				err = envelope.UnsupportedVersionError(req.DispatchVersion(), req.Method)
			case req.Method == "echo":
				body = req.Args
			case req.Method == "context":
				body = ctxv
			case req.Method == "whoami":
				body = name
			case req.Method == "fail":
				m, _ := req.Args.Get("message")
				s, _ := m.(string)
				err = envelope.ValueError(s)
			default:
				err = envelope.NoSuchMethodError(req.Method)
			}
		}
		out, eerr := envelope.EncodeReply(codec, body, err)
		if eerr != nil {
			t.Errorf("encode reply: %v", eerr)
			return
		}
		_ = r.Reply(out)
	}
}

// TestPythonClientGoServer: a real oslo.messaging 8.1.4 RPC client calls a
// goslo server and gets what a Python server would give it.
func TestPythonClientGoServer(t *testing.T) {
	for _, c := range codecs {
		t.Run(c.Name(), func(t *testing.T) { pythonClientGoServer(t, c) })
	}
}

func pythonClientGoServer(t *testing.T, codec envelope.Codec) {
	r := redistest.Start(t)
	d := goDriver(t, r.Addr)
	srv, err := d.Listen(context.Background(), compat.Target{Topic: "gotopic", Server: "gosrv"}, goEndpoint(t, "gosrv", codec))
	require.NoError(t, err)
	defer srv.Stop(context.Background())
	py := StartProc(t, EnvZMQ814, "rpc_peer.py", "client", pyTransportURL(r.Addr, codec.Name()))

	type result struct {
		OK     bool            `json:"ok"`
		Result json.RawMessage `json:"result"`
		Lost   int             `json:"lost"`
		Error  *struct {
			Class, Module, Message string
		} `json:"error"`
	}
	lost := 0
	do := func(req map[string]any) result {
		t.Helper()
		req["topic"], req["server"] = "gotopic", "gosrv"
		// The 8.1.4 client can drop a reply that beats its tracking of the
		// call (a reference race; docs/interop.md): retry such timeouts,
		// count them, and bound them below.
		req["timeout"], req["retries"] = 5, 2
		py.Send(req)
		var res result
		py.NextJSON(60*time.Second, &res)
		lost += res.Lost
		return res
	}
	defer func() {
		if lost > 0 {
			t.Logf("WARNING: the python 8.1.4 client lost %d replies to its reply-tracking race and retried", lost)
		}
		require.LessOrEqual(t, lost, 3, "more lost replies than the reference race explains")
	}()
	args, err := ToTagged(richArgs())
	require.NoError(t, err)
	res := do(map[string]any{"op": "call", "method": "echo", "args": args})
	require.True(t, res.OK, "%+v", res.Error)
	var tagged any
	require.NoError(t, json.Unmarshal(res.Result, &tagged))
	if codec == envelope.JSON {
		require.Contains(t, string(res.Result), `"2017-03-14T15:09:26.535897"`)
	} else {
		require.Contains(t, string(res.Result), `{"$datetime": [2017, 3, 14, 15, 9, 26, 535897, null]}`)
	}
	require.Contains(t, string(res.Result), "1099511627776")

	ctxT, _ := ToTagged(envelope.NewMap("user", "bob", "is_admin", false))
	res = do(map[string]any{"op": "call", "method": "context", "context": ctxT})
	require.True(t, res.OK)
	require.JSONEq(t, `{"$dict": [["user", "bob"], ["is_admin", false]]}`, string(res.Result))

	res = do(map[string]any{"op": "call", "method": "fail", "args": map[string]any{"$dict": [][]any{{"message", "bad \u2603"}}}})
	require.False(t, res.OK)
	require.Equal(t, "ValueError", res.Error.Class, "a Python caller gets a real ValueError")
	require.Contains(t, res.Error.Message, "bad \u2603")

	res = do(map[string]any{"op": "call", "method": "nope"})
	require.False(t, res.OK)
	require.Equal(t, "RemoteError", res.Error.Class)
	require.Contains(t, res.Error.Message, "NoSuchMethod")

	res = do(map[string]any{"op": "call", "method": "echo", "version": "2.0"})
	require.False(t, res.OK)
	require.Contains(t, res.Error.Message, "UnsupportedVersion")

	res = do(map[string]any{"op": "call", "method": "whoami"})
	require.True(t, res.OK)
	require.Equal(t, `"gosrv"`, string(res.Result))

	res = do(map[string]any{"op": "cast", "method": "echo"})
	require.True(t, res.OK)
	t.Log("python 8.1.4 client -> goslo server: call (rich args), context, ValueError, NoSuchMethod, UnsupportedVersion, whoami, cast")
}

// TestNotificationsInterop: goslo's Notifier reaches a real 8.1.4
// notification listener, and a real 8.1.4 Notifier reaches goslo's
// listener, at two priorities, through one Redis.
func TestNotificationsInterop(t *testing.T) {
	r := redistest.Start(t)
	ctx := context.Background()
	url := pyTransportURL(r.Addr)
	tr, err := goslo.NewTransport(ctx, "zmq+redis://"+r.Addr, goslo.WithOptions(func(c *compat.Config) {
		c.ZMQ.RPCZMQHost, c.ZMQ.RPCZMQBindAddress = "127.0.0.1", "127.0.0.1"
	}))
	require.NoError(t, err)
	defer tr.Close()

	// Go -> Python.
	pyl := StartProc(t, EnvZMQ814, "rpc_peer.py", "listen", url, "notifications")
	n := goslo.NewNotifier(tr, "compute.go-host")
	payload := goslo.NewMap("instance_id", "i-1", "when", time.Date(2017, 3, 14, 15, 9, 26, 535897000, time.UTC))
	require.NoError(t, n.Info(ctx, goslo.NewMap("user", "alice"), "compute.instance.create.end", payload))
	require.NoError(t, n.Error(ctx, goslo.NewMap("user", "alice"), "compute.instance.create.error", "boom"))
	// The Python listener runs the threading executor, so the two
	// notifications may be dispatched (and printed) in either order; oslo
	// promises no order across priorities. Match them by priority.
	seen := map[string]string{}
	for range 2 {
		var got struct {
			Priority  string `json:"priority"`
			Publisher string `json:"publisher_id"`
			Event     string `json:"event_type"`
			Metadata  any    `json:"metadata"`
		}
		pyl.NextJSON(20*time.Second, &got)
		require.Equal(t, "compute.go-host", got.Publisher)
		require.NotContains(t, seen, got.Priority, "notification delivered twice")
		seen[got.Priority] = got.Event
	}
	require.Equal(t, map[string]string{"info": "compute.instance.create.end", "error": "compute.instance.create.error"}, seen)

	// Python -> Go.
	got := make(chan goslo.Notification, 4)
	l := goslo.NewNotificationListener(tr, []string{"notifications"}, &goslo.NotificationEndpoint{
		Handlers: map[string]goslo.NotificationHandler{
			"info":  func(_ context.Context, n goslo.Notification) error { got <- n; return nil },
			"error": func(_ context.Context, n goslo.Notification) error { got <- n; return nil },
		}})
	require.NoError(t, l.Start(ctx))
	defer l.Stop(ctx)
	pyn := StartProc(t, EnvZMQ814, "rpc_peer.py", "notify", url)
	for _, prio := range []string{"info", "error"} {
		pyn.Send(map[string]any{"publisher_id": "compute.py-host", "priority": prio, "event_type": "x." + prio,
			"payload": map[string]any{"$dict": [][]any{{"k", "v"}}}, "context": map[string]any{"$dict": [][]any{{"user", "bob"}}}})
		pyn.Next(20 * time.Second)
		select {
		case n := <-got:
			require.Equal(t, "compute.py-host", n.PublisherID)
			require.Equal(t, "x."+prio, n.EventType)
			require.Equal(t, strings.ToUpper(prio), n.Priority)
			require.True(t, envelope.Equal(goslo.NewMap("k", "v"), n.Payload))
			u, _ := n.Context.Get("user")
			require.Equal(t, "bob", u)
		case <-time.After(20 * time.Second):
			t.Fatalf("no %s notification from python", prio)
		}
	}
	t.Log("notifications: goslo -> python 8.1.4 listener and python 8.1.4 notifier -> goslo listener, at info and error")
}

// TestMixedFanout: one fanout from goslo reaches a Go server and a Python
// server of the same topic, and so does one from a Python client.
func TestMixedFanout(t *testing.T) {
	r := redistest.Start(t)
	ctx := context.Background()
	py := StartProc(t, EnvZMQ814, "rpc_peer.py", "server", pyTransportURL(r.Addr), "mixed", "pysrv")
	d := goDriver(t, r.Addr)
	got := make(chan string, 4)
	srv, err := d.Listen(ctx, compat.Target{Topic: "mixed", Server: "gosrv"}, func(req *driver.Request) {
		_, msg, err := envelope.DecodePair(envelope.JSON, req.Payload)
		if err == nil {
			rq, _ := envelope.ParseRequest(msg)
			from, _ := rq.Args.Get("from")
			got <- req.Type.String() + " " + from.(string)
		}
	})
	require.NoError(t, err)
	defer srv.Stop(ctx)

	payload, err := envelope.EncodeRequest(envelope.JSON, envelope.NewMap(), envelope.Request{Method: "echo", Args: envelope.NewMap("from", "go"), Version: "1.0"})
	require.NoError(t, err)
	require.NoError(t, d.Cast(ctx, compat.Target{Topic: "mixed", Fanout: true}, payload))
	require.Equal(t, "CAST_FANOUT go", <-got)
	var seen struct{ Method string }
	py.NextJSON(20*time.Second, &seen)
	require.Equal(t, "echo", seen.Method)

	pc := StartProc(t, EnvZMQ814, "rpc_peer.py", "client", pyTransportURL(r.Addr))
	pc.Send(map[string]any{"op": "cast", "topic": "mixed", "fanout": true, "method": "echo", "args": map[string]any{"$dict": [][]any{{"from", "python"}}}})
	pc.Next(20 * time.Second)
	select {
	case s := <-got:
		require.Equal(t, "CAST_FANOUT python", s)
	case <-time.After(20 * time.Second):
		t.Fatal("the python fanout never reached the go server")
	}
	py.NextJSON(20*time.Second, &seen)
	t.Log("a fanout from goslo and one from python 8.1.4 each reached both a Go and a Python server")
}

// TestDynamicConnections: use_dynamic_connections on either side — a goslo
// client opening a DEALER per message calls and casts to a Python server,
// and a Python client in that mode calls a goslo server.
func TestDynamicConnections(t *testing.T) {
	r := redistest.Start(t)
	ctx := context.Background()
	py := StartProc(t, EnvZMQ814, "rpc_peer.py", "server", pyTransportURL(r.Addr), "dyn", "pysrv")
	d := goDriver(t, r.Addr, true)
	payload, err := envelope.EncodeRequest(envelope.JSON, envelope.NewMap("user", "u"), envelope.Request{Method: "whoami", Version: "1.0"})
	require.NoError(t, err)
	for i := 0; i < 5; i++ {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		reply, err := d.Call(cctx, compat.Target{Topic: "dyn", Server: "pysrv"}, payload)
		cancel()
		require.NoError(t, err)
		body, remote, err := envelope.DecodeReply(envelope.JSON, reply)
		require.NoError(t, err)
		require.Nil(t, remote)
		require.Equal(t, "pysrv", body)
		py.Next(10 * time.Second)
	}
	cast, _ := envelope.EncodeRequest(envelope.JSON, envelope.NewMap(), envelope.Request{Method: "echo", Args: envelope.NewMap("dyn", true), Version: "1.0"})
	require.NoError(t, d.Cast(ctx, compat.Target{Topic: "dyn", Server: "pysrv"}, cast))
	var seen struct{ Method string }
	py.NextJSON(10*time.Second, &seen)
	require.Equal(t, "echo", seen.Method)

	var served atomic.Int64
	inner := goEndpoint(t, "gosrv", envelope.JSON)
	srv, err := goDriver(t, r.Addr).Listen(ctx, compat.Target{Topic: "dyngo", Server: "gosrv"}, func(r *driver.Request) {
		served.Add(1)
		inner(r)
	})
	require.NoError(t, err)
	defer srv.Stop(ctx)
	// One Python client process per call: the 8.1.4 dynamic client makes
	// and closes a socket per call while its receiver thread polls them, and
	// once in a while (about one run in eight under load here) every later
	// call of that client times out although the goslo server answered each
	// attempt. A fresh client per call keeps that reference bug out of this
	// test; the reply-tracking race is still retried and counted.
	lost := 0
	for i := 0; i < 3; i++ {
		pc := StartProc(t, EnvZMQ814, "rpc_peer.py", "client", pyTransportURL(r.Addr)+"&use_dynamic_connections=true")
		pc.Send(map[string]any{"op": "call", "topic": "dyngo", "server": "gosrv", "method": "whoami", "timeout": 5, "retries": 2})
		var res struct {
			OK     bool            `json:"ok"`
			Result json.RawMessage `json:"result"`
			Lost   int             `json:"lost"`
			Error  any             `json:"error"`
		}
		pc.NextJSON(30*time.Second, &res)
		require.True(t, res.OK, "%v (the goslo server answered %d requests)\nstderr: %s", res.Error, served.Load(), pc.Stderr())
		require.Equal(t, `"gosrv"`, string(res.Result))
		lost += res.Lost
		pc.Stop()
	}
	if lost > 0 {
		t.Logf("WARNING: the python 8.1.4 client lost %d replies to its reply-tracking race and retried", lost)
	}
	require.LessOrEqual(t, lost, 2)
	t.Log("dynamic connections: goslo -> python 8.1.4 (5 calls, a cast) and python 8.1.4 -> goslo (3 calls)")
}
