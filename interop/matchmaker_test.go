package interop

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/internal/redistest"
	"github.com/goslo/goslo/matchmaker"
)

type pyMM struct {
	t  *testing.T
	p  *Peer
	id int
}

func newPyMM(t *testing.T, p *Peer, addr string, expire int) *pyMM {
	var id int
	require.NoError(t, p.Do("mm_new", map[string]any{"url": "zmq+redis://" + addr, "zmq_target_expire": expire}, &id))
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
	r := redistest.Start(t)
	p := StartPeer(t, EnvZMQ814)
	py := newPyMM(t, p, r.Addr, 300)
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
	short := newPyMM(t, p, r.Addr, 2)
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
