package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/internal/redistest"
)

func builtinServer(t *testing.T, tr *goslo.Transport, topic, name string) {
	t.Helper()
	ep, err := goslo.EndpointOf(builtin{name: name}, "", "1.0")
	require.NoError(t, err)
	srv, err := goslo.NewRPCServer(tr, goslo.Target{Topic: topic, Server: name}, ep)
	require.NoError(t, err)
	require.NoError(t, srv.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
	})
}

// bridgeBuses are a zmq bus (a private Redis matchmaker) and a RabbitMQ
// vhost of the shared node, with a transport on each, closed when the
// test ends (after the servers started on them stop).
type bridgeBuses struct {
	zurl, rurl string
	zt, rt     *goslo.Transport
}

func newBridgeBuses(t *testing.T) bridgeBuses {
	t.Helper()
	node, vhost := rabbitVhost(t)
	red := redistest.Start(t)
	b := bridgeBuses{zurl: "zmq+redis://" + red.Addr + "?rpc_zmq_host=127.0.0.1&rpc_zmq_bind_address=127.0.0.1", rurl: node.URL(vhost)}
	for _, x := range []struct {
		url string
		tr  **goslo.Transport
	}{{b.zurl, &b.zt}, {b.rurl, &b.rt}} {
		tr, err := goslo.NewTransport(context.Background(), x.url)
		require.NoError(t, err)
		t.Cleanup(func() { _ = tr.Close() })
		*x.tr = tr
	}
	return b
}

// bridgeCmdRun is `goslo bridge` running in the test process.
type bridgeCmdRun struct {
	stderr *lockedBuffer
	stdin  *io.PipeWriter
	done   chan int
}

func startBridgeCmd(t *testing.T, args ...string) *bridgeCmdRun {
	stdinR, stdinW := io.Pipe()
	br := &bridgeCmdRun{stderr: &lockedBuffer{}, stdin: stdinW, done: make(chan int, 1)}
	go func() { br.done <- run(append([]string{"bridge"}, args...), stdinR, io.Discard, br.stderr) }()
	t.Cleanup(func() { _ = stdinW.Close() })
	return br
}

// quit stops it with a "quit" line and checks it exits 0.
func (br *bridgeCmdRun) quit(t *testing.T) {
	t.Helper()
	_, err := io.WriteString(br.stdin, "quit\n")
	require.NoError(t, err)
	select {
	case code := <-br.done:
		require.Equal(t, 0, code, br.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("goslo bridge did not stop")
	}
}

// TestBridgeCommand runs `goslo bridge` between a zmq bus and a RabbitMQ
// vhost, with the topic and the RabbitMQ server in the [bridge] section
// of --config and the URLs as flags; it checks a call each way, then that
// "quit" stops it cleanly after its drain.
func TestBridgeCommand(t *testing.T) {
	buses := newBridgeBuses(t)
	zurl, rurl, zt, rt := buses.zurl, buses.rurl, buses.zt, buses.rt
	ctx := context.Background()
	builtinServer(t, zt, "cli", "zsrv")
	builtinServer(t, rt, "cli", "rsrv")

	cfg := filepath.Join(t.TempDir(), "bridge.conf")
	require.NoError(t, os.WriteFile(cfg, []byte(`[DEFAULT]
rpc_response_timeout = 30

[bridge]
topics = cli
server = cli:rsrv
discover_every = 0.2
drain = 5
`), 0o600))
	br := startBridgeCmd(t, "--url", zurl, "--url", rurl, "--config", cfg, "--group", "cli-test", "--metrics-addr", "127.0.0.1:0")
	stderr := br.stderr
	require.Eventually(t, func() bool {
		s := stderr.String()
		return strings.Contains(s, `msg="bridge: serving" side=zmq topic=cli server=rsrv`) &&
			strings.Contains(s, `msg="bridge: serving" side=rabbit topic=cli server=zsrv`)
	}, 30*time.Second, 20*time.Millisecond, "%s", stderr.String())
	for _, c := range []struct {
		tr     *goslo.Transport
		server string
	}{{zt, "rsrv"}, {rt, "zsrv"}} {
		cl := goslo.NewRPCClient(c.tr, goslo.Target{Topic: "cli", Server: c.server}).Prepare(goslo.PrepareOptions{Timeout: 10 * time.Second})
		res, err := cl.Call(ctx, nil, "whoami", nil)
		require.NoError(t, err)
		require.Equal(t, c.server, res)
		_, err = cl.Call(ctx, nil, "fail", goslo.NewMap("message", "nope"))
		var re *goslo.RemoteError
		require.ErrorAs(t, err, &re)
		require.Equal(t, "ValueError", re.Class)
	}
	m := regexp.MustCompile(`goslo: metrics on (http://\S+)`).FindStringSubmatch(stderr.String())
	require.NotNil(t, m, stderr.String())
	// A call is counted (and leaves in_flight) once its reply went back,
	// which the caller may see first (a RabbitMQ reply is confirmed after
	// it is delivered): scrape until the figures settle.
	wants := []string{
		`goslo_bridge_forwarded_total{direction="zmq->rabbit",kind="call",topic="cli"} 2`,
		`goslo_bridge_forwarded_total{direction="rabbit->zmq",kind="call",topic="cli"} 2`,
		`goslo_bridge_in_flight{direction="zmq->rabbit",topic="cli"} 0`,
		`goslo_bridge_in_flight{direction="rabbit->zmq",topic="cli"} 0`,
		`goslo_bridge_mirrors{side="rabbit"} 1`,
		`goslo_bridge_mirrors{side="zmq"} 1`,
	}
	var body string
	require.Eventually(t, func() bool {
		resp, err := http.Get(m[1])
		if err != nil {
			return false
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return false
		}
		body = string(b)
		for _, want := range wants {
			if !strings.Contains(body, want+"\n") {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "metrics never showed %q", wants)
	for _, want := range wants {
		require.Contains(t, body, want+"\n")
	}
	br.quit(t)
	require.Contains(t, stderr.String(), "draining in-flight calls")
	require.Contains(t, stderr.String(), `msg="bridge: mirror stopped" side=zmq topic=cli server=rsrv`)
	hosts, err := zt.Matchmaker().HostsByKey(ctx, compat.TargetKey(compat.Router, goslo.Target{Topic: "cli", Server: "rsrv"}))
	require.NoError(t, err)
	require.Empty(t, hosts, "the mirror's records are gone")
}

func TestBridgeCommandErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--url", "zmq://"}, "two --url are needed"},
		{[]string{"--url", "zmq://", "--url", "rabbit://h/"}, "nothing to bridge"},
		{[]string{"--url", "zmq://", "--url", "zmq+redis://127.0.0.1:1", "--topic", "t", "--server", "x"}, "no RabbitMQ bus"},
		{[]string{"--url", "rabbit://h1/", "--url", "rabbit://h2/", "--topic", "t", "--server", "x"}, "both buses are RabbitMQ: write a=x or b=x"},
		{[]string{"--url", "zmq://", "--url", "rabbit://h/", "--topic", "t", "--server", "a=x"}, "bus a is not RabbitMQ"},
		{[]string{"--url", "zmq://", "--url", "rabbit://h/", "--topic", "t", "--log-level", "loud"}, "--log-level"},
	} {
		var stderr lockedBuffer
		code := run(append([]string{"bridge"}, c.args...), nil, io.Discard, &stderr)
		require.NotEqual(t, 0, code, c.args)
		require.Contains(t, stderr.String(), c.want, c.args)
	}
	// the [bridge] section is checked
	cfg := filepath.Join(t.TempDir(), "bad.conf")
	require.NoError(t, os.WriteFile(cfg, []byte("[bridge]\ntopic = a\nfrobnicate = 1\n"), 0o600))
	var stderr lockedBuffer
	require.Equal(t, 2, run([]string{"bridge", "--config", cfg}, nil, io.Discard, &stderr))
	require.Contains(t, stderr.String(), `line 3: frobnicate: unknown option "frobnicate"`)
}

// TestBridgeCommandReload checks that SIGHUP re-reads the RabbitMQ server
// list of --config: a server added to the file gets its mirror on zmq
// without a restart, and a server taken off it loses its mirror; a bad
// file is refused and the list stays.
func TestBridgeCommandReload(t *testing.T) {
	buses := newBridgeBuses(t)
	zurl, rurl, zt, rt := buses.zurl, buses.rurl, buses.zt, buses.rt
	ctx := context.Background()
	builtinServer(t, rt, "hup", "r1")
	builtinServer(t, rt, "hup", "r2")

	cfg := filepath.Join(t.TempDir(), "bridge.conf")
	write := func(servers string) {
		require.NoError(t, os.WriteFile(cfg, []byte("[bridge]\ntopics = hup\nserver = "+servers+"\ndiscover_every = 0.2\ndrain = 5\n"), 0o600))
	}
	write("r1")
	br := startBridgeCmd(t, "--url", zurl, "--url", rurl, "--config", cfg, "--group", "hup-test")
	stderr := br.stderr
	serving := func(server string) bool {
		return strings.Contains(stderr.String(), `msg="bridge: serving" side=zmq topic=hup server=`+server)
	}
	require.Eventually(t, func() bool { return serving("r1") }, 30*time.Second, 20*time.Millisecond, "%s", stderr.String())
	call := func(server string) (any, error) {
		cl := goslo.NewRPCClient(zt, goslo.Target{Topic: "hup", Server: server}).Prepare(goslo.PrepareOptions{Timeout: 10 * time.Second})
		return cl.Call(ctx, nil, "whoami", nil)
	}
	res, err := call("r1")
	require.NoError(t, err)
	require.Equal(t, "r1", res)
	hostsOf := func(server string) []string {
		hosts, err := zt.Matchmaker().HostsByKey(ctx, compat.TargetKey(compat.Router, goslo.Target{Topic: "hup", Server: server}))
		require.NoError(t, err)
		return hosts
	}
	require.Empty(t, hostsOf("r2"), "r2 is not listed: no mirror")

	// r2 added: mirrored after the reload.
	write("r1, r2")
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool { return serving("r2") }, 30*time.Second, 20*time.Millisecond, "%s", stderr.String())
	require.Contains(t, stderr.String(), `msg="goslo bridge: server list reloaded" side=rabbit servers="r1 r2"`)
	res, err = call("r2")
	require.NoError(t, err)
	require.Equal(t, "r2", res)

	// A bad file is refused; the list stays.
	require.NoError(t, os.WriteFile(cfg, []byte("[bridge]\nserver = a=r1\n"), 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return strings.Contains(stderr.String(), `msg="goslo bridge: SIGHUP: the server list stays"`)
	}, 10*time.Second, 20*time.Millisecond, "%s", stderr.String())

	// r1 taken off the list: its mirror stops; r2's stays.
	write("r2")
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return strings.Contains(stderr.String(), `msg="bridge: mirror stopped" side=zmq topic=hup server=r1`)
	}, 30*time.Second, 20*time.Millisecond, "%s", stderr.String())
	require.Empty(t, hostsOf("r1"), "r1's mirror records are gone")
	require.NotEmpty(t, hostsOf("r2"), "r2's mirror stays")
	res, err = call("r2")
	require.NoError(t, err)
	require.Equal(t, "r2", res)

	br.quit(t)
}
