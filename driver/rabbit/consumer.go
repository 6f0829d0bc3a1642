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

// delivery is one message as a listening connection hands it to its
// owner: the consumer tag it came on and the channel to ack it on.
type delivery struct {
	tag string
	d   amqp.Delivery
}

// listener is one listening connection (§4): channel 1, the plan's QoS,
// declarations and basic.consumes with tags "1", "2", ...; on any
// connection or channel failure, or a basic.cancel from the broker, it
// reconnects (next host, back-off) and replays the same plan with the same
// tags (§11.3). Deliveries are handed to handle on the listener's own
// goroutine, which must not block for long (it acks, or starts a worker).
type listener struct {
	d      *dialer
	log    *slog.Logger
	what   string
	plan   ListenPlan
	handle func(delivery)

	ctx    context.Context // ended by stop
	cancel context.CancelFunc
	done   chan struct{}
	ready  chan error // first setup result
	pumps  sync.WaitGroup

	mu   sync.Mutex
	conn *amqp.Connection
	ch   *amqp.Channel
	// nondurable marks the exchanges and queues to declare non-durable
	// after a 406 durable mismatch (§10.2).
	nondurable map[string]bool
	// offsets are the last x-stream-offset seen per consumer tag: a stream
	// consumer resumes after it on reconnection (§5.3). Touched only by
	// the run goroutine.
	offsets map[string]int64
	// failedQueue is the queue whose declaration failed last ("" when
	// the failure was not a queue.declare).
	failedQueue string
}

const streamOffsetKey = "x-stream-offset"

// consumeArgs are a consumer's basic.consume arguments, with a stream
// consumer's offset moved past the last message it saw.
func (l *listener) consumeArgs(tag string, a Args) Args {
	off, ok := l.offsets[tag]
	if !ok {
		return a
	}
	out := make(Args, 0, len(a))
	for _, kv := range a {
		if kv.Key == streamOffsetKey {
			kv.Value = off + 1
		}
		out = append(out, kv)
	}
	return out
}

// noteOffset records a stream delivery's offset (type 'l', set by the
// broker).
func (l *listener) noteOffset(tag string, d *amqp.Delivery) {
	switch v := d.Headers[streamOffsetKey].(type) {
	case int64:
		l.offsets[tag] = v
	case int32:
		l.offsets[tag] = int64(v)
	}
}

func newListener(d *dialer, log *slog.Logger, what string, plan ListenPlan, handle func(delivery)) *listener {
	ctx, cancel := context.WithCancel(context.Background())
	return &listener{d: d, log: log, what: what, plan: plan, handle: handle, ctx: ctx, cancel: cancel,
		done: make(chan struct{}), ready: make(chan error, 1), nondurable: map[string]bool{}, offsets: map[string]int64{}}
}

// start runs the listener and waits for its first setup, bounded by ctx.
// A failed first setup (e.g. a refused declaration) is returned; a broker
// that is down makes start wait (and retry) until ctx ends.
func (l *listener) start(ctx context.Context) error {
	go l.run()
	select {
	case err := <-l.ready:
		if err != nil {
			l.cancel()
			<-l.done
			return err
		}
		return nil
	case <-ctx.Done():
		l.cancel()
		<-l.done
		return ctx.Err()
	}
}

func (l *listener) run() {
	defer close(l.done)
	cur := l.d.cursor()
	first := true
	for attempt := 0; ; attempt++ {
		if l.ctx.Err() != nil {
			return
		}
		if attempt > 0 {
			if sleepCtx(l.ctx, l.d.backoff(attempt)) != nil {
				return
			}
		}
		conn, err := l.d.connect(l.ctx, cur, l.what)
		if err != nil {
			return // stopped
		}
		err = l.session(conn, &first)
		if l.ctx.Err() != nil {
			l.mu.Lock()
			kept := l.conn == conn
			l.mu.Unlock()
			if !kept {
				closeConn(conn)
			}
			return
		}
		if first {
			// The first setup failed for a reason other than the broker
			// being down: report it to start.
			closeConn(conn)
			l.ready <- err
			return
		}
		l.log.Warn("rabbit driver: listening connection lost; reconnecting", "what", l.what, "err", err)
		closeConn(conn)
		if err == errReconnectNow {
			attempt = 0
		}
	}
}

var errReconnectNow = errors.New("rabbit driver: consumer cancelled by the broker")

// session sets up the plan on a fresh connection and pumps deliveries
// until something fails or the listener stops.
func (l *listener) session(conn *amqp.Connection, first *bool) error {
	connClosed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch, err := l.setup(conn)
	if err != nil {
		return err
	}
	chClosed := ch.NotifyClose(make(chan *amqp.Error, 1))
	cancels := ch.NotifyCancel(make(chan string, 8))
	// Consume: tags "1", "2", ... in plan order.
	// The pumps end when the channel closes (stop or reconnection closes
	// the connection) or the session ends.
	merged := make(chan delivery)
	stopPump := make(chan struct{})
	defer close(stopPump)
	wg := &l.pumps
	for i, c := range l.plan.Consumers {
		tag := ConsumerTag(i + 1)
		q := c.Queue.Name
		ds, err := ch.Consume(q, tag, false, false, false, false, amqp.Table(l.consumeArgs(tag, c.ConsumeArgs).Table()))
		if err != nil {
			return fmt.Errorf("basic.consume %s: %w", q, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range ds {
				select {
				case merged <- delivery{tag: tag, d: d}:
				case <-stopPump:
					return
				}
			}
		}()
	}
	l.mu.Lock()
	l.conn, l.ch = conn, ch
	l.mu.Unlock()
	if *first {
		*first = false
		l.ready <- nil
	}
	for {
		select {
		case d := <-merged:
			if d.d.Headers != nil {
				l.noteOffset(d.tag, &d.d)
			}
			l.handle(d)
		case tag := <-cancels:
			l.log.Warn("rabbit driver: the broker cancelled a consumer; re-declaring", "what", l.what, "tag", tag)
			return errReconnectNow
		case e := <-chClosed:
			return fmt.Errorf("channel closed: %v", e)
		case e := <-connClosed:
			return fmt.Errorf("connection closed: %v", e)
		case <-l.ctx.Done():
			return nil
		}
	}
}

// setup opens channel 1 (re-opening it after a durable mismatch) and
// sends the plan's qos and declarations in order.
func (l *listener) setup(conn *amqp.Connection) (*amqp.Channel, error) {
	for tries := 0; ; tries++ {
		ch, err := conn.Channel()
		if err != nil {
			return nil, err
		}
		err = l.declareAll(ch)
		if err == nil {
			return ch, nil
		}
		if tries < 4 && isDurableMismatch(err) && !conn.IsClosed() {
			continue // declareAll marked the name non-durable
		}
		var ae *amqp.Error
		if tries < 4 && errors.As(err, &ae) && !conn.IsClosed() {
			switch {
			case ae.Code == amqp.NotFound && l.failedQueue != "":
				// §11.3: a queue whose home node is down is deleted and
				// declared again.
				l.log.Warn("rabbit driver: queue unavailable; deleting and re-declaring it", "what", l.what, "queue", l.failedQueue, "err", err)
				// (RabbitMQ 3.x refuses to delete a durable classic queue
				// whose node is down: then this fails until the node
				// returns, as it does for Python peers.)
				dch, derr := conn.Channel()
				if derr == nil {
					_, derr = dch.QueueDelete(l.failedQueue, false, false, false)
					_ = dch.Close()
				}
				if derr != nil {
					_ = ch.Close()
					return nil, fmt.Errorf("%w (queue.delete: %v)", err, derr)
				}
				continue
			case ae.Code == amqp.InternalError:
				// 541: RabbitMQ asks to retry later.
				if sleepCtx(l.ctx, 2*time.Second) != nil {
					return nil, err
				}
				continue
			}
		}
		_ = ch.Close()
		return nil, err
	}
}

func (l *listener) declareAll(ch *amqp.Channel) error {
	l.failedQueue = ""
	if l.plan.QoS != nil {
		if err := declare(ch, Command{QoS: l.plan.QoS}); err != nil {
			return err
		}
	}
	for _, c := range l.plan.Consumers {
		var cmds []Command
		if c.Exchange != nil {
			cmds = append(cmds, Command{Exchange: c.Exchange})
		}
		q := c.Queue
		cmds = append(cmds, Command{Queue: &q})
		if c.Bind != nil {
			cmds = append(cmds, Command{Bind: c.Bind})
		}
		for _, cmd := range cmds {
			name := cmdName(cmd)
			if l.nondurable[name] {
				cmd = nondurable(cmd)
			}
			if err := declare(ch, cmd); err != nil {
				if isDurableMismatch(err) && (cmd.Exchange != nil || cmd.Queue != nil) {
					// §10.2: the consumer re-declares its exchange and its
					// queue non-durable.
					l.log.Warn("rabbit driver: declared with the other durable flag elsewhere; re-declaring non-durable", "what", l.what, "name", name, "err", err)
					if c.Exchange != nil {
						l.nondurable["x:"+c.Exchange.Name] = true
					}
					l.nondurable["q:"+c.Queue.Name] = true
				}
				if cmd.Queue != nil {
					l.failedQueue = cmd.Queue.Name
				}
				return fmt.Errorf("%s %s: %w", cmd.Method(), name[2:], err)
			}
		}
	}
	return nil
}

func cmdName(c Command) string {
	switch {
	case c.Exchange != nil:
		return "x:" + c.Exchange.Name
	case c.Queue != nil:
		return "q:" + c.Queue.Name
	case c.Bind != nil:
		return "b:" + c.Bind.Queue
	}
	return "?:"
}

// stop ends the listener: deletes the given queues (§8.6), then closes
// channel and connection without cancelling the consumers. Bounded by ctx.
func (l *listener) stop(ctx context.Context, deletes []string) error {
	l.cancel()
	select {
	case <-l.done:
	case <-ctx.Done():
	}
	l.mu.Lock()
	conn, ch := l.conn, l.ch
	l.conn, l.ch = nil, nil
	l.mu.Unlock()
	if conn == nil {
		<-l.done
		l.pumps.Wait()
		return ctx.Err()
	}
	errc := make(chan error, 1)
	go func() {
		var errs []error
		if ch != nil && !conn.IsClosed() {
			for _, q := range deletes {
				if _, err := ch.QueueDelete(q, false, false, false); err != nil {
					errs = append(errs, fmt.Errorf("queue.delete %s: %w", q, err))
				}
			}
			_ = ch.Close()
		}
		closeConn(conn)
		errc <- errors.Join(errs...)
	}()
	select {
	case err := <-errc:
		<-l.done
		l.pumps.Wait()
		return err
	case <-ctx.Done():
		_ = conn.CloseDeadline(time.Now())
		<-errc
		<-l.done
		l.pumps.Wait()
		return ctx.Err()
	}
}

// ack and reject act on the channel a delivery came on; they fail
// quietly (logged) when that channel is gone: the broker redelivers.
func (l *listener) ack(d *amqp.Delivery) {
	if err := d.Ack(false); err != nil {
		l.log.Debug("rabbit driver: ack failed (the broker will redeliver)", "what", l.what, "err", err)
	}
}

func (l *listener) reject(d *amqp.Delivery, requeue bool) {
	if err := d.Reject(requeue); err != nil {
		l.log.Debug("rabbit driver: reject failed", "what", l.what, "err", err)
	}
}

// dedupWindow is how many _unique_ids a server or listener remembers.
// oslo.messaging remembers 16 (§8.1 step 4, §10.1), which a failover
// defeats: a request whose publish was not confirmed when its node died
// is published again by the client (same _unique_id) and the broker may
// hold both copies, hundreds of messages apart (TestRabbitClusterFailover
// saw a call run twice with 125 requests between the copies). Nothing of
// this is on the wire, so a Go peer remembers more: a few seconds of
// traffic at thousands of messages a second.
const dedupWindow = 4096

// dedup remembers the last dedupWindow _unique_ids.
type dedup struct {
	mu   sync.Mutex
	ids  []string // ring, allocated at the first add
	set  map[string]struct{}
	next int
}

// seen reports whether id is among the remembered ones; it does not add
// it.
func (d *dedup) seen(id string) bool {
	if id == "" {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.set[id]
	return ok
}

func (d *dedup) add(id string) {
	if id == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ids == nil {
		d.ids, d.set = make([]string, dedupWindow), make(map[string]struct{}, dedupWindow)
	}
	if _, ok := d.set[id]; ok {
		return
	}
	if old := d.ids[d.next]; old != "" {
		delete(d.set, old)
	}
	d.ids[d.next] = id
	d.set[id] = struct{}{}
	d.next = (d.next + 1) % len(d.ids)
}
