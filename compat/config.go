package compat

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Option groups (INI sections) the zmq driver reads.
const (
	GroupDefault         = "DEFAULT"
	GroupZMQ             = "oslo_messaging_zmq"
	GroupMatchmakerRedis = "matchmaker_redis"
	GroupZMQProxy        = "zmq_proxy_opts"
)

// DefaultOptions are the [DEFAULT] options the driver and RPC layer read.
type DefaultOptions struct {
	TransportURL       string // transport_url (secret); "" = unset
	ControlExchange    string // control_exchange
	RPCResponseTimeout int    // rpc_response_timeout, seconds
}

// ZMQOptions are [oslo_messaging_zmq] (zmq_options.py of 8.1.4). Most are
// also accepted under [DEFAULT] under the same name (the deprecated group).
type ZMQOptions struct {
	RPCZMQBindAddress       string   // rpc_zmq_bind_address
	RPCZMQMatchmaker        string   // rpc_zmq_matchmaker: redis, sentinel, dummy
	RPCZMQContexts          int      // rpc_zmq_contexts (never read by the driver)
	RPCZMQTopicBacklog      *int     // rpc_zmq_topic_backlog (None by default; never read)
	RPCZMQIPCDir            string   // rpc_zmq_ipc_dir (never read)
	RPCZMQHost              string   // rpc_zmq_host: the host name by default
	ZMQLinger               int      // zmq_linger (deprecated name rpc_cast_timeout in [DEFAULT])
	RPCPollTimeout          int      // rpc_poll_timeout
	ZMQTargetExpire         int      // zmq_target_expire, seconds
	ZMQTargetUpdate         int      // zmq_target_update, seconds
	UsePubSub               bool     // use_pub_sub
	UseRouterProxy          bool     // use_router_proxy
	UseDynamicConnections   bool     // use_dynamic_connections
	ZMQFailoverConnections  int      // zmq_failover_connections
	RPCZMQMinPort           int      // rpc_zmq_min_port, port 0..65535
	RPCZMQMaxPort           int      // rpc_zmq_max_port, 1..65536 (exclusive)
	RPCZMQBindPortRetries   int      // rpc_zmq_bind_port_retries
	RPCZMQSerialization     string   // rpc_zmq_serialization: json, msgpack
	ZMQImmediate            bool     // zmq_immediate
	ZMQTCPKeepalive         int      // zmq_tcp_keepalive
	ZMQTCPKeepaliveIdle     int      // zmq_tcp_keepalive_idle
	ZMQTCPKeepaliveCnt      int      // zmq_tcp_keepalive_cnt
	ZMQTCPKeepaliveIntvl    int      // zmq_tcp_keepalive_intvl
	RPCThreadPoolSize       int      // rpc_thread_pool_size
	RPCMessageTTL           int      // rpc_message_ttl, seconds
	RPCUseAcks              bool     // rpc_use_acks
	RPCAckTimeoutBase       int      // rpc_ack_timeout_base, seconds
	RPCAckTimeoutMultiplier int      // rpc_ack_timeout_multiplier
	RPCRetryAttempts        int      // rpc_retry_attempts
	SubscribeOn             []string // subscribe_on, host:port list
}

// MatchmakerRedisOptions are [matchmaker_redis].
type MatchmakerRedisOptions struct {
	Host              string   // host (deprecated: use the URL)
	Port              int      // port (deprecated)
	Password          string   // password (deprecated, secret)
	SentinelHosts     []string // sentinel_hosts (deprecated)
	SentinelGroupName string   // sentinel_group_name
	WaitTimeout       int      // wait_timeout, ms
	CheckTimeout      int      // check_timeout, ms
	SocketTimeout     int      // socket_timeout, ms
}

// ZMQProxyOptions are [zmq_proxy_opts] (oslo-messaging-zmq-proxy).
type ZMQProxyOptions struct {
	Host           string // host: the host name by default
	FrontendPort   int    // frontend_port (0 = random)
	BackendPort    int    // backend_port
	PublisherPort  int    // publisher_port
	LocalPublisher bool   // local_publisher
	AckPubSub      bool   // ack_pub_sub
	URL            string // url
}

// Config is every option the zmq driver, its matchmaker and its proxy read,
// with oslo's names, types, defaults and choices.
type Config struct {
	Default         DefaultOptions
	ZMQ             ZMQOptions
	MatchmakerRedis MatchmakerRedisOptions
	ZMQProxy        ZMQProxyOptions
}

// DefaultConfig returns the reference's defaults. hostname stands for
// Python's socket.gethostname(), the default of rpc_zmq_host and of the
// proxy's host (compat does no I/O: the caller supplies it).
func DefaultConfig(hostname string) *Config {
	c := &Config{}
	for _, o := range options {
		if err := o.set(c, o.def, nil); err != nil {
			panic("compat: bad default for " + o.name + ": " + err.Error())
		}
	}
	c.ZMQ.RPCZMQHost = hostname
	c.ZMQProxy.Host = hostname
	return c
}

type optKind int

const (
	kindStr optKind = iota
	kindInt
	kindBool
	kindList
)

type option struct {
	group, name string
	kind        optKind
	def         string // default in INI spelling; "\x00" = None
	emptyIsNone bool   // a string option whose default is None, kept as ""
	choices     []string
	min, max    *int
	deprecated  [][2]string // (group, name) pairs
	field       func(c *Config) any
}

const noneDefault = "\x00"

func ip(n int) *int { return &n }

func zmqOpt(name string, kind optKind, def string, field func(c *Config) any) option {
	return option{group: GroupZMQ, name: name, kind: kind, def: def, field: field,
		deprecated: [][2]string{{GroupDefault, name}}}
}

// options is the table of every option, in the reference's order.
var options = func() []option {
	z := func(c *Config) *ZMQOptions { return &c.ZMQ }
	m := func(c *Config) *MatchmakerRedisOptions { return &c.MatchmakerRedis }
	p := func(c *Config) *ZMQProxyOptions { return &c.ZMQProxy }
	opts := []option{
		{group: GroupDefault, name: "transport_url", kind: kindStr, def: "", emptyIsNone: true, field: func(c *Config) any { return &c.Default.TransportURL }},
		{group: GroupDefault, name: "control_exchange", kind: kindStr, def: "openstack", field: func(c *Config) any { return &c.Default.ControlExchange }},
		{group: GroupDefault, name: "rpc_response_timeout", kind: kindInt, def: "60", field: func(c *Config) any { return &c.Default.RPCResponseTimeout }},

		zmqOpt("rpc_zmq_bind_address", kindStr, "*", func(c *Config) any { return &z(c).RPCZMQBindAddress }),
		zmqOpt("rpc_zmq_matchmaker", kindStr, "redis", func(c *Config) any { return &z(c).RPCZMQMatchmaker }),
		zmqOpt("rpc_zmq_contexts", kindInt, "1", func(c *Config) any { return &z(c).RPCZMQContexts }),
		zmqOpt("rpc_zmq_topic_backlog", kindInt, noneDefault, func(c *Config) any { return &z(c).RPCZMQTopicBacklog }),
		zmqOpt("rpc_zmq_ipc_dir", kindStr, "/var/run/openstack", func(c *Config) any { return &z(c).RPCZMQIPCDir }),
		zmqOpt("rpc_zmq_host", kindStr, "localhost", func(c *Config) any { return &z(c).RPCZMQHost }),
		{group: GroupZMQ, name: "zmq_linger", kind: kindInt, def: "-1", deprecated: [][2]string{{GroupDefault, "rpc_cast_timeout"}}, field: func(c *Config) any { return &z(c).ZMQLinger }},
		zmqOpt("rpc_poll_timeout", kindInt, "1", func(c *Config) any { return &z(c).RPCPollTimeout }),
		zmqOpt("zmq_target_expire", kindInt, "300", func(c *Config) any { return &z(c).ZMQTargetExpire }),
		zmqOpt("zmq_target_update", kindInt, "180", func(c *Config) any { return &z(c).ZMQTargetUpdate }),
		zmqOpt("use_pub_sub", kindBool, "false", func(c *Config) any { return &z(c).UsePubSub }),
		zmqOpt("use_router_proxy", kindBool, "false", func(c *Config) any { return &z(c).UseRouterProxy }),
		{group: GroupZMQ, name: "use_dynamic_connections", kind: kindBool, def: "false", field: func(c *Config) any { return &z(c).UseDynamicConnections }},
		{group: GroupZMQ, name: "zmq_failover_connections", kind: kindInt, def: "2", field: func(c *Config) any { return &z(c).ZMQFailoverConnections }},
		zmqOpt("rpc_zmq_min_port", kindInt, "49153", func(c *Config) any { return &z(c).RPCZMQMinPort }),
		zmqOpt("rpc_zmq_max_port", kindInt, "65536", func(c *Config) any { return &z(c).RPCZMQMaxPort }),
		zmqOpt("rpc_zmq_bind_port_retries", kindInt, "100", func(c *Config) any { return &z(c).RPCZMQBindPortRetries }),
		zmqOpt("rpc_zmq_serialization", kindStr, "json", func(c *Config) any { return &z(c).RPCZMQSerialization }),
	}
	opts[4].choices = []string{"redis", "sentinel", "dummy"}
	opts[len(opts)-1].choices = []string{"json", "msgpack"}
	opts[len(opts)-4].min, opts[len(opts)-4].max = ip(0), ip(65535)
	opts[len(opts)-3].min, opts[len(opts)-3].max = ip(1), ip(65536)
	plain := func(name string, kind optKind, def string, field func(c *Config) any) option {
		return option{group: GroupZMQ, name: name, kind: kind, def: def, field: field}
	}
	opts = append(opts,
		plain("zmq_immediate", kindBool, "true", func(c *Config) any { return &z(c).ZMQImmediate }),
		plain("zmq_tcp_keepalive", kindInt, "-1", func(c *Config) any { return &z(c).ZMQTCPKeepalive }),
		plain("zmq_tcp_keepalive_idle", kindInt, "-1", func(c *Config) any { return &z(c).ZMQTCPKeepaliveIdle }),
		plain("zmq_tcp_keepalive_cnt", kindInt, "-1", func(c *Config) any { return &z(c).ZMQTCPKeepaliveCnt }),
		plain("zmq_tcp_keepalive_intvl", kindInt, "-1", func(c *Config) any { return &z(c).ZMQTCPKeepaliveIntvl }),
		plain("rpc_thread_pool_size", kindInt, "100", func(c *Config) any { return &z(c).RPCThreadPoolSize }),
		plain("rpc_message_ttl", kindInt, "300", func(c *Config) any { return &z(c).RPCMessageTTL }),
		plain("rpc_use_acks", kindBool, "false", func(c *Config) any { return &z(c).RPCUseAcks }),
		plain("rpc_ack_timeout_base", kindInt, "15", func(c *Config) any { return &z(c).RPCAckTimeoutBase }),
		plain("rpc_ack_timeout_multiplier", kindInt, "2", func(c *Config) any { return &z(c).RPCAckTimeoutMultiplier }),
		plain("rpc_retry_attempts", kindInt, "3", func(c *Config) any { return &z(c).RPCRetryAttempts }),
		plain("subscribe_on", kindList, "", func(c *Config) any { return &z(c).SubscribeOn }),

		option{group: GroupMatchmakerRedis, name: "host", kind: kindStr, def: "127.0.0.1", field: func(c *Config) any { return &m(c).Host }},
		option{group: GroupMatchmakerRedis, name: "port", kind: kindInt, def: "6379", min: ip(0), max: ip(65535), field: func(c *Config) any { return &m(c).Port }},
		option{group: GroupMatchmakerRedis, name: "password", kind: kindStr, def: "", field: func(c *Config) any { return &m(c).Password }},
		option{group: GroupMatchmakerRedis, name: "sentinel_hosts", kind: kindList, def: "", field: func(c *Config) any { return &m(c).SentinelHosts }},
		option{group: GroupMatchmakerRedis, name: "sentinel_group_name", kind: kindStr, def: "oslo-messaging-zeromq", field: func(c *Config) any { return &m(c).SentinelGroupName }},
		option{group: GroupMatchmakerRedis, name: "wait_timeout", kind: kindInt, def: "2000", field: func(c *Config) any { return &m(c).WaitTimeout }},
		option{group: GroupMatchmakerRedis, name: "check_timeout", kind: kindInt, def: "20000", field: func(c *Config) any { return &m(c).CheckTimeout }},
		option{group: GroupMatchmakerRedis, name: "socket_timeout", kind: kindInt, def: "10000", field: func(c *Config) any { return &m(c).SocketTimeout }},

		option{group: GroupZMQProxy, name: "host", kind: kindStr, def: "localhost", field: func(c *Config) any { return &p(c).Host }},
		option{group: GroupZMQProxy, name: "frontend_port", kind: kindInt, def: "0", field: func(c *Config) any { return &p(c).FrontendPort }},
		option{group: GroupZMQProxy, name: "backend_port", kind: kindInt, def: "0", field: func(c *Config) any { return &p(c).BackendPort }},
		option{group: GroupZMQProxy, name: "publisher_port", kind: kindInt, def: "0", field: func(c *Config) any { return &p(c).PublisherPort }},
		option{group: GroupZMQProxy, name: "local_publisher", kind: kindBool, def: "false", field: func(c *Config) any { return &p(c).LocalPublisher }},
		option{group: GroupZMQProxy, name: "ack_pub_sub", kind: kindBool, def: "false", field: func(c *Config) any { return &p(c).AckPubSub }},
		option{group: GroupZMQProxy, name: "url", kind: kindStr, def: "zmq://127.0.0.1:6379/", field: func(c *Config) any { return &p(c).URL }},
	)
	return opts
}()

// Options lists every option as "group.name", in the reference's order.
func Options() []string {
	out := make([]string, len(options))
	for i, o := range options {
		out[i] = o.group + "." + o.name
	}
	return out
}

func findOption(group, name string) *option {
	for i := range options {
		if options[i].group == group && options[i].name == name {
			return &options[i]
		}
	}
	return nil
}

// convert turns a raw value into the option's type with oslo.config's
// rules (types.String, Integer, Port, Boolean, List).
func (o *option) convert(raw string) (any, string) {
	switch o.kind {
	case kindStr:
		if o.choices != nil {
			for _, c := range o.choices {
				if c == raw {
					return raw, ""
				}
			}
			return nil, fmt.Sprintf("Valid values are [%s], but found %s", strings.Join(o.choices, ", "), pyQuote(raw))
		}
		return raw, ""
	case kindInt:
		if strings.TrimSpace(raw) == "" {
			return (*int)(nil), ""
		}
		n, ok := PyInt(raw)
		if !ok || !n.IsInt64() {
			return nil, "invalid literal for int() with base 10: " + pyQuote(raw)
		}
		v := int(n.Int64())
		if o.min != nil && v < *o.min {
			return nil, fmt.Sprintf("Should be greater than or equal to %d", *o.min)
		}
		if o.max != nil && v > *o.max {
			return nil, fmt.Sprintf("Should be less than or equal to %d", *o.max)
		}
		return &v, ""
	case kindBool:
		switch strings.ToLower(raw) {
		case "true", "1", "on", "yes":
			return true, ""
		case "false", "0", "off", "no":
			return false, ""
		}
		return nil, "Unexpected boolean value " + pyQuote(raw)
	case kindList:
		s := strings.TrimRight(strings.TrimSpace(raw), ",")
		out := []string{}
		if s == "" {
			return out, ""
		}
		for _, item := range strings.Split(s, ",") {
			out = append(out, strings.TrimSpace(item))
		}
		return out, ""
	}
	return nil, "unknown option kind"
}

// set stores a raw value into the option's field. sub resolves $name
// references (nil: no substitution).
func (o *option) set(c *Config, raw string, sub func(string) (string, error)) error {
	if raw == noneDefault {
		if p, ok := o.field(c).(**int); ok {
			*p = nil
			return nil
		}
	}
	if sub != nil {
		r, err := sub(raw)
		if err != nil {
			return err
		}
		raw = r
	}
	v, reason := o.convert(raw)
	if reason != "" {
		return &ConfigError{Section: o.group, Option: o.name, Value: raw, Reason: reason}
	}
	switch p := o.field(c).(type) {
	case *string:
		*p = v.(string)
	case *bool:
		*p = v.(bool)
	case *[]string:
		*p = v.([]string)
	case **int:
		*p = v.(*int)
	case *int:
		n := v.(*int)
		if n == nil {
			return &ConfigError{Section: o.group, Option: o.name, Value: raw,
				Reason: "empty value: oslo.config reads it as None, which this option cannot hold"}
		}
		*p = *n
	}
	return nil
}

// format renders an option's current value as Python's str() would, for
// $name substitution.
func (o *option) format(c *Config) string {
	switch p := o.field(c).(type) {
	case *string:
		return *p
	case *bool:
		if *p {
			return "True"
		}
		return "False"
	case *int:
		return strconv.Itoa(*p)
	case **int:
		if *p == nil {
			return ""
		}
		return strconv.Itoa(**p)
	case *[]string:
		q := make([]string, len(*p))
		for i, s := range *p {
			q[i] = pyQuote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	return ""
}

// Value returns an option's value as a plain Go value (string, int, bool,
// []string, or nil for None), by group and name.
func (c *Config) Value(group, name string) (any, bool) {
	o := findOption(group, name)
	if o == nil {
		return nil, false
	}
	switch p := o.field(c).(type) {
	case *string:
		if o.emptyIsNone && *p == "" {
			return nil, true
		}
		return *p, true
	case *bool:
		return *p, true
	case *int:
		return *p, true
	case **int:
		if *p == nil {
			return nil, true
		}
		return **p, true
	case *[]string:
		return append([]string{}, (*p)...), true
	}
	return nil, false
}

// ConfigFile is one oslo INI file's name and contents.
type ConfigFile struct {
	Name string
	Data []byte
}

// section holds one file's assignments: key → values in order.
type parsedFile struct {
	name     string
	sections map[string]map[string][]string
	order    []string          // section names in order of appearance
	lines    map[string]int    // "section\x00key" → line of last assignment
	exact    map[string]string // lowercased name → name as written
}

// parseINI is oslo.config's iniparser: [section] headers, "key = value" or
// "key: value", values stripped and unquoted when one quote char encloses
// them, indented lines continuing a value, '#' and ';' comments.
func parseINI(f ConfigFile) (*parsedFile, error) {
	pf := &parsedFile{name: f.Name, sections: map[string]map[string][]string{}, lines: map[string]int{}}
	section := ""
	var key string
	var value []string
	keyLine := 0
	flush := func() {
		if key == "" {
			return
		}
		s := pf.sections[section]
		s[key] = append(s[key], strings.Join(value, "\n"))
		pf.lines[section+"\x00"+key] = keyLine
		key, value = "", nil
	}
	perr := func(line int, msg, text string) error {
		return &ConfigError{File: f.Name, Line: line, Reason: fmt.Sprintf("%s: %s", msg, pyQuote(text))}
	}
	lines := strings.Split(strings.ReplaceAll(string(f.Data), "\r\n", "\n"), "\n")
	for i, line := range lines {
		n := i + 1
		line = strings.TrimRight(line, " \t\r\n\v\f")
		if line == "" {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if key == "" {
				return nil, perr(n, "Unexpected continuation line", line)
			}
			value = append(value, strings.TrimLeft(line, " \t\r\n\v\f"))
			continue
		}
		flush()
		switch {
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				return nil, perr(n, "Invalid section (must end with ])", line)
			}
			if len(line) <= 2 {
				return nil, perr(n, "Empty section name", line)
			}
			section = line[1 : len(line)-1]
			if _, ok := pf.sections[section]; !ok {
				pf.sections[section] = map[string][]string{}
				pf.order = append(pf.order, section)
			}
		case line[0] == '#' || line[0] == ';':
		default:
			colon, equal := strings.IndexByte(line, ':'), strings.IndexByte(line, '=')
			if colon < 0 && equal < 0 {
				return nil, perr(n, "No ':' or '=' found in assignment", line)
			}
			var k, v string
			if colon < 0 || (equal >= 0 && equal < colon) {
				k, v = line[:equal], line[equal+1:]
			} else {
				k, v = line[:colon], line[colon+1:]
			}
			v = strings.TrimSpace(v)
			if v != "" && v[0] == v[len(v)-1] && (v[0] == '"' || v[0] == '\'') {
				if len(v) >= 2 {
					v = v[1 : len(v)-1]
				} else {
					v = "" // Python's value[1:-1] of a lone quote
				}
			}
			k = strings.TrimSpace(k)
			if k == "" {
				return nil, perr(n, "Key cannot be empty", line)
			}
			if section == "" {
				return nil, &ConfigError{File: f.Name, Line: n, Reason: "Section must be started before assignment"}
			}
			key, value, keyLine = k, []string{v}, n
		}
	}
	flush()
	return pf, nil
}

// normalizeGroup is oslo.config's _normalize_group_name: DEFAULT stays,
// other section names are compared in lower case.
func normalizeGroup(g string) string {
	if g == GroupDefault {
		return g
	}
	return strings.ToLower(g)
}

// lookup finds the raw values of (group, name) or its deprecated names,
// oslo.config's way: the last file first, within a file the current name
// before the deprecated ones; exact section names first, then normalized.
func lookup(files []*parsedFile, o *option) ([]string, string, int, bool) {
	names := append([][2]string{{o.group, o.name}}, o.deprecated...)
	for _, normalized := range []bool{false, true} {
		for i := len(files) - 1; i >= 0; i-- {
			f := files[i]
			for _, n := range names {
				for sec, kv := range f.sections {
					match := sec == n[0]
					if normalized {
						match = normalizeGroup(sec) == normalizeGroup(n[0])
					}
					if !match {
						continue
					}
					if vals, ok := kv[n[1]]; ok {
						return vals, f.name, f.lines[sec+"\x00"+n[1]], true
					}
				}
			}
		}
	}
	return nil, "", 0, false
}

var substRE = regexp.MustCompile(`\$(?:(\$)|([_a-zA-Z][._a-zA-Z0-9]*)|\{([_a-zA-Z][._a-zA-Z0-9]*)\})`)

// ParseConfig reads oslo INI files (later files win) into a Config that
// starts from DefaultConfig(hostname). It applies oslo.config's rules to
// the options of Config: types, choices, bounds, deprecated names and
// groups, $name substitution. Sections it does not know are ignored (a
// nova.conf holds many). Stricter than oslo.config, an option name that is
// not an option of the zmq driver inside [oslo_messaging_zmq],
// [matchmaker_redis] or [zmq_proxy_opts] is an error (oslo.config ignores
// it silently; here it is most likely a typo), and so is an empty value for
// an integer option (oslo.config makes it None).
func ParseConfig(hostname string, files ...ConfigFile) (*Config, error) {
	parsed := make([]*parsedFile, 0, len(files))
	for _, f := range files {
		pf, err := parseINI(f)
		if err != nil {
			return nil, err
		}
		for _, sec := range pf.order {
			g := normalizeGroup(sec)
			if g != GroupZMQ && g != GroupMatchmakerRedis && g != GroupZMQProxy {
				continue
			}
			for k := range pf.sections[sec] {
				if findOption(g, k) == nil {
					return nil, &ConfigError{File: f.Name, Line: pf.lines[sec+"\x00"+k], Section: sec, Option: k,
						Reason: "no such option " + k + " in group [" + g + "]"}
				}
			}
		}
		parsed = append(parsed, pf)
	}
	c := DefaultConfig(hostname)
	resolving := map[*option]bool{}
	var resolve func(o *option) error
	var subst func(o *option) func(string) (string, error)
	subst = func(o *option) func(string) (string, error) {
		return func(raw string) (string, error) {
			raw = strings.ReplaceAll(raw, `\$`, "$$")
			var ferr error
			out := substRE.ReplaceAllStringFunc(raw, func(m string) string {
				sm := substRE.FindStringSubmatch(m)
				if sm[1] != "" {
					return "$"
				}
				ref := sm[2] + sm[3]
				group, name := o.group, ref
				if g, n, ok := strings.Cut(ref, "."); ok {
					group, name = g, n
				}
				target := findOption(group, name)
				if target == nil {
					target = findOption(GroupDefault, ref)
				}
				if target == nil {
					ferr = &ConfigError{Section: o.group, Option: o.name, Value: raw, Reason: "no such option to substitute: " + ref}
					return m
				}
				if err := resolve(target); err != nil {
					ferr = err
					return m
				}
				return target.format(c)
			})
			return out, ferr
		}
	}
	done := map[*option]bool{}
	resolve = func(o *option) error {
		if done[o] {
			return nil
		}
		if resolving[o] {
			return &ConfigError{Section: o.group, Option: o.name, Reason: "circular $ substitution"}
		}
		resolving[o] = true
		defer delete(resolving, o)
		vals, file, line, ok := lookup(parsed, o)
		if ok {
			if err := o.set(c, vals[len(vals)-1], subst(o)); err != nil {
				if ce, isCE := err.(*ConfigError); isCE && ce.File == "" {
					ce.File, ce.Line = file, line
				}
				return err
			}
		}
		done[o] = true
		return nil
	}
	for i := range options {
		if err := resolve(&options[i]); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// ApplyURLQuery overrides [oslo_messaging_zmq] options with the transport
// URL's query parameters, converted with each option's type, as the
// reference's ConfigOptsProxy does; a parameter that names no option of the
// group is an error, as it makes the Python driver fail to load.
func (c *Config) ApplyURLQuery(u *TransportURL) error {
	for _, q := range u.Query {
		o := findOption(GroupZMQ, q.Name)
		if o == nil {
			return &ConfigError{Section: GroupZMQ, Option: q.Name, Value: q.Value,
				Reason: "no such option " + q.Name + " in group [" + GroupZMQ + "]"}
		}
		if err := o.set(c, q.Value, nil); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the relations between options that oslo leaves to fail
// at run time.
func (c *Config) Validate() error {
	z := c.ZMQ
	if z.RPCZMQMinPort >= z.RPCZMQMaxPort {
		return &ConfigError{Section: GroupZMQ, Option: "rpc_zmq_min_port",
			Reason: fmt.Sprintf("must be below rpc_zmq_max_port (%d)", z.RPCZMQMaxPort)}
	}
	if z.ZMQTargetExpire > 0 && z.ZMQTargetUpdate >= z.ZMQTargetExpire {
		return &ConfigError{Section: GroupZMQ, Option: "zmq_target_update",
			Reason: fmt.Sprintf("must be below zmq_target_expire (%d) or records expire between updates", z.ZMQTargetExpire)}
	}
	if z.RPCZMQHost == "" {
		return &ConfigError{Section: GroupZMQ, Option: "rpc_zmq_host", Reason: "must not be empty"}
	}
	if c.Default.RPCResponseTimeout <= 0 {
		return &ConfigError{Section: GroupDefault, Option: "rpc_response_timeout", Reason: "must be positive"}
	}
	return nil
}
