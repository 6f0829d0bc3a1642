package zmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/ratelog"
	"github.com/goslo/goslo/internal/zmqwire"
	"github.com/goslo/goslo/matchmaker"
)

// Options configure the zmq driver; the names follow [oslo_messaging_zmq].
type Options struct {
	Host            string // rpc_zmq_host: advertised host
	BindAddress     string // rpc_zmq_bind_address
	MinPort         int    // rpc_zmq_min_port
	MaxPort         int    // rpc_zmq_max_port (exclusive)
	BindRetries     int    // rpc_zmq_bind_port_retries
	TargetExpire    time.Duration
	TargetUpdate    time.Duration
	ResponseTimeout time.Duration // rpc_response_timeout: a CALL's default timeout
	// Workers is executor_thread_pool_size ([DEFAULT], default 64): the
	// handlers a server runs at once (0: 64).
	Workers int
	// Dynamic is use_dynamic_connections: a new DEALER per message,
	// connected to the next host of the key plus the first Failover hosts
	// (zmq_failover_connections), closed after the send (after the reply
	// for a CALL).
	Dynamic  bool
	Failover int
	HWM      int // send/receive high-water mark of every socket
	// MaxMessageSize bounds one received message (ZMQ_MAXMSGSIZE); a peer
	// that sends more is disconnected by libzmq. Default 64 MiB.
	MaxMessageSize int64
	// Socket is what oslo's ZmqSocket sets on every socket: zmq_linger and
	// the zmq_tcp_keepalive options.
	Socket SocketOptions
	Logger *slog.Logger

	// RouterProxy is use_router_proxy: CALL/CAST (and, without PubSub,
	// fanout and notify) go through the proxies of PUBLISHERS; servers
	// connect a DEALER to every ROUTERS record and register it as
	// DEALER/<topic>[/<server>].
	RouterProxy bool
	// PubSub is use_pub_sub: fanout and notify go as one message to one
	// proxy, which publishes them; servers add a SUB consumer.
	PubSub bool
	// SubscribeOn (subscribe_on) replaces the publishers of PUBLISHERS as
	// the addresses SUB consumers connect to.
	SubscribeOn []string
	// Immediate is zmq_immediate, for the proxy-mode DEALERs.
	Immediate bool
	// Acks is rpc_use_acks (proxy mode only): servers ack CALL and CAST on
	// receipt and drop duplicates within MessageTTL; clients resend an
	// unacked CALL or CAST after AckTimeout × AckMultiplier^n, at most
	// RetryAttempts times (negative: for ever).
	Acks          bool
	MessageTTL    time.Duration
	AckTimeout    time.Duration
	AckMultiplier int
	RetryAttempts int
	// MaxTracked bounds the messages a proxy-mode client tracks for acks
	// (beyond it, new messages are sent untracked, with a warning).
	MaxTracked int
	// Observer, when set, is told of every message sent, received and
	// dropped, and of every CALL's latency (see the metrics package).
	Observer Observer

	// MinReplyDelay (goslo only, default 0: off; at most MaxMinReplyDelay)
	// makes a server hold each CALL's reply until that long after its
	// request was read: a workaround for oslo.messaging 8.1.4's Python
	// client, which tracks a CALL only after sending it and drops a reply
	// that comes first (the call then times out). The handler's worker
	// waits out the rest of the delay in Request.Reply, so every CALL
	// takes at least MinReplyDelay and, at saturation, a server answers at
	// most Workers/MinReplyDelay calls per second; handlers slower than
	// the delay pay nothing. docs/interop.md gives the loss rates.
	MinReplyDelay time.Duration
}

// MaxMinReplyDelay bounds Options.MinReplyDelay: a hold beyond it is an
// outage, not a workaround.
const MaxMinReplyDelay = time.Second

// SocketOptions are the options oslo 8.1.4's ZmqSocket sets on every
// socket (zmq_socket.py), with its meanings.
type SocketOptions struct {
	// Linger is zmq_linger (ZMQ_LINGER): how long a closed socket keeps
	// trying to send what it still holds; 0: it is discarded at once.
	// oslo's -1 (for ever) is bounded at ForeverLinger, so that Close
	// returns: terminating the zmq context waits for every closed socket's
	// linger. Sockets of CALLs discard at once, as their caller has given
	// up.
	Linger time.Duration
	// TCPKeepalive is zmq_tcp_keepalive (ZMQ_TCP_KEEPALIVE): negative
	// leaves the OS default, 0 turns keepalive off, positive on.
	TCPKeepalive int
	// TCPKeepaliveIdle, TCPKeepaliveCnt and TCPKeepaliveIntvl are
	// zmq_tcp_keepalive_idle, _cnt and _intvl (ZMQ_TCP_KEEPALIVE_IDLE, _CNT,
	// _INTVL, in the OS's unit: seconds on Linux); 0 or negative leaves the
	// OS default.
	TCPKeepaliveIdle, TCPKeepaliveCnt, TCPKeepaliveIntvl int
}

// ForeverLinger is what zmq_linger -1 (for ever, oslo's default) means in
// goslo: a closed socket keeps sending what it holds for this long. oslo
// 8.1.4 blocks its cleanup for good on a message no peer takes; goslo's
// Close is bounded instead.
const ForeverLinger = time.Second

// SocketOptionsFrom takes the socket options from a compat.Config.
func SocketOptionsFrom(c *compat.Config) SocketOptions {
	z := c.ZMQ
	linger := ForeverLinger
	if z.ZMQLinger >= 0 {
		linger = time.Duration(z.ZMQLinger) * time.Second
	}
	return SocketOptions{Linger: linger, TCPKeepalive: z.ZMQTCPKeepalive,
		TCPKeepaliveIdle: z.ZMQTCPKeepaliveIdle, TCPKeepaliveCnt: z.ZMQTCPKeepaliveCnt, TCPKeepaliveIntvl: z.ZMQTCPKeepaliveIntvl}
}

// apply sets the options on s as oslo does: ZMQ_LINGER always;
// ZMQ_TCP_KEEPALIVE to -1, 0 or 1 and the others to their value or -1,
// each only when not -1 (libzmq's default, the OS's settings).
func (o SocketOptions) apply(s *zmq.Socket) error {
	linger := o.Linger
	if linger < 0 {
		linger = ForeverLinger
	}
	if err := s.SetLinger(linger); err != nil {
		return err
	}
	ka := -1
	switch {
	case o.TCPKeepalive == 0:
		ka = 0
	case o.TCPKeepalive > 0:
		ka = 1
	}
	for _, v := range []struct {
		name string
		n    int
		set  func(int) error
	}{
		{"zmq_tcp_keepalive", ka, s.SetTcpKeepalive},
		{"zmq_tcp_keepalive_idle", o.TCPKeepaliveIdle, s.SetTcpKeepaliveIdle},
		{"zmq_tcp_keepalive_cnt", o.TCPKeepaliveCnt, s.SetTcpKeepaliveCnt},
		{"zmq_tcp_keepalive_intvl", o.TCPKeepaliveIntvl, s.SetTcpKeepaliveIntvl},
	} {
		if v.n < 0 || (v.n == 0 && v.name != "zmq_tcp_keepalive") {
			continue
		}
		if err := v.set(v.n); err != nil {
			return fmt.Errorf("driver: %s = %d: %w", v.name, v.n, err)
		}
	}
	return nil
}

// OptionsFrom takes the driver options from a compat.Config.
func OptionsFrom(c *compat.Config) Options {
	return Options{
		Host: c.ZMQ.RPCZMQHost, BindAddress: c.ZMQ.RPCZMQBindAddress,
		MinPort: c.ZMQ.RPCZMQMinPort, MaxPort: c.ZMQ.RPCZMQMaxPort, BindRetries: c.ZMQ.RPCZMQBindPortRetries,
		TargetExpire:    time.Duration(c.ZMQ.ZMQTargetExpire) * time.Second,
		TargetUpdate:    time.Duration(c.ZMQ.ZMQTargetUpdate) * time.Second,
		ResponseTimeout: time.Duration(c.Default.RPCResponseTimeout) * time.Second,
		Workers:         c.Default.ExecutorThreadPoolSize, HWM: 100000,
		Socket:        SocketOptionsFrom(c),
		Dynamic:       c.ZMQ.UseDynamicConnections,
		Failover:      c.ZMQ.ZMQFailoverConnections,
		RouterProxy:   c.ZMQ.UseRouterProxy,
		PubSub:        c.ZMQ.UsePubSub,
		SubscribeOn:   append([]string(nil), c.ZMQ.SubscribeOn...),
		Immediate:     c.ZMQ.ZMQImmediate,
		Acks:          c.ZMQ.RPCUseAcks,
		MessageTTL:    time.Duration(c.ZMQ.RPCMessageTTL) * time.Second,
		AckTimeout:    time.Duration(c.ZMQ.RPCAckTimeoutBase) * time.Second,
		AckMultiplier: c.ZMQ.RPCAckTimeoutMultiplier,
		RetryAttempts: c.ZMQ.RPCRetryAttempts,
	}
}

// ZMQ is the zmq driver in direct static mode: servers bind a ROUTER and
// register its address; clients keep one DEALER per target key connected
// to every host of the key. One zmq context per driver (per Transport).
type ZMQ struct {
	opts Options
	mm   matchmaker.Matchmaker
	log  *slog.Logger
	zctx *zmq.Context
	mu   sync.Mutex
	cl   *client
	pc   *proxyClient
	srvs map[*Server]bool
	// mem keeps, per proxy-mode server target, the DEALER identity and the
	// acks TTL cache of a stopped server for the next server of that
	// target in this driver (see openDealer).
	mem   map[string]*serverMemory
	close sync.Once
}

// NewZMQ builds the driver over a matchmaker.
func NewZMQ(mm matchmaker.Matchmaker, opts Options) (*ZMQ, error) {
	// Repeated WARN and ERROR lines (a flood of junk, a dead target) are
	// limited per kind and source, with a count of what was suppressed.
	opts.Logger = ratelog.Logger(opts.Logger)
	if opts.Workers <= 0 {
		opts.Workers = 64 // executor_thread_pool_size's default
	}
	if opts.HWM <= 0 {
		opts.HWM = 100000
	}
	if opts.MaxMessageSize <= 0 {
		opts.MaxMessageSize = 64 << 20
	}
	if opts.ResponseTimeout <= 0 {
		opts.ResponseTimeout = 60 * time.Second
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 15 * time.Second
	}
	if opts.AckMultiplier <= 0 {
		opts.AckMultiplier = 2
	}
	if opts.MaxTracked <= 0 {
		opts.MaxTracked = 100000
	}
	if opts.MaxPort <= opts.MinPort {
		return nil, fmt.Errorf("driver: port range [%d, %d) is empty", opts.MinPort, opts.MaxPort)
	}
	if opts.MinReplyDelay < 0 || opts.MinReplyDelay > MaxMinReplyDelay {
		return nil, fmt.Errorf("driver: minimum reply delay %v is outside [0, %v]", opts.MinReplyDelay, MaxMinReplyDelay)
	}
	zctx, err := zmq.NewContext()
	if err != nil {
		return nil, err
	}
	return &ZMQ{opts: opts, mm: mm, log: opts.Logger, zctx: zctx, srvs: map[*Server]bool{}, mem: map[string]*serverMemory{}}, nil
}

func (d *ZMQ) socket(t zmq.Type, identity string) (*zmq.Socket, error) {
	return newSocket(d.zctx, t, identity, d.opts.HWM, d.opts.MaxMessageSize, d.opts.Socket)
}

// newSocket makes a socket with goslo's options (high-water marks, a
// bound on received messages) and oslo's (linger, TCP keepalive), and the
// identity if any.
func newSocket(zctx *zmq.Context, t zmq.Type, identity string, hwm int, maxMsg int64, so SocketOptions) (*zmq.Socket, error) {
	s, err := zctx.NewSocket(t)
	if err != nil {
		return nil, err
	}
	checkHandle(s, t)
	_ = s.SetSndhwm(hwm)
	_ = s.SetRcvhwm(hwm)
	_ = s.SetMaxmsgsize(maxMsg)
	if err := so.apply(s); err != nil {
		s.Close()
		return nil, err
	}
	if identity != "" {
		if err := s.SetIdentity(identity); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// TimeoutError is a CALL that got no reply in time: oslo's MessagingTimeout.
type TimeoutError struct {
	MsgID   string
	Timeout time.Duration
	NoHosts bool
}

func (e *TimeoutError) Error() string {
	s := "Timeout " + strconv.FormatFloat(e.Timeout.Seconds(), 'f', -1, 64) + " seconds was reached for message " + e.MsgID
	if e.NoHosts {
		s += " (no server is registered for the target)"
	}
	return s
}

// Is matches envelope.ErrMessagingTimeout and context.DeadlineExceeded.
func (e *TimeoutError) Is(t error) bool {
	return t == envelope.ErrMessagingTimeout || t == context.DeadlineExceeded
}

// ErrClosed is returned once the driver is closed.
var ErrClosed = fmt.Errorf("zmq driver: %w", envelope.ErrClosed)

// closedErr is ErrClosed for the error of a socket whose zmq context was
// terminated under it (a message in flight when the driver closed), and
// err otherwise.
func closedErr(err error) error {
	if err != nil && zmq.AsErrno(err) == errnoTerm {
		return ErrClosed
	}
	return err
}

// ---------------------------------------------------------------- client

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
	if d.zctx == nil {
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

// drain waits, at most drainFor, until waiting() (run on the loop) is 0.
func drain(l *loop, waiting func() int) {
	deadline := time.Now().Add(drainFor)
	for time.Now().Before(deadline) {
		n := 0
		if l.sync(func() { n = waiting() }) != nil || n == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
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

// DiscardedError is returned by Close when messages accepted earlier (casts,
// notifications waiting for a ready connection) were still queued after
// Close let them drain for a moment: they were discarded, each counted by
// the Observer as dropped ("closed").
type DiscardedError struct{ N int }

func (e *DiscardedError) Error() string {
	return fmt.Sprintf("zmq driver: closed with %d queued messages not sent", e.N)
}

// Is matches ErrDiscarded.
func (e *DiscardedError) Is(t error) bool { return t == ErrDiscarded }

// ErrDiscarded matches the *DiscardedError of Close.
var ErrDiscarded = errors.New("zmq driver: queued messages discarded at close")

// Close closes every server (without unregistering: use Server.Stop for a
// clean stop) and the client sockets, then the zmq context. Messages still
// waiting for a ready connection get up to a second to leave; those that
// do not are discarded, counted (Observer.Dropped, reason "closed"),
// logged once with their number, and reported as a *DiscardedError.
// (Messages already written to a socket are left to zmq_linger.)
func (d *ZMQ) Close() error {
	var discarded int
	d.close.Do(func() {
		d.mu.Lock()
		srvs := make([]*Server, 0, len(d.srvs))
		for s := range d.srvs {
			srvs = append(srvs, s)
		}
		cl, pc := d.cl, d.pc
		d.mu.Unlock()
		for _, s := range srvs {
			s.shutdown()
		}
		if pc != nil {
			discarded += pc.close()
		}
		if cl != nil {
			drain(cl.l, func() int { return cl.retries.n })
			cl.cancel()
			cl.closeCalls()
			cl.l.close(func() {
				for _, dl := range cl.dealers {
					cl.l.removeReader(dl.s)
					if dl.mon != nil {
						cl.l.removeReader(dl.mon)
						_ = dl.mon.Close()
					}
					// Keep the socket's linger (zmq_linger): messages
					// already queued, such as a notification just sent,
					// still leave.
					_ = dl.s.Close()
				}
				discarded += cl.retries.failAll(ErrClosed)
				clear(cl.muxWaits)
				for id, ch := range cl.pending {
					delete(cl.pending, id)
					ch <- callResult{err: ErrClosed}
				}
			})
			cl.wg.Wait()
		}
		d.mu.Lock()
		z := d.zctx
		d.zctx = nil
		d.mu.Unlock()
		termContext(z)
		if discarded > 0 {
			d.log.Warn("driver: closed with queued messages not sent", "discarded", discarded)
		}
	})
	if discarded > 0 {
		return &DiscardedError{N: discarded}
	}
	return nil
}

// termContext terminates a zmq context whose sockets are closed: it waits,
// at most their linger (ForeverLinger for zmq_linger -1), for what they
// still hold to leave.
func termContext(z *zmq.Context) { _ = z.Term() }

// ---------------------------------------------------------------- server

// Request is one request a server received.
type Request struct {
	Type    MsgType
	MsgID   string
	Payload []byte
	s       *Server
	ident   []byte    // the client's identity: ROUTER-prepended (direct) or the reply id frame (proxy)
	arrived time.Time // when a CALL was read, with MinReplyDelay only
}

// Reply sends the reply payload of a CALL. It is a no-op for other types.
func (r *Request) Reply(payload []byte) error {
	if r.Type != Call {
		return nil
	}
	if !r.arrived.IsZero() {
		if wait := time.Until(r.arrived.Add(r.s.d.opts.MinReplyDelay)); wait > 0 {
			time.Sleep(wait) // bounded by MaxMinReplyDelay
		}
	}
	var frames [][]byte
	if r.s.proxied {
		frames = zmqwire.ProxyReply(r.ident, r.MsgID, payload)
	} else {
		frames = zmqwire.DirectReply(r.ident, r.MsgID, payload)
	}
	return r.s.l.do(func() {
		if r.s.sock == nil {
			return
		}
		if r.s.cache != nil {
			r.s.cache.setReply(r.MsgID, frames)
		}
		if err := sendMessage(r.s.sock, frames, zmq.DONTWAIT); err != nil {
			r.s.d.log.Warn("driver: reply not sent", "message_id", r.MsgID, "target", r.s.target.String(), "err", err)
			if obs := r.s.d.opts.Observer; obs != nil {
				obs.Dropped(Reply, "send_failed")
			}
		} else if obs := r.s.d.opts.Observer; obs != nil {
			obs.Sent(Reply)
		}
	})
}

// Handler serves one request on a worker goroutine.
type Handler func(r *Request)

// Server is a consumer registered in the matchmaker: a ROUTER bound on a
// port (direct modes) or a DEALER connected to every proxy backend (proxy
// mode), plus a SUB socket with use_pub_sub.
type Server struct {
	d        *ZMQ
	target   compat.Target
	addr     string // "<host>:<port>" (direct) or the DEALER identity (proxy)
	listener string // compat.Router or compat.Dealer
	proxied  bool
	l        *loop
	sock     *zmq.Socket // owned by l
	sub      *zmq.Socket // owned by l; nil without pub/sub
	cache    *ttlCache   // owned by l; nil without acks
	mem      *serverMemory
	conns    map[*zmq.Socket]map[string]bool
	keeper   *matchmaker.Keeper
	work     chan *Request
	wg       sync.WaitGroup
	stopRef  chan struct{}
	refDone  chan struct{}
	once     sync.Once
	stopping chan struct{} // closed when the shutdown begins
	done     chan struct{} // closed once the last worker left and the sockets are closed
}

// Listen starts a consumer of t. Direct modes bind a ROUTER on a random
// port of the range and register "<host>:<port>" as ROUTER/topic[/server];
// proxy mode connects a DEALER with identity "<host>/<key>/<uuid4>" to
// every ROUTERS record and registers that identity as DEALER/topic[/server];
// use_pub_sub adds a SUB socket subscribed to the topic on every publisher.
// Each request runs h on a bounded pool of workers.
func (d *ZMQ) Listen(ctx context.Context, t compat.Target, h Handler) (*Server, error) {
	d.mu.Lock()
	if d.zctx == nil {
		d.mu.Unlock()
		return nil, ErrClosed
	}
	d.mu.Unlock()
	s := &Server{d: d, target: t, work: make(chan *Request, d.opts.Workers), conns: map[*zmq.Socket]map[string]bool{},
		stopRef: make(chan struct{}), refDone: make(chan struct{}), stopping: make(chan struct{}), done: make(chan struct{})}
	var err error
	if d.opts.RouterProxy {
		err = s.openDealer()
	} else {
		err = s.openRouter()
	}
	if err == nil && d.opts.PubSub {
		err = s.openSub()
	}
	if err == nil {
		s.l, err = newLoop(d.zctx, "server-"+t.Topic, d.log, s.tick)
		if err == nil {
			s.l.onDrop = d.dropped
		}
	}
	if err != nil {
		if s.sock != nil {
			s.sock.Close()
		}
		if s.sub != nil {
			s.sub.Close()
		}
		s.releaseMem()
		return nil, err
	}
	for i := 0; i < d.opts.Workers; i++ {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for r := range s.work {
				h(r)
				if r.Type == Call {
					s.l.settle()
				}
			}
		}()
	}
	err = s.l.sync(func() {
		s.l.addReader(s.sock, s.onRequest)
		if s.sub != nil {
			s.l.addReader(s.sub, s.onPublished)
		}
	})
	if err != nil {
		close(s.refDone)
		s.shutdown()
		return nil, err
	}
	if s.proxied || s.sub != nil {
		mons := s.startMonitors()
		s.refresh(ctx)
		deadline := time.Now().Add(2 * time.Second)
		if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
			deadline = dl
		}
		for _, m := range mons {
			s.awaitHandshakes(m[0], m[1], deadline)
		}
		if s.sub != nil {
			// The subscription leaves right after the handshake and the
			// publisher applies it asynchronously: give it a moment, so a
			// fanout sent just after Listen returns is not lost to the
			// slow-joiner window of PUB/SUB.
			time.Sleep(20 * time.Millisecond)
		}
		go s.refresher()
	} else {
		close(s.refDone)
	}
	s.keeper, err = matchmaker.StartKeeper(context.WithoutCancel(ctx),
		func(ctx context.Context) error {
			return d.mm.Register(ctx, t, s.addr, s.listener, d.opts.TargetExpire)
		},
		func(ctx context.Context) error { return d.mm.Unregister(ctx, t, s.addr, s.listener) },
		d.opts.TargetUpdate, d.log)
	s.keeper.Follow(d.mm) // re-register as soon as the matchmaker is back
	if err != nil {
		d.log.Warn("driver: server not registered yet; the keeper retries", "target", t.String(), "addr", s.addr, "err", err)
	}
	d.mu.Lock()
	d.srvs[s] = true
	d.mu.Unlock()
	return s, nil
}

// startMonitors starts a handshake monitor on the proxy-mode DEALER and
// on the SUB socket, and returns [socket, monitor] pairs.
func (s *Server) startMonitors() [][2]*zmq.Socket {
	var mons [][2]*zmq.Socket
	for _, sock := range []*zmq.Socket{s.sock, s.sub} {
		var err error
		if sock == nil || (sock == s.sock && !s.proxied) {
			continue
		}
		var m *zmq.Socket
		// The socket now belongs to the loop: start the monitor there.
		if serr := s.l.sync(func() { m, err = s.watch(sock) }); serr != nil {
			err = serr
		}
		if err != nil {
			// Listen goes on without waiting for that socket's handshakes.
			s.d.log.Warn("driver: handshake monitor not started", "target", s.target.String(), "err", err)
			continue
		}
		mons = append(mons, [2]*zmq.Socket{sock, m})
	}
	return mons
}

// openRouter binds the direct-mode ROUTER on a random port of the range.
func (s *Server) openRouter() error {
	d := s.d
	sock, err := d.socket(zmq.ROUTER, zmqwire.NewUUID4())
	if err != nil {
		return err
	}
	port := 0
	tries := max(d.opts.BindRetries, 1)
	for i := 0; i < tries; i++ {
		p := d.opts.MinPort + rand.IntN(d.opts.MaxPort-d.opts.MinPort)
		if p > 65535 {
			continue
		}
		if err = sock.Bind(zmqwire.TCPBindAddress(d.opts.BindAddress, p)); err == nil {
			port = p
			break
		}
	}
	if port == 0 {
		sock.Close()
		return fmt.Errorf("driver: no free port in [%d, %d) on %s after %d tries: %v", d.opts.MinPort, d.opts.MaxPort, d.opts.BindAddress, tries, err)
	}
	if err := watchDisconnects(d.zctx, sock, "server-router", d.opts.MaxMessageSize, d.log, d.disconnectCounter("server-router")); err != nil {
		d.log.Warn("driver: cannot watch the ROUTER's connections", "err", err)
	}
	s.sock, s.addr, s.listener = sock, compat.HostPort(d.opts.Host, port), compat.Router
	return nil
}

// Addr is the advertised "<host>:<port>" (direct modes) or the DEALER
// identity (proxy mode).
func (s *Server) Addr() string { return s.addr }

func (s *Server) onRequest(frames [][]byte) {
	var in *zmqwire.Incoming
	var err error
	if s.proxied {
		in, err = zmqwire.ParseProxyServerRequest(frames)
	} else {
		in, err = zmqwire.ParseDirectRequest(frames)
	}
	if err != nil {
		var fe *FrameError
		id := ""
		if errors.As(err, &fe) {
			id = fe.MsgID
		}
		s.d.log.Warn("driver: dropping request", "target", s.target.String(), "message_id", id, "err", err)
		if obs := s.d.opts.Observer; obs != nil {
			obs.Dropped(0, "malformed")
		}
		return
	}
	if obs := s.d.opts.Observer; obs != nil {
		obs.Received(in.Type)
	}
	if s.cache != nil && !s.acked(in) {
		return
	}
	if in.Type == Call {
		s.l.expect() // its reply comes back soon, usually
	}
	// Blocks the loop when every worker is busy and the queue is full:
	// back-pressure to the senders through the socket's high-water mark.
	s.l.yield = true
	r := &Request{Type: in.Type, MsgID: in.MsgID, Payload: in.Payload, s: s, ident: in.Identity}
	if in.Type == Call && s.d.opts.MinReplyDelay > 0 {
		r.arrived = time.Now()
	}
	s.dispatch(r)
}

// dispatch hands r to a worker (loop only). It blocks while every worker
// is busy and the queue is full, unless the server is stopping: then r is
// dropped, so that a stop is never held by handlers that do not return.
func (s *Server) dispatch(r *Request) {
	select {
	case s.work <- r:
	case <-s.stopping:
		s.d.log.Warn("driver: server stopping; request dropped", "type", r.Type.String(), "message_id", r.MsgID, "target", s.target.String())
		if r.Type == Call {
			s.l.settle()
		}
		if obs := s.d.opts.Observer; obs != nil {
			obs.Dropped(r.Type, "stopping")
		}
	}
}

// Stop unregisters, stops taking requests, lets in-flight handlers finish
// and send their replies, then closes the sockets. It is bounded by ctx:
// when ctx ends first it returns ctx.Err(), and the handlers still running
// finish in the background; their replies are still sent (the sockets stay
// open until the last worker leaves, then they are closed and the server's
// goroutines end). Stop is idempotent.
func (s *Server) Stop(ctx context.Context) error {
	var err error
	if s.keeper != nil {
		err = s.keeper.Stop(ctx)
	}
	s.beginShutdown()
	select {
	case <-s.done:
		return err
	case <-ctx.Done():
		if err == nil || !errors.Is(err, ctx.Err()) {
			err = errors.Join(err, ctx.Err())
		}
		return err
	}
}

// shutdown stops the server without unregistering it and waits until it
// is released, however long its handlers take (ZMQ.Close).
func (s *Server) shutdown() {
	s.beginShutdown()
	<-s.done
}

// beginShutdown stops reading and lets the workers drain; the server is
// released (sockets closed, memory handed on, s.done closed) in the
// background once the last worker has left.
func (s *Server) beginShutdown() {
	s.once.Do(func() {
		if s.keeper != nil {
			s.keeper.Close()
		}
		close(s.stopping) // frees a loop blocked handing work to busy workers
		close(s.stopRef)
		<-s.refDone
		// Stop reading; after this no request is handed to the workers.
		_ = s.l.sync(func() {
			s.l.removeReader(s.sock)
			if s.sub != nil {
				s.l.removeReader(s.sub)
			}
		})
		close(s.work)
		go s.release()
	})
}

// release waits for the workers, flushes the replies and closes the
// sockets.
func (s *Server) release() {
	defer close(s.done)
	s.wg.Wait()
	s.l.close(func() {
		_ = s.sock.Close()
		s.sock = nil
		if s.sub != nil {
			_ = s.sub.Close()
			s.sub = nil
		}
	})
	s.d.mu.Lock()
	delete(s.d.srvs, s)
	s.d.mu.Unlock()
	s.releaseMem() // the socket is closed: the next server may take it
}
