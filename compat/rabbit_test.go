package compat

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseRabbitURL(t *testing.T) {
	g := func(h string, p int) AMQPHost {
		return AMQPHost{Host: h, Port: p, Username: "guest", Password: "guest"}
	}
	for _, c := range []struct {
		url   string
		hosts []AMQPHost
		vhost string
	}{
		{"rabbit://", []AMQPHost{g("localhost", 5672)}, "/"},
		{"rabbit:///", []AMQPHost{g("localhost", 5672)}, "/"},
		{"kombu://", []AMQPHost{g("localhost", 5672)}, "/"},
		{"rabbit://guest:guest@127.0.0.1:5701/goslo-default", []AMQPHost{g("127.0.0.1", 5701)}, "goslo-default"},
		{"rabbit://h/nova", []AMQPHost{g("h", 5672)}, "nova"},
		{"rabbit://h/%2Fnova", []AMQPHost{g("h", 5672)}, "/nova"},
		{"rabbit://h", []AMQPHost{g("h", 5672)}, "/"},
		{"rabbit://u%40x:p%3Aw%2F@h1:5673,u2:p2@[::1]:5674,h3/",
			[]AMQPHost{{"h1", 5673, "u@x", "p:w/"}, {"::1", 5674, "u2", "p2"}, g("h3", 5672)}, "/"},
		{"rabbit://bob@h:", []AMQPHost{{"h", 5672, "bob", "guest"}}, "/"},
		{"rabbit://[fe80::1]/", []AMQPHost{g("fe80::1", 5672)}, "/"},
	} {
		r, err := ParseRabbitURL(c.url)
		require.NoError(t, err, c.url)
		require.Equal(t, c.hosts, r.Hosts, c.url)
		require.Equal(t, c.vhost, r.VirtualHost, c.url)
	}
	r, _ := ParseRabbitURL("rabbit://u:p@[::1]:5674,h/")
	require.Equal(t, "[::1]:5674", r.Hosts[0].Addr())
	require.Equal(t, "h:5672", r.Hosts[1].Addr())

	for _, bad := range []string{"zmq://h/", "kombu+memory://", "amqp://h/", "rabbit://h:x/", "rabbit://h:99999/", "rabbit://h:-1/"} {
		_, err := ParseRabbitURL(bad)
		require.Error(t, err, bad)
		require.True(t, errors.Is(err, ErrInvalidTransportURL), bad)
	}
	// A URL built in Go skips the parser's check.
	_, err := (&TransportURL{Transport: "rabbit", Hosts: []TransportHost{{Hostname: "h", HasHostname: true, Port: 70000, HasPort: true}}}).Rabbit()
	require.ErrorIs(t, err, ErrInvalidTransportURL)
	require.Contains(t, err.Error(), "port 70000 is not a TCP port")
}

func TestRabbitOptionsDefaults(t *testing.T) {
	c := DefaultConfig("myhost")
	r := c.Rabbit
	require.False(t, r.AMQPDurableQueues)
	require.False(t, r.AMQPAutoDelete)
	require.Equal(t, 1800, r.RabbitTransientQueuesTTL)
	require.Equal(t, 60, r.HeartbeatTimeoutThreshold)
	require.Equal(t, 3, r.HeartbeatRate)
	require.Equal(t, 1.0, r.KombuReconnectDelay)
	require.Equal(t, 0.0, r.KombuReconnectSplay)
	require.Equal(t, "AMQPLAIN", r.RabbitLoginMethod)
	require.Equal(t, "round-robin", r.KombuFailoverStrategy)
	require.True(t, r.DirectMandatoryFlag)
	require.Equal(t, 30, r.RPCConnPoolSize)
	require.Equal(t, "myhost", r.Hostname)
	require.Equal(t, ProgramName(), r.Processname)
	require.Equal(t, []string{}, c.Notifications.Driver)
	require.Equal(t, []string{"notifications"}, c.Notifications.Topics)
	require.Equal(t, -1, c.Notifications.Retry)
	require.Equal(t, "openstack", c.Default.ControlExchange)
	require.NoError(t, c.ValidateRabbit())
	v, ok := c.Value(GroupRabbit, "kombu_reconnect_delay")
	require.True(t, ok)
	require.Equal(t, 1.0, v)
	require.Len(t, RabbitOptionNames(), 41)
	require.Contains(t, RabbitOptionNames(), "oslo_messaging_rabbit.rabbit_stream_fanout")
	require.NotContains(t, Options(), "oslo_messaging_rabbit.ssl")
}

func TestRabbitOptionsINI(t *testing.T) {
	ini := `[DEFAULT]
control_exchange = nova
rpc_conn_pool_size = 7
[oslo_messaging_rabbit]
rabbit_quorum_queue = true
rabbit_quorum_delivery_limit = 5
kombu_reconnect_delay = 2_0e-1
kombu_compression = gzip
[oslo_messaging_notifications]
driver = messagingv2
driver = log
topics = notifications, audit
`
	c, err := ParseConfig("h", ConfigFile{Name: "a.conf", Data: []byte(ini)})
	require.NoError(t, err)
	require.Equal(t, "nova", c.Default.ControlExchange)
	require.True(t, c.Rabbit.RabbitQuorumQueue)
	require.Equal(t, 5, c.Rabbit.RabbitQuorumDeliveryLimit)
	require.Equal(t, 20.0e-1, c.Rabbit.KombuReconnectDelay)
	require.Equal(t, "gzip", c.Rabbit.KombuCompression)
	require.Equal(t, 7, c.Rabbit.RPCConnPoolSize, "rpc_conn_pool_size is also read from [DEFAULT]")
	require.Equal(t, []string{"messagingv2", "log"}, c.Notifications.Driver)
	require.Equal(t, []string{"notifications", "audit"}, c.Notifications.Topics)
	require.NoError(t, c.ValidateRabbit())

	_, err = ParseConfig("h", ConfigFile{Name: "b.conf", Data: []byte("[oslo_messaging_rabbit]\nkombu_reconnect_delay = 9\n")})
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "ConfigFileValueError", ce.Class)
	require.Contains(t, ce.Message, "Should be less than or equal to 4.5")

	_, err = ParseConfig("h", ConfigFile{Name: "b.conf", Data: []byte("[oslo_messaging_rabbit]\nkombu_reconnect_delay = 0x1p1\n")})
	require.ErrorAs(t, err, &ce)
	require.Contains(t, ce.Message, "could not convert string to float: '0x1p1'")

	_, err = ParseConfig("h", ConfigFile{Name: "b.conf", Data: []byte("[oslo_messaging_rabbit]\nrabbit_typo = 1\n")})
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "", ce.Class)
}

func TestApplyRabbitURLQuery(t *testing.T) {
	c := DefaultConfig("h")
	u, err := ParseTransportURL("rabbit://h/?amqp_durable_queues=true&rabbit_qos_prefetch_count=10&kombu_reconnect_delay=0.5")
	require.NoError(t, err)
	require.NoError(t, c.ApplyRabbitURLQuery(u))
	require.True(t, c.Rabbit.AMQPDurableQueues)
	require.Equal(t, 10, c.Rabbit.RabbitQoSPrefetchCount)
	require.Equal(t, 0.5, c.Rabbit.KombuReconnectDelay)

	for raw, class := range map[string]string{
		"rabbit://h/?no_such_option=1":                                        "NoSuchOptError",
		"rabbit://h/?rabbit_ha_queues=maybe":                                  "ValueError",
		"rabbit://h/?rabbit_qos_prefetch_count=1&rabbit_qos_prefetch_count=2": "ValueError", // comma-joined "1,2"
		"rabbit://h/?rabbit_login_method=NTLM":                                "ValueError",
	} {
		before := *c
		u, err := ParseTransportURL(raw)
		require.NoError(t, err)
		err = c.ApplyRabbitURLQuery(u)
		var ce *ConfigError
		require.ErrorAs(t, err, &ce, raw)
		require.Equal(t, class, ce.Class, raw)
		require.Equal(t, before, *c, "unchanged on error")
	}
	// A zmq option is not a rabbit one.
	u, _ = ParseTransportURL("rabbit://h/?use_pub_sub=true")
	require.Error(t, c.ApplyRabbitURLQuery(u))
}

func TestValidateRabbit(t *testing.T) {
	for _, c := range []struct {
		set   func(r *RabbitOptions)
		class string
		want  string
	}{
		{func(r *RabbitOptions) { r.RabbitHAQueues, r.RabbitQuorumQueue = true, true }, "RuntimeError", "rabbit_ha_queues"},
		{func(r *RabbitOptions) { r.RabbitStreamFanout, r.RabbitQoSPrefetchCount = true, 10 }, "RuntimeError", "rabbit_transient_quorum_queue"},
		{func(r *RabbitOptions) { r.RabbitStreamFanout, r.RabbitTransientQuorumQueue = true, true }, "RuntimeError", "rabbit_qos_prefetch_count"},
		{func(r *RabbitOptions) { r.KombuCompression = "bz2" }, "", "bzip2"},
		{func(r *RabbitOptions) { r.KombuCompression = "lzma" }, "", "gzip or bz2"},
		{func(r *RabbitOptions) { r.RabbitLoginMethod = "NTLM" }, "ValueError", "Valid values"},
		{func(r *RabbitOptions) { r.RabbitTransientQueuesTTL = -1 }, "ValueError", "greater than or equal to 0"},
	} {
		cfg := DefaultConfig("h")
		c.set(&cfg.Rabbit)
		err := cfg.ValidateRabbit()
		var ce *ConfigError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, c.class, ce.Class, err.Error())
		require.True(t, strings.Contains(err.Error(), c.want), err.Error())
	}
	cfg := DefaultConfig("h")
	cfg.Rabbit.RabbitStreamFanout, cfg.Rabbit.RabbitTransientQuorumQueue, cfg.Rabbit.RabbitQoSPrefetchCount = true, true, 10
	require.NoError(t, cfg.ValidateRabbit())
}

func TestPyFloat(t *testing.T) {
	for s, want := range map[string]float64{"1": 1, " 2.5 ": 2.5, "1_0.5": 10.5, ".5": .5, "5.": 5, "1e3": 1000, "-1E-2": -0.01, "+inf": 0} {
		f, ok := pyFloat(s)
		require.True(t, ok, s)
		if s != "+inf" {
			require.Equal(t, want, f, s)
		}
	}
	for _, s := range []string{"", "x", "1__0", "_1", "1_", "0x10", "1e", "e3", "--1", "1.2.3", "."} {
		_, ok := pyFloat(s)
		require.False(t, ok, s)
	}
	require.Equal(t, "1.0", pyFloatStr(1))
	require.Equal(t, "4.5", pyFloatStr(4.5))
	require.Equal(t, "1e-05", pyFloatStr(1e-5))
	require.Equal(t, "1e+16", pyFloatStr(1e16))
}
