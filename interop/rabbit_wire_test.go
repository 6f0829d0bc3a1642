package interop

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
)

// traced is one publish copied by the firehose (amq.rabbitmq.trace,
// routing key publish.<exchange>).
type traced struct {
	User, Exchange, RoutingKey string
	Props                      amqp.Table // the publish's basic properties as the broker decoded them
	Kind                       string     // call, cast, fanout, reply, heartbeat, notification-v1, notification-v2
	Body                       map[string]any
}

// tracer reads the firehose of a vhost (whose tracing is on) from a
// queue of its own bound to amq.rabbitmq.trace with publish.#.
type tracer struct {
	conn       *amqp.Connection
	deliveries <-chan amqp.Delivery
}

func traceVhost(t testing.TB, amqpURL string) *tracer {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind(q.Name, "publish.#", "amq.rabbitmq.trace", false, nil))
	d, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	require.NoError(t, err)
	return &tracer{conn: conn, deliveries: d}
}

// collect returns the publishes traced so far, once the trace has been
// quiet for 1.5 s.
func (tr *tracer) collect() []traced {
	var all []traced
	for {
		select {
		case d := <-tr.deliveries:
			props, _ := d.Headers["properties"].(amqp.Table)
			user, _ := d.Headers["user"].(string)
			exch, _ := d.Headers["exchange_name"].(string)
			var rk string
			if rks, ok := d.Headers["routing_keys"].([]any); ok && len(rks) > 0 {
				rk, _ = rks[0].(string)
			}
			body := d.Body
			if h, _ := props["headers"].(amqp.Table); h["compression"] == "application/x-gzip" {
				if r, err := zlib.NewReader(bytes.NewReader(body)); err == nil {
					if b, err := io.ReadAll(r); err == nil {
						body = b
					}
				}
			}
			kind, msg := classify(exch, body)
			all = append(all, traced{User: user, Exchange: exch, RoutingKey: rk, Props: props, Kind: kind, Body: msg})
		case <-time.After(1500 * time.Millisecond):
			return all
		}
	}
}

// classify tells what a traced body is (spec §7.3–§7.5).
func classify(exchange string, body []byte) (string, map[string]any) {
	var outer map[string]any
	if json.Unmarshal(body, &outer) != nil {
		return "unreadable", nil
	}
	msg, v2 := outer, false
	if inner, ok := outer["oslo.message"].(string); ok {
		v2 = true
		msg = nil
		if json.Unmarshal([]byte(inner), &msg) != nil {
			return "unreadable", nil
		}
	}
	_, hasMethod := msg["method"]
	_, hasMsgID := msg["_msg_id"]
	_, hasEvent := msg["event_type"]
	ending, hasEnding := msg["ending"]
	switch {
	case hasEvent && v2:
		return "notification-v2", msg
	case hasEvent:
		return "notification-v1", msg
	case hasMethod && hasMsgID:
		return "call", msg
	case hasMethod && strings.HasSuffix(exchange, "_fanout"):
		return "fanout", msg
	case hasMethod:
		return "cast", msg
	case hasEnding && ending == false:
		return "heartbeat", msg
	case hasEnding:
		return "reply", msg
	}
	return "other", msg
}

// TestRabbitWireProperties: the only property differences between a Go
// publish and a Python 18.3.1 publish are the two amqp091-go cannot write
// (spec §7.1): an empty headers table and an explicit priority 0. The
// firehose shows every publish of the vhost with its properties as the
// broker decoded them; Go publishes as user gopeer, Python as guest.
// Each Go message is received by a Python peer that behaves exactly as
// with a Python sender: the Python server answers a Go call, the Python
// client accepts a Go reply and Go heartbeats, the Python listener
// takes Go notifications (messaging and messagingv2).
func TestRabbitWireProperties(t *testing.T) {
	defer stopSharedOnPanic()
	const vhost = "goslo-wire"
	n, url := rabbitVhost(t, vhost) // with user gopeer and the firehose on
	goURL := n.UserURL("gopeer", "gopeer", vhost)

	trace := traceVhost(t, n.AMQPURL(vhost))
	conn := trace.conn

	peers := StartRabbitPeers(t,
		RabbitPeerSpec{"server", url, RabbitPeerConfig{Topic: "pywire", Servers: []string{"pysrv"}}},
		RabbitPeerSpec{"client", url, RabbitPeerConfig{}},
		RabbitPeerSpec{"listener", url, RabbitPeerConfig{Topic: "wirenote", Name: "pylisten"}},
		RabbitPeerSpec{"notifier", url, RabbitPeerConfig{}},
	)
	pysrv, pycli, pyl, pynot := peers[0], peers[1], peers[2], peers[3]
	trV2 := goRabbit(t, goURL)
	trV1 := goRabbit(t, goURL, func(c *compat.Config) { c.Notifications.Driver = []string{"messaging"} })
	g := startGoRPC(t, trV2, "gowire", "gosrv")
	gocli := goslo.NewRPCClient(trV2, goslo.Target{Topic: "pywire"})
	rctx := goslo.NewMap("user", "u1")

	within(t, "Python peers take Go messages without headers and priority", func(t *testing.T) {
		// Go CALL → Python server, Python reply → Go.
		res, err := gocli.Prepare(goslo.PrepareOptions{Timeout: 10 * time.Second}).Call(t.Context(), rctx, "echo", goslo.NewMap("x", int64(1)))
		require.NoError(t, err, "the Python server must answer a Go CALL")
		require.Contains(t, fmt.Sprint(res), "x")
		require.Equal(t, "echo", pysrv.Event(10 * time.Second)["method"])
		// Go CALL with call monitor → Python heartbeats (Python-sent).
		_, err = gocli.Prepare(goslo.PrepareOptions{Timeout: 10 * time.Second, CallMonitorTimeout: 2 * time.Second}).Call(t.Context(), rctx, "slow", goslo.NewMap("seconds", 2.2))
		require.NoError(t, err)
		pysrv.Event(10 * time.Second)
		pysrv.Event(10 * time.Second)
		// Go CAST and fanout → Python server.
		require.NoError(t, gocli.Cast(t.Context(), rctx, "cast_me", goslo.NewMap("n", int64(1))))
		require.Equal(t, "cast_me", pysrv.Event(10 * time.Second)["method"])
		fan := true
		require.NoError(t, gocli.Prepare(goslo.PrepareOptions{Fanout: fan}).Cast(t.Context(), rctx, "fanout_me", goslo.NewMap()))
		require.Equal(t, "fanout_me", pysrv.Event(10 * time.Second)["method"])
		// Go CALL that times out: expiration "2000".
		_, err = goslo.NewRPCClient(trV2, goslo.Target{Topic: "nobody"}).Prepare(goslo.PrepareOptions{Timeout: 2 * time.Second}).Call(t.Context(), rctx, "echo", goslo.NewMap())
		require.ErrorIs(t, err, goslo.ErrMessagingTimeout)

		// Python CALL → Go server: the Python client accepts the Go reply
		// and, with call_monitor_timeout, the Go heartbeats.
		rep := pycli.Do("call", map[string]any{"topic": "gowire", "method": "echo", "args": map[string]any{"y": 2}, "timeout": 10})
		require.NoError(t, rep.Err(), "the Python client must accept a Go reply")
		rep = pycli.Do("call", map[string]any{"topic": "gowire", "method": "slow", "args": map[string]any{"seconds": 2.2}, "call_monitor_timeout": 2, "timeout": 10})
		require.NoError(t, rep.Err(), "the Python client must accept Go heartbeats")
		rep = pycli.Do("call", map[string]any{"topic": "gowire", "method": "boom", "args": map[string]any{"message": "m"}, "timeout": 10})
		require.Equal(t, "ValueError", rep.Error.Class, "the Python client must accept a Go failure reply")
		require.NoError(t, pycli.Do("cast", map[string]any{"topic": "gowire", "method": "cast_me"}).Err())
		require.NoError(t, pycli.Do("fanout", map[string]any{"topic": "gowire", "method": "fanout_me"}).Err())
		for i := 0; i < 5; i++ {
			g.Next(t, 10*time.Second)
		}

		// Go notifications (both drivers) → Python listener, and a Python
		// one for comparison.
		for _, tr := range []*goslo.Transport{trV1, trV2} {
			require.NoError(t, goslo.NewNotifier(tr, "go.wire", "wirenote").Info(t.Context(), rctx, "wire.go", goslo.NewMap("k", "v")))
			ev := pyl.Event(15 * time.Second)
			require.Equal(t, "wire.go", ev["event_type"], "the Python listener must take a Go notification")
			require.Equal(t, "handled", ev["result"])
		}
		for _, drv := range []string{"messaging", "messagingv2"} {
			require.NoError(t, pynot.Do("notify", map[string]any{"driver": drv, "priority": "info", "event_type": "wire.py", "topics": []string{"wirenote"}, "payload": "p"}).Err())
			require.Equal(t, "wire.py", pyl.Event(15 * time.Second)["event_type"])
		}
	}, pysrv, pycli, pyl, pynot)

	all := trace.collect()

	within(t, "firehose: headers and priority are the only differences", func(t *testing.T) {
		kinds := map[string]map[string]int{"gopeer": {}, "guest": {}}
		for _, m := range all {
			require.Contains(t, []string{"gopeer", "guest"}, m.User, "publisher of %+v", m)
			kinds[m.User][m.Kind]++
			keys := propKeys(m.Props)
			what := fmt.Sprintf("%s %s by %s to %q/%q: %v", m.Kind, m.Body["method"], m.User, m.Exchange, m.RoutingKey, m.Props)
			// §7.1, common to both sides
			require.Equal(t, "application/json", m.Props["content_type"], what)
			require.Equal(t, "utf-8", m.Props["content_encoding"], what)
			require.Equal(t, "2", fmt.Sprint(m.Props["delivery_mode"]), what)
			want := []string{"content_encoding", "content_type", "delivery_mode"}
			if m.Kind == "call" {
				want = append(want, "expiration")
				exp, _ := m.Props["expiration"].(string)
				require.Regexp(t, `^[1-9][0-9]*$`, exp, what)
			}
			switch m.User {
			case "guest": // the reference: kombu's full set
				want = append(want, "headers", "priority")
				require.Equal(t, amqp.Table{}, m.Props["headers"], what)
				require.Equal(t, "0", fmt.Sprint(m.Props["priority"]), what)
			case "gopeer":
				// amqp091-go writes no empty headers table and no
				// priority 0: the ONLY differences allowed.
			}
			sort.Strings(want)
			require.Equal(t, want, keys, "property set of %s", what)
		}
		for _, k := range []string{"call", "cast", "fanout", "reply", "heartbeat", "notification-v1", "notification-v2"} {
			require.Positive(t, kinds["gopeer"][k], "no Go %s was traced (%v)", k, kinds)
		}
		for _, k := range []string{"call", "cast", "fanout", "reply", "heartbeat", "notification-v1", "notification-v2"} {
			require.Positive(t, kinds["guest"][k], "no Python %s was traced (%v)", k, kinds)
		}
		t.Logf("traced publishes: Go %v, Python %v", kinds["gopeer"], kinds["guest"])
		for _, m := range all {
			if m.User == "gopeer" {
				t.Logf("Go %s to %q/%q: properties %v", m.Kind, m.Exchange, m.RoutingKey, m.Props)
			}
		}
		// expiration = the call timeout in ms (Python: str(int(timeout*1000)))
		for _, m := range all {
			if m.Kind != "call" {
				continue
			}
			exp, _ := m.Props["expiration"].(string)
			switch m.User {
			case "guest":
				require.Equal(t, "10000", exp)
			case "gopeer": // the client's timeout, not the time left
				if m.RoutingKey == "nobody" {
					require.Equal(t, "2000", exp, "Go expiration for a 2 s call")
				} else {
					require.Equal(t, "10000", exp, "Go expiration for a 10 s call")
				}
			}
		}
	})

	within(t, "no channel errors, and the detector sees one", func(t *testing.T) {
		require.Empty(t, channelErrors(t, n, vhost), "channel errors in the broker log")
		// channelErrors (used by TestRabbitMixedServers) must see a real
		// PRECONDITION_FAILED: provoke one on a scratch channel.
		c2, err := conn.Channel()
		require.NoError(t, err)
		_, err = c2.QueueDeclare("detector-probe", false, false, false, false, nil)
		require.NoError(t, err)
		_, err = c2.QueueDeclare("detector-probe", true, false, false, false, nil)
		require.Error(t, err)
		require.Contains(t, err.Error(), "PRECONDITION_FAILED")
		var errs []string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && len(errs) == 0; time.Sleep(100 * time.Millisecond) {
			errs = channelErrors(t, n, vhost)
		}
		require.Len(t, errs, 1, "%v", errs)
		require.Contains(t, strings.ToLower(errs[0]), "precondition_failed")
		require.Contains(t, errs[0], "detector-probe")
	})
}

func propKeys(p amqp.Table) []string {
	var ks []string
	for k := range p {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
