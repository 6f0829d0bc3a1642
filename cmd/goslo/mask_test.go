package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/internal/redistest"
)

// TestServeMaskSecrets: goslo serve prints each request's context as a
// JSON line; with --mask-secrets the values of oslo's secret keys
// (auth_token, password, any key containing "token" or "secret", nested
// too) are "***", and the rest is kept.
func TestServeMaskSecrets(t *testing.T) {
	r := redistest.Start(t)
	url := "zmq+redis://" + r.Addr + "?rpc_zmq_host=127.0.0.1&rpc_zmq_bind_address=127.0.0.1"
	for _, mask := range []bool{false, true} {
		stdinR, stdinW := io.Pipe()
		var sout syncBuffer
		var serr bytes.Buffer
		args := []string{"serve", "--url", url, "--topic", "m", "--server", "s"}
		if mask {
			args = append(args, "--mask-secrets")
		}
		done := make(chan int, 1)
		go func() { done <- run(args, stdinR, &sout, &serr) }()
		ctxJSON := `{"auth_token": "T0kenVal", "user": "alice", "nested": {"Password": "PwVal", "x": 1}, "service_token": "SvcVal"}`
		var out, errb bytes.Buffer
		require.Eventually(t, func() bool {
			out.Reset()
			return run([]string{"call", "--url", url, "--topic", "m", "--server", "s", "--context", ctxJSON, "whoami"}, nil, &out, &errb) == 0
		}, 20*time.Second, 200*time.Millisecond, errb.String())
		_, _ = stdinW.Write([]byte("quit\n"))
		require.Equal(t, 0, <-done, serr.String())
		line := sout.String()
		require.Contains(t, line, `"user": "alice"`)
		for _, secret := range []string{"T0kenVal", "PwVal", "SvcVal"} {
			require.Equal(t, !mask, strings.Contains(line, secret), "mask=%v: %s", mask, line)
		}
		if mask {
			require.Contains(t, line, `"auth_token": "***"`)
		}
	}
}
