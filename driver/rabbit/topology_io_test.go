package rabbit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/internal/rabbittest"
	"github.com/goslo/goslo/internal/vectors"
)

var hexSuffix = regexp.MustCompile(`[0-9a-f]{32}$`)

// shape replaces a uuid4 hex suffix (reply and fanout queues) by <hex>.
func shape(name string) string { return hexSuffix.ReplaceAllString(name, "<hex>") }

func sortStrings(s []string) { sort.Strings(s) }

// pub publishes a raw body with kombu's content type, as a probe.
func pub(t *testing.T, n *rabbittest.Node, vhost, exchange, key string, body []byte) {
	t.Helper()
	c, err := amqp.Dial(n.AMQPURL(vhost))
	require.NoError(t, err)
	defer c.Close()
	ch, err := c.Channel()
	require.NoError(t, err)
	require.NoError(t, ch.PublishWithContext(context.Background(), exchange, key, false, false,
		amqp.Publishing{ContentType: "application/json", ContentEncoding: "utf-8", Body: body}))
	require.NoError(t, ch.Close())
}

type snapshot struct {
	Exchanges, Queues, Bindings, Consumers, Channels []string
}

func rowKey(r map[string]any, keys ...string) string {
	var parts []string
	for _, k := range keys {
		v := r[k]
		if s, ok := v.(string); ok && (k == "name" || k == "destination_name" || k == "queue_name") {
			v = shape(s)
		}
		if l, ok := v.([]any); ok && k == "arguments" {
			// amqp091-go writes a field table in Go's map order, so the
			// broker lists a goslo declaration's arguments in any order
			// (RabbitMQ's equivalence check ignores the order; Python's
			// is fixed): compare them as a set.
			l = append([]any(nil), l...)
			sort.Slice(l, func(i, j int) bool { return fmt.Sprint(l[i]) < fmt.Sprint(l[j]) })
			v = l
		}
		b, _ := json.Marshal(v)
		parts = append(parts, k+"="+string(b))
	}
	return strings.Join(parts, " ")
}

func rows[T any](in []T) []map[string]any {
	var out []map[string]any
	for _, r := range in {
		b, _ := json.Marshal(r)
		var m map[string]any
		d := json.NewDecoder(strings.NewReader(string(b)))
		d.UseNumber()
		_ = d.Decode(&m)
		out = append(out, m)
	}
	return out
}

// makeSnapshot normalises a topology; staleCounts leaves out the queues'
// consumer counts (quorum queues report them late, and the captures hold
// stale ones: vectors README).
func makeSnapshot(staleCounts bool, ex, qs, bs, cs, chs []map[string]any) snapshot {
	var s snapshot
	for _, r := range chs {
		if n, ok := r["number"]; ok && fmt.Sprint(n) != "1" {
			s.Channels = append(s.Channels, "channel number "+fmt.Sprint(n)) // Python: always channel 1
		}
		s.Channels = append(s.Channels, rowKey(r, "confirm", "prefetch_count", "global_prefetch_count", "consumer_count", "transactional"))
	}
	for _, r := range ex {
		name, _ := r["name"].(string)
		if name == "" || strings.HasPrefix(name, "amq.") {
			continue
		}
		s.Exchanges = append(s.Exchanges, rowKey(r, "name", "type", "durable", "auto_delete", "internal", "arguments"))
	}
	for _, r := range qs {
		cols := []string{"name", "type", "durable", "auto_delete", "exclusive", "arguments", "consumers"}
		if staleCounts {
			cols = cols[:len(cols)-1]
		}
		s.Queues = append(s.Queues, rowKey(r, cols...))
	}
	for _, r := range bs {
		if r["source_name"] == "" {
			continue // the default exchange's implicit bindings
		}
		s.Bindings = append(s.Bindings, rowKey(r, "source_name", "source_kind", "destination_name", "destination_kind", "routing_key", "arguments"))
	}
	for _, r := range cs {
		s.Consumers = append(s.Consumers, rowKey(r, "queue_name", "consumer_tag", "ack_required", "prefetch_count", "active", "arguments"))
	}
	for _, l := range [][]string{s.Exchanges, s.Queues, s.Bindings, s.Consumers, s.Channels} {
		sort.Strings(l)
	}
	return s
}

func live(t *testing.T, n *rabbittest.Node, vhost string, staleCounts bool) snapshot {
	return makeSnapshot(staleCounts, rows(n.ListExchanges(vhost)), rows(n.ListQueues(vhost)), rows(n.ListBindings(vhost)), rows(n.ListConsumers(vhost)), rows(n.ListChannels(vhost)))
}

func captured(t *testing.T, file, moment string) snapshot {
	var v struct {
		Topology []struct {
			Moment                                           string
			Exchanges, Queues, Bindings, Consumers, Channels []map[string]any
		}
	}
	d := json.NewDecoder(strings.NewReader(string(vectors.LoadRabbit(t, file))))
	d.UseNumber()
	require.NoError(t, d.Decode(&v))
	for _, tp := range v.Topology {
		if tp.Moment == moment {
			return makeSnapshot(strings.HasPrefix(file, "quorum"), tp.Exchanges, tp.Queues, tp.Bindings, tp.Consumers, tp.Channels)
		}
	}
	t.Fatalf("no topology snapshot %q", moment)
	return snapshot{}
}

// testTopology runs the components of vectors/rabbit/default.json in Go
// (two servers on "demo", a client, two notifiers, the three listeners)
// and compares the broker's view with the captured snapshots, uuid hex
// suffixes compared by shape.
func testTopology(t *testing.T, n *rabbittest.Node) {
	topologyScenario(t, n, "goslo-topology", "default.json", nil, nil, []string{"info", "error"})
}

// testTopologyQuorum: the same with rabbit_quorum_queue,
// rabbit_transient_quorum_queue and use_queue_manager (hostname
// capture-host, the Python scripts' process names), against
// quorum-qmanager.json.
func testTopologyQuorum(t *testing.T, n *rabbittest.Node) {
	opts := func(proc string) func(*compat.Config) {
		return func(c *compat.Config) {
			c.Rabbit.RabbitQuorumQueue = true
			c.Rabbit.RabbitTransientQuorumQueue = true
			c.Rabbit.UseQueueManager = true
			c.Rabbit.Hostname = "capture-host"
			c.Rabbit.Processname = proc
		}
	}
	topologyScenario(t, n, "goslo-quorum", "quorum-qmanager.json", opts("rpc-server.py"), opts("rpc-client.py"), []string{"error", "info"})
}

func topologyScenario(t *testing.T, n *rabbittest.Node, vhost, file string, srvOpts, otherOpts func(*compat.Config), prios []string) {
	n.AddVhost(vhost)
	both := func(extra func(*compat.Config)) func(*compat.Config) {
		return func(c *compat.Config) {
			if otherOpts != nil {
				otherOpts(c)
			}
			if extra != nil {
				extra(c)
			}
		}
	}
	srvT := open(t, n, vhost, srvOpts)
	cliT := open(t, n, vhost, otherOpts)
	notT := open(t, n, vhost, otherOpts)
	novaT := open(t, n, vhost, both(func(c *compat.Config) { c.Default.ControlExchange = "nova" }))
	lisT := open(t, n, vhost, otherOpts)

	e1, e2 := newEcho("srv1"), newEcho("srv2")
	s1 := listen(t, srvT, compat.Target{Topic: "demo", Server: "srv1"}, e1.handle)
	s2 := listen(t, srvT, compat.Target{Topic: "demo", Server: "srv2"}, e2.handle)
	_, err := cliT.Call(ctxT(t, 10*time.Second), compat.Target{Topic: "demo"}, reqMsg("echo"))
	require.NoError(t, err)
	_, err = cliT.Call(ctxT(t, time.Second), compat.Target{Topic: "demo", Exchange: "custom_ex"}, reqMsg("echo"))
	require.Error(t, err)
	require.NoError(t, cliT.Cast(ctxT(t, 10*time.Second), compat.Target{Topic: "demo", Fanout: true}, reqMsg("echo")))
	_, err = cliT.Call(ctxT(t, time.Second), compat.Target{Topic: "nobody"}, reqMsg("echo"))
	require.Error(t, err)
	require.NoError(t, notT.Notify(ctxT(t, 10*time.Second), compat.Target{Topic: "notifications.info"}, notification("INFO", "a")))
	require.NoError(t, notT.Notify(ctxT(t, 10*time.Second), compat.Target{Topic: "notifications.error"}, notification("ERROR", "b")))
	require.NoError(t, novaT.Notify(ctxT(t, 10*time.Second), compat.Target{Topic: "monitor.info"}, notification("INFO", "c")))

	sink := func(ctx context.Context, r *driver.Request) error { return nil }
	var mainTargets []compat.Target
	for _, p := range prios {
		mainTargets = append(mainTargets, compat.Target{Topic: "notifications." + p})
	}
	l1 := listenNotes(t, lisT, mainTargets, driver.ListenOptions{AllowRequeue: true}, sink)
	l2 := listenNotes(t, lisT, []compat.Target{{Topic: "notifications.info"}}, driver.ListenOptions{Pool: "audit-pool"}, sink)
	l3 := listenNotes(t, lisT, []compat.Target{{Topic: "monitor.info", Exchange: "nova"}}, driver.ListenOptions{}, sink)

	want := captured(t, file, "before stopping")
	waitSnapshot(t, n, vhost, want, strings.HasPrefix(file, "quorum"))

	ctx := ctxT(t, 20*time.Second)
	for _, s := range []driver.Server{s1, s2, l1, l2, l3} {
		require.NoError(t, s.Stop(ctx))
	}
	for _, tr := range []interface{ Close() error }{srvT, cliT, notT, novaT, lisT} {
		require.NoError(t, tr.Close())
	}
	want = captured(t, file, "after all components stopped")
	waitSnapshot(t, n, vhost, want, strings.HasPrefix(file, "quorum"))
}

func waitSnapshot(t *testing.T, n *rabbittest.Node, vhost string, want snapshot, staleCounts bool) {
	t.Helper()
	var got snapshot
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if got = live(t, n, vhost, staleCounts); fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
	}
	require.Equal(t, want, got)
}
