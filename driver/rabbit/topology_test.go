package rabbit

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/envelope"
)

// checkConnections compares, for every captured connection, the topology
// commands the Python client sent with the ones Topology computes. Random
// names (uuid4 hex or queue-manager names) are checked by shape and then
// used as inputs; so is the order of a listener's subscriptions, which
// Python takes from a set.
func checkConnections(t *testing.T, name string, top Topology, conns []any) {
	t.Helper()
	seen := map[string]bool{}
	for _, conn := range conns {
		label, purpose := str(conn, "label"), str(conn, "purpose")
		cmds := setupCommands(conn)
		var got []string
		for _, c := range cmds {
			got = append(got, capturedString(c))
		}
		var plan ListenPlan
		isListen := strings.HasPrefix(purpose, "listen")
		switch {
		case isListen && strings.HasPrefix(label, "rpc-server"):
			queues := strings.Split(strings.TrimSuffix(strings.TrimPrefix(purpose, "listen (consumes "), ")"), ", ")
			require.Len(t, queues, 3, "%s %s", name, label)
			server := strings.TrimPrefix(queues[1], "demo.")
			var unique string
			if queues[2] != "demo_fanout" {
				unique = strings.TrimPrefix(queues[2], "demo_fanout_")
				require.True(t, hex32.MatchString(unique) || qmName.MatchString(unique), "%s %s: fanout queue %q", name, label, queues[2])
			}
			plan = top.RPCServer("", "demo", server, unique)
			var deleted []string
			for _, c := range list(conn, "commands") {
				if str(c, "dir") == "C>S" && str(c, "method") == "queue.delete" {
					deleted = append(deleted, str(c, "args", "queue"))
					require.Equal(t, false, get(c, "args", "if_unused"))
					require.Equal(t, false, get(c, "args", "if_empty"))
				}
			}
			require.Equal(t, deleted, top.ShutdownDeletes(plan), "%s %s: queues deleted at shutdown", name, label)
			seen["rpc-server"] = true
		case isListen && strings.HasPrefix(label, "rpc-client"):
			q := strings.TrimSuffix(strings.TrimPrefix(purpose, "listen (consumes "), ")")
			unique := strings.TrimPrefix(q, "reply_")
			require.True(t, hex32.MatchString(unique) || qmName.MatchString(unique), "%s %s: reply queue %q", name, label, q)
			require.Equal(t, q, ReplyQueue(unique))
			plan = top.ReplyListener(q)
			seen["reply"] = true
		case isListen && strings.HasPrefix(label, "listener"):
			var subs []Subscription
			pool := ""
			for _, c := range cmds {
				if str(c, "method") != "queue.bind" {
					continue
				}
				key, queue, ex := str(c, "args", "routing_key"), str(c, "args", "queue"), str(c, "args", "exchange")
				if queue != key {
					pool = queue
				}
				if ex == top.ControlExchange() {
					ex = ""
				}
				i := strings.LastIndexByte(key, '.')
				subs = append(subs, Subscription{Exchange: ex, Topic: key[:i], Priority: strings.ToUpper(key[i+1:])})
			}
			if len(subs) == 0 && closed(conn) {
				continue // durable_mismatch: closed at the first exchange.declare
			}
			require.NotEmpty(t, subs, "%s %s", name, label)
			plan = top.NotificationListener(subs, pool)
			seen["listener"] = true
		default:
			checkSend(t, name, top, conn)
			continue
		}
		var want []string
		for _, c := range plan.Commands() {
			want = append(want, c.String())
		}
		if closed(conn) && len(got) < len(want) {
			want = want[:len(got)] // durable_mismatch: compare up to the broker's channel.close
		}
		require.Equal(t, want, got, "%s %s", name, label)
	}
	for _, k := range []string{"rpc-server", "reply", "listener"} {
		require.True(t, seen[k], "%s: no %s connection checked (seen %v)", name, k, sortedKeys(seen))
	}
}

func TestTopologyOptionsMatrix(t *testing.T) {
	f := loadVector(t, "options-matrix.json")
	n := 0
	for _, v := range list(f, "variants") {
		name := str(v, "variant")
		opts, _ := get(v, "oslo_messaging_rabbit").(*envelope.Map)
		c := configFor(t, opts, str(v, "control_exchange"), str(v, "transport_url_query"))
		checkConnections(t, name, NewTopology(c), list(v, "connections"))
		n++
	}
	require.Equal(t, 15, n)
}

func TestTopologyScenarios(t *testing.T) {
	for _, name := range []string{"default", "quorum-qmanager"} {
		scenario := loadVector(t, name+".json")
		frames := loadVector(t, name+"-frames.json")
		opts, _ := get(scenario, "config", "oslo_messaging_rabbit").(*envelope.Map)
		rpc := NewTopology(configFor(t, opts, "openstack", ""))
		// The second notifier transport runs with control_exchange nova.
		nova := NewTopology(configFor(t, opts, "nova", ""))
		var main, other []any
		for _, c := range list(frames, "connections") {
			if str(c, "label") == "notifier conn2" {
				other = append(other, c)
			} else {
				main = append(main, c)
			}
		}
		checkConnections(t, name, rpc, main)
		require.Len(t, other, 1)
		checkSend(t, name, nova, other[0])
	}
}

func TestTopologyArgsTable(t *testing.T) {
	c := configFor(t, envelope.NewMap("rabbit_quorum_queue", "true", "rabbit_quorum_delivery_limit", "5",
		"rabbit_transient_quorum_queue", "true"), "openstack", "")
	top := NewTopology(c)
	require.Equal(t, map[string]any{"x-queue-type": "quorum", "x-delivery-limit": int32(5)}, top.TopicQueueArgs().Table())
	require.Equal(t, map[string]any{"x-queue-type": "quorum", "x-expires": int32(1800000)}, top.TransientQueueArgs().Table())
	require.Nil(t, Args(nil).Table())
	require.Equal(t, byte('l'), FieldType(pyInt(1<<31)))
	require.Equal(t, byte('I'), FieldType(pyInt(-1<<31)))
	p := top.Cast("", "demo", "srv1", false)
	require.Equal(t, "openstack", p.Exchange)
	require.Equal(t, "demo.srv1", p.RoutingKey)
	require.True(t, top.Reply("reply_x").Mandatory)
	require.Equal(t, "demo_fanout", top.FanoutCast("demo").Exchange)
	require.Equal(t, "", top.FanoutCast("demo").RoutingKey)
}

// checkSend replays a sending connection's publishes through a
// PublishCache and compares the declarations that come out, and the
// mandatory flags, with the captured ones.
func checkSend(t *testing.T, name string, top Topology, conn any) {
	t.Helper()
	label := str(conn, "label")
	if closed(conn) {
		return // durable_mismatch: the fallback path belongs to the I/O layer
	}
	var got []string
	for _, c := range setupCommands(conn) {
		got = append(got, capturedString(c))
	}
	var cache PublishCache
	var want []string
	for _, c := range list(conn, "commands") {
		if str(c, "dir") != "C>S" || str(c, "method") != "basic.publish" {
			continue
		}
		ex, key := str(c, "args", "exchange"), str(c, "args", "routing_key")
		mandatory := get(c, "args", "mandatory") == true
		var p Publication
		switch {
		case ex == "":
			p = top.Reply(key)
		case strings.HasSuffix(ex, "_fanout"):
			p = top.FanoutCast(strings.TrimSuffix(ex, "_fanout"))
		case strings.HasPrefix(label, "notifier"):
			i := strings.LastIndexByte(key, '.')
			p = top.Notify(ex, key[:i], key[i+1:])
		default:
			topic, server, _ := strings.Cut(key, ".")
			p = top.Cast(ex, topic, server, mandatory) // at_least_once is the caller's input
		}
		require.Equal(t, ex, p.Exchange)
		require.Equal(t, key, p.RoutingKey)
		require.Equal(t, mandatory, p.Mandatory, "%s %s: mandatory of %s/%s", name, label, ex, key)
		for _, d := range cache.Due(p) {
			want = append(want, d.String())
		}
	}
	require.Equal(t, want, got, "%s %s", name, label)
}

// closed reports whether the broker closed the channel of a connection
// (a declaration conflict).
func closed(conn any) bool {
	for _, c := range list(conn, "commands") {
		if str(c, "dir") == "S>C" && str(c, "method") == "channel.close" {
			return true
		}
	}
	return false
}
