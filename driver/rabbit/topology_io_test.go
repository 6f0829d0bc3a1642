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
	Exchanges, Queues, Bindings, Consumers []string
}

func rowKey(r map[string]any, keys ...string) string {
	var parts []string
	for _, k := range keys {
		v := r[k]
		if s, ok := v.(string); ok && (k == "name" || k == "destination_name" || k == "queue_name") {
			v = shape(s)
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

func makeSnapshot(ex, qs, bs, cs []map[string]any) snapshot {
	var s snapshot
	for _, r := range ex {
		name, _ := r["name"].(string)
		if name == "" || strings.HasPrefix(name, "amq.") {
			continue
		}
		s.Exchanges = append(s.Exchanges, rowKey(r, "name", "type", "durable", "auto_delete", "internal", "arguments"))
	}
	for _, r := range qs {
		s.Queues = append(s.Queues, rowKey(r, "name", "type", "durable", "auto_delete", "exclusive", "arguments", "consumers"))
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
	for _, l := range [][]string{s.Exchanges, s.Queues, s.Bindings, s.Consumers} {
		sort.Strings(l)
	}
	return s
}

func live(t *testing.T, n *rabbittest.Node, vhost string) snapshot {
	return makeSnapshot(rows(n.ListExchanges(vhost)), rows(n.ListQueues(vhost)), rows(n.ListBindings(vhost)), rows(n.ListConsumers(vhost)))
}

func captured(t *testing.T, moment string) snapshot {
	var v struct {
		Topology []struct {
			Moment                                 string
			Exchanges, Queues, Bindings, Consumers []map[string]any
		}
	}
	d := json.NewDecoder(strings.NewReader(string(vectors.LoadRabbit(t, "default.json"))))
	d.UseNumber()
	require.NoError(t, d.Decode(&v))
	for _, tp := range v.Topology {
		if tp.Moment == moment {
			return makeSnapshot(tp.Exchanges, tp.Queues, tp.Bindings, tp.Consumers)
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
	vhost := "goslo-topology"
	n.AddVhost(vhost)
	srvT := open(t, n, vhost, nil)
	cliT := open(t, n, vhost, nil)
	notT := open(t, n, vhost, nil)
	novaT := open(t, n, vhost, func(c *compat.Config) { c.Default.ControlExchange = "nova" })
	lisT := open(t, n, vhost, nil)

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
	l1 := listenNotes(t, lisT, []compat.Target{{Topic: "notifications.info"}, {Topic: "notifications.error"}}, driver.ListenOptions{AllowRequeue: true}, sink)
	l2 := listenNotes(t, lisT, []compat.Target{{Topic: "notifications.info"}}, driver.ListenOptions{Pool: "audit-pool"}, sink)
	l3 := listenNotes(t, lisT, []compat.Target{{Topic: "monitor.info", Exchange: "nova"}}, driver.ListenOptions{}, sink)

	want := captured(t, "before stopping")
	waitSnapshot(t, n, vhost, want)

	ctx := ctxT(t, 20*time.Second)
	for _, s := range []driver.Server{s1, s2, l1, l2, l3} {
		require.NoError(t, s.Stop(ctx))
	}
	for _, tr := range []interface{ Close() error }{srvT, cliT, notT, novaT, lisT} {
		require.NoError(t, tr.Close())
	}
	want = captured(t, "after all components stopped")
	waitSnapshot(t, n, vhost, want)
}

func waitSnapshot(t *testing.T, n *rabbittest.Node, vhost string, want snapshot) {
	t.Helper()
	var got snapshot
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if got = live(t, n, vhost); fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
	}
	require.Equal(t, want, got)
}
