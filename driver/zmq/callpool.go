package zmq

import (
	"context"
	"errors"
	"sync"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// callSocket is a DEALER that one calling goroutine owns for the length of
// a CALL: it sends, then polls for the reply itself, with no hand-off to a
// loop goroutine. Sockets wait in a per-key pool between calls; taking one
// from the pool (under its mutex) is the hand-over of ownership.
//
// A CALL gets such a socket only when no other CALL of its key is in
// flight: the lowest latency for a lone caller, whose thread sleeps in
// zmq_poll. Concurrent callers share the client loop's DEALER of the key
// instead (muxCall), where one thread sends and reads for all of them in
// batches: far less CPU and fewer blocked threads per call.
type callSocket struct {
	s      *zmq.Socket
	poller *zmq.Poller
	hosts  map[string]bool
}

// maxDirect is how many CALLs of a key may be in flight on caller-owned
// sockets; measured: 1 (a lone caller) gives the best of both, since every
// caller sleeping in zmq_poll holds an OS thread and a P.
const maxDirect = 1

type callPool struct {
	mu     sync.Mutex
	idle   map[string][]*callSocket
	busy   map[string]int // CALLs in flight per key, between checkout and release
	closed bool
}

// checkout counts a CALL of key in flight (release ends it) and returns a
// caller-owned socket for it, or nil when other CALLs of the key are in
// flight: then the call goes through muxCall.
func (c *client) checkout(key string, hosts []string) (*callSocket, error) {
	p := &c.calls
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if p.busy == nil {
		p.busy = map[string]int{}
	}
	p.busy[key]++
	if p.busy[key] > maxDirect {
		p.mu.Unlock()
		return nil, nil
	}
	var cs *callSocket
	if l := p.idle[key]; len(l) > 0 {
		cs = l[len(l)-1]
		p.idle[key] = l[:len(l)-1]
	}
	p.mu.Unlock()
	if cs == nil {
		s, err := c.d.socket(zmq.DEALER, NewUUID4())
		if err != nil {
			c.release(key)
			return nil, err
		}
		_ = s.SetImmediate(true)
		_ = s.SetLinger(0)
		cs = &callSocket{s: s, poller: zmq.NewPoller(), hosts: map[string]bool{}}
		cs.poller.Add(s, zmq.POLLIN)
	}
	for _, h := range hosts {
		if !cs.hosts[h] {
			if err := cs.s.Connect("tcp://" + h); err != nil {
				c.d.log.Warn("driver: connect failed", "host", h, "err", err)
				continue
			}
			cs.hosts[h] = true
		}
	}
	return cs, nil
}

// release ends a CALL counted by checkout.
func (c *client) release(key string) {
	p := &c.calls
	p.mu.Lock()
	if p.busy[key]--; p.busy[key] <= 0 {
		delete(p.busy, key)
	}
	p.mu.Unlock()
}

// checkin returns a caller-owned socket to the pool (it does not release).
func (c *client) checkin(key string, cs *callSocket) {
	p := &c.calls
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = cs.s.Close()
		return
	}
	if p.idle == nil {
		p.idle = map[string][]*callSocket{}
	}
	p.idle[key] = append(p.idle[key], cs)
}

func (c *client) closeCalls() {
	p := &c.calls
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, l := range p.idle {
		for _, cs := range l {
			_ = cs.s.Close()
		}
	}
	p.idle = nil
}

// errNoReadyPeer: no connection of the socket came up in noPeerAfter; the
// hosts it knows are probably gone, so the caller re-resolves the key.
var errNoReadyPeer = errors.New("driver: no server of the target is reachable")

const noPeerAfter = 250 * time.Millisecond

// pollSlice bounds how long a caller sits in zmq_poll before it looks at
// its context again.
const pollSlice = 100 * time.Millisecond

// roundTrip sends frames and waits for the reply with id. Replies for
// other ids (late answers to an earlier, timed-out call on this socket)
// are dropped. A send with no ready peer (the connection is still being
// made) is retried until the deadline, as the reference does.
func (cs *callSocket) roundTrip(ctx context.Context, frames [][]byte, id string, log interface{ Debug(string, ...any) }) ([]byte, error) {
	start := time.Now()
	for {
		err := sendMessage(cs.s, frames, zmq.DONTWAIT)
		if err == nil {
			break
		}
		if zmq.AsErrno(err) != zmq.Errno(11) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if time.Since(start) > noPeerAfter {
			return nil, errNoReadyPeer
		}
		time.Sleep(200 * time.Microsecond)
	}
	for {
		wait := pollSlice
		if dl, ok := ctx.Deadline(); ok {
			if left := time.Until(dl); left < wait {
				wait = left
			}
		}
		if wait <= 0 {
			return nil, context.DeadlineExceeded
		}
		polled, err := cs.poller.Poll(wait)
		if err != nil && zmq.AsErrno(err) != zmq.Errno(4) {
			return nil, err
		}
		if len(polled) == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			continue
		}
		msg, err := recvMessage(cs.s, zmq.DONTWAIT)
		if err != nil {
			continue
		}
		r, perr := ParseDirectResponse(msg)
		if perr != nil {
			log.Debug("driver: dropping response", "err", perr)
			continue
		}
		if r.MsgID != id || r.Type != Reply {
			log.Debug("driver: dropping a reply for a call no longer waiting", "message_id", r.MsgID)
			continue
		}
		return r.Payload, nil
	}
}

// pickHosts is the dynamic mode's choice: the next host of the key in
// round-robin order, plus the first zmq_failover_connections hosts.
func (c *client) pickHosts(key string, hosts []string) []string {
	c.rmu.Lock()
	if c.rr == nil {
		c.rr = map[string]int{}
	}
	i := c.rr[key] % len(hosts)
	c.rr[key] = i + 1
	c.rmu.Unlock()
	out := []string{hosts[i]}
	for j := 0; j < len(hosts) && j < c.d.opts.Failover; j++ {
		if j != i {
			out = append(out, hosts[j])
		}
	}
	return out
}

// dynamicSocket is a fresh DEALER for one message (dynamic connections),
// owned by the caller and closed by it.
func (c *client) dynamicSocket(hosts []string) (*callSocket, error) {
	s, err := c.d.socket(zmq.DEALER, NewUUID4())
	if err != nil {
		return nil, err
	}
	_ = s.SetImmediate(true)
	cs := &callSocket{s: s, poller: zmq.NewPoller(), hosts: map[string]bool{}}
	cs.poller.Add(s, zmq.POLLIN)
	for _, h := range hosts {
		if err := s.Connect("tcp://" + h); err == nil {
			cs.hosts[h] = true
		}
	}
	return cs, nil
}

// sendOnce sends frames on a fresh DEALER and closes it, letting its
// linger deliver them (dynamic casts and multisend copies).
func (c *client) sendOnce(ctx context.Context, hosts []string, frames [][]byte, copies int) error {
	cs, err := c.dynamicSocket(hosts)
	if err != nil {
		return err
	}
	defer cs.s.Close()
	if copies > 1 {
		_ = cs.s.SetImmediate(false)
	}
	for i := 0; i < copies; i++ {
		for {
			err := sendMessage(cs.s, frames, zmq.DONTWAIT)
			if err == nil {
				break
			}
			if zmq.AsErrno(err) != zmq.Errno(11) {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
	return nil
}

type callResult struct {
	payload []byte
	err     error
}

// muxCall sends a CALL on the client loop's DEALER of key and waits for
// the reply, which the loop hands over by message id. The id is registered
// in the same loop task that sends, before the first frame leaves, so a
// fast reply cannot be missed; a reply that comes after the caller gave up
// finds no slot and is dropped.
func (c *client) muxCall(ctx context.Context, key string, hosts []string, frames [][]byte, id string) ([]byte, error) {
	dl, _ := ctx.Deadline()
	o := &outgoing{key: key, frames: frames, deadline: dl, log: c.d.log, mt: Call, id: id,
		call: c, result: make(chan callResult, 1), noPeerBy: time.Now().Add(noPeerAfter)}
	err := c.l.do(func() {
		if _, err := c.dealerFor(key, false, hosts); err != nil {
			o.result <- callResult{err: err}
			return
		}
		c.pending[id] = o.result
		c.hand(o)
	})
	if err != nil {
		return nil, ErrClosed
	}
	select {
	case r := <-o.result:
		return r.payload, r.err
	case <-ctx.Done():
		_ = c.l.do(func() { c.forget(o) })
		return nil, ctx.Err()
	}
}

// forget drops an abandoned CALL (loop only): its reply slot, and the
// call itself if it still waits for a ready peer.
func (c *client) forget(o *outgoing) {
	if c.pending[o.id] == o.result {
		delete(c.pending, o.id)
	}
	c.retries.remove(o)
}
