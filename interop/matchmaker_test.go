package interop

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/internal/redistest"
	"github.com/goslo/goslo/matchmaker"
)

// noLeaks checks, after everything the test started has been cleaned up
// (peer, servers, matchmakers), that no goroutine it started is left.
func noLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

type pyMM struct {
	t  *testing.T
	p  *Peer
	id int
}

// newPyMM builds the real 8.1.4 MatchmakerRedis in the peer for url.
func newPyMM(t *testing.T, p *Peer, url string, expire int) *pyMM {
	var id int
	require.NoError(t, p.Do("mm_new", map[string]any{"url": url, "zmq_target_expire": expire}, &id))
	return &pyMM{t, p, id}
}

func (m *pyMM) call(method string, args map[string]any) []string {
	m.t.Helper()
	a := map[string]any{"mm": m.id, "method": method}
	for k, v := range args {
		a[k] = v
	}
	var out any
	require.NoError(m.t, m.p.Do("mm_call", a, &out), method)
	var hosts []string
	if l, ok := out.([]any); ok {
		for _, e := range l {
			switch x := e.(type) {
			case string:
				hosts = append(hosts, x)
			case []any:
				hosts = append(hosts, x[0].(string)+","+x[1].(string))
			}
		}
	}
	return hosts
}

func pyTarget(t compat.Target) map[string]any {
	m := map[string]any{"topic": t.Topic, "fanout": t.Fanout}
	if t.Server != "" {
		m["server"] = t.Server
	}
	return m
}

func sorted(s []string) []string { s = append([]string(nil), s...); sort.Strings(s); return s }

// TestMatchmakerInterop: the real 8.1.4 Redis matchmaker and goslo's share
// one redis-server. Each reads what the other registered; after a TTL
// expires neither returns the dead host.
func TestMatchmakerInterop(t *testing.T) {
	noLeaks(t)
	r := redistest.Start(t)
	p := StartPeer(t, EnvZMQ814)
	py := newPyMM(t, p, "zmq+redis://"+r.Addr, 300)
	ctx := context.Background()
	cfg := matchmaker.DefaultConfig()
	gomm, err := matchmaker.NewRedis(ctx, []matchmaker.RedisAddr{{Addr: r.Addr}}, cfg)
	require.NoError(t, err)
	defer gomm.Close()

	srv := compat.Target{Topic: "demo", Server: "srv1@backend"}
	cases := 0

	// Python registers, Go reads.
	py.call("register", map[string]any{"target": pyTarget(srv), "host": "127.0.0.1:50001", "listener_type": "ROUTER", "expire": 300})
	py.call("register", map[string]any{"target": pyTarget(srv), "host": "127.0.0.1/demo/srv1/9c1e6b0a-1111-4222-8333-444455556666", "listener_type": "DEALER", "expire": 300})
	py.call("register_publisher", map[string]any{"publisher": []string{"127.0.0.1:50003", "127.0.0.1:50004"}, "expire": 300})
	py.call("register_router", map[string]any{"router": "127.0.0.1:50005", "expire": 300})
	hosts, err := gomm.Hosts(ctx, srv, compat.Router)
	require.NoError(t, err)
	require.Equal(t, []string{"127.0.0.1:50001"}, hosts)
	hosts, err = gomm.HostsFanout(ctx, compat.Target{Topic: "demo", Fanout: true}, compat.Dealer)
	require.NoError(t, err)
	require.Equal(t, []string{"127.0.0.1/demo/srv1/9c1e6b0a-1111-4222-8333-444455556666"}, hosts)
	pubs, err := gomm.Publishers(ctx)
	require.NoError(t, err)
	require.Equal(t, []matchmaker.Publisher{{Pub: "127.0.0.1:50003", Frontend: "127.0.0.1:50004"}}, pubs)
	routers, err := gomm.Routers(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"127.0.0.1:50005"}, routers)
	cases += 4

	// Go registers, Python reads.
	srv2 := compat.Target{Topic: "compute", Server: "node-2"}
	require.NoError(t, gomm.Register(ctx, srv2, "127.0.0.1:50011", compat.Router, 300*time.Second))
	require.NoError(t, gomm.Register(ctx, compat.Target{Topic: "compute", Server: "node-3"}, "127.0.0.1:50012", compat.Router, 300*time.Second))
	require.NoError(t, gomm.RegisterPublisher(ctx, matchmaker.Publisher{Pub: "127.0.0.1:50013", Frontend: "127.0.0.1:50014"}, 300*time.Second))
	require.NoError(t, gomm.RegisterRouter(ctx, "127.0.0.1:50015", 300*time.Second))
	require.Equal(t, []string{"127.0.0.1:50011"}, py.call("get_hosts", map[string]any{"target": pyTarget(srv2), "listener_type": "ROUTER"}))
	require.Equal(t, []string{"127.0.0.1:50011", "127.0.0.1:50012"},
		py.call("get_hosts_fanout", map[string]any{"target": pyTarget(compat.Target{Topic: "compute", Fanout: true}), "listener_type": "ROUTER"}))
	require.Equal(t, []string{"127.0.0.1:50003,127.0.0.1:50004", "127.0.0.1:50013,127.0.0.1:50014"}, py.call("get_publishers", nil))
	require.Equal(t, []string{"127.0.0.1:50005", "127.0.0.1:50015"}, py.call("get_routers", nil))
	cases += 4

	// Unregistration by either side is seen by the other.
	require.NoError(t, gomm.Unregister(ctx, srv2, "127.0.0.1:50011", compat.Router))
	require.Empty(t, py.call("get_hosts", map[string]any{"target": pyTarget(srv2), "listener_type": "ROUTER"}))
	py.call("unregister", map[string]any{"target": pyTarget(srv), "host": "127.0.0.1:50001", "listener_type": "ROUTER"})
	hosts, err = gomm.Hosts(ctx, srv, compat.Router)
	require.NoError(t, err)
	require.Empty(t, hosts)
	cases += 2

	// Expiry: records with a 2 s TTL from both sides vanish for both.
	short := newPyMM(t, p, "zmq+redis://"+r.Addr, 2)
	dead := compat.Target{Topic: "dying"}
	short.call("register", map[string]any{"target": pyTarget(dead), "host": "127.0.0.1:50021", "listener_type": "ROUTER", "expire": 2})
	require.NoError(t, gomm.Register(ctx, dead, "127.0.0.1:50022", compat.Router, 2*time.Second))
	hosts, err = gomm.Hosts(ctx, dead, compat.Router)
	require.NoError(t, err)
	require.Equal(t, []string{"127.0.0.1:50021", "127.0.0.1:50022"}, sorted(hosts))
	require.Equal(t, []string{"127.0.0.1:50021", "127.0.0.1:50022"}, py.call("get_hosts", map[string]any{"target": pyTarget(dead), "listener_type": "ROUTER"}))
	time.Sleep(2500 * time.Millisecond)
	hosts, err = gomm.Hosts(ctx, dead, compat.Router)
	require.NoError(t, err)
	require.Empty(t, hosts, "go still returns dead hosts")
	require.Empty(t, py.call("get_hosts", map[string]any{"target": pyTarget(dead), "listener_type": "ROUTER"}), "python still returns dead hosts")
	cases += 2
	t.Logf("matchmaker interop with 8.1.4: %d cases agree (python->go reads, go->python reads, unregister, TTL expiry)", cases)
}

// mmStep is one matchmaker call, run the same way by Python and by Go.
type mmStep struct {
	method string
	target compat.Target
	key    string // get_hosts_by_key
	host   string
	lt     string
	expire int
	pub    [2]string
}

func (s mmStep) py(m *pyMM) []string {
	args := map[string]any{"target": pyTarget(s.target), "host": s.host, "listener_type": s.lt, "expire": s.expire}
	switch s.method {
	case "get_hosts_by_key":
		args["target"] = s.key
	case "register_publisher", "unregister_publisher":
		args["publisher"] = []string{s.pub[0], s.pub[1]}
	case "register_router", "unregister_router":
		args["router"] = s.host
	}
	return m.call(s.method, args)
}

func (s mmStep) goCall(t *testing.T, mm matchmaker.Matchmaker) []string {
	ctx := context.Background()
	exp := time.Duration(s.expire) * time.Second
	var out []string
	var err error
	switch s.method {
	case "register":
		err = mm.Register(ctx, s.target, s.host, s.lt, exp)
	case "unregister":
		err = mm.Unregister(ctx, s.target, s.host, s.lt)
	case "get_hosts":
		out, err = mm.Hosts(ctx, s.target, s.lt)
	case "get_hosts_fanout":
		out, err = mm.HostsFanout(ctx, s.target, s.lt)
	case "get_hosts_by_key":
		out, err = mm.HostsByKey(ctx, s.key)
	case "register_publisher":
		err = mm.RegisterPublisher(ctx, matchmaker.Publisher{Pub: s.pub[0], Frontend: s.pub[1]}, exp)
	case "unregister_publisher":
		err = mm.UnregisterPublisher(ctx, matchmaker.Publisher{Pub: s.pub[0], Frontend: s.pub[1]})
	case "get_publishers":
		var pubs []matchmaker.Publisher
		pubs, err = mm.Publishers(ctx)
		for _, p := range pubs {
			out = append(out, p.Pub+","+p.Frontend)
		}
	case "register_router":
		err = mm.RegisterRouter(ctx, s.host, exp)
	case "unregister_router":
		err = mm.UnregisterRouter(ctx, s.host)
	case "get_routers":
		out, err = mm.Routers(ctx)
	default:
		t.Fatalf("unknown step %q", s.method)
	}
	require.NoError(t, err, s.method)
	return sorted(out)
}

// normalizeReads sorts each run of TTL commands: redis-py iterates the
// members of a Python set (hash order), go-redis keeps Redis' reply order.
func normalizeReads(cmds []redistest.Command) [][]string {
	var out [][]string
	for i := 0; i < len(cmds); i++ {
		if cmds[i].Args[0] != "TTL" {
			out = append(out, cmds[i].Args)
			continue
		}
		j := i
		for j < len(cmds) && cmds[j].Args[0] == "TTL" {
			j++
		}
		run := make([][]string, 0, j-i)
		for _, c := range cmds[i:j] {
			run = append(run, c.Args)
		}
		sort.Slice(run, func(a, b int) bool { return run[a][1] < run[b][1] })
		out = append(out, run...)
		i = j - 1
	}
	return out
}

// TestMatchmakerInteropSameCommands: the real 8.1.4 matchmaker and goslo's
// run the same script of calls against one password-protected redis-server;
// MONITOR shows the same commands, argument for argument and in the same
// order (connection set-up included: AUTH, then PING), and the calls return
// the same results.
func TestMatchmakerInteropSameCommands(t *testing.T) {
	noLeaks(t)
	const pw = "s3cret pass"
	r := redistest.Start(t, "--requirepass", pw)
	mon := redistest.StartMonitor(t, r.Addr, pw)
	p := StartPeer(t, EnvZMQ814)
	srv := compat.Target{Topic: "demo", Server: "srv1@backend"}
	script := []mmStep{
		{method: "register", target: srv, host: "127.0.0.1:50001", lt: compat.Router, expire: 300},
		{method: "register", target: compat.Target{Topic: "demo", Server: "srv2"}, host: "127.0.0.1:50002", lt: compat.Router, expire: 300},
		{method: "register", target: compat.Target{Topic: "notifications.info"}, host: "127.0.0.1:50003", lt: compat.Router, expire: 0},
		{method: "register", target: srv, host: "127.0.0.1/demo/srv1/9c1e6b0a-1111-4222-8333-444455556666", lt: compat.Dealer, expire: 300},
		{method: "get_hosts", target: srv, lt: compat.Router},
		{method: "get_hosts", target: compat.Target{Topic: "demo", Server: "srv1", Fanout: true}, lt: compat.Router},
		{method: "get_hosts_fanout", target: compat.Target{Topic: "demo", Fanout: true}, lt: compat.Router},
		{method: "get_hosts", target: compat.Target{Topic: "notifications.info"}, lt: compat.Router},
		{method: "get_hosts_by_key", key: compat.TargetKey(compat.Dealer, srv)},
		{method: "register_publisher", pub: [2]string{"127.0.0.1:50010", "127.0.0.1:50011"}, expire: 300},
		{method: "register_router", host: "127.0.0.1:50012", expire: 300},
		{method: "get_publishers"},
		{method: "get_routers"},
		{method: "unregister", target: srv, host: "127.0.0.1:50001", lt: compat.Router},
		{method: "unregister", target: compat.Target{Topic: "demo", Server: "srv2"}, host: "127.0.0.1:50002", lt: compat.Router},
		{method: "unregister", target: compat.Target{Topic: "notifications.info"}, host: "127.0.0.1:50003", lt: compat.Router},
		{method: "unregister", target: srv, host: "127.0.0.1/demo/srv1/9c1e6b0a-1111-4222-8333-444455556666", lt: compat.Dealer},
		{method: "unregister_publisher", pub: [2]string{"127.0.0.1:50010", "127.0.0.1:50011"}},
		{method: "unregister_router", host: "127.0.0.1:50012"},
		{method: "get_hosts_fanout", target: compat.Target{Topic: "demo"}, lt: compat.Router},
		{method: "get_publishers"},
	}
	// MONITOR is asynchronous but in execution order: once it reported an
	// ECHO sent on a barrier connection of the test's own, it reported
	// every command run before. The barrier's commands are left out.
	bar, err := net.Dial("tcp", r.Addr)
	require.NoError(t, err)
	defer bar.Close()
	barR := bufio.NewReader(bar)
	barDo := func(args ...string) string {
		_, err := bar.Write(redistest.EncodeCommand(args...))
		require.NoError(t, err)
		line, err := barR.ReadString('\n')
		require.NoError(t, err)
		if strings.HasPrefix(line, "$") { // a bulk reply: its data line follows
			line, err = barR.ReadString('\n')
			require.NoError(t, err)
		}
		return line
	}
	require.True(t, strings.HasPrefix(barDo("AUTH", pw), "+OK"))
	barClient := bar.LocalAddr().String()
	barriers := 0
	settle := func() []redistest.Command {
		barriers++
		token := fmt.Sprintf("goslo-monitor-barrier-%d", barriers)
		require.Equal(t, token+"\r\n", barDo("ECHO", token))
		var out []redistest.Command
		require.Eventually(t, func() bool {
			out = out[:0]
			seen := false
			for _, c := range mon.Commands() {
				if c.Client == barClient {
					seen = seen || (len(c.Args) == 2 && strings.EqualFold(c.Args[0], "ECHO") && c.Args[1] == token)
					continue
				}
				out = append(out, c)
			}
			return seen
		}, 10*time.Second, 5*time.Millisecond, "MONITOR never reported the barrier")
		return out
	}

	py := newPyMM(t, p, "zmq+redis://:s3cret%20pass@"+r.Addr, 300)
	var pyResults [][]string
	for _, s := range script {
		pyResults = append(pyResults, s.py(py))
	}
	pyCmds := settle()

	gomm, err := matchmaker.NewRedis(context.Background(), []matchmaker.RedisAddr{{Addr: r.Addr, Password: pw}}, matchmaker.DefaultConfig())
	require.NoError(t, err)
	defer gomm.Close()
	var goResults [][]string
	for _, s := range script {
		goResults = append(goResults, s.goCall(t, gomm))
	}
	goCmds := settle()[len(pyCmds):]

	pyClients, goClients := map[string]bool{}, map[string]bool{}
	for _, c := range pyCmds {
		pyClients[c.Client] = true
	}
	for _, c := range goCmds {
		require.False(t, pyClients[c.Client], "phases overlap")
		goClients[c.Client] = true
	}
	require.Equal(t, pyResults, goResults, "results of the script")
	require.Equal(t, normalizeReads(pyCmds), normalizeReads(goCmds), "MONITOR: commands of 8.1.4 vs goslo")
	require.Equal(t, "AUTH", pyCmds[0].Args[0]) // Redis 7 shows the password as "(redacted)"
	require.Equal(t, []string{"PING"}, pyCmds[1].Args)
	t.Logf("same %d commands from 8.1.4 (%d connection) and goslo (%d connection), %d steps with equal results",
		len(goCmds), len(pyClients), len(goClients), len(script))
}
