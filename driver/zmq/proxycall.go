package zmq

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/goslo/goslo/internal/zmqwire"
)

// A proxy-mode CALL is made on a DEALER the calling goroutine owns for the
// round trip, as in direct mode: the reply comes back to that socket
// (the proxy routes it by the socket's identity, "<rpc_zmq_host>/<uuid4>"),
// so it is read by the goroutine waiting for it, with no hand-off. Idle
// sockets wait in a pool; each is connected to every proxy frontend.
type proxyCallPool struct {
	mu     sync.Mutex
	idle   []*callSocket
	closed bool
}

func (c *proxyClient) checkoutCall(frontends []string) (*callSocket, error) {
	p := &c.calls
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	var cs *callSocket
	if n := len(p.idle); n > 0 {
		cs = p.idle[n-1]
		p.idle = p.idle[:n-1]
	}
	p.mu.Unlock()
	if cs == nil {
		s, err := c.d.socket(zmq.DEALER, zmqwire.ClientIdentity(c.d.opts.Host, zmqwire.NewUUID4()))
		if err != nil {
			return nil, err
		}
		_ = s.SetImmediate(c.d.opts.Immediate)
		_ = s.SetLinger(0)
		cs = &callSocket{s: s, poller: zmq.NewPoller(), hosts: map[string]bool{}, d: c.d}
		cs.poller.Add(s, zmq.POLLIN)
	}
	for _, fe := range frontends {
		if !cs.hosts[fe] {
			if err := cs.s.Connect(zmqwire.TCPAddress(fe)); err != nil {
				c.d.log.Warn("driver: connect to proxy failed", "proxy", fe, "err", err)
				continue
			}
			cs.hosts[fe] = true
		}
	}
	return cs, nil
}

func (c *proxyClient) checkinCall(cs *callSocket) {
	p := &c.calls
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = cs.s.Close()
		return
	}
	p.idle = append(p.idle, cs)
}

func (c *proxyClient) closeCalls() {
	p := &c.calls
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, cs := range p.idle {
		_ = cs.s.Close()
	}
	p.idle = nil
}

// proxyRoundTrip sends a CALL through a proxy and waits for its REPLY on
// the caller's socket. With rpc_use_acks an ACK is awaited for
// rpc_ack_timeout_base × multiplier^n and the identical frames are resent
// (same id, same routing key) while retries remain; the wait for the ACK
// ends when the REPLY comes. A response for another id (a late answer to
// an abandoned call on this socket) is dropped; a REPLY or ACK whose
// address frame is not the routing key fails the call with ErrBadReply.
func (c *proxyClient) proxyRoundTrip(ctx context.Context, cs *callSocket, frames [][]byte, id string, rk []byte) ([]byte, error) {
	send := func() error {
		start := time.Now()
		for {
			err := sendMessage(cs.s, frames, zmq.DONTWAIT)
			if err == nil {
				return nil
			}
			if zmq.AsErrno(err) != errnoAgain {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if time.Since(start) > noPeerAfter {
				// No proxy is reachable: one may have come back elsewhere.
				if fes, err := c.proxies(ctx, true, time.Time{}); err == nil {
					for _, fe := range fes {
						if !cs.hosts[fe] && cs.s.Connect(zmqwire.TCPAddress(fe)) == nil {
							cs.hosts[fe] = true
						}
					}
				}
				start = time.Now()
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
	if err := send(); err != nil {
		return nil, err
	}
	acked := !c.d.opts.Acks
	wait := c.d.opts.AckTimeout
	next := time.Now().Add(wait)
	retries := c.retryBudget(ctx)
	for {
		slice := pollSlice
		if !acked {
			if left := time.Until(next); left < slice {
				slice = max(left, 0)
			}
		}
		if dl, ok := ctx.Deadline(); ok {
			left := time.Until(dl)
			if left <= 0 {
				return nil, context.DeadlineExceeded
			}
			slice = min(slice, left)
		}
		polled, err := cs.poller.Poll(slice)
		if err != nil && zmq.AsErrno(err) != errnoIntr {
			return nil, err
		}
		if len(polled) == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if !acked && !time.Now().Before(next) {
				if retries == 0 {
					c.d.log.Warn("driver: no ack; no more resends", "type", "CALL", "message_id", id, "routing_key", string(rk))
					acked = true
					continue
				}
				if retries > 0 {
					retries--
				}
				wait *= time.Duration(c.d.opts.AckMultiplier)
				next = time.Now().Add(wait)
				c.d.log.Info("driver: no ack in time; resending", "type", "CALL", "message_id", id, "routing_key", string(rk), "next_wait", wait)
				if err := send(); err != nil {
					return nil, err
				}
			}
			continue
		}
		msg, err := recvMessage(cs.s, zmq.DONTWAIT)
		if err != nil {
			cs.dropped(err)
			continue
		}
		r, perr := zmqwire.ParseProxyResponse(msg)
		if perr != nil {
			c.d.log.Warn("driver: dropping response", "message_id", id, "err", perr)
			continue
		}
		if r.MsgID != id {
			c.d.log.Debug("driver: dropping a response for a call no longer waiting", "message_id", r.MsgID, "type", r.Type.String())
			continue
		}
		if !bytes.Equal(r.Sender, rk) {
			c.d.log.Error("driver: response from an unexpected server", "type", r.Type.String(), "message_id", id,
				"sender", string(r.Sender), "routing_key", string(rk))
			return nil, fmt.Errorf("%w: got %q, sent to %q (message %s)", ErrBadReply, r.Sender, rk, id)
		}
		if r.Type == Ack {
			acked = true
			continue
		}
		return r.Payload, nil
	}
}
