package zmq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/zmqwire"
	"github.com/goslo/goslo/matchmaker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testDriver(t *testing.T, mm matchmaker.Matchmaker, dynamic ...bool) *ZMQ {
	c := compat.DefaultConfig("127.0.0.1")
	c.ZMQ.RPCZMQBindAddress = "127.0.0.1"
	c.ZMQ.UseDynamicConnections = len(dynamic) > 0 && dynamic[0]
	o := OptionsFrom(c)
	o.Workers = 4
	d, err := NewZMQ(mm, o)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

func TestDirectCallCastFanoutNotify(t *testing.T) {
	for _, dynamic := range []bool{false, true} {
		t.Run(map[bool]string{false: "static", true: "dynamic"}[dynamic], func(t *testing.T) { directAll(t, dynamic) })
	}
}

func directAll(t *testing.T, dynamic bool) {
	mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer mm.Close()
	srvD, cliD := testDriver(t, mm), testDriver(t, mm, dynamic)
	ctx := context.Background()

	var mu sync.Mutex
	got := map[MsgType]int{}
	handler := func(r *Request) {
		mu.Lock()
		got[r.Type]++
		mu.Unlock()
		_ = r.Reply(append([]byte("echo:"), r.Payload...))
	}
	target := compat.Target{Topic: "demo", Server: "srv1"}
	s1, err := srvD.Listen(ctx, target, handler)
	require.NoError(t, err)
	s2, err := srvD.Listen(ctx, compat.Target{Topic: "demo", Server: "srv2"}, handler)
	require.NoError(t, err)
	ln, err := srvD.Listen(ctx, compat.Target{Topic: compat.NotificationTopic("notifications", "info")}, handler)
	require.NoError(t, err)

	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	reply, err := cliD.Call(cctx, target, []byte("hi"))
	require.NoError(t, err)
	require.Equal(t, "echo:hi", string(reply))
	for i := 0; i < 200; i++ {
		reply, err = cliD.Call(cctx, target, []byte{byte(i)})
		require.NoError(t, err)
		require.Equal(t, byte(i), reply[5])
	}
	require.NoError(t, cliD.Cast(cctx, target, []byte("c")))
	require.NoError(t, cliD.Cast(cctx, compat.Target{Topic: "demo", Fanout: true}, []byte("f")))
	require.NoError(t, cliD.Notify(cctx, compat.Target{Topic: "notifications.info"}, []byte("n")))
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got[Cast] == 1 && got[CastFanout] == 2 && got[Notify] == 1
	}, 5*time.Second, 10*time.Millisecond)
	mu.Lock()
	require.Equal(t, 201, got[Call])
	mu.Unlock()

	// No server for the target: the call times out with MessagingTimeout.
	tctx, tcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer tcancel()
	_, err = cliD.Call(tctx, compat.Target{Topic: "nobody", Server: "x"}, []byte("?"))
	require.ErrorIs(t, err, envelope.ErrMessagingTimeout)
	var te *TimeoutError
	require.True(t, errors.As(err, &te))
	require.Len(t, te.MsgID, 36)

	// A server that never replies: the call times out, nothing leaks.
	slow, err := srvD.Listen(ctx, compat.Target{Topic: "slow", Server: "s"}, func(r *Request) {})
	require.NoError(t, err)
	tctx2, tcancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer tcancel2()
	_, err = cliD.Call(tctx2, compat.Target{Topic: "slow", Server: "s"}, []byte("?"))
	require.ErrorIs(t, err, envelope.ErrMessagingTimeout)

	for _, s := range []*Server{s1, s2, ln, slow} {
		require.NoError(t, s.Stop(ctx))
	}
	hosts, _ := mm.Hosts(ctx, target, compat.Router)
	require.Empty(t, hosts, "Stop unregisters")
}

// TestServerRestartAndNoLoss: a server restarted mid-run (new port) is
// found again by the next calls, and thousands of sequential calls lose
// none.
func TestServerRestartAndNoLoss(t *testing.T) {
	mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer mm.Close()
	srvD, cliD := testDriver(t, mm), testDriver(t, mm)
	ctx := context.Background()
	target := compat.Target{Topic: "restart", Server: "s"}
	echo := func(r *Request) { _ = r.Reply(r.Payload) }
	s, err := srvD.Listen(ctx, target, echo)
	require.NoError(t, err)
	callTimeout := 5 * time.Second
	call := func(i int) error {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		p := []byte(strconv.Itoa(i))
		got, err := cliD.Call(cctx, target, p)
		if err == nil && string(got) != string(p) {
			return fmt.Errorf("call %d got %q", i, got)
		}
		return err
	}
	for i := 0; i < 100; i++ {
		require.NoError(t, call(i))
	}
	require.NoError(t, s.Stop(ctx))
	s, err = srvD.Listen(ctx, target, echo)
	require.NoError(t, err)
	defer s.Stop(ctx)
	// A call sent in the instant the old server went away can be lost with
	// its TCP connection (as with the reference); the calls resume at once.
	callTimeout = time.Second
	resumed := time.Now()
	require.Eventually(t, func() bool { return call(-1) == nil }, 10*time.Second, time.Millisecond)
	t.Logf("calls resumed %v after the restart", time.Since(resumed).Round(time.Millisecond))
	callTimeout = 5 * time.Second
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for i := 0; i < n; i++ {
		require.NoError(t, call(i), "call %d after the restart", i)
	}
	t.Logf("server restarted on a new port; %d sequential calls after it, none lost", n)
}

// TestOversizedAndMalformed: a peer sending more than MaxMessageSize is cut
// off, malformed requests are dropped, and the server keeps serving.
func TestOversizedAndMalformed(t *testing.T) {
	mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer mm.Close()
	c := compat.DefaultConfig("127.0.0.1")
	c.ZMQ.RPCZMQBindAddress = "127.0.0.1"
	o := OptionsFrom(c)
	o.MaxMessageSize = 1024
	srvD, err := NewZMQ(mm, o)
	require.NoError(t, err)
	defer srvD.Close()
	cliD := testDriver(t, mm)
	ctx := context.Background()
	target := compat.Target{Topic: "big", Server: "s"}
	s, err := srvD.Listen(ctx, target, func(r *Request) { _ = r.Reply(r.Payload) })
	require.NoError(t, err)
	defer s.Stop(ctx)

	// Malformed multiparts from a raw DEALER: dropped, no answer.
	zctx, _ := zmq.NewContext()
	defer zctx.Term()
	raw, _ := zctx.NewSocket(zmq.DEALER)
	defer raw.Close()
	raw.SetLinger(0)
	require.NoError(t, raw.Connect(zmqwire.TCPAddress(s.Addr())))
	for _, bad := range [][]any{
		{"1.0", "1", "id", "p"},              // no delimiter
		{"", "9.9", "1", "id", "p"},          // unknown version
		{"", "1.0", "7", "id", "p"},          // not a request type
		{"", "1.0", "1", "", "p"},            // empty message id
		{"", "1.0", "1", "id", "p", "extra"}, // extra frame
		{"", "1.0", "1", "id", make([]byte, 4096)},
	} {
		_, err := raw.SendMessage(bad...)
		require.NoError(t, err)
	}
	raw.SetRcvtimeo(300 * time.Millisecond)
	_, err = raw.RecvMessageBytes(0)
	require.Error(t, err, "no reply to a malformed or oversized message")

	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	got, err := cliD.Call(cctx, target, []byte("small"))
	require.NoError(t, err, "the server still serves")
	require.Equal(t, "small", string(got))
}
