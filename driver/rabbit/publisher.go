package rabbit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/goslo/goslo/envelope"
)

// ErrUndeliverable is a mandatory publish the broker returned (basic.return,
// e.g. 312 NO_ROUTE): Python's MessageUndeliverable
// (envelope.ErrMessageUndeliverable, goslo.ErrMessageUndeliverable).
var ErrUndeliverable = envelope.ErrMessageUndeliverable

// ReturnedError is a returned mandatory publish (its fields are those of
// oslo's MessageUndeliverable: the broker's reply, exchange and routing
// key).
type ReturnedError struct {
	Code       uint16
	Text       string
	Exchange   string
	RoutingKey string
}

func (e *ReturnedError) Error() string {
	return fmt.Sprintf("rabbit driver: message to exchange %q, routing key %q returned: %d %s", e.Exchange, e.RoutingKey, e.Code, e.Text)
}

// Is matches ErrUndeliverable.
func (e *ReturnedError) Is(t error) bool { return t == ErrUndeliverable }

// Pipelining bounds (§4, §11.2). A sending channel keeps up to
// maxInFlight publishes awaiting their confirm; the pool opens another
// sending connection (up to rpc_conn_pool_size) when every sender already
// has shareAt callers publishing on it.
const (
	maxInFlight = 256
	shareAt     = 32
)

// errNack is the broker's basic.nack of a publish on a channel that still
// stands.
var errNack = errors.New("rabbit driver: the broker refused the message (basic.nack)")

// sender is one pooled sending connection (§4): channel 1 in confirm mode
// (confirm.select right before its first publish), exchange declarations
// cached per channel. It is shared: several goroutines publish on it, each
// publish waiting for its own confirm while up to maxInFlight are
// outstanding on the channel (peers cannot tell the difference). The
// channel is used by one goroutine at a time for declaring and publishing
// (lock); confirms are awaited outside it. Mandatory publishes (replies)
// are one at a time per channel (mand), so a basic.return, which precedes
// the ack of its message, belongs to the one outstanding mandatory publish.
type sender struct {
	d   *dialer
	log *slog.Logger
	cur *hostCursor

	lock  chan struct{} // held to use the fields below and to publish
	mand  chan struct{} // held by the one mandatory publish in flight
	slots chan struct{} // publishes awaiting their confirm

	gen     uint64 // channel generation: bumped by each openChannel/drop
	conn    *amqp.Connection
	ch      *amqp.Channel
	confirm bool
	cache   PublishCache
	returns chan amqp.Return
	closed  chan *amqp.Error // connection closed
	chDone  chan *amqp.Error // channel closed
	gate    *blockGate

	users     int       // callers holding it (pool.mu)
	mandUsers int       // of which mandatory publishes (pool.mu)
	idle      time.Time // when users fell to 0 (pool.mu)
}

func newSender(d *dialer, log *slog.Logger) *sender {
	return &sender{d: d, log: log, cur: d.cursor(), gate: &blockGate{},
		lock: make(chan struct{}, 1), mand: make(chan struct{}, 1), slots: make(chan struct{}, maxInFlight)}
}

func acquire(ctx context.Context, c chan struct{}) error {
	select {
	case c <- struct{}{}:
		return nil
	default:
	}
	select {
	case c <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func release(c chan struct{}) { <-c }

// alive reports whether the connection and channel still stand.
func (s *sender) alive() bool {
	if s.conn == nil || s.ch == nil {
		return false
	}
	select {
	case <-s.closed:
		return false
	case <-s.chDone:
		return false
	default:
	}
	return !s.conn.IsClosed()
}

// ensure connects (reconnects) and opens the channel.
func (s *sender) ensure(ctx context.Context) error {
	if s.alive() {
		return nil
	}
	if s.conn == nil || s.conn.IsClosed() {
		s.drop()
		c, err := s.d.connect(ctx, s.cur, "send")
		if err != nil {
			return err
		}
		s.conn = c
		s.closed = c.NotifyClose(make(chan *amqp.Error, 1))
		bl := c.NotifyBlocked(make(chan amqp.Blocking, 4))
		gate := &blockGate{}
		s.gate = gate
		go func() {
			for b := range bl {
				gate.set(b)
				if b.Active {
					s.log.Warn("rabbit driver: connection blocked by the broker", "reason", b.Reason)
				} else {
					s.log.Info("rabbit driver: connection unblocked by the broker")
				}
			}
			gate.clear()
		}()
	}
	return s.openChannel()
}

// openChannel replaces the channel. Publishes still awaiting a confirm on
// the old one see it closed (nack) and are published again by their retry
// loop.
func (s *sender) openChannel() error {
	if old := s.ch; old != nil {
		// channel.close waits for close-ok, which a blocked connection
		// never sends: do not wait for it here (it ends with the
		// connection at the latest).
		go func() { _ = old.Close() }()
	}
	s.gen++
	s.ch, s.confirm, s.cache = nil, false, PublishCache{}
	ch, err := s.conn.Channel()
	if err != nil {
		return err
	}
	s.ch = ch
	s.chDone = ch.NotifyClose(make(chan *amqp.Error, 1))
	s.returns = ch.NotifyReturn(make(chan amqp.Return, 16))
	return nil
}

// drop closes the connection (if any); the next ensure reconnects.
func (s *sender) drop() {
	if s.conn != nil {
		closeConn(s.conn)
	}
	s.gen++
	s.conn, s.ch, s.confirm, s.cache = nil, nil, false, PublishCache{}
}

// dropLocked drops the connection, waiting for the publishers' lock.
func (s *sender) dropLocked() {
	s.lock <- struct{}{}
	defer release(s.lock)
	s.drop()
}

// recover replaces the channel (or the connection) after a publish on
// channel generation gen failed, unless another publisher already did.
func (s *sender) recover(ctx context.Context, gen uint64) {
	if acquire(ctx, s.lock) != nil {
		return
	}
	defer release(s.lock)
	if s.gen == gen {
		s.openChannelOrDrop()
	}
}

// publishOnce declares what is due, publishes and waits for the broker's
// confirm of this publish (others may be in flight on the channel). It
// returns a *ReturnedError when a mandatory publish came back, errNack for
// a basic.nack, and the channel generation the publish used.
func (s *sender) publishOnce(ctx context.Context, p Publication, msg amqp.Publishing) (gen uint64, err error) {
	if p.Mandatory {
		if err := acquire(ctx, s.mand); err != nil {
			return 0, err
		}
	}
	mandHeld := p.Mandatory
	defer func() {
		if mandHeld {
			release(s.mand)
		}
	}()
	if err := acquire(ctx, s.slots); err != nil {
		return 0, err
	}
	slotHeld := true
	defer func() {
		if slotHeld {
			release(s.slots)
		}
	}()
	if err := acquire(ctx, s.lock); err != nil {
		return 0, err
	}
	dc, returns, chDone, gen, err := s.publishLocked(ctx, p, msg)
	release(s.lock)
	if err != nil {
		return gen, err
	}
	select {
	case <-dc.Done():
	case <-ctx.Done():
		// The confirm may still come: keep its slot, and the channel's
		// mandatory turn (a return may precede it), until it does or
		// the channel closes.
		slotHeld, mandHeld = false, false
		go func() {
			<-dc.Done()
			if p.Mandatory {
				drainReturns(returns)
				release(s.mand)
			}
			release(s.slots)
		}()
		return gen, ctx.Err()
	}
	if !dc.Acked() {
		// The delivery tag is acked or nacked once; a closed channel
		// nacks what it had in flight.
		select {
		case <-chDone:
			return gen, errors.New("rabbit driver: channel closed before the publish was confirmed")
		default:
		}
		return gen, errNack
	}
	if p.Mandatory {
		select {
		case r, ok := <-returns:
			if ok {
				return gen, &ReturnedError{Code: r.ReplyCode, Text: r.ReplyText, Exchange: r.Exchange, RoutingKey: r.RoutingKey}
			}
		default:
		}
	}
	return gen, nil
}

func drainReturns(c chan amqp.Return) {
	for {
		select {
		case _, ok := <-c:
			if !ok {
				return
			}
		default:
			return
		}
	}
}

// publishLocked (s.lock held) connects, declares and publishes.
func (s *sender) publishLocked(ctx context.Context, p Publication, msg amqp.Publishing) (dc *amqp.DeferredConfirmation, returns chan amqp.Return, chDone chan *amqp.Error, gen uint64, err error) {
	if err := s.ensure(ctx); err != nil {
		return nil, nil, nil, s.gen, err
	}
	if err := s.gate.wait(ctx, s.log); err != nil {
		return nil, nil, nil, s.gen, err
	}
	for _, c := range s.cache.Due(p) {
		err := declare(s.ch, c)
		if err != nil && isDurableMismatch(err) && c.Exchange != nil {
			// §10.2: publishers re-declare the exchange non-durable.
			s.log.Warn("rabbit driver: exchange exists with the other durable flag; declaring it non-durable", "exchange", c.Exchange.Name, "err", err)
			if err = s.openChannel(); err == nil {
				err = declare(s.ch, nondurable(c))
			}
		}
		if err != nil {
			s.cache = PublishCache{}
			return nil, nil, nil, s.gen, err
		}
	}
	if !s.confirm {
		if err := s.ch.Confirm(false); err != nil {
			return nil, nil, nil, s.gen, err
		}
		s.confirm = true
	}
	if p.Mandatory {
		drainReturns(s.returns) // stale returns of an earlier publish
	}
	dc, err = s.ch.PublishWithDeferredConfirmWithContext(ctx, p.Exchange, p.RoutingKey, p.Mandatory, false, msg)
	if err != nil {
		return nil, nil, nil, s.gen, err
	}
	return dc, s.returns, s.chDone, s.gen, nil
}

// pool is the transport's pool of sending connections (§4): up to
// rpc_conn_pool_size senders, created on demand and shared by the callers
// (shareAt each before another is opened); ones nobody uses beyond
// conn_pool_min_size are closed after conn_pool_ttl.
type pool struct {
	d   *dialer
	log *slog.Logger

	mu     sync.Mutex
	all    []*sender
	max    int
	min    int
	ttl    time.Duration
	closed bool
}

func newPool(d *dialer, log *slog.Logger) *pool {
	max := d.opts.RPCConnPoolSize
	if max <= 0 {
		max = 30
	}
	return &pool{d: d, log: log, max: max, min: d.opts.ConnPoolMinSize, ttl: time.Duration(d.opts.ConnPoolTTL) * time.Second}
}

// get hands out the least used sender, opening another while all have
// shareAt callers and the pool is below rpc_conn_pool_size. A mandatory
// publish (one at a time per channel) prefers a sender without one, and
// opens another rather than wait behind one, as the unshared pool did.
func (p *pool) get(_ context.Context, mandatory bool) (*sender, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	var best *sender
	for _, s := range p.all {
		if best == nil || (mandatory && s.mandUsers < best.mandUsers) ||
			((!mandatory || s.mandUsers == best.mandUsers) && s.users < best.users) {
			best = s
		}
	}
	full := best == nil || best.users >= shareAt || (mandatory && best.mandUsers > 0)
	if full && len(p.all) < p.max {
		best = newSender(p.d, p.log)
		p.all = append(p.all, best)
	}
	best.users++
	if mandatory {
		best.mandUsers++
	}
	return best, nil
}

func (p *pool) put(s *sender, mandatory bool) {
	now := time.Now()
	p.mu.Lock()
	s.users--
	if mandatory {
		s.mandUsers--
	}
	if s.users == 0 {
		s.idle = now
	}
	var expired []*sender
	if p.closed {
		if s.users == 0 {
			expired = append(expired, s)
		}
	} else if p.ttl > 0 {
		// Expire senders unused longer than conn_pool_ttl, keeping the minimum.
		kept := p.all[:0]
		n := len(p.all)
		for _, e := range p.all {
			if n > p.min && e.users == 0 && now.Sub(e.idle) > p.ttl {
				expired = append(expired, e)
				n--
				continue
			}
			kept = append(kept, e)
		}
		clear(p.all[len(kept):])
		p.all = kept
	}
	p.mu.Unlock()
	for _, e := range expired {
		e.dropLocked()
	}
}

func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	var idle []*sender
	for _, s := range p.all {
		if s.users == 0 {
			idle = append(idle, s)
		}
	}
	p.mu.Unlock()
	for _, s := range idle {
		s.dropLocked()
	}
}

// publish sends one message on a pooled sender, retrying connection and
// channel failures until ctx ends (kombu's autoretry, §11.3): a publish
// whose confirm did not come is published again (at least once). With a
// retry bound on ctx (withRetry) it gives up with a *DeliveryFailureError
// after that many retries. A
// returned mandatory message is not retried here: it comes back as a
// *ReturnedError.
func (p *pool) publish(ctx context.Context, pub Publication, msg amqp.Publishing) error {
	s, err := p.get(ctx, pub.Mandatory)
	if err != nil {
		return err
	}
	defer p.put(s, pub.Mandatory)
	var last error
	for attempt := 0; ; attempt++ {
		gen, err := s.publishOnce(ctx, pub, msg)
		if err == nil {
			return nil
		}
		var re *ReturnedError
		if errors.As(err, &re) {
			return err
		}
		if ctx.Err() != nil {
			if last == nil {
				last = err
			}
			return fmt.Errorf("rabbit driver: publish to %q/%q: %w (last error: %v)", pub.Exchange, pub.RoutingKey, ctx.Err(), last)
		}
		last = err
		if n, bounded := retryBound(ctx); bounded && attempt >= n {
			p.log.Error("rabbit driver: publish failed; retries exhausted", "exchange", pub.Exchange, "routing_key", pub.RoutingKey, "retry", n, "err", err)
			return &DeliveryFailureError{Exchange: pub.Exchange, RoutingKey: pub.RoutingKey, Retry: n, Err: err}
		}
		p.log.Warn("rabbit driver: publish failed, retrying", "exchange", pub.Exchange, "routing_key", pub.RoutingKey, "attempt", attempt+1, "err", err)
		// A nack too: a channel may keep routing to a queue that is gone
		// (a cluster node lost); a new one routes afresh. Publishes in
		// flight on the old channel are published again by their callers.
		s.recover(ctx, gen)
		if err := sleepCtx(ctx, p.d.backoff(attempt)); err != nil {
			return fmt.Errorf("rabbit driver: publish to %q/%q: %w (last error: %v)", pub.Exchange, pub.RoutingKey, err, last)
		}
	}
}

// openChannelOrDrop (s.lock held) replaces a failed channel, or the whole
// connection when that fails too.
func (s *sender) openChannelOrDrop() {
	if s.conn == nil || s.conn.IsClosed() {
		s.drop()
		return
	}
	if err := s.openChannel(); err != nil {
		s.drop()
	}
}
