package zmq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/goslo/goslo/envelope"
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
	// mon watches the connections of a direct-mode socket (nil elsewhere):
	// live counts those whose handshake succeeded and that have not
	// closed since.
	mon  *zmq.Socket
	live int
}

// close closes the socket and its monitor.
func (cs *callSocket) close() {
	_ = cs.s.Close()
	if cs.mon != nil {
		_ = cs.mon.SetLinger(0)
		_ = cs.mon.Close()
	}
}

// ServerGoneError is a CALL whose server closed the connection that
// carried it before replying (the server was killed or stopped, its
// DEALER saw the disconnect), when no other connection of the socket is
// left: no reply can come any more, so the call fails at once instead of
// waiting for its whole timeout. Whether the server ran the request is
// unknown, as with a timeout; goslo never resends it (direct mode has no
// acks to tell a duplicate). It matches ErrServerGone and
// envelope.ErrMessagingTimeout, so code written for oslo's
// MessagingTimeout handles it unchanged.
type ServerGoneError struct {
	MsgID string
	After time.Duration // how long the call had waited
}

func (e *ServerGoneError) Error() string {
	return "driver: the server closed the connection before replying to message " + e.MsgID +
		" (after " + e.After.Round(time.Millisecond).String() + "); it may or may not have run it"
}

// Is matches ErrServerGone and envelope.ErrMessagingTimeout.
func (e *ServerGoneError) Is(t error) bool {
	return t == ErrServerGone || t == envelope.ErrMessagingTimeout
}

// ErrServerGone matches a *ServerGoneError.
var ErrServerGone = errors.New("driver: the server closed the connection before replying")

// watchConnections starts the monitor of a new direct-mode call socket
// (before it connects anywhere, so that every handshake is seen).
func (c *client) watchConnections(cs *callSocket) {
	ep := fmt.Sprintf("inproc://goslo-callmon-%d", monSeq.Add(1))
	if err := cs.s.Monitor(ep, zmq.EVENT_HANDSHAKE_SUCCEEDED|zmq.EVENT_DISCONNECTED); err != nil {
		return
	}
	m, err := c.d.zctx.NewSocket(zmq.PAIR)
	if err != nil {
		return
	}
	if err := m.Connect(ep); err != nil {
		_ = m.Close()
		return
	}
	cs.mon = m
	cs.poller.Add(m, zmq.POLLIN)
}

// events reads the monitor's pending events; it reports whether a
// connection closed.
func (cs *callSocket) events() (closed bool) {
	if cs.mon == nil {
		return false
	}
	for {
		ev, _, _, err := cs.mon.RecvEvent(zmq.DONTWAIT)
		if err != nil {
			return closed
		}
		switch ev {
		case zmq.EVENT_HANDSHAKE_SUCCEEDED:
			cs.live++
		case zmq.EVENT_DISCONNECTED:
			cs.live = max(cs.live-1, 0)
			closed = true
		}
	}
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
		c.watchConnections(cs)
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
		cs.close()
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
			cs.close()
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
//
// A direct-mode socket watches its connections: when the one that carried
// the request closes before the reply and none is left, the call fails at
// once with a *ServerGoneError (see there) rather than at its deadline.
func (cs *callSocket) roundTrip(ctx context.Context, frames [][]byte, id string, log interface{ Debug(string, ...any) }) ([]byte, error) {
	start := time.Now()
	cs.events() // what happened since the last call
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
		if cs.mon != nil && cs.events() && cs.live == 0 {
			// Every connection is closed: a reply already queued on the
			// socket is still taken below; otherwise none can come.
			if msg, err := recvMessage(cs.s, zmq.DONTWAIT); err == nil {
				if r, perr := ParseDirectResponse(msg); perr == nil && r.MsgID == id && r.Type == Reply {
					return r.Payload, nil
				}
			}
			return nil, &ServerGoneError{MsgID: id, After: time.Since(start)}
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
