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

// errChannelClosed is a publish whose channel closed before its confirm
// came: often another publisher's recovery replacing the channel after a
// nack, so it does not hide an earlier nack of the same message.
var errChannelClosed = errors.New("rabbit driver: channel closed before the publish was confirmed")

// sender is one pooled sending connection (§4): channel 1 in confirm mode
// (confirm.select right before its first publish), exchange declarations
// cached per channel. It is shared: several goroutines publish on it, each
// publish waiting for its own confirm while up to maxInFlight are
// outstanding on the channel (peers cannot tell the difference). The
// channel is used by one goroutine at a time for declaring and publishing
// (lock); confirms are awaited outside it. Mandatory publishes (replies,
// at_least_once) are pipelined too: the channel's returnBook matches each
// basic.return to its publish.
type sender struct {
	d   *dialer
	log *slog.Logger
	cur *hostCursor

	lock  chan struct{} // held to use the fields below and to publish
	slots chan struct{} // publishes awaiting their confirm

	gen     uint64 // channel generation: bumped by each openChannel/drop
	conn    *amqp.Connection
	ch      *amqp.Channel
	confirm bool
	cache   PublishCache
	returns *returnBook
	closed  chan *amqp.Error // connection closed
	chDone  chan *amqp.Error // channel closed
	gate    *blockGate

	users int       // callers holding it (pool.mu)
	idle  time.Time // when users fell to 0 (pool.mu)
}

func newSender(d *dialer, log *slog.Logger) *sender {
	return &sender{d: d, log: log, cur: d.cursor(), gate: &blockGate{},
		lock: make(chan struct{}, 1), slots: make(chan struct{}, maxInFlight)}
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
	s.returns = newReturnBook(ch)
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
		// The confirm may still come: keep its slot until it does or
		// the channel closes, then forget its return, if any.
		slotHeld = false
		go func() {
			<-dc.Done()
			if p.Mandatory {
				returns.take(p.Exchange, p.RoutingKey, msg.Body)
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
			return gen, errChannelClosed
		default:
		}
		return gen, errNack
	}
	if p.Mandatory {
		if r, ok := returns.take(p.Exchange, p.RoutingKey, msg.Body); ok {
			return gen, &ReturnedError{Code: r.ReplyCode, Text: r.ReplyText, Exchange: r.Exchange, RoutingKey: r.RoutingKey}
		}
	}
	return gen, nil
}

// returnBook matches the basic.returns of one channel to its mandatory
// publishes, several of which may await their confirm at once. The broker
// sends a message's basic.return before its basic.ack, and amqp091-go's
// reader puts the return on c before it completes the confirm; so once a
// publish is confirmed, its return (if any) is in c or already in m, moved
// there by another publisher's take. c holds more than the publishes that
// can be in flight, so the reader never blocks on it.
type returnBook struct {
	c  chan amqp.Return
	mu sync.Mutex
	m  map[string]amqp.Return // by returnKey, until their publisher takes them
}

func newReturnBook(ch *amqp.Channel) *returnBook {
	b := &returnBook{c: make(chan amqp.Return, 2*maxInFlight)}
	ch.NotifyReturn(b.c)
	return b
}

func returnKey(exchange, routingKey string, body []byte) string {
	return exchange + "\x00" + routingKey + "\x00" + string(body)
}

// take reports (and forgets) the return of the confirmed publish of body
// to exchange and routingKey.
func (b *returnBook) take(exchange, routingKey string, body []byte) (amqp.Return, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
drain:
	for {
		select {
		case r, ok := <-b.c:
			if !ok {
				break drain // the channel closed
			}
			if b.m == nil {
				b.m = map[string]amqp.Return{}
			}
			b.m[returnKey(r.Exchange, r.RoutingKey, r.Body)] = r
		default:
			break drain
		}
	}
	if len(b.m) == 0 {
		return amqp.Return{}, false
	}
	k := returnKey(exchange, routingKey, body)
	r, ok := b.m[k]
	delete(b.m, k)
	return r, ok
}

// publishLocked (s.lock held) connects, declares and publishes.
func (s *sender) publishLocked(ctx context.Context, p Publication, msg amqp.Publishing) (dc *amqp.DeferredConfirmation, returns *returnBook, chDone chan *amqp.Error, gen uint64, err error) {
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
// shareAt callers and the pool is below rpc_conn_pool_size.
func (p *pool) get(_ context.Context) (*sender, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	var best *sender
	for _, s := range p.all {
		if best == nil || s.users < best.users {
			best = s
		}
	}
	full := best == nil || best.users >= shareAt
	if full && len(p.all) < p.max {
		best = newSender(p.d, p.log)
		p.all = append(p.all, best)
	}
	best.users++
	return best, nil
}

func (p *pool) put(s *sender) {
	now := time.Now()
	p.mu.Lock()
	s.users--
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
	s, err := p.get(ctx)
	if err != nil {
		return err
	}
	defer p.put(s)
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
		if !errors.Is(err, errChannelClosed) || !errors.Is(last, errNack) {
			last = err
		}
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
