package matchmaker

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/internal/redistest"
	"github.com/goslo/goslo/internal/vectors"
	"github.com/goslo/goslo/internal/zmqwire"
)

// The replays below use the very members of the captured traces (addresses
// and DEALER identities with their UUIDs), so goslo's commands can be
// compared with the reference's exactly; only client ports and timestamps
// differ.

// op is one logical matchmaker operation rebuilt from MONITOR commands:
//
//	PING
//	REG   SADD k m, EXPIRE k T, SADD m " ", EXPIRE m T   (no EXPIREs when T <= 0)
//	UNREG SREM k m, SREM m " "
//	READ  SMEMBERS k, then TTL m for members
type op struct {
	kind, key, member, ttl string
	ttls                   []string
	stage                  int
	first                  int // index of its first command in the trace
}

func (o *op) String() string {
	switch o.kind {
	case "REG":
		return fmt.Sprintf("REG %q %q ttl=%s", o.key, o.member, o.ttl)
	case "UNREG":
		return fmt.Sprintf("UNREG %q %q", o.key, o.member)
	case "READ":
		t := append([]string(nil), o.ttls...)
		sort.Strings(t)
		return fmt.Sprintf("READ %q ttl%q", o.key, t)
	}
	return o.kind
}

// tokenize rebuilds ops from a whole trace, in any interleaving of
// connections and goroutines. Every command must belong to a complete op in
// the order above; anything else (HELLO, CLIENT, DEL, a pipeline out of
// order) is an error.
func tokenize(cmds []redistest.Command) ([]*op, error) {
	var ops []*op
	var openReg, openUnreg []*op
	lastRead := map[string]*op{} // per client connection
	var anyRead *op
	take := func(list *[]*op, match func(*op) bool) *op {
		for i, o := range *list {
			if match(o) {
				return o
			}
			_ = i
		}
		return nil
	}
	drop := func(list *[]*op, o *op) {
		for i := range *list {
			if (*list)[i] == o {
				*list = append((*list)[:i], (*list)[i+1:]...)
				return
			}
		}
	}
	for i, c := range cmds {
		a := c.Args
		switch {
		case len(a) == 1 && a[0] == "PING":
			ops = append(ops, &op{kind: "PING", first: i})
		case len(a) == 3 && a[0] == "SADD" && a[2] != " ":
			o := &op{kind: "REG", key: a[1], member: a[2], stage: 1, first: i}
			ops = append(ops, o)
			openReg = append(openReg, o)
		case len(a) == 3 && a[0] == "EXPIRE":
			if o := take(&openReg, func(o *op) bool { return o.stage == 1 && o.key == a[1] }); o != nil {
				o.ttl, o.stage = a[2], 2
				continue
			}
			o := take(&openReg, func(o *op) bool { return o.stage == 3 && o.member == a[1] && o.ttl == a[2] })
			if o == nil {
				return nil, fmt.Errorf("command %d %q: EXPIRE outside a registration", i, a)
			}
			drop(&openReg, o)
		case len(a) == 3 && a[0] == "SADD" && a[2] == " ":
			o := take(&openReg, func(o *op) bool { return o.member == a[1] && (o.stage == 2 || o.stage == 1) })
			if o == nil {
				return nil, fmt.Errorf("command %d %q: liveness SADD outside a registration", i, a)
			}
			if o.stage == 1 { // no expiry: SADD, SADD
				o.ttl = "none"
				drop(&openReg, o)
				continue
			}
			o.stage = 3
		case len(a) == 3 && a[0] == "SREM" && a[2] != " ":
			o := &op{kind: "UNREG", key: a[1], member: a[2], first: i}
			ops = append(ops, o)
			openUnreg = append(openUnreg, o)
		case len(a) == 3 && a[0] == "SREM" && a[2] == " ":
			o := take(&openUnreg, func(o *op) bool { return o.member == a[1] })
			if o == nil {
				return nil, fmt.Errorf("command %d %q: liveness SREM outside an unregistration", i, a)
			}
			drop(&openUnreg, o)
		case len(a) == 2 && a[0] == "SMEMBERS":
			o := &op{kind: "READ", key: a[1], first: i}
			ops = append(ops, o)
			lastRead[c.Client], anyRead = o, o
		case len(a) == 2 && a[0] == "TTL":
			o := lastRead[c.Client]
			if o == nil {
				o = anyRead
			}
			if o == nil {
				return nil, fmt.Errorf("command %d %q: TTL outside a read", i, a)
			}
			o.ttls = append(o.ttls, a[1])
		default:
			return nil, fmt.Errorf("command %d %q: not a matchmaker command", i, a)
		}
	}
	if len(openReg)+len(openUnreg) > 0 {
		return nil, fmt.Errorf("incomplete operations at the end: %v %v", openReg, openUnreg)
	}
	return ops, nil
}

func distinctOps(ops []*op) []string {
	seen := map[string]bool{}
	var out []string
	for _, o := range ops {
		if s := o.String(); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func countKind(ops []*op, kind string) int {
	n := 0
	for _, o := range ops {
		if o.kind == kind {
			n++
		}
	}
	return n
}

// writerPattern is what one registrant wrote, in order, as
// "cycle x n; tail": the registration cycle (e.g. REG L/topic/server then
// REG L/topic) repeated n times, then the unregistrations.
func writerPattern(t *testing.T, ops []*op, members ...string) (cycle, tail []string, n int) {
	t.Helper()
	mine := map[string]bool{}
	for _, m := range members {
		mine[m] = true
	}
	var seq []string
	for _, o := range ops {
		if (o.kind == "REG" || o.kind == "UNREG") && mine[o.member] {
			seq = append(seq, o.String())
		}
	}
	require.NotEmpty(t, seq, "no writes for %v", members)
	p := 1
	for p < len(seq) && seq[p] != seq[0] && strings.HasPrefix(seq[p], "REG") {
		p++
	}
	cycle = seq[:p]
	i := 0
	for i+p <= len(seq) && equalStrings(seq[i:i+p], cycle) {
		i += p
		n++
	}
	tail = seq[i:]
	for _, s := range tail {
		require.True(t, strings.HasPrefix(s, "UNREG"), "%v: %q after the registration cycles %v", members, s, cycle)
	}
	return cycle, tail, n
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// readTrace parses a captured MONITOR trace.
func readTrace(t *testing.T, name string) []redistest.Command {
	f, err := os.Open(filepath.Join(vectors.Dir(), name))
	require.NoError(t, err, "VECTORS MISSING")
	defer f.Close()
	var out []redistest.Command
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		c, ok := redistest.ParseMonitorLine(sc.Text())
		require.True(t, ok, "unparsable trace line %q", sc.Text())
		out = append(out, c)
	}
	require.NotEmpty(t, out)
	return out
}

// harness is the test's own Redis connection for state snapshots; its
// commands are removed from the captured trace by client address, as the
// reference capture removed its harness's.
type harness struct {
	c     *redis.Client
	mu    sync.Mutex
	conns map[string]bool
}

func newHarness(t *testing.T, addr string) *harness {
	h := &harness{conns: map[string]bool{}}
	h.c = redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				h.mu.Lock()
				h.conns[c.LocalAddr().String()] = true
				h.mu.Unlock()
			}
			return c, err
		}})
	t.Cleanup(func() { h.c.Close() })
	return h
}

// settle waits until mon has seen every command Redis ran before it
// returns: MONITOR reports asynchronously, but in execution order, so once
// the harness's own ECHO of a fresh token is in, all earlier commands are.
// The harness's commands are left out of the trace.
func (h *harness) settle(t *testing.T, mon *redistest.Monitor) {
	t.Helper()
	settleMonitor(t, h.c, mon)
}

// settleMonitor waits until mon has seen every command its server ran
// before the call: c (a client of that server) sends an ECHO of a fresh
// token, which MONITOR reports after all earlier commands.
func settleMonitor(t *testing.T, c *redis.Client, mon *redistest.Monitor) {
	t.Helper()
	token := fmt.Sprintf("goslo-monitor-barrier-%d", time.Now().UnixNano())
	require.NoError(t, c.Echo(context.Background(), token).Err())
	require.Eventually(t, func() bool {
		for _, c := range mon.Commands() {
			if len(c.Args) == 2 && strings.EqualFold(c.Args[0], "ECHO") && c.Args[1] == token {
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "MONITOR never reported the barrier")
}

// reregistered waits until each keeper registered at start and again,
// as the reference's trace shows every registrant doing.
func reregistered(t *testing.T, keepers ...*Keeper) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, k := range keepers {
			if k.Registrations() < 2 {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "a periodic re-registration")
}

// trace is what the monitor saw from everyone but the harness.
func (h *harness) trace(mon *redistest.Monitor) []redistest.Command {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []redistest.Command
	for _, c := range mon.Commands() {
		if !h.conns[c.Client] {
			out = append(out, c)
		}
	}
	return out
}

type snapKey struct {
	Key     string
	Type    string
	Members []string
}

// snapshot is KEYS/TYPE/TTL/SMEMBERS like the reference's, sorted; every
// TTL must lie in (290, 300] as the captured ones do.
func (h *harness) snapshot(t *testing.T) []snapKey {
	t.Helper()
	ctx := context.Background()
	keys, err := h.c.Keys(ctx, "*").Result()
	require.NoError(t, err)
	out := []snapKey{}
	for _, k := range keys {
		typ, err := h.c.Type(ctx, k).Result()
		require.NoError(t, err)
		ttl, err := h.c.TTL(ctx, k).Result()
		require.NoError(t, err)
		require.True(t, ttl > 290*time.Second && ttl <= 300*time.Second, "TTL of %s is %v", k, ttl)
		members, err := h.c.SMembers(ctx, k).Result()
		require.NoError(t, err)
		sort.Strings(members)
		out = append(out, snapKey{k, typ, members})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func expectedSnapshot(t *testing.T, trace, point string) []snapKey {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectors.Dir(), "redis-state.json"))
	require.NoError(t, err, "VECTORS MISSING")
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
		out := []snapKey{}
		for k, v := range s.Keys {
			ms := append([]string(nil), v.Members...)
			sort.Strings(ms)
			require.True(t, v.TTL > 290 && v.TTL <= 300)
			out = append(out, snapKey{k, v.Type, ms})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
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

func keep(t *testing.T, register, unregister func(context.Context) error) *Keeper {
	k, err := StartKeeper(context.Background(), register, unregister, 150*time.Millisecond, nil)
	require.NoError(t, err)
	return k
}

// keepReg keeps member registered for tg, as a server's target updater does.
func keepReg(t *testing.T, mm Matchmaker, tg compat.Target, member, lt string) *Keeper {
	return keep(t, func(ctx context.Context) error { return mm.Register(ctx, tg, member, lt, 300*time.Second) },
		func(ctx context.Context) error { return mm.Unregister(ctx, tg, member, lt) })
}

// traceReport compares goslo's trace with the reference's and returns
// figures for the log.
type traceReport struct {
	refCmds, goCmds, refOps, goOps, distinct, writers, snapshotKeys int
}

func compareTraces(t *testing.T, ref, got []redistest.Command, writers [][]string) traceReport {
	t.Helper()
	refOps, err := tokenize(ref)
	require.NoError(t, err, "the reference trace")
	goOps, err := tokenize(got)
	require.NoError(t, err, "goslo's trace: every command must be part of a matchmaker operation")
	require.Equal(t, distinctOps(refOps), distinctOps(goOps), "distinct operations (keys, members, TTLs, liveness, reads)")
	require.Equal(t, countKind(refOps, "PING"), countKind(goOps, "PING"), "one PING per matchmaker at start")
	for _, w := range writers {
		rc, rt, rn := writerPattern(t, refOps, w...)
		gc, gt, gn := writerPattern(t, goOps, w...)
		require.Equal(t, rc, gc, "registration cycle of %v", w)
		require.Equal(t, rt, gt, "unregistration of %v", w)
		require.GreaterOrEqual(t, rn, 2, "the reference registers at start and again")
		require.GreaterOrEqual(t, gn, 2, "goslo registers at start and again")
	}
	return traceReport{refCmds: len(ref), goCmds: len(got), refOps: len(refOps), goOps: len(goOps),
		distinct: len(distinctOps(refOps)), writers: len(writers)}
}

func (r traceReport) log(t *testing.T, name string) {
	t.Logf("%s: %d reference commands (%d operations) and %d goslo commands (%d operations) compared: %d distinct operations equal, "+
		"%d registrants' write sequences equal; %d snapshot entries equal",
		name, r.refCmds, r.refOps, r.goCmds, r.goOps, r.distinct, r.writers, r.snapshotKeys)
}

// TestTraceDirect replays redis-direct.txt with goslo matchmakers in the
// reference's roles (an RPC server and a notification listener on two
// priorities, each with its matchmaker; an RPC client and a notifier),
// captures MONITOR on its own redis-server and compares commands and state.
func TestTraceDirect(t *testing.T) {
	r := redistest.Start(t)
	h := newHarness(t, r.Addr)
	mon := redistest.StartMonitor(t, r.Addr)
	ctx := context.Background()
	cfg := DefaultConfig()
	srvTarget := compat.Target{Topic: "demo", Server: "srv1"}
	const srvAddr, errAddr, infoAddr = "127.0.0.1:52356", "127.0.0.1:62778", "127.0.0.1:55098"

	server := newTestRedis(t, r.Addr, cfg)
	listener := newTestRedis(t, r.Addr, cfg)
	keepers := []*Keeper{keepReg(t, server, srvTarget, srvAddr, compat.Router)}
	for prio, addr := range map[string]string{"error": errAddr, "info": infoAddr} {
		tg := compat.Target{Topic: compat.NotificationTopic("notifications", prio)}
		keepers = append(keepers, keepReg(t, listener, tg, addr, compat.Router))
	}
	reregistered(t, keepers...)
	var rep traceReport
	snap := h.snapshot(t)
	require.Equal(t, expectedSnapshot(t, "direct", "direct: server registered"), snap)
	rep.snapshotKeys += len(snap)

	client := newTestRedis(t, r.Addr, cfg)
	notifier := newTestRedis(t, r.Addr, cfg)
	hosts, err := client.HostsRetry(ctx, srvTarget, compat.Router) // call/cast
	require.NoError(t, err)
	require.Equal(t, []string{srvAddr}, hosts)
	hosts, err = client.HostsFanout(ctx, compat.Target{Topic: "demo", Fanout: true}, compat.Router)
	require.NoError(t, err)
	require.Equal(t, []string{srvAddr}, hosts)
	hosts, err = notifier.HostsFanout(ctx, compat.Target{Topic: "notifications.info"}, compat.Router)
	require.NoError(t, err)
	require.Equal(t, []string{infoAddr}, hosts)
	// The routing-table refresh reads the same keys again.
	hosts, err = client.HostsByKey(ctx, compat.TargetKey(compat.Router, srvTarget))
	require.NoError(t, err)
	require.Equal(t, []string{srvAddr}, hosts)

	for _, k := range keepers {
		require.NoError(t, k.Stop(ctx))
	}
	snap = h.snapshot(t)
	require.Equal(t, expectedSnapshot(t, "direct", "direct: after server stop"), snap)
	rep.snapshotKeys += len(snap)
	h.settle(t, mon)

	got := h.trace(mon)
	rep2 := compareTraces(t, readTrace(t, "redis-direct.txt"), got, [][]string{{srvAddr}, {errAddr}, {infoAddr}})
	rep2.snapshotKeys = rep.snapshotKeys
	rep2.log(t, "direct")
}

// TestTraceProxy replays redis-proxy.txt: a proxy's PUBLISHERS and ROUTERS
// records, a proxy-mode server and a listener registering their DEALER
// identities and reading ROUTERS and PUBLISHERS, a client and a notifier
// reading PUBLISHERS and the server's key, then the stops.
func TestTraceProxy(t *testing.T) {
	r := redistest.Start(t)
	h := newHarness(t, r.Addr)
	mon := redistest.StartMonitor(t, r.Addr)
	ctx := context.Background()
	cfg := DefaultConfig()
	expire := 300 * time.Second
	var rep traceReport
	checkSnap := func(point string) {
		t.Helper()
		snap := h.snapshot(t)
		require.Equal(t, expectedSnapshot(t, "proxy", point), snap, point)
		rep.snapshotKeys += len(snap)
	}

	proxy := newTestRedis(t, r.Addr, cfg)
	pub := Publisher{Pub: "127.0.0.1:60219", Frontend: "127.0.0.1:63483"}
	const be = "127.0.0.1:61273"
	pk := keep(t, func(ctx context.Context) error {
		if err := proxy.RegisterPublisher(ctx, pub, expire); err != nil {
			return err
		}
		return proxy.RegisterRouter(ctx, be, expire)
	}, func(ctx context.Context) error {
		return errorsJoin(proxy.UnregisterPublisher(ctx, pub), proxy.UnregisterRouter(ctx, be))
	})
	checkSnap("proxy: proxy registered")

	ids := map[string]string{}
	var keepers []*Keeper
	for _, role := range []struct {
		targets []compat.Target
		uuids   []string
	}{
		{[]compat.Target{{Topic: "demo", Server: "srv1"}}, []string{"fe5f217f-0a73-49ba-b4a5-48f99724d81c"}},
		{[]compat.Target{{Topic: "notifications.error"}, {Topic: "notifications.info"}},
			[]string{"c67b22ae-dc76-4278-a584-03114c092f58", "def71b17-5aca-40e5-ac02-f30221b8f81f"}},
	} {
		mm := newTestRedis(t, r.Addr, cfg) // the server's, then the listener's
		routers, err := mm.Routers(ctx)    // the DEALER connects to the proxies
		require.NoError(t, err)
		require.Equal(t, []string{be}, routers)
		for i, tg := range role.targets {
			id := zmqwire.ServerIdentity("127.0.0.1", tg, role.uuids[i])
			ids[tg.Topic] = id
			keepers = append(keepers, keepReg(t, mm, tg, id, compat.Dealer))
		}
		pubs, err := mm.Publishers(ctx) // the SUB consumer
		require.NoError(t, err)
		require.Equal(t, []Publisher{pub}, pubs)
	}
	reregistered(t, append([]*Keeper{pk}, keepers...)...)
	checkSnap("proxy: proxy + server registered")

	client := newTestRedis(t, r.Addr, cfg)
	notifier := newTestRedis(t, r.Addr, cfg)
	for _, mm := range []*Redis{client, notifier} {
		pubs, err := mm.Publishers(ctx)
		require.NoError(t, err)
		require.Equal(t, []Publisher{pub}, pubs)
	}
	hosts, err := client.HostsRetry(ctx, compat.Target{Topic: "demo", Server: "srv1"}, compat.Dealer)
	require.NoError(t, err)
	require.Equal(t, []string{ids["demo"]}, hosts)

	for _, k := range keepers {
		require.NoError(t, k.Stop(ctx))
	}
	checkSnap("proxy: after server stop")
	require.NoError(t, pk.Stop(ctx))
	checkSnap("proxy: after proxy stop")
	h.settle(t, mon)

	got := h.trace(mon)
	rep2 := compareTraces(t, readTrace(t, "redis-proxy.txt"), got,
		[][]string{{pub.Pub + "," + pub.Frontend, be}, {ids["demo"]}, {ids["notifications.error"]}, {ids["notifications.info"]}})
	rep2.snapshotKeys = rep.snapshotKeys
	rep2.log(t, "proxy")
}

func errorsJoin(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
