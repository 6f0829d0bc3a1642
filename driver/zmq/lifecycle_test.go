package zmq

import (
	"context"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/matchmaker"
)

// TestServerStopBoundedByContext: a handler that never looks at anything
// cannot hold Stop past its context; the handler's reply is still sent
// once it returns (the socket stays open until the last worker leaves),
// and then the server's sockets and goroutines are released.
func TestServerStopBoundedByContext(t *testing.T) {
	mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer mm.Close()
	srvD, cliD := testDriver(t, mm), testDriver(t, mm)
	ctx := context.Background()
	started := make(chan struct{}, 2)
	release := map[string]chan struct{}{"a": make(chan struct{}), "b": make(chan struct{})}
	var onceA, onceB sync.Once
	freeA := func() { onceA.Do(func() { close(release["a"]) }) }
	unblock := func() { freeA(); onceB.Do(func() { close(release["b"]) }) }
	defer unblock()
	target := compat.Target{Topic: "stuck", Server: "s"}
	s, err := srvD.Listen(ctx, target, func(r *Request) {
		started <- struct{}{}
		<-release[string(r.Payload)]
		_ = r.Reply(append([]byte("late "), r.Payload...))
	})
	require.NoError(t, err)

	reply := map[string]chan []byte{"a": make(chan []byte, 1), "b": make(chan []byte, 1)}
	for k, ch := range reply {
		go func() {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			b, err := cliD.Call(cctx, target, []byte(k))
			if err != nil {
				b = []byte("error: " + err.Error())
			}
			ch <- b
		}()
	}
	<-started
	<-started

	sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(sctx) }()
	select {
	case err := <-stopped:
		require.ErrorIs(t, err, context.DeadlineExceeded)
	case <-time.After(3 * time.Second):
		unblock()
		<-stopped
		t.Fatal("Stop waited for a handler past its context")
	}
	// "a" answers while "b" still holds the socket open.
	freeA()
	require.Equal(t, "late a", string(<-reply["a"]), "a late handler's reply is still sent")
	unblock()
	<-reply["b"] // the last reply races with the socket's close: not asserted
	select {
	case <-s.done:
	case <-time.After(3 * time.Second):
		t.Fatal("the server was not released after its last handler returned")
	}
	srvD.mu.Lock()
	require.False(t, srvD.srvs[s], "a released server leaves the driver")
	srvD.mu.Unlock()
	require.NoError(t, s.Stop(ctx), "a second Stop is a no-op")
}

// TestStartMonitorsOnClosedLoop: when the server's loop is gone before the
// handshake monitors start (the driver is closing), Listen must not go on
// with a nil monitor.
func TestStartMonitorsOnClosedLoop(t *testing.T) {
	mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer mm.Close()
	d := testDriver(t, mm)
	s := &Server{d: d, target: compat.Target{Topic: "t"}, proxied: true, conns: map[*zmq.Socket]map[string]bool{}}
	sock, err := d.socket(zmq.DEALER, "id")
	require.NoError(t, err)
	defer sock.Close()
	s.sock = sock
	s.l, err = newLoop(d.zctx, "closed", d.log, nil)
	require.NoError(t, err)
	s.l.close(nil)
	var mons [][2]*zmq.Socket
	require.NotPanics(t, func() { mons = s.startMonitors() })
	for _, m := range mons {
		require.NotNil(t, m[1], "a nil monitor was returned")
	}
}
