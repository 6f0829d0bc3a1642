package interop

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/internal/zmqwire"
)

// readCorpus reads a corpus file of testdata/compat: one entry per line,
// blank lines and lines starting with '#' skipped, a line starting with '"'
// read as a Go-quoted string.
func readCorpus(t *testing.T, rel string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(RepoRoot(), "testdata", "compat", rel))
	require.NoError(t, err)
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, `"`) {
			u, err := strconv.Unquote(l)
			require.NoError(t, err, l)
			l = u
		}
		out = append(out, l)
	}
	require.NoError(t, sc.Err())
	return out
}

// canonical re-encodes a JSON value with sorted keys and plain numbers.
func canonical(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var x any
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	require.NoError(t, d.Decode(&x))
	b, err = json.Marshal(x)
	require.NoError(t, err)
	return string(b)
}

func optString(s string, has bool) any {
	if !has {
		return nil
	}
	return s
}

// goURL is compat.ParseTransportURL's answer in the shape of the url_parse
// peer operation. goOnly is true for a URL goslo refuses and Python parses.
func goURL(raw string) (out map[string]any, goOnly bool) {
	u, err := compat.ParseTransportURL(raw)
	if err != nil {
		var ue *compat.URLError
		if !errors.As(err, &ue) {
			return map[string]any{"untyped error": err.Error()}, false
		}
		if ue.Class == "" {
			return nil, true
		}
		e := map[string]any{"class": ue.Class, "message": ue.Reason, "url": nil}
		if ue.Class == "InvalidTransportURL" {
			e["url"] = ue.URL
		}
		return map[string]any{"error": e}, false
	}
	hosts := []any{}
	for _, h := range u.Hosts {
		var port any
		if h.HasPort {
			port = h.Port
		}
		hosts = append(hosts, map[string]any{
			"hostname": optString(h.Hostname, h.HasHostname), "port": port,
			"username": optString(h.Username, h.HasUsername), "password": optString(h.Password, h.HasPassword)})
	}
	query := []any{}
	for _, q := range u.Query {
		query = append(query, []string{q.Name, q.Value})
	}
	return map[string]any{"transport": u.Transport, "virtual_host": optString(u.VirtualHost, u.HasVirtualHost),
		"hosts": hosts, "query": query, "str": u.String()}, false
}

// modernURLDifferences are the URLs the modern oslo.messaging (18.x, host
// parsing by oslo_utils.netutils.parse_host_port, IPv6 brackets only around
// valid IPv6 addresses in str()) reads differently from 8.1.4. goslo
// follows 8.1.4; each difference is logged. The test fails when a listed
// URL no longer differs, or an unlisted one does.
var modernURLDifferences = map[string]string{
	"zmq+redis://[::1]:/":       "an empty port is None in 8.1.4, a ValueError in modern",
	"zmq+redis://host:":         "an empty port is None in 8.1.4, a ValueError in modern",
	"zmq://user:pass@[::1]:/vh": "an empty port is None in 8.1.4, a ValueError in modern",
	"zmq://[::1]:1:2":           "8.1.4 reads the port '1:2' (ValueError); modern takes the part between the first two ':' (port 1)",
	"zmq://::1":                 "8.1.4 splits host and port at the first ':' (port ':1', ValueError); modern keeps an unbracketed IPv6 host",
	"zmq://h:1:2":               "8.1.4 reads the port '1:2' (ValueError); modern keeps 'h:1:2' as the host, without port",
}

// goStricterURLs are URLs Python parses and goslo refuses.
var goStricterURLs = map[string]string{
	"zmq://h:99999999999999999999999": "a port beyond a Go int: Python's int is unbounded",
	"zmq+redis://host:-1":             "a port outside 1..65535: Python's int() takes any integer",
	"zmq+redis://host:0":              "a port outside 1..65535: Python's int() takes any integer",
}

// TestCompatURLs parses every URL of testdata/compat/urls.txt with oslo's
// TransportURL.parse in both environments and with
// compat.ParseTransportURL: fields, str(), or error class, message and url
// attribute must be those of 8.1.4.
func TestCompatURLs(t *testing.T) {
	urls := readCorpus(t, "urls.txt")
	require.GreaterOrEqual(t, len(urls), 40)
	old, modern := StartPeer(t, EnvZMQ814), StartPeer(t, EnvModern)
	var parsed, refused, stricter, differ int
	for _, raw := range urls {
		var py814, pyModern map[string]any
		require.NoError(t, old.Do("url_parse", map[string]any{"url": raw}, &py814), raw)
		require.NoError(t, modern.Do("url_parse", map[string]any{"url": raw}, &pyModern), raw)
		want, got := canonical(t, py814), ""
		goRes, goOnly := goURL(raw)
		switch {
		case goOnly:
			why, ok := goStricterURLs[raw]
			require.True(t, ok, "%q: goslo refuses a URL Python parses: %s", raw, want)
			_, pyErr := py814["error"]
			require.False(t, pyErr, raw)
			t.Logf("%q: goslo is stricter: %s", raw, why)
			stricter++
		default:
			got = canonical(t, goRes)
			require.Equal(t, want, got, "%q", raw)
			if _, isErr := py814["error"]; isErr {
				refused++
			} else {
				parsed++
				// What String writes parses back to the same string.
				u, err := compat.ParseTransportURL(raw)
				require.NoError(t, err)
				again, err := compat.ParseTransportURL(u.String())
				require.NoError(t, err, raw)
				require.Equal(t, u.String(), again.String(), raw)
			}
		}
		m := canonical(t, pyModern)
		why, listed := modernURLDifferences[raw]
		if m != want {
			require.True(t, listed, "%q: modern oslo.messaging differs from 8.1.4 and the difference is not listed:\n8.1.4:  %s\nmodern: %s", raw, want, m)
			t.Logf("%q: modern differs from 8.1.4 (%s); goslo follows 8.1.4\n8.1.4:  %s\nmodern: %s", raw, why, want, m)
			differ++
		} else {
			require.False(t, listed, "%q is listed as a modern difference but both releases agree", raw)
		}
	}
	t.Logf("URLs: %d: %d parsed identically (fields and str()), %d refused with the same class and message, %d refused by goslo only; %d read differently by the modern release",
		len(urls), parsed, refused, stricter, differ)
}

// TestCompatURLFormat builds TransportURLs field by field and compares
// (*TransportURL).String with str(TransportURL(...)) in both environments.
func TestCompatURLFormat(t *testing.T) {
	type host struct {
		Hostname *string `json:"hostname,omitempty"`
		Port     *int    `json:"port,omitempty"`
		Username *string `json:"username,omitempty"`
		Password *string `json:"password,omitempty"`
	}
	s := func(v string) *string { return &v }
	n := func(v int) *int { return &v }
	cases := []struct {
		transport, vhost string
		hasVhost         bool
		hosts            []host
		query            [][2]string
	}{
		{transport: "zmq"},
		{transport: "zmq+redis", hosts: []host{{Hostname: s("127.0.0.1"), Port: n(6379)}}},
		{transport: "zmq+redis", hosts: []host{{Hostname: s("h1"), Port: n(1)}, {Password: s("p w/:@"), Hostname: s("h2")}}},
		{transport: "zmq", hosts: []host{{Username: s("ü@:"), Password: s(""), Hostname: s("::1"), Port: n(5)}}},
		{transport: "zmq", hosts: []host{{Username: s(""), Port: n(0)}, {Port: n(-1)}}},
		{transport: "zmq", hosts: []host{{Hostname: s("fe80::1%eth0")}, {Hostname: s("a:b")}, {Hostname: s("")}}},
		{transport: "zmq+sentinel", vhost: "group/with slash?#%", hasVhost: true},
		{transport: "zmq", vhost: "", hasVhost: true},
		{transport: "zmq", vhost: "€", hasVhost: true, query: [][2]string{{"a b", "c+d"}, {"é", "x,y"}, {"", "~-_."}}},
		{transport: "rabbit", hosts: []host{{Username: s("guest"), Password: s("guest"), Hostname: s("localhost"), Port: n(5672)}}, vhost: "/", hasVhost: true},
	}
	for _, env := range []string{EnvZMQ814, EnvModern} {
		p := StartPeer(t, env)
		agree := 0
		for _, c := range cases {
			u := &compat.TransportURL{Transport: c.transport, VirtualHost: c.vhost, HasVirtualHost: c.hasVhost}
			hosts := []map[string]any{}
			for _, h := range c.hosts {
				th := compat.TransportHost{}
				m := map[string]any{}
				if h.Hostname != nil {
					th.Hostname, th.HasHostname, m["hostname"] = *h.Hostname, true, *h.Hostname
				}
				if h.Port != nil {
					th.Port, th.HasPort, m["port"] = *h.Port, true, *h.Port
				}
				if h.Username != nil {
					th.Username, th.HasUsername, m["username"] = *h.Username, true, *h.Username
				}
				if h.Password != nil {
					th.Password, th.HasPassword, m["password"] = *h.Password, true, *h.Password
				}
				u.Hosts = append(u.Hosts, th)
				hosts = append(hosts, m)
			}
			query := [][2]string{}
			for _, q := range c.query {
				u.Query = append(u.Query, compat.QueryParam{Name: q[0], Value: q[1]})
				query = append(query, q)
			}
			args := map[string]any{"transport": c.transport, "hosts": hosts, "query": query}
			if c.hasVhost {
				args["virtual_host"] = c.vhost
			}
			var py struct {
				Str string `json:"str"`
			}
			require.NoError(t, p.Do("url_format", args, &py))
			if env == EnvModern && py.Str != u.String() {
				// netutils.escape_ipv6 brackets only valid IPv6 addresses.
				t.Logf("%s: str() differs from 8.1.4: modern %q, goslo (8.1.4) %q", env, py.Str, u.String())
				require.Contains(t, u.String(), "[a:b]")
				continue
			}
			require.Equal(t, py.Str, u.String())
			agree++
		}
		t.Logf("%s: %d of %d formatted URLs identical", env, agree, len(cases))
	}
}

// versionPairs is the version table: (implemented, requested).
var versionPairs = [][2]string{
	{"1.0", "1.0"}, {"1.3", "1.0"}, {"1.3", "1.3"}, {"1.3", "1.4"}, {"1.3", "2.0"}, {"2.0", "1.0"},
	{"1.3", "1.3.0"}, {"1.3", "1.3.1"}, {"1.3.1", "1.3"}, {"1.3.2", "1.3.1"}, {"1.3.2", "1.3.3"},
	{"1.10", "1.9"}, {"1.9", "1.10"}, {"01.2", "1.2"}, {" 1.2", "1.2 "}, {"+1.2", "1.-0"},
	{"1_0.1", "10.1"}, {"1.0", "1"}, {"1", "1.0"}, {"1", "2"}, {"2", "1.5"}, {"1.0", ""},
	{"", "1.0"}, {"a.b", "1.0"}, {"1.0", "x.0"}, {"1.0", "1.x"}, {"1.5", "1.2.x"}, {"1.2", "1.2.x"},
	{"1.2.3.4", "1.2.3.9"}, {"1.0", "1..0"}, {"2.0", "2.0.0.0"}, {"99999999999999999999.1", "99999999999999999999.0"},
	{"1.0", "1.0."}, {"1.0.", "1.0"}, {"2.0", "2.5"}, {"3.1", "3.0.7"},
	{"١.٣", "1.2"}, {"１.０", "1.0"}, {"1.\u00a02\u3000", "1.2"}, {"1.2", "1.\x1c2"}, {"1.2", "1.2_"},
	{"1.2", "1.__2"}, {"1.2", "1.²"}, {"1.2", "1.\U00011f52"}, {"1.0", "1." + strings.Repeat("1", 4301)},
	{"1.0", "1.'x\""}, {"1.0", "1." + strings.Repeat("x", 300)}, {"1.0", "1.\u2028"}, {"1.0", "1.\x7f\u0085é"},
}

// TestCompatVersions runs the version table through version_is_compatible
// in both environments and compat.VersionIsCompatible: the same answers,
// the same exception classes and messages.
func TestCompatVersions(t *testing.T) {
	require.GreaterOrEqual(t, len(versionPairs), 30)
	for _, env := range []string{EnvZMQ814, EnvModern} {
		p := StartPeer(t, env)
		var yes, no, errs int
		for _, pr := range versionPairs {
			var py bool
			pyErr := p.Do("version_compatible", map[string]any{"imp": pr[0], "req": pr[1]}, &py)
			got, goErr := compat.VersionIsCompatible(pr[0], pr[1])
			if pyErr != nil {
				var pe *PyError
				require.True(t, errors.As(pyErr, &pe))
				var ve *compat.VersionError
				require.True(t, errors.As(goErr, &ve), "%q: python raised %s: %s; go gave %v", pr, pe.Type, pe.Message, got)
				require.ErrorIs(t, goErr, compat.ErrInvalidVersion)
				require.Equal(t, pe.Type, ve.PythonClass(), "%q", pr)
				require.Equal(t, pe.Message, ve.Reason, "%q", pr)
				errs++
				continue
			}
			require.NoError(t, goErr, "%q", pr)
			require.Equal(t, py, got, "%q", pr)
			if got {
				yes++
			} else {
				no++
			}
		}
		t.Logf("%s: %d version pairs identical: %d compatible, %d not, %d errors with the same class and message", env, len(versionPairs), yes, no, errs)
	}
}

var targetCases = []compat.Target{
	{}, {Topic: "t"}, {Server: "s"}, {Topic: "t", Server: "s"}, {Topic: "t", Fanout: true},
	{Topic: "t", Server: "s", Fanout: true}, {Fanout: true},
	{Exchange: "ex", Topic: "t", Namespace: "ns", Version: "1.2", Server: "s@b", LegacyNamespaces: []string{"old"}},
	{Exchange: "ex", Namespace: "ns", Version: "2.0", Fanout: true},
}

func pyTargetArgs(t compat.Target) map[string]any {
	m := map[string]any{}
	for k, v := range map[string]string{"exchange": t.Exchange, "topic": t.Topic, "namespace": t.Namespace, "version": t.Version, "server": t.Server} {
		if v != "" {
			m[k] = v
		}
	}
	if t.Fanout {
		m["fanout"] = true
	}
	if t.LegacyNamespaces != nil {
		m["legacy_namespaces"] = t.LegacyNamespaces
	}
	return m
}

// TestCompatTargets runs oslo's target checks (RPCClient.call and cast,
// Transport._send_notification, _listen, _listen_for_notifications) and
// compares Target.String and Target.Validate with them.
func TestCompatTargets(t *testing.T) {
	uses := map[string]compat.Use{"cast": compat.UseCast, "call": compat.UseCall, "notify": compat.UseNotify,
		"listen": compat.UseListen, "listen_notifications": compat.UseListenNotifications}
	for _, env := range []string{EnvZMQ814, EnvModern} {
		p := StartPeer(t, env)
		var valid, invalid int
		for _, tg := range targetCases {
			for name, use := range uses {
				var py struct {
					Repr  string `json:"repr"`
					Error *struct {
						Class   string `json:"class"`
						Message string `json:"message"`
					} `json:"error"`
				}
				require.NoError(t, p.Do("target_check", map[string]any{"target": pyTargetArgs(tg), "use": name}, &py))
				require.Equal(t, py.Repr, tg.String())
				err := tg.Validate(use)
				if py.Error == nil {
					require.NoError(t, err, "%s %s", tg, name)
					valid++
					continue
				}
				var te *compat.InvalidTargetError
				require.True(t, errors.As(err, &te), "%s %s: python raised %s", tg, name, py.Error.Message)
				require.ErrorIs(t, err, compat.ErrInvalidTarget)
				require.Equal(t, py.Error.Class, te.PythonClass())
				require.Equal(t, py.Error.Message, te.PythonMessage())
				invalid++
			}
		}
		t.Logf("%s: %d target checks identical: %d accepted, %d refused with the same message", env, valid+invalid, valid, invalid)
	}
}

// TestCompatZMQStrings computes every derived string with the 8.1.4 zmq
// driver's own code (zmq_address, the identity generators, the Redis
// matchmaker's keys and PUBLISHERS members, the notifier's topic) and with
// compat.
func TestCompatZMQStrings(t *testing.T) {
	p := StartPeer(t, EnvZMQ814)
	targets := []compat.Target{
		{Topic: "compute", Server: "node-1@lvm"}, {Topic: "compute", Server: "node-1"}, {Topic: "compute"},
		{Topic: "compute", Fanout: true}, {Topic: "compute", Server: "node-1@a@b", Fanout: true},
		{Topic: "notifications.info"}, {Topic: "t", Server: "@x"},
	}
	members := []string{"10.0.0.9:50003,10.0.0.9:50001", "a:1", "a:1,b:2,c:3", ",", ""}
	n := 0
	for i, tg := range targets {
		for _, lt := range []string{compat.Router, compat.Dealer} {
			member := members[i%len(members)]
			priority := []string{"INFO", "warn", "Error", "AUDIT"}[i%4]
			var py map[string]any
			require.NoError(t, p.Do("zmq_strings", map[string]any{"target": pyTargetArgs(tg), "host": "node-1.example", "uuid": "6f1d",
				"port": 49200, "priority": priority, "listener_type": lt, "pub": "10.0.0.9:50003", "frontend": "10.0.0.9:50001", "member": member}, &py))
			_, _, ok := compat.ParsePublisherRecord(member)
			var parts []any
			for _, s := range strings.Split(member, ",") {
				parts = append(parts, s)
			}
			pyPub := py["publishers"].([]any)[0].([]any)
			require.Equal(t, len(pyPub) == 2, ok, member)
			require.Equal(t, parts, pyPub, member)
			delete(py, "publishers")
			registered := []any{}
			for _, k := range compat.RegistrationKeys(lt, tg) {
				registered = append(registered, k)
			}
			want := map[string]any{
				"target_to_key":      compat.TargetToKey(tg),
				"target_key":         compat.TargetKey(lt, tg),
				"topic_key":          compat.TopicKey(lt, tg),
				"subscribe_filter":   string(zmqwire.SubscribeFilter(tg)),
				"host_port":          compat.HostPort("node-1.example", 49200),
				"tcp_address":        zmqwire.TCPAddress(compat.HostPort("node-1.example", 49200)),
				"client_identity":    zmqwire.ClientIdentity("node-1.example", "6f1d"),
				"server_identity":    zmqwire.ServerIdentity("node-1.example", tg, "6f1d"),
				"sub_identity":       zmqwire.SubIdentity("node-1.example", tg.Topic, "6f1d"),
				"proxy_identity":     zmqwire.ProxyIdentity("node-1.example", "6f1d"),
				"registered":         registered,
				"publisher_member":   compat.PublisherRecord("10.0.0.9:50003", "10.0.0.9:50001"),
				"lookup_keys":        []any{compat.TargetKey(lt, tg), compat.TargetKey(lt, tg)},
				"notification_topic": compat.NotificationTopic("notifications", priority),
			}
			require.Equal(t, canonical(t, want), canonical(t, py), "%s %s", tg, lt)
			n++
		}
	}
	t.Logf("zmq814: %d targets × listener types: every derived string identical (%d strings each)", n, 15)
}

// TestCompatUnicodeTables checks that the CPython character tables compat
// pins (testdata/compat/cpython_unicode.json, read by compat's unit tests)
// are those of the peers' interpreter.
func TestCompatUnicodeTables(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(RepoRoot(), "testdata", "compat", "cpython_unicode.json"))
	require.NoError(t, err)
	var golden map[string]any
	require.NoError(t, json.Unmarshal(b, &golden))
	for _, env := range []string{EnvZMQ814, EnvModern} {
		p := StartPeer(t, env)
		var py map[string]any
		require.NoError(t, p.Do("unicode_tables", nil, &py))
		require.Equal(t, canonical(t, golden), canonical(t, py), "%s: regenerate testdata/compat/cpython_unicode.json", env)
		t.Logf("%s: CPython %v, Unicode %v: %d decimal digit runs, %d printable ranges, %d NFKC-unsafe characters agree",
			env, py["python"], py["unidata_version"], len(py["decimal_zeros"].([]any)), len(py["printable"].([]any)), len(py["nfkc_unsafe"].([]any)))
	}
}
