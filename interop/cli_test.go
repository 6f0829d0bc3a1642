package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/internal/redistest"
	"github.com/goslo/goslo/matchmaker"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// gosloBin builds cmd/goslo once per test binary.
func gosloBin(t *testing.T) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "goslo-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "goslo")
		// cmd/goslo is a module of its own: build it from its directory,
		// which works with the repository's go.work and without it.
		build := exec.Command("go", "build", "-o", binPath, ".")
		build.Dir = filepath.Join(RepoRoot(), "cmd", "goslo")
		out, err := build.CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

func runGoslo(t *testing.T, args ...string) (string, string, int) {
	cmd := exec.Command(gosloBin(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return out.String(), errb.String(), code
}

// TestCLIWithPythonPeers drives the goslo command against real 8.1.4
// peers: goslo call/cast to a Python server, a Python client to goslo
// serve, goslo notify to a Python listener, a Python notifier to goslo
// listen.
func TestCLIWithPythonPeers(t *testing.T) {
	r := redistest.Start(t)
	url := pyTransportURL(r.Addr)

	StartProc(t, EnvZMQ814, "rpc_peer.py", "server", url, "clitopic", "pysrv")
	out, errs, code := runGoslo(t, "call", "--url", url, "--topic", "clitopic", "--server", "pysrv", "--timeout", "20", "echo", `{"a": 1, "b": "\u2603"}`)
	require.Equal(t, 0, code, errs)
	require.Equal(t, `{"a": 1, "b": "\u2603"}`, strings.TrimSpace(out))
	_, errs, code = runGoslo(t, "call", "--url", url, "--topic", "clitopic", "--server", "pysrv", "fail", `{"message": "bad"}`)
	require.NotEqual(t, 0, code)
	require.Contains(t, errs, "class=ValueError module=builtins message=bad")
	_, errs, code = runGoslo(t, "call", "--url", url, "--topic", "nobody", "--timeout", "0.5", "echo")
	require.NotEqual(t, 0, code)
	require.Contains(t, errs, "MessagingTimeout")
	_, errs, code = runGoslo(t, "cast", "--url", url, "--topic", "clitopic", "--fanout", "echo", `{"x": 1}`)
	require.Equal(t, 0, code, errs)

	// goslo serve, called by Python.
	serve := exec.Command(gosloBin(t), "serve", "--url", url, "--topic", "gocli", "--server", "g1")
	stdin, err := serve.StdinPipe()
	require.NoError(t, err)
	stdout, err := serve.StdoutPipe()
	require.NoError(t, err)
	serr := &safeBuffer{}
	serve.Stderr = serr
	require.NoError(t, serve.Start())
	lines := bufio.NewScanner(stdout)
	defer func() { _ = serve.Process.Kill(); _ = serve.Wait() }()
	pc := StartProc(t, EnvZMQ814, "rpc_peer.py", "client", url)
	var res struct {
		OK     bool            `json:"ok"`
		Result json.RawMessage `json:"result"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		pc.Send(map[string]any{"op": "call", "topic": "gocli", "server": "g1", "method": "whoami", "timeout": 5})
		pc.NextJSON(30*time.Second, &res)
		if res.OK {
			break
		}
		require.True(t, time.Now().Before(deadline), "goslo serve never answered; stderr: %s", serr.String())
	}
	require.Equal(t, `"g1"`, string(res.Result))
	require.True(t, lines.Scan())
	var seen map[string]any
	require.NoError(t, json.Unmarshal(lines.Bytes(), &seen))
	require.Equal(t, "call", seen["type"])
	require.Equal(t, "whoami", seen["method"])
	require.Len(t, seen["message_id"], 36)
	_, _ = stdin.Write([]byte("quit\n"))
	done := make(chan error, 1)
	go func() { done <- serve.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, serr.String())
	case <-time.After(15 * time.Second):
		t.Fatal("goslo serve did not stop on quit")
	}

	// goslo notify -> Python listener; Python notifier -> goslo listen.
	pl := StartProc(t, EnvZMQ814, "rpc_peer.py", "listen", url, "notifications")
	_, errs, code = runGoslo(t, "notify", "--url", url, "--topic", "notifications", "--priority", "info", "--event-type", "cli.test", "--publisher-id", "cli", `{"k": "v"}`)
	require.Equal(t, 0, code, errs)
	var note struct {
		Priority  string `json:"priority"`
		Publisher string `json:"publisher_id"`
		Event     string `json:"event_type"`
	}
	pl.NextJSON(20*time.Second, &note)
	require.Equal(t, "info", note.Priority)
	require.Equal(t, "cli", note.Publisher)
	require.Equal(t, "cli.test", note.Event)

	listen := exec.Command(gosloBin(t), "listen", "--url", url, "--topic", "notifications", "--priority", "error", "--count", "1")
	lout, lerr := &safeBuffer{}, &safeBuffer{}
	listen.Stdout, listen.Stderr = lout, lerr
	require.NoError(t, listen.Start())
	defer func() { _ = listen.Process.Kill() }()
	// Send only once goslo listen is registered: a Python notifier keeps a
	// host it found and blocks on it once it is gone (quirk 14.8).
	mm, err := matchmaker.NewRedis(context.Background(), []matchmaker.RedisAddr{{Addr: r.Addr}}, matchmaker.DefaultConfig())
	require.NoError(t, err)
	defer mm.Close()
	require.Eventually(t, func() bool {
		hosts, _ := mm.HostsByKey(context.Background(), "ROUTER/notifications.error")
		return len(hosts) == 1
	}, 20*time.Second, 50*time.Millisecond, "goslo listen never registered; stderr %s", lerr.String())
	pn := StartProc(t, EnvZMQ814, "rpc_peer.py", "notify", url)
	pn.Send(map[string]any{"publisher_id": "py", "priority": "error", "event_type": "py.err", "payload": "x"})
	pn.Next(20 * time.Second)
	ldone := make(chan error, 1)
	go func() { ldone <- listen.Wait() }()
	select {
	case err := <-ldone:
		require.NoError(t, err, lerr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("goslo listen --count 1 did not exit; stderr %s", lerr.String())
	}
	require.Contains(t, lout.String(), `"event_type": "py.err"`)
	require.Contains(t, lout.String(), `"priority": "error"`)
}

// safeBuffer is a bytes.Buffer a running process writes while the test reads.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCLIProxy: goslo proxy takes oslo-messaging-zmq-proxy's flags, picks
// the kind as the reference does, registers PUBLISHERS "<pub>,<frontend>"
// and ROUTERS, and removes both on SIGINT and on SIGTERM (the reference
// removes them on SIGINT only).
func TestCLIProxy(t *testing.T) {
	r := redistest.Start(t)
	ctx := context.Background()
	mm, err := matchmaker.NewRedis(ctx, []matchmaker.RedisAddr{{Addr: r.Addr}}, matchmaker.DefaultConfig())
	require.NoError(t, err)
	defer mm.Close()
	records := func() ([]matchmaker.Publisher, []string) {
		pubs, err := mm.Publishers(ctx)
		require.NoError(t, err)
		routers, err := mm.Routers(ctx)
		require.NoError(t, err)
		return pubs, routers
	}
	start := func(args ...string) (*Proc, map[string]any) {
		p := StartCommand(t, gosloBin(t), append([]string{"proxy", "-u", "zmq+redis://" + r.Addr, "-H", "127.0.0.1"}, args...)...)
		var info map[string]any
		require.NoError(t, json.Unmarshal([]byte(p.Ready), &info))
		return p, info
	}
	ports := func() []string {
		return []string{fmt.Sprint(redistest.FreePort(t)), fmt.Sprint(redistest.FreePort(t)), fmt.Sprint(redistest.FreePort(t))}
	}

	// Double router on fixed ports, stopped with SIGINT: records removed.
	pp := ports()
	p, info := start("-f", pp[0], "--backend-port", pp[1], "-p", pp[2])
	require.Equal(t, "ROUTER-ROUTER", info["proxy"])
	require.Equal(t, "127.0.0.1:"+pp[0], info["frontend"])
	require.Equal(t, "127.0.0.1:"+pp[1], info["backend"])
	require.Equal(t, "127.0.0.1:"+pp[2], info["publisher"])
	pubs, routers := records()
	require.Equal(t, []matchmaker.Publisher{{Pub: "127.0.0.1:" + pp[2], Frontend: "127.0.0.1:" + pp[0]}}, pubs)
	require.Equal(t, []string{"127.0.0.1:" + pp[1]}, routers)
	p.Interrupt()
	pubs, routers = records()
	require.Empty(t, pubs, "SIGINT unregisters")
	require.Empty(t, routers)

	// Single router (frontend port set, backend 0), stopped with SIGTERM:
	// records removed too.
	pp = ports()
	p, info = start("--frontend-port", pp[0])
	require.Equal(t, "ROUTER", info["proxy"])
	require.Equal(t, "", info["backend"])
	pubs, routers = records()
	require.Len(t, pubs, 1)
	require.Equal(t, []string{"127.0.0.1:" + pp[0]}, routers, "a single router registers its frontend as the router")
	p.Signal(syscall.SIGTERM, 10*time.Second)
	pubs, routers = records()
	require.Empty(t, pubs, "SIGTERM unregisters")
	require.Empty(t, routers)

	// A bad flag is refused like argparse refuses it.
	_, errs, code := runGoslo(t, "proxy", "--frontend-port", "x")
	require.NotEqual(t, 0, code)
	require.Contains(t, errs, "frontend-port")
}
