package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/internal/redistest"
)

// scrape returns the value of one series from http://addr/metrics (-1
// when absent or when nothing answers).
func scrape(t *testing.T, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1 // not up (yet)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return -1
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+-]+)$`).FindSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	require.NoError(t, err)
	return v
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMetricsScrape runs goslo proxy and a proxy-mode goslo serve with
// --metrics-addr, makes calls through them with goslo call, and scrapes
// both over HTTP.
func TestMetricsScrape(t *testing.T) {
	r := redistest.Start(t)
	start := func(args ...string) (stop func() int, stderr *syncBuffer) {
		stdinR, stdinW := io.Pipe()
		done := make(chan int, 1)
		stderr = &syncBuffer{}
		go func() { done <- run(args, stdinR, io.Discard, stderr) }()
		return func() int { _, _ = stdinW.Write([]byte("quit\n")); return <-done }, stderr
	}
	pxAddr, srvAddr := fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t))
	stopProxy, perr := start("proxy", "-u", "zmq+redis://"+r.Addr, "-H", "127.0.0.1", "--metrics-addr", pxAddr)
	url := fmt.Sprintf("zmq+redis://%s?rpc_zmq_host=127.0.0.1&rpc_zmq_bind_address=127.0.0.1&use_router_proxy=true", r.Addr)
	require.Eventually(t, func() bool { return scrape(t, pxAddr, `goslo_proxy_messages_total{direction="front_to_back"}`) == 0 },
		10*time.Second, 20*time.Millisecond, "proxy metrics never up: %s", perr)
	stopServe, serr := start("serve", "--url", url, "--topic", "m", "--server", "s", "--metrics-addr", srvAddr)
	var out, errb bytes.Buffer
	require.Eventually(t, func() bool {
		out.Reset()
		return run([]string{"call", "--url", url, "--topic", "m", "--server", "s", "--timeout", "2", "whoami"}, nil, &out, &errb) == 0
	}, 20*time.Second, 100*time.Millisecond, "%s %s", errb.String(), serr)
	require.Equal(t, 0, run([]string{"call", "--url", url, "--topic", "m", "--server", "s", "echo", `{"a": 1}`}, nil, &out, &errb), errb.String())
	require.Equal(t, 0, run([]string{"cast", "--url", url, "--topic", "m", "--server", "s", "echo", `{"a": 2}`}, nil, &out, &errb), errb.String())

	require.Eventually(t, func() bool { return scrape(t, srvAddr, `goslo_messages_received_total{type="CAST"}`) == 1 }, 5*time.Second, 20*time.Millisecond)
	calls := scrape(t, srvAddr, `goslo_messages_received_total{type="CALL"}`)
	require.GreaterOrEqual(t, calls, 2.0)
	require.Equal(t, calls, scrape(t, srvAddr, `goslo_messages_sent_total{type="REPLY"}`), "one reply per call")
	require.GreaterOrEqual(t, scrape(t, pxAddr, `goslo_proxy_messages_total{direction="front_to_back"}`), calls+1)
	require.GreaterOrEqual(t, scrape(t, pxAddr, `goslo_proxy_messages_total{direction="back_to_front"}`), calls)
	require.Equal(t, 0.0, scrape(t, pxAddr, `goslo_proxy_dropped_total`))
	require.Positive(t, scrape(t, srvAddr, `go_goroutines`), "runtime collectors")

	require.Equal(t, 0, stopServe(), serr.String())
	require.Equal(t, 0, stopProxy(), perr.String())
	_, err := http.Get("http://" + srvAddr + "/metrics")
	require.Error(t, err, "the metrics server stops with the command")
}
