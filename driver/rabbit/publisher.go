package rabbit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ErrUndeliverable is a mandatory publish the broker returned (basic.return,
// e.g. 312 NO_ROUTE): Python's MessageUndeliverable.
var ErrUndeliverable = errors.New("rabbit driver: message undeliverable (returned by the broker)")

// ReturnedError is a returned mandatory publish.
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

// sender is one pooled sending connection (§4): channel 1 in confirm mode
// (confirm.select right before its first publish), exchange declarations
// cached per channel, one publish outstanding at a time. It is used by
// one goroutine at a time (the pool hands it out).
type sender struct {
	d   *dialer
	log *slog.Logger
	cur *hostCursor

	conn    *amqp.Connection
	ch      *amqp.Channel
	confirm bool
	cache   PublishCache
	returns chan amqp.Return
	closed  chan *amqp.Error // connection closed
	chDone  chan *amqp.Error // channel closed
	gate    *blockGate
	idle    time.Time
}

func newSender(d *dialer, log *slog.Logger) *sender {
	return &sender{d: d, log: log, cur: d.cursor(), gate: &blockGate{}}
}

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

func (s *sender) openChannel() error {
	if old := s.ch; old != nil {
		// channel.close waits for close-ok, which a blocked connection
		// never sends: do not wait for it here (it ends with the
		// connection at the latest).
		go func() { _ = old.Close() }()
	}
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
	s.conn, s.ch, s.confirm, s.cache = nil, nil, false, PublishCache{}
}

// publishOnce declares what is due, publishes and waits for the broker's
// confirm. It returns a *ReturnedError when a mandatory publish came back.
func (s *sender) publishOnce(ctx context.Context, p Publication, msg amqp.Publishing) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	if err := s.gate.wait(ctx, s.log); err != nil {
		return err
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
			return err
		}
	}
	if !s.confirm {
		if err := s.ch.Confirm(false); err != nil {
			return err
		}
		s.confirm = true
	}
	for len(s.returns) > 0 { // stale returns of an earlier publish
		<-s.returns
	}
	dc, err := s.ch.PublishWithDeferredConfirmWithContext(ctx, p.Exchange, p.RoutingKey, p.Mandatory, false, msg)
	if err != nil {
		return err
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		// The confirm may still come: this channel's state is unknown.
		s.drop()
		return err
	}
	if !ok {
		// The delivery tag is acked or nacked once; a closed channel
		// acks false too.
		if !s.alive() {
			return errors.New("rabbit driver: channel closed before the publish was confirmed")
		}
		return errors.New("rabbit driver: the broker refused the message (basic.nack)")
	}
	select {
	case r := <-s.returns:
		return &ReturnedError{Code: r.ReplyCode, Text: r.ReplyText, Exchange: r.Exchange, RoutingKey: r.RoutingKey}
	default:
	}
	return nil
}

// pool is the transport's pool of sending connections (§4): up to
// rpc_conn_pool_size senders, created on demand; idle ones beyond
// conn_pool_min_size are closed after conn_pool_ttl.
type pool struct {
	d   *dialer
	log *slog.Logger

	mu     sync.Mutex
	idle   []*sender
	total  int
	max    int
	min    int
	ttl    time.Duration
	free   chan struct{} // signalled when a sender is handed back
	closed bool
}

func newPool(d *dialer, log *slog.Logger) *pool {
	max := d.opts.RPCConnPoolSize
	if max <= 0 {
		max = 30
	}
	return &pool{d: d, log: log, max: max, min: d.opts.ConnPoolMinSize, ttl: time.Duration(d.opts.ConnPoolTTL) * time.Second,
		free: make(chan struct{}, 1)}
}

func (p *pool) get(ctx context.Context) (*sender, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		if n := len(p.idle); n > 0 {
			s := p.idle[n-1]
			p.idle = p.idle[:n-1]
			p.mu.Unlock()
			return s, nil
		}
		if p.total < p.max {
			p.total++
			p.mu.Unlock()
			return newSender(p.d, p.log), nil
		}
		p.mu.Unlock()
		select {
		case <-p.free:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (p *pool) put(s *sender) {
	now := time.Now()
	s.idle = now
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		s.drop()
		return
	}
	p.idle = append(p.idle, s)
	// Expire senders idle longer than conn_pool_ttl, keeping the minimum.
	var expired []*sender
	if p.ttl > 0 {
		for len(p.idle) > p.min && now.Sub(p.idle[0].idle) > p.ttl {
			expired = append(expired, p.idle[0])
			p.idle = p.idle[1:]
			p.total--
		}
	}
	p.mu.Unlock()
	for _, e := range expired {
		e.drop()
	}
	select {
	case p.free <- struct{}{}:
	default:
	}
}

func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, s := range idle {
		s.drop()
	}
}

// publish sends one message on a pooled sender, retrying connection and
// channel failures until ctx ends (kombu's autoretry, §11.3). A returned
// mandatory message is not retried here: it comes back as a
// *ReturnedError.
func (p *pool) publish(ctx context.Context, pub Publication, msg amqp.Publishing) error {
	s, err := p.get(ctx)
	if err != nil {
		return err
	}
	defer p.put(s)
	var last error
	for attempt := 0; ; attempt++ {
		err := s.publishOnce(ctx, pub, msg)
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
		p.log.Warn("rabbit driver: publish failed, retrying", "exchange", pub.Exchange, "routing_key", pub.RoutingKey, "attempt", attempt+1, "err", err)
		s.openChannelOrDrop()
		if err := sleepCtx(ctx, p.d.backoff(attempt)); err != nil {
			return fmt.Errorf("rabbit driver: publish to %q/%q: %w (last error: %v)", pub.Exchange, pub.RoutingKey, err, last)
		}
	}
}

// openChannelOrDrop replaces a failed channel, or the whole connection
// when that fails too.
func (s *sender) openChannelOrDrop() {
	if s.conn == nil || s.conn.IsClosed() {
		s.drop()
		return
	}
	if err := s.openChannel(); err != nil {
		s.drop()
	}
}
