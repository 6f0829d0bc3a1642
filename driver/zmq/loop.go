package zmq

import (
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/goslo/goslo/envelope"
)

// loop is one goroutine that owns a group of zmq sockets: it polls them,
// and runs the functions other goroutines hand it (which are the only way
// to touch its sockets). A hand-off wakes the poller through an inproc PAIR
// whose sending end is shared under a mutex and carries one byte; it is sent
// only while the loop sleeps in zmq_poll (sleeping and queued make a Dekker
// pair of seq-cst atomics, so no hand-off is left unseen).
//
// While the loop expects one hand-back soon (a server's lone CALL is on a
// worker, see expect), it waits for it on the Go channel rather than in
// zmq_poll, for at most quickWait once per expect: the hand-back then costs
// a goroutine switch instead of waking a thread, and the sockets are polled
// (without blocking) right after. A slow handler costs one timer wake, never
// a spin. With more CALLs on the workers the loop is busy anyway and polls as
// usual (measured: waiting on the channel then only delays the requests
// queued on the sockets).
type loop struct {
	name    string
	zctx    *zmq.Context
	log     *slog.Logger
	poller  *zmq.Poller
	wakeIn  *zmq.Socket // owned by the loop goroutine
	wakeOut *zmq.Socket // guarded by wakeMu
	wakeMu  sync.Mutex
	tasks   chan func()
	readers map[*zmq.Socket]func([][]byte)
	tick    func() time.Duration // called each turn; returns the next poll timeout (<0: none)
	// onDrop counts a message a reader's socket gave up whole (too many
	// parts, or over MaxMessageSize); set before any reader is added.
	onDrop func(reason string)
	quit   chan struct{}
	done   chan struct{}
	closed atomic.Bool
	// queued counts hand-offs sent to tasks and not yet taken; sleeping is
	// set while the loop is (about to be) in zmq_poll.
	queued   atomic.Int64
	sleeping atomic.Bool
	// pending counts hand-backs expected from other goroutines; armed
	// (loop only) allows one quick wait for them.
	pending atomic.Int64
	armed   bool
	yield   bool // (loop only) goroutines were readied this turn
}

// quickWait bounds how long the loop waits on its task channel for an
// expected hand-back before it goes back to polling its sockets.
const quickWait = 100 * time.Microsecond

// expect, on the loop goroutine, announces a hand-back (a reply) that
// another goroutine will make soon; that goroutine calls settle once it has
// made it, or knows it will not.
func (l *loop) expect() {
	l.pending.Add(1)
	l.armed = true
}

// settle ends one expect; any goroutine.
func (l *loop) settle() { l.pending.Add(-1) }

var loopSeq atomic.Uint64

// maxTasks bounds the hand-off queue; callers block (with their context)
// when the loop is that far behind.
const maxTasks = 4096

func newLoop(zctx *zmq.Context, name string, log *slog.Logger, tick func() time.Duration) (*loop, error) {
	l := &loop{tick: tick, name: name, zctx: zctx, log: log, poller: zmq.NewPoller(), tasks: make(chan func(), maxTasks),
		readers: map[*zmq.Socket]func([][]byte){}, quit: make(chan struct{}), done: make(chan struct{})}
	ep := fmt.Sprintf("inproc://goslo-wake-%s-%d", name, loopSeq.Add(1))
	var err error
	if l.wakeIn, err = zctx.NewSocket(zmq.PAIR); err != nil {
		return nil, err
	}
	if err = l.wakeIn.Bind(ep); err != nil {
		l.wakeIn.Close()
		return nil, err
	}
	if l.wakeOut, err = zctx.NewSocket(zmq.PAIR); err != nil {
		l.wakeIn.Close()
		return nil, err
	}
	if err = l.wakeOut.Connect(ep); err != nil {
		l.wakeIn.Close()
		l.wakeOut.Close()
		return nil, err
	}
	l.poller.Add(l.wakeIn, zmq.POLLIN)
	go l.run()
	return l, nil
}

// errLoopClosed is returned by do after close.
var errLoopClosed = fmt.Errorf("zmq driver: socket loop: %w", envelope.ErrClosed)

// do hands f to the loop goroutine. It never blocks longer than the queue
// needs to drain; it fails once the loop is closed.
func (l *loop) do(f func()) error {
	if l.closed.Load() {
		return errLoopClosed
	}
	l.queued.Add(1)
	select {
	case l.tasks <- f:
	case <-l.quit:
		l.queued.Add(-1)
		return errLoopClosed
	}
	if l.sleeping.Load() {
		l.wake()
	}
	return nil
}

func (l *loop) wake() {
	l.wakeMu.Lock()
	defer l.wakeMu.Unlock()
	if l.wakeOut != nil {
		_, _ = l.wakeOut.SendBytes([]byte{1}, zmq.DONTWAIT)
	}
}

// addReader registers a socket the loop reads; only from the loop goroutine.
func (l *loop) addReader(s *zmq.Socket, f func([][]byte)) {
	l.readers[s] = f
	l.poller.Add(s, zmq.POLLIN)
}

func (l *loop) removeReader(s *zmq.Socket) {
	delete(l.readers, s)
	_ = l.poller.RemoveBySocket(s)
}

func (l *loop) run() {
	defer close(l.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		timeout := time.Duration(-1)
		if l.tick != nil {
			timeout = l.tick()
		}
		if l.armed && l.pending.Load() == 1 && l.queued.Load() == 0 {
			// A hand-back is on its way: wait for it on the channel, then
			// poll the sockets without blocking.
			timer.Reset(quickWait)
			select {
			case f := <-l.tasks:
				l.queued.Add(-1)
				f()
			case <-timer.C:
				l.armed = false
			case <-l.quit:
				return
			}
			timer.Stop()
			timeout = 0
		} else {
			l.armed = false
		}
		if timeout != 0 {
			l.sleeping.Store(true)
			if l.queued.Load() > 0 {
				timeout = 0
			}
		}
		polled, err := l.poller.Poll(timeout)
		l.sleeping.Store(false)
		if err != nil {
			if zmq.AsErrno(err) == errnoTerm {
				return
			}
			if zmq.AsErrno(err) != errnoIntr { // interrupted: just poll again
				l.log.Error("driver: poll failed", "loop", l.name, "err", err)
				time.Sleep(10 * time.Millisecond)
			}
		}
		for _, p := range polled {
			if p.Socket == l.wakeIn {
				for {
					if _, err := l.wakeIn.RecvBytes(zmq.DONTWAIT); err != nil {
						break
					}
				}
				continue
			}
			f := l.readers[p.Socket]
			if f == nil {
				continue
			}
			// Read what is queued, bounded so one busy socket cannot starve
			// the others or the task queue.
			for i := 0; i < 256; i++ {
				msg, err := recvMessage(p.Socket, zmq.DONTWAIT)
				if reason := dropReason(err); reason != "" {
					l.log.Warn("driver: dropping a message", "loop", l.name, "reason", reason, "err", err)
					if l.onDrop != nil {
						l.onDrop(reason)
					}
					continue
				}
				if err != nil {
					break
				}
				f(msg)
			}
		}
		if l.yield {
			// Let the goroutines this turn readied run first: the work they
			// hand back is then taken below without a wake.
			l.yield = false
			runtime.Gosched()
		}
		for i := 0; i < maxTasks; i++ {
			select {
			case f := <-l.tasks:
				l.queued.Add(-1)
				f()
				continue
			default:
			}
			break
		}
		select {
		case <-l.quit:
			return
		default:
		}
	}
}

// close stops the loop; cleanup runs on the loop goroutine first, closing
// the sockets it owns.
func (l *loop) close(cleanup func()) {
	if l.closed.Swap(true) {
		<-l.done
		return
	}
	if cleanup != nil {
		done := make(chan struct{})
		l.queued.Add(1)
		select {
		case l.tasks <- func() { cleanup(); close(done) }:
			l.wake()
			select {
			case <-done:
			case <-l.done:
			}
		case <-l.done:
		}
	}
	close(l.quit)
	l.wake()
	<-l.done
	l.wakeMu.Lock()
	l.wakeOut.SetLinger(0)
	l.wakeOut.Close()
	l.wakeOut = nil
	l.wakeMu.Unlock()
	l.wakeIn.SetLinger(0)
	l.wakeIn.Close()
}

// sync runs f on the loop goroutine and waits until it has run.
func (l *loop) sync(f func()) error {
	done := make(chan struct{})
	if err := l.do(func() { f(); close(done) }); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-l.done:
		return errLoopClosed
	}
}
