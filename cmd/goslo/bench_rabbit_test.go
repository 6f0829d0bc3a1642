package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/internal/rabbittest"
)

// TestBenchRawRabbit runs `goslo bench raw-server` and the raw rabbit
// client (calls from one and from several callers, casts with and without
// confirms) on a private broker and checks the result lines.
func TestBenchRawRabbit(t *testing.T) {
	node := rabbittest.Start(t)
	url := node.URL("")
	stdinR, stdinW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan int, 1)
	var serr bytes.Buffer
	go func() {
		code := run([]string{"bench", "raw-server", "--url", url, "--topic", "rb", "--server", "s"}, stdinR, outW, &serr)
		_ = outW.Close()
		done <- code
	}()
	sc := bufio.NewScanner(outR)
	if !sc.Scan() {
		_ = stdinW.Close()
		t.Fatalf("raw-server stopped before ready: exit %d, %s", <-done, serr.String())
	}
	require.Contains(t, sc.Text(), `"ready"`)
	go func() { _, _ = io.Copy(io.Discard, outR) }()
	defer func() {
		_, _ = stdinW.Write([]byte("quit\n"))
		require.Equal(t, 0, <-done, serr.String())
		require.Contains(t, serr.String(), "returned 0, failed 0")
	}()

	for _, c := range []struct {
		mode, concurrency, duration, confirm string
	}{
		{"call", "1", "0.5", "true"},
		{"call", "4", "0.3", "true"},
		{"cast", "2", "0.3", "true"},
		{"cast", "2", "0.3", "false"},
	} {
		var out, errb bytes.Buffer
		args := []string{"bench", "raw", "--url", url, "--topic", "rb", "--server", "s", "--mode", c.mode,
			"--concurrency", c.concurrency, "--duration", c.duration, "--confirm=" + c.confirm, "--timeout", "10"}
		require.Equal(t, 0, run(args, nil, &out, &errb), errb.String())
		var res map[string]any
		require.NoError(t, json.Unmarshal([]byte(lastLine(out.String())), &res))
		for _, k := range []string{"mode", "concurrency", "duration_s", "drain_s", "sent", "received", "errors", "per_s", "p50_us", "p99_us"} {
			require.Contains(t, res, k)
		}
		require.Equal(t, c.mode, res["mode"])
		require.Greater(t, res["sent"], 0.0, c)
		require.Equal(t, res["sent"], res["received"], "every %s reached the server: %v", c.mode, res)
		require.Equal(t, 0.0, res["errors"], c)
		if c.mode == "call" {
			require.Greater(t, res["p50_us"], 0.0)
			require.GreaterOrEqual(t, res["p99_us"], res["p50_us"])
		}
	}

	var errb bytes.Buffer
	require.Equal(t, 2, run([]string{"bench", "raw", "--url", url, "--inflight", "4"}, nil, io.Discard, &errb))
	require.Equal(t, 2, run([]string{"bench", "raw-server", "--url", "zmq://127.0.0.1"}, nil, io.Discard, &errb))
}
