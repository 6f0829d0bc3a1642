package interop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/rabbittest"
)

// TestMain stops the shared rabbitmq-server node (started by the first
// rabbit test that needs it) after every test has run.
func TestMain(m *testing.M) {
	code := m.Run()
	removeQMFiles()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath)) // gosloBin's temp dir
	}
	if shared.tb != nil {
		shared.tb.finish()
		if shared.tb.failed() && code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// shared is the one rabbitmq-server node of this test binary: booting a
// node costs 5–8 s here, so every rabbit test shares it and gets its own
// vhost.
var shared struct {
	once sync.Once
	tb   *binaryTB
	node *rabbittest.Node
	err  string
	// prepared: rabbitVhosts exist (prepareVhosts worked)
	prepared bool
}

// sharedRabbit returns the binary's node, starting it on first use.
func sharedRabbit(t testing.TB) *rabbittest.Node {
	t.Helper()
	shared.once.Do(func() {
		shared.tb = &binaryTB{name: "shared-rabbit"}
		start := time.Now()
		shared.err = "rabbittest.Start failed (see stderr)"
		shared.node = rabbittest.Start(shared.tb)
		if shared.node != nil {
			if err := prepareVhosts(shared.node); err != nil {
				t.Logf("vhosts not made in one go, one by one instead: %v", err)
			} else {
				shared.prepared = true
			}
			t.Logf("shared rabbitmq node %s up in %v (%v with setup)", shared.node.Name, shared.node.StartupTime, time.Since(start).Round(time.Millisecond))
		}
	})
	if shared.node == nil {
		t.Fatalf("the shared rabbitmq-server node did not start: %s", shared.err)
	}
	return shared.node
}

// rabbitVhosts are the vhosts of the rabbit tests, one each, created
// together when the shared node starts: one rabbitmqctl call costs 1–2 s
// here, so they are made by a single `rabbitmqctl eval` (with a fallback
// to one AddVhost per vhost). A vhost may also name a user (password =
// name) with permissions on it and turn the firehose on.
var rabbitVhosts = map[string]struct {
	Users    []string
	Firehose bool
}{
	"goslo-peers": {}, "goslo-opts": {}, "goslo-go2py": {}, "goslo-py2go": {}, "goslo-notify": {}, "goslo-gzip": {Firehose: true}, "goslo-go-py": {},
	"goslo-mixed": {}, "goslo-mixed-quorum": {}, "goslo-client-opts": {}, "goslo-bridge": {}, "goslo-ci-script": {}, "goslo-ci-record": {Firehose: true},
	"goslo-wire": {Users: []string{"gopeer"}, Firehose: true},
}

// prepareVhosts makes every vhost of rabbitVhosts in one rabbitmqctl eval;
// it reports whether that worked.
func prepareVhosts(n *rabbittest.Node) error {
	var b strings.Builder
	b.WriteString(`Act = <<"goslo-interop">>, Perm = fun(U, V) -> ok = rabbit_auth_backend_internal:set_permissions(U, V, <<".*">>, <<".*">>, <<".*">>, Act) end, `)
	var all []string
	for v, o := range rabbitVhosts {
		all = append(all, fmt.Sprintf("<<%q>>", v))
		fmt.Fprintf(&b, "rabbit_vhost:add(<<%q>>, Act), Perm(<<\"guest\">>, <<%q>>), ", v, v)
		for _, u := range o.Users {
			fmt.Fprintf(&b, "rabbit_auth_backend_internal:add_user(<<%q>>, <<%q>>, Act), Perm(<<%q>>, <<%q>>), ", u, u, u, v)
		}
		if o.Firehose {
			fmt.Fprintf(&b, "ok = rabbit_trace:start(<<%q>>), ", v)
		}
	}
	fmt.Fprintf(&b, "true = lists:all(fun rabbit_vhost:exists/1, [%s]), ok.", strings.Join(all, ", "))
	out, err := n.TryCtl("eval", b.String())
	if err == nil && strings.TrimSpace(out) != "ok" {
		err = fmt.Errorf("rabbitmqctl eval answered %q", out)
	}
	return err
}

// rabbitVhost returns the shared node and the transport URL (guest) of
// vhost, one of rabbitVhosts.
func rabbitVhost(t testing.TB, name string) (*rabbittest.Node, string) {
	t.Helper()
	n := sharedRabbit(t)
	o, ok := rabbitVhosts[name]
	if !ok {
		t.Fatalf("vhost %q is not in rabbitVhosts", name)
	}
	if !shared.prepared {
		n.AddVhost(name)
		for _, u := range o.Users {
			n.AddUser(u, u, name)
		}
		if o.Firehose {
			n.EnableFirehose(name)
		}
	}
	return n, n.URL(name)
}

// binaryTB is the testing.TB of the shared node: it lives for the whole
// binary. A fatal failure inside rabbittest ends the goroutine of the test
// that used the node (it fails); cleanups run in TestMain, or at once when
// a test panics (stopSharedOnPanic), so no node outlives the binary.
type binaryTB struct {
	testing.TB // nil: only the methods below are used by rabbittest
	name       string
	mu         sync.Mutex
	cleanups   []func()
	dirs       []string
	errs       []string
}

func (b *binaryTB) Helper()      {}
func (b *binaryTB) Name() string { return b.name }
func (b *binaryTB) Cleanup(f func()) {
	b.mu.Lock()
	b.cleanups = append(b.cleanups, f)
	b.mu.Unlock()
}
func (b *binaryTB) TempDir() string {
	d, err := os.MkdirTemp("", "goslo-rabbit-*")
	if err != nil {
		panic(err)
	}
	b.mu.Lock()
	b.dirs = append(b.dirs, d)
	b.mu.Unlock()
	return d
}
func (b *binaryTB) Log(a ...any)            { fmt.Fprintln(os.Stderr, append([]any{b.name + ":"}, a...)...) }
func (b *binaryTB) Logf(f string, a ...any) { fmt.Fprintf(os.Stderr, b.name+": "+f+"\n", a...) }
func (b *binaryTB) Error(a ...any)          { b.record(fmt.Sprint(a...)) }
func (b *binaryTB) Errorf(f string, a ...any) {
	b.record(fmt.Sprintf(f, a...))
}

// Fatal and Fatalf end the calling test's goroutine (that test fails; the
// message is on stderr), as a test's own FailNow would.
func (b *binaryTB) Fatal(a ...any) { b.record(fmt.Sprint(a...)); runtime.Goexit() }
func (b *binaryTB) Fatalf(f string, a ...any) {
	b.record(fmt.Sprintf(f, a...))
	runtime.Goexit()
}
func (b *binaryTB) Failed() bool { return b.failed() }

func (b *binaryTB) record(msg string) {
	fmt.Fprintf(os.Stderr, "%s: FAIL: %s\n", b.name, msg)
	b.mu.Lock()
	b.errs = append(b.errs, msg)
	b.mu.Unlock()
}

func (b *binaryTB) failed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.errs) > 0
}

// finish runs the cleanups (last first: the node, then its epmd) and
// removes the temporary directories.
func (b *binaryTB) finish() {
	b.mu.Lock()
	cl := b.cleanups
	b.cleanups = nil
	b.mu.Unlock()
	for i := len(cl) - 1; i >= 0; i-- {
		func() {
			defer func() {
				if r := recover(); r != nil {
					b.record(fmt.Sprint("cleanup: ", r))
				}
			}()
			cl[i]()
		}()
	}
	for _, d := range b.dirs {
		_ = os.RemoveAll(d)
	}
}

// stopSharedOnPanic, deferred by every rabbit test and subtest, stops the
// shared node before a panic ends the binary (TestMain would not run).
func stopSharedOnPanic() {
	if r := recover(); r != nil {
		if shared.tb != nil {
			shared.tb.finish()
		}
		panic(r)
	}
}

// within runs f as subtest name with the given Python peers reporting
// their failures to the subtest (they belong to the parent test).
func within(t *testing.T, name string, f func(t *testing.T), peers ...*RabbitPeer) bool {
	return t.Run(name, func(st *testing.T) {
		defer stopSharedOnPanic()
		old := make([]testing.TB, len(peers))
		for i, p := range peers {
			old[i] = p.t
			p.t = st
		}
		defer func() {
			for i, p := range peers {
				p.t = old[i]
			}
		}()
		f(st)
	})
}

// goRabbit is a goslo transport on url, closed when the test ends.
func goRabbit(t testing.TB, url string, mutate ...func(*compat.Config)) *goslo.Transport {
	t.Helper()
	opts := []goslo.Option{}
	for _, m := range mutate {
		if m != nil {
			opts = append(opts, goslo.WithOptions(m))
		}
	}
	tr, err := goslo.NewTransport(context.Background(), url, opts...)
	require.NoError(t, err, "goslo.NewTransport(%s)", url)
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// qmHost is the queue manager's hostname option on both sides, new for
// every run: 18.3.1's QManager keeps its counter in
// /dev/shm/<hostname>_<processname>_qmanager with the process group that
// wrote it, and fails (FileNotFoundError on /proc/<pgid>/stat) when that
// group is gone, as it is for a file an earlier run left.
var qmHost = "goslo-it-" + envelope.NewUUID4().Hex()[:8]

// removeQMFiles removes the queue manager's files of this run.
func removeQMFiles() {
	files, _ := filepath.Glob(filepath.Join("/dev/shm", qmHost+"_*"))
	for _, f := range files {
		_ = os.Remove(f)
	}
}

// quorumOptions are the quorum + queue-manager deployment (spec §5.2,
// vectors quorum-qmanager.json) for both sides.
func quorumOptions(c *compat.Config) {
	c.Rabbit.RabbitQuorumQueue = true
	c.Rabbit.RabbitTransientQuorumQueue = true
	c.Rabbit.UseQueueManager = true
	c.Rabbit.Hostname = qmHost
}

// pyQuorumOpts are the same options for rabbit_peer.py (the queue manager
// needs an oslo_concurrency lock_path).
func pyQuorumOpts(t testing.TB) []string {
	return []string{
		"oslo_messaging_rabbit.rabbit_quorum_queue=true",
		"oslo_messaging_rabbit.rabbit_transient_quorum_queue=true",
		"oslo_messaging_rabbit.use_queue_manager=true",
		"oslo_messaging_rabbit.hostname=" + qmHost,
		"oslo_concurrency.lock_path=" + t.TempDir(),
	}
}

// goSeen is one request a Go endpoint handled.
type goSeen struct {
	Server, Endpoint, Method string
	Args, Ctx                *goslo.Map
}

// goRPC is a goslo RPC server with the endpoints of rabbit_peer.py's
// server (RpcEndpoint version 1.3: echo, context, boom, slow, whoami,
// cast_me, fanout_me; NsEndpoint namespace ns version 2.1: ns_ping),
// reporting what it handled on Seen.
type goRPC struct {
	Name string
	Srv  *goslo.RPCServer
	Seen chan goSeen
}

func startGoRPC(t testing.TB, tr *goslo.Transport, topic, server string) *goRPC {
	t.Helper()
	g := &goRPC{Name: server, Seen: make(chan goSeen, 4096)}
	seen := func(ep, method string, rctx, args *goslo.Map) {
		g.Seen <- goSeen{Server: server, Endpoint: ep, Method: method, Args: args, Ctx: rctx}
	}
	rpc := goslo.NewEndpoint("", "1.3").
		Handle("echo", func(_ context.Context, rctx, args *goslo.Map) (any, error) {
			seen("RpcEndpoint", "echo", rctx, args)
			return args, nil
		}).
		Handle("context", func(_ context.Context, rctx, args *goslo.Map) (any, error) {
			seen("RpcEndpoint", "context", rctx, args)
			return rctx, nil
		}).
		Handle("boom", func(_ context.Context, rctx, args *goslo.Map) (any, error) {
			seen("RpcEndpoint", "boom", rctx, args)
			msg := "kaboom"
			if v, ok := args.Get("message"); ok {
				msg, _ = v.(string)
			}
			return nil, envelope.ValueError(msg)
		}).
		Handle("slow", func(ctx context.Context, rctx, args *goslo.Map) (any, error) {
			seen("RpcEndpoint", "slow", rctx, args)
			v, _ := args.Get("seconds")
			var secs float64
			switch x := v.(type) {
			case int64:
				secs = float64(x)
			case float64:
				secs = x
			}
			select {
			case <-time.After(time.Duration(secs * float64(time.Second))):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return v, nil
		}).
		Handle("whoami", func(_ context.Context, rctx, args *goslo.Map) (any, error) {
			seen("RpcEndpoint", "whoami", rctx, args)
			return server, nil
		}).
		Handle("cast_me", func(_ context.Context, rctx, args *goslo.Map) (any, error) {
			seen("RpcEndpoint", "cast_me", rctx, args)
			return nil, nil
		}).
		Handle("fanout_me", func(_ context.Context, rctx, args *goslo.Map) (any, error) {
			seen("RpcEndpoint", "fanout_me", rctx, args)
			return nil, nil
		})
	ns := goslo.NewEndpoint("ns", "2.1").
		Handle("ns_ping", func(_ context.Context, rctx, args *goslo.Map) (any, error) {
			seen("NsEndpoint", "ns_ping", rctx, args)
			return goslo.NewMap("pong", args, "server", server), nil
		})
	srv, err := goslo.NewRPCServer(tr, goslo.Target{Topic: topic, Server: server}, rpc, ns)
	require.NoError(t, err)
	require.NoError(t, srv.Start(context.Background()), "Go RPC server %s.%s did not start", topic, server)
	g.Srv = srv
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
	})
	return g
}

// Next is the next request the Go server handled.
func (g *goRPC) Next(t testing.TB, timeout time.Duration) goSeen {
	t.Helper()
	select {
	case s := <-g.Seen:
		return s
	case <-time.After(timeout):
		t.Fatalf("Go server %s handled nothing within %v", g.Name, timeout)
	}
	return goSeen{}
}

// None fails if the Go server handles anything within d.
func (g *goRPC) None(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case s := <-g.Seen:
		t.Fatalf("Go server %s: unexpected request %s (args %s)", g.Name, s.Method, envelope.Repr(s.Args))
	case <-time.After(d):
	}
}

// callCtx is a context for one Go call with a deadline of d.
func callCtx(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// mapKeys lists a Map's keys in order.
func mapKeys(m *goslo.Map) []string {
	var ks []string
	for _, kv := range m.Items() {
		ks = append(ks, kv.Key)
	}
	return ks
}

// brokerLog is the node's own log file (PRECONDITION_FAILED and other
// channel errors are logged there).
func brokerLog(t testing.TB, n *rabbittest.Node) string {
	t.Helper()
	b, err := os.ReadFile(n.Dir + "/log/" + n.Name + ".log")
	require.NoError(t, err)
	return string(b)
}

// channelErrors are the broker log's channel errors (406
// PRECONDITION_FAILED and the like: "Channel error on connection … vhost:
// '<vhost>' …", the reason on the next line) in vhost.
func channelErrors(t testing.TB, n *rabbittest.Node, vhost string) []string {
	t.Helper()
	var out []string
	lines := strings.Split(brokerLog(t, n), "\n")
	for i, l := range lines {
		low := strings.ToLower(l)
		if strings.Contains(low, "channel error") && strings.Contains(l, "vhost: '"+vhost+"'") {
			e := l
			if i+1 < len(lines) {
				e += " " + strings.TrimSpace(lines[i+1])
			}
			out = append(out, e)
		}
	}
	return out
}
