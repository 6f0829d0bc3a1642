package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The proxy's port flags take TCP ports only (0: from the config, else
// random); before, -f 99999 bound 34463 and registered ":99999".
func TestProxyRefusesBadPortFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-f", "99999"}, {"--frontend-port", "65536"}, {"-b", "-1"}, {"--backend-port", "70000"},
		{"-p", "99999"}, {"--publisher-port", "-5"},
	} {
		var out, errb bytes.Buffer
		full := append([]string{"proxy", "-u", "zmq+dummy://"}, args...)
		code := run(full, strings.NewReader("quit\n"), &out, &errb)
		require.Equal(t, 2, code, "%v: %s", args, errb.String())
		require.Contains(t, errb.String(), args[1], args)
		require.Contains(t, errb.String(), "1..65535", args)
		require.Empty(t, out.String(), "nothing bound")
	}
	// The same ports from [zmq_proxy_opts] are refused too (exit 1, the
	// config's error).
	for _, opt := range []string{"frontend_port = 99999", "backend_port = -1", "publisher_port = 65536"} {
		cfg := filepath.Join(t.TempDir(), "p.conf")
		require.NoError(t, os.WriteFile(cfg, []byte("[zmq_proxy_opts]\n"+opt+"\n"), 0o600))
		var out, errb bytes.Buffer
		code := run([]string{"proxy", "-u", "zmq+dummy://", "-c", cfg}, strings.NewReader("quit\n"), &out, &errb)
		require.Equal(t, 1, code, "%s: %s", opt, errb.String())
		require.Contains(t, errb.String(), "0..65535", opt)
		require.Empty(t, out.String(), "nothing bound")
	}
}
