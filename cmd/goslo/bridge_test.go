package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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

// TestBridgeCommand runs `goslo bridge` between a zmq bus and a RabbitMQ
// vhost, with the topic and the RabbitMQ server in the [bridge] section
// of --config and the URLs as flags; it checks a call each way, then that
// "quit" stops it cleanly after its drain.
func TestBridgeCommand(t *testing.T) {
	node, vhost := rabbitVhost(t)
	red := redistest.Start(t)
	zurl := "zmq+redis://" + red.Addr + "?rpc_zmq_host=127.0.0.1&rpc_zmq_bind_address=127.0.0.1"
	rurl := node.URL(vhost)
	ctx := context.Background()
	zt, err := goslo.NewTransport(ctx, zurl)
	require.NoError(t, err)
	defer zt.Close()
	rt, err := goslo.NewTransport(ctx, rurl)
	require.NoError(t, err)
	defer rt.Close()
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
	stdinR, stdinW := io.Pipe()
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"bridge", "--url", zurl, "--url", rurl, "--config", cfg, "--group", "cli-test", "--metrics-addr", "127.0.0.1:0"}, stdinR, io.Discard, &stderr)
	}()
	defer stdinW.Close()
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
	_, err = io.WriteString(stdinW, "quit\n")
	require.NoError(t, err)
	select {
	case code := <-done:
		require.Equal(t, 0, code, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("goslo bridge did not stop")
	}
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
