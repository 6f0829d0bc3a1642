package compat

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeys(t *testing.T) {
	tg := Target{Topic: "compute", Server: "node-1@lvm"}
	require.Equal(t, "compute/node-1", TargetToKey(tg))
	require.Equal(t, "ROUTER/compute/node-1", TargetKey(Router, tg))
	require.Equal(t, "DEALER/compute", TopicKey(Dealer, tg))
	require.Equal(t, []string{"ROUTER/compute/node-1", "ROUTER/compute"}, RegistrationKeys(Router, tg))
	require.Equal(t, []string{"DEALER/notifications.info"}, RegistrationKeys(Dealer, Target{Topic: NotificationTopic("notifications", "INFO")}))
	fan := tg
	fan.Fanout = true
	require.Equal(t, "compute", TargetToKey(fan))
	require.Equal(t, []byte("compute"), SubscribeFilter(tg))
	require.Equal(t, "notifications.warn", NotificationTopic("notifications", "WARN"))
	require.Equal(t, "10.0.0.5:49200", HostPort("10.0.0.5", 49200))
	require.Equal(t, "node-1/compute/node-1/6f1d", ServerIdentity("node-1", tg, "6f1d"))
	require.Equal(t, "h/uuid", ClientIdentity("h", "uuid"))
	require.Equal(t, "h/zmq-proxy/u", ProxyIdentity("h", "u"))
	require.Equal(t, "h/demo/u", SubIdentity("h", "demo", "u"))
	rec := PublisherRecord("10.0.0.9:50003", "10.0.0.9:50001")
	require.Equal(t, "10.0.0.9:50003,10.0.0.9:50001", rec)
	pub, fe, ok := ParsePublisherRecord(rec)
	require.True(t, ok)
	require.Equal(t, "10.0.0.9:50003", pub)
	require.Equal(t, "10.0.0.9:50001", fe)
}

func TestTargetValidation(t *testing.T) {
	require.ErrorIs(t, Target{}.ValidateSend(false), ErrInvalidTarget)
	require.ErrorIs(t, Target{Topic: "t", Fanout: true}.ValidateSend(true), ErrInvalidTarget)
	require.NoError(t, Target{Topic: "t", Fanout: true}.ValidateSend(false))
	require.ErrorIs(t, Target{Topic: "t"}.ValidateListen(), ErrInvalidTarget)
	require.NoError(t, Target{Topic: "t", Server: "s"}.ValidateListen())
	require.Equal(t, "<Target topic=t, server=s, fanout=True>", Target{Topic: "t", Server: "s", Fanout: true}.String())
}

func TestVersions(t *testing.T) {
	for _, c := range []struct {
		imp, req string
		want     bool
	}{{"1.3", "1.0", true}, {"1.3", "1.3.0", true}, {"1.3", "1.4", false}, {"1.3", "2.0", false}, {"1.3", "1.3.1", false}, {"1.0", "2", false}} {
		got, err := VersionIsCompatible(c.imp, c.req)
		require.NoError(t, err)
		require.Equal(t, c.want, got, "%s %s", c.imp, c.req)
	}
	_, err := VersionIsCompatible("1.0", "1")
	var ve *VersionError
	require.True(t, errors.As(err, &ve))
	require.Equal(t, "IndexError", ve.PythonClass())
	_, err = VersionIsCompatible("1.0", "x.0")
	require.ErrorIs(t, err, ErrInvalidVersion)
	ok, err := CapAllows("", "9.9")
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = CapAllows("1.0", "")
	require.NoError(t, err)
	require.False(t, ok)
}

func TestParseTransportURL(t *testing.T) {
	u, err := ParseTransportURL("zmq+sentinel://:pw@s1:26379,s2:26379/group?use_pub_sub=true")
	require.NoError(t, err)
	require.Equal(t, "zmq", u.Driver())
	require.Equal(t, "sentinel", u.Backend())
	require.Equal(t, "group", u.VirtualHost)
	require.Len(t, u.Hosts, 2)
	require.Equal(t, "pw", u.Hosts[0].Password)
	require.True(t, u.Hosts[0].HasUsername)
	require.Equal(t, 26379, u.Hosts[1].Port)
	v, ok := u.QueryValue("use_pub_sub")
	require.True(t, ok)
	require.Equal(t, "true", v)
	require.Equal(t, "zmq+sentinel://:pw@s1:26379,s2:26379/group?use_pub_sub=true", u.String())

	u, err = ParseTransportURL("zmq+redis://[::1]:6379")
	require.NoError(t, err)
	require.Equal(t, "::1", u.Hosts[0].Hostname)
	require.Equal(t, "zmq+redis://[::1]:6379/", u.String())

	for raw, class := range map[string]string{"noscheme": "InvalidTransportURL", "zmq://h:x": "ValueError", "zmq://[::1": "ValueError"} {
		_, err := ParseTransportURL(raw)
		require.ErrorIs(t, err, ErrInvalidTransportURL, raw)
		var ue *URLError
		require.True(t, errors.As(err, &ue))
		require.Equal(t, class, ue.PythonClass(), raw)
	}
}

func TestConfigDefaultsAndErrors(t *testing.T) {
	c := DefaultConfig("myhost")
	require.Equal(t, "myhost", c.ZMQ.RPCZMQHost)
	require.Equal(t, 300, c.ZMQ.ZMQTargetExpire)
	require.Equal(t, 180, c.ZMQ.ZMQTargetUpdate)
	require.Equal(t, "redis", c.ZMQ.RPCZMQMatchmaker)
	require.Equal(t, 60, c.Default.RPCResponseTimeout)
	require.Nil(t, c.ZMQ.RPCZMQTopicBacklog)
	require.True(t, c.ZMQ.ZMQImmediate)
	require.Equal(t, 20000, c.MatchmakerRedis.CheckTimeout)
	require.NoError(t, c.Validate())

	c, err := ParseConfig("h", ConfigFile{"a", []byte("[DEFAULT]\nrpc_cast_timeout = 4\n[oslo_messaging_zmq]\nuse_pub_sub = On\n")})
	require.NoError(t, err)
	require.Equal(t, 4, c.ZMQ.ZMQLinger)
	require.True(t, c.ZMQ.UsePubSub)

	for _, bad := range []string{
		"[oslo_messaging_zmq]\nuse_pub_sub = maybe\n",
		"[oslo_messaging_zmq]\nrpc_zmq_min_port = -1\n",
		"[oslo_messaging_zmq]\nzmq_target_expire =\n",
		"[oslo_messaging_zmq]\nbogus = 1\n",
		"[matchmaker_redis]\nport = 70000\n",
		"key = value\n",
		"[x\n",
		"[]\n",
		"[s]\n=1\n",
		"  leading continuation\n",
		"[oslo_messaging_zmq]\nrpc_zmq_ipc_dir = $nope\n",
		"[oslo_messaging_zmq]\nrpc_zmq_host = $rpc_zmq_ipc_dir\nrpc_zmq_ipc_dir = $rpc_zmq_host\n",
	} {
		_, err := ParseConfig("h", ConfigFile{"bad.conf", []byte(bad)})
		require.ErrorIs(t, err, ErrConfig, bad)
		require.Contains(t, err.Error(), "bad.conf", bad)
	}

	c = DefaultConfig("h")
	c.ZMQ.RPCZMQMinPort = 70000
	require.ErrorIs(t, c.Validate(), ErrConfig)
	u, _ := ParseTransportURL("zmq://h:1?zmq_target_update=2&rpc_zmq_serialization=msgpack")
	c = DefaultConfig("h")
	require.NoError(t, c.ApplyURLQuery(u))
	require.Equal(t, 2, c.ZMQ.ZMQTargetUpdate)
	require.Equal(t, "msgpack", c.ZMQ.RPCZMQSerialization)
	u, _ = ParseTransportURL("zmq://h:1?nope=2")
	require.ErrorIs(t, c.ApplyURLQuery(u), ErrConfig)
}
