package goslo

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/envelope"
)

// Notifier is oslo's Notifier: it sends a notification dict to
// "<topic>.<priority>" for each of its topics, to every listener there.
// As in oslo, send failures are logged; they are also returned.
type Notifier struct {
	t           *Transport
	publisherID string
	topics      []string
	serializer  Serializer
	now         func() time.Time
	retry       *int // nil: [oslo_messaging_notifications] retry
}

// NewNotifier returns a notifier; topics default to ["notifications"].
func NewNotifier(t *Transport, publisherID string, topics ...string) *Notifier {
	if len(topics) == 0 {
		topics = []string{"notifications"}
	}
	return &Notifier{t: t, publisherID: publisherID, topics: topics, serializer: NoOpSerializer{}, now: time.Now}
}

// WithSerializer returns a copy of the notifier that serializes the
// context and payload with z (oslo's Notifier.prepare style; nil keeps the
// current serializer).
func (n *Notifier) WithSerializer(z Serializer) *Notifier {
	c := *n
	if z != nil {
		c.serializer = z
	}
	return &c
}

// WithRetry returns a copy of the notifier with oslo's Notifier retry
// (otherwise [oslo_messaging_notifications] retry, -1 by default): on
// RabbitMQ how often a notification is re-published while the broker
// cannot be reached; negative for ever (bounded by the context), 0 never,
// N at most N times, then an error matching ErrMessageDeliveryFailure.
func (n *Notifier) WithRetry(retry int) *Notifier {
	c := *n
	c.retry = &retry
	return &c
}

// Prepare returns a copy of the notifier that publishes as publisherID
// (oslo's Notifier.prepare(publisher_id=...)).
func (n *Notifier) Prepare(publisherID string) *Notifier {
	c := *n
	c.publisherID = publisherID
	return &c
}

// Priority is a notification priority, as oslo names them; Notify accepts
// any case and "WARNING" for WARN.
type Priority string

// oslo's notification priorities.
const (
	PriorityAudit    Priority = envelope.PriorityAudit
	PriorityDebug    Priority = envelope.PriorityDebug
	PriorityInfo     Priority = envelope.PriorityInfo
	PriorityWarn     Priority = envelope.PriorityWarn
	PriorityError    Priority = envelope.PriorityError
	PriorityCritical Priority = envelope.PriorityCritical
	PrioritySample   Priority = envelope.PrioritySample
)

// Validate returns an error for a priority oslo does not know.
func (p Priority) Validate() error {
	_, err := envelope.NormalizePriority(string(p))
	return err
}

// Notify sends a notification of priority with payload (any value a
// Call's args may hold, a struct included) to "<topic>.<priority>" for
// each of the notifier's topics. An unknown priority is an error and
// nothing is sent.
func (n *Notifier) Notify(ctx context.Context, rctx *Map, priority Priority, eventType string, payload any) error {
	p, err := envelope.NormalizePriority(string(priority))
	if err != nil {
		return fmt.Errorf("goslo: %w", err)
	}
	return n.notify(ctx, rctx, p, eventType, payload)
}

func (n *Notifier) notify(ctx context.Context, rctx *Map, priority, eventType string, payload any) error {
	if err := n.t.errIfClosed(); err != nil {
		return err
	}
	sctx, err := n.serializer.SerializeContext(rctx)
	if err != nil {
		return err
	}
	sp, err := n.serializer.SerializeEntity(rctx, payload)
	if err != nil {
		return err
	}
	msg := envelope.Notification{
		MessageID: envelope.NewUUID4().String(), PublisherID: n.publisherID, EventType: eventType,
		Priority: priority, Payload: sp, Timestamp: envelope.FormatTimestamp(n.now()),
	}
	m := driver.Message{Context: sctx, Body: msg.Map(), Retry: n.retry}
	var errs []error
	for _, topic := range n.topics {
		target := compat.Target{Topic: compat.NotificationTopic(topic, priority)}
		if err := n.t.drv.Notify(ctx, target, m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Audit, Debug, Info, Warn, Error, Critical and Sample are Notify with
// their priority, as oslo's Notifier methods.
func (n *Notifier) Audit(ctx context.Context, rctx *Map, eventType string, payload any) error {
	return n.notify(ctx, rctx, envelope.PriorityAudit, eventType, payload)
}

// Debug is Notify at PriorityDebug.
func (n *Notifier) Debug(ctx context.Context, rctx *Map, eventType string, payload any) error {
	return n.notify(ctx, rctx, envelope.PriorityDebug, eventType, payload)
}

// Info is Notify at PriorityInfo.
func (n *Notifier) Info(ctx context.Context, rctx *Map, eventType string, payload any) error {
	return n.notify(ctx, rctx, envelope.PriorityInfo, eventType, payload)
}

// Warn is Notify at PriorityWarn.
func (n *Notifier) Warn(ctx context.Context, rctx *Map, eventType string, payload any) error {
	return n.notify(ctx, rctx, envelope.PriorityWarn, eventType, payload)
}

// Error is Notify at PriorityError.
func (n *Notifier) Error(ctx context.Context, rctx *Map, eventType string, payload any) error {
	return n.notify(ctx, rctx, envelope.PriorityError, eventType, payload)
}

// Critical is Notify at PriorityCritical.
func (n *Notifier) Critical(ctx context.Context, rctx *Map, eventType string, payload any) error {
	return n.notify(ctx, rctx, envelope.PriorityCritical, eventType, payload)
}

// Sample is Notify at PrioritySample.
func (n *Notifier) Sample(ctx context.Context, rctx *Map, eventType string, payload any) error {
	return n.notify(ctx, rctx, envelope.PrioritySample, eventType, payload)
}

// Notification is one received notification with its context.
type Notification struct {
	envelope.Notification
	Context *Map
}

// NotificationHandler handles notifications of one priority. ctx is
// cancelled when the listener's Stop runs out of time (or once Stop has
// returned). A panic is recovered and logged, as for an RPC handler, and
// the notification is handled as if the handler had failed.
type NotificationHandler func(ctx context.Context, n Notification) error

// NotificationEndpoint routes notifications by priority after optional
// filters on event_type and publisher_id (regular expressions that must
// match, as oslo's NotificationFilter). Handlers are keyed by priority in
// any case ("info", "INFO", ...): audit, debug, info, warn, error,
// critical or sample; another key makes the listener's Start fail.
type NotificationEndpoint struct {
	Handlers    map[string]NotificationHandler
	EventType   *regexp.Regexp
	PublisherID *regexp.Regexp
}

// priorities are oslo's notification priorities (NotificationDispatcher),
// as the handlers' keys are normalized.
var priorities = map[string]bool{"audit": true, "debug": true, "info": true, "warn": true, "error": true, "critical": true, "sample": true}

// NotificationListener listens on "<topic>.<priority>" for each topic and
// each priority some endpoint handles. As an RPCServer, it may be started
// again after Stop.
type NotificationListener struct {
	t          *Transport
	topics     []string
	endpoints  []*NotificationEndpoint
	serializer Serializer // nil: the context is used as sent, the payload as decoded
	opts       driver.ListenOptions
	mu         sync.Mutex
	run        *listenerRun
}

type listenerRun struct {
	serverRun
	routes     []map[string]NotificationHandler // per endpoint, by lower-case priority
	serializer Serializer                       // l.serializer at Start
}

// NewNotificationListener returns a listener; Start makes it listen.
func NewNotificationListener(t *Transport, topics []string, endpoints ...*NotificationEndpoint) *NotificationListener {
	return &NotificationListener{t: t, topics: topics, endpoints: endpoints}
}

// WithPool makes the listener one of oslo's listener pool name: listeners
// of a pool share the notifications (RabbitMQ: they consume the queue
// named exactly like the pool). It returns l.
func (l *NotificationListener) WithPool(pool string) *NotificationListener {
	l.opts.Pool = pool
	return l
}

// AllowRequeue lets a handler's ErrRequeue requeue the notification
// (oslo's allow_requeue; off by default, as in oslo). It returns l.
func (l *NotificationListener) AllowRequeue() *NotificationListener {
	l.opts.AllowRequeue = true
	return l
}

// ErrRequeue, returned by a NotificationHandler, asks for the
// notification to be delivered again (NotificationResult.REQUEUE).
var ErrRequeue = driver.ErrRequeue

// SetSerializer sets a serializer for the context and the payload of what
// arrives, as oslo's listener serializer; it takes effect at the next
// Start. A panic in it is recovered and logged; the notification is then
// dropped.
func (l *NotificationListener) SetSerializer(z Serializer) {
	l.mu.Lock()
	l.serializer = z
	l.mu.Unlock()
}

// routes normalizes the endpoints' handler keys.
func (l *NotificationListener) routes() ([]map[string]NotificationHandler, map[string]bool, error) {
	routes := make([]map[string]NotificationHandler, len(l.endpoints))
	prios := map[string]bool{}
	for i, e := range l.endpoints {
		routes[i] = map[string]NotificationHandler{}
		for k, h := range e.Handlers {
			p := strings.ToLower(k)
			if !priorities[p] {
				return nil, nil, fmt.Errorf("goslo: notification endpoint %d: unknown priority %q (want audit, debug, info, warn, error, critical or sample)", i, k)
			}
			if _, dup := routes[i][p]; dup {
				return nil, nil, fmt.Errorf("goslo: notification endpoint %d: priority %q has two handlers", i, p)
			}
			if h == nil {
				continue
			}
			routes[i][p] = h
			prios[p] = true
		}
	}
	return routes, prios, nil
}

// Start registers one consumer per topic and priority. It does nothing on
// a running listener; it fails on a handler key that is no priority, and
// with an error matching ErrClosed after the transport's Close.
func (l *NotificationListener) Start(ctx context.Context) error {
	if err := l.t.errIfClosed(); err != nil {
		return err
	}
	routes, prios, err := l.routes()
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.run != nil {
		return nil
	}
	var targets []compat.Target
	for _, topic := range l.topics {
		for p := range prios {
			targets = append(targets, compat.Target{Topic: compat.NotificationTopic(topic, p)})
		}
	}
	base, cancel := context.WithCancel(context.Background())
	run := &listenerRun{serverRun: serverRun{base: base, cancel: cancel}, routes: routes, serializer: l.serializer}
	srv, err := l.t.drv.ListenNotifications(ctx, targets, l.opts, func(_ context.Context, r *driver.Request) error {
		return l.handle(run, r)
	})
	if err != nil {
		cancel()
		return err
	}
	run.srv = srv
	if err := l.t.track(l); err != nil {
		// Shutdown began meanwhile: it does not see this run.
		return errors.Join(err, run.stopAtOnce())
	}
	l.run = run
	return nil
}

func (l *NotificationListener) handle(run *listenerRun, r *driver.Request) (err error) {
	n, err := envelope.ParseNotification(r.Body)
	if err != nil {
		l.t.log.Warn("goslo: dropping notification", "message_id", r.MsgID, "err", err)
		return nil
	}
	rctx, _ := r.Context.(*Map)
	if z := run.serializer; z != nil {
		var serr error
		func() {
			defer func() {
				if p := recover(); p != nil {
					serr = recovered(l.t.log, "notification serializer", p, "message_id", r.MsgID, "event_type", n.EventType)
				}
			}()
			if rctx, serr = z.DeserializeContext(r.Context); serr == nil {
				n.Payload, serr = z.DeserializeEntity(rctx, n.Payload)
			}
		}()
		if serr != nil {
			l.t.log.Warn("goslo: dropping notification", "message_id", r.MsgID, "event_type", n.EventType, "err", serr)
			return nil
		}
	}
	prio := strings.ToLower(n.Priority)
	var errs []error
	for i, e := range l.endpoints {
		h := run.routes[i][prio]
		if h == nil {
			continue
		}
		if e.EventType != nil && !e.EventType.MatchString(n.EventType) {
			continue
		}
		if e.PublisherID != nil && !e.PublisherID.MatchString(n.PublisherID) {
			continue
		}
		if err := l.call(run.base, h, Notification{Notification: n, Context: rctx}, r.MsgID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// call runs one handler, recovering a panic.
func (l *NotificationListener) call(ctx context.Context, h NotificationHandler, n Notification, msgID string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = recovered(l.t.log, "notification handler", p, "message_id", msgID, "event_type", n.EventType)
		}
	}()
	return h(ctx, n)
}

// Stop unregisters and stops every consumer, letting in-flight handlers
// finish, bounded by ctx: when ctx ends first, the handlers' context is
// cancelled and Stop returns ctx.Err(); the handlers still running finish
// in the background. Stop on a stopped listener does nothing.
func (l *NotificationListener) Stop(ctx context.Context) error {
	l.mu.Lock()
	run := l.run
	l.run = nil
	if run != nil {
		l.t.untrack(l) // under l.mu, as Start tracks (see RPCServer.Stop)
	}
	l.mu.Unlock()
	if run == nil {
		return nil
	}
	return run.stop(ctx)
}
