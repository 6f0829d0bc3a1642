package zmq

import (
	"context"
	"log/slog"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/zmqwire"
	"github.com/goslo/goslo/matchmaker"
)

// rawServer is a ROUTER registered as the direct-mode server of target,
// read by the test itself.
type rawServer struct {
	s    *zmq.Socket
	addr string // host:port
}

func startRawServer(t *testing.T, zctx *zmq.Context, mm matchmaker.Matchmaker, target compat.Target, port string) *rawServer {
	t.Helper()
	s, err := zctx.NewSocket(zmq.ROUTER)
	require.NoError(t, err)
	require.NoError(t, s.SetLinger(0))
	// A port just freed may be refused for a moment while libzmq closes
	// the old listener.
	deadline := time.Now().Add(2 * time.Second)
	for {
		if err = s.Bind("tcp://127.0.0.1:" + port); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	require.NoError(t, err)
	ep, err := s.GetLastEndpoint()
	require.NoError(t, err)
	rs := &rawServer{s: s, addr: zmqwire.TCPHost(ep)}
	require.NoError(t, mm.Register(context.Background(), target, rs.addr, compat.Router, time.Minute))
	return rs
}

// goneCall starts a CALL of target and returns where its outcome comes.
type callOutcome struct {
	reply []byte
	err   error
	took  time.Duration
}

func goneCall(d *ZMQ, target compat.Target, timeout time.Duration) chan callOutcome {
	out := make(chan callOutcome, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		start := time.Now()
		reply, err := d.Call(ctx, target, []byte("x"))
		out <- callOutcome{reply, err, time.Since(start)}
	}()
	return out
}

func waitOutcome(t *testing.T, out chan callOutcome, bound time.Duration) callOutcome {
	t.Helper()
	select {
	case o := <-out:
		return o
	case <-time.After(bound):
		t.Fatalf("the call did not return within %v", bound)
	}
	return callOutcome{}
}

// TestCallToClosedServerFailsFast: the ROUTER that read the CALLs closes
// without replying while it is still registered (a killed server's record
// stays until it expires): each call fails reconnectGrace after the close
// with a *ServerGoneError, which matches driver.ErrServerGone and
// envelope.ErrMessagingTimeout, instead of at its deadline; none is sent
// again (a second ROUTER registered for the target gets nothing). A lone
// call (pooled socket), concurrent calls (the loop's shared DEALER beside
// the pooled one) and dynamic-mode calls.
func TestCallToClosedServerFailsFast(t *testing.T) {
	for _, tc := range []struct {
		name    string
		calls   int
		dynamic bool
	}{{"lone", 1, false}, {"concurrent", 4, false}, {"dynamic", 2, true}} {
		t.Run(tc.name, func(t *testing.T) { callsToClosedServer(t, tc.calls, tc.dynamic) })
	}
}

func callsToClosedServer(t *testing.T, n int, dynamic bool) {
	mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer mm.Close()
	c := compat.DefaultConfig("127.0.0.1")
	c.ZMQ.RPCZMQBindAddress = "127.0.0.1"
	c.ZMQ.UseDynamicConnections = dynamic
	o := OptionsFrom(c)
	o.Logger = slog.New(slog.DiscardHandler)
	d, err := NewZMQ(mm, o)
	require.NoError(t, err)
	defer d.Close()
	zctx, err := zmq.NewContext()
	require.NoError(t, err)
	defer zctx.Term()
	target := compat.Target{Topic: "dies", Server: "s"}
	rs := startRawServer(t, zctx, mm, target, "*")

	const timeout = 10 * time.Second
	outs := make([]chan callOutcome, n)
	for i := range outs {
		outs[i] = goneCall(d, target, timeout)
	}
	for range n { // every CALL arrived
		_, err = recvWithin(rs.s, 10*time.Second)
		require.NoError(t, err)
	}
	other := startRawServer(t, zctx, mm, target, "*") // a resend could go here
	defer other.s.Close()
	closed := time.Now()
	require.NoError(t, rs.s.Close()) // dies without replying; its record stays
	for _, out := range outs {
		o := waitOutcome(t, out, timeout+5*time.Second)
		var ge *ServerGoneError
		require.ErrorAs(t, o.err, &ge, "%v", o.err)
		require.ErrorIs(t, o.err, driver.ErrServerGone)
		require.ErrorIs(t, o.err, envelope.ErrMessagingTimeout)
		require.Equal(t, []string{rs.addr}, ge.Hosts)
		require.Less(t, ge.After, timeout)
	}
	t.Logf("%d calls to a closed, still registered server: all failed within %v of the close (timeout %v)",
		n, time.Since(closed).Round(time.Millisecond), timeout)
	_, err = other.s.RecvMessageBytes(zmq.DONTWAIT)
	require.Error(t, err, "a CALL was sent again")
}

// TestCallToStoppedServerSentAgain: the ROUTER that read a CALL is
// unregistered, then closes (as a server's Stop does) while another server
// of the target is registered: the call is read again from the matchmaker
// and sent to the other one, which answers.
func TestCallToStoppedServerSentAgain(t *testing.T) {
	mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer mm.Close()
	d := quietDriver(t, mm, false)
	zctx, err := zmq.NewContext()
	require.NoError(t, err)
	defer zctx.Term()
	target := compat.Target{Topic: "stops", Server: "s"}
	rs := startRawServer(t, zctx, mm, target, "*")

	out := goneCall(d, target, 10*time.Second)
	_, err = rs.s.RecvMessageBytes(0)
	require.NoError(t, err)
	other := startRawServer(t, zctx, mm, target, "*")
	defer other.s.Close()
	require.NoError(t, mm.Unregister(context.Background(), target, rs.addr, compat.Router))
	require.NoError(t, rs.s.Close())
	msg, err := recvWithin(other.s, 10*time.Second)
	require.NoError(t, err, "the CALL was not sent again to the other server")
	in, err := zmqwire.ParseDirectRequest(msg)
	require.NoError(t, err)
	require.NoError(t, sendMessage(other.s, zmqwire.DirectReply(in.Identity, in.MsgID, []byte("again")), 0))
	o := waitOutcome(t, out, 15*time.Second)
	require.NoError(t, o.err)
	require.Equal(t, "again", string(o.reply))
}

// TestCallWaitsForAConnectionThatComesBack: the server's connection ends
// but one to the same address comes back within reconnectGrace (a reset
// connection to a server still alive): the call keeps waiting past the
// grace and takes the reply that comes on the new connection.
func TestCallWaitsForAConnectionThatComesBack(t *testing.T) {
	old := reconnectGrace
	reconnectGrace = 2 * time.Second // the rebind below must beat it, even under load
	defer func() { reconnectGrace = old }()
	mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer mm.Close()
	d := quietDriver(t, mm, false)
	zctx, err := zmq.NewContext()
	require.NoError(t, err)
	defer zctx.Term()
	target := compat.Target{Topic: "blips", Server: "s"}
	rs := startRawServer(t, zctx, mm, target, "*")

	out := goneCall(d, target, 20*time.Second)
	msg, err := rs.s.RecvMessageBytes(0)
	require.NoError(t, err)
	in, err := zmqwire.ParseDirectRequest(msg)
	require.NoError(t, err)

	// The same address again, watched from before its bind.
	back, err := zctx.NewSocket(zmq.ROUTER)
	require.NoError(t, err)
	defer back.Close()
	require.NoError(t, back.SetLinger(0))
	require.NoError(t, back.Monitor("inproc://comes-back", zmq.EVENT_HANDSHAKE_SUCCEEDED))
	mon, err := zctx.NewSocket(zmq.PAIR)
	require.NoError(t, err)
	defer mon.Close()
	require.NoError(t, mon.SetLinger(0))
	require.NoError(t, mon.Connect("inproc://comes-back"))
	require.NoError(t, rs.s.Close())
	deadline := time.Now().Add(2 * time.Second)
	for {
		if err = back.Bind(zmqwire.TCPAddress(rs.addr)); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	require.NoError(t, err)
	require.NoError(t, mon.SetRcvtimeo(10*time.Second))
	ev, _, _, err := mon.RecvEvent(0)
	require.NoError(t, err, "the client never reconnected")
	require.Equal(t, zmq.EVENT_HANDSHAKE_SUCCEEDED, ev)
	// Past the grace: a call still waiting is one that saw its connection
	// come back.
	time.Sleep(reconnectGrace + 500*time.Millisecond)
	require.NoError(t, sendMessage(back, zmqwire.DirectReply(in.Identity, in.MsgID, []byte("back")), 0))
	o := waitOutcome(t, out, 25*time.Second)
	require.NoError(t, o.err)
	require.Equal(t, "back", string(o.reply))
}

// recvWithin reads one message from s, waiting at most d.
func recvWithin(s *zmq.Socket, d time.Duration) ([][]byte, error) {
	p := zmq.NewPoller()
	p.Add(s, zmq.POLLIN)
	polled, err := p.Poll(d)
	if err != nil {
		return nil, err
	}
	if len(polled) == 0 {
		return nil, context.DeadlineExceeded
	}
	return s.RecvMessageBytes(0)
}

// TestMinReplyDelay: a server with MinReplyDelay sends no reply before
// that long after the request arrived (the handler answers at once), and
// a delay outside [0, MaxMinReplyDelay] is refused.
func TestMinReplyDelay(t *testing.T) {
	mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer mm.Close()
	c := compat.DefaultConfig("127.0.0.1")
	c.ZMQ.RPCZMQBindAddress = "127.0.0.1"
	o := OptionsFrom(c)
	o.Logger = slog.New(slog.DiscardHandler)
	for _, bad := range []time.Duration{-time.Millisecond, MaxMinReplyDelay + time.Millisecond} {
		o.MinReplyDelay = bad
		_, err := NewZMQ(mm, o)
		require.Error(t, err, "%v", bad)
	}
	const hold = 50 * time.Millisecond
	o.MinReplyDelay = hold
	srvD, err := NewZMQ(mm, o)
	require.NoError(t, err)
	defer srvD.Close()
	cliD := quietDriver(t, mm, false)
	target := compat.Target{Topic: "held", Server: "s"}
	s, err := srvD.Listen(context.Background(), target, func(r *Request) { _ = r.Reply(r.Payload) })
	require.NoError(t, err)
	defer s.Stop(context.Background())
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		begun := time.Now()
		got, err := cliD.Call(ctx, target, []byte("x"))
		took := time.Since(begun)
		cancel()
		require.NoError(t, err)
		require.Equal(t, "x", string(got))
		require.GreaterOrEqual(t, took, hold, "the reply came %v after the call began", took)
	}
}
