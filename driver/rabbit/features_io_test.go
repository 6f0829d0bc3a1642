package rabbit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/driver/rabbit"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/rabbittest"
)

// TestFeatures covers oslo options beyond the defaults on one private
// broker: TransportOptions(at_least_once), the CALL deadline a server
// sees, and retry while the broker is down (last: it stops the broker).
func TestFeatures(t *testing.T) {
	n := rabbittest.Start(t)
	t.Run("AtLeastOnce", func(t *testing.T) { testAtLeastOnce(t, n) })
	t.Run("Deadline", func(t *testing.T) { testDeadline(t, n) })
	t.Run("Retry", func(t *testing.T) { testRetry(t, n) })
}

// testAtLeastOnce: a CALL or CAST with AtLeastOnce is published mandatory
// (§6); no queue for it gives ErrMessageUndeliverable at once (Python:
// MessageUndeliverable, captured call_mandatory_no_server), a server
// makes it succeed, and a fanout ignores it as Python's fanout_send does.
func testAtLeastOnce(t *testing.T, n *rabbittest.Node) {
	vhost := "goslo-alo"
	n.AddVhost(vhost)
	srvT := open(t, n, vhost, nil)
	cliT := open(t, n, vhost, nil)
	alo := func(method string) driver.Message {
		m := reqMsg(method)
		m.AtLeastOnce = true
		return m
	}

	start := time.Now()
	_, err := cliT.Call(ctxT(t, 20*time.Second), compat.Target{Topic: "alo-nobody"}, alo("echo"))
	require.ErrorIs(t, err, envelope.ErrMessageUndeliverable)
	require.ErrorIs(t, err, rabbit.ErrUndeliverable)
	require.NotErrorIs(t, err, envelope.ErrMessagingTimeout)
	var re *rabbit.ReturnedError
	require.ErrorAs(t, err, &re)
	require.Equal(t, rabbit.ReturnedError{Code: 312, Text: "NO_ROUTE", Exchange: "openstack", RoutingKey: "alo-nobody"}, *re)
	require.Less(t, time.Since(start), 10*time.Second, "not a timeout")

	err = cliT.Cast(ctxT(t, 20*time.Second), compat.Target{Topic: "alo-nobody", Server: "s9", Exchange: "custom_ex"}, alo("echo"))
	require.ErrorAs(t, err, &re)
	require.Equal(t, rabbit.ReturnedError{Code: 312, Text: "NO_ROUTE", Exchange: "custom_ex", RoutingKey: "alo-nobody.s9"}, *re)

	// A fanout is never mandatory: to no queue it is confirmed and lost.
	require.NoError(t, cliT.Cast(ctxT(t, 20*time.Second), compat.Target{Topic: "alo-nobody", Fanout: true}, alo("echo")))

	e := newEcho("s1")
	listen(t, srvT, compat.Target{Topic: "alo", Server: "s1"}, e.handle)
	res, err := cliT.Call(ctxT(t, 20*time.Second), compat.Target{Topic: "alo"}, alo("echo"))
	require.NoError(t, err)
	require.Equal(t, "s1", mustGet(res, "server"))
	drain(e.seen)
	require.NoError(t, cliT.Cast(ctxT(t, 20*time.Second), compat.Target{Topic: "alo", Server: "s1"}, alo("echo")))
	require.Equal(t, driver.KindCast, waitReq(t, e.seen).Kind)

	// Many at once, routed and unroutable mixed: each return reaches the
	// publish it belongs to.
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			topic := "alo"
			if i%2 == 1 {
				topic = "alo-nobody"
			}
			_, err := cliT.Call(ctxT(t, 30*time.Second), compat.Target{Topic: topic}, alo("echo"))
			switch {
			case topic == "alo" && err != nil:
				errs <- fmt.Errorf("call %d to a served topic: %w", i, err)
			case topic != "alo" && !errors.Is(err, envelope.ErrMessageUndeliverable):
				errs <- fmt.Errorf("call %d to no server: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// testDeadline: a server sees the caller's deadline of a CALL, read from
// the message expiration (the caller's timeout in ms) at arrival; a CAST
// has none.
func testDeadline(t *testing.T, n *rabbittest.Node) {
	vhost := "goslo-deadline"
	n.AddVhost(vhost)
	srvT := open(t, n, vhost, nil)
	cliT := open(t, n, vhost, nil)
	got := make(chan *driver.Request, 4)
	listen(t, srvT, compat.Target{Topic: "dl", Server: "s"}, func(ctx context.Context, r *driver.Request) error {
		got <- r
		return r.Reply("ok", nil)
	})

	before := time.Now()
	_, err := cliT.Call(ctxT(t, 7*time.Second), compat.Target{Topic: "dl"}, reqMsg("x"))
	require.NoError(t, err)
	after := time.Now()
	r := waitReq(t, got)
	require.Equal(t, driver.KindCall, r.Kind)
	require.False(t, r.Deadline.IsZero(), "a CALL carries its deadline")
	// The expiration is the time left when published (< 7 s), counted
	// from the arrival at the server.
	require.True(t, r.Deadline.After(before.Add(6*time.Second)), "deadline %v is before %v", r.Deadline, before.Add(6*time.Second))
	require.False(t, r.Deadline.After(after.Add(7*time.Second)), "deadline %v is after %v", r.Deadline, after.Add(7*time.Second))

	// The nominal timeout, as Python writes it.
	m := reqMsg("x")
	m.Timeout = 3 * time.Second
	before = time.Now()
	_, err = cliT.Call(ctxT(t, 3*time.Second), compat.Target{Topic: "dl"}, m)
	require.NoError(t, err)
	r = waitReq(t, got)
	require.WithinDuration(t, before.Add(3*time.Second), r.Deadline, time.Second)

	require.NoError(t, cliT.Cast(ctxT(t, 10*time.Second), compat.Target{Topic: "dl"}, reqMsg("x")))
	r = waitReq(t, got)
	require.Equal(t, driver.KindCast, r.Kind)
	require.True(t, r.Deadline.IsZero(), "a CAST has no expiration")
}

// testRetry stops the broker: a publish with retry 0 fails at once with
// MessageDeliveryFailure, retry N after N more tries, no retry bound (oslo's
// None) waits until its context ends; after a restart publishing works
// again. Notifications take [oslo_messaging_notifications] retry.
func testRetry(t *testing.T, n *rabbittest.Node) {
	vhost := "goslo-retry"
	n.AddVhost(vhost)
	srvT := open(t, n, vhost, nil)
	cliT := open(t, n, vhost, nil)
	notT := open(t, n, vhost, func(c *compat.Config) { c.Notifications.Retry = 0 })
	e := newEcho("s")
	listen(t, srvT, compat.Target{Topic: "rt", Server: "s"}, e.handle)
	_, err := cliT.Call(ctxT(t, 10*time.Second), compat.Target{Topic: "rt"}, reqMsg("echo"))
	require.NoError(t, err)
	require.NoError(t, notT.Notify(ctxT(t, 10*time.Second), compat.Target{Topic: "n.info"}, notification("INFO", "up")))

	n.Stop()
	retried := func(r int) driver.Message {
		m := reqMsg("echo")
		m.Retry = &r
		return m
	}
	requireFailure := func(t *testing.T, err error, retry int, exchange, key string) {
		t.Helper()
		require.ErrorIs(t, err, envelope.ErrMessageDeliveryFailure)
		require.ErrorIs(t, err, rabbit.ErrMessageDeliveryFailure)
		var df *rabbit.DeliveryFailureError
		require.ErrorAs(t, err, &df)
		require.Equal(t, retry, df.Retry)
		require.Equal(t, exchange, df.Exchange)
		require.Equal(t, key, df.RoutingKey)
		require.Error(t, df.Err)
		require.NotErrorIs(t, err, context.DeadlineExceeded)
	}

	start := time.Now()
	err = cliT.Cast(ctxT(t, 30*time.Second), compat.Target{Topic: "rt"}, retried(0))
	requireFailure(t, err, 0, "openstack", "rt")
	require.Less(t, time.Since(start), 5*time.Second, "retry 0 fails at once")

	start = time.Now()
	_, err = cliT.Call(ctxT(t, 30*time.Second), compat.Target{Topic: "rt", Server: "s"}, retried(0))
	requireFailure(t, err, 0, "openstack", "rt.s")
	require.NotErrorIs(t, err, envelope.ErrMessagingTimeout)
	require.Less(t, time.Since(start), 5*time.Second)

	// [oslo_messaging_notifications] retry = 0, and an explicit retry.
	err = notT.Notify(ctxT(t, 30*time.Second), compat.Target{Topic: "n.info"}, notification("INFO", "down"))
	requireFailure(t, err, 0, "openstack", "n.info")
	nm := notification("INFO", "down")
	two := 2
	nm.Retry = &two
	start = time.Now()
	err = notT.Notify(ctxT(t, 30*time.Second), compat.Target{Topic: "n.info"}, nm)
	requireFailure(t, err, 2, "openstack", "n.info")
	// Back-off between the three tries (test options): none, then 0.1 s.
	require.GreaterOrEqual(t, time.Since(start), 90*time.Millisecond)

	// No bound: the context's deadline ends it.
	start = time.Now()
	err = cliT.Cast(ctxT(t, 2*time.Second), compat.Target{Topic: "rt"}, reqMsg("echo"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotErrorIs(t, err, envelope.ErrMessageDeliveryFailure)
	require.GreaterOrEqual(t, time.Since(start), 1900*time.Millisecond)
	neg := -1
	_, err = cliT.Call(ctxT(t, 2*time.Second), compat.Target{Topic: "rt"}, retried(neg))
	require.ErrorIs(t, err, envelope.ErrMessagingTimeout)

	// A bounded publish started while the broker is down succeeds when it
	// comes back within its retries.
	done := make(chan error, 1)
	go func() { done <- cliT.Cast(ctxT(t, 120*time.Second), compat.Target{Topic: "rt"}, retried(1000)) }()
	time.Sleep(500 * time.Millisecond)
	n.StartAgain()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(120 * time.Second):
		t.Fatal("bounded publish did not end after the broker came back")
	}
}
