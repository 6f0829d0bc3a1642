package zmq

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/zmqwire"
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
	// mon receives the socket's TCP connection events (nil: not watched);
	// linked holds the endpoints whose connection is up and down those
	// whose connection ended and has not come back, as those events tell
	// (owner only).
	mon    *zmq.Socket
	linked map[string]bool
	down   map[string]bool
	// d logs and counts a reply recvMessage gave up whole (oversized).
	d *ZMQ
}

func (cs *callSocket) dropped(err error) bool {
	return cs.d != nil && cs.d.recvDropped(err, "call")
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
		s, err := c.d.socket(zmq.DEALER, zmqwire.NewUUID4())
		if err != nil {
			c.release(key)
			return nil, err
		}
		_ = s.SetImmediate(true)
		_ = s.SetLinger(0)
		cs = &callSocket{s: s, poller: zmq.NewPoller(), hosts: map[string]bool{}, d: c.d}
		cs.poller.Add(s, zmq.POLLIN)
		if err := cs.watch(c.d.zctx); err != nil {
			// The calls on this socket wait for their deadline when the
			// server that took one goes away.
			c.d.log.Warn("driver: cannot watch a CALL socket's connections", "err", err)
		}
	}
	for _, h := range hosts {
		if !cs.hosts[h] {
			if err := cs.s.Connect(zmqwire.TCPAddress(h)); err != nil {
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

func (cs *callSocket) close() {
	_ = cs.s.Close()
	if cs.mon != nil {
		_ = cs.mon.Close()
	}
}

// watch starts a monitor of the socket's TCP connections (before the
// socket connects anywhere, so that no event is missed).
func (cs *callSocket) watch(zctx *zmq.Context) error {
	ep := fmt.Sprintf("inproc://goslo-monitor-%d", monSeq.Add(1))
	if err := cs.s.Monitor(ep, zmq.EVENT_CONNECTED|zmq.EVENT_DISCONNECTED); err != nil {
		return err
	}
	m, err := zctx.NewSocket(zmq.PAIR)
	if err == nil {
		_ = m.SetLinger(0)
		if err = m.Connect(ep); err != nil {
			m.Close()
		}
	}
	if err != nil {
		_ = cs.s.Monitor("", 0)
		return err
	}
	cs.mon, cs.linked, cs.down = m, map[string]bool{}, map[string]bool{}
	cs.poller.Add(m, zmq.POLLIN)
	return nil
}

// events applies the connection events that have come in (owner only):
// a connection made is added to linked and to carriers (when not nil), a
// connection ended is removed from both.
func (cs *callSocket) events(carriers map[string]bool) {
	if cs.mon == nil {
		return
	}
	for {
		ev, addr, _, err := cs.mon.RecvEvent(zmq.DONTWAIT)
		if err != nil {
			if zmq.AsErrno(err) == errnoIntr {
				continue
			}
			return
		}
		switch ev {
		case zmq.EVENT_CONNECTED:
			cs.linked[addr] = true
			delete(cs.down, addr)
			if carriers != nil {
				carriers[addr] = true
			}
		case zmq.EVENT_DISCONNECTED:
			delete(cs.linked, addr)
			cs.down[addr] = true
			delete(carriers, addr)
		}
	}
}

// errNoReadyPeer: no connection of the socket came up in noPeerAfter; the
// hosts it knows are probably gone, so the caller re-resolves the key.
var errNoReadyPeer = errors.New("driver: no server of the target is reachable")

const noPeerAfter = 250 * time.Millisecond

// errPeerLost: every connection the request may have left on has ended
// without the reply, and none of the servers at the ends of the ended
// connections is registered any more (they stopped, and a stopping server
// unregisters first, then replies to whatever it took before it closes):
// the request was lost unread, so the caller drops the socket (whose ended
// connections may still take a send for a moment), re-resolves the key and
// sends it again.
var errPeerLost = errors.New("driver: the server's connection closed before the reply came")

// ServerGoneError is a CALL whose every connection that could carry it or
// its reply ended before the reply came, while its server is still
// registered (it was killed, or crashed, or its host went away: a server
// that stops cleanly unregisters first, and then the call is sent again),
// and no connection to it came back within reconnectGrace. No reply can
// come any more, so the call fails at once instead of at its deadline.
// Whether the server ran the request is unknown, as with a timeout, and
// goslo never sends it again (direct mode has no acks to tell a duplicate
// apart). It matches driver.ErrServerGone and envelope.ErrMessagingTimeout,
// so code written for oslo's MessagingTimeout handles it unchanged.
type ServerGoneError struct {
	MsgID string
	Hosts []string      // the servers whose connections ended
	After time.Duration // how long the call had waited when it failed
}

func (e *ServerGoneError) Error() string {
	return "driver: the connection to " + strings.Join(e.Hosts, ", ") + " closed before the reply to message " + e.MsgID +
		" came (after " + e.After.Round(time.Millisecond).String() + "); the server is still registered: it was killed or lost, and may or may not have run the call"
}

// Is matches driver.ErrServerGone and envelope.ErrMessagingTimeout.
func (e *ServerGoneError) Is(t error) bool {
	return t == driver.ErrServerGone || t == envelope.ErrMessagingTimeout
}

// reconnectGrace is how long a call whose connections all ended waits for
// one to its still registered server to come back (libzmq reconnects
// every 100 ms; a server alive behind a reset connection answers on the
// new one) before it fails with a *ServerGoneError.
var reconnectGrace = 300 * time.Millisecond // a var: a test lengthens it

// pollSlice bounds how long a caller sits in zmq_poll before it looks at
// its context again.
const pollSlice = 100 * time.Millisecond

// roundTrip sends frames and waits for the reply with id. Replies for
// other ids (late answers to an earlier, timed-out call on this socket)
// are dropped. A send with no ready peer (the connection is still being
// made) is retried until the deadline, as the reference does.
//
// A send can also go out on a connection whose server has just closed
// its socket: ZMQ_IMMEDIATE hides a connection only once the socket has
// processed its end, which comes after the engine saw it (and after the
// monitor's EVENT_DISCONNECTED), so for a moment the dead connection
// still takes sends; libzmq then drops the request with it. On a watched
// socket, when every connection the request may have taken (those up
// when it left) has ended without a reply, roundTrip asks gone about the
// hosts whose connections are down; when gone says they are gone for
// good (unregistered: a clean stop, the request was not read), it returns
// errPeerLost, and the caller sends it again. Otherwise (a server killed
// with the request, whose record stays) it waits reconnectGrace for a
// connection to come back, then fails with a *ServerGoneError; one that
// comes back (a reset connection to a live server) keeps it waiting for
// the reply until the deadline.
func (cs *callSocket) roundTrip(ctx context.Context, frames [][]byte, id string, log interface{ Debug(string, ...any) }, gone func(hosts []string) bool) ([]byte, error) {
	start := time.Now()
	cs.events(nil)
	for {
		err := sendMessage(cs.s, frames, zmq.DONTWAIT)
		if err == nil {
			break
		}
		if zmq.AsErrno(err) != errnoAgain {
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
	// The connections the request may have left on: those up before the
	// send, and those made since (a connection's pipe is attached to the
	// socket only after its EVENT_CONNECTED is out). None at all means it
	// left on one already known to be down.
	var carriers map[string]bool
	if cs.mon != nil {
		carriers = maps.Clone(cs.linked)
		cs.events(carriers)
	}
	asked := cs.mon == nil || gone == nil
	// graceEnd is set while every carrier is down and its hosts are still
	// registered: until then a connection may come back.
	var graceEnd time.Time
	var lost []string
	for {
		if !asked && len(carriers) == 0 && len(cs.down) > 0 {
			// A reply read before its connection ended is in the queue.
			if reply, ok := cs.pending(id, log); ok {
				return reply, nil
			}
			asked = true
			lost = lost[:0]
			for ep := range cs.down {
				lost = append(lost, zmqwire.TCPHost(ep))
			}
			if gone(lost) {
				return nil, errPeerLost
			}
			graceEnd = time.Now().Add(reconnectGrace)
		}
		if !graceEnd.IsZero() {
			if len(carriers) > 0 {
				// A connection came back: the server may answer on it, and
				// if that one ends too the loss is judged again.
				graceEnd, asked = time.Time{}, false
			} else if !time.Now().Before(graceEnd) {
				if reply, ok := cs.pending(id, log); ok {
					return reply, nil
				}
				slices.Sort(lost)
				return nil, &ServerGoneError{MsgID: id, Hosts: lost, After: time.Since(start)}
			}
		}
		wait := pollSlice
		if dl, ok := ctx.Deadline(); ok {
			if left := time.Until(dl); left < wait {
				wait = left
			}
		}
		if wait <= 0 {
			return nil, context.DeadlineExceeded
		}
		if !graceEnd.IsZero() {
			wait = max(min(wait, time.Until(graceEnd)), time.Millisecond)
		}
		polled, err := cs.poller.Poll(wait)
		if err != nil && zmq.AsErrno(err) != errnoIntr {
			return nil, err
		}
		if len(polled) == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			continue
		}
		cs.events(carriers)
		if reply, ok := cs.pending(id, log); ok {
			return reply, nil
		}
	}
}

// pending reads what the socket holds (without waiting) until the reply
// with id; other messages are dropped.
func (cs *callSocket) pending(id string, log interface{ Debug(string, ...any) }) ([]byte, bool) {
	for {
		msg, err := recvMessage(cs.s, zmq.DONTWAIT)
		if err != nil {
			if cs.dropped(err) { // an oversized message, consumed
				continue
			}
			return nil, false
		}
		r, perr := zmqwire.ParseDirectResponse(msg)
		if perr != nil {
			log.Debug("driver: dropping response", "err", perr)
			continue
		}
		if r.MsgID != id || r.Type != Reply {
			log.Debug("driver: dropping a reply for a call no longer waiting", "message_id", r.MsgID)
			continue
		}
		return r.Payload, true
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
// owned by the caller and closed by it (cs.close). A CALL's socket
// watches its connections (see roundTrip).
func (c *client) dynamicSocket(hosts []string, watch bool) (*callSocket, error) {
	s, err := c.d.socket(zmq.DEALER, zmqwire.NewUUID4())
	if err != nil {
		return nil, err
	}
	_ = s.SetImmediate(true)
	cs := &callSocket{s: s, poller: zmq.NewPoller(), hosts: map[string]bool{}, d: c.d}
	cs.poller.Add(s, zmq.POLLIN)
	if watch {
		if err := cs.watch(c.d.zctx); err != nil {
			c.d.log.Warn("driver: cannot watch a CALL socket's connections", "err", err)
		}
	}
	for _, h := range hosts {
		if err := s.Connect(zmqwire.TCPAddress(h)); err == nil {
			cs.hosts[h] = true
		}
	}
	return cs, nil
}

// sendOnce sends frames on a fresh DEALER and closes it, letting its
// linger deliver them (dynamic casts and multisend copies).
func (c *client) sendOnce(ctx context.Context, hosts []string, frames [][]byte, copies int) error {
	cs, err := c.dynamicSocket(hosts, false)
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
			if zmq.AsErrno(err) != errnoAgain {
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
//
// When every connection that could carry the request or its reply ends
// first (see muxwatch.go), it decides as roundTrip does with gone:
// errPeerLost (the caller sends it again) when the hosts are gone for
// good, else a *ServerGoneError unless a connection came back within
// reconnectGrace.
func (c *client) muxCall(ctx context.Context, key string, hosts []string, frames [][]byte, id string, gone func(hosts []string) bool) ([]byte, error) {
	start := time.Now()
	dl, _ := ctx.Deadline()
	o := &outgoing{key: key, frames: frames, deadline: dl, log: c.d.log, mt: Call, id: id,
		call: c, result: make(chan callResult, 1), noPeerBy: time.Now().Add(noPeerAfter)}
	if gone != nil {
		o.lost = make(chan []string, 1)
	}
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
	// giveUp forgets the call on the loop, then takes a result that came
	// meanwhile (ok: there was one).
	giveUp := func() (callResult, bool) {
		if err := c.l.sync(func() { c.forget(o) }); err != nil {
			return callResult{err: ErrClosed}, true
		}
		select {
		case r := <-o.result:
			return r, true
		default:
			return callResult{}, false
		}
	}
	var grace <-chan time.Time
	var lost []string
	for {
		select {
		case r := <-o.result:
			return r.payload, r.err
		case lost = <-o.lost:
			if gone(lost) {
				if r, ok := giveUp(); ok {
					return r.payload, r.err
				}
				// The hosts are unregistered: a connection of theirs still
				// closing must not take the request again.
				_ = c.l.do(func() { c.dropHosts(key, lost) })
				return nil, errPeerLost
			}
			t := time.NewTimer(reconnectGrace)
			defer t.Stop()
			grace = t.C
		case <-grace:
			grace = nil
			back := false
			if err := c.l.sync(func() { back = c.cameBack(id) }); err != nil {
				return nil, ErrClosed
			}
			if back {
				continue // the server may answer on the new connection
			}
			if r, ok := giveUp(); ok {
				return r.payload, r.err
			}
			slices.Sort(lost)
			return nil, &ServerGoneError{MsgID: id, Hosts: lost, After: time.Since(start)}
		case <-ctx.Done():
			_ = c.l.do(func() { c.forget(o) })
			return nil, ctx.Err()
		}
	}
}

// forget drops an abandoned CALL (loop only): its reply slot, and the
// call itself if it still waits for a ready peer.
func (c *client) forget(o *outgoing) {
	if c.pending[o.id] == o.result {
		delete(c.pending, o.id)
		delete(c.muxWaits, o.id)
	}
	c.retries.remove(o)
}
