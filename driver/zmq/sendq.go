package zmq

import (
	"context"
	"sync"
	"time"
)

// budget bounds, per key (a target key in direct mode, a routing key in
// proxy mode), the messages a client has handed to its socket loop and not
// yet written: a dead target fills its own budget only, and the senders of
// other keys never wait for it.
type budget struct {
	max  int
	mu   sync.Mutex
	n    map[string]int
	room map[string]chan struct{} // closed when a slot of the key frees, if someone waits
}

func newBudget(max int) *budget {
	return &budget{max: max, n: map[string]int{}, room: map[string]chan struct{}{}}
}

// acquire takes a slot of key, waiting while the key has none free (its
// peer falls behind, or none is ready) until ctx ends or the deadline
// passes (ErrQueueFull).
func (b *budget) acquire(ctx context.Context, key string, deadline time.Time) error {
	var timer *time.Timer
	for {
		b.mu.Lock()
		if b.n[key] < b.max {
			b.n[key]++
			b.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return nil
		}
		ch := b.room[key]
		if ch == nil {
			ch = make(chan struct{})
			b.room[key] = ch
		}
		b.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(time.Until(deadline))
			defer timer.Stop()
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return ErrQueueFull
		}
	}
}

// release frees a slot of key.
func (b *budget) release(key string) {
	b.mu.Lock()
	if n := b.n[key] - 1; n > 0 {
		b.n[key] = n
	} else {
		delete(b.n, key)
	}
	if ch := b.room[key]; ch != nil {
		close(ch)
		delete(b.room, key)
	}
	b.mu.Unlock()
}

// The backoff of a key whose peer is not ready: its queue is tried again
// after minBackoff, then twice as long each time, up to maxBackoff; a
// successful send resets it.
const (
	minBackoff = time.Millisecond
	maxBackoff = 100 * time.Millisecond
)

// sendState is what one attempt to write a message did.
type sendState int

const (
	sent   sendState = iota // written (finished)
	failed                  // given up (finished with an error)
	held                    // no peer ready yet: keep it
)

// sendQueues holds, per key, the messages no peer was ready for, in the
// order they were sent (loop only). A key's queue is retried with its own
// exponential backoff, so a dead target costs a few sends a second, not a
// sweep of its whole queue every millisecond.
type sendQueues struct {
	keys map[string]*keyQueue
	n    int // messages held, every key
}

type keyQueue struct {
	msgs []*outgoing
	wait time.Duration
	next time.Time
	// moved is when the key last wrote a message (or began to wait): a
	// key that has not moved for a while has a dead or stuck peer.
	moved time.Time
}

// busy reports whether key has messages waiting (a new message of the key
// then queues behind them, in order).
func (s *sendQueues) busy(key string) bool { return s.keys[key] != nil }

// hold queues o behind the messages of its key; a new queue is tried
// again after minBackoff.
func (s *sendQueues) hold(o *outgoing) {
	if s.keys == nil {
		s.keys = map[string]*keyQueue{}
	}
	q := s.keys[o.key]
	if q == nil {
		now := time.Now()
		q = &keyQueue{wait: minBackoff, next: now.Add(minBackoff), moved: now}
		s.keys[o.key] = q
	}
	q.msgs = append(q.msgs, o)
	s.n++
}

// remove drops o from its key's queue, if it is there.
func (s *sendQueues) remove(o *outgoing) {
	q := s.keys[o.key]
	if q == nil {
		return
	}
	for i, m := range q.msgs {
		if m == o {
			q.msgs = append(q.msgs[:i], q.msgs[i+1:]...)
			s.n--
			break
		}
	}
	if len(q.msgs) == 0 {
		delete(s.keys, o.key)
	}
}

// retry tries the queues that are due, each in order: send writes one
// message; once one is held, the key's later messages are not sent this
// round, only given up by expire when their time is over. A key that sent
// something starts its backoff again; one that sent nothing doubles it. It
// returns how long until the next queue is due (<0: none is left).
func (s *sendQueues) retry(send func(*outgoing) sendState, expire func(*outgoing, time.Time) bool) time.Duration {
	if len(s.keys) == 0 {
		return -1
	}
	now := time.Now()
	next := time.Duration(-1)
	for key, q := range s.keys {
		if now.Before(q.next) {
			if d := q.next.Sub(now); next < 0 || d < next {
				next = d
			}
			continue
		}
		kept := q.msgs[:0]
		progressed, blocked := false, false
		for _, o := range q.msgs {
			switch {
			case blocked:
				if !expire(o, now) {
					kept = append(kept, o)
				}
			default:
				switch send(o) {
				case sent:
					progressed = true
				case held:
					blocked = true
					kept = append(kept, o)
				}
			}
		}
		clear(q.msgs[len(kept):])
		s.n -= len(q.msgs) - len(kept)
		q.msgs = kept
		if len(kept) == 0 {
			delete(s.keys, key)
			continue
		}
		if progressed {
			q.wait = minBackoff
			q.moved = now
		} else {
			q.wait = min(2*q.wait, maxBackoff)
		}
		q.next = now.Add(q.wait)
		if next < 0 || q.wait < next {
			next = q.wait
		}
	}
	return next
}

// stalled returns the keys whose queue has not moved for at least d.
func (s *sendQueues) stalled(d time.Duration) []string {
	var out []string
	now := time.Now()
	for key, q := range s.keys {
		if now.Sub(q.moved) >= d {
			out = append(out, key)
		}
	}
	return out
}

// failAll finishes every held message with err and returns how many it
// failed.
func (s *sendQueues) failAll(err error) int {
	n := 0
	for _, q := range s.keys {
		for _, o := range q.msgs {
			o.finish(err)
			n++
		}
	}
	s.keys, s.n = nil, 0
	return n
}
