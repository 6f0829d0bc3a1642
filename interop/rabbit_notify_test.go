package interop

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/envelope"
)

// goNote is one notification a Go listener handled.
type goNote struct {
	Listener string
	N        envelope.Notification
	Ctx      *goslo.Map
	Result   string // "handled" or "requeue"
}

func nextNote(t testing.TB, ch <-chan goNote, timeout time.Duration) goNote {
	t.Helper()
	select {
	case n := <-ch:
		return n
	case <-time.After(timeout):
		t.Fatalf("no notification reached the Go listener within %v", timeout)
	}
	return goNote{}
}

func noNote(t testing.TB, ch <-chan goNote, d time.Duration) {
	t.Helper()
	select {
	case n := <-ch:
		t.Fatalf("unexpected notification at the Go listener %s: %s %s", n.Listener, n.N.EventType, n.Result)
	case <-time.After(d):
	}
}

// TestRabbitNotifications: notifications both ways with the messaging
// (bare, kombu datetimes) and messagingv2 (enveloped) drivers.
//
// Go notifier → Python 18.3.1 listeners on topic go2py: "main"
// (allow_requeue) and the pool "py-pool"; one REQUEUE asked by main is
// redelivered to it.
//
// Python notifier → Go listeners on topic py2go: a goslo
// NotificationListener without pool (requeue not allowed, oslo's default)
// and one WithPool("go-pool").AllowRequeue(); a Go ErrRequeue is
// redelivered once to the latter and acked by the former.
func TestRabbitNotifications(t *testing.T) {
	defer stopSharedOnPanic()
	_, url := rabbitVhost(t, "goslo-notify")
	peers := StartRabbitPeers(t,
		RabbitPeerSpec{"listener", url, RabbitPeerConfig{Topic: "go2py", AllowRequeue: true, Name: "main"}},
		RabbitPeerSpec{"listener", url, RabbitPeerConfig{Topic: "go2py", Pool: "py-pool"}},
		RabbitPeerSpec{"notifier", url, RabbitPeerConfig{}},
	)
	pyMain, pyPool, pyNotifier := peers[0], peers[1], peers[2]

	trs := map[string]*goslo.Transport{}
	for _, drv := range []string{"messaging", "messagingv2"} {
		trs[drv] = goRabbit(t, url, func(c *compat.Config) { c.Notifications.Driver = []string{drv} })
	}
	when := time.Date(2017, 3, 14, 15, 9, 26, 535897000, time.UTC)

	within(t, "Go notifier to Python listeners", func(t *testing.T) {
		for _, drv := range []string{"messaging", "messagingv2"} {
			nt := goslo.NewNotifier(trs[drv], "compute.go-1", "go2py")
			rctx := goslo.NewMap("user", "u1", "auth_token", "secret", "request_id", "req-go")
			payload := goslo.NewMap("k", "v", "n", int64(3), "when", when, "blob", payload100K()[:2048])
			require.NoError(t, nt.Info(t.Context(), rctx, "compute.instance."+drv, payload))
			require.NoError(t, nt.Error(t.Context(), rctx, "compute.fail."+drv, "bad"))
			for _, l := range []*RabbitPeer{pyMain, pyPool} {
				for _, prio := range []string{"info", "error"} {
					ev := l.Event(15 * time.Second)
					require.Equal(t, "notification", ev["event"])
					require.Equal(t, prio, ev["priority"], "%v", ev)
					require.Equal(t, "compute.go-1", ev["publisher_id"])
					require.Equal(t, "handled", ev["result"])
					if prio == "error" {
						require.Equal(t, "compute.fail."+drv, ev["event_type"])
						require.Equal(t, "bad", pyValue(t, ev["payload"]))
						continue
					}
					require.Equal(t, "compute.instance."+drv, ev["event_type"])
					got := pyValue(t, ev["payload"]).(*goslo.Map)
					w, _ := got.Get("when")
					if drv == "messaging" {
						// bare body: kombu's {"__type__": "datetime"} object,
						// decoded by the Python listener into a datetime
						require.IsType(t, time.Time{}, w, "messaging driver: when is %s", envelope.Repr(w))
						require.True(t, when.Equal(w.(time.Time)), "when %v", w)
					} else {
						require.Equal(t, "2017-03-14T15:09:26.535897", w)
					}
					for _, k := range []string{"k", "n", "blob"} {
						a, _ := got.Get(k)
						b, _ := payload.Get(k)
						require.True(t, envelope.Equal(b, a), "payload %s", k)
					}
					ctx := pyValue(t, ev["context"]).(*goslo.Map)
					tok, _ := ctx.Get("auth_token")
					require.Nil(t, tok, "a notification never carries the auth token (§9.2)")
					md := pyValue(t, ev["metadata"]).(*goslo.Map)
					mid, _ := md.Get("message_id")
					require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, mid)
				}
			}
		}
		pyMain.NoEvent(300 * time.Millisecond)
		pyPool.NoEvent(0)
	}, pyMain, pyPool)

	within(t, "Python listener requeues a Go notification", func(t *testing.T) {
		require.NoError(t, pyMain.Do("requeue", map[string]any{"count": 1}).Err())
		nt := goslo.NewNotifier(trs["messagingv2"], "compute.go-2", "go2py")
		require.NoError(t, nt.Info(t.Context(), goslo.NewMap(), "compute.requeue", goslo.NewMap("x", int64(1))))
		first := pyMain.Event(15 * time.Second)
		require.Equal(t, "requeue", first["result"])
		again := pyMain.Event(15 * time.Second)
		require.Equal(t, "handled", again["result"])
		require.Equal(t, "compute.requeue", again["event_type"])
		require.Equal(t, first["metadata"], again["metadata"], "the same notification comes back")
		pev := pyPool.Event(15 * time.Second)
		require.Equal(t, "handled", pev["result"])
		pyPool.NoEvent(500 * time.Millisecond)
	}, pyMain, pyPool)

	// Python notifier → Go listeners.
	tr := trs["messagingv2"]
	notes := make(chan goNote, 256)
	var pubRequeue, poolRequeue atomic.Int32
	handler := func(name string, requeue *atomic.Int32) goslo.NotificationHandler {
		return func(_ context.Context, n goslo.Notification) error {
			res := "handled"
			if requeue.Load() > 0 {
				requeue.Add(-1)
				res = "requeue"
			}
			notes <- goNote{Listener: name, N: n.Notification, Ctx: n.Context, Result: res}
			if res == "requeue" {
				return goslo.ErrRequeue
			}
			return nil
		}
	}
	pubH := handler("no-pool", &pubRequeue)
	pub := goslo.NewNotificationListener(tr, []string{"py2go"}, &goslo.NotificationEndpoint{
		Handlers: map[string]goslo.NotificationHandler{"info": pubH, "error": pubH},
	})
	require.NoError(t, pub.Start(t.Context()))
	t.Cleanup(func() { _ = pub.Stop(context.Background()) })
	poolH := handler("go-pool", &poolRequeue)
	pool := goslo.NewNotificationListener(tr, []string{"py2go"}, &goslo.NotificationEndpoint{
		Handlers: map[string]goslo.NotificationHandler{"info": poolH, "error": poolH},
	}).WithPool("go-pool").AllowRequeue()
	require.NoError(t, pool.Start(t.Context()))
	t.Cleanup(func() { _ = pool.Stop(context.Background()) })

	byListener := func(t *testing.T, n int) map[string]goNote {
		t.Helper()
		out := map[string]goNote{}
		for i := 0; i < n; i++ {
			g := nextNote(t, notes, 15*time.Second)
			_, dup := out[g.Listener]
			require.False(t, dup, "listener %s got two notifications: %s", g.Listener, g.N.EventType)
			out[g.Listener] = g
		}
		return out
	}

	within(t, "Python notifier to Go listeners", func(t *testing.T) {
		for _, drv := range []string{"messaging", "messagingv2"} {
			rep := pyNotifier.Do("notify", map[string]any{"driver": drv, "priority": "info", "publisher_id": "compute.py-1",
				"event_type": "compute.instance." + drv, "topics": []string{"py2go"},
				"payload":      pyArg(t, goslo.NewMap("k", "v", "when", when, "list", []any{int64(1), "x"})),
				"context_kind": "request_context", "context": map[string]any{"user": "u7", "auth_token": "secret"}})
			require.NoError(t, rep.Err())
			got := byListener(t, 2)
			for _, name := range []string{"no-pool", "go-pool"} {
				g, ok := got[name]
				require.True(t, ok, "listener %s got nothing (%v)", name, got)
				require.Equal(t, "handled", g.Result)
				require.Equal(t, "INFO", g.N.Priority)
				require.Equal(t, "compute.py-1", g.N.PublisherID)
				require.Equal(t, "compute.instance."+drv, g.N.EventType)
				require.Regexp(t, `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$`, g.N.Timestamp)
				p := g.N.Payload.(*goslo.Map)
				w, _ := p.Get("when")
				if drv == "messaging" {
					require.IsType(t, time.Time{}, w, "kombu datetime decoded: %s", envelope.Repr(w))
					require.True(t, when.Equal(w.(time.Time)))
				} else {
					require.Equal(t, "2017-03-14T15:09:26.535897", w)
				}
				// a RequestContext: 17 keys, auth_token redacted to null
				require.Equal(t, 17, g.Ctx.Len(), "%s", envelope.Repr(g.Ctx))
				u, _ := g.Ctx.Get("user")
				require.Equal(t, "u7", u)
				tok, has := g.Ctx.Get("auth_token")
				require.True(t, has)
				require.Nil(t, tok)
			}
		}
		// A plain dict context is dropped by the Python notifier (§9.2):
		// the Go listener sees an empty context.
		rep := pyNotifier.Do("notify", map[string]any{"priority": "error", "publisher_id": "compute.py-1", "topics": []string{"py2go"},
			"event_type": "compute.fail", "payload": "bad", "context": map[string]any{"user": "dropped"}})
		require.NoError(t, rep.Err())
		for _, g := range byListener(t, 2) {
			require.Equal(t, "ERROR", g.N.Priority)
			require.Equal(t, "bad", g.N.Payload)
			require.Equal(t, 0, g.Ctx.Len(), "context %s", envelope.Repr(g.Ctx))
		}
		noNote(t, notes, 300*time.Millisecond)
	})

	within(t, "Go listeners requeue a Python notification", func(t *testing.T) {
		// go-pool allows requeueing: its first delivery is rejected and
		// comes back. The no-pool listener does not allow it (oslo's
		// default allow_requeue=False): its REQUEUE is acked, not
		// redelivered.
		poolRequeue.Store(1)
		pubRequeue.Store(1)
		rep := pyNotifier.Do("notify", map[string]any{"priority": "info", "publisher_id": "compute.py-2", "topics": []string{"py2go"},
			"event_type": "compute.requeue", "payload": map[string]any{"x": 1}})
		require.NoError(t, rep.Err())
		seen := map[string][]string{}
		for i := 0; i < 3; i++ {
			g := nextNote(t, notes, 15*time.Second)
			require.Equal(t, "compute.requeue", g.N.EventType)
			seen[g.Listener] = append(seen[g.Listener], g.Result)
		}
		require.Equal(t, []string{"requeue", "handled"}, seen["go-pool"])
		require.Equal(t, []string{"requeue"}, seen["no-pool"])
		noNote(t, notes, time.Second)
	})
}
