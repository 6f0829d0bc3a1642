package zmq

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/internal/zmqwire"
	"github.com/goslo/goslo/matchmaker"
)

// recorder is an Observer and DisconnectObserver that keeps what it is told.
type recorder struct {
	mu    sync.Mutex
	drops map[string]int
	discs map[string]int
}

func newRecorder() *recorder {
	return &recorder{drops: map[string]int{}, discs: map[string]int{}}
}

func (r *recorder) Sent(MsgType)                  {}
func (r *recorder) Received(MsgType)              {}
func (r *recorder) Call(time.Duration, string)    {}
func (r *recorder) Dropped(t MsgType, why string) { r.mu.Lock(); r.drops[why]++; r.mu.Unlock() }
func (r *recorder) Disconnected(socket string)    { r.mu.Lock(); r.discs[socket]++; r.mu.Unlock() }
func (r *recorder) dropped(why string) int        { r.mu.Lock(); defer r.mu.Unlock(); return r.drops[why] }
func (r *recorder) disconnected(socket string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.discs[socket]
}

// logBuffer is a slog handler's destination safe for concurrent writers.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// tcpPair is two PAIR sockets over loopback TCP, each bounding messages
// to maxMsg.
func tcpPair(t *testing.T, maxMsg int64) (a, b *zmq.Socket) {
	t.Helper()
	zctx, err := zmq.NewContext()
	require.NoError(t, err)
	a, err = newSocket(zctx, zmq.PAIR, "", 0, maxMsg, SocketOptions{})
	require.NoError(t, err)
	b, err = newSocket(zctx, zmq.PAIR, "", 0, maxMsg, SocketOptions{})
	require.NoError(t, err)
	require.NoError(t, b.Bind("tcp://127.0.0.1:*"))
	ep, err := b.GetLastEndpoint()
	require.NoError(t, err)
	require.NoError(t, a.Connect(ep))
	require.NoError(t, b.SetRcvtimeo(10*time.Second))
	t.Cleanup(func() {
		a.SetLinger(0)
		b.SetLinger(0)
		a.Close()
		b.Close()
		zctx.Term()
	})
	return a, b
}

func parts(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = bytes.Repeat([]byte{byte('a' + i%26)}, size)
	}
	return out
}

// TestRecvMessageBoundsTheWholeMessage: MaxMessageSize bounds the sum of
// a message's parts, not only each part (libzmq's ZMQ_MAXMSGSIZE); a
// message over it is consumed whole and refused, and the next is read.
func TestRecvMessageBoundsTheWholeMessage(t *testing.T) {
	for _, batch := range []bool{true, false} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) {
			defer batchIO.Store(true)
			a, b := tcpPair(t, 1000)
			require.NoError(t, sendMessage(a, parts(12, 200), 0)) // 2,400 bytes, each part under the bound
			require.NoError(t, sendMessage(a, parts(5, 200), 0))  // 1,000 bytes: at the bound
			require.NoError(t, sendMessage(a, parts(3, 10), 0))
			batchIO.Store(batch)
			_, err := recvMessage(b, 0)
			require.ErrorIs(t, err, ErrTooLarge)
			require.Equal(t, "oversized", dropReason(err))
			got, err := recvMessage(b, 0)
			require.NoError(t, err)
			require.Equal(t, parts(5, 200), got)
			got, err = recvMessage(b, 0)
			require.NoError(t, err)
			require.Equal(t, parts(3, 10), got)
		})
	}
}

func guardDriver(t *testing.T, mm matchmaker.Matchmaker, obs Observer, logs *logBuffer, maxMsg int64) *ZMQ {
	c := compat.DefaultConfig("127.0.0.1")
	c.ZMQ.RPCZMQBindAddress = "127.0.0.1"
	o := OptionsFrom(c)
	o.Workers = 2
	o.Observer = obs
	o.MaxMessageSize = maxMsg
	o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	d, err := NewZMQ(mm, o)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

// rawDealer connects a DEALER of its own context to tcp://addr.
func rawDealer(t *testing.T, addr string) *zmq.Socket {
	zctx, err := zmq.NewContext()
	require.NoError(t, err)
	s, err := zctx.NewSocket(zmq.DEALER)
	require.NoError(t, err)
	require.NoError(t, s.Connect(zmqwire.TCPAddress(addr)))
	t.Cleanup(func() {
		s.SetLinger(0)
		s.Close()
		zctx.Term()
	})
	return s
}

// TestServerCountsMessagesGivenUp: a direct-mode server logs and counts
// (Observer.Dropped) a message whose parts add up to more than
// MaxMessageSize and one of more than 1,024 parts; a single frame over the
// bound, which libzmq refuses by dropping the connection, is logged and
// counted as a lost connection (Observer.Disconnected). The server keeps
// serving.
func TestServerCountsMessagesGivenUp(t *testing.T) {
	mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer mm.Close()
	rec, logs := newRecorder(), &logBuffer{}
	d := guardDriver(t, mm, rec, logs, 64<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	target := compat.Target{Topic: "guard", Server: "s1"}
	got := make(chan string, 4)
	srv, err := d.Listen(ctx, target, func(r *Request) { got <- r.MsgID })
	require.NoError(t, err)
	defer srv.Stop(context.Background())

	cli := rawDealer(t, srv.Addr())
	require.NoError(t, sendMessage(cli, parts(12, 10<<10), 0)) // 120 KiB in 10 KiB parts
	require.Eventually(t, func() bool { return rec.dropped("oversized") == 1 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, sendMessage(cli, parts(1100, 1), 0))
	require.Eventually(t, func() bool { return rec.dropped("too_many_parts") == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Contains(t, logs.String(), "reason=oversized")
	require.Contains(t, logs.String(), "reason=too_many_parts")

	big := rawDealer(t, srv.Addr())
	require.NoError(t, sendMessage(big, [][]byte{bytes.Repeat([]byte("x"), 100<<10)}, 0))
	require.Eventually(t, func() bool { return rec.disconnected("server-router") >= 1 }, 10*time.Second, 10*time.Millisecond)
	require.Contains(t, logs.String(), "frame over max_message_size")

	// Still serving: a well-formed CAST reaches the handler.
	require.NoError(t, sendMessage(cli, zmqwire.DirectRequest(Cast, "mid-after", []byte(`{}`)), 0))
	select {
	case id := <-got:
		require.Equal(t, "mid-after", id)
	case <-time.After(10 * time.Second):
		t.Fatal("the server stopped serving")
	}
	require.False(t, strings.Contains(logs.String(), "panic"))
}

// TestProxyCountsMessagesGivenUp: the proxy counts in Dropped (hence
// goslo_proxy_dropped_total) what its ROUTERs give up whole, and in
// Disconnects a connection libzmq dropped for an oversized frame.
func TestProxyCountsMessagesGivenUp(t *testing.T) {
	mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer mm.Close()
	logs := &logBuffer{}
	p := testProxy(t, mm, ProxyOptions{MaxMessageSize: 64 << 10,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	cli := rawDealer(t, p.Frontend())
	require.NoError(t, sendMessage(cli, parts(12, 10<<10), 0))
	require.NoError(t, sendMessage(cli, parts(1100, 1), 0))
	require.Eventually(t, func() bool { return p.Stats().Dropped == 2 }, 10*time.Second, 10*time.Millisecond, "%+v", p.Stats())
	big := rawDealer(t, p.Frontend())
	require.NoError(t, sendMessage(big, [][]byte{bytes.Repeat([]byte("x"), 100<<10)}, 0))
	require.Eventually(t, func() bool { return p.Stats().Disconnects >= 1 }, 10*time.Second, 10*time.Millisecond, "%+v", p.Stats())
	require.Contains(t, logs.String(), "reason=oversized")
	require.Contains(t, logs.String(), "reason=too_many_parts")
	require.Contains(t, logs.String(), "socket=proxy-frontend")
}
