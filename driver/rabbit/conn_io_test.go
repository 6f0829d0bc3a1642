package rabbit_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/internal/rabbittest"
)

// testConnectionOptions: the login method, heartbeat and client
// properties the broker sees (§2.2).
func testConnectionOptions(t *testing.T, n *rabbittest.Node) {
	for _, tc := range []struct {
		query     string
		mechanism string
		timeout   string
	}{
		{"", "AMQPLAIN", "60"},
		{"?rabbit_login_method=PLAIN&heartbeat_timeout_threshold=4", "PLAIN", "4"},
	} {
		vhost := fmt.Sprintf("goslo-conn-%d", vhostN.Add(1))
		n.AddVhost(vhost)
		tr := openURL(t, n.URL(vhost)+tc.query, nil)
		require.NoError(t, tr.Cast(ctxT(t, 10*time.Second), compat.Target{Topic: "x"}, reqMsg("m")))
		var row rabbittest.Row
		for _, r := range n.ListConnections("vhost", "auth_mechanism", "timeout", "client_properties") {
			if r["vhost"] == vhost {
				row = r
			}
		}
		require.NotNil(t, row, "no connection on %s", vhost)
		require.Equal(t, tc.mechanism, row["auth_mechanism"])
		require.Equal(t, tc.timeout, fmt.Sprint(row["timeout"]))
		props := fmt.Sprint(row["client_properties"])
		require.Contains(t, props, "connection_name")
		require.Contains(t, props, "goslo")
		require.NoError(t, tr.Close())
	}
}

// testDurableMismatch: "openstack" exists non-durable; a server and a
// client configured with amqp_durable_queues fall back to non-durable
// declarations and work (§10.2).
func testDurableMismatch(t *testing.T, n *rabbittest.Node) {
	vhost := "goslo-durable"
	n.AddVhost(vhost)
	c, err := amqp.Dial(n.AMQPURL(vhost))
	require.NoError(t, err)
	ch, err := c.Channel()
	require.NoError(t, err)
	require.NoError(t, ch.ExchangeDeclare("openstack", "topic", false, false, false, false, nil))
	require.NoError(t, c.Close())

	durable := func(c *compat.Config) { c.Rabbit.AMQPDurableQueues = true }
	srvT := open(t, n, vhost, durable)
	cliT := open(t, n, vhost, durable)
	e := newEcho("s")
	listen(t, srvT, compat.Target{Topic: "dm", Server: "s"}, e.handle)
	_, err = cliT.Call(ctxT(t, 10*time.Second), compat.Target{Topic: "dm"}, reqMsg("echo"))
	require.NoError(t, err)
	for _, q := range n.ListQueues(vhost, "name", "durable") {
		if q["name"] == "dm" {
			require.Equal(t, false, q["durable"])
		}
	}
}

// TestTLS: ssl=true with the CA, client certificate and key (§3).
func TestTLS(t *testing.T) {
	n := rabbittest.Start(t, rabbittest.WithTLS())
	n.AddVhost("goslo-tls")
	url := fmt.Sprintf("rabbit://guest:guest@127.0.0.1:%d/goslo-tls", n.TLSPort)
	tlsOpts := func(c *compat.Config) {
		c.Rabbit.SSL = true
		c.Rabbit.SSLCAFile = n.TLS.CACert
		c.Rabbit.SSLCertFile = n.TLS.ClientCert
		c.Rabbit.SSLKeyFile = n.TLS.ClientKey
	}
	srvT := openURL(t, url, tlsOpts)
	cliT := openURL(t, url, tlsOpts)
	e := newEcho("s")
	listen(t, srvT, compat.Target{Topic: "tls", Server: "s"}, e.handle)
	res, err := cliT.Call(ctxT(t, 10*time.Second), compat.Target{Topic: "tls"}, reqMsg("echo", "a", int64(1)))
	require.NoError(t, err)
	require.Equal(t, "s", mustGet(res, "server"))
	ssl := 0
	for _, r := range n.ListConnections("vhost", "ssl") {
		if r["vhost"] == "goslo-tls" && r["ssl"] == true {
			ssl++
		}
	}
	require.GreaterOrEqual(t, ssl, 3) // server, reply queue, sender

	// A CA that does not match: refused, and the error says so.
	bad := openURL(t, url, func(c *compat.Config) {
		tlsOpts(c)
		c.Rabbit.SSLCAFile = n.TLS.ClientCert // not a CA of the server
	})
	err = bad.Cast(ctxT(t, 2*time.Second), compat.Target{Topic: "tls"}, reqMsg("m"))
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "certificate") || strings.Contains(err.Error(), "deadline"), err.Error())
	_ = context.Background
}

// testConsumerCancel: the broker cancels a server's consumer (its queue
// is deleted): the server re-declares everything and calls resume
// (§11.3).
func testConsumerCancel(t *testing.T, n *rabbittest.Node) {
	vhost := "goslo-cancel"
	n.AddVhost(vhost)
	srvT := open(t, n, vhost, nil)
	cliT := open(t, n, vhost, nil)
	e := newEcho("s")
	listen(t, srvT, compat.Target{Topic: "cc", Server: "s"}, e.handle)
	_, err := cliT.Call(ctxT(t, 10*time.Second), compat.Target{Topic: "cc", Server: "s"}, reqMsg("echo"))
	require.NoError(t, err)
	n.Ctl("delete_queue", "-p", vhost, "cc.s")
	require.Eventually(t, func() bool {
		_, err := cliT.Call(ctxT(t, 2*time.Second), compat.Target{Topic: "cc", Server: "s"}, reqMsg("echo"))
		return err == nil
	}, 30*time.Second, 100*time.Millisecond)
	require.Equal(t, "[cc.s:2 cc:1 cc_fanout_<hex>:3 reply_<hex>:1]", fmt.Sprint(consumerTags(t, n, vhost)))
}

// testStreamFanout: rabbit_stream_fanout (+ transient quorum, prefetch):
// both servers read the shared stream; after every connection is closed
// by the broker they resume, each message dispatched once per server.
func testStreamFanout(t *testing.T, n *rabbittest.Node) {
	vhost := "goslo-stream"
	n.AddVhost(vhost)
	opts := func(c *compat.Config) {
		c.Rabbit.RabbitStreamFanout = true
		c.Rabbit.RabbitTransientQuorumQueue = true
		c.Rabbit.RabbitQoSPrefetchCount = 10
	}
	srvT := open(t, n, vhost, opts)
	cliT := open(t, n, vhost, opts)
	e1, e2 := newEcho("s1"), newEcho("s2")
	listen(t, srvT, compat.Target{Topic: "sf", Server: "s1"}, e1.handle)
	listen(t, srvT, compat.Target{Topic: "sf", Server: "s2"}, e2.handle)
	fan := compat.Target{Topic: "sf", Fanout: true}
	require.NoError(t, cliT.Cast(ctxT(t, 10*time.Second), fan, reqMsg("echo", "n", int64(1))))
	require.Equal(t, driver.KindFanout, waitReq(t, e1.seen).Kind)
	require.Equal(t, driver.KindFanout, waitReq(t, e2.seen).Kind)
	for _, q := range n.ListQueues(vhost, "name", "type") {
		if q["name"] == "sf_fanout" {
			require.Equal(t, "stream", q["type"])
		}
	}
	n.Ctl("close_all_connections", "-p", vhost, "test")
	var err error
	ok := false
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end) && !ok; {
		_, err = cliT.Call(ctxT(t, 2*time.Second), compat.Target{Topic: "sf", Server: "s1"}, reqMsg("echo"))
		ok = err == nil
	}
	require.True(t, ok, "calls did not resume: %v", err)
	drain(e1.seen)
	drain(e2.seen)
	require.NoError(t, cliT.Cast(ctxT(t, 10*time.Second), fan, reqMsg("echo", "n", int64(2))))
	for _, e := range []*echoServer{e1, e2} {
		r := waitReq(t, e.seen)
		require.Equal(t, int64(2), mustGet(mustGet(r.Body, "args"), "n"))
		select {
		case r := <-e.seen:
			t.Fatalf("%s: a second dispatch: %v", e.name, mustGet(r.Body, "args"))
		case <-time.After(500 * time.Millisecond):
		}
	}
}
