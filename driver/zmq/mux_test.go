package zmq

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/matchmaker"
)

// concurrently runs f(worker) on n goroutines and returns the first error.
func concurrently(n int, f func(w int) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			if err := f(w); err != nil {
				errs <- err
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// TestConcurrentCalls: concurrent callers of one key share the client
// loop's DEALER (muxCall) beside the lone caller-owned socket; every reply
// reaches its own caller, none is lost, and replies that come after their
// caller timed out are dropped, not handed to another call.
func TestConcurrentCalls(t *testing.T) {
	mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer mm.Close()
	srvD, cliD := testDriver(t, mm), testDriver(t, mm)
	ctx := context.Background()
	target := compat.Target{Topic: "mux", Server: "s"}
	s, err := srvD.Listen(ctx, target, func(r *Request) {
		if strings.HasPrefix(string(r.Payload), "slow") {
			time.Sleep(60 * time.Millisecond)
		}
		_ = r.Reply(r.Payload)
	})
	require.NoError(t, err)
	defer s.Stop(ctx)
	call := func(timeout time.Duration, p string) error {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		got, err := cliD.Call(cctx, target, []byte(p))
		if err == nil && string(got) != p {
			return fmt.Errorf("call %q got %q", p, got)
		}
		return err
	}
	var n atomic.Int64
	require.NoError(t, concurrently(16, func(w int) error {
		for i := 0; i < 300; i++ {
			if err := call(5*time.Second, fmt.Sprintf("w%d-%d", w, i)); err != nil {
				return err
			}
			n.Add(1)
		}
		return nil
	}))
	require.EqualValues(t, 16*300, n.Load())

	// Every caller times out on a slow handler; the late replies find no
	// slot, and the next calls get their own replies.
	require.NoError(t, concurrently(4, func(w int) error {
		err := call(15*time.Millisecond, fmt.Sprintf("slow-%d", w))
		if !errorsIsTimeout(err) {
			return fmt.Errorf("slow call %d: %v, want a timeout", w, err)
		}
		for i := 0; i < 100; i++ {
			if err := call(5*time.Second, fmt.Sprintf("after-%d-%d", w, i)); err != nil {
				return err
			}
		}
		return nil
	}))
	cl, err := cliD.client()
	require.NoError(t, err)
	require.NoError(t, cl.l.sync(func() { require.Empty(t, cl.pending) }))
	cl.calls.mu.Lock()
	require.Empty(t, cl.calls.busy)
	cl.calls.mu.Unlock()
}

func errorsIsTimeout(err error) bool {
	_, ok := err.(*TimeoutError)
	return ok && err.(*TimeoutError).Is(envelope.ErrMessagingTimeout)
}

// TestConcurrentCallsServerRestart: concurrent callers resume once a
// restarted server (new port) is registered, and stopping the client
// driver fails the calls still waiting instead of hanging them.
func TestConcurrentCallsServerRestart(t *testing.T) {
	mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer mm.Close()
	srvD := testDriver(t, mm)
	cliD := testDriver(t, mm)
	ctx := context.Background()
	target := compat.Target{Topic: "muxrestart", Server: "s"}
	echo := func(r *Request) { _ = r.Reply(r.Payload) }
	s, err := srvD.Listen(ctx, target, echo)
	require.NoError(t, err)
	call := func(timeout time.Duration, p string) error {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		got, err := cliD.Call(cctx, target, []byte(p))
		if err == nil && string(got) != p {
			return fmt.Errorf("call %q got %q", p, got)
		}
		return err
	}
	var restarted atomic.Bool
	done := make(chan error, 1)
	go func() {
		done <- concurrently(8, func(w int) error {
			for i := 0; ; i++ {
				err := call(time.Second, fmt.Sprintf("w%d-%d", w, i))
				if err != nil && !errorsIsTimeout(err) {
					return err
				}
				if err == nil && restarted.Load() && i > 0 {
					// Resumed after the restart: a few more, none lost.
					for j := 0; j < 50; j++ {
						if err := call(5*time.Second, fmt.Sprintf("w%d-after-%d", w, j)); err != nil {
							return err
						}
					}
					return nil
				}
			}
		})
	}()
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, s.Stop(ctx))
	s, err = srvD.Listen(ctx, target, echo)
	require.NoError(t, err)
	defer s.Stop(ctx)
	// "None lost" starts at once: a call sent into a connection of the
	// stopped server that libzmq was still closing (a few ms after Stop)
	// is sent again, on the pooled socket and on the shared DEALER alike.
	restarted.Store(true)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("concurrent callers did not resume after the restart")
	}

	// Closing the client driver fails waiting calls with ErrClosed.
	slowT := compat.Target{Topic: "muxclose", Server: "s"}
	block := make(chan struct{})
	slow, err := srvD.Listen(ctx, slowT, func(r *Request) { <-block; _ = r.Reply(r.Payload) })
	require.NoError(t, err)
	defer slow.Stop(ctx)
	defer close(block)
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		go func() {
			_, err := cliD.Call(ctx, slowT, []byte("x"))
			errs <- err
		}()
	}
	time.Sleep(200 * time.Millisecond)
	cliD.Close()
	for w := 0; w < 4; w++ {
		select {
		case err := <-errs:
			require.Error(t, err)
		case <-time.After(5 * time.Second):
			t.Fatal("a call still waits after Close")
		}
	}
}
