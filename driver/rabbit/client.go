package rabbit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/envelope"
)

// TimeoutError is a CALL that got no reply in time: oslo's
// MessagingTimeout ("Timed out waiting for a reply to message ID <id>").
type TimeoutError struct {
	MsgID string
	// CallMonitor is set when the call-monitor timeout fired (no heartbeat
	// from the server in time) rather than the call's own timeout.
	CallMonitor bool
}

func (e *TimeoutError) Error() string {
	return "Timed out waiting for a reply to message ID " + e.MsgID
}

// Is matches envelope.ErrMessagingTimeout and context.DeadlineExceeded.
func (e *TimeoutError) Is(t error) bool {
	return t == envelope.ErrMessagingTimeout || t == context.DeadlineExceeded
}

// replyQueue is the transport's single reply queue and its listening
// connection (§4, §9.1): "reply_<uuid4 hex>", declared at the first CALL,
// every reply acked at once and routed to its call by _msg_id.
type replyQueue struct {
	t    *Transport
	name string
	l    *listener

	mu      sync.Mutex
	waiters map[string]chan Reply
}

// replyQ returns the started reply queue, starting it on first use.
func (t *Transport) replyQ(ctx context.Context) (*replyQueue, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.replies != nil {
		return t.replies, nil
	}
	if err := t.live(); err != nil {
		return nil, err
	}
	unique := NewUniqueHex()
	if t.cfg.Rabbit.UseQueueManager {
		unique = t.qmName()
	}
	r := &replyQueue{t: t, name: ReplyQueue(unique), waiters: map[string]chan Reply{}}
	r.l = newListener(t.dialer, t.log, "reply-queue "+r.name, t.topo.ReplyListener(r.name), r.deliver)
	if err := r.l.start(ctx); err != nil {
		return nil, err
	}
	t.replies = r
	return r, nil
}

// deliver hands the reply to its call, then acks it: every reply is acked
// (§9.1), and the caller need not wait for the ack's write.
func (r *replyQueue) deliver(d delivery) {
	defer r.l.ack(&d.d)
	rep, err := DecodeReply(d.d.Body, deliveryProps(&d.d))
	if err != nil {
		r.t.log.Warn("rabbit driver: dropping undecodable reply", "queue", r.name, "err", err)
		return
	}
	r.mu.Lock()
	ch := r.waiters[rep.MsgID]
	r.mu.Unlock()
	if ch == nil {
		r.t.log.Info("rabbit driver: dropping reply for an unknown or finished call", "msg_id", rep.MsgID)
		return
	}
	select {
	case ch <- rep:
	default:
		r.t.log.Warn("rabbit driver: dropping reply: its call is not reading", "msg_id", rep.MsgID)
	}
}

func (r *replyQueue) wait(msgID string) chan Reply {
	ch := make(chan Reply, 16)
	r.mu.Lock()
	r.waiters[msgID] = ch
	r.mu.Unlock()
	return ch
}

func (r *replyQueue) done(msgID string) {
	r.mu.Lock()
	delete(r.waiters, msgID)
	r.mu.Unlock()
}

func (r *replyQueue) stop(ctx context.Context) error { return r.l.stop(ctx, nil) }

// Call implements driver.Driver (§6, §9.1): the request carries _msg_id,
// _reply_q and _timeout (m.CallMonitorTimeout in whole seconds, or null)
// and expires in the broker after the call's timeout (ctx's deadline, else
// rpc_response_timeout). With m.AtLeastOnce the request is published
// mandatory and a CALL no queue takes fails at once with a *ReturnedError
// (ErrMessageUndeliverable), as Python's MessageUndeliverable; m.Retry
// bounds the publish's retries while the broker cannot be reached
// (*DeliveryFailureError).
func (t *Transport) Call(ctx context.Context, target compat.Target, m driver.Message) (any, error) {
	if err := t.live(); err != nil {
		return nil, err
	}
	if target.Fanout {
		return nil, errors.New("rabbit driver: a CALL cannot fan out")
	}
	rctx, err := contextMap(m.Context)
	if err != nil {
		return nil, err
	}
	timeout := time.Duration(t.cfg.Default.RPCResponseTimeout) * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if m.Timeout > 0 && m.Timeout-timeout < time.Second {
			timeout = m.Timeout // the nominal timeout, as Python writes it
		}
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	msgID := NewUniqueHex()
	driver.ReportSentID(ctx, msgID)
	if timeout < time.Millisecond {
		return nil, &TimeoutError{MsgID: msgID}
	}
	ctx, cancel := t.opContext(ctx, 0)
	defer cancel()
	rq, err := t.replyQ(ctx)
	if err != nil {
		if ctx.Err() != nil && !t.closed.Load() {
			return nil, fmt.Errorf("rabbit driver: reply queue: %w", &TimeoutError{MsgID: msgID})
		}
		return nil, t.closedErr(err)
	}
	var cm any
	var monitor time.Duration
	if m.CallMonitorTimeout > 0 {
		secs := int64(m.CallMonitorTimeout / time.Second)
		if secs < 1 {
			secs = 1
		}
		cm, monitor = secs, time.Duration(secs)*time.Second
	}
	body, err := EncodeRequest(Request{Message: m.Body, Context: rctx, MsgID: msgID, ReplyQ: rq.name, Timeout: cm, UniqueID: NewUniqueHex()})
	if err != nil {
		return nil, err
	}
	msg, err := t.publishing(body, timeout)
	if err != nil {
		return nil, err
	}
	replies := rq.wait(msgID)
	defer rq.done(msgID)
	if err := t.pool.publish(withRetry(ctx, m.Retry, -1), t.topo.Cast(target.Exchange, target.Topic, target.Server, m.AtLeastOnce), msg); err != nil {
		if ctx.Err() == context.DeadlineExceeded && !t.closed.Load() {
			return nil, fmt.Errorf("%w (%v)", &TimeoutError{MsgID: msgID}, err)
		}
		return nil, t.closedErr(err)
	}
	var monitorC <-chan time.Time
	var mt *time.Timer
	if monitor > 0 {
		mt = time.NewTimer(monitor)
		defer mt.Stop()
		monitorC = mt.C
	}
	var w ReplyWaiter
	for {
		select {
		case rep := <-replies:
			done, hb, result, failure := w.Add(rep)
			if hb || !done {
				if mt != nil {
					mt.Reset(monitor)
				}
				continue
			}
			if failure != nil {
				s, _ := failure.(string)
				re, err := envelope.ParseFailure(s)
				if err != nil {
					return nil, fmt.Errorf("rabbit driver: unreadable failure in the reply to %s: %w", msgID, err)
				}
				return nil, re
			}
			return result, nil
		case <-monitorC:
			return nil, &TimeoutError{MsgID: msgID, CallMonitor: true}
		case <-ctx.Done():
			if t.closed.Load() {
				return nil, fmt.Errorf("rabbit driver: call %s: %w", msgID, ErrClosed)
			}
			return nil, &TimeoutError{MsgID: msgID}
		}
	}
}
