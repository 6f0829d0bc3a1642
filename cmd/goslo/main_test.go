package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/internal/redistest"
)

func TestDemoTranscript(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"demo"}, nil, &out, &errb), errb.String())
	s := out.String()
	require.Contains(t, s, "on srv1 -> {\"greeting\": \"h\u00e9llo\", \"n\": 42}")
	require.Contains(t, s, `srv1 got [{"seq": 1}]`)
	require.Contains(t, s, `srv2 got [{"to": "all"}], srv3 got [{"to": "all"}]`)
	require.Contains(t, s, "builtins.ValueError: kaboom")
	// What a caller sees: the class and message of the *RemoteError.
	require.Contains(t, s, "call  nope() -> NoSuchMethod: Endpoint does not support RPC method nope\n")
	require.Contains(t, s, "listener got compute.instance.create.end from compute.host-1")
	require.True(t, strings.HasSuffix(strings.TrimSpace(s), "unregistered."))
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 2, run([]string{"frobnicate"}, nil, &out, &errb))
	require.Contains(t, errb.String(), "unknown command")
	require.Equal(t, 2, run(nil, nil, &out, &errb))
}

func TestBenchRawAndRPC(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"bench", "raw", "--mode", "call", "--duration", "0.3"}, nil, &out, &errb), errb.String())
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(lastLine(out.String())), &res))
	for _, k := range []string{"mode", "concurrency", "duration_s", "drain_s", "sent", "received", "errors", "per_s", "p50_us", "p99_us"} {
		require.Contains(t, res, k)
	}
	require.Greater(t, res["received"], 0.0)
	// Pipelined: 128 calls in flight over 3 callers by default, or --inflight.
	for _, extra := range [][]string{nil, {"--inflight", "7"}} {
		out.Reset()
		args := append([]string{"bench", "raw", "--mode", "call", "--concurrency", "3", "--duration", "0.3"}, extra...)
		require.Equal(t, 0, run(args, nil, &out, &errb), errb.String())
		require.NoError(t, json.Unmarshal([]byte(lastLine(out.String())), &res))
		require.Greater(t, res["received"], 0.0)
		require.Equal(t, res["sent"], res["received"])
		require.Equal(t, 0.0, res["errors"])
	}

	r := redistest.Start(t)
	url := "zmq+redis://" + r.Addr + "?rpc_zmq_host=127.0.0.1&rpc_zmq_bind_address=127.0.0.1"
	stdinR, stdinW := io.Pipe()
	done := make(chan int, 1)
	var serr bytes.Buffer
	go func() {
		done <- run([]string{"bench", "rpc-server", "--url", url, "--topic", "b", "--server", "s"}, stdinR, io.Discard, &serr)
	}()
	defer func() {
		_, _ = stdinW.Write([]byte("quit\n"))
		require.Equal(t, 0, <-done, serr.String())
	}()
	for _, mode := range []string{"call", "cast", "notify"} {
		out.Reset()
		errb.Reset()
		var code int
		args := []string{"bench", "rpc-client", "--url", url, "--topic", "b", "--server", "s", "--mode", mode, "--concurrency", "2", "--duration", "0.5"}
		if mode == "notify" {
			args = []string{"bench", "notify", "--url", url, "--topic", "b", "--server", "s", "--concurrency", "2", "--duration", "0.5"}
		}
		require.Eventually(t, func() bool {
			out.Reset()
			code = run(args, nil, &out, &errb)
			return code == 0
		}, 20*time.Second, 200*time.Millisecond, errb.String())
		require.NoError(t, json.Unmarshal([]byte(lastLine(out.String())), &res))
		require.Equal(t, mode, res["mode"])
		require.Equal(t, res["sent"], res["received"], "every %s reached the server", mode)
		require.Equal(t, 0.0, res["errors"])
		// The rate is taken over the window plus the drain.
		drain := res["drain_s"].(float64)
		require.GreaterOrEqual(t, drain, 0.0)
		if mode == "call" {
			require.Equal(t, 0.0, drain)
		}
		want := res["received"].(float64) / (res["duration_s"].(float64) + drain)
		require.InEpsilon(t, want, res["per_s"].(float64), 0.01)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
