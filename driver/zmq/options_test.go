package zmq

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/matchmaker"
)

// configDriver is a quiet driver on loopback from a config that edit
// changes first.
func configDriver(t *testing.T, mm matchmaker.Matchmaker, edit func(c *compat.Config)) *ZMQ {
	c := compat.DefaultConfig("127.0.0.1")
	c.ZMQ.RPCZMQBindAddress = "127.0.0.1"
	edit(c)
	require.NoError(t, c.Validate())
	o := OptionsFrom(c)
	o.Logger = slog.New(slog.DiscardHandler)
	d, err := NewZMQ(mm, o)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

// TestExecutorThreadPoolSize: a server runs executor_thread_pool_size
// handlers at once ([DEFAULT], default 64), seen with handlers that block
// until the test has watched the pool fill and stay at that size.
func TestExecutorThreadPoolSize(t *testing.T) {
	require.Equal(t, 64, OptionsFrom(compat.DefaultConfig("h")).Workers, "oslo's default")
	for _, size := range []int{3, 100} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
			defer mm.Close()
			srvD := configDriver(t, mm, func(c *compat.Config) { c.Default.ExecutorThreadPoolSize = size })
			cliD := configDriver(t, mm, func(*compat.Config) {})
			ctx := context.Background()
			const casts = 120
			var running, peak, done atomic.Int64
			release := make(chan struct{})
			var once sync.Once
			unblock := func() { once.Do(func() { close(release) }) }
			target := compat.Target{Topic: "pool", Server: "s"}
			srv, err := srvD.Listen(ctx, target, func(r *Request) {
				n := running.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				<-release
				running.Add(-1)
				done.Add(1)
			})
			require.NoError(t, err)
			defer srv.Stop(ctx)
			defer unblock() // first, on failure too: Stop waits for the handlers
			for i := 0; i < casts; i++ {
				require.NoError(t, cliD.Cast(ctx, target, []byte("x")))
			}
			require.Eventually(t, func() bool { return running.Load() == int64(size) }, 10*time.Second, 5*time.Millisecond,
				"the pool fills up to its size")
			time.Sleep(300 * time.Millisecond) // time for more handlers to start, were the pool larger
			require.Equal(t, int64(size), peak.Load(), "handlers at once with executor_thread_pool_size = %d", size)
			unblock()
			require.Eventually(t, func() bool { return done.Load() == casts }, 10*time.Second, 5*time.Millisecond)
		})
	}
}

// readOptions are the socket options oslo sets, as read back.
type readOptions struct {
	linger               time.Duration
	ka, idle, cnt, intvl int
}

func readSocketOptions(t *testing.T, s *zmq.Socket) readOptions {
	var r readOptions
	var err error
	r.linger, err = s.GetLinger()
	require.NoError(t, err)
	r.ka, err = s.GetTcpKeepalive()
	require.NoError(t, err)
	r.idle, err = s.GetTcpKeepaliveIdle()
	require.NoError(t, err)
	r.cnt, err = s.GetTcpKeepaliveCnt()
	require.NoError(t, err)
	r.intvl, err = s.GetTcpKeepaliveIntvl()
	require.NoError(t, err)
	return r
}

// TestSocketOptions: zmq_linger and the zmq_tcp_keepalive options are set
// on every socket as oslo 8.1.4's zmq_socket.py sets them (read back from
// a server's ROUTER, a client's DEALER and a proxy-mode client's DEALER):
// linger in seconds (-1, oslo's "for ever": ForeverLinger); keepalive -1/0/1 by sign; idle, cnt and
// intvl as given when positive; -1 (the OS default) otherwise.
func TestSocketOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(c *compat.Config)
		want readOptions
	}{
		{"defaults", func(*compat.Config) {}, readOptions{ForeverLinger, -1, -1, -1, -1}},
		{"set", func(c *compat.Config) {
			c.ZMQ.ZMQLinger = 3
			c.ZMQ.ZMQTCPKeepalive = 5
			c.ZMQ.ZMQTCPKeepaliveIdle = 30
			c.ZMQ.ZMQTCPKeepaliveCnt = 4
			c.ZMQ.ZMQTCPKeepaliveIntvl = 7
		}, readOptions{3 * time.Second, 1, 30, 4, 7}},
		{"off", func(c *compat.Config) {
			c.ZMQ.ZMQLinger = 0
			c.ZMQ.ZMQTCPKeepalive = 0
			c.ZMQ.ZMQTCPKeepaliveIdle = 0
			c.ZMQ.ZMQTCPKeepaliveCnt = -5
		}, readOptions{0, 0, -1, -1, -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
			defer mm.Close()
			d := configDriver(t, mm, tc.edit)
			ctx := context.Background()
			target := compat.Target{Topic: "opts", Server: "s"}
			got := make(chan struct{}, 1)
			srv, err := d.Listen(ctx, target, func(*Request) { got <- struct{}{} })
			require.NoError(t, err)
			defer srv.Stop(ctx)
			require.NoError(t, d.Cast(ctx, target, []byte("x")))
			<-got
			var router, dealer readOptions
			require.NoError(t, srv.l.sync(func() { router = readSocketOptions(t, srv.sock) }))
			require.NoError(t, d.cl.l.sync(func() {
				for _, dl := range d.cl.dealers {
					dealer = readSocketOptions(t, dl.s)
				}
			}))
			require.Equal(t, tc.want, router, "server ROUTER")
			require.Equal(t, tc.want, dealer, "client DEALER")

			pd := configDriver(t, mm, func(c *compat.Config) { tc.edit(c); c.ZMQ.UseRouterProxy = true })
			pc, err := pd.proxy()
			require.NoError(t, err)
			var proxied readOptions
			require.NoError(t, pc.l.sync(func() { proxied = readSocketOptions(t, pc.sock) }))
			require.Equal(t, tc.want, proxied, "proxy-mode client DEALER")

			c := compat.DefaultConfig("127.0.0.1")
			tc.edit(c)
			require.Equal(t, SocketOptionsFrom(c), ProxyOptionsFrom(c).Socket, "the proxy takes them too")
		})
	}
}
