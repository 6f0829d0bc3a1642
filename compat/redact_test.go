package compat

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"zmq+redis://:S3cretPW@127.0.0.1:6379":                     "zmq+redis://:***@127.0.0.1:6379",
		"zmq+redis://:S3cretPW@[::1]:6411/?x=1":                    "zmq+redis://:***@[::1]:6411/?x=1",
		"rabbit://user:S3cretPW@h1:5672,user2:Other@h2:5672/vhost": "rabbit://user:***@h1:5672,user2:***@h2:5672/vhost",
		"rabbit://user:p@ss@host/v":                                "rabbit://user:***@host/v",
		"rabbit://user:pa,ss@host/v":                               "rabbit://user:***@host/v",
		"rabbit://user:pa/ss@host/v":                               "rabbit://user:***@host/v",
		"rabbit://h1:5672,user:S3cretPW@h2/v":                      "rabbit://h1:***@h2/v",
		"rabbit://user@host/v":                                     "rabbit://user@host/v",
		"zmq://host:6379":                                          "zmq://host:6379",
		"zmq+redis://:S3cretPW@h:6379/?password_hint=a@b#frag@x":   "zmq+redis://:***@h:6379/?password_hint=a@b#frag@x",
		"not a url": "not a url",
	} {
		got := RedactURL(in)
		require.Equal(t, want, got, in)
		require.NotContains(t, got, "S3cretPW")
	}
}

// TestURLErrorsHideThePassword: no error of the URL parsers, zmq or
// rabbit, echoes a password.
func TestURLErrorsHideThePassword(t *testing.T) {
	for _, raw := range []string{
		"zmq+redis://:S3cretPW@127.0.0.1:notaport",
		"zmq+redis://:S3cretPW@[::1:6411",
		"zmq+redis://:S3cretPW@h:99999999999999999999999",
		"rabbit://guest:S3cretPW@h:notaport/",
		"rabbit://guest:S3cretPW@[::1/",
		"://guest:S3cretPW@h/",
	} {
		_, err := ParseTransportURL(raw)
		require.Error(t, err, raw)
		require.NotContains(t, err.Error(), "S3cretPW", raw)
		_, err = ParseRabbitURL(raw)
		require.Error(t, err, raw)
		require.NotContains(t, err.Error(), "S3cretPW", raw)
		require.True(t, strings.Contains(err.Error(), "***") || !strings.Contains(raw, "://"), err.Error())
	}
}
