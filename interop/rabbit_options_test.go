package interop

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	rabbitdrv "github.com/goslo/goslo/driver/rabbit"
	"github.com/goslo/goslo/envelope"
)

// TestRabbitClientOptionsWithPython: TransportOptions(at_least_once=True)
// behaves the same in Go and Python 18.3.1 callers, against servers of the
// other language (both succeed) and against no server (both fail at once
// with MessageUndeliverable); a Go server sees the deadline of a Python
// CALL (its timeout, the AMQP expiration).
func TestRabbitClientOptionsWithPython(t *testing.T) {
	defer stopSharedOnPanic()
	_, url := rabbitVhost(t, "goslo-client-opts")
	pySrv := StartRabbitPeer(t, "server", url, RabbitPeerConfig{Topic: "pyopts", Servers: []string{"srv1"}})
	pyCli := StartRabbitPeer(t, "client", url, RabbitPeerConfig{})
	tr := goRabbit(t, url)
	g := startGoRPC(t, tr, "goopts", "gosrv1")
	alo := &goslo.TransportOptions{AtLeastOnce: true}

	within(t, "Go at_least_once", func(t *testing.T) {
		ctx, cancel := callCtx(30 * time.Second)
		defer cancel()
		cli := goslo.NewRPCClient(tr, goslo.Target{Topic: "pyopts", Version: "1.0"}).Prepare(goslo.PrepareOptions{TransportOptions: alo})
		res, err := cli.Call(ctx, nil, "echo", goslo.NewMap("x", int64(1)))
		require.NoError(t, err)
		require.True(t, envelope.Equal(goslo.NewMap("x", int64(1)), res), "echo returned %s", envelope.Repr(res))
		require.Equal(t, "request", pySrv.Event(10 * time.Second)["event"])
		start := time.Now()
		nobody := goslo.NewRPCClient(tr, goslo.Target{Topic: "nobody", Version: "1.0"}).Prepare(goslo.PrepareOptions{TransportOptions: alo})
		_, err = nobody.Call(ctx, nil, "echo", nil)
		require.ErrorIs(t, err, goslo.ErrMessageUndeliverable)
		require.Less(t, time.Since(start), 5*time.Second)
	}, pySrv)

	within(t, "Python at_least_once", func(t *testing.T) {
		rep := pyCli.Do("call", map[string]any{"topic": "goopts", "version": "1.0", "method": "echo", "timeout": 20, "at_least_once": true, "args": map[string]any{"y": 2}})
		require.NoError(t, rep.Err())
		require.Equal(t, "echo", g.Next(t, 10*time.Second).Method)
		start := time.Now()
		rep = pyCli.Do("call", map[string]any{"topic": "nobody", "version": "1.0", "method": "echo", "timeout": 20, "at_least_once": true})
		require.Error(t, rep.Err())
		require.Equal(t, "MessageUndeliverable", rep.Error.Class, "%+v", rep.Error)
		require.Less(t, time.Since(start), 5*time.Second)
	}, pyCli)

	within(t, "deadline of a Python CALL", func(t *testing.T) {
		u, err := compat.ParseTransportURL(url)
		require.NoError(t, err)
		dt, err := rabbitdrv.Open(context.Background(), u, compat.DefaultConfig("goslo-it"), rabbitdrv.OpenOptions{})
		require.NoError(t, err)
		defer dt.Close()
		var mu sync.Mutex
		var got []time.Time
		s, err := dt.Listen(context.Background(), compat.Target{Topic: "godeadline", Server: "s"}, func(_ context.Context, r *driver.Request) error {
			mu.Lock()
			got = append(got, r.Deadline)
			mu.Unlock()
			return r.Reply("ok", nil)
		})
		require.NoError(t, err)
		defer s.Stop(context.Background())
		before := time.Now()
		rep := pyCli.Do("call", map[string]any{"topic": "godeadline", "version": "1.0", "method": "x", "timeout": 7})
		require.NoError(t, rep.Err())
		after := time.Now()
		rep = pyCli.Do("cast", map[string]any{"topic": "godeadline", "version": "1.0", "method": "x"})
		require.NoError(t, rep.Err())
		require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 2 }, 10*time.Second, 20*time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		// expiration "7000": 7 s from the arrival
		require.False(t, got[0].Before(before.Add(7*time.Second)), "deadline %v before %v", got[0], before.Add(7*time.Second))
		require.False(t, got[0].After(after.Add(7*time.Second)), "deadline %v after %v", got[0], after.Add(7*time.Second))
		require.True(t, got[1].IsZero(), "a CAST has no deadline")
	}, pyCli)
}
