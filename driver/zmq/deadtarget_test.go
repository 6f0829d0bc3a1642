package zmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/internal/redistest"
	"github.com/goslo/goslo/matchmaker"
)

// quietDriver is a driver on loopback that logs nothing (a dead target's
// queued casts are each logged when Close fails them).
func quietDriver(t *testing.T, mm matchmaker.Matchmaker, proxied bool) *ZMQ {
	c := compat.DefaultConfig("127.0.0.1")
	c.ZMQ.RPCZMQBindAddress = "127.0.0.1"
	c.ZMQ.UseRouterProxy = proxied
	o := OptionsFrom(c)
	o.Workers = 4
	o.Logger = slog.New(slog.DiscardHandler)
	d, err := NewZMQ(mm, o)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

// registerDead registers a target whose server is gone: a ROUTER address
// nobody listens on (direct), or a DEALER identity behind a proxy nobody
// runs (proxy mode; the dead proxy's frontend port is returned).
func registerDead(t *testing.T, mm matchmaker.Matchmaker, target compat.Target, proxied bool) int {
	ctx := context.Background()
	port := redistest.FreePort(t)
	dead := fmt.Sprintf("127.0.0.1:%d", port)
	if proxied {
		require.NoError(t, mm.RegisterPublisher(ctx, matchmaker.Publisher{Pub: dead, Frontend: dead}, time.Minute))
		require.NoError(t, mm.Register(ctx, target, "127.0.0.1/"+target.Topic+"/"+target.Server+"/x", compat.Dealer, time.Minute))
	} else {
		require.NoError(t, mm.Register(ctx, target, dead, compat.Router, time.Minute))
	}
	return port
}

// fillDead queues a full budget of casts to a dead target: each returns at
// once; the next one waits for room until its deadline, then fails.
func fillDead(t *testing.T, d *ZMQ, target compat.Target) {
	ctx := context.Background()
	for i := 0; i < maxWaiting; i++ {
		require.NoError(t, d.Cast(ctx, target, []byte("dead")))
	}
	c, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err := d.Cast(c, target, []byte("dead"))
	require.True(t, errors.Is(err, ErrQueueFull) || errors.Is(err, context.DeadlineExceeded), "%v", err)
}

// TestDeadTargetOwnBudget: a dead target's full queue is its own; casts to
// another target are taken at once and delivered. Direct mode: the live
// target's server gets them while the dead one's stay queued. Proxy mode
// (where a dead target is one behind a dead proxy, every key waiting on the
// one DEALER): a cast to another key is taken while the dead key's budget
// is full, and leaves once a proxy answers at the registered frontend.
func TestDeadTargetOwnBudget(t *testing.T) {
	t.Run("direct", func(t *testing.T) {
		mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
		defer mm.Close()
		srvD, cliD := quietDriver(t, mm, false), quietDriver(t, mm, false)
		ctx := context.Background()
		live := compat.Target{Topic: "live", Server: "s"}
		var got atomic.Int64
		srv, err := srvD.Listen(ctx, live, func(r *Request) { got.Add(1) })
		require.NoError(t, err)
		defer srv.Stop(ctx)
		dead := compat.Target{Topic: "dead", Server: "s"}
		registerDead(t, mm, dead, false)
		fillDead(t, cliD, dead)

		// Were the budget shared, each would wait for room until its
		// deadline, then fail with ErrQueueFull.
		for i := 0; i < 100; i++ {
			c, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := cliD.Cast(c, live, []byte("live"))
			cancel()
			require.NoError(t, err, "cast %d to a live target", i)
		}
		require.Eventually(t, func() bool { return got.Load() == 100 }, 5*time.Second, 10*time.Millisecond)
	})
	t.Run("proxy", func(t *testing.T) {
		mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
		defer mm.Close()
		cliD := quietDriver(t, mm, true)
		ctx := context.Background()
		dead := compat.Target{Topic: "dead", Server: "s"}
		port := registerDead(t, mm, dead, true)
		other := compat.Target{Topic: "other", Server: "s"}
		require.NoError(t, mm.Register(ctx, other, "127.0.0.1/other/s/x", compat.Dealer, time.Minute))
		fillDead(t, cliD, dead)

		// Its deadline also bounds its wait for a proxy: give it time.
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := cliD.Cast(c, other, []byte("other"))
		cancel()
		require.NoError(t, err, "a cast to another key while the dead key's budget is full")

		// A frontend comes up where the proxy was registered: the queued
		// casts leave, the other key's among them.
		zctx, err := zmq.NewContext()
		require.NoError(t, err)
		defer zctx.Term()
		fe, err := zctx.NewSocket(zmq.ROUTER)
		require.NoError(t, err)
		defer fe.Close()
		require.NoError(t, fe.SetLinger(0))
		require.NoError(t, fe.SetRcvtimeo(5*time.Second))
		require.NoError(t, fe.Bind(fmt.Sprintf("tcp://127.0.0.1:%d", port)))
		n := 0
		for {
			msg, err := fe.RecvMessageBytes(0)
			require.NoError(t, err, "the other key's cast never arrived (%d received)", n)
			n++
			if len(msg) == 7 && string(msg[4]) == "127.0.0.1/other/s/x" {
				require.Equal(t, "other", string(msg[6]))
				break
			}
		}
	})
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestIdleClientWithQueuedCastsCPU: a client holding a full budget of
// casts to a dead target backs off instead of sweeping its queue every
// millisecond: idle, it uses little CPU (measured as process CPU time over
// one second; it was about 0.76 s a second before the backoff).
func TestIdleClientWithQueuedCastsCPU(t *testing.T) {
	for _, proxied := range []bool{false, true} {
		t.Run(map[bool]string{false: "direct", true: "proxy"}[proxied], func(t *testing.T) {
			mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
			defer mm.Close()
			d := quietDriver(t, mm, proxied)
			dead := compat.Target{Topic: "dead", Server: "s"}
			registerDead(t, mm, dead, proxied)
			ctx := context.Background()
			for i := 0; i < maxWaiting; i++ {
				require.NoError(t, d.Cast(ctx, dead, []byte("dead")))
			}
			time.Sleep(300 * time.Millisecond) // let the backoff reach its ceiling
			before := cpuTime(t)
			start := time.Now()
			time.Sleep(time.Second)
			used := cpuTime(t) - before
			share := used.Seconds() / time.Since(start).Seconds()
			t.Logf("idle client with %d queued casts: %v CPU in %v (%.1f%% of a core)", maxWaiting, used, time.Since(start).Round(time.Millisecond), 100*share)
			require.Less(t, share, 0.15, "an idle client with queued casts burns CPU")
		})
	}
}
