package compat

// Option groups (INI sections) the zmq driver reads.
const (
	GroupDefault         = "DEFAULT"
	GroupZMQ             = "oslo_messaging_zmq"
	GroupMatchmakerRedis = "matchmaker_redis"
	GroupZMQProxy        = "zmq_proxy_opts"
	// GroupRabbit and GroupNotifications are read by the rabbit driver
	// (oslo.messaging 18.3.1); see rabbit_options.go.
	GroupRabbit        = "oslo_messaging_rabbit"
	GroupNotifications = "oslo_messaging_notifications"
)

// DefaultOptions are the [DEFAULT] options the zmq driver and the RPC layer
// register: transport.py's _transport_opts, rpc/client.py's _client_opts,
// and what zmq_options.register_opts adds (server.py's _pool_opts,
// _drivers/base.py's base_opts).
type DefaultOptions struct {
	TransportURL           string // transport_url (secret); "" = unset (None)
	RPCBackend             string // rpc_backend (deprecated for removal), "rabbit"
	ControlExchange        string // control_exchange, "openstack"
	RPCResponseTimeout     int    // rpc_response_timeout, 60 s
	ExecutorThreadPoolSize int    // executor_thread_pool_size, 64 (deprecated name rpc_thread_pool_size): the handlers a server runs at once; Validate refuses < 1
	RPCConnPoolSize        int    // rpc_conn_pool_size, 30
	ConnPoolMinSize        int    // conn_pool_min_size, 2
	ConnPoolTTL            int    // conn_pool_ttl, 1200 s
}

// ZMQOptions are [oslo_messaging_zmq] (zmq_options.py of 8.1.4). Those
// marked † are also read under [DEFAULT] with the same name (their
// deprecated group); zmq_linger is read under [DEFAULT] only as
// rpc_cast_timeout.
type ZMQOptions struct {
	RPCZMQBindAddress       string   // † rpc_zmq_bind_address, "*"
	RPCZMQMatchmaker        string   // † rpc_zmq_matchmaker: redis (default), sentinel, dummy
	RPCZMQContexts          int      // † rpc_zmq_contexts, 1 (never read by the driver)
	RPCZMQTopicBacklog      *int     // † rpc_zmq_topic_backlog, None (never read)
	RPCZMQIPCDir            string   // † rpc_zmq_ipc_dir, "/var/run/openstack" (never read)
	RPCZMQHost              string   // † rpc_zmq_host, the host name
	ZMQLinger               int      // zmq_linger, -1 ([DEFAULT] rpc_cast_timeout): ZMQ_LINGER of every socket, in s; -1 for ever in oslo, bounded at 1 s in goslo (zmq.ForeverLinger) so that Close returns
	RPCPollTimeout          int      // † rpc_poll_timeout, 1 s
	ZMQTargetExpire         int      // † zmq_target_expire, 300 s
	ZMQTargetUpdate         int      // † zmq_target_update, 180 s
	UsePubSub               bool     // † use_pub_sub, false
	UseRouterProxy          bool     // † use_router_proxy, false
	UseDynamicConnections   bool     // use_dynamic_connections, false
	ZMQFailoverConnections  int      // zmq_failover_connections, 2
	RPCZMQMinPort           int      // † rpc_zmq_min_port, 49153, a port 0..65535
	RPCZMQMaxPort           int      // † rpc_zmq_max_port, 65536, 1..65536 (exclusive end)
	RPCZMQBindPortRetries   int      // † rpc_zmq_bind_port_retries, 100
	RPCZMQSerialization     string   // † rpc_zmq_serialization: json (default), msgpack
	ZMQImmediate            bool     // zmq_immediate, true
	ZMQTCPKeepalive         int      // zmq_tcp_keepalive, -1: ZMQ_TCP_KEEPALIVE of every socket, <0 OS default, 0 off, >0 on
	ZMQTCPKeepaliveIdle     int      // zmq_tcp_keepalive_idle, -1: ZMQ_TCP_KEEPALIVE_IDLE when > 0, else the OS default
	ZMQTCPKeepaliveCnt      int      // zmq_tcp_keepalive_cnt, -1: ZMQ_TCP_KEEPALIVE_CNT when > 0, else the OS default
	ZMQTCPKeepaliveIntvl    int      // zmq_tcp_keepalive_intvl, -1: ZMQ_TCP_KEEPALIVE_INTVL when > 0, else the OS default
	RPCThreadPoolSize       int      // rpc_thread_pool_size, 100
	RPCMessageTTL           int      // rpc_message_ttl, 300 s
	RPCUseAcks              bool     // rpc_use_acks, false
	RPCAckTimeoutBase       int      // rpc_ack_timeout_base, 15 s
	RPCAckTimeoutMultiplier int      // rpc_ack_timeout_multiplier, 2
	RPCRetryAttempts        int      // rpc_retry_attempts, 3
	SubscribeOn             []string // subscribe_on, [] (host:port list)
}

// MatchmakerRedisOptions are [matchmaker_redis] (zmq_matchmaker_redis.py).
type MatchmakerRedisOptions struct {
	Host              string   // host, "127.0.0.1" (deprecated for removal: use the URL)
	Port              int      // port, 6379, a port 0..65535 (deprecated for removal)
	Password          string   // password, "" (deprecated for removal; secret)
	SentinelHosts     []string // sentinel_hosts, [] (deprecated for removal)
	SentinelGroupName string   // sentinel_group_name, "oslo-messaging-zeromq"
	WaitTimeout       int      // wait_timeout, 2000 ms
	CheckTimeout      int      // check_timeout, 20000 ms
	SocketTimeout     int      // socket_timeout, 10000 ms
}

// ZMQProxyOptions are [zmq_proxy_opts] (oslo-messaging-zmq-proxy).
type ZMQProxyOptions struct {
	Host           string // host, the host name
	FrontendPort   int    // frontend_port, 0 (random)
	BackendPort    int    // backend_port, 0 (random)
	PublisherPort  int    // publisher_port, 0 (random)
	LocalPublisher bool   // local_publisher, false
	AckPubSub      bool   // ack_pub_sub, false
	URL            string // url, "zmq://127.0.0.1:6379/"
}

type optKind int

const (
	kindStr optKind = iota
	kindInt
	kindBool
	kindList
	kindFloat
	kindMulti // MultiStrOpt: every occurrence in every file, in order
)

// option is one oslo.config option. def is the default as oslo.config
// holds it: a Python str default (isStrDefault) goes through $
// substitution and the type like a file value; others are typed already.
type option struct {
	group, name  string
	kind         optKind
	def          string
	noneDefault  bool
	isStrDefault bool
	hostDefault  bool // default is socket.gethostname()
	progDefault  bool // default is os.path.basename(sys.argv[0])
	choices      []string
	min, max     *int64
	fmin, fmax   *float64 // bounds of a float option
	// port marks an IntOpt that is a TCP port to bind (0: random): goslo
	// refuses a value outside 0..65535, which oslo.config accepts and
	// libzmq binds modulo 65536.
	port bool
	// deprecated are oslo's DeprecatedOpt (group, name) pairs; "" means
	// the option's own group or name.
	deprecated [][2]string
	field      func(c *Config) any
}

func i64(n int64) *int64 { return &n }

// portInt marks o as a port to bind (option.port).
func portInt(o *option) *option {
	o.port = true
	return o
}

// portRangeMsg is goslo's reason for a port option outside 0..65535.
const portRangeMsg = "not a TCP port (0..65535, 0 for a random one; oslo.config's IntOpt accepts it)"

// options is every option, in the order the interop peer reads them:
// [DEFAULT] (transport, client, pool, base opts), then
// [oslo_messaging_zmq], [matchmaker_redis], [zmq_proxy_opts], each in the
// reference's order. The first invalid value in this order is the one
// reported, as in Python.
var options = func() []*option {
	d := func(c *Config) *DefaultOptions { return &c.Default }
	z := func(c *Config) *ZMQOptions { return &c.ZMQ }
	m := func(c *Config) *MatchmakerRedisOptions { return &c.MatchmakerRedis }
	p := func(c *Config) *ZMQProxyOptions { return &c.ZMQProxy }
	str := func(group, name, def string, f func(c *Config) any) *option {
		return &option{group: group, name: name, kind: kindStr, def: def, isStrDefault: true, field: f}
	}
	integer := func(group, name, def string, f func(c *Config) any) *option {
		return &option{group: group, name: name, kind: kindInt, def: def, field: f}
	}
	boolean := func(group, name, def string, f func(c *Config) any) *option {
		return &option{group: group, name: name, kind: kindBool, def: def, field: f}
	}
	list := func(group, name string, f func(c *Config) any) *option {
		return &option{group: group, name: name, kind: kindList, field: f}
	}
	// dep marks an [oslo_messaging_zmq] option as also read from [DEFAULT].
	dep := func(o *option) *option {
		o.deprecated = append(o.deprecated, [2]string{GroupDefault, ""})
		return o
	}
	const G, Z, M, P = GroupDefault, GroupZMQ, GroupMatchmakerRedis, GroupZMQProxy

	transportURL := str(G, "transport_url", "", func(c *Config) any { return &d(c).TransportURL })
	transportURL.noneDefault = true
	executor := integer(G, "executor_thread_pool_size", "64", func(c *Config) any { return &d(c).ExecutorThreadPoolSize })
	executor.deprecated = [][2]string{{"", "rpc_thread_pool_size"}}
	matchmaker := dep(str(Z, "rpc_zmq_matchmaker", "redis", func(c *Config) any { return &z(c).RPCZMQMatchmaker }))
	matchmaker.choices = []string{"redis", "sentinel", "dummy"}
	backlog := dep(integer(Z, "rpc_zmq_topic_backlog", "", func(c *Config) any { return &z(c).RPCZMQTopicBacklog }))
	backlog.noneDefault = true
	host := dep(str(Z, "rpc_zmq_host", "", func(c *Config) any { return &z(c).RPCZMQHost }))
	host.hostDefault = true
	linger := integer(Z, "zmq_linger", "-1", func(c *Config) any { return &z(c).ZMQLinger })
	linger.deprecated = [][2]string{{GroupDefault, "rpc_cast_timeout"}}
	minPort := dep(integer(Z, "rpc_zmq_min_port", "49153", func(c *Config) any { return &z(c).RPCZMQMinPort }))
	minPort.min, minPort.max = i64(0), i64(65535)
	maxPort := dep(integer(Z, "rpc_zmq_max_port", "65536", func(c *Config) any { return &z(c).RPCZMQMaxPort }))
	maxPort.min, maxPort.max = i64(1), i64(65536)
	serialization := dep(str(Z, "rpc_zmq_serialization", "json", func(c *Config) any { return &z(c).RPCZMQSerialization }))
	serialization.choices = []string{"json", "msgpack"}
	redisPort := integer(M, "port", "6379", func(c *Config) any { return &m(c).Port })
	redisPort.min, redisPort.max = i64(0), i64(65535)
	proxyHost := str(P, "host", "", func(c *Config) any { return &p(c).Host })
	proxyHost.hostDefault = true

	all := []*option{
		transportURL,
		str(G, "rpc_backend", "rabbit", func(c *Config) any { return &d(c).RPCBackend }),
		str(G, "control_exchange", "openstack", func(c *Config) any { return &d(c).ControlExchange }),
		integer(G, "rpc_response_timeout", "60", func(c *Config) any { return &d(c).RPCResponseTimeout }),
		executor,
		dep(integer(G, "rpc_conn_pool_size", "30", func(c *Config) any { return &d(c).RPCConnPoolSize })),
		integer(G, "conn_pool_min_size", "2", func(c *Config) any { return &d(c).ConnPoolMinSize }),
		integer(G, "conn_pool_ttl", "1200", func(c *Config) any { return &d(c).ConnPoolTTL }),

		dep(str(Z, "rpc_zmq_bind_address", "*", func(c *Config) any { return &z(c).RPCZMQBindAddress })),
		matchmaker,
		dep(integer(Z, "rpc_zmq_contexts", "1", func(c *Config) any { return &z(c).RPCZMQContexts })),
		backlog,
		dep(str(Z, "rpc_zmq_ipc_dir", "/var/run/openstack", func(c *Config) any { return &z(c).RPCZMQIPCDir })),
		host,
		linger,
		dep(integer(Z, "rpc_poll_timeout", "1", func(c *Config) any { return &z(c).RPCPollTimeout })),
		dep(integer(Z, "zmq_target_expire", "300", func(c *Config) any { return &z(c).ZMQTargetExpire })),
		dep(integer(Z, "zmq_target_update", "180", func(c *Config) any { return &z(c).ZMQTargetUpdate })),
		dep(boolean(Z, "use_pub_sub", "false", func(c *Config) any { return &z(c).UsePubSub })),
		dep(boolean(Z, "use_router_proxy", "false", func(c *Config) any { return &z(c).UseRouterProxy })),
		boolean(Z, "use_dynamic_connections", "false", func(c *Config) any { return &z(c).UseDynamicConnections }),
		integer(Z, "zmq_failover_connections", "2", func(c *Config) any { return &z(c).ZMQFailoverConnections }),
		minPort,
		maxPort,
		dep(integer(Z, "rpc_zmq_bind_port_retries", "100", func(c *Config) any { return &z(c).RPCZMQBindPortRetries })),
		serialization,
		boolean(Z, "zmq_immediate", "true", func(c *Config) any { return &z(c).ZMQImmediate }),
		integer(Z, "zmq_tcp_keepalive", "-1", func(c *Config) any { return &z(c).ZMQTCPKeepalive }),
		integer(Z, "zmq_tcp_keepalive_idle", "-1", func(c *Config) any { return &z(c).ZMQTCPKeepaliveIdle }),
		integer(Z, "zmq_tcp_keepalive_cnt", "-1", func(c *Config) any { return &z(c).ZMQTCPKeepaliveCnt }),
		integer(Z, "zmq_tcp_keepalive_intvl", "-1", func(c *Config) any { return &z(c).ZMQTCPKeepaliveIntvl }),
		integer(Z, "rpc_thread_pool_size", "100", func(c *Config) any { return &z(c).RPCThreadPoolSize }),
		integer(Z, "rpc_message_ttl", "300", func(c *Config) any { return &z(c).RPCMessageTTL }),
		boolean(Z, "rpc_use_acks", "false", func(c *Config) any { return &z(c).RPCUseAcks }),
		integer(Z, "rpc_ack_timeout_base", "15", func(c *Config) any { return &z(c).RPCAckTimeoutBase }),
		integer(Z, "rpc_ack_timeout_multiplier", "2", func(c *Config) any { return &z(c).RPCAckTimeoutMultiplier }),
		integer(Z, "rpc_retry_attempts", "3", func(c *Config) any { return &z(c).RPCRetryAttempts }),
		list(Z, "subscribe_on", func(c *Config) any { return &z(c).SubscribeOn }),

		str(M, "host", "127.0.0.1", func(c *Config) any { return &m(c).Host }),
		redisPort,
		str(M, "password", "", func(c *Config) any { return &m(c).Password }),
		list(M, "sentinel_hosts", func(c *Config) any { return &m(c).SentinelHosts }),
		str(M, "sentinel_group_name", "oslo-messaging-zeromq", func(c *Config) any { return &m(c).SentinelGroupName }),
		integer(M, "wait_timeout", "2000", func(c *Config) any { return &m(c).WaitTimeout }),
		integer(M, "check_timeout", "20000", func(c *Config) any { return &m(c).CheckTimeout }),
		integer(M, "socket_timeout", "10000", func(c *Config) any { return &m(c).SocketTimeout }),

		proxyHost,
		portInt(integer(P, "frontend_port", "0", func(c *Config) any { return &p(c).FrontendPort })),
		portInt(integer(P, "backend_port", "0", func(c *Config) any { return &p(c).BackendPort })),
		portInt(integer(P, "publisher_port", "0", func(c *Config) any { return &p(c).PublisherPort })),
		boolean(P, "local_publisher", "false", func(c *Config) any { return &p(c).LocalPublisher }),
		boolean(P, "ack_pub_sub", "false", func(c *Config) any { return &p(c).AckPubSub }),
		str(P, "url", "zmq://127.0.0.1:6379/", func(c *Config) any { return &p(c).URL }),
	}
	return append(all, rabbitOptions()...)
}()

// deprecatedNames is oslo.config's _deprecated_opts for names given
// explicitly: the options a $name (or a URL query) can reach under a
// deprecated name, by deprecated group.
var deprecatedNames = func() map[string]map[string]*option {
	out := map[string]map[string]*option{}
	for _, o := range options {
		for _, d := range o.deprecated {
			if d[1] == "" {
				continue
			}
			g := d[0]
			if g == "" {
				g = GroupDefault
			}
			if out[g] == nil {
				out[g] = map[string]*option{}
			}
			out[g][d[1]] = o
		}
	}
	return out
}()

// registeredGroups are the option groups other than DEFAULT.
var registeredGroups = map[string]bool{GroupZMQ: true, GroupMatchmakerRedis: true, GroupZMQProxy: true,
	GroupRabbit: true, GroupNotifications: true}

// Options lists every option of the zmq driver as "group.name", in the
// order of the table (see the options variable): [DEFAULT],
// [oslo_messaging_zmq], [matchmaker_redis], [zmq_proxy_opts].
func Options() []string { return optionNames(false) }

// RabbitOptionNames lists the options of [oslo_messaging_rabbit] and
// [oslo_messaging_notifications] as "group.name", in 18.3.1's order. The
// rabbit driver also reads [DEFAULT] transport_url, control_exchange and
// rpc_response_timeout (in Options()).
func RabbitOptionNames() []string { return optionNames(true) }

func optionNames(rabbit bool) []string {
	var out []string
	for _, o := range options {
		if (o.group == GroupRabbit || o.group == GroupNotifications) == rabbit {
			out = append(out, o.group+"."+o.name)
		}
	}
	return out
}

func findOption(group, name string) *option {
	for _, o := range options {
		if o.group == group && o.name == name {
			return o
		}
	}
	return nil
}
