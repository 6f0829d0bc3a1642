package zmq

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/internal/zmqwire"
	"github.com/goslo/goslo/matchmaker"
)

// ErrBadReply is a proxy-mode REPLY whose address frame is not the server
// the CALL was routed to. The reference logs it and returns None; goslo
// fails the call with this error instead.
var ErrBadReply = errors.New("driver: reply from another server than the routing key")

// errNoProxyReady: no proxy connection came up before the deadline.
var errNoProxyReady = errors.New("driver: no proxy connection became ready")

// ErrQueueFull: the send queue of the message's key (maxWaiting messages
// not yet written, as when its server or every proxy is unreachable, or
// one falls behind) stayed full until the message's deadline; the message
// is dropped. Other keys have queues of their own.
var ErrQueueFull = errors.New("driver: send queue full until the deadline")

// maxWaiting bounds, per key (a target key in direct mode, a routing key
// in proxy mode), the messages a client has handed to its socket loop and
// not yet written; senders of that key beyond it wait for room.
const maxWaiting = 10000

// ErrNoProxy is returned when no proxy is registered in PUBLISHERS.
var ErrNoProxy = errors.New("driver: no proxy is registered (PUBLISHERS is empty)")

// proxyClient is the proxy-mode client (ZmqClientProxy, and the pub/sub
// half of ZmqClientMixDirectPubSub): one DEALER with identity
// "<rpc_zmq_host>/<uuid4>", owned by its loop and connected to the
// frontend of every proxy in PUBLISHERS. Requests carry a routing key;
// replies and acks come back on the same DEALER and are matched to the
// waiting caller by message id; a CALL uses a DEALER of its own
// (proxycall.go), so its reply reaches the goroutine that waits for it.
type proxyClient struct {
	d        *ZMQ
	l        *loop
	identity []byte
	rt       routingTable

	calls  proxyCallPool
	budget *budget // per routing key, at most maxWaiting messages handed to the loop and not yet written

	fmu       sync.Mutex // serialises PUBLISHERS reads
	frontends []string
	fetched   time.Time

	// owned by the loop goroutine
	sock      *zmq.Socket
	connected map[string]bool
	retries   sendQueues
	tracked   map[string]*ackWait
}

// ackWait is a CAST waiting for its ACK (loop only); a CALL waits for its
// ACK on its own socket (proxycall.go).
type ackWait struct {
	frames  [][]byte
	key     []byte
	next    time.Time
	wait    time.Duration
	retries int // left; negative: for ever
	mt      MsgType
	id      string
}

func (d *ZMQ) proxy() (*proxyClient, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.zctx == nil || d.closing {
		return nil, ErrClosed
	}
	if d.pc != nil {
		return d.pc, nil
	}
	c := &proxyClient{d: d, identity: []byte(zmqwire.ClientIdentity(d.opts.Host, zmqwire.NewUUID4())),
		rt:        routingTable{mm: d.mm, log: d.log, update: d.opts.TargetUpdate, routes: map[string]route{}, rr: map[string]int{}},
		connected: map[string]bool{}, tracked: map[string]*ackWait{}, budget: newBudget(maxWaiting)}
	s, err := d.socket(zmq.DEALER, string(c.identity))
	if err != nil {
		return nil, err
	}
	_ = s.SetImmediate(d.opts.Immediate)
	c.sock = s
	l, err := newLoop(d.zctx, "proxy-client", d.log, c.tick)
	if err != nil {
		s.Close()
		return nil, err
	}
	l.onDrop = d.dropped
	c.l = l
	if err := l.sync(func() { l.addReader(s, c.onResponse) }); err != nil {
		return nil, err
	}
	d.pc = c
	return c, nil
}

// routingTable caches target key → hosts for zmq_target_update and
// round-robins over them; an empty answer is never cached, so a key whose
// hosts all vanished is read again (the reference exhausts it for good).
type routingTable struct {
	mm     matchmaker.Matchmaker
	log    *slog.Logger
	update time.Duration
	mu     sync.Mutex
	routes map[string]route
	rr     map[string]int
}

// hosts returns the hosts of t's key; a lookup (cache miss) is bounded
// by deadline when ctx has none (zero: ctx alone).
func (rt *routingTable) hosts(ctx context.Context, t compat.Target, fanout bool, listener string, deadline time.Time) (string, []string, error) {
	key := compat.TargetKey(listener, t)
	rt.mu.Lock()
	r, ok := rt.routes[key]
	rt.mu.Unlock()
	if ok && len(r.hosts) > 0 && time.Since(r.fetched) < rt.update {
		return key, r.hosts, nil
	}
	ctx, cancel := boundCtx(ctx, deadline)
	defer cancel()
	var hosts []string
	var err error
	if fanout {
		hosts, err = rt.mm.HostsFanout(ctx, t, listener)
	} else {
		hosts, err = rt.mm.HostsRetry(ctx, t, listener)
	}
	if err != nil {
		if stale, ok := keepStale(ctx, err, r, rt.update, rt.log, key); ok {
			rt.mu.Lock()
			rt.routes[key] = stale
			rt.mu.Unlock()
			return key, stale.hosts, nil
		}
		return key, nil, err
	}
	if len(hosts) > 0 {
		rt.mu.Lock()
		rt.routes[key] = route{hosts: hosts, fetched: time.Now()}
		rt.mu.Unlock()
	}
	return key, hosts, nil
}

func (rt *routingTable) next(key string, hosts []string) string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	i := rt.rr[key] % len(hosts)
	rt.rr[key] = i + 1
	return hosts[i]
}

func (rt *routingTable) invalidate(key string) {
	rt.mu.Lock()
	delete(rt.routes, key)
	rt.mu.Unlock()
}

// proxies returns the frontend addresses of PUBLISHERS, read again every
// zmq_target_update, and connects the DEALER to any new one.
func (c *proxyClient) proxies(ctx context.Context, force bool, deadline time.Time) ([]string, error) {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	if !force && len(c.frontends) > 0 && time.Since(c.fetched) < c.d.opts.TargetUpdate {
		return c.frontends, nil
	}
	ctx, cancel := boundCtx(ctx, deadline)
	defer cancel()
	pubs, err := c.d.mm.Publishers(ctx)
	if err != nil {
		if len(c.frontends) > 0 {
			c.d.log.Warn("driver: publishers not refreshed; using the known proxies", "err", err)
			return c.frontends, nil
		}
		return nil, err
	}
	fes := make([]string, 0, len(pubs))
	for _, p := range pubs {
		if p.Frontend != "" {
			fes = append(fes, p.Frontend)
		}
	}
	if len(fes) == 0 {
		if len(c.frontends) > 0 { // keep reconnecting to the known ones
			c.fetched = time.Now()
			return c.frontends, nil
		}
		return nil, ErrNoProxy
	}
	c.frontends, c.fetched = fes, time.Now()
	if err := c.l.sync(func() { c.connect(fes) }); err != nil {
		return nil, ErrClosed
	}
	return fes, nil
}

// connect adds connections to new frontends; like the reference, a
// connection is never removed (libzmq keeps reconnecting).
func (c *proxyClient) connect(addrs []string) {
	for _, a := range addrs {
		if c.connected[a] || c.sock == nil {
			continue
		}
		if err := c.sock.Connect(zmqwire.TCPAddress(a)); err != nil {
			c.d.log.Warn("driver: connect to proxy failed", "proxy", a, "err", err)
			continue
		}
		c.connected[a] = true
		c.d.log.Debug("driver: connected to proxy", "proxy", a, "identity", string(c.identity))
	}
}

// onResponse handles a REPLY or an ACK that a proxy routed back.
func (c *proxyClient) onResponse(frames [][]byte) {
	r, err := zmqwire.ParseProxyResponse(frames)
	if err != nil {
		c.d.log.Warn("driver: dropping response", "err", err)
		return
	}
	if w := c.tracked[r.MsgID]; w != nil {
		if !bytes.Equal(r.Sender, w.key) {
			c.d.log.Error("driver: response from an unexpected sender; no more resends", "message_id", r.MsgID,
				"type", r.Type.String(), "sender", string(r.Sender), "routing_key", string(w.key))
		}
		delete(c.tracked, r.MsgID)
	}
	if r.Type == Ack {
		c.d.log.Debug("driver: ack", "message_id", r.MsgID, "sender", string(r.Sender))
		return
	}
	// CALLs are made on their own sockets: a REPLY here answers nothing.
	c.d.log.Warn("driver: dropping an unexpected reply on the cast socket", "message_id", r.MsgID, "sender", string(r.Sender))
}

// trySend writes one message on the DEALER (loop only); with no proxy
// connected yet (EAGAIN under zmq_immediate) it is held, and retried with
// its routing key's backoff until its deadline.
func (c *proxyClient) trySend(o *outgoing) sendState {
	if c.sock == nil {
		o.finish(ErrClosed)
		return failed
	}
	err := sendMessage(c.sock, o.frames, zmq.DONTWAIT)
	if err == nil {
		o.finish(nil)
		return sent
	}
	if zmq.AsErrno(err) == errnoAgain {
		if c.expire(o, time.Now()) {
			return failed
		}
		return held
	}
	o.finish(err)
	return failed
}

// expire gives up a held message whose deadline has passed (loop only).
func (c *proxyClient) expire(o *outgoing, now time.Time) bool {
	if now.Before(o.deadline) {
		return false
	}
	o.finish(errNoProxyReady)
	return true
}

func (c *proxyClient) tick() time.Duration {
	if c.retries.n == 0 && len(c.tracked) == 0 {
		return -1 // the usual turn: nothing to retry, no clock read
	}
	next := c.retries.retry(c.trySend, c.expire)
	if len(c.tracked) == 0 {
		return next
	}
	now := time.Now()
	for key, w := range c.tracked {
		if now.Before(w.next) {
			if d := w.next.Sub(now); next < 0 || d < next {
				next = d
			}
			continue
		}
		if w.retries == 0 {
			c.d.log.Warn("driver: no ack; giving up", "type", w.mt.String(), "message_id", w.id, "routing_key", string(w.key))
			delete(c.tracked, key)
			continue
		}
		if w.retries > 0 {
			w.retries--
		}
		w.wait *= time.Duration(c.d.opts.AckMultiplier)
		w.next = now.Add(w.wait)
		c.d.log.Info("driver: no ack in time; resending", "type", w.mt.String(), "message_id", w.id, "routing_key", string(w.key), "next_wait", w.wait)
		if err := sendMessage(c.sock, w.frames, zmq.DONTWAIT); err != nil {
			c.d.log.Warn("driver: resend failed", "type", w.mt.String(), "message_id", w.id, "err", err)
		}
		if next < 0 || w.wait < next {
			next = w.wait
		}
	}
	return next
}

// enqueue hands frames to the loop, which writes them (or keeps them
// until a proxy connection is ready, or the deadline) and logs a failure.
// track asks for ack tracking (a CAST with rpc_use_acks).
func (c *proxyClient) enqueue(ctx context.Context, mt MsgType, id string, frames [][]byte, key []byte, deadline time.Time, track bool) error {
	if _, err := c.proxies(ctx, false, deadline); err != nil {
		return err
	}
	// A slot of the routing key per message not yet written: when the
	// proxy (or the server behind it) falls behind, senders of the key wait
	// here, bounded by their context, instead of growing a queue or
	// dropping; other keys have slots of their own.
	o := &outgoing{key: string(key), frames: frames, deadline: deadline, log: c.d.log, obs: c.d.opts.Observer, mt: mt, id: id}
	if err := c.budget.acquire(ctx, o.key, deadline); err != nil {
		return err
	}
	o.budget = c.budget
	err := c.l.do(func() {
		if track {
			if len(c.tracked) >= c.d.opts.MaxTracked {
				c.d.log.Warn("driver: too many messages await an ack; sending untracked", "type", mt.String(), "message_id", id, "limit", c.d.opts.MaxTracked)
			} else {
				c.tracked[id] = &ackWait{frames: frames, key: key, wait: c.d.opts.AckTimeout,
					next: time.Now().Add(c.d.opts.AckTimeout), retries: c.retryBudget(ctx), mt: mt, id: id}
			}
		}
		// What it holds is bounded by the key's budget; a new message
		// waits behind the key's held ones, in order.
		if c.retries.busy(o.key) || c.trySend(o) == held {
			c.retries.hold(o)
		}
	})
	if err != nil {
		c.budget.release(o.key)
		return ErrClosed
	}
	return nil
}

type retryKey struct{}

// WithRetry carries oslo's RPC client "retry" for the messages sent with
// ctx: how often an unacked CALL or CAST is resent (rpc_use_acks). As in
// the reference, 0 (Python's None or 0) means rpc_retry_attempts, and a
// negative value means for ever.
func WithRetry(ctx context.Context, retry int) context.Context {
	return context.WithValue(ctx, retryKey{}, retry)
}

func (c *proxyClient) retryBudget(ctx context.Context) int {
	n := c.d.opts.RetryAttempts
	if v, ok := ctx.Value(retryKey{}).(int); ok && v != 0 {
		n = v
	}
	if n < 0 {
		return -1
	}
	return n
}

// call routes a CALL to the next DEALER host of the target through a proxy
// and waits for the reply.
func (c *proxyClient) call(ctx context.Context, t compat.Target, id string, payload []byte, timeout time.Duration) ([]byte, error) {
	key, hosts, err := c.rt.hosts(ctx, t, false, compat.Dealer, time.Time{})
	if err == nil && len(hosts) == 0 {
		err = matchmaker.ErrNoHosts
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, matchmaker.ErrNoHosts) {
			return nil, &TimeoutError{MsgID: id, Timeout: timeout, NoHosts: errors.Is(err, matchmaker.ErrNoHosts)}
		}
		return nil, err
	}
	rk := []byte(c.rt.next(key, hosts))
	fes, err := c.proxies(ctx, false, time.Time{})
	if err != nil {
		return nil, err
	}
	cs, err := c.checkoutCall(fes)
	if err != nil {
		return nil, err
	}
	reply, err := c.proxyRoundTrip(ctx, cs, zmqwire.ProxyRequest(Call, rk, id, payload), id, rk)
	c.checkinCall(cs)
	if err != nil && (ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded)) {
		// A server gone without unregistering keeps its identity in the
		// key until it expires: read the key again for the next call.
		c.rt.invalidate(key)
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, &TimeoutError{MsgID: id, Timeout: timeout}
		}
		return nil, ctx.Err()
	}
	return reply, err
}

// post sends a CAST, a fanout or a notification. A CAST goes to the next
// DEALER host; a fanout or notification goes to the topic as one message
// (pub/sub: the proxy publishes it) or as one copy per DEALER host.
func (c *proxyClient) post(ctx context.Context, t compat.Target, mt MsgType, id string, payload []byte, deadline time.Time) error {
	if mt.IsMultisend() && c.d.opts.PubSub {
		topic := []byte(t.Topic)
		return c.enqueue(ctx, mt, id, zmqwire.ProxyRequest(mt, topic, id, payload), topic, deadline, false)
	}
	if mt.IsMultisend() {
		_, hosts, err := c.rt.hosts(ctx, t, true, compat.Dealer, deadline)
		if err != nil {
			return err
		}
		if len(hosts) == 0 {
			return matchmaker.ErrNoHosts
		}
		for _, h := range hosts {
			rk := []byte(h)
			if err := c.enqueue(ctx, mt, id, zmqwire.ProxyRequest(mt, rk, id, payload), rk, deadline, false); err != nil {
				return err
			}
		}
		return nil
	}
	_, hosts, err := c.rt.hosts(ctx, t, false, compat.Dealer, deadline)
	if err != nil {
		return err
	}
	if len(hosts) == 0 {
		return matchmaker.ErrNoHosts
	}
	rk := []byte(c.rt.next(compat.TargetKey(compat.Dealer, t), hosts))
	return c.enqueue(ctx, mt, id, zmqwire.ProxyRequest(mt, rk, id, payload), rk, deadline, c.d.opts.Acks)
}

// close lets queued messages leave (until ctx ends, or bound passes when
// > 0), fails the calls still waiting and closes the DEALER (with its
// linger, so casts written still leave); it returns how many queued
// messages it discarded.
func (c *proxyClient) close(ctx context.Context, bound time.Duration) int {
	drain(ctx, bound, c.l, func() int { return c.retries.n })
	n := 0
	c.l.close(func() {
		c.l.removeReader(c.sock)
		c.d.capLinger(c.sock)
		_ = c.sock.Close()
		c.sock = nil
		n = c.retries.failAll(ErrClosed)
		c.tracked = map[string]*ackWait{}
	})
	c.closeCalls()
	return n
}
