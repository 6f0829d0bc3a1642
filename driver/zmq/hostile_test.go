package zmq

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/internal/zmqwire"
	"github.com/goslo/goslo/matchmaker"
)

// lineCounter is a slog handler that counts records by level and keeps
// the suppressed counts of the limiter's summaries.
type lineCounter struct {
	mu         sync.Mutex
	n          map[slog.Level]int
	msgs       map[string]int
	suppressed int
	summaries  int
}

func newLineCounter() *lineCounter {
	return &lineCounter{n: map[slog.Level]int{}, msgs: map[string]int{}}
}

func (c *lineCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *lineCounter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *lineCounter) WithGroup(string) slog.Handler            { return c }
func (c *lineCounter) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[r.Level]++
	c.msgs[r.Message]++
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "suppressed" {
			c.suppressed += int(a.Value.Int64())
			c.summaries++
		}
		return true
	})
	return nil
}

// logged is how many records of msg passed, and how many were counted
// in summaries instead.
func (c *lineCounter) logged(msg string) (passed, suppressed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.msgs[msg] - c.summaries, c.suppressed
}

func (c *lineCounter) count(l slog.Level) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[l]
}

type countingObserver struct {
	mu      sync.Mutex
	dropped map[string]int
	sent    atomic.Int64
}

func newCountingObserver() *countingObserver { return &countingObserver{dropped: map[string]int{}} }

func (o *countingObserver) Sent(MsgType)     { o.sent.Add(1) }
func (o *countingObserver) Received(MsgType) {}
func (o *countingObserver) Dropped(t MsgType, reason string) {
	o.mu.Lock()
	o.dropped[t.String()+"/"+reason]++
	o.mu.Unlock()
}
func (o *countingObserver) Call(time.Duration, string) {}
func (o *countingObserver) get(k string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dropped[k]
}

// TestJunkFloodLogsLimited: 10000 malformed messages sent to a server give
// a bounded number of WARN lines and a count of the rest, not a line each.
func TestJunkFloodLogsLimited(t *testing.T) {
	mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer mm.Close()
	logs := newLineCounter()
	obs := newCountingObserver()
	c := compat.DefaultConfig("127.0.0.1")
	c.ZMQ.RPCZMQBindAddress = "127.0.0.1"
	o := OptionsFrom(c)
	o.Workers = 2
	o.Logger = slog.New(logs)
	o.Observer = obs
	d, err := NewZMQ(mm, o)
	require.NoError(t, err)
	defer d.Close()
	srv, err := d.Listen(context.Background(), compat.Target{Topic: "junk", Server: "s"}, func(r *Request) {})
	require.NoError(t, err)
	defer srv.Stop(context.Background())

	zctx, err := zmq.NewContext()
	require.NoError(t, err)
	defer zctx.Term()
	s, err := zctx.NewSocket(zmq.DEALER)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.SetLinger(0))
	require.NoError(t, s.Connect(zmqwire.TCPAddress(srv.Addr())))
	const n = 10000
	start := time.Now()
	for i := 0; i < n; i++ {
		_, err := s.SendMessage("", "junk")
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return obs.get(MsgType(0).String()+"/malformed") >= n }, 20*time.Second, 10*time.Millisecond,
		"%d of %d junk messages seen", obs.get(MsgType(0).String()+"/malformed"), n)
	took := time.Since(start)
	// The limiter's last summary comes when its window's timer fires (about
	// 1 s on): wait for every junk message to be logged or summarised.
	require.Eventually(t, func() bool { p, s := logs.logged("driver: dropping request"); return p+s == n }, 10*time.Second, 10*time.Millisecond,
		"every junk message is logged or counted")
	warns := logs.count(slog.LevelWarn)
	t.Logf("%d junk messages in %v: %d WARN lines (%d summaries counting %d suppressed)", n, took.Round(time.Millisecond), warns, logs.summaries, logs.suppressed)
	require.Less(t, warns, 200, "one line per junk message")
	passed, suppressed := logs.logged("driver: dropping request")
	require.Equal(t, n, passed+suppressed, "every junk message is logged or counted")
}

// TestAcceptedCastDropCounted: a cast accepted (Cast returned nil) and
// given up later by the loop, at its deadline or at Close, is counted by
// the Observer; Close reports how many it discarded.
func TestAcceptedCastDropCounted(t *testing.T) {
	mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer mm.Close()
	obs := newCountingObserver()
	c := compat.DefaultConfig("127.0.0.1")
	c.ZMQ.RPCZMQBindAddress = "127.0.0.1"
	o := OptionsFrom(c)
	o.Workers = 2
	o.Logger = slog.New(slog.DiscardHandler)
	o.Observer = obs
	d, err := NewZMQ(mm, o)
	require.NoError(t, err)
	defer d.Close()
	target := compat.Target{Topic: "gone", Server: "s"}
	registerDead(t, mm, target, false)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	require.NoError(t, d.Cast(ctx, target, []byte("x")), "accepted: it waits for a ready connection")
	cancel()
	require.Eventually(t, func() bool { return obs.get("CAST/timeout") == 1 }, 5*time.Second, 10*time.Millisecond,
		"the cast given up at its deadline is not counted: %v", obs.dropped)

	const n = 100
	for i := 0; i < n; i++ {
		require.NoError(t, d.Cast(context.Background(), target, []byte("x")))
	}
	err = d.Close()
	var de *DiscardedError
	require.ErrorAs(t, err, &de)
	require.ErrorIs(t, err, ErrDiscarded)
	require.Equal(t, n, de.N)
	require.Equal(t, n, obs.get("CAST/closed"))
	t.Logf("1 cast given up at its deadline and %d discarded at Close: all counted (%v); Close: %v", n, obs.dropped, err)
}
