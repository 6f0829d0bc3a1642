package interop

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/internal/rabbittest"
)

// TestRabbitMixedServers: Go and Python 18.3.1 servers of one topic, and
// Go and Python listeners of one notification topic, declare the same
// exchanges and queues; nobody gets PRECONDITION_FAILED (broker log) and
// everybody stays consuming (list_consumers). Calls both ways reach every
// server, a fanout from either side reaches each server exactly once.
// Once with the default options, once with the quorum + queue-manager
// deployment (rabbit_quorum_queue, rabbit_transient_quorum_queue,
// use_queue_manager on both sides), where every queue must be a durable
// quorum queue and queue-manager names must not collide.
func TestRabbitMixedServers(t *testing.T) {
	defer stopSharedOnPanic()
	t.Run("default", func(t *testing.T) { mixedServers(t, "goslo-mixed", false) })
	t.Run("quorum", func(t *testing.T) { mixedServers(t, "goslo-mixed-quorum", true) })
}

func mixedServers(t *testing.T, vhost string, quorum bool) {
	defer stopSharedOnPanic()
	n, url := rabbitVhost(t, vhost)
	var mut []func(*compat.Config)
	var pyOpts []string
	if quorum {
		mut = append(mut, quorumOptions)
		pyOpts = pyQuorumOpts(t) // one lock_path for every Python peer
	}

	// Go declares first: the Python peers re-declare what Go made.
	trSrv := goRabbit(t, url, mut...)
	gosrv := startGoRPC(t, trSrv, "mixed", "gosrv")
	goNotes := make(chan string, 64)
	gl := goslo.NewNotificationListener(trSrv, []string{"mixnote"}, &goslo.NotificationEndpoint{
		Handlers: map[string]goslo.NotificationHandler{
			"info":  func(_ context.Context, n goslo.Notification) error { goNotes <- n.EventType; return nil },
			"error": func(_ context.Context, n goslo.Notification) error { goNotes <- n.EventType; return nil },
		}})
	require.NoError(t, gl.Start(t.Context()))
	t.Cleanup(func() { _ = gl.Stop(context.Background()) })

	peers := StartRabbitPeers(t,
		RabbitPeerSpec{"server", url, RabbitPeerConfig{Topic: "mixed", Servers: []string{"pysrv"}, Opts: pyOpts}},
		RabbitPeerSpec{"client", url, RabbitPeerConfig{Opts: pyOpts}},
		RabbitPeerSpec{"listener", url, RabbitPeerConfig{Topic: "mixnote", Name: "pylisten", Opts: pyOpts}},
	)
	pysrv, pycli, pyl := peers[0], peers[1], peers[2]

	// ... and Go again after Python: a second Go server of the topic (it
	// re-declares the topic exchange, queue and fanout exchange Python
	// re-declared), and a client on another transport of this process.
	gosrv2 := startGoRPC(t, trSrv, "mixed", "gosrv2")
	trCli := goRabbit(t, url, mut...)
	cli := goslo.NewRPCClient(trCli, goslo.Target{Topic: "mixed"}).Prepare(goslo.PrepareOptions{Timeout: 20 * time.Second})

	drainGo := func(g *goRPC) {
		for {
			select {
			case <-g.Seen:
			default:
				return
			}
		}
	}
	drainPy := func() {
		for {
			pysrv.mu.Lock()
			pysrv.events = nil
			pysrv.mu.Unlock()
			select {
			case l := <-pysrv.lines:
				pysrv.file(l)
			default:
				return
			}
		}
	}
	servers := []string{"gosrv", "gosrv2", "pysrv"}

	within(t, "Go client calls every server", func(t *testing.T) {
		for _, s := range servers {
			res, err := cli.Prepare(goslo.PrepareOptions{Server: s}).Call(t.Context(), goslo.NewMap("user", "u"), "whoami", goslo.NewMap())
			require.NoError(t, err, "Go call to %s", s)
			require.Equal(t, s, res)
		}
		seen := map[any]int{}
		for i := 0; i < 9; i++ {
			res, err := cli.Call(t.Context(), goslo.NewMap(), "whoami", goslo.NewMap())
			require.NoError(t, err)
			seen[res]++
		}
		require.Len(t, seen, 3, "the topic queue is shared by the Go and Python servers: %v", seen)
	}, pysrv)
	drainGo(gosrv)
	drainGo(gosrv2)
	drainPy()

	within(t, "Python client calls every server", func(t *testing.T) {
		for _, s := range servers {
			rep := pycli.Do("call", map[string]any{"topic": "mixed", "server": s, "method": "whoami", "timeout": 20})
			require.NoError(t, rep.Err(), "Python call to %s", s)
			require.JSONEq(t, fmt.Sprintf("%q", s), string(rep.Result))
		}
		seen := map[string]int{}
		for i := 0; i < 9; i++ {
			rep := pycli.Do("call", map[string]any{"topic": "mixed", "method": "whoami", "timeout": 20})
			require.NoError(t, rep.Err())
			seen[string(rep.Result)]++
		}
		require.Len(t, seen, 3, "%v", seen)
	}, pycli)
	drainGo(gosrv)
	drainGo(gosrv2)
	drainPy()

	fanoutOnce := func(t *testing.T, what string) {
		t.Helper()
		for _, g := range []*goRPC{gosrv, gosrv2} {
			s := g.Next(t, 10*time.Second)
			require.Equal(t, "fanout_me", s.Method, "%s at %s", what, g.Name)
			g.None(t, 0)
		}
		ev := pysrv.Event(10 * time.Second)
		require.Equal(t, "fanout_me", ev["method"], "%s at pysrv", what)
		pysrv.NoEvent(500 * time.Millisecond)
		gosrv.None(t, 0)
		gosrv2.None(t, 0)
	}
	within(t, "fanout from Go reaches each server once", func(t *testing.T) {
		fan := true
		require.NoError(t, cli.Prepare(goslo.PrepareOptions{Fanout: fan}).Cast(t.Context(), goslo.NewMap(), "fanout_me", goslo.NewMap("from", "go")))
		fanoutOnce(t, "Go fanout")
	}, pysrv)
	within(t, "fanout from Python reaches each server once", func(t *testing.T) {
		require.NoError(t, pycli.Do("fanout", map[string]any{"topic": "mixed", "method": "fanout_me", "args": map[string]any{"from": "py"}}).Err())
		fanoutOnce(t, "Python fanout")
	}, pysrv, pycli)

	within(t, "Go and Python listeners share the notification queues", func(t *testing.T) {
		nt := goslo.NewNotifier(trCli, "mixed.go", "mixnote")
		for i := 0; i < 4; i++ {
			require.NoError(t, nt.Info(t.Context(), goslo.NewMap(), fmt.Sprintf("mixed.note.%d", i), "p"))
		}
		goGot, pyGot := 0, 0
		deadline := time.Now().Add(15 * time.Second)
		for goGot+pyGot < 4 && time.Now().Before(deadline) {
			select {
			case <-goNotes:
				goGot++
			case <-time.After(100 * time.Millisecond):
			}
			pyl.mu.Lock()
			pyGot += len(pyl.events)
			pyl.events = nil
			pyl.mu.Unlock()
			select {
			case l := <-pyl.lines:
				pyl.file(l)
			default:
			}
		}
		pyl.mu.Lock()
		pyGot += len(pyl.events)
		pyl.events = nil
		pyl.mu.Unlock()
		require.Equal(t, 4, goGot+pyGot, "each notification is handled once by one of the two consumers of mixnote.info (go %d, python %d)", goGot, pyGot)
		require.Positive(t, goGot, "the Go listener consumes mixnote.info")
		require.Positive(t, pyGot, "the Python listener consumes mixnote.info")
	}, pyl)

	if quorum {
		within(t, "two Go transports in one process get distinct queue-manager names", func(t *testing.T) {
			tr3 := goRabbit(t, url, mut...)
			cli3 := goslo.NewRPCClient(tr3, goslo.Target{Topic: "mixed", Server: "gosrv"}).Prepare(goslo.PrepareOptions{Timeout: 3 * time.Second})
			cli2 := cli.Prepare(goslo.PrepareOptions{Server: "gosrv", Timeout: 3 * time.Second})
			var wg sync.WaitGroup
			errs := make(chan error, 40)
			for _, c := range []*goslo.RPCClient{cli2, cli3} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 10; i++ {
						if _, err := c.Call(context.Background(), goslo.NewMap(), "whoami", goslo.NewMap()); err != nil {
							errs <- err
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			var lost []string
			for err := range errs {
				lost = append(lost, err.Error())
			}
			require.Empty(t, lost, "calls of two Go transports (use_queue_manager) lost their replies: "+
				"both transports of this process took the same reply queue name reply_<host>:<proc>:1 "+
				"(the driver's queue-manager counter is per Transport, not per process)")
		})
		drainGo(gosrv)

		within(t, "requeue on a quorum pool queue (x-delivery-count ignored)", func(t *testing.T) {
			// A requeued delivery from a quorum queue comes back with the
			// broker's x-delivery-count header (§5.2, §13.12): the Go
			// decoder must ignore it. Sent by Python, requeued by Go.
			got := make(chan string, 8)
			var first atomic.Bool
			first.Store(true)
			h := func(_ context.Context, n goslo.Notification) error {
				if first.CompareAndSwap(true, false) {
					got <- "requeue " + n.EventType
					return goslo.ErrRequeue
				}
				got <- "handled " + n.EventType
				return nil
			}
			pool := goslo.NewNotificationListener(trSrv, []string{"mixnote"}, &goslo.NotificationEndpoint{
				Handlers: map[string]goslo.NotificationHandler{"info": h}}).WithPool("qpool").AllowRequeue()
			require.NoError(t, pool.Start(t.Context()))
			defer func() { _ = pool.Stop(context.Background()) }()
			pynot := StartRabbitPeer(t, "notifier", url, RabbitPeerConfig{Opts: pyOpts})
			require.NoError(t, pynot.Do("notify", map[string]any{"priority": "info", "topics": []string{"mixnote"},
				"event_type": "quorum.requeue", "payload": "p"}).Err())
			for _, want := range []string{"requeue quorum.requeue", "handled quorum.requeue"} {
				select {
				case g := <-got:
					require.Equal(t, want, g)
				case <-time.After(15 * time.Second):
					t.Fatalf("the Go pool listener did not get %q", want)
				}
			}
			// the copies on mixnote.info went to the Go or the Python listener
			select {
			case <-goNotes:
			case <-time.After(2 * time.Second):
				pyl.Event(10 * time.Second)
			}
		}, pyl)
	}

	within(t, "no PRECONDITION_FAILED and everybody still consuming", func(t *testing.T) {
		require.Empty(t, channelErrors(t, n, vhost), "channel errors in the broker log")
		cons := map[string]int{}
		for _, c := range n.ListConsumers(vhost, "queue_name") {
			cons[c["queue_name"].(string)]++
		}
		want := map[string]int{"mixed": 3, "mixed.gosrv": 1, "mixed.gosrv2": 1, "mixed.pysrv": 1, "mixnote.info": 2, "mixnote.error": 2}
		for q, c := range want {
			require.Equal(t, c, cons[q], "consumers of %s (all: %v)", q, cons)
		}
		fanouts, replies := 0, 0
		for q, c := range cons {
			switch {
			case strings.HasPrefix(q, "mixed_fanout_"):
				fanouts++
				require.Equal(t, 1, c, q)
			case strings.HasPrefix(q, "reply_"):
				replies++
				require.Equal(t, 1, c, q)
			}
		}
		require.Equal(t, 3, fanouts, "one fanout queue per server: %v", cons)
		require.GreaterOrEqual(t, replies, 2, "the Go and Python reply queues: %v", cons)
		checkMixedTopology(t, n, vhost, quorum)
	})
}

// checkMixedTopology: every queue of the mixed deployment has the flags
// of its kind (spec §5.1, §5.2), whoever declared it first.
func checkMixedTopology(t *testing.T, n *rabbittest.Node, vhost string, quorum bool) {
	t.Helper()
	host := qmHost
	var names []string
	for _, q := range n.ListQueues(vhost, "name", "type", "durable", "auto_delete", "arguments") {
		name := q["name"].(string)
		names = append(names, name)
		transient := strings.HasPrefix(name, "reply_") || strings.HasPrefix(name, "mixed_fanout_")
		switch {
		case quorum:
			require.Equal(t, "quorum", q["type"], "%s: %v", name, q)
			require.Equal(t, true, q["durable"], "%s: %v", name, q)
			if transient {
				// queue-manager names: <hostname>:<processname>:<n>
				require.Regexp(t, `^(reply|mixed_fanout)_`+regexp.QuoteMeta(host)+`:(interop\.test|rabbit_peer\.py-\d+):\d+$`, name)
			}
		default:
			require.Equal(t, "classic", q["type"], "%s: %v", name, q)
			require.Equal(t, false, q["durable"], "%s: %v", name, q)
			if transient {
				require.Regexp(t, `^(reply|mixed_fanout)_[0-9a-f]{32}$`, name)
			}
		}
		require.Equal(t, false, q["auto_delete"], "%s: %v", name, q)
	}
	sort.Strings(names)
	t.Logf("queues of %s: %v", vhost, names)
	for _, e := range n.ListExchanges(vhost, "name", "type", "durable", "auto_delete") {
		switch e["name"] {
		case "openstack":
			require.Equal(t, quorum, e["durable"], "openstack: %v", e)
		case "mixed_fanout":
			require.Equal(t, "fanout", e["type"])
			require.Equal(t, quorum, e["durable"], "mixed_fanout: %v", e)
			require.Equal(t, true, e["auto_delete"])
		}
	}
}
