package matchmaker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

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
	hosts, _ = d.HostsFanout(ctx, compat.Target{Topic: "compute", Fanout: true}, compat.Router)
	require.Equal(t, []string{"h:1", "h:2"}, hosts)
	hosts, _ = d.HostsByKey(ctx, "ROUTER/compute/node-1")
	require.Equal(t, []string{"h:1"}, hosts)

	// Aging: the record with an expiry disappears; the one without stays.
	now = now.Add(11 * time.Second)
	hosts, _ = d.HostsFanout(ctx, compat.Target{Topic: "compute"}, compat.Router)
	require.Equal(t, []string{"h:2"}, hosts)
	// The server key is empty now: the dummy falls back to the topic key.
	hosts, _ = d.Hosts(ctx, srv, compat.Router)
	require.Equal(t, []string{"h:2"}, hosts)

	require.NoError(t, d.RegisterPublisher(ctx, Publisher{"p:1", "f:2"}, time.Minute))
	require.NoError(t, d.RegisterRouter(ctx, "b:3", time.Minute))
	pubs, _ := d.Publishers(ctx)
	require.Equal(t, []Publisher{{"p:1", "f:2"}}, pubs)
	routers, _ := d.Routers(ctx)
	require.Equal(t, []string{"b:3"}, routers)
	require.NoError(t, d.UnregisterPublisher(ctx, Publisher{"p:1", "f:2"}))
	pubs, _ = d.Publishers(ctx)
	require.Empty(t, pubs)

	_, err = d.HostsRetry(ctx, compat.Target{Topic: "nobody", Server: "x"}, compat.Router)
	require.ErrorIs(t, err, ErrNoHosts)
	require.NoError(t, d.Close())
	_, err = d.Hosts(ctx, srv, compat.Router)
	require.ErrorIs(t, err, ErrClosed)
}

func TestRetryStopsWithContext(t *testing.T) {
	d := NewDummy(DefaultConfig()) // 20 s check_timeout
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := d.HostsRetry(ctx, compat.Target{Topic: "t"}, compat.Router)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestRedisRetryFindsLateServer(t *testing.T) {
	r := redistest.Start(t)
	ctx := context.Background()
	cfg := fastConfig()
	cfg.CheckTimeout = 5 * time.Second
	mm := newTestRedis(t, r.Addr, cfg)
	go func() {
		time.Sleep(150 * time.Millisecond)
		_ = mm.Register(ctx, srv, "late:1", compat.Router, time.Minute)
	}()
	hosts, err := mm.HostsRetry(ctx, srv, compat.Router)
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
	time.Sleep(3 * cfg.TargetUpdate)
	require.GreaterOrEqual(t, k.Registrations(), 2, "the keeper re-registers every period")
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

// TestRedisDownAndBack: Redis down at start and mid-run gives typed errors;
// service resumes by itself when it returns.
func TestRedisDownAndBack(t *testing.T) {
	ctx := context.Background()
	dead := redistest.FreePort(t)
	mm, err := NewRedis(ctx, []RedisAddr{{Addr: compat.HostPort("127.0.0.1", dead)}}, fastConfig())
	require.NoError(t, err, "construction never fails on a dead Redis")
	err = mm.Register(ctx, srv, "h:1", compat.Router, time.Minute)
	require.ErrorIs(t, err, ErrMatchmakerUnavailable)
	_, err = mm.Hosts(ctx, srv, compat.Router)
	require.ErrorIs(t, err, ErrMatchmakerUnavailable)
	var ue *UnavailableError
	require.True(t, errors.As(err, &ue))
	require.NoError(t, mm.Close())

	r := redistest.Start(t)
	cfg := fastConfig()
	cfg.TargetExpire = 300 * time.Millisecond // the ready-from delay
	mm = newTestRedis(t, r.Addr, cfg)
	require.NoError(t, mm.Register(ctx, srv, "h:1", compat.Router, time.Minute))
	r.Kill()
	require.ErrorIs(t, mm.Register(ctx, srv, "h:1", compat.Router, time.Minute), ErrMatchmakerUnavailable)
	r.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for mm.Register(ctx, srv, "h:1", compat.Router, time.Minute) != nil {
		require.True(t, time.Now().Before(deadline), "writes did not resume")
		time.Sleep(20 * time.Millisecond)
	}
	for {
		hosts, err := mm.Hosts(ctx, srv, compat.Router)
		if err == nil {
			require.Equal(t, []string{"h:1"}, hosts)
			break
		}
		require.ErrorIs(t, err, ErrMatchmakerUnavailable)
		require.True(t, time.Now().Before(deadline), "reads did not resume")
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSeveralInstances: writes go to every live instance; one that comes
// back takes writes at once but is read only after its ready-from time.
func TestSeveralInstances(t *testing.T) {
	ctx := context.Background()
	a, b := redistest.Start(t), redistest.Start(t)
	cfg := fastConfig()
	cfg.TargetExpire = 1500 * time.Millisecond
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
	deadline := time.Now().Add(5 * time.Second)
	var backAt time.Time
	for {
		require.NoError(t, mm.Register(ctx, srv, "h:3", compat.Router, time.Minute))
		bOnly := newTestRedis(t, b.Addr, cfg)
		got, err := bOnly.Hosts(ctx, srv, compat.Router)
		require.NoError(t, err)
		bOnly.Close()
		if len(got) > 0 {
			backAt = time.Now()
			break // the checker saw it: writes reach it again
		}
		require.True(t, time.Now().Before(deadline), "writes never reached the returning instance")
		time.Sleep(50 * time.Millisecond)
	}
	// Until its ready-from time, every read is served by a, which has all.
	for time.Since(backAt) < cfg.TargetExpire-300*time.Millisecond {
		hosts, err := mm.Hosts(ctx, srv, compat.Router)
		require.NoError(t, err)
		require.ElementsMatch(t, []string{"h:1", "h:2", "h:3"}, hosts, "a read came from the returning instance too early")
		time.Sleep(50 * time.Millisecond)
	}
	// Kill a: reads now go to b, which is ready by then.
	time.Sleep(600 * time.Millisecond)
	a.Kill()
	hosts, err = mm.Hosts(ctx, srv, compat.Router)
	require.NoError(t, err)
	require.Equal(t, []string{"h:3"}, hosts, "b holds only what was written after it came back")
}

// TestSentinelFailover: one master, one replica, three sentinels; the
// master is killed mid-run and the Go matchmaker keeps registering and
// reading after the promotion.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("sentinel failover takes a few seconds; SKIPPED in -short mode only")
	}
	ctx := context.Background()
	master := redistest.Start(t)
	replica := redistest.Start(t, "--replicaof", "127.0.0.1", itoa(master.Port))
	group := "goslo-test"
	var sentinels []string
	for i := 0; i < 3; i++ {
		sentinels = append(sentinels, redistest.StartSentinel(t, group, master.Addr, 2).Addr)
	}
	u, err := compat.ParseTransportURL("zmq+sentinel://" + sentinels[0] + "," + sentinels[1] + "," + sentinels[2] + "/" + group)
	require.NoError(t, err)
	cfg := fastConfig()
	cfg.SocketTimeout = 500 * time.Millisecond
	mmI, err := New(ctx, u, "", cfg)
	require.NoError(t, err)
	mm := mmI.(*Sentinel)
	defer mm.Close()

	// Wait for the replica link, then register and read.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := mm.Register(ctx, srv, "h:1", compat.Router, time.Minute)
		if err == nil {
			if hosts, err := mm.Hosts(ctx, srv, compat.Router); err == nil && len(hosts) == 1 {
				break
			}
		}
		require.True(t, time.Now().Before(deadline), "sentinel set-up: %v", err)
		time.Sleep(100 * time.Millisecond)
	}

	// Replication is asynchronous: wait until the replica holds h:1, or a
	// failover would lose it (Redis behaviour, not the matchmaker's).
	onReplica := newTestRedis(t, replica.Addr, cfg)
	deadline = time.Now().Add(10 * time.Second)
	for {
		if hosts, err := onReplica.Hosts(ctx, srv, compat.Router); err == nil && len(hosts) == 1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the replica never caught up")
		time.Sleep(50 * time.Millisecond)
	}
	onReplica.Close()

	master.Kill()
	killed := time.Now()
	var wroteAgain time.Duration
	deadline = time.Now().Add(30 * time.Second)
	for {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		err := mm.Register(wctx, srv, "h:2", compat.Router, time.Minute)
		cancel()
		if err == nil {
			wroteAgain = time.Since(killed)
			break
		}
		require.True(t, time.Now().Before(deadline), "no write after failover: %v", err)
		time.Sleep(100 * time.Millisecond)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		hosts, err := mm.Hosts(ctx, srv, compat.Router)
		if err == nil && len(hosts) == 2 {
			break
		}
		require.True(t, time.Now().Before(deadline), "reads after failover: %v %v", hosts, err)
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("sentinel failover: the matchmaker wrote again %v after the master was killed (down-after-milliseconds=1000)", wroteAgain.Round(10*time.Millisecond))
}

func TestNewChoosesBackend(t *testing.T) {
	ctx := context.Background()
	for raw, want := range map[string]string{"zmq+dummy://": "*matchmaker.Dummy", "zmq://": "*matchmaker.Dummy"} {
		u, err := compat.ParseTransportURL(raw)
		require.NoError(t, err)
		mm, err := New(ctx, u, "dummy", DefaultConfig())
		require.NoError(t, err)
		require.Equal(t, want, typeName(mm))
		mm.Close()
	}
	u, _ := compat.ParseTransportURL("zmq+zookeeper://h:1")
	_, err := New(ctx, u, "", DefaultConfig())
	require.Error(t, err)
	u, _ = compat.ParseTransportURL("rabbit://h:1")
	_, err = New(ctx, u, "", DefaultConfig())
	require.Error(t, err)

	cc := compat.DefaultConfig("h")
	cc.MatchmakerRedis.WaitTimeout = 500
	mc := ConfigFrom(cc)
	require.Equal(t, 500*time.Millisecond, mc.WaitTimeout)
	require.Equal(t, 300*time.Second, mc.TargetExpire)
	u, _ = compat.ParseTransportURL("zmq+sentinel://:pw@s1:1,:pw2@s2:2/grp")
	addrs, pw, grp := sentinelParams(u, mc)
	require.Equal(t, []string{"s1:1", "s2:2"}, addrs)
	require.Equal(t, "pw2", pw)
	require.Equal(t, "grp", grp)
	u, _ = compat.ParseTransportURL("zmq+redis://h1:6379,:secret@h2:6380")
	require.Equal(t, []RedisAddr{{"h1:6379", ""}, {"h2:6380", "secret"}}, redisAddrs(u, mc))
	u, _ = compat.ParseTransportURL("zmq://")
	require.Equal(t, []RedisAddr{{"127.0.0.1:6379", ""}}, redisAddrs(u, mc))
}

func typeName(v any) string { return fmtType(v) }

func itoa(n int) string    { return strconv.Itoa(n) }
func fmtType(v any) string { return fmt.Sprintf("%T", v) }

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

	u, _ = compat.ParseTransportURL("zmq+redis://:wrong@" + r.Addr)
	bad, err := New(ctx, u, "", fastConfig())
	require.NoError(t, err)
	defer bad.Close()
	require.Error(t, bad.Register(ctx, srv, "h:2", compat.Router, time.Minute), "a wrong password must not register")
}

func TestKeeperStopsWithContext(t *testing.T) {
	d := NewDummy(fastConfig())
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	var mu sync.Mutex
	k, err := StartKeeper(ctx, func(context.Context) error {
		mu.Lock()
		n++
		mu.Unlock()
		return d.Register(context.Background(), srv, "h:1", compat.Router, time.Minute)
	}, func(context.Context) error { return nil }, 20*time.Millisecond, nil)
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	cancel()
	<-k.done // the loop ends with its context, leaving no goroutine
	mu.Lock()
	got := n
	mu.Unlock()
	require.GreaterOrEqual(t, got, 3)
	time.Sleep(60 * time.Millisecond)
	mu.Lock()
	require.Equal(t, got, n, "registered after its context ended")
	mu.Unlock()
	require.NoError(t, k.Stop(context.Background()))

	// A failing registration is retried, then resumes.
	fail := true
	k, err = StartKeeper(context.Background(), func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return ErrMatchmakerUnavailable
		}
		return nil
	}, func(context.Context) error { return nil }, 20*time.Millisecond, nil)
	require.ErrorIs(t, err, ErrMatchmakerUnavailable)
	mu.Lock()
	fail = false
	mu.Unlock()
	require.Eventually(t, func() bool { return k.Registrations() > 0 }, 2*time.Second, 10*time.Millisecond)
	k.Close()
}
