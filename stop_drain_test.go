package goslo

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/internal/redistest"
)

// TestStopDrainsReply stops a zmq server (real Redis) while its handler
// runs, 20 times: each drained reply must reach its caller. A client
// socket with ZMQ_IMMEDIATE loses a reply it has received but not read
// when the connection ends, so a server that closed right after its last
// reply lost about one call in 20 under load (and the client, finding the
// server unregistered, sent the request again); the server now keeps its
// socket open for replyGrace after its last reply.
func TestStopDrainsReply(t *testing.T) {
	r := redistest.Start(t)
	open := func() *Transport {
		tr, err := NewTransport(context.Background(), "zmq+redis://"+r.Addr, WithOptions(func(c *compat.Config) {
			c.ZMQ.RPCZMQHost = "127.0.0.1"
			c.ZMQ.RPCZMQBindAddress = "127.0.0.1"
		}))
		require.NoError(t, err)
		t.Cleanup(func() { _ = tr.Close() })
		return tr
	}
	for i := 0; i < 20; i++ {
		srvTr, clTr := open(), open()
		target := Target{Topic: fmt.Sprintf("stop-drain-%d", i), Server: "s"}
		started, release := make(chan struct{}, 1), make(chan struct{})
		ep := NewEndpoint("", "").Handle("slow", func(context.Context, *Map, *Map) (any, error) {
			started <- struct{}{}
			<-release
			return "done", nil
		})
		srv, err := NewRPCServer(srvTr, target, ep)
		require.NoError(t, err)
		require.NoError(t, srv.Start(context.Background()))
		got := make(chan error, 1)
		go func() {
			res, err := NewRPCClient(clTr, target).Prepare(PrepareOptions{Timeout: 10 * time.Second}).Call(context.Background(), nil, "slow", nil)
			if err == nil && res != "done" {
				err = fmt.Errorf("reply %v", res)
			}
			got <- err
		}()
		select {
		case <-started:
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: the handler did not start", i)
		}
		stopped := make(chan error, 1)
		go func() { stopped <- srv.Stop(context.Background()) }()
		time.Sleep(100 * time.Millisecond) // the stop has begun: unregistered, draining
		close(release)
		require.NoError(t, <-stopped, "round %d: Stop", i)
		require.NoError(t, <-got, "round %d: the drained reply", i)
		require.NoError(t, srvTr.Close())
		require.NoError(t, clTr.Close())
	}
}
