package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo"
	zmqdrv "github.com/goslo/goslo/driver/zmq"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/rabbittest"
	"github.com/goslo/goslo/internal/redistest"
)

// TestZmqRabbit joins a zmq bus (Redis matchmaker) and a RabbitMQ bus
// (private node) with a bridge and checks every behaviour of issue 13 with
// Go peers: a zmq server "zy" and a RabbitMQ server "rx" of topic "bt",
// each reached from the other bus under its own name.
func TestZmqRabbit(t *testing.T) {
	red := redistest.Start(t)
	node := rabbittest.Start(t)
	url := node.URL("/")
	mkZ := func(t testing.TB) *goslo.Transport { return zmqTransport(t, red.Addr) }
	mkR := func(t testing.TB) *goslo.Transport { return rabbitTransport(t, url) }
	zt, rt := mkZ(t), mkR(t)
	zy := startServer(t, zt, "bt", "zy")
	rx := startServer(t, rt, "bt", "rx")
	zl := startListener(t, zt, "bn")
	rl := startListener(t, rt, "bn")

	obs := newCounter()
	opts := bridgeOpts{topics: []string{"bt"}, notifications: []string{"bn"}, names: [2]string{"zmq", "rabbit"},
		servers: [2]map[string][]string{nil, {"": {"rx"}}}, group: "zr", obs: obs}
	b := startBridge(t, [2]func(testing.TB) *goslo.Transport{mkZ, mkR}, opts)
	waitMirrors(t, b, "rabbit:bt.zy", "zmq:bt.rx")

	zc := client(zt, "bt", "", 10*time.Second)
	rc := client(rt, "bt", "", 10*time.Second)
	ctx := context.Background()

	t.Run("call each way reaches the named server", func(t *testing.T) {
		obs.reset()
		rctx := goslo.NewMap("user", "u1", "roles", []any{"admin", "member"}, "request_id", "req-1")
		for _, c := range []struct {
			cl     *goslo.RPCClient
			server string
		}{{zc, "rx"}, {rc, "zy"}} {
			cl := c.cl.Prepare(goslo.PrepareOptions{Server: c.server})
			res, err := cl.Call(ctx, rctx, "whoami", nil)
			require.NoError(t, err)
			require.Equal(t, c.server, res)
			args := goslo.NewMap("x", int64(1), "s", "héllo ☃", "l", []any{int64(1), 2.5, nil, true})
			res, err = cl.Call(ctx, rctx, "echo", args)
			require.NoError(t, err)
			require.True(t, envelope.Equal(args, res), envelope.Repr(res))
			res, err = cl.Call(ctx, rctx, "context", nil)
			require.NoError(t, err)
			require.True(t, envelope.Equal(rctx, res), "context un-flattened and intact: %s", envelope.Repr(res))
		}
		// A call is counted once its reply went back, which the caller may
		// see first (a RabbitMQ reply is confirmed after it is delivered).
		require.Eventually(t, func() bool {
			return obs.get(obs.forwarded, "zmq->rabbit call") == 3 && obs.get(obs.forwarded, "rabbit->zmq call") == 3
		}, 5*time.Second, 5*time.Millisecond, "%v", obs.snapshot())
		time.Sleep(50 * time.Millisecond)
		require.Equal(t, 3, obs.get(obs.forwarded, "zmq->rabbit call"), obs.snapshot())
		require.Equal(t, 3, obs.get(obs.forwarded, "rabbit->zmq call"), obs.snapshot())
	})

	t.Run("failures forwarded verbatim", func(t *testing.T) {
		for _, c := range []struct {
			cl     *goslo.RPCClient
			server string
		}{{zc, "rx"}, {rc, "zy"}} {
			cl := c.cl.Prepare(goslo.PrepareOptions{Server: c.server})
			_, err := cl.Call(ctx, nil, "boom", goslo.NewMap("message", "kaboom: spécial ☃"))
			var re *goslo.RemoteError
			require.ErrorAs(t, err, &re)
			require.Equal(t, "ValueError", re.Class)
			require.Equal(t, "builtins", re.Module)
			require.Contains(t, re.Message, "kaboom: spécial ☃")
			_, err = cl.Call(ctx, nil, "nope", nil)
			require.ErrorIs(t, err, goslo.ErrNoSuchMethod)
			require.ErrorAs(t, err, &re)
			require.Equal(t, "NoSuchMethod", re.Class)
			require.Equal(t, "oslo_messaging.rpc.dispatcher", re.Module)
		}
	})

	t.Run("cast each way, once", func(t *testing.T) {
		obs.reset()
		require.NoError(t, zc.Prepare(goslo.PrepareOptions{Server: "rx"}).Cast(ctx, goslo.NewMap("user", "c1"), "cast_me", goslo.NewMap("n", int64(7))))
		e := rx.next(t, 10*time.Second)
		require.Equal(t, "cast_me", e.Method)
		require.True(t, envelope.Equal(goslo.NewMap("n", int64(7)), e.Args))
		require.True(t, envelope.Equal(goslo.NewMap("user", "c1"), e.Ctx))
		require.NoError(t, rc.Prepare(goslo.PrepareOptions{Server: "zy"}).Cast(ctx, nil, "cast_me", goslo.NewMap("n", int64(8))))
		e = zy.next(t, 10*time.Second)
		require.Equal(t, "cast_me", e.Method)
		rx.none(t, 500*time.Millisecond)
		zy.none(t, 10*time.Millisecond)
		// A cast is counted once the bridge's send returned (a RabbitMQ
		// publish once confirmed), which may be after the server has it.
		require.Eventually(t, func() bool {
			return obs.get(obs.forwarded, "zmq->rabbit cast") >= 1 && obs.get(obs.forwarded, "rabbit->zmq cast") >= 1
		}, 10*time.Second, 5*time.Millisecond, "%v", obs.snapshot())
		require.Equal(t, 1, obs.get(obs.forwarded, "zmq->rabbit cast"), obs.snapshot())
		require.Equal(t, 1, obs.get(obs.forwarded, "rabbit->zmq cast"), obs.snapshot())
	})

	t.Run("fanout reaches every server of both buses once", func(t *testing.T) {
		for _, cl := range []*goslo.RPCClient{zc, rc} {
			require.NoError(t, cl.Prepare(goslo.PrepareOptions{Fanout: true}).Cast(ctx, nil, "fanout_me", goslo.NewMap("n", int64(9))))
			require.Equal(t, "fanout_me", zy.next(t, 10*time.Second).Method)
			require.Equal(t, "fanout_me", rx.next(t, 10*time.Second).Method)
			zy.none(t, 700*time.Millisecond)
			rx.none(t, 10*time.Millisecond)
		}
	})

	t.Run("topic-only calls are balanced over both buses", func(t *testing.T) {
		for _, cl := range []*goslo.RPCClient{zc, rc} {
			// The zmq client's DEALER connects to the topic's hosts when it
			// first looks the topic up, and sends only to connections made
			// (immediate, as the reference sets it): calls made before the
			// mirror's connection completes all go to zy. Once both servers
			// answered, the next 30 calls must reach both.
			require.Eventually(t, func() bool {
				seen := map[any]bool{}
				for i := 0; i < 10; i++ {
					res, err := cl.Call(ctx, nil, "whoami", nil)
					if err != nil {
						return false
					}
					seen[res] = true
				}
				return len(seen) == 2
			}, 10*time.Second, 10*time.Millisecond)
			seen := map[any]int{}
			for i := 0; i < 30; i++ {
				res, err := cl.Call(ctx, nil, "whoami", nil)
				require.NoError(t, err)
				seen[res]++
			}
			require.Len(t, seen, 2, "%v", seen)
		}
	})

	t.Run("notifications both ways, once each", func(t *testing.T) {
		zn := goslo.NewNotifier(zt, "zmq.host", "bn")
		rn := goslo.NewNotifier(rt, "rabbit.host", "bn")
		require.NoError(t, zn.Info(ctx, goslo.NewMap("user", "n1"), "from.zmq", goslo.NewMap("id", int64(1))))
		require.NoError(t, rn.Warn(ctx, goslo.NewMap("user", "n2"), "from.rabbit", "payload"))
		require.NoError(t, rn.Sample(ctx, nil, "from.rabbit.sample", nil))
		want := map[string]int{"from.zmq/INFO": 1, "from.rabbit/WARN": 1, "from.rabbit.sample/SAMPLE": 1}
		for _, n := range []*notes{zl, rl} {
			require.Eventually(t, func() bool { return fmt.Sprint(n.ids()) == fmt.Sprint(want) }, 10*time.Second, 20*time.Millisecond, "%v", n.ids())
		}
		time.Sleep(time.Second)
		require.Equal(t, want, zl.ids())
		require.Equal(t, want, rl.ids())
		rl.mu.Lock()
		for _, x := range rl.got {
			if x.EventType == "from.zmq" {
				require.Equal(t, "zmq.host", x.PublisherID)
				require.True(t, envelope.Equal(goslo.NewMap("id", int64(1)), x.Payload), envelope.Repr(x.Payload))
				require.True(t, envelope.Equal(goslo.NewMap("user", "n1"), x.Context), envelope.Repr(x.Context))
			}
		}
		rl.mu.Unlock()
	})

	t.Run("call monitor heartbeats while the zmq server works", func(t *testing.T) {
		start := time.Now()
		res, err := rc.Prepare(goslo.PrepareOptions{Server: "zy", Timeout: 20 * time.Second, CallMonitorTimeout: 2 * time.Second}).
			Call(ctx, nil, "slow", goslo.NewMap("seconds", 3.5))
		require.NoError(t, err)
		require.Equal(t, 3.5, res)
		require.GreaterOrEqual(t, time.Since(start), 3400*time.Millisecond)
	})

	t.Run("a forwarded call carries the caller's remaining time", func(t *testing.T) {
		obs.reset()
		start := time.Now()
		_, err := rc.Prepare(goslo.PrepareOptions{Server: "zy", Timeout: time.Second}).Call(ctx, nil, "slow", goslo.NewMap("seconds", 4.0))
		require.ErrorIs(t, err, goslo.ErrMessagingTimeout)
		require.Eventually(t, func() bool { return obs.get(obs.failed, "rabbit->zmq call timeout") == 1 }, 5*time.Second, 10*time.Millisecond)
		require.Less(t, time.Since(start), 2500*time.Millisecond, "the bridge gave up with the caller, not after its own 15 s")
	})

	t.Run("malformed requests answered, not forwarded", func(t *testing.T) {
		obs.reset()
		zd := zt.Driver().(*zmqdrv.Transport)
		for _, c := range []struct {
			ctx, body any
			want      string
		}{
			{goslo.NewMap(), []any{int64(1), int64(2)}, "the message is not a dict"},
			{"not a dict", goslo.NewMap("method", "whoami", "args", goslo.NewMap()), "the context is not a dict"},
		} {
			payload, err := envelope.AppendPair(zd.Codec(), nil, c.ctx, c.body)
			require.NoError(t, err)
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			reply, err := zd.ZMQ().Call(cctx, goslo.Target{Topic: "bt", Server: "rx"}, payload)
			cancel()
			require.NoError(t, err)
			_, remote, err := envelope.DecodeReply(zd.Codec(), reply)
			require.NoError(t, err)
			require.NotNil(t, remote)
			require.Equal(t, "ValueError", remote.Class)
			require.Contains(t, remote.Message, c.want)
		}
		rx.none(t, 200*time.Millisecond)
		require.Equal(t, 2, obs.get(obs.failed, "zmq->rabbit call malformed"), obs.snapshot())
		require.Equal(t, 0, obs.get(obs.forwarded, "zmq->rabbit call"), obs.snapshot())
	})

	t.Run("no loops: mirrors stay those of real servers", func(t *testing.T) {
		obs.reset()
		time.Sleep(time.Second) // five discovery rounds
		require.Equal(t, []string{"rabbit:bt.zy", "zmq:bt.rx"}, b.Mirrors())
		require.NoError(t, zc.Prepare(goslo.PrepareOptions{Server: "rx"}).Cast(ctx, nil, "cast_me", nil))
		rx.next(t, 10*time.Second)
		require.Eventually(t, func() bool { return obs.get(obs.forwarded, "zmq->rabbit cast") >= 1 }, 10*time.Second, 5*time.Millisecond, "%v", obs.snapshot())
		time.Sleep(500 * time.Millisecond)
		require.Equal(t, 1, obs.get(obs.forwarded, "zmq->rabbit cast"), obs.snapshot())
		require.Equal(t, 0, obs.get(obs.forwarded, "rabbit->zmq cast"), obs.snapshot())
	})

	t.Run("a server that leaves loses its mirror", func(t *testing.T) {
		zz := startServer(t, zt, "bt", "zz")
		waitMirrors(t, b, "rabbit:bt.zy", "rabbit:bt.zz", "zmq:bt.rx")
		res, err := rc.Prepare(goslo.PrepareOptions{Server: "zz"}).Call(ctx, nil, "whoami", nil)
		require.NoError(t, err)
		require.Equal(t, "zz", res)
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		require.NoError(t, zz.srv.Stop(sctx))
		cancel()
		waitMirrors(t, b, "rabbit:bt.zy", "zmq:bt.rx")
	})

	t.Run("two bridges: one works, the other takes over", func(t *testing.T) {
		obs2 := newCounter()
		o2 := opts
		o2.obs = obs2
		b2 := startBridge(t, [2]func(testing.TB) *goslo.Transport{mkZ, mkR}, o2)
		// Both serve calls and casts; only the lease holder forwards fanouts.
		waitMirrors(t, b2, "rabbit:bt.zy", "zmq:bt.rx")
		require.False(t, b2.Active())
		require.True(t, b.Active())
		time.Sleep(3 * time.Second) // the zmq client's routing table (zmq_target_update) learns b2's mirror
		for i := 0; i < 3; i++ {
			for _, cl := range []*goslo.RPCClient{zc, rc} {
				require.NoError(t, cl.Prepare(goslo.PrepareOptions{Fanout: true}).Cast(ctx, nil, "fanout_me", nil))
				zy.next(t, 10*time.Second)
				rx.next(t, 10*time.Second)
				zy.none(t, 500*time.Millisecond)
				rx.none(t, 10*time.Millisecond)
			}
		}
		for _, c := range []struct {
			cl     *goslo.RPCClient
			server string
		}{{zc, "rx"}, {rc, "zy"}} {
			for i := 0; i < 10; i++ {
				res, err := c.cl.Prepare(goslo.PrepareOptions{Server: c.server}).Call(ctx, nil, "whoami", nil)
				require.NoError(t, err)
				require.Equal(t, c.server, res)
			}
		}
		require.Positive(t, obs2.get(obs2.forwarded, "rabbit->zmq call"), "the second bridge serves calls too: %s", obs2.snapshot())
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		require.NoError(t, b.Stop(sctx))
		cancel()
		require.Eventually(t, b2.Active, 10*time.Second, 10*time.Millisecond)
		time.Sleep(3 * time.Second) // the zmq client's routing table forgets b's mirror
		for _, c := range []struct {
			cl     *goslo.RPCClient
			server string
		}{{zc, "rx"}, {rc, "zy"}} {
			res, err := c.cl.Prepare(goslo.PrepareOptions{Server: c.server}).Call(ctx, nil, "whoami", nil)
			require.NoError(t, err)
			require.Equal(t, c.server, res)
		}
		for _, cl := range []*goslo.RPCClient{zc, rc} {
			require.NoError(t, cl.Prepare(goslo.PrepareOptions{Fanout: true}).Cast(ctx, nil, "fanout_me", nil))
			zy.next(t, 10*time.Second)
			rx.next(t, 10*time.Second)
			zy.none(t, 700*time.Millisecond)
			rx.none(t, 10*time.Millisecond)
		}
		b = b2
	})

	t.Run("bridge restarted mid-traffic", func(t *testing.T) {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var calls int
		var errs []error
		for _, c := range []struct {
			cl     *goslo.RPCClient
			server string
		}{{zc, "rx"}, {rc, "zy"}} {
			for w := 0; w < 2; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cl := c.cl.Prepare(goslo.PrepareOptions{Server: c.server, Timeout: 30 * time.Second})
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						res, err := cl.Call(ctx, nil, "echo", goslo.NewMap("i", int64(i)))
						mu.Lock()
						calls++
						if err == nil && !envelope.Equal(goslo.NewMap("i", int64(i)), res) {
							err = errors.New("wrong reply " + envelope.Repr(res))
						}
						if err != nil {
							errs = append(errs, fmt.Errorf("%s: %w", c.server, err))
						}
						mu.Unlock()
						time.Sleep(5 * time.Millisecond)
					}
				}()
			}
		}
		time.Sleep(time.Second)
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		require.NoError(t, b.Stop(sctx))
		cancel()
		b3 := startBridge(t, [2]func(testing.TB) *goslo.Transport{mkZ, mkR}, opts)
		waitMirrors(t, b3, "rabbit:bt.zy", "zmq:bt.rx")
		time.Sleep(time.Second)
		close(stop)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		require.Empty(t, errs, "%d calls", calls)
		require.Greater(t, calls, 20)
		t.Logf("%d calls across the restart, none lost", calls)
	})
}
