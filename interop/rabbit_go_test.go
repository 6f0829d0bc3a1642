package interop

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/envelope"
)

// TestRabbitGoWithPython: Go peers on the rabbit driver against real
// oslo.messaging 18.3.1 peers (tox env rabbit1831) through a private
// broker: a Go client calls a Python server, a Python client calls a Go
// server (errors, call monitor both ways), and notifications both ways
// with pools and requeues.
func TestRabbitGoWithPython(t *testing.T) {
	defer stopSharedOnPanic()
	_, url := rabbitVhost(t, "goslo-go-py") // the binary's shared node
	ctx := context.Background()

	t.Run("Go client, Python server", func(t *testing.T) {
		srv := StartRabbitPeer(t, "server", url, RabbitPeerConfig{Topic: "pydemo", Servers: []string{"srv1", "srv2"}})
		tr := goRabbit(t, url, nil)
		cl := goslo.NewRPCClient(tr, goslo.Target{Topic: "pydemo", Version: "1.0"}).Prepare(goslo.PrepareOptions{Timeout: 10 * time.Second})

		res, err := cl.Call(ctx, goslo.NewMap("user", "u1"), "echo", goslo.NewMap("x", int64(1), "s", "héllo"))
		require.NoError(t, err)
		require.True(t, envelope.Equal(goslo.NewMap("x", int64(1), "s", "héllo"), res), envelope.Repr(res))
		ev := srv.Event(10 * time.Second)
		require.Equal(t, "echo", ev["method"])
		require.Contains(t, toJSON(ev["context"]), "[user u1]")

		res, err = cl.Prepare(goslo.PrepareOptions{Server: "srv2"}).Call(ctx, nil, "whoami", nil)
		require.NoError(t, err)
		require.Equal(t, "srv2", res)
		srv.Event(10 * time.Second)

		_, err = cl.Call(ctx, nil, "boom", goslo.NewMap("message", "kaboom: spécial ☃"))
		var re *goslo.RemoteError
		require.ErrorAs(t, err, &re)
		require.Equal(t, "ValueError", re.Class)
		require.Equal(t, "builtins", re.Module)
		require.Contains(t, re.Message, "kaboom: spécial ☃")
		srv.Event(10 * time.Second)

		_, err = cl.Call(ctx, nil, "nope", nil)
		require.ErrorIs(t, err, goslo.ErrNoSuchMethod)
		srv.NoEvent(100 * time.Millisecond)

		// call monitor: the Python server's heartbeats keep the call alive
		start := time.Now()
		res, err = cl.Prepare(goslo.PrepareOptions{Server: "srv1", CallMonitorTimeout: 2 * time.Second}).
			Call(ctx, nil, "slow", goslo.NewMap("seconds", 3.5))
		require.NoError(t, err)
		require.Equal(t, 3.5, res)
		require.GreaterOrEqual(t, time.Since(start), 3400*time.Millisecond)
		srv.Event(10 * time.Second)
		srv.Event(10 * time.Second)

		require.NoError(t, cl.Prepare(goslo.PrepareOptions{Server: "srv2"}).Cast(ctx, nil, "cast_me", goslo.NewMap("n", int64(7))))
		ev = srv.Event(10 * time.Second)
		require.Equal(t, "cast_me", ev["method"])
		require.Equal(t, "srv2", ev["server"])

		fan := true
		require.NoError(t, cl.Prepare(goslo.PrepareOptions{Fanout: fan}).Cast(ctx, nil, "fanout_me", goslo.NewMap("n", int64(8))))
		got := map[any]bool{}
		for i := 0; i < 2; i++ {
			got[srv.Event(10 * time.Second)["server"]] = true
		}
		require.Equal(t, map[any]bool{"srv1": true, "srv2": true}, got)
	})

	t.Run("Python client, Go server", func(t *testing.T) {
		tr := goRabbit(t, url, nil)
		var calls atomic.Int32
		ep := goslo.NewEndpoint("", "1.0").
			Handle("echo", func(_ context.Context, _ *goslo.Map, a *goslo.Map) (any, error) { calls.Add(1); return a, nil }).
			Handle("boom", func(_ context.Context, _ *goslo.Map, a *goslo.Map) (any, error) {
				m, _ := a.Get("message")
				return nil, envelope.ValueError(m.(string))
			}).
			Handle("slow", func(ctx context.Context, _ *goslo.Map, a *goslo.Map) (any, error) {
				time.Sleep(3500 * time.Millisecond)
				return "done", nil
			}).
			Handle("context", func(_ context.Context, rctx *goslo.Map, _ *goslo.Map) (any, error) { return rctx, nil })
		for _, name := range []string{"g1", "g2"} {
			s, err := goslo.NewRPCServer(tr, goslo.Target{Topic: "godemo", Server: name}, ep)
			require.NoError(t, err)
			require.NoError(t, s.Start(ctx))
			t.Cleanup(func() { _ = s.Stop(context.Background()) })
		}
		cli := StartRabbitPeer(t, "client", url, RabbitPeerConfig{})

		rep := cli.Do("call", map[string]any{"topic": "godemo", "method": "echo", "version": "1.0",
			"args": map[string]any{"x": 1, "s": "héllo"}, "context": map[string]any{"user": "u1"}, "timeout": 10})
		require.NoError(t, rep.Err())
		require.Contains(t, string(rep.Result), `["s", "h\u00e9llo"]`)

		rep = cli.Do("call", map[string]any{"topic": "godemo", "server": "g2", "method": "context",
			"context_kind": "request_context", "context": map[string]any{"user": "u9", "auth_token": "tok"}, "timeout": 10})
		require.NoError(t, rep.Err())
		require.Contains(t, string(rep.Result), `"u9"`)

		rep = cli.Do("call", map[string]any{"topic": "godemo", "method": "boom", "args": map[string]any{"message": "kaboom: spécial ☃"}, "timeout": 10})
		require.Error(t, rep.Err())
		require.Equal(t, "ValueError", rep.Error.Class)
		require.True(t, strings.HasPrefix(rep.Error.Message, "kaboom: spécial ☃"), rep.Error.Message)

		rep = cli.Do("call", map[string]any{"topic": "godemo", "method": "missing", "timeout": 10})
		require.Error(t, rep.Err())
		require.Equal(t, "NoSuchMethod", rep.Error.ExcType)

		// the Go server's heartbeats keep a Python call alive past its
		// call_monitor_timeout
		rep = cli.Do("call", map[string]any{"topic": "godemo", "server": "g1", "method": "slow", "call_monitor_timeout": 2, "timeout": 10})
		require.NoError(t, rep.Err())
		require.GreaterOrEqual(t, rep.ElapsedMS, int64(3400))

		before := calls.Load()
		require.NoError(t, cli.Do("cast", map[string]any{"topic": "godemo", "method": "echo", "args": map[string]any{"c": 1}}).Err())
		require.NoError(t, cli.Do("fanout", map[string]any{"topic": "godemo", "method": "echo", "args": map[string]any{"f": 1}}).Err())
		require.Eventually(t, func() bool { return calls.Load() == before+3 }, 10*time.Second, 50*time.Millisecond)
	})

	t.Run("notifications both ways", func(t *testing.T) {
		ls := StartRabbitPeers(t,
			RabbitPeerSpec{"listener", url, RabbitPeerConfig{Topic: "gonotes", AllowRequeue: true, Name: "main"}},
			RabbitPeerSpec{"listener", url, RabbitPeerConfig{Topic: "gonotes", Pool: "py-pool"}})
		main, pool := ls[0], ls[1]
		for _, drv := range []string{"messaging", "messagingv2"} {
			tr := goRabbit(t, url, func(c *compat.Config) { c.Notifications.Driver = []string{drv} })
			require.NoError(t, goslo.NewNotifier(tr, "compute.host-1", "gonotes").Info(ctx, goslo.NewMap("user", "u1"), "go."+drv, goslo.NewMap("k", "v")))
			for _, l := range []*RabbitPeer{main, pool} {
				ev := l.Event(15 * time.Second)
				require.Equal(t, "info", ev["priority"])
				require.Equal(t, "compute.host-1", ev["publisher_id"])
				require.Equal(t, "go."+drv, ev["event_type"])
				require.Contains(t, toJSON(ev["payload"]), "[k v]")
			}
		}

		// Python notifier to Go listeners: a requeue on the one that
		// allows it, a pool.
		tr := goRabbit(t, url, nil)
		gmain := make(chan goslo.Notification, 10)
		gpool := make(chan goslo.Notification, 10)
		var requeued atomic.Bool
		l1 := goslo.NewNotificationListener(tr, []string{"pynotes"}, &goslo.NotificationEndpoint{Handlers: map[string]goslo.NotificationHandler{
			"error": func(_ context.Context, n goslo.Notification) error {
				gmain <- n
				if requeued.CompareAndSwap(false, true) {
					return goslo.ErrRequeue
				}
				return nil
			}}}).AllowRequeue()
		l2 := goslo.NewNotificationListener(tr, []string{"pynotes"}, &goslo.NotificationEndpoint{Handlers: map[string]goslo.NotificationHandler{
			"error": func(_ context.Context, n goslo.Notification) error { gpool <- n; return nil }}}).WithPool("go-pool")
		require.NoError(t, l1.Start(ctx))
		require.NoError(t, l2.Start(ctx))
		nt := StartRabbitPeer(t, "notifier", url, RabbitPeerConfig{})
		rep := nt.Do("notify", map[string]any{"priority": "error", "event_type": "compute.fail", "payload": "bad", "topics": []string{"pynotes"},
			"context_kind": "request_context", "context": map[string]any{"user": "u1", "auth_token": "secret"}})
		require.NoError(t, rep.Err())
		for i := 0; i < 2; i++ {
			select {
			case n := <-gmain:
				require.Equal(t, "compute.fail", n.EventType)
				require.Equal(t, "bad", n.Payload)
				tok, _ := n.Context.Get("auth_token")
				require.Nil(t, tok)
			case <-time.After(15 * time.Second):
				t.Fatal("Go listener: notification missing or not redelivered")
			}
		}
		select {
		case n := <-gpool:
			require.Equal(t, "compute.fail", n.EventType)
		case <-time.After(15 * time.Second):
			t.Fatal("Go pool listener got nothing")
		}
		require.NoError(t, l1.Stop(ctx))
		require.NoError(t, l2.Stop(ctx))
	})
}

func toJSON(v any) string { return fmt.Sprint(v) }
