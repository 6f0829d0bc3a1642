package compat

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseTransportURL(t *testing.T) {
	u, err := ParseTransportURL("zmq+sentinel://:pw@s1:26379,s2:26379/group?use_pub_sub=true&a=1&a=2")
	require.NoError(t, err)
	require.Equal(t, "zmq+sentinel", u.Transport)
	require.Equal(t, "zmq", u.Driver())
	require.Equal(t, "sentinel", u.Backend())
	require.Equal(t, "group", u.VirtualHost)
	require.True(t, u.HasVirtualHost)
	require.Equal(t, []TransportHost{
		{Hostname: "s1", HasHostname: true, Port: 26379, HasPort: true, Username: "", HasUsername: true, Password: "pw", HasPassword: true},
		{Hostname: "s2", HasHostname: true, Port: 26379, HasPort: true},
	}, u.Hosts)
	require.Equal(t, []QueryParam{{"use_pub_sub", "true"}, {"a", "1,2"}}, u.Query)
	v, ok := u.QueryValue("a")
	require.True(t, ok)
	require.Equal(t, "1,2", v)
	_, ok = u.QueryValue("b")
	require.False(t, ok)
	require.Equal(t, "zmq+sentinel://:pw@s1:26379,s2:26379/group?use_pub_sub=true&a=1%2C2", u.String())

	u, err = ParseTransportURL("ZMQ+Redis+X://h:,u@,:7")
	require.NoError(t, err)
	require.Equal(t, "zmq+redis+x", u.Transport)
	require.Equal(t, "redis+x", u.Backend())
	require.False(t, u.HasVirtualHost)
	require.Equal(t, []TransportHost{
		{Hostname: "h", HasHostname: true},
		{Username: "u", HasUsername: true},
		{HasHostname: true, Port: 7, HasPort: true}, // "" (not None): the port is split off after the None check
	}, u.Hosts)
	require.Equal(t, "zmq+redis+x://h,u@,:7/", u.String())

	// urllib accepts brackets around one IP address, after the last '@'.
	u, err = ParseTransportURL("zmq://h1:1,u@[fe80::1%25eth0]:6379")
	require.NoError(t, err)
	require.Equal(t, TransportHost{Hostname: "fe80::1%25eth0", HasHostname: true, Port: 6379, HasPort: true, Username: "u", HasUsername: true}, u.Hosts[1])
	require.Equal(t, "zmq://h1:1,u@[fe80::1%25eth0]:6379/", u.String())

	u, err = ParseTransportURL("zmq://us%C3%A9r:p%40ss@h:+0_1/v%20h/x;p?q=%E2%9C#frag")
	require.NoError(t, err)
	require.Equal(t, "usér", u.Hosts[0].Username)
	require.Equal(t, "p@ss", u.Hosts[0].Password)
	require.Equal(t, 1, u.Hosts[0].Port)
	require.Equal(t, "v h/x;p", u.VirtualHost)
	require.Equal(t, "\ufffd", u.Query[0].Value)
	require.Equal(t, "zmq://us%C3%A9r:p%40ss@h:1/v%20h/x%3Bp?q=%EF%BF%BD", u.String())

	u, err = ParseTransportURL("http://h/a/b;p/c;q")
	require.NoError(t, err)
	require.Equal(t, "a/b;p/c", u.VirtualHost, "http is one of urllib's uses_params schemes")

	u, err = ParseTransportURL(" \x01zmq://h\t:1\n/")
	require.NoError(t, err)
	require.Equal(t, "zmq://h:1/", u.String())

	for raw, want := range map[string][3]string{
		"noscheme":                     {"InvalidTransportURL", "No scheme specified", "noscheme"},
		"//h:1/x?#":                    {"InvalidTransportURL", "No scheme specified", "//h:1/x"},
		"///x?a#b":                     {"InvalidTransportURL", "No scheme specified", "/x?a#b"},
		"1zmq://h":                     {"InvalidTransportURL", "No scheme specified", "1zmq://h"},
		"p;x":                          {"InvalidTransportURL", "No scheme specified", "p;x"},
		"zmq://h:x":                    {"ValueError", "invalid literal for int() with base 10: 'x'", "zmq://h:x"},
		"zmq://h:1:2":                  {"ValueError", "invalid literal for int() with base 10: '1:2'", "zmq://h:1:2"},
		"zmq://[::1":                   {"ValueError", "Invalid IPv6 URL", "zmq://[::1"},
		"zmq://[::1,]":                 {"ValueError", "'::1,' does not appear to be an IPv4 or IPv6 address", "zmq://[::1,]"},
		"zmq://h1,[::1]":               {"ValueError", "Invalid IPv6 URL", "zmq://h1,[::1]"},
		"zmq://[1.2.3.4]":              {"ValueError", "An IPv4 address cannot be in brackets", "zmq://[1.2.3.4]"},
		"zmq://[a:b]":                  {"ValueError", "'a:b' does not appear to be an IPv4 or IPv6 address", "zmq://[a:b]"},
		"zmq://h℀x:1":                  {"ValueError", "netloc 'h℀x:1' contains invalid characters under NFKC normalization", "zmq://h℀x:1"},
		"zmq://h:99999999999999999999": {"", "port 99999999999999999999 does not fit in an int (Python accepts it)", "zmq://h:99999999999999999999"},
		"zmq+redis://h:99999":          {"", "port 99999 is not a TCP port (1..65535; Python accepts it)", "zmq+redis://h:99999"},
		"rabbit://h:65536/":            {"", "port 65536 is not a TCP port (1..65535; Python accepts it)", "rabbit://h:65536/"},
		"zmq://[::1]:-1":               {"", "port -1 is not a TCP port (1..65535; Python accepts it)", "zmq://[::1]:-1"},
		"zmq://h:0":                    {"", "port 0 is not a TCP port (1..65535; Python accepts it)", "zmq://h:0"},
		"":                             {"", "empty transport URL (oslo falls back to [DEFAULT] transport_url, then rpc_backend)", ""},
	} {
		_, err := ParseTransportURL(raw)
		require.ErrorIs(t, err, ErrInvalidTransportURL, raw)
		var ue *URLError
		require.True(t, errors.As(err, &ue), raw)
		require.Equal(t, want, [3]string{ue.PythonClass(), ue.Reason, ue.URL}, raw)
		require.True(t, strings.HasPrefix(err.Error(), "compat: invalid transport URL"))
	}
}

func TestTransportURLString(t *testing.T) {
	u := &TransportURL{Transport: "zmq", VirtualHost: "a b/c", HasVirtualHost: true,
		Hosts: []TransportHost{
			{Hostname: "::1", HasHostname: true, Port: 5, HasPort: true, Username: "u@", HasUsername: true},
			{Password: "p:w", HasPassword: true, Hostname: "h", HasHostname: true},
			{Hostname: "", HasHostname: true, Port: -1, HasPort: true},
		},
		Query: []QueryParam{{"k k", "v+v"}, {"", "~"}}}
	require.Equal(t, "zmq://u%40@[::1]:5,:p%3Aw@h,:-1/a%20b/c?k+k=v%2Bv&=~", u.String())
	require.Equal(t, "zmq:///", (&TransportURL{Transport: "zmq"}).String())
	require.Equal(t, "zmq:///", (&TransportURL{Transport: "zmq", HasVirtualHost: true}).String())
}
