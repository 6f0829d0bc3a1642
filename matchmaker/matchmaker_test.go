package matchmaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func fastConfig() Config {
	c := DefaultConfig()
	c.WaitTimeout = 50 * time.Millisecond
	c.CheckTimeout = 300 * time.Millisecond
	c.TargetUpdate = 200 * time.Millisecond
	c.TargetExpire = 2 * time.Second
	c.MinCheckInterval = 100 * time.Millisecond
	return c
}

var srv = compat.Target{Topic: "compute", Server: "node-1@lvm"}

// logRecorder is a slog handler that keeps every record.
type logRecorder struct {
	mu   sync.Mutex
	recs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	l.mu.Lock()
	l.recs = append(l.recs, b.String())
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.recs...)
}

// lines returns the records at level that contain every word.
func (l *logRecorder) lines(level slog.Level, words ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		if !strings.HasPrefix(r, level.String()+" ") {
			continue
		}
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(r, w)
		}
		if ok {
			out = append(out, r)
		}
	}
	return out
}

// pingCounter counts the PINGs a client sends.
type pingCounter struct{ n atomic.Int64 }

func (p *pingCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (p *pingCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "ping" {
			p.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (p *pingCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestDummy: the in-process backend with the reference's aging, its
// server-then-topic fallback in Hosts, HostsByKey (missing in the
// reference), publishers and routers.
func TestDummy(t *testing.T) {
	ctx := context.Background()
	d := NewDummy(fastConfig())
	now := time.Unix(1000, 0)
	d.now = func() time.Time { return now }
	require.NoError(t, d.Register(ctx, srv, "h:1", compat.Router, 10*time.Second))
	require.NoError(t, d.Register(ctx, compat.Target{Topic: "compute"}, "h:2", compat.Router, 0))
	hosts, err := d.Hosts(ctx, srv, compat.Router)
	require.NoError(t, err)
	require.Equal(t, []string{"h:1"}, hosts)
	hosts, _ = d.Hosts(ctx, compat.Target{Topic: "compute", Server: "node-1", Fanout: true}, compat.Router)
	require.Equal(t, []string{"h:1", "h:2"}, hosts, "a fanout target reads target_to_key = L/topic")
	hosts, _ = d.HostsFanout(ctx, compat.Target{Topic: "compute", Fanout: true}, compat.Router)
	require.Equal(t, []string{"h:1", "h:2"}, hosts)
	hosts, _ = d.HostsByKey(ctx, "ROUTER/compute/node-1")
	require.Equal(t, []string{"h:1"}, hosts)

	// Aging: the record with an expiry disappears; the one without stays.
	now = now.Add(9 * time.Second)
	hosts, _ = d.HostsByKey(ctx, "ROUTER/compute/node-1")
	require.Equal(t, []string{"h:1"}, hosts, "visible until its expiry")
	now = now.Add(2 * time.Second)
	hosts, _ = d.HostsFanout(ctx, compat.Target{Topic: "compute"}, compat.Router)
	require.Equal(t, []string{"h:2"}, hosts)
	// The server key is empty now: the dummy falls back to the topic key.
	hosts, _ = d.Hosts(ctx, srv, compat.Router)
	require.Equal(t, []string{"h:2"}, hosts)
	// Re-registering refreshes the age.
	require.NoError(t, d.Register(ctx, srv, "h:1", compat.Router, 10*time.Second))
	hosts, _ = d.Hosts(ctx, srv, compat.Router)
	require.Equal(t, []string{"h:1"}, hosts)
	require.NoError(t, d.Unregister(ctx, srv, "h:1", compat.Router))
	hosts, _ = d.HostsByKey(ctx, "ROUTER/compute/node-1")
	require.Empty(t, hosts)

	require.NoError(t, d.RegisterPublisher(ctx, Publisher{"p:1", "f:2"}, time.Minute))
	require.NoError(t, d.RegisterRouter(ctx, "b:3", time.Minute))
	pubs, _ := d.Publishers(ctx)
	require.Equal(t, []Publisher{{"p:1", "f:2"}}, pubs)
	routers, _ := d.Routers(ctx)
	require.Equal(t, []string{"b:3"}, routers)
	now = now.Add(time.Minute)
	routers, _ = d.Routers(ctx)
	require.Empty(t, routers, "routers age too")
	require.NoError(t, d.UnregisterPublisher(ctx, Publisher{"p:1", "f:2"}))
	pubs, _ = d.Publishers(ctx)
	require.Empty(t, pubs)

	_, err = d.HostsRetry(ctx, compat.Target{Topic: "nobody", Server: "x"}, compat.Router)
	require.ErrorIs(t, err, ErrNoHosts)
	var nh *NoHostsError
	require.ErrorAs(t, err, &nh)
	require.Equal(t, "ROUTER/nobody/x", nh.Key)
	require.NoError(t, d.Close())
	require.NoError(t, d.Close(), "Close is idempotent")
	_, err = d.Hosts(ctx, srv, compat.Router)
	require.ErrorIs(t, err, ErrClosed)
}

// TestRetry: the *Retry lookups follow wait_timeout/check_timeout like
// tenacity (one more lookup at check_timeout), stop when the context ends,
// and do not retry errors.
func TestRetry(t *testing.T) {
	d := NewDummy(DefaultConfig()) // 20 s check_timeout
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := d.HostsRetry(ctx, compat.Target{Topic: "t"}, compat.Router)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 5*time.Second)

	calls := 0
	start = time.Now()
	_, err = retry(context.Background(), "k", 100*time.Millisecond, 300*time.Millisecond, func(context.Context) ([]string, error) {
		calls++
		return nil, nil
	})
	require.ErrorIs(t, err, ErrNoHosts)
	require.Equal(t, 4, calls, "lookups at 0, 100, 200 and 300 ms, as tenacity's stop_after_delay")
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)

	calls = 0
	_, err = retry(context.Background(), "k", 0, 50*time.Millisecond, func(context.Context) ([]string, error) {
		calls++
		return nil, nil
	})
	require.ErrorIs(t, err, ErrNoHosts)
	require.LessOrEqual(t, calls, 7, "a zero wait_timeout must not spin")

	boom := errors.New("boom")
	calls = 0
	_, err = retry(context.Background(), "k", time.Millisecond, time.Second, func(context.Context) ([]string, error) {
		calls++
		return nil, boom
	})
	require.ErrorIs(t, err, boom)
	require.Equal(t, 1, calls, "errors are not retried")
}

func TestRedisRetryFindsLateServer(t *testing.T) {
	r := redistest.Start(t)
	ctx := context.Background()
	cfg := fastConfig()
	cfg.CheckTimeout = 5 * time.Second
	mm := newTestRedis(t, r.Addr, cfg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(150 * time.Millisecond)
		_ = mm.Register(ctx, srv, "late:1", compat.Router, time.Minute)
	}()
	hosts, err := mm.HostsRetry(ctx, srv, compat.Router)
	<-done
	require.NoError(t, err)
	require.Equal(t, []string{"late:1"}, hosts)
	hosts, err = mm.HostsFanoutRetry(ctx, compat.Target{Topic: "compute", Fanout: true}, compat.Router)
	require.NoError(t, err)
	require.Equal(t, []string{"late:1"}, hosts)
}

// TestExpiry: with zmq_target_expire=2 a host is gone about 2 s after its
// keeper stops (without unregistering, as when the process dies).
func TestExpiry(t *testing.T) {
	r := redistest.Start(t)
	ctx := context.Background()
	cfg := fastConfig()
	mm := newTestRedis(t, r.Addr, cfg)
	k, err := StartKeeper(ctx, func(ctx context.Context) error {
		return mm.Register(ctx, srv, "h:9", compat.Router, cfg.TargetExpire)
	}, func(ctx context.Context) error { return nil }, cfg.TargetUpdate, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return k.Registrations() >= 2 }, 10*cfg.TargetUpdate, 10*time.Millisecond,
		"the keeper re-registers every period")
	hosts, err := mm.Hosts(ctx, srv, compat.Router)
	require.NoError(t, err)
	require.Equal(t, []string{"h:9"}, hosts)
	k.Close()
	stopped := time.Now()
	for {
		hosts, err = mm.Hosts(ctx, srv, compat.Router)
		require.NoError(t, err)
		if len(hosts) == 0 {
			break
		}
		require.Less(t, time.Since(stopped), 4*time.Second, "the record outlived its TTL")
		time.Sleep(50 * time.Millisecond)
	}
	gone := time.Since(stopped)
	require.Greater(t, gone, time.Second, "the record vanished before its TTL")
	t.Logf("host gone %v after its keeper stopped (zmq_target_expire=2s)", gone.Round(10*time.Millisecond))
}

// TestRedisDownAtStart: a Redis that is down when the matchmaker starts
// gives typed errors and one log line with its address; when it comes up
// the checker finds it by itself (writes at once, reads after the
// ready-from delay), without spinning meanwhile.
func TestRedisDownAtStart(t *testing.T) {
	ctx := context.Background()
	r := redistest.Start(t)
	r.Kill()
	logs := &logRecorder{}
	cfg := fastConfig()
	// The ready-from delay: long enough that the read right after writes
	// resumed still falls inside it on a loaded machine (the checker's
	// PING, the polled Register and that read must fit in it).
	cfg.TargetExpire = 3 * time.Second
	cfg.Logger = slog.New(logs)
	mm, err := NewRedis(ctx, []RedisAddr{{Addr: r.Addr}}, cfg)
	require.NoError(t, err, "construction never fails on a dead Redis")
	defer mm.Close()
	pings := &pingCounter{}
	mm.st.(*multiStore).instances[0].c.AddHook(pings)

	for i := 0; i < 5; i++ {
		err = mm.Register(ctx, srv, "h:1", compat.Router, time.Minute)
		require.ErrorIs(t, err, ErrMatchmakerUnavailable)
		_, err = mm.Hosts(ctx, srv, compat.Router)
		require.ErrorIs(t, err, ErrMatchmakerUnavailable)
		_, err = mm.HostsRetry(ctx, srv, compat.Router)
		require.ErrorIs(t, err, ErrMatchmakerUnavailable, "unavailability is not retried")
	}
	var ue *UnavailableError
	require.ErrorAs(t, err, &ue)
	require.Equal(t, "read", ue.Op)
	time.Sleep(time.Second)
	require.LessOrEqual(t, pings.n.Load(), int64(12), "the checker PINGs every MinCheckInterval (100 ms here), no faster")
	require.Len(t, logs.lines(slog.LevelWarn, "addr="+r.Addr), 1, "one log line for the outage: %v", logs.all())

	r.Restart()
	start := time.Now()
	require.Eventually(t, func() bool { return mm.Register(ctx, srv, "h:1", compat.Router, time.Minute) == nil },
		5*time.Second, 20*time.Millisecond, "writes did not resume")
	writes := time.Since(start)
	_, err = mm.Hosts(ctx, srv, compat.Router)
	require.ErrorIs(t, err, ErrMatchmakerUnavailable, "not readable before its ready-from time")
	require.Eventually(t, func() bool {
		hosts, err := mm.Hosts(ctx, srv, compat.Router)
		return err == nil && len(hosts) == 1
	}, 10*time.Second, 20*time.Millisecond, "reads did not resume")
	t.Logf("Redis up again: writes resumed after %v, reads after %v (ready-from delay %v)",
		writes.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), cfg.TargetExpire)
	require.Len(t, logs.lines(slog.LevelInfo, "available again", "addr="+r.Addr), 1)
}

// TestRedisDownMidRun: a Redis that dies mid-run gives typed errors and one
// log line; it comes back by itself; a keeper re-registers into it without
// spinning while it is down.
func TestRedisDownMidRun(t *testing.T) {
	ctx := context.Background()
	r := redistest.Start(t)
	logs := &logRecorder{}
	cfg := fastConfig()
	cfg.TargetExpire = 300 * time.Millisecond
	cfg.Logger = slog.New(logs)
	mm := newTestRedis(t, r.Addr, cfg)
	var attempts atomic.Int64
	k, err := StartKeeper(ctx, func(ctx context.Context) error {
		attempts.Add(1)
		return mm.Register(ctx, srv, "h:1", compat.Router, time.Minute)
	}, func(ctx context.Context) error { return mm.Unregister(ctx, srv, "h:1", compat.Router) }, 100*time.Millisecond, cfg.Logger)
	require.NoError(t, err)

	r.Kill()
	for i := 0; i < 3; i++ {
		require.ErrorIs(t, mm.Register(ctx, srv, "h:2", compat.Router, time.Minute), ErrMatchmakerUnavailable)
	}
	before := attempts.Load()
	time.Sleep(time.Second)
	require.LessOrEqual(t, attempts.Load()-before, int64(12), "the keeper retries every period, no faster")
	require.Len(t, logs.lines(slog.LevelWarn, "Redis is not available now", "addr="+r.Addr), 1, "%v", logs.all())

	r.Restart() // empty: the keeper must put h:1 back
	require.Eventually(t, func() bool {
		hosts, err := mm.Hosts(ctx, srv, compat.Router)
		return err == nil && len(hosts) == 1 && hosts[0] == "h:1"
	}, 5*time.Second, 20*time.Millisecond, "service did not resume")
	require.NoError(t, k.Stop(ctx))
	hosts, err := mm.Hosts(ctx, srv, compat.Router)
	require.NoError(t, err)
	require.Empty(t, hosts, "Stop unregisters")
}

// TestContextCancelled: a call whose context has ended returns the
// context's error and leaves the instance available.
func TestContextCancelled(t *testing.T) {
	r := redistest.Start(t)
	mm := newTestRedis(t, r.Addr, fastConfig())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, mm.Register(ctx, srv, "h:1", compat.Router, time.Minute), context.Canceled)
	_, err := mm.Hosts(ctx, srv, compat.Router)
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, mm.Register(context.Background(), srv, "h:1", compat.Router, time.Minute))
	require.NoError(t, mm.Close())
	require.ErrorIs(t, mm.Register(context.Background(), srv, "h:1", compat.Router, time.Minute), ErrClosed)
	require.NoError(t, mm.Close(), "Close is idempotent")
}

// TestSeveralInstances: writes go to every live instance; one that comes
// back takes writes at once but is read only after its ready-from time.
func TestSeveralInstances(t *testing.T) {
	ctx := context.Background()
	a, b := redistest.Start(t), redistest.Start(t)
	cfg := fastConfig()
	cfg.TargetExpire = 3 * time.Second
	// slack is how late after b's checker saw it the test may notice that
	// writes reach b (backAt below): its polling, and a loaded machine.
	const slack = 1500 * time.Millisecond
	mm, err := NewRedis(ctx, []RedisAddr{{Addr: a.Addr}, {Addr: b.Addr}}, cfg)
	require.NoError(t, err)
	defer mm.Close()
	require.NoError(t, mm.Register(ctx, srv, "h:1", compat.Router, time.Minute))
	for _, s := range []*redistest.Server{a, b} {
		one := newTestRedis(t, s.Addr, cfg)
		hosts, err := one.Hosts(ctx, srv, compat.Router)
		require.NoError(t, err)
		require.Equal(t, []string{"h:1"}, hosts, "written to %s", s.Addr)
	}

	b.Kill()
	require.NoError(t, mm.Register(ctx, srv, "h:2", compat.Router, time.Minute), "writes go on to the live instance")
	hosts, err := mm.Hosts(ctx, srv, compat.Router)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"h:1", "h:2"}, hosts)

	b.Restart() // empty: it lost everything
	bOnly := newTestRedis(t, b.Addr, cfg)
	deadline := time.Now().Add(5 * time.Second)
	var backAt time.Time
	for {
		require.NoError(t, mm.Register(ctx, srv, "h:3", compat.Router, time.Minute))
		got, err := bOnly.Hosts(ctx, srv, compat.Router)
		require.NoError(t, err)
		if len(got) > 0 {
			backAt = time.Now()
			break // the checker saw it: writes reach it again
		}
		require.True(t, time.Now().Before(deadline), "writes never reached the returning instance")
		time.Sleep(50 * time.Millisecond)
	}
	// Until its ready-from time, every read is served by a, which has all;
	// b alone would answer [h:3].
	reads := 0
	for time.Since(backAt) < cfg.TargetExpire-slack {
		hosts, err := mm.Hosts(ctx, srv, compat.Router)
		require.NoError(t, err)
		require.ElementsMatch(t, []string{"h:1", "h:2", "h:3"}, hosts, "a read came from the returning instance too early")
		reads++
		time.Sleep(50 * time.Millisecond)
	}
	// Kill a: reads now go to b, which is ready by then.
	time.Sleep(slack + 300*time.Millisecond)
	a.Kill()
	hosts, err = mm.Hosts(ctx, srv, compat.Router)
	require.NoError(t, err)
	require.Equal(t, []string{"h:3"}, hosts, "b holds only what was written after it came back")
	t.Logf("%d reads during b's ready-from delay all served by a", reads)

	a.Kill()
	b.Kill()
	require.ErrorIs(t, mm.Register(ctx, srv, "h:4", compat.Router, time.Minute), ErrMatchmakerUnavailable, "none available")
}

// TestRedisShufflesInstances: each matchmaker visits the instances in its
// own random order, as the reference's random.shuffle does.
func TestRedisShufflesInstances(t *testing.T) {
	a, b := redistest.Start(t), redistest.Start(t)
	firsts := map[string]int{}
	for i := 0; i < 40; i++ {
		mm, err := NewRedis(context.Background(), []RedisAddr{{Addr: a.Addr}, {Addr: b.Addr}}, fastConfig())
		require.NoError(t, err)
		firsts[mm.Addrs()[0]]++
		require.NoError(t, mm.Close())
	}
	require.Len(t, firsts, 2, "both orders occur: %v", firsts)
}

// TestSentinelFailover: one master, one replica, three sentinels, a
// password from the URL (for the data nodes, not the sentinels). Writes go
// to the master and reads to the replica; the master is killed mid-run and
// the Go matchmaker keeps registering and reading after the promotion.
func TestSentinelFailover(t *testing.T) {
	ctx := context.Background()
	const pw = "sentinel-test-pw"
	master := redistest.Start(t, "--requirepass", pw, "--masterauth", pw)
	replica := redistest.Start(t, "--requirepass", pw, "--masterauth", pw, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port))
	group := "goslo-test"
	// Sentinels learn the replicas from the master's INFO: start them once
	// the replica is attached, and build the matchmaker once they list it,
	// or its replica client would dial the master.
	mc := redis.NewClient(&redis.Options{Addr: master.Addr, Password: pw, Protocol: 2})
	defer mc.Close()
	require.Eventually(t, func() bool {
		info, err := mc.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "connected_slaves:1") && strings.Contains(info, ",state=online,")
	}, 10*time.Second, 20*time.Millisecond, "replica attached")
	var sentinels []string
	for i := 0; i < 3; i++ {
		s := redistest.StartSentinel(t, group, master.Addr, 2, "sentinel auth-pass "+group+" "+pw)
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr, Protocol: 2})
		require.Eventually(t, func() bool {
			reps, err := sc.Replicas(ctx, group).Result()
			return err == nil && len(reps) == 1 && reps[0]["flags"] == "slave" && reps[0]["master-link-status"] == "ok"
		}, 15*time.Second, 20*time.Millisecond, "sentinel %s lists the replica", s.Addr)
		sc.Close()
		sentinels = append(sentinels, ":"+pw+"@"+s.Addr)
	}
	u, err := compat.ParseTransportURL("zmq+sentinel://" + strings.Join(sentinels, ",") + "/" + group)
	require.NoError(t, err)
	logs := &logRecorder{}
	cfg := fastConfig()
	cfg.SocketTimeout = 500 * time.Millisecond
	cfg.Logger = slog.New(logs)
	mmI, err := New(ctx, u, "", cfg)
	require.NoError(t, err)
	mm := mmI.(*Sentinel)
	defer mm.Close()
	mmon := redistest.StartMonitor(t, master.Addr, pw)
	rmon := redistest.StartMonitor(t, replica.Addr, pw)

	// Wait for the replica link, then register and read.
	require.Eventually(t, func() bool {
		if mm.Register(ctx, srv, "h:1", compat.Router, time.Minute) != nil {
			return false
		}
		hosts, err := mm.Hosts(ctx, srv, compat.Router)
		return err == nil && len(hosts) == 1
	}, 10*time.Second, 100*time.Millisecond, "sentinel set-up")
	// MONITOR reports asynchronously: count once each monitor has seen
	// everything its server ran so far.
	settleMonitor(t, mc, mmon)
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr, Password: pw, Protocol: 2})
	defer rc.Close()
	settleMonitor(t, rc, rmon)
	count := func(mon *redistest.Monitor, name string) int {
		n := 0
		for _, c := range mon.Commands() {
			if c.Args[0] == name {
				n++
			}
		}
		return n
	}
	require.Positive(t, count(rmon, "SMEMBERS"), "reads go to the replica")
	require.Positive(t, count(rmon, "TTL"), "liveness checks go to the replica")
	require.Zero(t, count(mmon, "SMEMBERS"), "no read on the master while the replica answers")
	require.Positive(t, count(mmon, "SADD"), "writes go to the master")
	mmon.Stop()
	rmon.Stop()

	sc := redis.NewSentinelClient(&redis.Options{Addr: strings.TrimPrefix(sentinels[0], ":"+pw+"@"), Protocol: 2})
	defer sc.Close()
	var promoted atomic.Int64 // ns after the kill when sentinel names the replica master
	master.Kill()
	killed := time.Now()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for time.Since(killed) < 30*time.Second {
			addr, err := sc.GetMasterAddrByName(ctx, group).Result()
			if err == nil && len(addr) == 2 && addr[1] == strconv.Itoa(replica.Port) {
				promoted.Store(int64(time.Since(killed)))
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var wroteAgain time.Duration
	failures := 0
	require.Eventually(t, func() bool {
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		err := mm.Register(wctx, srv, "h:2", compat.Router, time.Minute)
		if err != nil {
			require.True(t, errors.Is(err, ErrMatchmakerUnavailable) || errors.Is(err, context.DeadlineExceeded), "typed error: %v", err)
			failures++
			return false
		}
		wroteAgain = time.Since(killed)
		return true
	}, 30*time.Second, 50*time.Millisecond, "no write after the failover")
	require.Eventually(t, func() bool {
		hosts, err := mm.Hosts(ctx, srv, compat.Router)
		return err == nil && len(hosts) == 2
	}, 10*time.Second, 50*time.Millisecond, "reads after the failover")
	readAgain := time.Since(killed)
	<-watchDone
	require.LessOrEqual(t, len(logs.lines(slog.LevelWarn, "Sentinel")), 1, "one log line for the outage: %v", logs.all())
	t.Logf("sentinel failover (down-after-milliseconds=1000, failover-timeout=3000): sentinel promoted the replica %v after the master was killed; "+
		"the matchmaker wrote again after %v and read both hosts after %v (%d failed writes meanwhile)",
		time.Duration(promoted.Load()).Round(10*time.Millisecond), wroteAgain.Round(10*time.Millisecond), readAgain.Round(10*time.Millisecond), failures)
}

func TestNewChoosesBackend(t *testing.T) {
	ctx := context.Background()
	for raw, want := range map[string]string{"zmq+dummy://": "*matchmaker.Dummy", "zmq://": "*matchmaker.Dummy"} {
		u, err := compat.ParseTransportURL(raw)
		require.NoError(t, err)
		mm, err := New(ctx, u, "dummy", DefaultConfig())
		require.NoError(t, err)
		require.Equal(t, want, fmt.Sprintf("%T", mm))
		require.NoError(t, mm.Close())
	}
	r := redistest.Start(t)
	for raw, want := range map[string]string{"zmq+redis://" + r.Addr: "*matchmaker.Redis", "zmq://" + r.Addr: "*matchmaker.Redis",
		"zmq+sentinel://" + r.Addr: "*matchmaker.Sentinel"} {
		u, err := compat.ParseTransportURL(raw)
		require.NoError(t, err)
		backend := ""
		if raw == "zmq://"+r.Addr {
			backend = "redis"
		}
		mm, err := New(ctx, u, backend, fastConfig())
		require.NoError(t, err)
		require.Equal(t, want, fmt.Sprintf("%T", mm), raw)
		require.NoError(t, mm.Close())
	}
	u, _ := compat.ParseTransportURL("zmq+zookeeper://h:1")
	_, err := New(ctx, u, "", DefaultConfig())
	require.Error(t, err)
	u, _ = compat.ParseTransportURL("rabbit://h:1")
	_, err = New(ctx, u, "", DefaultConfig())
	require.Error(t, err)

	cc := compat.DefaultConfig("h")
	cc.MatchmakerRedis.WaitTimeout = 500
	cc.MatchmakerRedis.SentinelHosts = []string{"s9:26379"}
	cc.MatchmakerRedis.Password = "deprecated-pw"
	mc := ConfigFrom(cc)
	require.Equal(t, 500*time.Millisecond, mc.WaitTimeout)
	require.Equal(t, 20*time.Second, mc.CheckTimeout)
	require.Equal(t, 10*time.Second, mc.SocketTimeout)
	require.Equal(t, 300*time.Second, mc.TargetExpire)
	require.Equal(t, 180*time.Second, mc.TargetUpdate)
	require.NoError(t, mc.Validate())
	u, _ = compat.ParseTransportURL("zmq+sentinel://:pw@s1:1,:pw2@s2:2/grp")
	addrs, pw, grp := sentinelParams(u, mc)
	require.Equal(t, []string{"s1:1", "s2:2"}, addrs)
	require.Equal(t, "pw2", pw, "the last URL host with a password wins")
	require.Equal(t, "grp", grp)
	u, _ = compat.ParseTransportURL("zmq+sentinel://s1")
	addrs, _, grp = sentinelParams(u, mc)
	require.Equal(t, []string{"s1:26379"}, addrs)
	require.Equal(t, "oslo-messaging-zeromq", grp, "sentinel_group_name without a URL path")
	u, _ = compat.ParseTransportURL("zmq+sentinel://")
	addrs, pw, _ = sentinelParams(u, mc)
	require.Equal(t, []string{"s9:26379"}, addrs, "deprecated sentinel_hosts without URL hosts")
	require.Equal(t, "deprecated-pw", pw)
	u, _ = compat.ParseTransportURL("zmq+redis://h1:6379,:secret@h2:6380,h3")
	require.Equal(t, []RedisAddr{{"h1:6379", ""}, {"h2:6380", "secret"}, {"h3:6379", ""}}, redisAddrs(u, mc))
	u, _ = compat.ParseTransportURL("zmq://")
	require.Equal(t, []RedisAddr{{"127.0.0.1:6379", "deprecated-pw"}}, redisAddrs(u, mc), "deprecated host/port/password")

	bad := fastConfig()
	bad.TargetUpdate = bad.TargetExpire
	require.Error(t, bad.Validate())
	bad = fastConfig()
	bad.WaitTimeout = -1
	require.Error(t, bad.Validate())
}

// TestRedisPassword: the URL password is sent with AUTH; a wrong one makes
// the instance unavailable (redis-py's AuthenticationError is a
// ConnectionError) with a log line naming it.
func TestRedisPassword(t *testing.T) {
	r := redistest.Start(t, "--requirepass", "s3cret")
	ctx := context.Background()
	u, err := compat.ParseTransportURL("zmq+redis://:s3cret@" + r.Addr)
	require.NoError(t, err)
	mm, err := New(ctx, u, "", fastConfig())
	require.NoError(t, err)
	defer mm.Close()
	require.NoError(t, mm.Register(ctx, srv, "h:1", compat.Router, time.Minute))
	hosts, err := mm.Hosts(ctx, srv, compat.Router)
	require.NoError(t, err)
	require.Equal(t, []string{"h:1"}, hosts)

	logs := &logRecorder{}
	cfg := fastConfig()
	cfg.Logger = slog.New(logs)
	u, _ = compat.ParseTransportURL("zmq+redis://:wrong@" + r.Addr)
	bad, err := New(ctx, u, "", cfg)
	require.NoError(t, err)
	defer bad.Close()
	require.ErrorIs(t, bad.Register(ctx, srv, "h:2", compat.Router, time.Minute), ErrMatchmakerUnavailable)
	require.Len(t, logs.lines(slog.LevelWarn, "addr="+r.Addr, "WRONGPASS"), 1, "%v", logs.all())
}

// TestErrorReplyIsNotAnOutage: a Redis error reply (here WRONGTYPE) comes
// back as is and leaves the instance available, as redis-py's ResponseError
// passes through the reference's decorators.
func TestErrorReplyIsNotAnOutage(t *testing.T) {
	r := redistest.Start(t)
	ctx := context.Background()
	mm := newTestRedis(t, r.Addr, fastConfig())
	c := redis.NewClient(&redis.Options{Addr: r.Addr, Protocol: 2})
	defer c.Close()
	require.NoError(t, c.Set(ctx, "ROUTER/str", "x", 0).Err())
	err := mm.Register(ctx, compat.Target{Topic: "str"}, "h:1", compat.Router, time.Minute)
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrMatchmakerUnavailable)
	require.Contains(t, err.Error(), "WRONGTYPE")
	require.NoError(t, mm.Register(ctx, srv, "h:1", compat.Router, time.Minute), "the instance is still available")
}

func TestKeeper(t *testing.T) {
	d := NewDummy(fastConfig())
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int64
	k, err := StartKeeper(ctx, func(context.Context) error {
		n.Add(1)
		return d.Register(context.Background(), srv, "h:1", compat.Router, time.Minute)
	}, func(ctx context.Context) error { return d.Unregister(ctx, srv, "h:1", compat.Router) }, 20*time.Millisecond, nil)
	require.NoError(t, err)
	require.Equal(t, int64(1), n.Load(), "registered synchronously at start")
	// Re-registered every 20 ms: two more within a bound a loaded machine
	// meets (a fixed 100 ms sleep was not always enough for two ticks).
	require.Eventually(t, func() bool { return n.Load() >= 3 }, 5*time.Second, 5*time.Millisecond, "the keeper re-registers every period")
	cancel()
	<-k.done // the loop ends with its context, leaving no goroutine
	got := n.Load()
	require.GreaterOrEqual(t, got, int64(3))
	time.Sleep(60 * time.Millisecond)
	require.Equal(t, got, n.Load(), "registered after its context ended")
	require.NoError(t, k.Stop(context.Background()))
	hosts, _ := d.Hosts(context.Background(), srv, compat.Router)
	require.Empty(t, hosts, "Stop unregisters")
	require.NoError(t, k.Stop(context.Background()), "Stop is idempotent")
	k.Close()

	// A failing registration is retried, then resumes.
	var fail atomic.Bool
	fail.Store(true)
	k, err = StartKeeper(context.Background(), func(context.Context) error {
		if fail.Load() {
			return ErrMatchmakerUnavailable
		}
		return nil
	}, func(context.Context) error { return nil }, 20*time.Millisecond, nil)
	require.ErrorIs(t, err, ErrMatchmakerUnavailable)
	fail.Store(false)
	require.Eventually(t, func() bool { return k.Registrations() > 0 }, 2*time.Second, 10*time.Millisecond)
	k.Close()
	k.Close()
}

// TestRedisIPv6: a bracketed IPv6 host of the URL (or an IPv6
// [matchmaker_redis] host) reaches go-redis as [addr]:port; before, the
// matchmaker built "::1:port", which go-redis refuses ("too many colons").
func TestRedisIPv6(t *testing.T) {
	mc := fastConfig()
	u, err := compat.ParseTransportURL("zmq+redis://[::1]:6411,:pw@[fe80::1%25eth0]")
	require.NoError(t, err)
	require.Equal(t, []RedisAddr{{"[::1]:6411", ""}, {"[fe80::1%25eth0]:6379", "pw"}}, redisAddrs(u, mc))
	mc.RedisHost = "::1"
	u, _ = compat.ParseTransportURL("zmq://")
	require.Equal(t, []RedisAddr{{"[::1]:6379", ""}}, redisAddrs(u, mc), "[matchmaker_redis] host")
	u, _ = compat.ParseTransportURL("zmq+sentinel://[::1]:26380,u@[::2]/g")
	addrs, _, _ := sentinelParams(u, mc)
	require.Equal(t, []string{"[::1]:26380", "[::2]:26379"}, addrs)

	// A real redis-server on the IPv6 loopback.
	r := redistest.StartBind(t, "::1")
	u, err = compat.ParseTransportURL("zmq+redis://[::1]:" + strconv.Itoa(r.Port))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mm, err := New(ctx, u, "", fastConfig())
	require.NoError(t, err)
	defer mm.Close()
	require.NoError(t, mm.Register(ctx, srv, "h:1", compat.Router, time.Minute))
	hosts, err := mm.Hosts(ctx, srv, compat.Router)
	require.NoError(t, err)
	require.Equal(t, []string{"h:1"}, hosts)
}

// TestRedisUnavailableSaysWhy: when no instance can serve, the error names
// each instance (host:port, never the password) and why: the server's
// WRONGPASS or NOAUTH, or the refused connection. Before, an instance down
// since New gave "no Redis instance available (tried [])" and nothing else.
func TestRedisUnavailableSaysWhy(t *testing.T) {
	r := redistest.Start(t, "--requirepass", "s3cret")
	closed := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	ctx := context.Background()
	for _, c := range []struct{ url, addr, why string }{
		{"zmq+redis://:Pw-x9Q@" + r.Addr, r.Addr, "WRONGPASS"},
		{"zmq+redis://" + r.Addr, r.Addr, "NOAUTH"},
		{"zmq+redis://:Pw-x9Q@" + closed, closed, "connection refused"},
	} {
		u, err := compat.ParseTransportURL(c.url)
		require.NoError(t, err)
		mm, err := New(ctx, u, "", fastConfig())
		require.NoError(t, err)
		werr := mm.Register(ctx, srv, "h:2", compat.Router, time.Minute)
		_, rerr := mm.Hosts(ctx, srv, compat.Router)
		for _, err := range []error{werr, rerr} {
			require.ErrorIs(t, err, ErrMatchmakerUnavailable, c.url)
			require.Contains(t, err.Error(), c.addr+" is down: ", c.url)
			require.Contains(t, err.Error(), c.why, c.url)
			require.NotContains(t, err.Error(), "Pw-x9Q", c.url)
		}
		require.NoError(t, mm.Close())
	}
	// An instance that fails during the call is named too.
	r2 := redistest.Start(t)
	mm := newTestRedis(t, r2.Addr, fastConfig())
	r2.Kill()
	err := mm.Register(ctx, srv, "h:3", compat.Router, time.Minute)
	require.ErrorIs(t, err, ErrMatchmakerUnavailable)
	require.Contains(t, err.Error(), "(tried ["+r2.Addr+"]): "+r2.Addr+": ")
}
