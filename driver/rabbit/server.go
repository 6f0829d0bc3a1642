package rabbit

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/shutdown"
)

// rpcServer is one RPC server object (§8): its listening connection with
// the topic, server and fanout queues (tags "1", "2", "3"), a dedup window
// shared by the three, and the workers running its handler.
type rpcServer struct {
	consumer
	target  compat.Target
	h       driver.Handler
	deletes []string
}

// consumer is what RPC servers and notification listeners share: the
// listening connection, the de-duplication window, the handlers and
// their context, and the bounded Stop.
type consumer struct {
	t     *Transport
	l     *listener
	dedup dedup

	workers *workerGroup
	hctx    context.Context // handlers' context, cancelled when Stop runs out of time
	hcancel context.CancelFunc
	stopper shutdown.Once // a later Stop's context forces a Stop in progress
}

// stop takes no new message, lets in-flight handlers finish (bounded by
// ctx, then their context is cancelled), deletes the given queues and
// closes channel and connection; self is the server the transport tracks.
func (c *consumer) stop(ctx context.Context, deletes []string, self driver.Server) error {
	return c.stopper.Do(ctx, func(ctx context.Context) error {
		wait := c.workers.stop()
		var errs []error
		select {
		case <-wait:
		case <-ctx.Done():
			c.workers.abandon()
			c.hcancel()
			errs = append(errs, ctx.Err())
		}
		lctx := ctx
		if ctx.Err() != nil {
			var cancel context.CancelFunc
			lctx, cancel = context.WithTimeout(context.Background(), time.Second)
			defer cancel()
		}
		if err := c.l.stop(lctx, deletes); err != nil && ctx.Err() == nil {
			errs = append(errs, err)
		}
		c.hcancel()
		c.t.untrack(self)
		return errors.Join(errs...)
	})
}

// Listen implements driver.Driver: an RPC server of t (§5.1, §8).
func (t *Transport) Listen(ctx context.Context, target compat.Target, h driver.Handler) (driver.Server, error) {
	if err := t.live(); err != nil {
		return nil, err
	}
	if target.Topic == "" || target.Server == "" {
		return nil, errors.New("rabbit driver: an RPC server needs a topic and a server")
	}
	unique := NewUniqueHex()
	if t.cfg.Rabbit.UseQueueManager {
		unique = t.qmName()
	}
	plan := t.topo.RPCServer(target.Exchange, target.Topic, target.Server, unique)
	s := &rpcServer{consumer: consumer{t: t, workers: newWorkerGroup(t.cfg.Default.ExecutorThreadPoolSize)}, target: target, h: h, deletes: t.topo.ShutdownDeletes(plan)}
	s.hctx, s.hcancel = context.WithCancel(context.Background())
	s.l = newListener(t.dialer, t.log, "rpc-server "+target.String(), plan, s.deliver)
	if err := s.l.start(ctx); err != nil {
		s.hcancel()
		return nil, err
	}
	if err := t.track(s); err != nil {
		return nil, err
	}
	return s, nil
}

// Addr implements driver.Server.
func (s *rpcServer) Addr() string { return "" }

// deliver runs on the listener's goroutine (§8.1): decode (reject without
// requeue on failure), ack at once, drop duplicates, dispatch on a worker.
func (s *rpcServer) deliver(d delivery) {
	if s.workers.stopped() {
		return // left unacked: the broker redelivers it when we close
	}
	req, err := DecodeRequest(d.d.Body, deliveryProps(&d.d))
	if err != nil {
		s.t.log.Warn("rabbit driver: rejecting undecodable request", "server", s.target.String(), "queue", d.d.RoutingKey, "err", err)
		s.l.reject(&d.d, false)
		return
	}
	s.l.ack(&d.d)
	if s.dedup.seen(req.UniqueID) {
		s.t.log.Info("rabbit driver: dropping duplicate request", "server", s.target.String(), "unique_id", req.UniqueID)
		return
	}
	s.dedup.add(req.UniqueID)
	kind := driver.KindCast
	switch {
	case d.tag == ConsumerTag(3):
		kind = driver.KindFanout
	case req.IsCall():
		kind = driver.KindCall
	}
	deadline := requestDeadline(time.Now(), d.d.Expiration)
	s.workers.run(func() { s.dispatch(kind, req, deadline) })
}

// requestDeadline is the caller's deadline of a request that arrived at
// arrival with AMQP expiration exp (§7.1: a CALL's timeout in ms as a
// decimal string): arrival + exp, the latest the caller can still be
// waiting (the time the request spent in the queue is not known, so the
// caller's own deadline may be earlier); zero without a valid expiration.
func requestDeadline(arrival time.Time, exp string) time.Time {
	ms, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || ms < 0 || ms > math.MaxInt64/int64(time.Millisecond) {
		return time.Time{}
	}
	return arrival.Add(time.Duration(ms) * time.Millisecond)
}

func (s *rpcServer) dispatch(kind driver.Kind, req Request, deadline time.Time) {
	var reply func(any, error) error
	var stopHB func()
	if kind == driver.KindCall {
		if req.ReplyQ == "" {
			s.t.log.Warn("rabbit driver: CALL without _reply_q; no reply will be sent", "msg_id", req.MsgID)
		} else {
			var once sync.Once
			stopHB = s.heartbeats(req)
			reply = func(result any, failure error) error {
				var err error = errors.New("rabbit driver: a CALL is answered once")
				once.Do(func() {
					if stopHB != nil {
						stopHB()
					}
					err = s.t.sendReply(req, result, failure)
				})
				return err
			}
		}
	}
	var ctxv any = req.Context
	if req.Context == nil {
		ctxv = &envelope.Map{}
	}
	r := driver.NewRequest(kind, req.MsgID, ctxv, req.Message, deadline, reply)
	if err := s.h(s.hctx, r); err != nil {
		s.t.log.Warn("rabbit driver: handler failed", "server", s.target.String(), "kind", kind.String(), "msg_id", req.MsgID, "err", err)
	}
	if stopHB != nil {
		stopHB()
	}
}

// heartbeats sends call-monitor heartbeats every int(_timeout)/2 s while
// the handler runs (§8.4); none when _timeout is null, unparsable or gives
// an interval under 1 s. It returns the function that stops them.
func (s *rpcServer) heartbeats(req Request) func() {
	n, ok := pyIntValue(req.Timeout)
	if !ok || n == 0 {
		return nil
	}
	iv := time.Duration(float64(n) / 2 * float64(time.Second))
	if iv < time.Second {
		return nil
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(iv)
		defer tk.Stop()
		for {
			select {
			case <-tk.C:
				if err := s.t.sendHeartbeat(req, stop); err != nil {
					s.t.log.Debug("rabbit driver: call-monitor heartbeat not sent", "msg_id", req.MsgID, "err", err)
				}
			case <-stop:
				return
			case <-s.t.endingC.Done():
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(stop) })
		<-done
	}
}

// pyIntValue is Python's int(v) for the values JSON can carry.
func pyIntValue(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, false
		}
		return int64(x), true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// Stop implements driver.Server (§8.6): no new request is taken, in-flight
// handlers finish and reply, the fanout queue is deleted, channel and
// connection are closed.
func (s *rpcServer) Stop(ctx context.Context) error { return s.stop(ctx, s.deletes, s) }

// notifyServer is a notification listener (§10.1): one listening
// connection consuming each (target, priority) queue or the pool queue;
// dispatch first, then ack (or reject with requeue when allowed).
type notifyServer struct {
	consumer
	o driver.ListenOptions
	h driver.Handler
}

// ListenNotifications implements driver.Driver.
func (t *Transport) ListenNotifications(ctx context.Context, targets []compat.Target, o driver.ListenOptions, h driver.Handler) (driver.Server, error) {
	if err := t.live(); err != nil {
		return nil, err
	}
	var subs []Subscription
	for _, tg := range targets {
		topic, prio, ok := splitNotificationTopic(tg.Topic)
		if !ok {
			return nil, errors.New("rabbit driver: a notification target's topic must be <topic>.<priority>: " + tg.Topic)
		}
		subs = append(subs, Subscription{Exchange: tg.Exchange, Topic: topic, Priority: prio})
	}
	if len(subs) == 0 {
		return nil, errors.New("rabbit driver: a notification listener needs at least one target")
	}
	plan := t.topo.NotificationListener(subs, o.Pool)
	s := &notifyServer{consumer: consumer{t: t, workers: newWorkerGroup(t.cfg.Default.ExecutorThreadPoolSize)}, o: o, h: h}
	s.hctx, s.hcancel = context.WithCancel(context.Background())
	s.l = newListener(t.dialer, t.log, "notification-listener", plan, s.deliver)
	if err := s.l.start(ctx); err != nil {
		s.hcancel()
		return nil, err
	}
	if err := t.track(s); err != nil {
		return nil, err
	}
	return s, nil
}

func splitNotificationTopic(t string) (topic, priority string, ok bool) {
	i := strings.LastIndexByte(t, '.')
	if i <= 0 || i == len(t)-1 {
		return "", "", false
	}
	return t[:i], t[i+1:], true
}

func (s *notifyServer) Addr() string { return "" }

func (s *notifyServer) deliver(d delivery) {
	if s.workers.stopped() {
		return
	}
	n, _, err := DecodeNotification(d.d.Body, deliveryProps(&d.d))
	if err != nil {
		s.t.log.Warn("rabbit driver: rejecting undecodable notification", "queue", d.d.RoutingKey, "err", err)
		s.l.reject(&d.d, false)
		return
	}
	if s.dedup.seen(n.UniqueID) {
		// §10.1: duplicates are dropped without an ack or a reject.
		s.t.log.Info("rabbit driver: dropping duplicate notification", "unique_id", n.UniqueID)
		return
	}
	dv := d.d
	s.workers.run(func() {
		msgID := ""
		if v, ok := n.Message.Get("message_id"); ok {
			msgID, _ = v.(string)
		}
		var ctxv any = n.Context
		if n.Context == nil {
			ctxv = &envelope.Map{}
		}
		r := driver.NewRequest(driver.KindNotification, msgID, ctxv, n.Message, time.Time{}, nil)
		err := s.h(s.hctx, r)
		switch {
		case err == nil:
		case errors.Is(err, driver.ErrRequeue):
			if s.o.AllowRequeue {
				s.l.reject(&dv, true)
				return
			}
			s.t.log.Info("rabbit driver: requeue asked by a listener that does not allow it; acking", "message_id", msgID)
		default:
			s.t.log.Warn("rabbit driver: notification handler failed; acking", "message_id", msgID, "err", err)
		}
		s.l.ack(&dv)
		s.dedup.add(n.UniqueID)
	})
}

// Stop implements driver.Server.
func (s *notifyServer) Stop(ctx context.Context) error { return s.stop(ctx, nil, s) }
