package compat

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

func load(t *testing.T, files ...string) (*Config, error) {
	t.Helper()
	var cf []ConfigFile
	for i, f := range files {
		cf = append(cf, ConfigFile{Name: "f" + string(rune('0'+i)) + ".conf", Data: []byte(f)})
	}
	return ParseConfig("myhost", cf...)
}

func mustLoad(t *testing.T, files ...string) *Config {
	t.Helper()
	c, err := load(t, files...)
	require.NoError(t, err)
	return c
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig("myhost")
	want := map[string]any{
		"DEFAULT.transport_url": nil, "DEFAULT.rpc_backend": "rabbit", "DEFAULT.control_exchange": "openstack",
		"DEFAULT.rpc_response_timeout": 60, "DEFAULT.executor_thread_pool_size": 64, "DEFAULT.rpc_conn_pool_size": 30,
		"DEFAULT.conn_pool_min_size": 2, "DEFAULT.conn_pool_ttl": 1200,
		"oslo_messaging_zmq.rpc_zmq_bind_address": "*", "oslo_messaging_zmq.rpc_zmq_matchmaker": "redis",
		"oslo_messaging_zmq.rpc_zmq_contexts": 1, "oslo_messaging_zmq.rpc_zmq_topic_backlog": nil,
		"oslo_messaging_zmq.rpc_zmq_ipc_dir": "/var/run/openstack", "oslo_messaging_zmq.rpc_zmq_host": "myhost",
		"oslo_messaging_zmq.zmq_linger": -1, "oslo_messaging_zmq.rpc_poll_timeout": 1,
		"oslo_messaging_zmq.zmq_target_expire": 300, "oslo_messaging_zmq.zmq_target_update": 180,
		"oslo_messaging_zmq.use_pub_sub": false, "oslo_messaging_zmq.use_router_proxy": false,
		"oslo_messaging_zmq.use_dynamic_connections": false, "oslo_messaging_zmq.zmq_failover_connections": 2,
		"oslo_messaging_zmq.rpc_zmq_min_port": 49153, "oslo_messaging_zmq.rpc_zmq_max_port": 65536,
		"oslo_messaging_zmq.rpc_zmq_bind_port_retries": 100, "oslo_messaging_zmq.rpc_zmq_serialization": "json",
		"oslo_messaging_zmq.zmq_immediate": true, "oslo_messaging_zmq.zmq_tcp_keepalive": -1,
		"oslo_messaging_zmq.zmq_tcp_keepalive_idle": -1, "oslo_messaging_zmq.zmq_tcp_keepalive_cnt": -1,
		"oslo_messaging_zmq.zmq_tcp_keepalive_intvl": -1, "oslo_messaging_zmq.rpc_thread_pool_size": 100,
		"oslo_messaging_zmq.rpc_message_ttl": 300, "oslo_messaging_zmq.rpc_use_acks": false,
		"oslo_messaging_zmq.rpc_ack_timeout_base": 15, "oslo_messaging_zmq.rpc_ack_timeout_multiplier": 2,
		"oslo_messaging_zmq.rpc_retry_attempts": 3, "oslo_messaging_zmq.subscribe_on": []string{},
		"matchmaker_redis.host": "127.0.0.1", "matchmaker_redis.port": 6379, "matchmaker_redis.password": "",
		"matchmaker_redis.sentinel_hosts": []string{}, "matchmaker_redis.sentinel_group_name": "oslo-messaging-zeromq",
		"matchmaker_redis.wait_timeout": 2000, "matchmaker_redis.check_timeout": 20000, "matchmaker_redis.socket_timeout": 10000,
		"zmq_proxy_opts.host": "myhost", "zmq_proxy_opts.frontend_port": 0, "zmq_proxy_opts.backend_port": 0,
		"zmq_proxy_opts.publisher_port": 0, "zmq_proxy_opts.local_publisher": false, "zmq_proxy_opts.ack_pub_sub": false,
		"zmq_proxy_opts.url": "zmq://127.0.0.1:6379/",
	}
	require.Len(t, Options(), len(want))
	for _, name := range Options() {
		g, n, _ := strings.Cut(name, ".")
		v, ok := c.Value(g, n)
		require.True(t, ok, name)
		require.Equal(t, want[name], v, name)
	}
	_, ok := c.Value(GroupZMQ, "nope")
	require.False(t, ok)
	require.NoError(t, c.Validate())
	empty := mustLoad(t)
	require.Equal(t, c, empty)
}

func TestParseConfigRules(t *testing.T) {
	// Deprecated [DEFAULT] names; the current name wins within a file,
	// whatever the order; a later file wins over an earlier one, even
	// through a deprecated name.
	c := mustLoad(t, "[DEFAULT]\nrpc_zmq_host = old\nrpc_cast_timeout = 4\nzmq_linger = 9\nrpc_thread_pool_size = 7\n[oslo_messaging_zmq]\nuse_pub_sub = On\n")
	require.Equal(t, "old", c.ZMQ.RPCZMQHost)
	require.Equal(t, 4, c.ZMQ.ZMQLinger, "zmq_linger is read under [DEFAULT] only as rpc_cast_timeout")
	require.Equal(t, 7, c.Default.ExecutorThreadPoolSize)
	require.Equal(t, 100, c.ZMQ.RPCThreadPoolSize)
	require.True(t, c.ZMQ.UsePubSub)
	c = mustLoad(t, "[oslo_messaging_zmq]\nrpc_zmq_host = new\n[DEFAULT]\nrpc_zmq_host = old\n")
	require.Equal(t, "new", c.ZMQ.RPCZMQHost)
	c = mustLoad(t, "[oslo_messaging_zmq]\nrpc_zmq_host = new\n", "[DEFAULT]\nrpc_zmq_host = later\n")
	require.Equal(t, "later", c.ZMQ.RPCZMQHost)

	// Section names other than DEFAULT are compared in lower case and
	// merged; the last assignment wins. [default] is another section.
	c = mustLoad(t, "[oslo_messaging_zmq]\nrpc_zmq_host = a\n[OSLO_MESSAGING_ZMQ]\nrpc_zmq_host = b\n[default]\ncontrol_exchange = x\n")
	require.Equal(t, "b", c.ZMQ.RPCZMQHost)
	require.Equal(t, "openstack", c.Default.ControlExchange)

	// Syntax: comments, quotes, ':' assignments, continuation lines,
	// CR and CRLF line ends, Unicode whitespace.
	c = mustLoad(t, "# c\n; c\n[DEFAULT]\ncontrol_exchange: 'q'\ntransport_url = zmq://h:1/?a=b\r\n[matchmaker_redis]\r"+
		"sentinel_hosts = a:1,\n  b:2 ,\n\npassword = \u00a0\"p w\"\u3000\n")
	require.Equal(t, "q", c.Default.ControlExchange)
	require.Equal(t, "zmq://h:1/?a=b", c.Default.TransportURL)
	require.Equal(t, []string{"a:1", "b:2"}, c.MatchmakerRedis.SentinelHosts)
	require.Equal(t, "p w", c.MatchmakerRedis.Password)
	v, _ := c.Value(GroupDefault, "transport_url")
	require.Equal(t, "zmq://h:1/?a=b", v)
	c = mustLoad(t, "[DEFAULT]\ntransport_url =\n")
	v, _ = c.Value(GroupDefault, "transport_url")
	require.Equal(t, "", v, "an empty string is not None")

	// Types.
	c = mustLoad(t, "[oslo_messaging_zmq]\nuse_router_proxy = YES\nrpc_use_acks = 0\nzmq_target_expire = +1_0\nrpc_zmq_topic_backlog = \u0665\nsubscribe_on = , a ,,\n")
	require.True(t, c.ZMQ.UseRouterProxy)
	require.False(t, c.ZMQ.RPCUseAcks)
	require.Equal(t, 10, c.ZMQ.ZMQTargetExpire)
	require.Equal(t, 5, *c.ZMQ.RPCZMQTopicBacklog)
	require.Equal(t, []string{"", "a"}, c.ZMQ.SubscribeOn)
	c = mustLoad(t, "[oslo_messaging_zmq]\nrpc_zmq_topic_backlog = \n")
	require.Nil(t, c.ZMQ.RPCZMQTopicBacklog)

	// Substitution.
	c = mustLoad(t, "[DEFAULT]\ncontrol_exchange = ${oslo_messaging_zmq.rpc_zmq_host}:$rpc_response_timeout:$rpc_cast_timeout\n"+
		"[oslo_messaging_zmq]\nrpc_zmq_host = h\nzmq_linger = 3\nrpc_zmq_ipc_dir = \\$x $$y $ ${rpc_zmq_host}z $control_exchange $subscribe_on $use_pub_sub\n")
	require.Equal(t, "h:60:-1", c.Default.ControlExchange, "$rpc_cast_timeout reads zmq_linger in [DEFAULT] only")
	require.Equal(t, "$x $y $ hz h:60:-1 [] False", c.ZMQ.RPCZMQIPCDir)
}

func TestParseConfigErrors(t *testing.T) {
	loc := func(f string) string {
		return "LocationInfo(location=<Locations.user: (4, True)>, detail='" + f + "')"
	}
	for _, c := range []struct {
		files          []string
		class, message string
	}{
		{[]string{"[oslo_messaging_zmq]\nuse_pub_sub = maybe\n"}, "ConfigFileValueError",
			"Value for option use_pub_sub from " + loc("f0.conf") + " is not valid: Unexpected boolean value 'maybe'"},
		{[]string{"[OSLO_MESSAGING_ZMQ]\nuse_pub_sub = maybe\n"}, "ConfigFileValueError",
			"Value for option use_pub_sub from " + loc("") + " is not valid: Unexpected boolean value 'maybe'"},
		{[]string{"[DEFAULT]\nrpc_zmq_serialization = yaml\n"}, "ConfigFileValueError",
			"Value for option rpc_zmq_serialization from " + loc("f0.conf") + " is not valid: Valid values are [json, msgpack], but found 'yaml'"},
		{[]string{"[oslo_messaging_zmq]\nrpc_zmq_min_port = -1\n"}, "ConfigFileValueError",
			"Value for option rpc_zmq_min_port from " + loc("f0.conf") + " is not valid: Should be greater than or equal to 0"},
		{[]string{"[matchmaker_redis]\nport = 70000\n"}, "ConfigFileValueError",
			"Value for option port from " + loc("f0.conf") + " is not valid: Should be less than or equal to 65535"},
		{[]string{"[DEFAULT]\nrpc_response_timeout = soon\n"}, "ConfigFileValueError",
			"Value for option rpc_response_timeout from " + loc("f0.conf") + " is not valid: invalid literal for int() with base 10: 'soon'"},
		{[]string{"[oslo_messaging_zmq]\nrpc_zmq_ipc_dir = $zmq_target_expire\nzmq_target_expire = x\n"}, "ConfigFileValueError",
			"Value for option rpc_zmq_ipc_dir from " + loc("f0.conf") + " is not valid: Value for option zmq_target_expire from " +
				loc("f0.conf") + " is not valid: invalid literal for int() with base 10: 'x'"},
		{[]string{"[oslo_messaging_zmq]\nrpc_zmq_ipc_dir = $nope\n"}, "NoSuchOptError", "no such option nope in group [DEFAULT]"},
		{[]string{"[oslo_messaging_zmq]\nrpc_zmq_ipc_dir = $DEFAULT.control_exchange\n"}, "NoSuchGroupError", "no such group [DEFAULT]"},
		{[]string{"[oslo_messaging_zmq]\nrpc_zmq_ipc_dir = $oslo_messaging_zmq\n"}, "TemplateSubstitutionError",
			"template substitution error: substituting group oslo_messaging_zmq not supported"},
		{[]string{"[DEFAULT]\ncontrol_exchange = $nope\n"}, "NoSuchOptError", "no such option control_exchange in group [DEFAULT]"},
		{[]string{"[oslo_messaging_zmq]\nrpc_zmq_host = $rpc_zmq_ipc_dir\nrpc_zmq_ipc_dir = $rpc_zmq_host\n"}, "RecursionError",
			"maximum recursion depth exceeded while calling a Python object"},
		{[]string{"key = value\n"}, "ConfigFileParseError", "Failed to parse f0.conf: at f0.conf:1, Section must be started before assignment: None"},
		{[]string{"key = value\n  more\n\n[s]\n"}, "ConfigFileParseError", "Failed to parse f0.conf: at f0.conf:3, Section must be started before assignment: None"},
		{[]string{"[x\n"}, "ConfigFileParseError", "Failed to parse f0.conf: at f0.conf:1, Invalid section (must end with ]): '[x'"},
		{[]string{"[]\n"}, "ConfigFileParseError", "Failed to parse f0.conf: at f0.conf:1, Empty section name: '[]'"},
		{[]string{"[s]\n=1\n"}, "ConfigFileParseError", "Failed to parse f0.conf: at f0.conf:2, Key cannot be empty: '=1'"},
		{[]string{"[s]\nwords\n"}, "ConfigFileParseError", "Failed to parse f0.conf: at f0.conf:2, No ':' or '=' found in assignment: 'words'"},
		{[]string{"  leading continuation\n"}, "ConfigFileParseError", "Failed to parse f0.conf: at f0.conf:1, Unexpected continuation line: '  leading continuation'"},
		{[]string{"", "[s\n"}, "ConfigFileParseError", "Failed to parse f1.conf: at f1.conf:1, Invalid section (must end with ]): '[s'"},
		{[]string{"[s]\n\xff\n"}, "UnicodeDecodeError", "'utf-8' codec can't decode byte 0xff in position 4: invalid start byte"},
		{[]string{"[s]\nk=\xe2\x9c"}, "UnicodeDecodeError", "'utf-8' codec can't decode bytes in position 0-1: unexpected end of data"},
		{[]string{"[s]\nk=\xe2\x9cA"}, "UnicodeDecodeError", "'utf-8' codec can't decode bytes in position 6-7: invalid continuation byte"},
		{[]string{"[s]\n#" + strings.Repeat("a", 9000) + "\xff"}, "UnicodeDecodeError", "'utf-8' codec can't decode byte 0xff in position 813: invalid start byte"},
		{[]string{"[s]\n#" + strings.Repeat("a", 8186) + "\xe2\x9cA"}, "UnicodeDecodeError", "'utf-8' codec can't decode bytes in position 0-1: invalid continuation byte"},
	} {
		_, err := load(t, c.files...)
		require.ErrorIs(t, err, ErrConfig, c.files)
		var ce *ConfigError
		require.True(t, errors.As(err, &ce))
		require.Equal(t, c.class, ce.PythonClass(), c.files)
		require.Equal(t, c.message, ce.Message, c.files)
		require.True(t, strings.HasPrefix(err.Error(), "compat: config"), err.Error())
	}

	// goslo is stricter: Class "".
	for _, f := range []string{
		"[oslo_messaging_zmq]\nbogus = 1\n",
		"[Matchmaker_Redis]\nrpc_zmq_host = 1\n",
		"[zmq_proxy_opts]\nport = 1\n",
		"[oslo_messaging_zmq]\nrpc_cast_timeout = 1\n",
		"[oslo_messaging_zmq]\nzmq_target_expire =\n",
		"[oslo_messaging_zmq]\nzmq_linger = 99999999999999999999\n",
		"[zmq_proxy_opts]\nfrontend_port = 99999\n", // an IntOpt in oslo; libzmq binds 34463
		"[zmq_proxy_opts]\nbackend_port = -1\n",
		"[zmq_proxy_opts]\npublisher_port = 65536\n",
	} {
		c, err := load(t, f)
		require.ErrorIs(t, err, ErrConfig, f)
		require.Equal(t, "", err.(*ConfigError).PythonClass(), f)
		require.NotNil(t, c, "what oslo.config would load comes with a goslo-only error")
	}
	// ... but after everything oslo.config checks.
	_, err := load(t, "[oslo_messaging_zmq]\nbogus = 1\nuse_pub_sub = x\n")
	require.Equal(t, "ConfigFileValueError", err.(*ConfigError).PythonClass())
	// Unknown sections and unknown [DEFAULT] names are fine.
	mustLoad(t, "[DEFAULT]\ndebug = true\n[database]\nconnection = x\n")
}

func TestLoadConfig(t *testing.T) {
	c, err := LoadConfig("h", strings.NewReader("[oslo_messaging_zmq]\nrpc_zmq_host = r\n"))
	require.NoError(t, err)
	require.Equal(t, "r", c.ZMQ.RPCZMQHost)
	_, err = LoadConfig("h", strings.NewReader("[x\n"))
	require.Contains(t, err.(*ConfigError).Message, "Failed to parse <config>")
	_, err = LoadConfig("h", iotest.ErrReader(errors.New("boom")))
	require.ErrorIs(t, err, ErrConfig)

	files := map[string][]byte{
		"/etc/a.conf": []byte("[oslo_messaging_zmq]\nrpc_zmq_host = a\n"),
		"/etc/b.conf": []byte("[oslo_messaging_zmq]\nrpc_zmq_host = b\n"),
		"/etc/bad":    []byte("[x\n"),
	}
	read := func(p string) ([]byte, error) {
		switch p {
		case "/etc/denied":
			return nil, fs.ErrPermission
		case "/etc/broken":
			return nil, errors.New("i/o error")
		}
		if b, ok := files[p]; ok {
			return b, nil
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: os.ErrNotExist}
	}
	c, err = LoadConfigFiles("h", read, "/etc/a.conf", "/etc/b.conf")
	require.NoError(t, err)
	require.Equal(t, "b", c.ZMQ.RPCZMQHost)
	_, err = LoadConfigFiles("h", read, "/etc/x", "/etc/a.conf", "/etc/denied", "/etc/y")
	require.Equal(t, "ConfigFilesNotFoundError", err.(*ConfigError).Class)
	require.Equal(t, "Failed to find some config files: /etc/x,/etc/y", err.(*ConfigError).Message)
	_, err = LoadConfigFiles("h", read, "/etc/x", "/etc/bad")
	require.Equal(t, "ConfigFileParseError", err.(*ConfigError).Class, "parse errors come first")
	_, err = LoadConfigFiles("h", read, "/etc/denied")
	require.Equal(t, "Failed to open some config files: /etc/denied", err.(*ConfigError).Message)
	_, err = LoadConfigFiles("h", read, "/etc/broken")
	require.ErrorIs(t, err, ErrConfig)
}

func TestApplyURLQuery(t *testing.T) {
	c := mustLoad(t, "[oslo_messaging_zmq]\nuse_pub_sub = true\nrpc_zmq_host = file\n")
	u, err := ParseTransportURL("zmq://h:1/?use_pub_sub=false&rpc_zmq_serialization=msgpack&subscribe_on=a:1&subscribe_on=b:2" +
		"&rpc_zmq_host=$rpc_zmq_ipc_dir&rpc_zmq_topic_backlog=%20&zmq_linger=%2B5")
	require.NoError(t, err)
	require.NoError(t, c.ApplyURLQuery(u))
	require.False(t, c.ZMQ.UsePubSub)
	require.Equal(t, "msgpack", c.ZMQ.RPCZMQSerialization)
	require.Equal(t, []string{"a:1", "b:2"}, c.ZMQ.SubscribeOn)
	require.Equal(t, "$rpc_zmq_ipc_dir", c.ZMQ.RPCZMQHost, "no substitution in query values")
	require.Nil(t, c.ZMQ.RPCZMQTopicBacklog)
	require.Equal(t, 5, c.ZMQ.ZMQLinger)

	for raw, want := range map[string][2]string{
		"zmq://h/?nope=1":                                 {"NoSuchOptError", "no such option nope in group [oslo_messaging_zmq]"},
		"zmq://h/?rpc_cast_timeout=1":                     {"NoSuchOptError", "no such option rpc_cast_timeout in group [oslo_messaging_zmq]"},
		"zmq://h/?use_pub_sub=x&nope=1":                   {"ValueError", "Unexpected boolean value 'x'"},
		"zmq://h/?rpc_zmq_serialization=xml":              {"ValueError", "Valid values are [json, msgpack], but found 'xml'"},
		"zmq://h/?rpc_zmq_max_port=0":                     {"ValueError", "Should be greater than or equal to 1"},
		"zmq://h/?zmq_target_expire=%20":                  {"", ""},
		"zmq://h/?use_router_proxy=1&zmq_target_expire=x": {"ValueError", "invalid literal for int() with base 10: 'x'"},
	} {
		c := DefaultConfig("h")
		before := *c
		u, err := ParseTransportURL(raw)
		require.NoError(t, err)
		err = c.ApplyURLQuery(u)
		require.ErrorIs(t, err, ErrConfig, raw)
		ce := err.(*ConfigError)
		require.Equal(t, want[0], ce.Class, raw)
		if want[0] != "" {
			require.Equal(t, want[1], ce.Message, raw)
		}
		if want[0] != "" { // Python's errors leave the config unchanged; goslo's stricter one applies the rest
			require.Equal(t, before, *c, "%s: c is unchanged on error", raw)
		}
	}
	c = DefaultConfig("h")
	u, _ = ParseTransportURL("zmq://h/?zmq_target_expire=%20&use_pub_sub=1")
	err = c.ApplyURLQuery(u)
	require.Equal(t, "", err.(*ConfigError).Class, "goslo-only: Python reads None")
	require.True(t, c.ZMQ.UsePubSub)
	require.Equal(t, 0, c.ZMQ.ZMQTargetExpire)
	u, _ = ParseTransportURL("zmq://h/?zmq_target_expire=%20&use_pub_sub=x")
	require.Equal(t, "ValueError", c.ApplyURLQuery(u).(*ConfigError).Class, "Python's error first")
}

func TestConfigValidateAndURL(t *testing.T) {
	for _, f := range []func(c *Config){
		func(c *Config) { c.ZMQ.RPCZMQMinPort = 70000 },
		func(c *Config) { c.ZMQ.RPCZMQMinPort = 60000; c.ZMQ.RPCZMQMaxPort = 60000 },
		func(c *Config) { c.ZMQ.RPCZMQSerialization = "xml" },
		func(c *Config) { c.ZMQ.RPCZMQMatchmaker = "zookeeper" },
		func(c *Config) { c.MatchmakerRedis.Port = -1 },
		func(c *Config) { c.ZMQ.RPCZMQHost = "" },
		func(c *Config) { c.ZMQ.ZMQTargetUpdate = 300 },
		func(c *Config) { c.Default.RPCResponseTimeout = 0 },
		func(c *Config) { c.Default.ExecutorThreadPoolSize = 0 },
		func(c *Config) { c.ZMQProxy.FrontendPort = 99999 },
		func(c *Config) { c.ZMQProxy.BackendPort = -1 },
		func(c *Config) { c.ZMQProxy.PublisherPort = 65536 },
	} {
		c := DefaultConfig("h")
		f(c)
		require.ErrorIs(t, c.Validate(), ErrConfig)
	}
	c := DefaultConfig("h")
	c.ZMQ.ZMQTargetExpire = 0
	c.ZMQ.ZMQTargetUpdate = 600
	require.NoError(t, c.Validate(), "no expiry: any update period")

	u, err := c.TransportURL("")
	require.NoError(t, err)
	require.Equal(t, &TransportURL{Transport: "rabbit"}, u)
	c.Default.RPCBackend = "zmq"
	u, _ = c.TransportURL("")
	require.Equal(t, "zmq:///", u.String())
	c.Default.TransportURL = "zmq+redis://h:1"
	u, _ = c.TransportURL("")
	require.Equal(t, "redis", u.Backend())
	u, _ = c.TransportURL("zmq+dummy://")
	require.Equal(t, "dummy", u.Backend())
}
