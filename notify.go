package goslo

import (
	"context"
	"errors"
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
}

// NewNotifier returns a notifier; topics default to ["notifications"].
func NewNotifier(t *Transport, publisherID string, topics ...string) *Notifier {
	if len(topics) == 0 {
		topics = []string{"notifications"}
	}
	return &Notifier{t: t, publisherID: publisherID, topics: topics, serializer: NoOpSerializer{}, now: time.Now}
}

func (n *Notifier) notify(ctx context.Context, rctx *Map, priority, eventType string, payload any) error {
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
	m := driver.Message{Context: sctx, Body: msg.Map()}
	var errs []error
	for _, topic := range n.topics {
		target := compat.Target{Topic: compat.NotificationTopic(topic, priority)}
		if err := n.t.drv.Notify(ctx, target, m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (n *Notifier) Audit(ctx context.Context, rctx *Map, eventType string, payload any) error {
	return n.notify(ctx, rctx, envelope.PriorityAudit, eventType, payload)
}
func (n *Notifier) Debug(ctx context.Context, rctx *Map, eventType string, payload any) error {
	return n.notify(ctx, rctx, envelope.PriorityDebug, eventType, payload)
}
func (n *Notifier) Info(ctx context.Context, rctx *Map, eventType string, payload any) error {
	return n.notify(ctx, rctx, envelope.PriorityInfo, eventType, payload)
}
func (n *Notifier) Warn(ctx context.Context, rctx *Map, eventType string, payload any) error {
	return n.notify(ctx, rctx, envelope.PriorityWarn, eventType, payload)
}
func (n *Notifier) Error(ctx context.Context, rctx *Map, eventType string, payload any) error {
	return n.notify(ctx, rctx, envelope.PriorityError, eventType, payload)
}
func (n *Notifier) Critical(ctx context.Context, rctx *Map, eventType string, payload any) error {
	return n.notify(ctx, rctx, envelope.PriorityCritical, eventType, payload)
}
func (n *Notifier) Sample(ctx context.Context, rctx *Map, eventType string, payload any) error {
	return n.notify(ctx, rctx, envelope.PrioritySample, eventType, payload)
}

// Notification is one received notification with its context.
type Notification struct {
	envelope.Notification
	Context *Map
}

// NotificationHandler handles notifications of one priority.
type NotificationHandler func(ctx context.Context, n Notification) error

// NotificationEndpoint routes notifications by priority (lower case:
// "info", "error", ...) after optional filters on event_type and
// publisher_id (regular expressions that must match, as oslo's
// NotificationFilter).
type NotificationEndpoint struct {
	Handlers    map[string]NotificationHandler
	EventType   *regexp.Regexp
	PublisherID *regexp.Regexp
}

// NotificationListener listens on "<topic>.<priority>" for each topic and
// each priority some endpoint handles.
type NotificationListener struct {
	t         *Transport
	topics    []string
	endpoints []*NotificationEndpoint
	opts      driver.ListenOptions
	mu        sync.Mutex
	srv       driver.Server
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

// Start registers one consumer per topic and priority.
func (l *NotificationListener) Start(ctx context.Context) error {
	prios := map[string]bool{}
	for _, e := range l.endpoints {
		for p := range e.Handlers {
			prios[strings.ToLower(p)] = true
		}
	}
	var targets []compat.Target
	for _, topic := range l.topics {
		for p := range prios {
			targets = append(targets, compat.Target{Topic: compat.NotificationTopic(topic, p)})
		}
	}
	srv, err := l.t.drv.ListenNotifications(ctx, targets, l.opts, l.handle)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.srv = srv
	l.mu.Unlock()
	return nil
}

func (l *NotificationListener) handle(ctx context.Context, r *driver.Request) error {
	n, err := envelope.ParseNotification(r.Body)
	if err != nil {
		l.t.log.Warn("goslo: dropping notification", "message_id", r.MsgID, "err", err)
		return nil
	}
	rctx, _ := r.Context.(*Map)
	prio := strings.ToLower(n.Priority)
	var errs []error
	for _, e := range l.endpoints {
		h := e.Handlers[prio]
		if h == nil {
			continue
		}
		if e.EventType != nil && !e.EventType.MatchString(n.EventType) {
			continue
		}
		if e.PublisherID != nil && !e.PublisherID.MatchString(n.PublisherID) {
			continue
		}
		if err := h(ctx, Notification{Notification: n, Context: rctx}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stop unregisters and stops every consumer.
func (l *NotificationListener) Stop(ctx context.Context) error {
	l.mu.Lock()
	srv := l.srv
	l.srv = nil
	l.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Stop(ctx)
}
