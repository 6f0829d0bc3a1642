package interop

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/goslo/goslo/internal/rabbittest"
	"github.com/stretchr/testify/require"
)

// TestRabbitPythonPeers proves the rabbit harness on its own, before any Go
// driver exists: real oslo.messaging 18.3.1 peers (rabbit_peer.py, tox
// environment rabbit1831) talk to each other through a private
// rabbitmq-server node: RPC call, cast, fanout, a remote ValueError, a
// namespaced call, and notifications (messaging and messagingv2 drivers)
// to a listener and a pool listener, with one requeue.
func TestRabbitPythonPeers(t *testing.T) {
	defer stopSharedOnPanic()
	n, url := rabbitVhost(t, "goslo-peers")

	ps := StartRabbitPeers(t,
		RabbitPeerSpec{"server", url, RabbitPeerConfig{Topic: "demo", Servers: []string{"srv1", "srv2"}}},
		RabbitPeerSpec{"client", url, RabbitPeerConfig{}})
	srv, cli := ps[0], ps[1]
	require.Equal(t, "5.7.0", cli.Ready["kombu"])
	require.Equal(t, "5.4.2", cli.Ready["amqp"])

	t.Run("call", func(t *testing.T) {
		rep := cli.Do("call", map[string]any{"topic": "demo", "method": "echo", "version": "1.0",
			"args": map[string]any{"x": 1, "s": "héllo"}, "context": map[string]any{"user": "u1"}, "timeout": 10})
		require.NoError(t, rep.Err())
		var res map[string][]any
		rep.Decode(t, &res)
		require.ElementsMatch(t, []any{[]any{"x", json.Number("1")}, []any{"s", "héllo"}}, res["$dict"])
		ev := srv.Event(10 * time.Second)
		require.Equal(t, "request", ev["event"])
		require.Equal(t, "echo", ev["method"])
		require.Contains(t, []any{"srv1", "srv2"}, ev["server"])
	})

	t.Run("call server and context", func(t *testing.T) {
		rep := cli.Do("call", map[string]any{"topic": "demo", "server": "srv2", "method": "whoami", "timeout": 10})
		require.NoError(t, rep.Err())
		require.JSONEq(t, `"srv2"`, string(rep.Result))
		require.Equal(t, "srv2", srv.Event(10 * time.Second)["server"])

		rep = cli.Do("call", map[string]any{"topic": "demo", "server": "srv1", "method": "context",
			"context": map[string]any{"project_id": "p1"}, "timeout": 10})
		require.NoError(t, rep.Err())
		require.Contains(t, string(rep.Result), `"project_id"`)
		require.Contains(t, string(rep.Result), `"p1"`)
		srv.Event(10 * time.Second)

		rep = cli.Do("call", map[string]any{"topic": "demo", "server": "srv1", "method": "context",
			"context_kind": "request_context", "context": map[string]any{"user": "u9", "auth_token": "tok"}, "timeout": 10})
		require.NoError(t, rep.Err())
		require.Contains(t, string(rep.Result), `"u9"`)
		require.Contains(t, string(rep.Result), `"auth_token"`)
		srv.Event(10 * time.Second)
	})

	t.Run("remote ValueError", func(t *testing.T) {
		rep := cli.Do("call", map[string]any{"topic": "demo", "method": "boom", "args": map[string]any{"message": "kaboom: spécial ☃"}, "timeout": 10})
		require.Error(t, rep.Err())
		// builtins is always an allowed remote module: the caller gets a
		// real ValueError (message, then the remote traceback).
		require.Equal(t, "ValueError", rep.Error.Class)
		require.Equal(t, "builtins", rep.Error.Module)
		require.True(t, strings.HasPrefix(rep.Error.Message, "kaboom: spécial ☃"), rep.Error.Message)
		require.Equal(t, "boom", srv.Event(10 * time.Second)["method"])
	})

	t.Run("namespace and version", func(t *testing.T) {
		rep := cli.Do("call", map[string]any{"topic": "demo", "namespace": "ns", "version": "2.1", "method": "ns_ping", "timeout": 10})
		require.NoError(t, rep.Err())
		require.Contains(t, string(rep.Result), `"pong"`)
		ev := srv.Event(10 * time.Second)
		require.Equal(t, "NsEndpoint", ev["endpoint"])

		rep = cli.Do("call", map[string]any{"topic": "demo", "version": "2.0", "method": "echo", "timeout": 10})
		require.Error(t, rep.Err())
		require.Equal(t, "RemoteError", rep.Error.Class) // oslo_messaging.rpc.dispatcher is not allowed
		require.Equal(t, "UnsupportedVersion", rep.Error.ExcType)
	})

	t.Run("timeout", func(t *testing.T) {
		rep := cli.Do("call", map[string]any{"topic": "nobody", "method": "echo", "timeout": 2})
		require.Error(t, rep.Err())
		require.Equal(t, "MessagingTimeout", rep.Error.Class)
		require.GreaterOrEqual(t, rep.ElapsedMS, int64(1900))
	})

	t.Run("call monitor", func(t *testing.T) {
		rep := cli.Do("call", map[string]any{"topic": "demo", "server": "srv1", "method": "slow",
			"args": map[string]any{"seconds": 3.5}, "call_monitor_timeout": 2, "timeout": 10})
		require.NoError(t, rep.Err())
		require.GreaterOrEqual(t, rep.ElapsedMS, int64(3400)) // kept alive past call_monitor_timeout
		require.Equal(t, "slow", srv.Event(10 * time.Second)["method"])
		require.Equal(t, "slow_done", srv.Event(10 * time.Second)["event"])
	})

	t.Run("cast", func(t *testing.T) {
		rep := cli.Do("cast", map[string]any{"topic": "demo", "server": "srv2", "method": "cast_me", "args": map[string]any{"n": 7}})
		require.NoError(t, rep.Err())
		ev := srv.Event(10 * time.Second)
		require.Equal(t, "cast_me", ev["method"])
		require.Equal(t, "srv2", ev["server"])
	})

	t.Run("fanout", func(t *testing.T) {
		rep := cli.Do("fanout", map[string]any{"topic": "demo", "method": "fanout_me", "args": map[string]any{"n": 8}})
		require.NoError(t, rep.Err())
		got := map[any]bool{}
		for i := 0; i < 2; i++ {
			ev := srv.Event(10 * time.Second)
			require.Equal(t, "fanout_me", ev["method"])
			got[ev["server"]] = true
		}
		require.Equal(t, map[any]bool{"srv1": true, "srv2": true}, got)
		srv.NoEvent(time.Second)
	})

	// The topology is the spec's (§5.1): what rabbittest reads back.
	qs := n.ListQueues("goslo-peers")
	names := map[string]bool{}
	for _, q := range qs {
		names[q["name"].(string)] = true
	}
	require.True(t, names["demo"] && names["demo.srv1"] && names["demo.srv2"], "%v", names)

	t.Run("notifications", func(t *testing.T) {
		ps := StartRabbitPeers(t,
			RabbitPeerSpec{"listener", url, RabbitPeerConfig{Topic: "notifications", AllowRequeue: true, Name: "main"}},
			RabbitPeerSpec{"listener", url, RabbitPeerConfig{Topic: "notifications", Pool: "audit-pool"}},
			RabbitPeerSpec{"notifier", url, RabbitPeerConfig{}})
		main, pool, nt := ps[0], ps[1], ps[2]

		for _, drv := range []string{"messaging", "messagingv2"} {
			rep := nt.Do("notify", map[string]any{"driver": drv, "priority": "info", "publisher_id": "compute.host-1",
				"event_type": "compute.instance." + drv, "payload": map[string]any{"k": "v"}})
			require.NoError(t, rep.Err())
			for _, l := range []*RabbitPeer{main, pool} {
				ev := l.Event(15 * time.Second)
				require.Equal(t, "notification", ev["event"])
				require.Equal(t, "info", ev["priority"])
				require.Equal(t, "compute.host-1", ev["publisher_id"])
				require.Equal(t, "compute.instance."+drv, ev["event_type"])
				require.Equal(t, "handled", ev["result"])
			}
		}

		// error priority, a RequestContext (redacted), and one requeue on main.
		require.NoError(t, main.Do("requeue", map[string]any{"count": 1}).Err())
		rep := nt.Do("notify", map[string]any{"priority": "error", "event_type": "compute.fail", "payload": "bad",
			"context_kind": "request_context", "context": map[string]any{"user": "u1", "auth_token": "secret"}})
		require.NoError(t, rep.Err())
		first := main.Event(15 * time.Second)
		require.Equal(t, "requeue", first["result"])
		again := main.Event(15 * time.Second)
		require.Equal(t, "handled", again["result"])
		require.Equal(t, "compute.fail", again["event_type"])
		require.NotContains(t, again["context"].(map[string]any)["$dict"], []any{"auth_token", "secret"})
		pev := pool.Event(15 * time.Second)
		require.Equal(t, "error", pev["priority"])
		require.Equal(t, "handled", pev["result"])
		pool.NoEvent(time.Second)

		q := map[string]bool{}
		for _, r := range n.ListQueues("goslo-peers") {
			q[r["name"].(string)] = true
		}
		require.True(t, q["notifications.info"] && q["notifications.error"] && q["audit-pool"], "%v", q)
	})
}

// TestRabbitPeerOptions: --opt reaches the driver through cfg.CONF
// (quorum topic queues, another control exchange).
func TestRabbitPeerOptions(t *testing.T) {
	defer stopSharedOnPanic()
	n, url := rabbitVhost(t, "goslo-opts")
	opts := []string{"oslo_messaging_rabbit.rabbit_quorum_queue=true", "DEFAULT.control_exchange=goslo_ex"}
	cli := StartRabbitPeers(t,
		RabbitPeerSpec{"server", url, RabbitPeerConfig{Topic: "qdemo", Opts: opts}},
		RabbitPeerSpec{"client", url, RabbitPeerConfig{Opts: opts}})[1]
	rep := cli.Do("call", map[string]any{"topic": "qdemo", "method": "whoami", "timeout": 20})
	require.NoError(t, rep.Err())

	var topic rabbittest.Row
	for _, q := range n.ListQueues("goslo-opts") {
		if q["name"] == "qdemo" {
			topic = q
		}
	}
	require.NotNil(t, topic)
	require.Equal(t, "quorum", topic["type"])
	require.Equal(t, true, topic["durable"])
	found := false
	for _, e := range n.ListExchanges("goslo-opts") {
		found = found || e["name"] == "goslo_ex"
	}
	require.True(t, found, "control_exchange goslo_ex not declared")
}
