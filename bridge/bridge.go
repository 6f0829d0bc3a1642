package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/envelope"
)

// Side is one of the two buses a bridge joins.
type Side struct {
	// Name names the side in logs and metrics ("zmq", "rabbit", ...).
	Name string
	// Driver is the bus.
	Driver driver.Driver
	// Registry finds the bus's servers and marks the bridge's mirrors.
	Registry Registry
	// ListenContext, when set, adjusts the context a mirror of (topic,
	// server) is started with (SideFor: a stable port on zmq).
	ListenContext func(ctx context.Context, topic, server string) context.Context
}

// Priorities are the notification priorities a bridge forwards, as oslo's
// listeners subscribe to them.
var Priorities = []string{"audit", "critical", "debug", "error", "info", "sample", "warn"}

// Config is a bridge's configuration.
type Config struct {
	A, B Side
	// Topics are the RPC topics bridged.
	Topics []string
	// Notifications are the notification topics bridged, every priority.
	Notifications []string
	// Exchange is the target exchange of mirrors and forwarded messages
	// ("": the control exchange).
	Exchange string
	// Pool names the notification pools the bridge listens as, one per
	// topic (PoolQueue: on RabbitMQ, its own queue "<pool>.<topic>",
	// bound to every priority; zmq has no pools). Default "goslo-bridge".
	Pool string
	// DiscoverEvery is the period of discovery (default 5 s).
	DiscoverEvery time.Duration
	// CallTimeout bounds a forwarded CALL whose caller's deadline is not
	// on the wire (zmq 8.1.4 carries none). Default 60 s
	// (rpc_response_timeout).
	CallTimeout time.Duration
	// Lease, when set, lets only one bridge of a group work at a time.
	Lease Lease
	// Observer counts; nil counts nothing.
	Observer Observer
	Logger   *slog.Logger
}

// Bridge joins two buses. See the package doc.
type Bridge struct {
	cfg   Config
	sides [2]*side
	log   *slog.Logger
	obs   Observer
	echo  *echoCache

	mu      sync.Mutex
	mirrors map[mirrorKey]*mirror
	seen    map[mirrorKey]int // rounds in a row a mirror was wanted
	leading atomic.Bool       // holds the lease
	cancel  context.CancelFunc
	done    chan struct{}
}

type side struct {
	Side
	idx int
}

type mirrorKey struct {
	on     int // the side the mirror listens on
	topic  string
	server string
}

type mirror struct {
	key     mirrorKey
	srv     driver.Server
	release func(context.Context)
}

// New checks cfg and builds a bridge; Start runs it.
func New(cfg Config) (*Bridge, error) {
	if cfg.A.Driver == nil || cfg.B.Driver == nil {
		return nil, errors.New("bridge: both sides need a driver")
	}
	if cfg.A.Registry == nil || cfg.B.Registry == nil {
		return nil, errors.New("bridge: both sides need a registry")
	}
	if len(cfg.Topics) == 0 && len(cfg.Notifications) == 0 {
		return nil, errors.New("bridge: no topic and no notification topic to bridge")
	}
	if cfg.A.Name == "" {
		cfg.A.Name = "a"
	}
	if cfg.B.Name == "" {
		cfg.B.Name = "b"
	}
	if cfg.A.Name == cfg.B.Name {
		return nil, fmt.Errorf("bridge: both sides are named %q", cfg.A.Name)
	}
	if cfg.Pool == "" {
		cfg.Pool = "goslo-bridge"
	}
	if cfg.DiscoverEvery <= 0 {
		cfg.DiscoverEvery = 5 * time.Second
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	b := &Bridge{cfg: cfg, log: cfg.Logger, obs: cfg.Observer, echo: newEchoCache(10 * time.Minute), mirrors: map[mirrorKey]*mirror{}, seen: map[mirrorKey]int{}}
	if b.obs == nil {
		b.obs = nopObserver{}
	}
	b.sides[0] = &side{Side: cfg.A, idx: 0}
	b.sides[1] = &side{Side: cfg.B, idx: 1}
	return b, nil
}

func (b *Bridge) other(s *side) *side { return b.sides[1-s.idx] }

func direction(from, to *side) string { return from.Name + "->" + to.Name }

// Start runs the bridge in the background: it takes the lease (when
// configured), then discovers and mirrors every DiscoverEvery and forwards
// notifications, until Stop.
func (b *Bridge) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done != nil {
		return errors.New("bridge: already started")
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.cancel, b.done = cancel, make(chan struct{})
	go b.run(rctx)
	return nil
}

// Stop stops discovering, stops every mirror and listener (in-flight
// forwards finish and reply, bounded by ctx) and gives up the lease. The
// drivers are the caller's to close.
func (b *Bridge) Stop(ctx context.Context) error {
	b.mu.Lock()
	cancel, done := b.cancel, b.done
	b.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Active reports whether the bridge holds the lease: it forwards fanouts
// and notifications (every bridge forwards calls and casts).
func (b *Bridge) Active() bool { return b.leading.Load() }

// Mirrors lists the running mirrors as "<side>:<topic>.<server>", sorted.
func (b *Bridge) Mirrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for k := range b.mirrors {
		out = append(out, b.sides[k.on].Name+":"+k.topic+"."+k.server)
	}
	slices.Sort(out)
	return out
}

func (b *Bridge) run(ctx context.Context) {
	defer close(b.done)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		b.mirrorLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		b.leaseLoop(ctx)
	}()
	wg.Wait()
}

// mirrorLoop runs discovery rounds until ctx ends, then stops every
// mirror (in-flight forwards finish, bounded by CallTimeout).
func (b *Bridge) mirrorLoop(ctx context.Context) {
	tk := time.NewTicker(b.cfg.DiscoverEvery)
	defer tk.Stop()
	for ctx.Err() == nil {
		b.reconcile(ctx)
		select {
		case <-tk.C:
		case <-ctx.Done():
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), b.cfg.CallTimeout+5*time.Second)
	defer cancel()
	b.mu.Lock()
	var ms []*mirror
	for _, m := range b.mirrors {
		ms = append(ms, m)
	}
	b.mirrors = map[mirrorKey]*mirror{}
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.stopMirror(sctx, m)
		}()
	}
	wg.Wait()
	b.reportMirrors()
}

// leaseLoop takes the lease (at once without one), then forwards fanouts
// and notifications until the lease is lost or ctx ends, and again.
func (b *Bridge) leaseLoop(ctx context.Context) {
	for ctx.Err() == nil {
		var lost <-chan struct{}
		release := func() {}
		if b.cfg.Lease != nil {
			l, r, err := b.cfg.Lease.Acquire(ctx)
			if err != nil {
				if ctx.Err() == nil {
					b.log.Warn("bridge: cannot take the lease; retrying", "err", err)
					sleepCtx(ctx, time.Second)
				}
				continue
			}
			lost, release = l, r
			b.log.Info("bridge: lease taken; forwarding fanouts and notifications")
		}
		b.lead(ctx, lost)
		release()
	}
}

// lead is the lease holder's part: notification listeners, and fanouts
// forwarded, until ctx ends or the lease is lost.
func (b *Bridge) lead(ctx context.Context, lost <-chan struct{}) {
	var listeners []driver.Server
	for _, topic := range b.cfg.Notifications {
		for _, s := range b.sides {
			l, err := b.listenNotifications(ctx, s, topic)
			if err != nil {
				b.log.Error("bridge: cannot listen to notifications", "side", s.Name, "topic", topic, "err", err)
				continue
			}
			listeners = append(listeners, l)
		}
	}
	b.leading.Store(true)
	select {
	case <-lost:
		b.log.Warn("bridge: lease lost; another bridge of the group forwards fanouts and notifications now")
	case <-ctx.Done():
	}
	b.leading.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), b.cfg.CallTimeout+5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Stop(sctx); err != nil {
				b.log.Warn("bridge: notification listener stop", "err", err)
			}
		}()
	}
	wg.Wait()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// reconcile is one discovery round: for each topic, the servers real on
// one side and not the other get a mirror there; mirrors of servers gone
// (or now real on both sides) stop.
func (b *Bridge) reconcile(ctx context.Context) {
	want := map[mirrorKey]bool{}
	skip := map[string]bool{}
	for _, topic := range b.cfg.Topics {
		dctx, cancel := context.WithTimeout(ctx, b.cfg.DiscoverEvery+5*time.Second)
		var real [2][]string
		var err error
		for i, s := range b.sides {
			if real[i], err = s.Registry.Servers(dctx, topic); err != nil {
				b.log.Warn("bridge: discovery failed; keeping the topic's mirrors", "side", s.Name, "topic", topic, "err", err)
				break
			}
		}
		cancel()
		if err != nil {
			skip[topic] = true
			continue
		}
		for i := range b.sides {
			for _, srv := range real[i] {
				if !slices.Contains(real[1-i], srv) && !claims(b.sides[1-i].Registry, topic, srv) {
					want[mirrorKey{on: 1 - i, topic: topic, server: srv}] = true
				}
			}
		}
	}
	if ctx.Err() != nil {
		return
	}
	b.mu.Lock()
	var stale []*mirror
	for k, m := range b.mirrors {
		if !want[k] && !skip[k.topic] {
			stale = append(stale, m)
			delete(b.mirrors, k)
		}
	}
	// A server is mirrored once seen in two rounds in a row: a mirror
	// another bridge has just started is briefly registered without its
	// marker, and must not be taken for a server.
	for k := range b.seen {
		if !want[k] && !skip[k.topic] {
			delete(b.seen, k)
		}
	}
	var missing []mirrorKey
	for k := range want {
		if b.seen[k]++; b.seen[k] >= 2 && b.mirrors[k] == nil {
			missing = append(missing, k)
		}
	}
	b.mu.Unlock()
	for _, m := range stale {
		sctx, cancel := context.WithTimeout(context.Background(), b.cfg.CallTimeout+5*time.Second)
		b.stopMirror(sctx, m)
		cancel()
	}
	for _, k := range missing {
		m, err := b.startMirror(ctx, k)
		if err != nil {
			b.log.Warn("bridge: cannot start a mirror; retrying next round", "side", b.sides[k.on].Name, "topic", k.topic, "server", k.server, "err", err)
			continue
		}
		b.mu.Lock()
		b.mirrors[k] = m
		b.mu.Unlock()
	}
	if len(stale) > 0 || len(missing) > 0 {
		b.reportMirrors()
	}
}

func (b *Bridge) reportMirrors() {
	b.mu.Lock()
	var n [2]int
	for k := range b.mirrors {
		n[k.on]++
	}
	b.mu.Unlock()
	for i, s := range b.sides {
		b.obs.Mirrors(s.Name, n[i])
	}
}

func (b *Bridge) target(topic, server string) compat.Target {
	return compat.Target{Topic: topic, Server: server, Exchange: b.cfg.Exchange}
}

// startMirror listens on side k.on as server k.server of k.topic, which
// lives on the other side.
func (b *Bridge) startMirror(ctx context.Context, k mirrorKey) (*mirror, error) {
	on := b.sides[k.on]
	to := b.other(on)
	lctx := ctx
	if on.ListenContext != nil {
		lctx = on.ListenContext(ctx, k.topic, k.server)
	}
	srv, err := on.Driver.Listen(lctx, b.target(k.topic, k.server), func(hctx context.Context, r *driver.Request) error {
		return b.forwardRPC(hctx, on, to, k.topic, k.server, r)
	})
	if err != nil {
		return nil, err
	}
	m := &mirror{key: k, srv: srv}
	m.release = on.Registry.Mirrored(ctx, k.topic, k.server, srv)
	b.log.Info("bridge: serving", "side", on.Name, "topic", k.topic, "server", k.server, "for", to.Name, "addr", srv.Addr())
	return m, nil
}

func (b *Bridge) stopMirror(ctx context.Context, m *mirror) {
	on := b.sides[m.key.on]
	if err := m.srv.Stop(ctx); err != nil {
		b.log.Warn("bridge: mirror stop", "side", on.Name, "topic", m.key.topic, "server", m.key.server, "err", err)
	}
	m.release(ctx)
	b.log.Info("bridge: mirror stopped", "side", on.Name, "topic", m.key.topic, "server", m.key.server)
}

// forwardRPC carries one request taken by a mirror on side from to the
// server it mirrors on side to: a CALL with the caller's remaining time,
// answered with the reply or the failure as it came; a CAST to the
// server; a fanout as a CAST to the server (each mirror stands for one
// server, so every server gets a fanout once).
func (b *Bridge) forwardRPC(ctx context.Context, from, to *side, topic, server string, r *driver.Request) error {
	dir := direction(from, to)
	body, ok := r.Body.(*envelope.Map)
	if !ok {
		b.obs.Failed(dir, topic, r.Kind, "malformed")
		b.log.Warn("bridge: dropping a request whose message is not a dict", "direction", dir, "topic", topic, "in_id", r.MsgID, "type", fmt.Sprintf("%T", r.Body))
		if r.Kind == driver.KindCall {
			_ = r.Reply(nil, &envelope.RemoteError{Class: "ValueError", Module: "builtins", Message: "goslo bridge: the message is not a dict"})
		}
		return nil
	}
	rctx, err := driver.ContextDict(r.Context)
	if err != nil {
		b.obs.Failed(dir, topic, r.Kind, "malformed")
		b.log.Warn("bridge: dropping a request whose context is not a dict", "direction", dir, "topic", topic, "in_id", r.MsgID, "err", err)
		if r.Kind == driver.KindCall {
			_ = r.Reply(nil, &envelope.RemoteError{Class: "ValueError", Module: "builtins", Message: "goslo bridge: the context is not a dict"})
		}
		return nil
	}
	msg := driver.Message{Context: rctx, Body: body}
	if r.Kind == driver.KindFanout && !b.leading.Load() {
		// Every bridge of the group has a mirror here; the lease holder's
		// forwards the fanout.
		b.log.Debug("bridge: fanout left to the lease holder", "direction", dir, "topic", topic, "server", server, "in_id", r.MsgID)
		return nil
	}
	t := b.target(topic, server)
	method, _ := body.Get("method")
	b.obs.InFlight(dir, topic, 1)
	defer b.obs.InFlight(dir, topic, -1)
	start := time.Now()
	if r.Kind != driver.KindCall {
		cctx, cancel := context.WithTimeout(ctx, b.cfg.CallTimeout)
		defer cancel()
		var outID string
		err := to.Driver.Cast(driver.WithSentID(cctx, func(id string) { outID = id }), t, msg)
		if err != nil {
			b.obs.Failed(dir, topic, r.Kind, failReason(err))
			b.log.Warn("bridge: forward failed", "direction", dir, "kind", r.Kind.String(), "topic", topic, "server", server, "method", method, "in_id", r.MsgID, "err", err)
			return nil
		}
		b.obs.Forwarded(dir, topic, r.Kind)
		b.log.Debug("bridge: forwarded", "direction", dir, "kind", r.Kind.String(), "topic", topic, "server", server, "method", method, "in_id", r.MsgID, "out_id", outID)
		return nil
	}
	deadline := r.Deadline
	if deadline.IsZero() {
		deadline = start.Add(b.cfg.CallTimeout)
	}
	cctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var outID string
	res, err := to.Driver.Call(driver.WithSentID(cctx, func(id string) { outID = id }), t, msg)
	var remote *envelope.RemoteError
	switch {
	case err == nil || errors.As(err, &remote):
		if rerr := r.Reply(res, err); rerr != nil {
			b.obs.Failed(dir, topic, r.Kind, "reply_failed")
			b.log.Warn("bridge: reply not sent back", "direction", dir, "topic", topic, "server", server, "method", method, "in_id", r.MsgID, "out_id", outID, "err", rerr)
			return nil
		}
		b.obs.Forwarded(dir, topic, r.Kind)
		if remote != nil {
			b.log.Debug("bridge: forwarded a failure", "direction", dir, "topic", topic, "server", server, "method", method, "in_id", r.MsgID, "out_id", outID, "class", remote.Class, "module", remote.Module)
		} else {
			b.log.Debug("bridge: forwarded", "direction", dir, "kind", "call", "topic", topic, "server", server, "method", method, "in_id", r.MsgID, "out_id", outID, "took", time.Since(start))
		}
	case errors.Is(err, envelope.ErrMessagingTimeout) || errors.Is(err, context.DeadlineExceeded):
		// The caller's time is up too: no reply (it would be dropped).
		b.obs.Failed(dir, topic, r.Kind, "timeout")
		b.log.Warn("bridge: forwarded call timed out", "direction", dir, "topic", topic, "server", server, "method", method, "in_id", r.MsgID, "out_id", outID, "after", time.Since(start))
	default:
		b.obs.Failed(dir, topic, r.Kind, failReason(err))
		b.log.Warn("bridge: forward failed", "direction", dir, "kind", "call", "topic", topic, "server", server, "method", method, "in_id", r.MsgID, "out_id", outID, "err", err)
		_ = r.Reply(nil, &envelope.RemoteError{Class: "MessageDeliveryFailure", Module: "oslo_messaging.exceptions",
			Message: "goslo bridge: " + err.Error()})
	}
	return nil
}

// claims reports whether a registry names server as its own (a
// StaticRegistry's list): such a name is never mirrored onto that bus.
func claims(r Registry, topic, server string) bool {
	c, ok := r.(interface {
		Listed(topic, server string) bool
	})
	return ok && c.Listed(topic, server)
}

func failReason(err error) string {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, envelope.ErrMessagingTimeout) {
		return "timeout"
	}
	return "send_failed"
}

// listenNotifications listens on s, as the bridge's pool, to every
// priority of the notification topic.
func (b *Bridge) listenNotifications(ctx context.Context, s *side, topic string) (driver.Server, error) {
	var targets []compat.Target
	for _, p := range Priorities {
		targets = append(targets, compat.Target{Topic: compat.NotificationTopic(topic, p), Exchange: b.cfg.Exchange})
	}
	to := b.other(s)
	pool := PoolQueue(b.cfg.Pool, topic)
	l, err := s.Driver.ListenNotifications(ctx, targets, driver.ListenOptions{Pool: pool}, func(hctx context.Context, r *driver.Request) error {
		return b.forwardNotification(hctx, s, to, topic, r)
	})
	if err != nil {
		return nil, err
	}
	b.log.Info("bridge: listening to notifications", "side", s.Name, "topic", topic, "pool", pool)
	return l, nil
}

// PoolQueue is the bridge's notification pool for a topic, which is on
// RabbitMQ the name of the queue it reads: "<pool>.<topic>". One per
// topic, so that a notification's topic is known by where it came from.
func PoolQueue(pool, topic string) string { return pool + "." + topic }

// forwardNotification sends a notification taken on from to the same
// topic and priority on to, unless it is one the bridge sent there itself
// (its own listener hears it again: an echo).
func (b *Bridge) forwardNotification(ctx context.Context, from, to *side, base string, r *driver.Request) error {
	body, ok := r.Body.(*envelope.Map)
	dir := direction(from, to)
	if !ok {
		b.obs.Failed(dir, base, driver.KindNotification, "malformed")
		return nil
	}
	id := notificationID(body)
	if b.echo.take(from.idx, id) {
		return nil // the bridge's own
	}
	prio := ""
	if v, ok := body.Get("priority"); ok {
		prio, _ = v.(string)
	}
	if prio == "" {
		b.obs.Failed(dir, base, driver.KindNotification, "malformed")
		b.log.Warn("bridge: dropping a notification without a priority", "direction", dir, "topic", base, "message_id", id)
		return nil
	}
	rctx, err := driver.ContextDict(r.Context)
	if err != nil {
		b.obs.Failed(dir, base, driver.KindNotification, "malformed")
		return nil
	}
	b.obs.InFlight(dir, base, 1)
	defer b.obs.InFlight(dir, base, -1)
	b.echo.put(to.idx, id)
	nctx, cancel := context.WithTimeout(ctx, b.cfg.CallTimeout)
	defer cancel()
	t := compat.Target{Topic: compat.NotificationTopic(base, prio), Exchange: b.cfg.Exchange}
	if err := to.Driver.Notify(nctx, t, driver.Message{Context: rctx, Body: body}); err != nil {
		b.echo.take(to.idx, id)
		b.obs.Failed(dir, base, driver.KindNotification, failReason(err))
		b.log.Warn("bridge: notification not forwarded", "direction", dir, "topic", t.Topic, "message_id", id, "err", err)
		return nil
	}
	b.obs.Forwarded(dir, base, driver.KindNotification)
	b.log.Debug("bridge: forwarded", "direction", dir, "kind", "notification", "topic", t.Topic, "message_id", id)
	return nil
}

// notificationID is the notification's message_id (oslo sets a uuid4).
func notificationID(m *envelope.Map) string {
	if v, ok := m.Get("message_id"); ok {
		if s, ok := v.(string); ok {
			return s
		}
	}
	return ""
}

// echoCache remembers the notifications the bridge sent to each side, to
// drop them when its own listener there hears them.
type echoCache struct {
	ttl  time.Duration
	mu   sync.Mutex
	sent [2]map[string]time.Time
	n    int
}

func newEchoCache(ttl time.Duration) *echoCache {
	return &echoCache{ttl: ttl, sent: [2]map[string]time.Time{{}, {}}}
}

func (c *echoCache) put(side int, id string) {
	if id == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.sent[side][id] = now.Add(c.ttl)
	if c.n++; c.n%1024 == 0 {
		for _, m := range c.sent {
			for k, until := range m {
				if now.After(until) {
					delete(m, k)
				}
			}
		}
	}
}

func (c *echoCache) take(side int, id string) bool {
	if id == "" {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.sent[side][id]
	if ok {
		delete(c.sent[side], id)
	}
	return ok && time.Now().Before(until)
}
