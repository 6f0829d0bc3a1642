package rabbit

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The group never runs more than max handlers at once, reuses its
// goroutines, runs every accepted job, and leaves no goroutine after stop.
func TestWorkerGroupBoundedAndReused(t *testing.T) {
	defer goleak.VerifyNone(t)
	g := newWorkerGroup(3)
	var running, peak, ran atomic.Int64
	release := make(chan struct{})
	job := func() {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		running.Add(-1)
		ran.Add(1)
	}
	accepted := make(chan bool, 10)
	go func() { // run blocks once 3 are busy, as the listener would
		for i := 0; i < 10; i++ {
			accepted <- g.run(job)
		}
	}()
	require.Eventually(t, func() bool { return running.Load() == 3 }, 5*time.Second, time.Millisecond)
	got := 0
	select {
	case <-time.After(50 * time.Millisecond):
	case <-accepted:
		got++ // three were taken at once; the fourth must wait
	}
	assert.LessOrEqual(t, got+len(accepted), 3, "at most max jobs accepted while all workers are busy")
	close(release)
	// Every run has returned before stop (reading only seven let stop
	// overtake the tenth: ran 9 once in make test).
	for ; got < 10; got++ {
		assert.True(t, <-accepted, "job %d accepted", got)
	}
	wait := g.stop()
	select {
	case <-wait:
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not see the jobs finish")
	}
	assert.EqualValues(t, 10, ran.Load())
	assert.EqualValues(t, 3, peak.Load())
	g.mu.Lock()
	live := g.live
	g.mu.Unlock()
	assert.LessOrEqual(t, live, 3)
	assert.False(t, g.run(func() { t.Error("ran after stop") }))
	require.Eventually(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.live == 0 }, 5*time.Second, time.Millisecond)
}

// A job waiting for a worker when Stop gives up is dropped, not leaked.
func TestWorkerGroupAbandon(t *testing.T) {
	defer goleak.VerifyNone(t)
	g := newWorkerGroup(1)
	block := make(chan struct{})
	require.True(t, g.run(func() { <-block }))
	var wg sync.WaitGroup
	wg.Add(1)
	var second bool
	go func() {
		defer wg.Done()
		second = g.run(func() { t.Error("an abandoned job ran") })
	}()
	time.Sleep(20 * time.Millisecond)
	wait := g.stop()
	g.abandon()
	wg.Wait()
	assert.False(t, second)
	close(block)
	select {
	case <-wait:
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not see the running job finish")
	}
}
