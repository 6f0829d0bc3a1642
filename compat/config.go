package compat

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"strconv"
	"strings"
)

// Config is every option the zmq driver, its matchmaker and its proxy
// read, and those of the rabbit driver and the notifier of oslo.messaging
// 18.3.1 ([oslo_messaging_rabbit], [oslo_messaging_notifications]), with
// oslo's names, types, defaults and choices.
type Config struct {
	Default         DefaultOptions
	ZMQ             ZMQOptions
	MatchmakerRedis MatchmakerRedisOptions
	ZMQProxy        ZMQProxyOptions
	Rabbit          RabbitOptions
	Notifications   NotificationsOptions

	// transportURLNone is true while transport_url is Python's None (its
	// default) rather than a string, empty or not, read from a file.
	transportURLNone bool
}

// DefaultConfig returns the reference's defaults. hostname stands for
// Python's socket.gethostname(), the default of [oslo_messaging_zmq]
// rpc_zmq_host and of [zmq_proxy_opts] host: compat does no I/O, so the
// caller supplies it (os.Hostname()).
func DefaultConfig(hostname string) *Config {
	c := &Config{transportURLNone: true}
	for _, o := range options {
		def := o.def
		if o.hostDefault {
			def = hostname
		}
		if o.progDefault {
			def = ProgramName()
		}
		var v pyValue
		switch {
		case o.noneDefault:
			v = pyValue{none: true}
		case o.kind == kindMulti:
			v = pyValue{kind: kindMulti, list: []string{}}
		default:
			var msg string
			if v, msg = o.convert(def); msg != "" {
				panic("compat: bad default for " + o.name + ": " + msg)
			}
		}
		if err := o.store(c, v, nil); err != nil {
			panic("compat: bad default for " + o.name + ": " + err.Error())
		}
	}
	return c
}

// ConfigFile is one oslo INI file's name and contents.
type ConfigFile struct {
	Name string
	Data []byte
}

// LoadConfig reads one INI file from r (named "<config>" in errors) as
// ParseConfig does. compat does no I/O of its own: r is the caller's.
func LoadConfig(hostname string, r io.Reader) (*Config, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, &ConfigError{File: "<config>", Reason: err.Error()}
	}
	return ParseConfig(hostname, ConfigFile{Name: "<config>", Data: b})
}

// LoadConfigFiles reads the files at paths with readFile (os.ReadFile, or
// an fs.FS's ReadFile: compat opens nothing itself) and loads them as
// ParseConfig does, later files winning. As with oslo.config's
// default_config_files, missing files (fs.ErrNotExist) are reported
// together after the others have been parsed (ConfigFilesNotFoundError),
// then unreadable ones (fs.ErrPermission, ConfigFilesPermissionDeniedError).
func LoadConfigFiles(hostname string, readFile func(path string) ([]byte, error), paths ...string) (*Config, error) {
	var files []ConfigFile
	var missing, denied []string
	for _, p := range paths {
		b, err := readFile(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, p)
		case errors.Is(err, fs.ErrPermission):
			denied = append(denied, p)
		case err != nil:
			return nil, &ConfigError{File: p, Reason: err.Error()}
		default:
			if _, err := parseINI(p, b); err != nil {
				return nil, err
			}
			files = append(files, ConfigFile{Name: p, Data: b})
		}
	}
	if len(missing) > 0 {
		msg := "Failed to find some config files: " + strings.Join(missing, ",")
		return nil, &ConfigError{File: missing[0], Reason: msg, Class: "ConfigFilesNotFoundError", Message: msg}
	}
	if len(denied) > 0 {
		msg := "Failed to open some config files: " + strings.Join(denied, ",")
		return nil, &ConfigError{File: denied[0], Reason: msg, Class: "ConfigFilesPermissionDeniedError", Message: msg}
	}
	return ParseConfig(hostname, files...)
}

// ParseConfig loads oslo INI files (later files win) into a Config that
// starts from DefaultConfig(hostname), with oslo.config 9.0.0's rules and
// messages: the INI syntax of its parser; section names other than DEFAULT
// compared in lower case; an option found under its name or a deprecated
// name or group, the last file first and, within a file, the current name
// first; $name and ${group.name} substitution (\$ and $$ escape a dollar);
// the option's type, choices and bounds; and, for an invalid value, the
// error of the first option in Options() order. Sections it does not know
// are ignored, as a nova.conf holds many.
//
// goslo is stricter than oslo.config in four cases, reported after
// everything oslo.config checks (a *ConfigError with Class ""): an option
// name that is not an option of the driver inside [oslo_messaging_zmq],
// [matchmaker_redis] or [zmq_proxy_opts] (oslo.config ignores it; here it is
// most likely a typo); an empty integer value (oslo.config makes it None,
// which only rpc_zmq_topic_backlog can hold here); an integer beyond a
// Go int; and a [zmq_proxy_opts] port (an IntOpt) outside 0..65535. With such an error the returned Config is not nil: it holds what
// oslo.config loads (a None or out-of-range integer as 0), for a caller
// that wants oslo's leniency.
//
// Not reproduced: values from the environment (OS_<GROUP>__<NAME>) and
// from command-line options, [DEFAULT] config_source, and $config_file,
// $config_dir and $config_source in values.
func ParseConfig(hostname string, files ...ConfigFile) (*Config, error) {
	r := &resolver{sectionsToFile: map[string]string{}, cache: map[resolveKey]pyValue{}, active: map[resolveKey]bool{}, hostname: hostname}
	for _, f := range files {
		pf, err := parseINI(f.Name, f.Data)
		if err != nil {
			return nil, err
		}
		for s := range pf.sections {
			r.sectionsToFile[s] = f.Name
		}
		r.files = append(r.files, pf)
	}
	c := DefaultConfig(hostname)
	var strict *ConfigError
	for _, o := range options {
		v, err := r.get(o, o.group)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				return nil, err
			}
			if o.group == GroupDefault && ce.Class != "ValueError" && ce.Class != "ConfigFileValueError" {
				// ConfigOpts.__getattr__, which reads [DEFAULT] options,
				// turns every other exception into NoSuchOptError.
				msg := "no such option " + o.name + " in group [DEFAULT]"
				return nil, &ConfigError{File: ce.File, Section: GroupDefault, Option: o.name, Value: ce.Value,
					Reason: ce.Reason, Class: "NoSuchOptError", Message: msg}
			}
			return nil, err
		}
		if err := o.store(c, v, r.where(o)); err != nil && strict == nil {
			strict = err
		}
	}
	for _, f := range r.files {
		for _, k := range f.keys {
			if strict != nil {
				break
			}
			if !registeredGroups[k.section] || findOption(k.section, k.key) != nil {
				continue
			}
			strict = &ConfigError{File: f.name, Line: k.line, Section: k.rawSection, Option: k.key,
				Reason: fmt.Sprintf("no such option %s in group [%s] (oslo.config would ignore it)", k.key, k.section)}
		}
	}
	if strict != nil {
		return c, strict
	}
	return c, nil
}

// pyValue is an option value as Python holds it.
type pyValue struct {
	none bool
	s    string
	n    *big.Int
	b    bool
	list []string
	f    float64
	kind optKind
}

// str is Python's str() of the value, as $ substitution writes it.
func (v pyValue) str() string {
	if v.none {
		return ""
	}
	switch v.kind {
	case kindInt:
		return v.n.String()
	case kindBool:
		if v.b {
			return "True"
		}
		return "False"
	case kindFloat:
		return pyFloatStr(v.f)
	case kindList, kindMulti:
		q := make([]string, len(v.list))
		for i, s := range v.list {
			q[i] = pyRepr(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	return v.s
}

// convert is the option's oslo.config type applied to a string (types
// String with choices, Integer/Port with bounds, Boolean, List of
// String); the second result is the ValueError message.
func (o *option) convert(raw string) (pyValue, string) {
	v := pyValue{kind: o.kind}
	switch o.kind {
	case kindStr:
		if o.choices != nil {
			found := false
			for _, c := range o.choices {
				found = found || c == raw
			}
			if !found {
				return v, fmt.Sprintf("Valid values are [%s], but found %s", strings.Join(o.choices, ", "), pyRepr(raw))
			}
		}
		v.s = raw
	case kindInt:
		if pyStrip(raw) == "" {
			return pyValue{none: true, kind: kindInt}, ""
		}
		n, err := PyIntStr(raw)
		if err != nil {
			return v, err.Error()
		}
		if o.min != nil && n.Cmp(big.NewInt(*o.min)) < 0 {
			return v, "Should be greater than or equal to " + strconv.FormatInt(*o.min, 10)
		}
		if o.max != nil && n.Cmp(big.NewInt(*o.max)) > 0 {
			return v, "Should be less than or equal to " + strconv.FormatInt(*o.max, 10)
		}
		v.n = n
	case kindBool:
		switch asciiLower(raw) {
		case "true", "1", "on", "yes":
			v.b = true
		case "false", "0", "off", "no":
		default:
			return v, "Unexpected boolean value " + pyRepr(raw)
		}
	case kindFloat:
		if pyStrip(raw) == "" {
			return pyValue{none: true, kind: kindFloat}, ""
		}
		f, ok := pyFloat(raw)
		if !ok {
			return v, "could not convert string to float: " + pyRepr(raw)
		}
		if o.fmin != nil && f < *o.fmin {
			return v, "Should be greater than or equal to " + pyFloatStr(*o.fmin)
		}
		if o.fmax != nil && f > *o.fmax {
			return v, "Should be less than or equal to " + pyFloatStr(*o.fmax)
		}
		v.f = f
	case kindMulti:
		v.list = []string{raw}
	case kindList:
		s := strings.TrimRight(pyStrip(raw), ",")
		v.list = []string{}
		if s != "" {
			for _, item := range strings.Split(s, ",") {
				v.list = append(v.list, pyStrip(item))
			}
		}
	}
	return v, ""
}

// asciiLower lower-cases ASCII letters only: no other character lowers to
// a letter of a boolean word in Python.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// store writes a value into the option's field. An error is goslo being
// stricter than Python (a None or huge integer); at marks where the value
// came from.
func (o *option) store(c *Config, v pyValue, at *ConfigError) *ConfigError {
	strict := func(reason string) *ConfigError {
		e := &ConfigError{Section: o.group, Option: o.name, Value: v.str(), Reason: reason}
		if at != nil {
			e.File, e.Section = at.File, at.Section
		}
		return e
	}
	switch p := o.field(c).(type) {
	case *string:
		*p = v.s
		if o.name == "transport_url" && o.group == GroupDefault {
			c.transportURLNone = v.none
		}
	case *bool:
		*p = v.b
	case *float64:
		if v.none {
			*p = 0
			return strict("empty value: oslo.config reads it as None, which this option cannot hold")
		}
		*p = v.f
	case *[]string:
		*p = append([]string{}, v.list...)
	case **int:
		if v.none {
			*p = nil
			return nil
		}
		if !v.n.IsInt64() || v.n.Int64() != int64(int(v.n.Int64())) {
			return strict("integer beyond a Go int (Python accepts it)")
		}
		n := int(v.n.Int64())
		*p = &n
	case *int:
		if v.none {
			*p = 0
			return strict("empty value: oslo.config reads it as None, which this option cannot hold")
		}
		if !v.n.IsInt64() || v.n.Int64() != int64(int(v.n.Int64())) {
			return strict("integer beyond a Go int (Python accepts it)")
		}
		*p = int(v.n.Int64())
		if o.port && (*p < 0 || *p > 65535) {
			return strict(portRangeMsg)
		}
	}
	return nil
}

type resolveKey struct {
	o   *option
	ctx string
}

// resolver is oslo.config's lookup of option values in parsed files.
type resolver struct {
	files          []*iniFile
	sectionsToFile map[string]string // section as written → last file holding it
	hostname       string
	cache          map[resolveKey]pyValue
	active         map[resolveKey]bool
}

// where tells the file and section a top-level value came from.
func (r *resolver) where(o *option) *ConfigError {
	for i := len(r.files) - 1; i >= 0; i-- {
		for _, n := range lookupNames(o, o.group) {
			if _, ok := r.files[i].normalized[normalizeGroup(n[0])][n[1]]; ok {
				return &ConfigError{File: r.files[i].name, Section: n[0]}
			}
		}
	}
	return nil
}

// lookupNames is Opt._get_from_namespace's list of (group, name) pairs for
// an option read in the context of group ctx.
func lookupNames(o *option, ctx string) [][2]string {
	names := [][2]string{{ctx, o.name}}
	for _, d := range o.deprecated {
		g, n := d[0], d[1]
		if g == "" {
			g = ctx
		}
		if n == "" {
			n = o.name
		}
		names = append(names, [2]string{g, n})
	}
	return names
}

// get is ConfigOpts._do_get for option o looked up in group ctx (which
// differs from o.group only when a $name reaches o by a deprecated name).
func (r *resolver) get(o *option, ctx string) (pyValue, error) {
	key := resolveKey{o, ctx}
	if v, ok := r.cache[key]; ok {
		return v, nil
	}
	if r.active[key] {
		msg := "maximum recursion depth exceeded while calling a Python object"
		return pyValue{}, &ConfigError{Section: o.group, Option: o.name, Reason: "circular $ substitution (" + msg + ")",
			Class: "RecursionError", Message: msg}
	}
	r.active[key] = true
	defer delete(r.active, key)

	if o.kind == kindMulti {
		// MultiStrOpt: every value of every file, earlier files first.
		v := pyValue{kind: kindMulti, list: []string{}}
		for _, f := range r.files {
			for _, n := range lookupNames(o, ctx) {
				for _, raw := range f.normalized[normalizeGroup(n[0])][n[1]] {
					s, err := r.substitute(raw, ctx)
					if err != nil {
						return pyValue{}, err
					}
					v.list = append(v.list, s)
				}
			}
		}
		r.cache[key] = v
		return v, nil
	}

	var (
		raw     string
		found   bool
		file    string
		section string
	)
search:
	for i := len(r.files) - 1; i >= 0; i-- {
		for _, n := range lookupNames(o, ctx) {
			sec := normalizeGroup(n[0])
			if vals, ok := r.files[i].normalized[sec][n[1]]; ok {
				raw, found, file, section = vals[len(vals)-1], true, r.files[i].name, sec
				break search
			}
		}
	}
	var v pyValue
	switch {
	case found:
		s, err := r.substitute(raw, ctx)
		if err == nil {
			var msg string
			if v, msg = o.convert(s); msg != "" {
				err = &ConfigError{Class: "ValueError", Message: msg, Reason: msg}
			}
		}
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || (ce.Class != "ValueError" && ce.Class != "ConfigFileValueError") {
				return pyValue{}, err
			}
			loc := "LocationInfo(location=<Locations.user: (4, True)>, detail=" + pyRepr(r.sectionsToFile[section]) + ")"
			msg := "Value for option " + o.name + " from " + loc + " is not valid: " + ce.Message
			return pyValue{}, &ConfigError{File: file, Section: section, Option: o.name, Value: raw, Reason: ce.Reason,
				Class: "ConfigFileValueError", Message: msg}
		}
	case o.noneDefault:
		v = pyValue{none: true, kind: o.kind}
	default:
		def := o.def
		if o.hostDefault {
			def = r.hostname
		}
		if o.progDefault {
			def = ProgramName()
		}
		if o.isStrDefault {
			s, err := r.substitute(def, ctx)
			if err != nil {
				return pyValue{}, err
			}
			def = s
		}
		var msg string
		if v, msg = o.convert(def); msg != "" {
			return pyValue{}, &ConfigError{Section: o.group, Option: o.name, Value: def, Reason: msg, Class: "ValueError", Message: msg}
		}
	}
	r.cache[key] = v
	return v, nil
}

// substitute is ConfigOpts._substitute: string.Template.safe_substitute
// with oslo's identifier pattern, over the option values (ctx is the group
// of the option being read; "" never occurs, DEFAULT is GroupDefault).
func (r *resolver) substitute(s, ctx string) (string, error) {
	if strings.IndexByte(s, '$') < 0 {
		return s, nil
	}
	s = strings.ReplaceAll(s, `\$`, "$$")
	var out strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' {
			j := strings.IndexByte(s[i:], '$')
			if j < 0 {
				j = len(s) - i
			}
			out.WriteString(s[i : i+j])
			i += j
			continue
		}
		rest := s[i+1:]
		switch {
		case strings.HasPrefix(rest, "$"):
			out.WriteByte('$')
			i += 2
			continue
		case identLen(rest) > 0:
			n := identLen(rest)
			v, err := r.subLookup(rest[:n], ctx)
			if err != nil {
				return "", err
			}
			out.WriteString(v)
			i += 1 + n
			continue
		case strings.HasPrefix(rest, "{"):
			if n := identLen(rest[1:]); n > 0 && strings.HasPrefix(rest[1+n:], "}") {
				v, err := r.subLookup(rest[1:1+n], ctx)
				if err != nil {
					return "", err
				}
				out.WriteString(v)
				i += 1 + n + 2
				continue
			}
		}
		out.WriteByte('$')
		i++
	}
	return out.String(), nil
}

// identLen is the length of the identifier at the start of s, matched as
// (?i)[_a-z][._a-z0-9]* by Python's re (which folds a few non-ASCII
// letters onto ASCII ones).
func identLen(s string) int {
	n := 0
	for i, r := range s {
		ok := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') ||
			r == 0x130 || r == 0x131 || r == 0x17f || r == 0x212a
		if i > 0 {
			ok = ok || r == '.' || (r >= '0' && r <= '9')
		}
		if !ok {
			return n
		}
		n = i + len(string(r))
	}
	return n
}

// subLookup is ConfigOpts.StrSubWrapper.__getitem__: "group.name" or a name
// of the current group, then the whole key in DEFAULT.
func (r *resolver) subLookup(key, ctx string) (string, error) {
	var v pyValue
	var isGroup bool
	var err error
	if g, name, ok := strings.Cut(key, "."); ok {
		v, isGroup, err = r.confGet(name, g, true)
	} else {
		v, isGroup, err = r.confGet(key, ctx, false)
	}
	if ce, ok := err.(*ConfigError); ok && ce.Class == "NoSuchOptError" {
		v, isGroup, err = r.confGet(key, GroupDefault, false)
	}
	if err != nil {
		return "", err
	}
	if isGroup {
		msg := "template substitution error: substituting group " + key + " not supported"
		return "", &ConfigError{Reason: msg, Class: "TemplateSubstitutionError", Message: msg}
	}
	return v.str(), nil
}

// confGet is ConfigOpts._get(name, group): group is GroupDefault for None;
// explicit is true for a group named in "group.name", which must be a
// registered group (DEFAULT is none).
func (r *resolver) confGet(name, group string, explicit bool) (pyValue, bool, error) {
	if !explicit && group == GroupDefault && registeredGroups[name] {
		return pyValue{}, true, nil
	}
	if explicit && !registeredGroups[group] {
		msg := "no such group [" + group + "]"
		return pyValue{}, false, &ConfigError{Reason: msg, Class: "NoSuchGroupError", Message: msg}
	}
	o := findOption(group, name)
	if o == nil {
		o = deprecatedNames[group][name]
	}
	if o == nil {
		msg := "no such option " + name + " in group [" + group + "]"
		return pyValue{}, false, &ConfigError{Reason: msg, Class: "NoSuchOptError", Message: msg}
	}
	v, err := r.get(o, group)
	return v, false, err
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
		if o.name == "transport_url" && o.group == GroupDefault && c.transportURLNone && *p == "" {
			return nil, true
		}
		return *p, true
	case *bool:
		return *p, true
	case *float64:
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

// ApplyURLQuery overrides [oslo_messaging_zmq] options with the transport
// URL's query parameters, as the driver's ConfigOptsProxy does: each name
// must be an option of the group (else NoSuchOptError), and its value is
// converted with the option's type, without $ substitution (else the
// type's ValueError); the first fault in query order is reported, and c is
// left unchanged. An integer value of only spaces is None in Python, which
// only rpc_zmq_topic_backlog holds here: for another option that is a
// goslo-only error (Class ""), reported after any Python one, with the
// other parameters applied and the option set to 0. ([zmq_proxy_opts] url
// is not applied this way: the proxy drops the URL-aware wrapper.)
func (c *Config) ApplyURLQuery(u *TransportURL) error {
	return c.applyURLQuery(GroupZMQ, u)
}

// ApplyRabbitURLQuery overrides [oslo_messaging_rabbit] options with the
// transport URL's query parameters as the rabbit driver's ConfigOptsProxy
// does (rabbit-wire.md §2.1), with the rules of ApplyURLQuery: an unknown
// name is a NoSuchOptError, a value is converted with the option's type
// (repeated keys arrive comma-joined from ParseTransportURL, which is what
// a list option splits), and c is unchanged on error. For example
// "rabbit://h/?amqp_durable_queues=true" makes every topic queue durable.
func (c *Config) ApplyRabbitURLQuery(u *TransportURL) error {
	return c.applyURLQuery(GroupRabbit, u)
}

func (c *Config) applyURLQuery(group string, u *TransportURL) error {
	next := *c
	var strict *ConfigError
	for _, q := range u.Query {
		o := findOption(group, q.Name)
		if o == nil {
			msg := "no such option " + q.Name + " in group [" + group + "]"
			return &ConfigError{Section: group, Option: q.Name, Value: q.Value, Reason: msg,
				Class: "NoSuchOptError", Message: msg}
		}
		v, msg := o.convert(q.Value)
		if msg != "" {
			return &ConfigError{Section: group, Option: q.Name, Value: q.Value, Reason: msg,
				Class: "ValueError", Message: msg}
		}
		if err := o.store(&next, v, nil); err != nil && strict == nil {
			err.Reason += " (from the transport URL)"
			strict = err
		}
	}
	*c = next
	if strict != nil {
		return strict
	}
	return nil
}

// TransportURL is TransportURL.parse(conf, url): url, else [DEFAULT]
// transport_url; when both are empty, a URL with no hosts whose transport
// is [DEFAULT] rpc_backend (deprecated; "rabbit" by default).
func (c *Config) TransportURL(url string) (*TransportURL, error) {
	if url == "" {
		url = c.Default.TransportURL
	}
	if url == "" {
		return &TransportURL{Transport: c.Default.RPCBackend}, nil
	}
	return ParseTransportURL(url)
}

// Validate checks every option against its type's choices and bounds
// (values set from Go bypass the loader's checks), then the relations
// between options that oslo leaves to fail at run time: a non-empty
// rpc_zmq_host, a port range with room, zmq_target_update below a positive
// zmq_target_expire, and a positive rpc_response_timeout.
func (c *Config) Validate() error {
	for _, o := range options {
		var msg string
		switch p := o.field(c).(type) {
		case *string:
			if o.choices != nil {
				_, msg = o.convert(*p)
			}
		case *int:
			_, msg = o.convert(strconv.Itoa(*p))
			if msg == "" && o.port && (*p < 0 || *p > 65535) {
				return &ConfigError{Section: o.group, Option: o.name, Value: strconv.Itoa(*p), Reason: portRangeMsg}
			}
		}
		if msg != "" {
			v, _ := c.Value(o.group, o.name)
			return &ConfigError{Section: o.group, Option: o.name, Value: fmt.Sprint(v), Reason: msg, Class: "ValueError", Message: msg}
		}
	}
	z := c.ZMQ
	if z.RPCZMQHost == "" {
		return &ConfigError{Section: GroupZMQ, Option: "rpc_zmq_host", Reason: "must not be empty"}
	}
	if z.RPCZMQMinPort >= z.RPCZMQMaxPort {
		return &ConfigError{Section: GroupZMQ, Option: "rpc_zmq_min_port", Value: strconv.Itoa(z.RPCZMQMinPort),
			Reason: fmt.Sprintf("must be below rpc_zmq_max_port (%d)", z.RPCZMQMaxPort)}
	}
	if z.ZMQTargetExpire > 0 && z.ZMQTargetUpdate >= z.ZMQTargetExpire {
		return &ConfigError{Section: GroupZMQ, Option: "zmq_target_update", Value: strconv.Itoa(z.ZMQTargetUpdate),
			Reason: fmt.Sprintf("must be below zmq_target_expire (%d) or records expire between updates", z.ZMQTargetExpire)}
	}
	if c.Default.ExecutorThreadPoolSize <= 0 {
		// futurist's ThreadPoolExecutor: "max_workers must be greater than 0".
		return &ConfigError{Section: GroupDefault, Option: "executor_thread_pool_size", Value: strconv.Itoa(c.Default.ExecutorThreadPoolSize),
			Reason: "must be positive (the number of requests a server handles at once)"}
	}
	if c.Default.RPCResponseTimeout <= 0 {
		return &ConfigError{Section: GroupDefault, Option: "rpc_response_timeout", Value: strconv.Itoa(c.Default.RPCResponseTimeout),
			Reason: "must be positive"}
	}
	return nil
}
