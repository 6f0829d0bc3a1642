package zmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/zmqwire"
	"github.com/goslo/goslo/matchmaker"
)

type route struct {
	hosts   []string
	fetched time.Time
}

type client struct {
	d      *ZMQ
	l      *loop
	rmu    sync.Mutex
	routes map[string]route
	rr     map[string]int // dynamic mode's round robin, under rmu
	calls  callPool
	budget *budget // per key, at most maxWaiting messages handed to the loop and not yet written
	// re-resolution of stalled keys (see reresolveStalled)
	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// owned by the loop goroutine
	dealers   map[string]*dealer
	retries   sendQueues
	pending   map[string]chan callResult // CALLs sent on the loop's DEALERs, by message id
	muxWaits  map[string]*muxWait        // of those, the ones sent on a watched DEALER (muxwatch.go)
	resolving map[string]bool            // keys being read again
	resolved  map[string]time.Time       // when each key was last read again
}

type dealer struct {
	s     *zmq.Socket
	hosts map[string]bool
	// mon watches the connections of a DEALER that carries CALLs (nil:
	// not watched); linked and down are as in callSocket.
	mon          *zmq.Socket
	linked, down map[string]bool
}

type outgoing struct {
	key      string
	fanout   bool
	frames   [][]byte
	deadline time.Time
	done     chan error // nil for casts: the loop logs their failures
	log      *slog.Logger
	obs      Observer // counts a message the loop gives up (nil: none)
	mt       MsgType
	id       string  // the message id
	budget   *budget // where the sender took a slot of key, to free when done; nil if it took none
	// A CALL multiplexed on the loop's DEALER (see muxCall): its result
	// slot, and when to give up waiting for a ready peer.
	call     *client
	result   chan callResult
	noPeerBy time.Time
	lost     chan []string // told when every connection that could carry it ended (muxwatch.go)
}

func (o *outgoing) finish(err error) {
	if o.budget != nil {
		o.budget.release(o.key)
		o.budget = nil
	}
	if o.result != nil {
		// Sent: the reply comes through pending. Not sent: fail the call.
		if err != nil && o.call.pending[o.id] == o.result {
			delete(o.call.pending, o.id)
			delete(o.call.muxWaits, o.id)
			o.result <- callResult{err: err}
		}
		return
	}
	if o.done != nil {
		o.done <- err
		return
	}
	if err != nil {
		// A cast accepted earlier and given up now: counted and logged
		// (the log is rate-limited per key).
		if o.obs != nil {
			o.obs.Dropped(o.mt, DropReason(err))
		}
		o.log.Warn("driver: message dropped", "type", o.mt.String(), "message_id", o.id, "key", o.key, "err", err)
	}
}

func (d *ZMQ) client() (*client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.zctx == nil || d.closing {
		return nil, ErrClosed
	}
	if d.cl != nil {
		return d.cl, nil
	}
	c := &client{d: d, routes: map[string]route{}, dealers: map[string]*dealer{}, pending: map[string]chan callResult{}, muxWaits: map[string]*muxWait{},
		budget: newBudget(maxWaiting), resolving: map[string]bool{}, resolved: map[string]time.Time{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	l, err := newLoop(d.zctx, "client", d.log, c.tick)
	if err != nil {
		return nil, err
	}
	l.onDrop = d.dropped
	c.l = l
	d.cl = c
	return c, nil
}

// hosts resolves a key through the routing table: cached for
// zmq_target_update, and re-read whenever the cache is empty (the
// reference exhausts a key for good once its hosts vanish).
func (c *client) hosts(ctx context.Context, t compat.Target, fanout bool) (string, []string, error) {
	return c.hostsBy(ctx, t, fanout, time.Time{})
}

// hostsBy is hosts with a deadline for the matchmaker when ctx has none.
func (c *client) hostsBy(ctx context.Context, t compat.Target, fanout bool, deadline time.Time) (string, []string, error) {
	key := compat.TargetKey(compat.Router, t)
	c.rmu.Lock()
	r, ok := c.routes[key]
	c.rmu.Unlock()
	if ok && len(r.hosts) > 0 && time.Since(r.fetched) < c.d.opts.TargetUpdate {
		return key, r.hosts, nil
	}
	if _, has := ctx.Deadline(); !has && !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	var hosts []string
	var err error
	if fanout {
		hosts, err = c.d.mm.HostsFanout(ctx, t, compat.Router)
	} else {
		hosts, err = c.d.mm.HostsRetry(ctx, t, compat.Router)
	}
	if err != nil {
		if stale, ok := keepStale(ctx, err, r, c.d.opts.TargetUpdate, c.d.log, key); ok {
			c.rmu.Lock()
			c.routes[key] = stale
			c.rmu.Unlock()
			return key, stale.hosts, nil
		}
		return key, nil, err
	}
	c.rmu.Lock()
	c.routes[key] = route{hosts: hosts, fetched: time.Now()}
	c.rmu.Unlock()
	return key, hosts, nil
}

// staleRetry is how soon a route kept after a failed refresh is read
// again.
const staleRetry = time.Second

// keepStale decides, when the refresh of a cached route failed, whether
// to keep serving it: yes, unless the caller's context ended, the key has
// no hosts (the reference drops a key whose refresh is empty) or the
// matchmaker is closed. A matchmaker outage (Redis down, or not yet
// readable after it came back) then costs nothing to the servers that are
// still reachable, as the reference's routing table keeps its routes. The
// route kept is read again after staleRetry.
func keepStale(ctx context.Context, err error, r route, update time.Duration, log *slog.Logger, key string) (route, bool) {
	if len(r.hosts) == 0 || ctx.Err() != nil || errors.Is(err, matchmaker.ErrNoHosts) || errors.Is(err, matchmaker.ErrClosed) {
		return route{}, false
	}
	log.Warn("driver: routing table not refreshed; using the last known hosts", "key", key, "hosts", r.hosts, "err", err)
	r.fetched = time.Now().Add(min(staleRetry, update) - update)
	return r, true
}

// invalidate forgets a key's hosts, so the next use reads the matchmaker.
func (c *client) invalidate(key string) {
	c.rmu.Lock()
	delete(c.routes, key)
	c.rmu.Unlock()
}

// dealerFor returns the DEALER of a key connected to every host (loop only).
func (c *client) dealerFor(key string, fanout bool, hosts []string) (*dealer, error) {
	dk := key
	if fanout {
		dk = "fanout:" + key
	}
	dl := c.dealers[dk]
	if dl == nil {
		s, err := c.d.socket(zmq.DEALER, zmqwire.NewUUID4())
		if err != nil {
			return nil, err
		}
		_ = s.SetImmediate(!fanout)
		dl = &dealer{s: s, hosts: map[string]bool{}}
		c.dealers[dk] = dl
		c.l.addReader(s, c.onResponse)
		if !fanout {
			if err := c.watchDealer(dk, dl); err != nil {
				// Its calls wait for their deadline when their server goes away.
				c.d.log.Warn("driver: cannot watch a DEALER's connections", "key", key, "err", err)
			}
		}
	}
	for _, h := range hosts {
		if !dl.hosts[h] {
			if err := dl.s.Connect(zmqwire.TCPAddress(h)); err != nil {
				c.d.log.Warn("driver: connect failed", "host", h, "err", err)
				continue
			}
			dl.hosts[h] = true
		}
	}
	return dl, nil
}

// onResponse handles what arrives on the loop's DEALERs: the replies of
// the CALLs multiplexed there (muxCall); nothing else is expected (direct
// mode has no ACKs).
func (c *client) onResponse(frames [][]byte) {
	r, err := zmqwire.ParseDirectResponse(frames)
	if err != nil {
		c.d.log.Warn("driver: dropping response", "err", err)
		return
	}
	if r.Type == Reply {
		if ch := c.pending[r.MsgID]; ch != nil {
			delete(c.pending, r.MsgID)
			delete(c.muxWaits, r.MsgID)
			ch <- callResult{payload: r.Payload}
			c.l.yield = true
			return
		}
		c.d.log.Debug("driver: dropping a reply for a call no longer waiting", "message_id", r.MsgID)
		return
	}
	c.d.log.Warn("driver: dropping an unexpected response", "type", r.Type.String(), "message_id", r.MsgID)
}

// trySend sends on the loop goroutine; a message no peer is ready for yet
// (a connection still being made, or a dead server) is held, and retried
// with its key's backoff until its deadline.
func (c *client) trySend(o *outgoing) sendState {
	hosts := c.dealers[o.key]
	if hosts == nil {
		o.finish(fmt.Errorf("driver: no socket for %s", o.key))
		return failed
	}
	if o.fanout {
		// One copy per connected host: DEALER round-robin spreads them.
		for range hosts.hosts {
			if err := sendMessage(hosts.s, o.frames, zmq.DONTWAIT); err != nil {
				o.finish(err)
				return failed
			}
		}
		o.finish(nil)
		return sent
	}
	err := sendMessage(hosts.s, o.frames, zmq.DONTWAIT)
	if err == nil {
		c.watchCall(o, hosts)
		o.finish(nil)
		return sent
	}
	if zmq.AsErrno(err) == errnoAgain { // no ready peer yet
		if c.expire(o, time.Now()) {
			return failed
		}
		return held
	}
	o.finish(err)
	return failed
}

// errNotSent fails a message whose deadline passed before any peer of its
// key was ready (libzmq's EAGAIN, as the send itself would say).
var errNotSent error = errnoAgain

// expire gives up a held message whose time is over: its deadline, or for
// a CALL the wait for a ready peer (loop only). It reports whether it did.
func (c *client) expire(o *outgoing, now time.Time) bool {
	switch {
	case !now.Before(o.deadline):
		o.finish(errNotSent)
	case o.result != nil && now.After(o.noPeerBy):
		o.finish(errNoReadyPeer)
	default:
		return false
	}
	return true
}

// hand sends o, or holds it behind its key's waiting messages (loop only).
func (c *client) hand(o *outgoing) {
	if c.retries.busy(o.key) || c.trySend(o) == held {
		c.retries.hold(o)
	}
}

func (c *client) tick() time.Duration {
	next := c.retries.retry(c.trySend, c.expire)
	if next >= 0 {
		c.reresolveStalled()
	}
	return next
}

// reresolveStalled reads again, in the background, the hosts of every
// key whose queued casts have not moved for noPeerAfter (every connection
// of its DEALER is dead, or its peer stopped reading), at most once per
// noPeerAfter per key, and connects the DEALER to the hosts found: a
// server restarted on a new port gets the casts queued for it, as a CALL
// re-resolves its target (loop only). The reference reads the key again
// only at its next routing-table refresh (zmq_target_update).
func (c *client) reresolveStalled() {
	now := time.Now()
	for _, key := range c.retries.stalled(noPeerAfter) {
		if strings.HasPrefix(key, "fanout:") || c.resolving[key] || now.Sub(c.resolved[key]) < noPeerAfter || c.dealers[key] == nil {
			continue // a fanout's copies are not re-routed
		}
		c.resolving[key] = true
		c.wg.Add(1)
		go c.reresolve(key)
	}
}

// reresolve reads key's hosts and connects its DEALER to them.
func (c *client) reresolve(key string) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	hosts, err := c.d.mm.HostsByKey(ctx, key)
	cancel()
	if err == nil && len(hosts) > 0 {
		c.rmu.Lock()
		c.routes[key] = route{hosts: hosts, fetched: time.Now()}
		c.rmu.Unlock()
	}
	_ = c.l.do(func() {
		c.resolving[key] = false
		c.resolved[key] = time.Now()
		if err != nil {
			c.d.log.Warn("driver: queued messages do not move; re-resolving failed", "key", key, "err", err)
			return
		}
		c.d.log.Info("driver: queued messages do not move; target re-resolved", "key", key, "hosts", hosts)
		if len(hosts) > 0 && c.dealers[key] != nil {
			_, _ = c.dealerFor(key, false, hosts)
		}
	})
}

// drainFor bounds how long Close lets messages that wait for a ready
// connection (a cast sent just before, on a connection still being made)
// leave before it fails them.
const drainFor = time.Second

// drain waits until waiting() (run on the loop) is 0, ctx ends, or bound
// passes (when > 0).
func drain(ctx context.Context, bound time.Duration, l *loop, waiting func() int) {
	if bound > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, bound)
		defer cancel()
	}
	tk := time.NewTicker(5 * time.Millisecond)
	defer tk.Stop()
	for {
		n := 0
		if l.sync(func() { n = waiting() }) != nil || n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

// boundCtx bounds ctx by deadline when ctx has no earlier one; a zero
// deadline leaves ctx as it is. Made only where a wait may happen, so a
// message sent from cache costs no timer.
func boundCtx(ctx context.Context, deadline time.Time) (context.Context, context.CancelFunc) {
	if deadline.IsZero() {
		return ctx, func() {}
	}
	if dl, ok := ctx.Deadline(); ok && !dl.After(deadline) {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, deadline)
}

// send resolves the target and hands the frames to the loop.
func (c *client) send(ctx context.Context, t compat.Target, mt MsgType, id string, payload []byte, deadline time.Time) error {
	fanout := mt.IsMultisend()
	key, hosts, err := c.hostsBy(ctx, t, fanout, deadline)
	if err != nil {
		return err
	}
	if len(hosts) == 0 {
		return matchmaker.ErrNoHosts
	}
	if c.d.opts.Dynamic {
		if _, has := ctx.Deadline(); !has {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
		}
		frames := zmqwire.DirectRequest(mt, id, payload)
		if fanout { // a copy per host, from one fresh socket connected to all
			return c.sendOnce(ctx, hosts, frames, len(hosts))
		}
		return c.sendOnce(ctx, c.pickHosts(key, hosts), frames, 1)
	}
	o := &outgoing{key: key, fanout: fanout, frames: zmqwire.DirectRequest(mt, id, payload), deadline: deadline,
		log: c.d.log, obs: c.d.opts.Observer, mt: mt, id: id}
	if mt == Call {
		o.done = make(chan error, 1)
	}
	if fanout {
		o.key = "fanout:" + key
	}
	if err := c.budget.acquire(ctx, o.key, deadline); err != nil {
		return err
	}
	o.budget = c.budget
	err = c.l.do(func() {
		if _, err := c.dealerFor(key, fanout, hosts); err != nil {
			o.finish(err)
			return
		}
		c.hand(o) // what it holds is bounded by the key's budget
	})
	if err != nil {
		c.budget.release(o.key)
		return ErrClosed
	}
	if mt != Call {
		// A cast returns once the socket loop has it, as oslo's casts are
		// asynchronous; a failure to send is logged by the loop.
		return nil
	}
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Call sends a CALL and waits for its reply payload. The deadline comes
// from ctx, or rpc_response_timeout when ctx has none. The calling
// goroutine owns a pooled DEALER of the target key for the whole round
// trip, so the reply is read by the one waiting for it: no reply slot can be
// missed, and a late reply to an abandoned call is recognised and dropped.
func (d *ZMQ) Call(ctx context.Context, t compat.Target, payload []byte) ([]byte, error) {
	start := time.Now()
	obs := d.opts.Observer
	if obs != nil {
		obs.Sent(Call)
	}
	reply, err := d.call(ctx, t, payload)
	err = closedErr(err)
	if err != nil {
		d.logCallFailure(t, err)
	}
	if obs != nil {
		observeCall(obs, time.Since(start), err)
	}
	return reply, err
}

// observeCall tells obs how a CALL ended.
func observeCall(obs Observer, d time.Duration, err error) {
	outcome := "ok"
	switch {
	case err == nil:
		obs.Received(Reply)
	case errors.Is(err, driver.ErrServerGone):
		outcome = "error"
		obs.Dropped(Call, "server_gone")
	case errors.Is(err, envelope.ErrMessagingTimeout):
		outcome = "timeout"
		obs.Dropped(Call, "timeout")
	default:
		outcome = "error"
		obs.Dropped(Call, DropReason(err))
	}
	obs.Call(d, outcome)
}

// logCallFailure logs a CALL that got no reply (a remote failure is a
// reply, and the caller's to log).
func (d *ZMQ) logCallFailure(t compat.Target, err error) {
	var te *TimeoutError
	if errors.As(err, &te) {
		d.log.Info("driver: call timed out", "type", "CALL", "message_id", te.MsgID, "target", t.String(),
			"timeout", te.Timeout, "no_hosts", te.NoHosts)
		return
	}
	var ge *ServerGoneError
	if errors.As(err, &ge) {
		d.log.Warn("driver: call failed: its server's connection closed before the reply", "type", "CALL", "message_id", ge.MsgID,
			"target", t.String(), "hosts", ge.Hosts, "after", ge.After)
		return
	}
	d.log.Warn("driver: call failed", "type", "CALL", "target", t.String(), "err", err)
}

func (d *ZMQ) call(ctx context.Context, t compat.Target, payload []byte) ([]byte, error) {
	timeout := d.opts.ResponseTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	id := zmqwire.NewUUID1()
	driver.ReportSentID(ctx, id)
	if d.opts.RouterProxy {
		pc, err := d.proxy()
		if err != nil {
			return nil, err
		}
		return pc.call(ctx, t, id, payload, timeout)
	}
	c, err := d.client()
	if err != nil {
		return nil, err
	}
	frames := zmqwire.DirectRequest(Call, id, payload)
	for attempt := 0; ; attempt++ {
		key, hosts, err := c.hosts(ctx, t, false)
		if err == nil && len(hosts) == 0 {
			err = matchmaker.ErrNoHosts
		}
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, matchmaker.ErrNoHosts) {
				return nil, &TimeoutError{MsgID: id, Timeout: timeout, NoHosts: errors.Is(err, matchmaker.ErrNoHosts)}
			}
			return nil, err
		}
		var cs *callSocket
		if d.opts.Dynamic {
			cs, err = c.dynamicSocket(c.pickHosts(key, hosts), true)
		} else {
			cs, err = c.checkout(key, hosts)
		}
		if err != nil {
			return nil, err
		}
		var reply []byte
		gone := func(lost []string) bool { return d.unregistered(ctx, t, lost) }
		switch {
		case d.opts.Dynamic:
			reply, err = cs.roundTrip(ctx, frames, id, d.log, gone)
			cs.close()
		case cs == nil: // other calls of the key in flight: share the loop's DEALER
			reply, err = c.muxCall(ctx, key, hosts, frames, id, gone)
			c.release(key)
		default:
			reply, err = cs.roundTrip(ctx, frames, id, d.log, gone)
			if errors.Is(err, errPeerLost) || errors.Is(err, driver.ErrServerGone) {
				cs.close() // the next checkout makes a socket with no dead connection
			} else {
				c.checkin(key, cs)
			}
			c.release(key)
		}
		switch {
		case err == nil:
			return reply, nil
		case errors.Is(err, errNoReadyPeer):
			// Every known host is gone (a restarted server has a new port):
			// read the key again and retry, where the reference would wait
			// for its next routing-table refresh.
			c.invalidate(key)
			d.log.Info("driver: no reachable server; re-resolving", "key", key, "message_id", id, "attempt", attempt+1)
			continue
		case errors.Is(err, errPeerLost):
			c.invalidate(key)
			d.log.Info("driver: the server closed before the call was read; re-resolving and sending it again",
				"key", key, "message_id", id, "attempt", attempt+1)
			continue
		case errors.Is(err, context.DeadlineExceeded):
			c.invalidate(key)
			return nil, &TimeoutError{MsgID: id, Timeout: timeout}
		case errors.Is(err, driver.ErrServerGone):
			c.invalidate(key) // the next call reads the target again
		}
		return nil, err
	}
}

// unregistered reports whether none of hosts is a registered server of t
// any more (a matchmaker error counts as "still registered").
func (d *ZMQ) unregistered(ctx context.Context, t compat.Target, hosts []string) bool {
	now, err := d.mm.Hosts(ctx, t, compat.Router)
	if err != nil {
		return false
	}
	for _, h := range hosts {
		if slices.Contains(now, h) {
			return false
		}
	}
	return true
}

// Cast sends a CAST (or, with t.Fanout, a CAST_FANOUT) without waiting for
// anything but the send. With no registered host, a cast is dropped with a
// warning and matchmaker.ErrNoHosts is returned.
func (d *ZMQ) Cast(ctx context.Context, t compat.Target, payload []byte) error {
	mt := Cast
	if t.Fanout {
		mt = CastFanout
	}
	return d.post(ctx, t, mt, payload)
}

// Notify sends a NOTIFY to every listener of t (topic "<topic>.<priority>").
func (d *ZMQ) Notify(ctx context.Context, t compat.Target, payload []byte) error {
	return d.post(ctx, t, Notify, payload)
}

func (d *ZMQ) post(ctx context.Context, t compat.Target, mt MsgType, payload []byte) error {
	dl, ok := ctx.Deadline()
	if !ok { // bounds the matchmaker (on a cache miss) and the wait for a peer
		dl = time.Now().Add(d.opts.ResponseTimeout)
	}
	id := zmqwire.NewUUID1()
	driver.ReportSentID(ctx, id)
	var err error
	if d.opts.RouterProxy || (d.opts.PubSub && mt.IsMultisend()) {
		// Its waits (a slot, a matchmaker lookup) are bounded by dl.
		var pc *proxyClient
		if pc, err = d.proxy(); err == nil {
			err = pc.post(ctx, t, mt, id, payload, dl)
		}
	} else {
		var c *client
		if c, err = d.client(); err == nil {
			err = c.send(ctx, t, mt, id, payload, dl)
		}
	}
	err = closedErr(err)
	if err != nil {
		d.log.Warn("driver: message dropped", "type", mt.String(), "message_id", id, "target", t.String(), "err", err)
		if d.opts.Observer != nil {
			d.opts.Observer.Dropped(mt, DropReason(err))
		}
	} else if d.opts.Observer != nil {
		d.opts.Observer.Sent(mt)
	}
	return err
}
