package rabbit_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/driver/rabbit"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/rabbittest"
)

// castCounter counts the casts a server got, by their "id" argument.
type castCounter struct {
	mu  sync.Mutex
	got map[int64]int
	n   atomic.Int64
}

func newCastCounter() *castCounter { return &castCounter{got: map[int64]int{}} }

func (c *castCounter) handle(_ context.Context, r *driver.Request) error {
	body, _ := r.Body.(*envelope.Map)
	args, _ := body.Get("args")
	id, _ := args.(*envelope.Map).Get("id")
	c.mu.Lock()
	c.got[id.(int64)]++
	c.mu.Unlock()
	c.n.Add(1)
	return nil
}

func (c *castCounter) count(id int64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[id]
}

// castStream casts goroutines × each messages with distinct ids to
// target (each 0: until stop is closed); it returns the ids whose Cast
// returned nil and the errors.
func castStream(t *testing.T, tr *rabbit.Transport, target compat.Target, goroutines, each int, timeout time.Duration, stop <-chan struct{}) (ok []int64, errs []error) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; each == 0 || i < each; i++ {
				if each == 0 {
					select {
					case <-stop:
						return
					default:
					}
				}
				id := int64(g*1_000_000 + i)
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				err := tr.Cast(ctx, target, reqMsg("count", "id", id))
				cancel()
				mu.Lock()
				if err == nil {
					ok = append(ok, id)
				} else {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return ok, errs
}

// testPipelinedCasts: 20 goroutines × 500 casts share the pipelined
// sending channels; every one is confirmed and delivered exactly once.
func testPipelinedCasts(t *testing.T, n *rabbittest.Node) {
	vhost := "goslo-pl-casts"
	n.AddVhost(vhost)
	srvT := open(t, n, vhost, nil)
	cliT := open(t, n, vhost, nil)
	c := newCastCounter()
	listen(t, srvT, compat.Target{Topic: "pl", Server: "s1"}, c.handle)
	start := time.Now()
	ok, errs := castStream(t, cliT, compat.Target{Topic: "pl"}, 20, 500, 60*time.Second, nil)
	t.Logf("20×500 casts confirmed in %v", time.Since(start))
	require.Empty(t, errs)
	require.Len(t, ok, 10000)
	// The 20 callers shared one sending connection (shareAt 32): the
	// server's listening one and the client's sender are the vhost's.
	conns := 0
	for _, c := range n.ListConnections("vhost") {
		if c["vhost"] == vhost {
			conns++
		}
	}
	require.Equal(t, 2, conns)
	require.Eventually(t, func() bool { return c.n.Load() >= 10000 }, 60*time.Second, 50*time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	require.EqualValues(t, 10000, c.n.Load(), "a cast delivered twice")
	for _, id := range ok {
		require.Equal(t, 1, c.count(id), "cast %d", id)
	}
}

// testPipelinedNack: casts to a full reject-publish queue are nacked and
// reported (after the retries, at the context's end) to their callers,
// while the casts pipelined beside them on the same channel are confirmed.
func testPipelinedNack(t *testing.T, n *rabbittest.Node) {
	vhost := "goslo-pl-nack"
	n.AddVhost(vhost)
	srvT := open(t, n, vhost, nil)
	cliT := open(t, n, vhost, nil)
	c := newCastCounter()
	listen(t, srvT, compat.Target{Topic: "good", Server: "s1"}, c.handle)
	// The exchange exists (the listener declared it): a reject-publish
	// queue of one message takes the "full" key.
	conn, err := amqp.Dial(n.AMQPURL(vhost))
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDeclare("full", false, false, false, false, amqp.Table{"x-max-length": int32(1), "x-overflow": "reject-publish"})
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind("full", "full", "openstack", false, nil))
	require.NoError(t, cliT.Cast(ctxT(t, 10*time.Second), compat.Target{Topic: "full"}, reqMsg("count", "id", int64(-1))))

	var wg sync.WaitGroup
	var goodOK []int64
	var goodErrs []error
	wg.Add(1)
	go func() {
		defer wg.Done()
		goodOK, goodErrs = castStream(t, cliT, compat.Target{Topic: "good"}, 5, 200, 30*time.Second, nil)
	}()
	fullOK, fullErrs := castStream(t, cliT, compat.Target{Topic: "full"}, 5, 2, 1500*time.Millisecond, nil)
	wg.Wait()
	require.Empty(t, fullOK, "a nacked cast returned nil")
	require.Len(t, fullErrs, 10)
	for _, err := range fullErrs {
		require.ErrorContains(t, err, "basic.nack")
	}
	require.Empty(t, goodErrs)
	require.Len(t, goodOK, 1000)
	require.Eventually(t, func() bool { return c.n.Load() >= 1000 }, 30*time.Second, 50*time.Millisecond)
}

// testPipelinedKill closes every connection of the vhost twice while
// casts stream: a Cast that returned nil was delivered (at least once);
// the others returned errors.
func testPipelinedKill(t *testing.T, n *rabbittest.Node) {
	vhost := "goslo-pl-kill"
	n.AddVhost(vhost)
	srvT := open(t, n, vhost, nil)
	cliT := open(t, n, vhost, nil)
	c := newCastCounter()
	listen(t, srvT, compat.Target{Topic: "pk", Server: "s1"}, c.handle)
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		for k := 0; k < 2; k++ {
			start := c.n.Load()
			for c.n.Load() < start+1000 {
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("closing the connections after %d deliveries", c.n.Load())
			n.Ctl("close_all_connections", "-p", vhost, "test")
		}
		time.Sleep(time.Second)
	}()
	ok, errs := castStream(t, cliT, compat.Target{Topic: "pk"}, 10, 0, 30*time.Second, stop)
	t.Logf("%d casts confirmed, %d errors", len(ok), len(errs))
	require.NotEmpty(t, ok)
	missing := func() (m []int64) {
		for _, id := range ok {
			if c.count(id) == 0 {
				m = append(m, id)
			}
		}
		return m
	}
	require.Eventually(t, func() bool { return len(missing()) == 0 }, 60*time.Second, 200*time.Millisecond,
		"confirmed casts never delivered: %v", fmt.Sprint(len(missing())))
	dups := 0
	c.mu.Lock()
	for _, k := range c.got {
		if k > 1 {
			dups++
		}
	}
	c.mu.Unlock()
	t.Logf("%d delivered, %d more than once (at least once)", c.n.Load(), dups)
}
