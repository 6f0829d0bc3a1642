package rabbit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/shutdown"
)

// OpenOptions are what Open takes beside the URL and the configuration.
type OpenOptions struct {
	Logger *slog.Logger
}

// ErrClosed is driver.ErrClosed.
var ErrClosed = driver.ErrClosed

// Transport is the RabbitMQ bus behind goslo's public API (driver.Driver),
// a peer of oslo.messaging 18.3.1's rabbit driver: a pool of sending
// connections, one reply queue (created at the first CALL) and one
// listening connection per server and notification listener (§4).
//
// Where goslo's I/O differs from py-amqp on the wire (none of it changes
// what a Python peer or the broker decides):
//
//   - amqp091-go writes field tables in Go's map order: declare arguments
//     (x-queue-type, x-expires, ...) reach the broker in any order, which
//     its equivalence check ignores (rabbitmqctl lists them as sent);
//   - it cannot send an empty headers table nor an explicit priority 0:
//     uncompressed publishes carry no headers property and no priority
//     property (Python receivers ignore both);
//   - its start-ok capabilities are its own (connection.blocked,
//     consumer_cancel_notify, basic.nack, publisher_confirms; not
//     authentication_failure_close), product "goslo" (names.go);
//   - the AMQPLAIN response is a field table too, in map order;
//   - heartbeat_timeout_threshold=0 cannot refuse heartbeats: the
//     broker's interval is used. tune-ok proposes what Python does
//     otherwise, but heartbeat_rate is not used: heartbeats go out after
//     interval/2 of silence (Python: interval/heartbeat_rate, checked every
//     half of that) and a connection is dead after 1.5 silent intervals
//     (Python: 2);
//   - channel.close and connection.close carry reply code 200
//     (connection: text "kthxbai"; py-amqp sends 0 and ""), a sending
//     connection is closed without closing its channel first, and a
//     channel re-opened on a connection after a channel error gets the
//     next channel number (py-amqp reuses 1);
//   - up to 256 publishes are awaiting their confirm per pooled channel
//     (Python: one).
//
// TestFrames compares the frames goslo sends with the captured ones,
// allowing exactly these differences.
//
// oslo's retry (driver.Message.Retry; [oslo_messaging_notifications]
// retry for notifications) bounds how often a publish is retried while
// the broker cannot be reached: each try dials once, and exhaustion
// returns a *DeliveryFailureError (MessageDeliveryFailure); without a
// bound (oslo's None, the default of RPC) a publish is retried until its
// context ends. Replies are always retried so.
type Transport struct {
	cfg         *compat.Config
	topo        Topology
	dialer      *dialer
	pool        *pool
	log         *slog.Logger
	compression string
	notifyV2    bool

	// closingC ends as a shutdown begins: calls, casts and notifications
	// in flight fail (ErrClosed). endingC ends once the servers are
	// stopped (or the shutdown's context ended): the replies and
	// heartbeats of their handlers are given up.
	closingC context.Context
	endClose context.CancelFunc
	endingC  context.Context
	endEnd   context.CancelFunc
	closer   shutdown.Once
	closed   atomic.Bool

	mu      sync.Mutex
	servers map[driver.Server]struct{}
	replies *replyQueue

	goneMu sync.Mutex
	gone   map[string]time.Time // reply queues found missing (§8.3)
}

var (
	_ driver.Driver     = (*Transport)(nil)
	_ driver.Shutdowner = (*Transport)(nil)
)

// Open builds the rabbit transport of u (rabbit:// or kombu://) with cfg,
// whose [DEFAULT] options must be in force; the URL's query is applied to
// [oslo_messaging_rabbit] here (a copy of cfg is kept). Nothing is
// connected before it is needed (§4).
func Open(ctx context.Context, u *compat.TransportURL, cfg *compat.Config, o OpenOptions) (*Transport, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	ru, err := u.Rabbit()
	if err != nil {
		return nil, err
	}
	c := *cfg
	if err := c.ApplyRabbitURLQuery(u); err != nil {
		return nil, err
	}
	if err := c.ValidateRabbit(); err != nil {
		return nil, err
	}
	comp, err := CompressionHeaderFor(c.Rabbit.KombuCompression)
	if err != nil {
		return nil, err
	}
	d, err := newDialer(ru, &c, o.Logger)
	if err != nil {
		return nil, err
	}
	t := &Transport{
		cfg: &c, topo: NewTopology(&c), dialer: d, pool: newPool(d, o.Logger), log: o.Logger,
		compression: comp, notifyV2: notifyV2(c.Notifications.Driver),
		servers: map[driver.Server]struct{}{}, gone: map[string]time.Time{},
	}
	t.closingC, t.endClose = context.WithCancel(context.Background())
	t.endingC, t.endEnd = context.WithCancel(context.Background())
	return t, nil
}

// notifyV2 is whether notifications are enveloped: the messagingv2 driver
// (the default here), unless only the messaging (1.0) driver is
// configured.
func notifyV2(drivers []string) bool {
	return !(slices.Contains(drivers, "messaging") && !slices.Contains(drivers, "messagingv2"))
}

// Config is the configuration in force (with the URL's query applied).
func (t *Transport) Config() *compat.Config { return t.cfg }

// Codec is the payload codec: JSON.
func (t *Transport) Codec() envelope.Codec {
	c, _ := envelope.CodecByName("json")
	return c
}

func (t *Transport) live() error {
	if t.closed.Load() {
		return fmt.Errorf("rabbit driver: %w", ErrClosed)
	}
	return nil
}

// track records a started server for Shutdown; when a shutdown began
// meanwhile it stops the server at once and fails with ErrClosed.
func (t *Transport) track(s driver.Server) error {
	t.mu.Lock()
	closed := t.closed.Load()
	if !closed {
		t.servers[s] = struct{}{}
	}
	t.mu.Unlock()
	if closed {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.Stop(ctx)
		return t.live()
	}
	return nil
}

func (t *Transport) untrack(s driver.Server) {
	t.mu.Lock()
	delete(t.servers, s)
	t.mu.Unlock()
}

// qmName is the unique part of a queue-manager queue name (§5.4):
// "<hostname>:<processname>:<n>", n counted from 1 in this process.
func (t *Transport) qmName() string {
	host := t.cfg.Rabbit.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	proc := t.cfg.Rabbit.Processname
	if proc == "" {
		proc = compat.ProgramName()
	}
	qmMu.Lock()
	qmCounters[[2]string{host, proc}]++
	n := qmCounters[[2]string{host, proc}]
	qmMu.Unlock()
	return QueueManagerName(host, proc, n)
}

// The queue-manager counters of this process, per (hostname,
// processname), shared by all its transports as Python's is by all the
// transports of a process (§5.4). Unlike Python's (a /dev/shm file under
// a lock, kept per process group), it is not shared with other processes:
// two goslo processes with the same hostname and processname would take
// the same names, as two Python process groups would.
var (
	qmMu       sync.Mutex
	qmCounters = map[[2]string]int{}
)

// opContext is a context that ends when the transport begins to close
// (and after d, when d > 0).
func (t *Transport) opContext(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return boundContext(t.closingC, parent, d)
}

// replyContext is opContext for a server's replies and heartbeats: it
// ends once a shutdown has stopped the servers, so that the handlers it
// lets finish still answer.
func (t *Transport) replyContext(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return boundContext(t.endingC, parent, d)
}

// boundContext is parent, ended by end too (and after d, when d > 0).
func boundContext(end, parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	var ctx context.Context
	var cancel context.CancelFunc
	if d > 0 {
		ctx, cancel = context.WithTimeout(parent, d)
	} else {
		ctx, cancel = context.WithCancel(parent)
	}
	// No goroutine per operation: the transport's closing context
	// cancels it (context.AfterFunc), and the cancel deregisters that.
	stop := context.AfterFunc(end, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// publishing builds the properties and (compressed) body of a publish.
func (t *Transport) publishing(body []byte, callTimeout time.Duration) (amqp.Publishing, error) {
	b, err := CompressBody(body, t.compression)
	if err != nil {
		return amqp.Publishing{}, err
	}
	return amqpPublishing(PublishProperties(t.compression, callTimeout), b), nil
}

// contextMap reads driver.Message.Context: a dict or nil.
func contextMap(v any) (*envelope.Map, error) {
	m, err := driver.ContextDict(v)
	if err != nil {
		return nil, fmt.Errorf("rabbit driver: %w", err)
	}
	return m, nil
}

// Cast implements driver.Driver: to the topic, one server, or every server
// of the topic (t.Fanout) (§6). With m.AtLeastOnce a CAST that is not a
// fanout is published mandatory and fails with a *ReturnedError
// (ErrMessageUndeliverable) when no queue takes it; m.Retry bounds the
// retries while the broker cannot be reached (*DeliveryFailureError).
func (t *Transport) Cast(ctx context.Context, target compat.Target, m driver.Message) error {
	if err := t.live(); err != nil {
		return err
	}
	rctx, err := contextMap(m.Context)
	if err != nil {
		return err
	}
	unique := NewUniqueHex()
	driver.ReportSentID(ctx, unique)
	body, err := EncodeRequest(Request{Message: m.Body, Context: rctx, UniqueID: unique})
	if err != nil {
		return err
	}
	var pub Publication
	if target.Fanout {
		pub = t.topo.FanoutCast(target.Topic)
	} else {
		pub = t.topo.Cast(target.Exchange, target.Topic, target.Server, m.AtLeastOnce)
	}
	msg, err := t.publishing(body, 0)
	if err != nil {
		return err
	}
	octx, cancel := t.opContext(ctx, 0)
	defer cancel()
	return t.closedErr(t.pool.publish(withRetry(octx, m.Retry, -1), pub, msg))
}

// closedErr turns an error caused by Close into one matching ErrClosed.
func (t *Transport) closedErr(err error) error {
	if err != nil && t.closed.Load() && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("rabbit driver: %w (%v)", ErrClosed, err)
	}
	return err
}

// Notify implements driver.Driver (§9.2): the exchange, queue
// "<topic>.<priority>" and binding are declared before the first
// notification of each kind on a channel; messagingv2 envelopes. m.Retry
// (nil: [oslo_messaging_notifications] retry) bounds the retries while the
// broker cannot be reached.
func (t *Transport) Notify(ctx context.Context, target compat.Target, m driver.Message) error {
	if err := t.live(); err != nil {
		return err
	}
	topic, prio, ok := splitNotificationTopic(target.Topic)
	if !ok {
		return errors.New("rabbit driver: a notification topic must be <topic>.<priority>: " + target.Topic)
	}
	rctx, err := contextMap(m.Context)
	if err != nil {
		return err
	}
	body, err := EncodeNotification(Notification{Message: m.Body, UniqueID: NewUniqueHex(), Context: redacted(rctx)}, t.notifyV2)
	if err != nil {
		return err
	}
	msg, err := t.publishing(body, 0)
	if err != nil {
		return err
	}
	octx, cancel := t.opContext(ctx, 0)
	defer cancel()
	return t.closedErr(t.pool.publish(withRetry(octx, m.Retry, t.cfg.Notifications.Retry), t.topo.Notify(target.Exchange, topic, prio), msg))
}

// redacted is RequestContext.redacted_copy() for a context dict: a copy
// with auth_token null when it has one (§9.2: Python notifiers never send
// a token).
func redacted(c *envelope.Map) *envelope.Map {
	if c == nil || !c.Has("auth_token") {
		return c
	}
	out := envelope.MapWithCap(c.Len())
	for _, kv := range c.Items() {
		if kv.Key == "auth_token" {
			out.Append(kv.Key, nil)
		} else {
			out.Append(kv.Key, kv.Value)
		}
	}
	return out
}

// sendReply answers a CALL (§8.2, §8.3): a mandatory publish to the
// default exchange; a reply whose queue is missing is re-published every
// 0.25 s until kombu_missing_consumer_retry_timeout, then the queue is
// remembered as gone for 60 s.
func (t *Transport) sendReply(req Request, result any, failure error) error {
	rep := Reply{Result: result, Ending: true, MsgID: req.MsgID, UniqueID: NewUniqueHex()}
	if failure != nil {
		f, err := envelope.MarshalFailure(failure)
		if err != nil {
			return err
		}
		rep.Result, rep.Failure = nil, f
	}
	body, err := EncodeReply(rep)
	if err != nil {
		return err
	}
	return t.publishReply(context.Background(), req, body, true)
}

// sendHeartbeat sends one call-monitor heartbeat (§8.4), given up when
// stop closes (the handler answered); a missing reply queue is not
// retried.
func (t *Transport) sendHeartbeat(req Request, stop <-chan struct{}) error {
	body, err := EncodeReply(Heartbeat(req.MsgID, NewUniqueHex()))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return t.publishReply(ctx, req, body, false)
}

const (
	missingRetryEvery = 250 * time.Millisecond
	goneFor           = 60 * time.Second
	goneCacheSize     = 200
)

func (t *Transport) publishReply(parent context.Context, req Request, body []byte, retryMissing bool) error {
	if t.isGone(req.ReplyQ) {
		return fmt.Errorf("rabbit driver: reply queue %s is gone; reply to %s dropped", req.ReplyQ, req.MsgID)
	}
	msg, err := t.publishing(body, 0)
	if err != nil {
		return err
	}
	pub := t.topo.Reply(req.ReplyQ)
	limit := time.Duration(t.cfg.Rabbit.KombuMissingConsumerRetryTimeout) * time.Second
	ctx, cancel := t.replyContext(parent, limit+30*time.Second)
	defer cancel()
	deadline := time.Now().Add(limit)
	for {
		err := t.pool.publish(ctx, pub, msg)
		if !errors.Is(err, ErrUndeliverable) {
			return t.closedErr(err)
		}
		if !retryMissing {
			return err
		}
		if time.Now().Add(missingRetryEvery).After(deadline) {
			t.markGone(req.ReplyQ)
			t.log.Warn("rabbit driver: reply queue missing; giving up", "reply_q", req.ReplyQ, "msg_id", req.MsgID, "after", limit)
			return err
		}
		if err := sleepCtx(ctx, missingRetryEvery); err != nil {
			return t.closedErr(err)
		}
	}
}

func (t *Transport) isGone(q string) bool {
	t.goneMu.Lock()
	defer t.goneMu.Unlock()
	until, ok := t.gone[q]
	if ok && time.Now().After(until) {
		delete(t.gone, q)
		return false
	}
	return ok
}

func (t *Transport) markGone(q string) {
	t.goneMu.Lock()
	defer t.goneMu.Unlock()
	now := time.Now()
	if len(t.gone) >= goneCacheSize {
		for k, v := range t.gone {
			if now.After(v) || len(t.gone) >= goneCacheSize {
				delete(t.gone, k)
			}
		}
	}
	t.gone[q] = now.Add(goneFor)
}

// closeWithin bounds Close: the servers and the reply queue get this long
// to stop.
const closeWithin = 10 * time.Second

// Close implements driver.Driver: Shutdown bounded by 10 s.
func (t *Transport) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeWithin)
	defer cancel()
	return t.Shutdown(ctx)
}

// Shutdown implements driver.Shutdowner. Calls, casts and notifications,
// new or in flight, fail at once with an error matching ErrClosed (a CAST
// or notification that returned is in the broker: there is no queue of
// outgoing messages to drain). The running servers and listeners stop
// together as their Stop does (§8.6: no new message is taken, in-flight
// handlers finish and reply, the fanout queues are deleted), bounded by
// ctx; then the replies still being published are given up, the reply
// queue's connection and the pool's are closed. When ctx ends first, the
// handlers' context is cancelled, a handler still running has its
// deliveries left to the broker (acked ones are not redelivered) and its
// reply dropped, and every connection is closed at once (within about a
// second).
func (t *Transport) Shutdown(ctx context.Context) error {
	return t.closer.Do(ctx, t.shutdown)
}

func (t *Transport) shutdown(ctx context.Context) error {
	// First, without t.mu: a Call starting the reply queue holds t.mu
	// while it retries an unreachable broker, until its context (tied to
	// this one) ends. track reads closed under t.mu, so a server added
	// meanwhile is either taken below or stops itself.
	t.closed.Store(true)
	t.endClose()
	t.mu.Lock()
	var srvs []driver.Server
	for s := range t.servers {
		srvs = append(srvs, s)
	}
	rq := t.replies
	t.mu.Unlock()
	errs := make([]error, len(srvs)+2)
	var wg sync.WaitGroup
	for i, s := range srvs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Stop(ctx)
		}()
	}
	wg.Wait()
	t.endEnd()
	if rq != nil {
		qctx := ctx
		if ctx.Err() != nil {
			// Closed at once: the connection is told, not waited for.
			var cancel context.CancelFunc
			qctx, cancel = context.WithTimeout(context.Background(), time.Second)
			defer cancel()
		}
		if err := rq.stop(qctx); err != nil && ctx.Err() == nil {
			errs[len(srvs)] = err
		}
	}
	t.pool.close()
	if err := ctx.Err(); err != nil {
		errs[len(srvs)+1] = err
	}
	return joinOnce(errs)
}

// joinOnce joins errs, keeping one of the errors that match the same
// context error (each server stopped late reports it).
func joinOnce(errs []error) error {
	var out []error
	var canceled, deadline bool
	for _, err := range errs {
		switch {
		case err == nil:
			continue
		case err == context.Canceled:
			if canceled {
				continue
			}
			canceled = true
		case err == context.DeadlineExceeded:
			if deadline {
				continue
			}
			deadline = true
		}
		out = append(out, err)
	}
	return errors.Join(out...)
}
