package rabbit

import "sync"

// workerGroup runs a server's or listener's handlers on at most max
// goroutines, oslo's executor_thread_pool_size (its threading executor
// keeps that many threads). Workers are started on demand and kept until
// the group stops, so a busy server reuses warm goroutines rather than
// starting (and growing the stack of) one per message. When all max are
// busy, run waits for one: the listener stops taking deliveries, and the
// broker holds the rest (up to rabbit_qos_prefetch_count on the channel).
type workerGroup struct {
	jobs    chan func() // unbuffered: a send is a worker taking the job
	quit    chan struct{}
	aborted chan struct{}

	mu       sync.Mutex
	max      int
	live     int  // worker goroutines
	n        int  // jobs accepted and not finished
	stopping bool // no new job
	idle     chan struct{}
	quitOnce sync.Once
	abortOne sync.Once
}

func newWorkerGroup(max int) *workerGroup {
	if max < 1 {
		max = 64
	}
	return &workerGroup{jobs: make(chan func()), quit: make(chan struct{}), aborted: make(chan struct{}), max: max}
}

func (g *workerGroup) stopped() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stopping
}

// run hands f to a worker, starting one while fewer than max run, else
// waiting for one to be free. It reports false, without running f, once
// the group stops (or, for a job still waiting, when the stop gave up:
// abandon).
func (g *workerGroup) run(f func()) bool {
	g.mu.Lock()
	if g.stopping {
		g.mu.Unlock()
		return false
	}
	g.n++
	select {
	case g.jobs <- f: // an idle worker took it
		g.mu.Unlock()
		return true
	default:
	}
	spawn := g.live < g.max
	if spawn {
		g.live++
	}
	g.mu.Unlock()
	if spawn {
		go g.worker(f)
		return true
	}
	select {
	case g.jobs <- f:
		return true
	case <-g.aborted:
		g.done()
		return false
	}
}

func (g *workerGroup) worker(f func()) {
	for {
		f()
		g.done()
		select {
		case f = <-g.jobs:
		case <-g.quit:
			g.mu.Lock()
			g.live--
			g.mu.Unlock()
			return
		}
	}
}

func (g *workerGroup) done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 && g.stopping {
		if g.idle != nil {
			close(g.idle)
			g.idle = nil
		}
		g.quitOnce.Do(func() { close(g.quit) })
	}
}

// stop refuses new jobs and returns a channel closed when none runs; the
// idle workers exit then.
func (g *workerGroup) stop() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopping = true
	ch := make(chan struct{})
	if g.n == 0 {
		close(ch)
		g.quitOnce.Do(func() { close(g.quit) })
	} else {
		g.idle = ch
	}
	return ch
}

// abandon drops the jobs still waiting for a worker (Stop ran out of
// time); running ones finish in the background.
func (g *workerGroup) abandon() { g.abortOne.Do(func() { close(g.aborted) }) }
