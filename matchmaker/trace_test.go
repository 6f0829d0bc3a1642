package matchmaker

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/internal/redistest"
	"github.com/goslo/goslo/internal/vectors"
)

var (
	monitorLine = regexp.MustCompile(`^[0-9.]+ \[\d+ ([^\]]+)\] (.*)$`)
	addrRE      = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+`)
	uuidRE      = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
)

func normalize(s string) string {
	return uuidRE.ReplaceAllString(addrRE.ReplaceAllString(s, "ADDR"), "UUID")
}

// traceCommands reads a MONITOR trace into normalized commands, dropping
// connection set-up (go-redis's HELLO, which redis-py 4.3 does not send).
func traceCommands(lines []string) []string {
	var out []string
	for _, l := range lines {
		m := monitorLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		cmd := m[2]
		// The schema sends upper-case names (as redis-py does); go-redis's
		// connection set-up (hello) and this test's snapshots are lower case.
		if name, _, _ := strings.Cut(cmd, " "); name != strings.ToUpper(name) {
			continue
		}
		out = append(out, normalize(cmd))
	}
	return out
}

func readTrace(t *testing.T, name string) []string {
	f, err := os.Open(filepath.Join(vectors.Dir(), name))
	require.NoError(t, err, "VECTORS MISSING")
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "#") {
			lines = append(lines, sc.Text())
		}
	}
	return traceCommands(lines)
}

func distinct(cmds []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range cmds {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// containsRun reports whether want appears as a contiguous run in got.
func containsRun(got, want []string) bool {
	for i := 0; i+len(want) <= len(got); i++ {
		ok := true
		for j := range want {
			if got[i+j] != want[j] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

type snapKey struct {
	Key     string
	Type    string
	Members []string
}

// snapshot is KEYS/TYPE/TTL/SMEMBERS, normalized and sorted; TTLs are
// checked to lie where the reference's do.
func snapshot(t *testing.T, addr string, wantTTL int64) []snapKey {
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
	defer c.Close()
	ctx := context.Background()
	keys, err := c.Keys(ctx, "*").Result()
	require.NoError(t, err)
	var out []snapKey
	for _, k := range keys {
		typ, err := c.Type(ctx, k).Result()
		require.NoError(t, err)
		ttl, err := c.Do(ctx, "ttl", k).Int64()
		require.NoError(t, err)
		require.True(t, ttl > wantTTL-10 && ttl <= wantTTL, "TTL of %s is %d", k, ttl)
		members, err := c.SMembers(ctx, k).Result()
		require.NoError(t, err)
		for i := range members {
			members[i] = normalize(members[i])
		}
		sort.Strings(members)
		out = append(out, snapKey{normalize(k), typ, members})
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
	return out
}

func expectedSnapshot(t *testing.T, trace, point string) []snapKey {
	b, err := os.ReadFile(filepath.Join(vectors.Dir(), "redis-state.json"))
	require.NoError(t, err)
	var doc struct {
		Traces map[string]struct {
			Snapshots []struct {
				Point string `json:"point"`
				Keys  map[string]struct {
					Type    string   `json:"type"`
					TTL     int64    `json:"ttl"`
					Members []string `json:"members"`
				} `json:"keys"`
			} `json:"snapshots"`
		} `json:"traces"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	for _, s := range doc.Traces[trace].Snapshots {
		if s.Point != point {
			continue
		}
		var out []snapKey
		for k, v := range s.Keys {
			ms := make([]string, len(v.Members))
			for i, m := range v.Members {
				ms[i] = normalize(m)
			}
			sort.Strings(ms)
			require.True(t, v.TTL > 290 && v.TTL <= 300)
			out = append(out, snapKey{normalize(k), v.Type, ms})
		}
		sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
		return out
	}
	t.Fatalf("no snapshot %q in redis-state.json", point)
	return nil
}

func newTestRedis(t *testing.T, addr string, cfg Config) *Redis {
	mm, err := NewRedis(context.Background(), []RedisAddr{{Addr: addr}}, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { mm.Close() })
	return mm
}

// TestTraceDirect replays the direct-mode scenario of redis-direct.txt
// with Go matchmakers (a server, a listener on two priorities, a client,
// a notifier) and compares the commands and the state with the capture.
func TestTraceDirect(t *testing.T) {
	r := redistest.Start(t)
	mon := redistest.StartMonitor(t, r.Addr)
	ctx := context.Background()
	cfg := DefaultConfig()
	expire := 300 * time.Second
	srvTarget := compat.Target{Topic: "demo", Server: "srv1"}

	server := newTestRedis(t, r.Addr, cfg)
	listener := newTestRedis(t, r.Addr, cfg)
	srvAddr := compat.HostPort("127.0.0.1", 52356)
	keep, err := StartKeeper(ctx, func(ctx context.Context) error {
		return server.Register(ctx, srvTarget, srvAddr, compat.Router, expire)
	}, func(ctx context.Context) error {
		return server.Unregister(ctx, srvTarget, srvAddr, compat.Router)
	}, 200*time.Millisecond, nil)
	require.NoError(t, err)
	var lkeeps []*Keeper
	for i, prio := range []string{"error", "info"} {
		tg := compat.Target{Topic: compat.NotificationTopic("notifications", prio)}
		host := compat.HostPort("127.0.0.1", 62778+i)
		k, err := StartKeeper(ctx, func(ctx context.Context) error {
			return listener.Register(ctx, tg, host, compat.Router, expire)
		}, func(ctx context.Context) error {
			return listener.Unregister(ctx, tg, host, compat.Router)
		}, 200*time.Millisecond, nil)
		require.NoError(t, err)
		lkeeps = append(lkeeps, k)
	}
	time.Sleep(500 * time.Millisecond) // a periodic re-registration or two
	require.Equal(t, expectedSnapshot(t, "direct", "direct: server registered"), snapshot(t, r.Addr, 300))

	client := newTestRedis(t, r.Addr, cfg)
	hosts, err := client.Hosts(ctx, srvTarget, compat.Router)
	require.NoError(t, err)
	require.Equal(t, []string{srvAddr}, hosts)
	hosts, err = client.HostsFanout(ctx, compat.Target{Topic: "demo", Fanout: true}, compat.Router)
	require.NoError(t, err)
	require.Equal(t, []string{srvAddr}, hosts)
	hosts, err = client.HostsByKey(ctx, compat.TargetKey(compat.Router, compat.Target{Topic: "notifications.info"}))
	require.NoError(t, err)
	require.Len(t, hosts, 1)

	require.NoError(t, keep.Stop(ctx))
	for _, k := range lkeeps {
		require.NoError(t, k.Stop(ctx))
	}
	require.Empty(t, snapshot(t, r.Addr, 300), "after server stop")
	time.Sleep(50 * time.Millisecond)

	got := traceCommands(mon.Lines())
	want := readTrace(t, "redis-direct.txt")
	require.Equal(t, distinct(want), distinct(got), "distinct commands (ADDR and UUID normalized)")
	block := []string{`"SADD" "ROUTER/demo/srv1" "ADDR"`, `"EXPIRE" "ROUTER/demo/srv1" "300"`, `"SADD" "ADDR" " "`, `"EXPIRE" "ADDR" "300"`,
		`"SADD" "ROUTER/demo" "ADDR"`, `"EXPIRE" "ROUTER/demo" "300"`, `"SADD" "ADDR" " "`, `"EXPIRE" "ADDR" "300"`}
	stop := []string{`"SREM" "ROUTER/demo/srv1" "ADDR"`, `"SREM" "ADDR" " "`, `"SREM" "ROUTER/demo" "ADDR"`, `"SREM" "ADDR" " "`}
	lookup := []string{`"SMEMBERS" "ROUTER/demo/srv1"`, `"TTL" "ADDR"`}
	for _, run := range [][]string{block, stop, lookup} {
		require.True(t, containsRun(want, run), "the reference trace has %v", run)
		require.True(t, containsRun(got, run), "goslo's trace has %v", run)
	}
	t.Logf("direct: %d reference commands (%d distinct) and %d goslo commands compared; snapshots: %d keys registered, 0 after stop",
		len(want), len(distinct(want)), len(got), len(expectedSnapshot(t, "direct", "direct: server registered")))
}

// TestTraceProxy replays redis-proxy.txt: a proxy's PUBLISHERS and ROUTERS
// records, a proxy-mode server and listeners registering their DEALER
// identities, the readers of each record, then the stops.
func TestTraceProxy(t *testing.T) {
	r := redistest.Start(t)
	mon := redistest.StartMonitor(t, r.Addr)
	ctx := context.Background()
	cfg := DefaultConfig()
	expire := 300 * time.Second

	proxy := newTestRedis(t, r.Addr, cfg)
	pub := Publisher{Pub: "127.0.0.1:60219", Frontend: "127.0.0.1:63483"}
	be := "127.0.0.1:61273"
	pk, err := StartKeeper(ctx, func(ctx context.Context) error {
		if err := proxy.RegisterPublisher(ctx, pub, expire); err != nil {
			return err
		}
		return proxy.RegisterRouter(ctx, be, expire)
	}, func(ctx context.Context) error {
		if err := proxy.UnregisterPublisher(ctx, pub); err != nil {
			return err
		}
		return proxy.UnregisterRouter(ctx, be)
	}, 200*time.Millisecond, nil)
	require.NoError(t, err)
	require.Equal(t, expectedSnapshot(t, "proxy", "proxy: proxy registered"), snapshot(t, r.Addr, 300))

	server := newTestRedis(t, r.Addr, cfg)
	routers, err := server.Routers(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{be}, routers)
	pubs, err := server.Publishers(ctx)
	require.NoError(t, err)
	require.Equal(t, []Publisher{pub}, pubs)

	type reg struct {
		t  compat.Target
		id string
	}
	regs := []reg{{compat.Target{Topic: "demo", Server: "srv1"}, ""}, {compat.Target{Topic: "notifications.error"}, ""}, {compat.Target{Topic: "notifications.info"}, ""}}
	var keeps []*Keeper
	for i := range regs {
		rg := &regs[i]
		rg.id = compat.ServerIdentity("127.0.0.1", rg.t, fmt.Sprintf("fe5f217f-0a73-49ba-b4a5-48f99724d8%02d", i))
		k, err := StartKeeper(ctx, func(ctx context.Context) error {
			return server.Register(ctx, rg.t, rg.id, compat.Dealer, expire)
		}, func(ctx context.Context) error {
			return server.Unregister(ctx, rg.t, rg.id, compat.Dealer)
		}, 200*time.Millisecond, nil)
		require.NoError(t, err)
		keeps = append(keeps, k)
	}
	require.Equal(t, expectedSnapshot(t, "proxy", "proxy: proxy + server registered"), snapshot(t, r.Addr, 300))

	client := newTestRedis(t, r.Addr, cfg)
	pubs, err = client.Publishers(ctx)
	require.NoError(t, err)
	require.Equal(t, []Publisher{pub}, pubs)
	hosts, err := client.HostsRetry(ctx, regs[0].t, compat.Dealer)
	require.NoError(t, err)
	require.Equal(t, []string{regs[0].id}, hosts)

	for _, k := range keeps {
		require.NoError(t, k.Stop(ctx))
	}
	require.Equal(t, expectedSnapshot(t, "proxy", "proxy: after server stop"), snapshot(t, r.Addr, 300))
	require.NoError(t, pk.Stop(ctx))
	require.Empty(t, snapshot(t, r.Addr, 300), "after proxy stop")
	time.Sleep(50 * time.Millisecond)

	got := traceCommands(mon.Lines())
	want := readTrace(t, "redis-proxy.txt")
	require.Equal(t, distinct(want), distinct(got), "distinct commands (ADDR and UUID normalized)")
	for _, run := range [][]string{
		{`"SADD" "PUBLISHERS" "ADDR,ADDR"`, `"EXPIRE" "PUBLISHERS" "300"`, `"SADD" "ADDR,ADDR" " "`, `"EXPIRE" "ADDR,ADDR" "300"`,
			`"SADD" "ROUTERS" "ADDR"`, `"EXPIRE" "ROUTERS" "300"`, `"SADD" "ADDR" " "`, `"EXPIRE" "ADDR" "300"`},
		{`"SMEMBERS" "PUBLISHERS"`, `"TTL" "ADDR,ADDR"`},
		{`"SREM" "PUBLISHERS" "ADDR,ADDR"`, `"SREM" "ADDR,ADDR" " "`, `"SREM" "ROUTERS" "ADDR"`, `"SREM" "ADDR" " "`},
		{`"SADD" "DEALER/demo/srv1" "127.0.0.1/demo/srv1/UUID"`, `"EXPIRE" "DEALER/demo/srv1" "300"`, `"SADD" "127.0.0.1/demo/srv1/UUID" " "`},
	} {
		require.True(t, containsRun(want, run), "the reference trace has %v", run)
		require.True(t, containsRun(got, run), "goslo's trace has %v", run)
	}
	t.Logf("proxy: %d reference commands (%d distinct) and %d goslo commands compared; 4 snapshots compared", len(want), len(distinct(want)), len(got))
}
