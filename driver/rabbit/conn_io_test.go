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
