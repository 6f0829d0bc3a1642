package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/redistest"
	"github.com/goslo/goslo/internal/tagged"
	"github.com/goslo/goslo/matchmaker"
)

// proxyCase is one deployment through proxies: which proxies run (goslo
// proxy, the real oslo-messaging-zmq-proxy of 8.1.4, or both at once), and
// whether PUB/SUB and acks are on.
type proxyCase struct {
	proxies []string // "go", "py"
	pubSub  bool
	acks    bool
	direct  bool // use_router_proxy=false: the mixed mode, calls direct, fanout and notify through a proxy's PUB
}

func (c proxyCase) name() string {
	if c.direct {
		return fmt.Sprintf("proxies=%s/mixed-direct-pubsub", strings.Join(c.proxies, "+"))
	}
	return fmt.Sprintf("proxies=%s/pubsub=%v/acks=%v", strings.Join(c.proxies, "+"), c.pubSub, c.acks)
}

func (c proxyCase) query() string {
	q := fmt.Sprintf("rpc_zmq_host=127.0.0.1&rpc_zmq_bind_address=127.0.0.1&use_router_proxy=%v&use_pub_sub=%v&rpc_use_acks=%v",
		!c.direct, c.pubSub, c.acks)
	if c.acks {
		q += "&rpc_ack_timeout_base=2"
	}
	return q
}

// TestProxyInterop puts a Go and a Python RPC server, a Go and a Python
// notification listener, and a Go and a Python client and notifier on one
// Redis behind a goslo proxy, the real 8.1.4 proxy, or both at once, with
// and without PUB/SUB and acks, and in the mixed mode (direct calls,
// fanout and notify through a proxy's PUB). Every client calls and casts to both
// servers and fans out and notifies to both: so each case covers a Python
// client through a Go proxy to a Go server and every other chain.
func TestProxyInterop(t *testing.T) {
	cases := []proxyCase{
		{proxies: []string{"go"}},
		{proxies: []string{"go"}, pubSub: true},
		{proxies: []string{"go"}, acks: true},
		{proxies: []string{"go"}, pubSub: true, acks: true},
		{proxies: []string{"py"}},
		{proxies: []string{"py"}, pubSub: true},
		{proxies: []string{"py"}, acks: true},
		{proxies: []string{"py"}, pubSub: true, acks: true},
		{proxies: []string{"go", "py"}},
		{proxies: []string{"go", "py"}, pubSub: true, acks: true},
		{proxies: []string{"go"}, pubSub: true, direct: true},
		{proxies: []string{"py"}, pubSub: true, direct: true},
	}
	for _, c := range cases {
		t.Run(c.name(), func(t *testing.T) { proxyInterop(t, c) })
	}
}

// startProxy runs a goslo or a Python proxy with the same config file and
// flags; it is stopped with SIGINT at cleanup.
func startProxy(t *testing.T, kind, redisAddr string, c proxyCase) *Proc {
	dir := t.TempDir()
	conf := filepath.Join(dir, "proxy.conf")
	ini := fmt.Sprintf("[oslo_messaging_zmq]\nrpc_zmq_bind_address = 127.0.0.1\nrpc_zmq_host = 127.0.0.1\nuse_pub_sub = %v\nuse_router_proxy = true\n", c.pubSub)
	require.NoError(t, os.WriteFile(conf, []byte(ini), 0o644))
	args := []string{"-c", conf, "-u", "zmq+redis://" + redisAddr, "-H", "127.0.0.1"}
	if c.pubSub && c.acks {
		args = append(args, "-a")
	}
	var p *Proc
	if kind == "go" {
		p = StartCommand(t, gosloBin(t), append([]string{"proxy", "-d"}, args...)...)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("goslo proxy log:\n%s", p.Stderr())
			}
		})
	} else {
		p = StartProc(t, EnvZMQ814, "zmq_proxy.py", args...)
	}
	t.Cleanup(p.Interrupt)
	t.Logf("%s proxy: %s", kind, p.Ready)
	return p
}

func proxyInterop(t *testing.T, c proxyCase) {
	r := redistest.Start(t)
	for _, k := range c.proxies {
		startProxy(t, k, r.Addr, c)
	}
	// The reference proxy registers from a thread after it starts: wait
	// until every proxy is in ROUTERS and PUBLISHERS, as a deployment would
	// before starting services (they read both only every zmq_target_update).
	mm, err := matchmaker.NewRedis(context.Background(), []matchmaker.RedisAddr{{Addr: r.Addr}}, matchmaker.DefaultConfig())
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		routers, err1 := mm.Routers(context.Background())
		pubs, err2 := mm.Publishers(context.Background())
		return err1 == nil && err2 == nil && len(routers) == len(c.proxies) && len(pubs) == len(c.proxies)
	}, 20*time.Second, 50*time.Millisecond, "proxies not registered")
	mm.Close()
	url := "zmq+redis://" + r.Addr + "?" + c.query()
	ctx := context.Background()

	// Servers and listeners.
	pysrv := StartProc(t, EnvZMQ814, "rpc_peer.py", "server", url, "px", "pysrv", "notes-px")
	tr, err := goslo.NewTransport(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close() })
	var mu sync.Mutex
	goSeen := map[string]int{}
	seen := func(s string) {
		mu.Lock()
		goSeen[s]++
		mu.Unlock()
	}
	ep := goslo.NewEndpoint("", "1.0").
		Handle("echo", func(_ context.Context, _ *goslo.Map, a *goslo.Map) (any, error) {
			from, _ := a.Get("from")
			kind, _ := a.Get("kind")
			seen(fmt.Sprint(kind, " ", from))
			return a, nil
		}).
		Handle("whoami", func(context.Context, *goslo.Map, *goslo.Map) (any, error) { return "gosrv", nil })
	srv, err := goslo.NewRPCServer(tr, goslo.Target{Topic: "px", Server: "gosrv"}, ep)
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	lst := goslo.NewNotificationListener(tr, []string{"notes-px"}, &goslo.NotificationEndpoint{
		Handlers: map[string]goslo.NotificationHandler{
			"info": func(_ context.Context, n goslo.Notification) error { seen("notify " + n.PublisherID); return nil }}})
	require.NoError(t, lst.Start(ctx))
	t.Cleanup(func() { _ = lst.Stop(context.Background()) })
	pycl := StartProc(t, EnvZMQ814, "rpc_peer.py", "client", url)

	// Calls: each client to each server.
	gocl := goslo.NewRPCClient(tr, goslo.Target{Topic: "px", Version: "1.0"})
	lost, lostBy := 0, map[string]int{}
	for _, server := range []string{"gosrv", "pysrv"} {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		res, err := gocl.Prepare(goslo.PrepareOptions{Server: server}).Call(cctx, nil, "echo", goslo.NewMap("from", "go", "kind", "call", "n", int64(1)<<40))
		cancel()
		require.NoError(t, err, "go client -> %s", server)
		n, _ := res.(*goslo.Map).Get("n")
		require.Equal(t, int64(1)<<40, n)
		for i := 0; i < 3; i++ { // more than one: a stray ack would kill a Python client's receiver
			// The 8.1.4 client's losses come in runs under load (its
			// threads miss the reply window together): five in a row
			// fail, fewer are counted below.
			for attempt := 1; !pyCall(t, pycl, server); attempt++ {
				lost++
				lostBy[server]++
				require.Less(t, attempt, 5, "python client -> %s: five calls in a row lost", server)
			}
		}
	}
	// The 8.1.4 client tracks a CALL only after sending it, so a reply that
	// comes back before it is tracked is dropped (the second
	// pitfall). A goslo server behind a proxy answers in about a
	// millisecond, which hits that window now and then (in about one run
	// in three in the pub/sub case here); such a loss is retried above and
	// reported here. Three in a row, or more than three in a case, fail.
	if lost > 0 {
		t.Logf("WARNING: the python 8.1.4 client lost %d of its replies (reply before track_request; reference bug, see docs/interop.md)", lost)
	}
	require.LessOrEqual(t, lost, 3, "python client lost more replies than its known race explains")
	// A failure crosses the proxy both ways.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	_, err = gocl.Prepare(goslo.PrepareOptions{Server: "pysrv"}).Call(cctx, nil, "fail", goslo.NewMap("message", "through a proxy"))
	cancel()
	var re *goslo.RemoteError
	require.ErrorAs(t, err, &re)
	require.Equal(t, "ValueError", re.Class)
	require.Equal(t, "through a proxy", re.Message)

	// Casts, fanouts and notifications from both sides.
	for _, server := range []string{"gosrv", "pysrv"} {
		require.NoError(t, gocl.Prepare(goslo.PrepareOptions{Server: server}).Cast(ctx, nil, "echo", goslo.NewMap("from", "go", "kind", "cast")))
		pycl.Send(map[string]any{"op": "cast", "topic": "px", "server": server, "method": "echo",
			"args": map[string]any{"$dict": [][]any{{"from", "py"}, {"kind", "cast"}}}})
		pycl.Next(20 * time.Second)
	}
	fan := true
	require.NoError(t, gocl.Prepare(goslo.PrepareOptions{Fanout: fan}).Cast(ctx, nil, "echo", goslo.NewMap("from", "go", "kind", "fanout")))
	pycl.Send(map[string]any{"op": "cast", "topic": "px", "fanout": true, "method": "echo",
		"args": map[string]any{"$dict": [][]any{{"from", "py"}, {"kind", "fanout"}}}})
	pycl.Next(20 * time.Second)
	require.NoError(t, goslo.NewNotifier(tr, "go-pub", "notes-px").Info(ctx, nil, "px.event", goslo.NewMap("k", "v")))
	pycl.Send(map[string]any{"op": "notify", "topic": "notes-px", "publisher_id": "py-pub", "priority": "info",
		"event_type": "px.event", "payload": map[string]any{"$dict": [][]any{{"k", "v"}}}})
	pycl.Next(20 * time.Second)

	// The Go server and listener.
	wantGo := map[string]int{"call go": 1, "cast go": 1, "cast py": 1, "fanout go": 1, "fanout py": 1, "notify go-pub": 1, "notify py-pub": 1}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(goSeen) == len(wantGo) && fmt.Sprint(goSeen) == fmt.Sprint(wantGo)
	}, 20*time.Second, 20*time.Millisecond, "go side saw %v", func() map[string]int { mu.Lock(); defer mu.Unlock(); return goSeen }())

	// The Python server and listener (lines in any order: threading executor).
	var pySeen []string
	wantPy := []string{"call echo go call", "call echo go fanout", "call echo py cast", "call echo py fanout", "call echo go cast",
		"info go-pub", "info py-pub"}
	sort.Strings(wantPy)
	calls := 0
	for len(pySeen) < len(wantPy) {
		var line struct {
			Type, Method string
			Args         json.RawMessage
			Priority     string
			Publisher    string `json:"publisher_id"`
		}
		pysrv.NextJSON(20*time.Second, &line)
		if line.Priority != "" {
			pySeen = append(pySeen, line.Priority+" "+line.Publisher)
			continue
		}
		if line.Method == "whoami" {
			calls++
			continue
		}
		if line.Method == "fail" {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(string(line.Args)))
		dec.UseNumber()
		var raw any
		require.NoError(t, dec.Decode(&raw))
		v, err := tagged.FromTagged(raw)
		require.NoError(t, err)
		args := v.(*envelope.Map)
		from, _ := args.Get("from")
		kind, _ := args.Get("kind")
		pySeen = append(pySeen, fmt.Sprint(line.Type, " ", line.Method, " ", from, " ", kind))
	}
	sort.Strings(pySeen)
	require.Equal(t, wantPy, pySeen)
	require.Equal(t, 3+lostBy["pysrv"], calls, "whoami calls the python server saw")
	t.Logf("%s: go and python clients called, cast, fanned out and notified go and python servers and listeners; go saw %v", c.name(), goSeen)
}

// pyCall has the Python client call whoami on server; false means a
// MessagingTimeout (any other outcome fails the test).
func pyCall(t *testing.T, pycl *Proc, server string) bool {
	t.Helper()
	pycl.Send(map[string]any{"op": "call", "topic": "px", "server": server, "method": "whoami", "timeout": 5})
	var out struct {
		OK     bool
		Result any
		Error  struct{ Class, Message string }
	}
	pycl.NextJSON(30*time.Second, &out)
	if !out.OK && out.Error.Class == "MessagingTimeout" {
		t.Logf("python client -> %s: %s", server, out.Error.Message)
		return false
	}
	require.True(t, out.OK, "python client -> %s: %v\n%s", server, out.Error, pycl.Stderr())
	require.Equal(t, server, out.Result)
	return true
}
