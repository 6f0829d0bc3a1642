package compat

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// RabbitOptions are [oslo_messaging_rabbit] of oslo.messaging 18.3.1: the
// driver's rabbit_opts, amqp.py's amqp_opts and _drivers/base.py's
// base_opts, which RabbitDriver registers in that group. Names, types and
// defaults are 18.3.1's (rabbit-wire.md §3). The comment of each field is
// "name, default"; † marks the options that change the wire, the others
// change only timing and resource use.
type RabbitOptions struct {
	// amqp_opts
	AMQPDurableQueues bool // † amqp_durable_queues, false
	AMQPAutoDelete    bool // † amqp_auto_delete, false

	// TLS (the same host:port; no port switch)
	SSL                            bool   // ssl, false
	SSLVersion                     string // ssl_version, ""
	SSLKeyFile                     string // ssl_key_file, ""
	SSLCertFile                    string // ssl_cert_file, ""
	SSLCAFile                      string // ssl_ca_file, ""
	SSLEnforceFIPSMode             bool   // ssl_enforce_fips_mode, false (does nothing)
	SSLEnforceHostnameVerification bool   // ssl_enforce_hostname_verification, false (deprecated, ignored in 18.3.x)

	KombuReconnectDelay              float64 // kombu_reconnect_delay, 1.0 s (0.0..4.5)
	KombuReconnectSplay              float64 // kombu_reconnect_splay, 0.0 s (>= 0.0)
	KombuCompression                 string  // † kombu_compression, unset (""): gzip or bz2
	KombuMissingConsumerRetryTimeout int     // kombu_missing_consumer_retry_timeout, 60 s
	KombuFailoverStrategy            string  // kombu_failover_strategy: round-robin (default), shuffle
	RabbitLoginMethod                string  // † rabbit_login_method: AMQPLAIN (default), PLAIN, EXTERNAL, RABBIT-CR-DEMO
	RabbitRetryInterval              int     // rabbit_retry_interval, 1 s
	RabbitRetryBackoff               int     // rabbit_retry_backoff, 2 s
	RabbitIntervalMax                int     // rabbit_interval_max, 30 s

	RabbitHAQueues              bool   // † rabbit_ha_queues, false
	RabbitQuorumQueue           bool   // † rabbit_quorum_queue, false
	RabbitTransientQuorumQueue  bool   // † rabbit_transient_quorum_queue, false
	RabbitQuorumDeliveryLimit   int    // † rabbit_quorum_delivery_limit, 0 (unset)
	RabbitQuorumMaxMemoryLength int    // † rabbit_quorum_max_memory_length, 0 (unset)
	RabbitQuorumMaxMemoryBytes  int    // † rabbit_quorum_max_memory_bytes, 0 (unset)
	RabbitTransientQueuesTTL    int    // † rabbit_transient_queues_ttl, 1800 s (0 = no x-expires)
	RabbitQoSPrefetchCount      int    // † rabbit_qos_prefetch_count, 0 (no basic.qos)
	RabbitStreamFanout          bool   // † rabbit_stream_fanout, false
	HeartbeatTimeoutThreshold   int    // † heartbeat_timeout_threshold, 60 s (0 disables)
	HeartbeatRate               int    // heartbeat_rate, 3
	DirectMandatoryFlag         bool   // † direct_mandatory_flag, true (deprecated)
	EnableCancelOnFailover      bool   // † enable_cancel_on_failover, false
	UseQueueManager             bool   // † use_queue_manager, false
	Hostname                    string // † hostname, socket.gethostname() (queue-manager names)
	Processname                 string // † processname, basename(argv[0]) (queue-manager names)

	// base_opts
	RPCConnPoolSize int // rpc_conn_pool_size, 30 (also read from [DEFAULT])
	ConnPoolMinSize int // conn_pool_min_size, 2
	ConnPoolTTL     int // conn_pool_ttl, 1200 s
}

// NotificationsOptions are [oslo_messaging_notifications]
// (oslo_messaging/notify/notifier.py).
type NotificationsOptions struct {
	Driver       []string // driver (MultiStrOpt), []: messaging, messagingv2, log, noop, ...; none = nothing sent
	TransportURL string   // transport_url (secret), unset (""): the [DEFAULT] one
	Topics       []string // topics, ["notifications"]
	Retry        int      // retry, -1 (forever)
}

// ProgramName is Python's os.path.basename(sys.argv[0]): the default of
// [oslo_messaging_rabbit] processname and the first part of the AMQP
// connection_name.
func ProgramName() string {
	if len(os.Args) == 0 {
		return ""
	}
	return filepath.Base(os.Args[0])
}

func f64(f float64) *float64 { return &f }

// rabbitOptions is the option table of [oslo_messaging_rabbit] and
// [oslo_messaging_notifications], in 18.3.1's registration order.
func rabbitOptions() []*option {
	r := func(c *Config) *RabbitOptions { return &c.Rabbit }
	n := func(c *Config) *NotificationsOptions { return &c.Notifications }
	const R, N = GroupRabbit, GroupNotifications
	str := func(name, def string, f func(c *Config) any) *option {
		return &option{group: R, name: name, kind: kindStr, def: def, isStrDefault: true, field: f}
	}
	integer := func(name, def string, f func(c *Config) any) *option {
		return &option{group: R, name: name, kind: kindInt, def: def, field: f}
	}
	boolean := func(name, def string, f func(c *Config) any) *option {
		return &option{group: R, name: name, kind: kindBool, def: def, field: f}
	}
	float := func(name, def string, f func(c *Config) any) *option {
		return &option{group: R, name: name, kind: kindFloat, def: def, field: f}
	}

	delay := float("kombu_reconnect_delay", "1.0", func(c *Config) any { return &r(c).KombuReconnectDelay })
	delay.fmin, delay.fmax = f64(0), f64(4.5) // ACK_REQUEUE_EVERY_SECONDS_MAX * 0.9
	splay := float("kombu_reconnect_splay", "0.0", func(c *Config) any { return &r(c).KombuReconnectSplay })
	splay.fmin = f64(0)
	compression := str("kombu_compression", "", func(c *Config) any { return &r(c).KombuCompression })
	compression.noneDefault = true
	failover := str("kombu_failover_strategy", "round-robin", func(c *Config) any { return &r(c).KombuFailoverStrategy })
	failover.choices = []string{"round-robin", "shuffle"}
	login := str("rabbit_login_method", "AMQPLAIN", func(c *Config) any { return &r(c).RabbitLoginMethod })
	login.choices = []string{"PLAIN", "AMQPLAIN", "EXTERNAL", "RABBIT-CR-DEMO"}
	ttl := integer("rabbit_transient_queues_ttl", "1800", func(c *Config) any { return &r(c).RabbitTransientQueuesTTL })
	ttl.min = i64(0)
	hostname := str("hostname", "", func(c *Config) any { return &r(c).Hostname })
	hostname.hostDefault = true
	processname := str("processname", "", func(c *Config) any { return &r(c).Processname })
	processname.progDefault = true
	poolSize := integer("rpc_conn_pool_size", "30", func(c *Config) any { return &r(c).RPCConnPoolSize })
	poolSize.min = i64(1)
	poolSize.deprecated = [][2]string{{GroupDefault, ""}}

	driver := &option{group: N, name: "driver", kind: kindMulti, field: func(c *Config) any { return &n(c).Driver }}
	notifyURL := &option{group: N, name: "transport_url", kind: kindStr, isStrDefault: true, noneDefault: true,
		field: func(c *Config) any { return &n(c).TransportURL }}
	topics := &option{group: N, name: "topics", kind: kindList, def: "notifications", field: func(c *Config) any { return &n(c).Topics }}
	retry := &option{group: N, name: "retry", kind: kindInt, def: "-1", field: func(c *Config) any { return &n(c).Retry }}

	return []*option{
		boolean("ssl", "false", func(c *Config) any { return &r(c).SSL }),
		str("ssl_version", "", func(c *Config) any { return &r(c).SSLVersion }),
		str("ssl_key_file", "", func(c *Config) any { return &r(c).SSLKeyFile }),
		str("ssl_cert_file", "", func(c *Config) any { return &r(c).SSLCertFile }),
		str("ssl_ca_file", "", func(c *Config) any { return &r(c).SSLCAFile }),
		boolean("ssl_enforce_fips_mode", "false", func(c *Config) any { return &r(c).SSLEnforceFIPSMode }),
		boolean("ssl_enforce_hostname_verification", "false", func(c *Config) any { return &r(c).SSLEnforceHostnameVerification }),
		delay,
		splay,
		compression,
		integer("kombu_missing_consumer_retry_timeout", "60", func(c *Config) any { return &r(c).KombuMissingConsumerRetryTimeout }),
		failover,
		login,
		integer("rabbit_retry_interval", "1", func(c *Config) any { return &r(c).RabbitRetryInterval }),
		integer("rabbit_retry_backoff", "2", func(c *Config) any { return &r(c).RabbitRetryBackoff }),
		integer("rabbit_interval_max", "30", func(c *Config) any { return &r(c).RabbitIntervalMax }),
		boolean("rabbit_ha_queues", "false", func(c *Config) any { return &r(c).RabbitHAQueues }),
		boolean("rabbit_quorum_queue", "false", func(c *Config) any { return &r(c).RabbitQuorumQueue }),
		boolean("rabbit_transient_quorum_queue", "false", func(c *Config) any { return &r(c).RabbitTransientQuorumQueue }),
		integer("rabbit_quorum_delivery_limit", "0", func(c *Config) any { return &r(c).RabbitQuorumDeliveryLimit }),
		integer("rabbit_quorum_max_memory_length", "0", func(c *Config) any { return &r(c).RabbitQuorumMaxMemoryLength }),
		integer("rabbit_quorum_max_memory_bytes", "0", func(c *Config) any { return &r(c).RabbitQuorumMaxMemoryBytes }),
		ttl,
		integer("rabbit_qos_prefetch_count", "0", func(c *Config) any { return &r(c).RabbitQoSPrefetchCount }),
		integer("heartbeat_timeout_threshold", "60", func(c *Config) any { return &r(c).HeartbeatTimeoutThreshold }),
		integer("heartbeat_rate", "3", func(c *Config) any { return &r(c).HeartbeatRate }),
		boolean("direct_mandatory_flag", "true", func(c *Config) any { return &r(c).DirectMandatoryFlag }),
		boolean("enable_cancel_on_failover", "false", func(c *Config) any { return &r(c).EnableCancelOnFailover }),
		boolean("use_queue_manager", "false", func(c *Config) any { return &r(c).UseQueueManager }),
		hostname,
		processname,
		boolean("rabbit_stream_fanout", "false", func(c *Config) any { return &r(c).RabbitStreamFanout }),
		boolean("amqp_durable_queues", "false", func(c *Config) any { return &r(c).AMQPDurableQueues }),
		boolean("amqp_auto_delete", "false", func(c *Config) any { return &r(c).AMQPAutoDelete }),
		poolSize,
		integer("conn_pool_min_size", "2", func(c *Config) any { return &r(c).ConnPoolMinSize }),
		integer("conn_pool_ttl", "1200", func(c *Config) any { return &r(c).ConnPoolTTL }),

		driver,
		notifyURL,
		topics,
		retry,
	}
}

// ValidateRabbit checks the [oslo_messaging_rabbit] values against their
// types' choices and bounds, then the relations rabbit-wire.md §3 states:
// rabbit_ha_queues and rabbit_quorum_queue together are refused;
// rabbit_stream_fanout needs rabbit_transient_quorum_queue and a positive
// rabbit_qos_prefetch_count (Python raises RuntimeError for all three).
// goslo also refuses (Class ""): kombu_compression other than "", gzip or
// bz2, and bz2 itself, because Go's standard library has a bzip2 reader but
// no writer (receiving bz2 works; see driver/rabbit DecompressBody); and a
// negative [DEFAULT] rpc_response_timeout.
func (c *Config) ValidateRabbit() error {
	for _, o := range options {
		if o.group != GroupRabbit && o.group != GroupNotifications {
			continue
		}
		var msg string
		switch p := o.field(c).(type) {
		case *string:
			if o.choices != nil {
				_, msg = o.convert(*p)
			}
		case *int:
			_, msg = o.convert(strconv.Itoa(*p))
		case *float64:
			_, msg = o.convert(strconv.FormatFloat(*p, 'g', -1, 64))
		}
		if msg != "" {
			v, _ := c.Value(o.group, o.name)
			return &ConfigError{Section: o.group, Option: o.name, Value: fmt.Sprint(v), Reason: msg, Class: "ValueError", Message: msg}
		}
	}
	r := c.Rabbit
	runtime := func(option, value, msg string) error {
		return &ConfigError{Section: GroupRabbit, Option: option, Value: value, Reason: msg, Class: "RuntimeError", Message: msg}
	}
	if r.RabbitHAQueues && r.RabbitQuorumQueue {
		return runtime("rabbit_quorum_queue", "True", "Configuration Error: rabbit_quorum_queue and rabbit_ha_queues both enabled, queue type is quorum or HA (mirrored) but not both")
	}
	if r.RabbitStreamFanout && !r.RabbitTransientQuorumQueue {
		return runtime("rabbit_stream_fanout", "True", "Configuration Error: rabbit_stream_fanout need rabbit_transient_quorum_queue to be set to true")
	}
	if r.RabbitStreamFanout && r.RabbitQoSPrefetchCount <= 0 {
		return runtime("rabbit_stream_fanout", "True", "Configuration Error: rabbit_stream_fanout need rabbit_qos_prefetch_count to be set to a value greater than 0")
	}
	switch r.KombuCompression {
	case "", "gzip":
	case "bz2":
		return &ConfigError{Section: GroupRabbit, Option: "kombu_compression", Value: "bz2",
			Reason: "bz2 compression cannot be written by goslo (Go's standard library only reads bzip2); bz2 bodies from Python peers are still accepted"}
	default:
		return &ConfigError{Section: GroupRabbit, Option: "kombu_compression", Value: r.KombuCompression,
			Reason: "must be gzip or bz2 (kombu would fail at the first publish)"}
	}
	if c.Default.RPCResponseTimeout <= 0 {
		return &ConfigError{Section: GroupDefault, Option: "rpc_response_timeout", Value: strconv.Itoa(c.Default.RPCResponseTimeout),
			Reason: "must be positive"}
	}
	return nil
}
