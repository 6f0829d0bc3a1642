package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	rabbitdrv "github.com/goslo/goslo/driver/rabbit"
	"github.com/goslo/goslo/envelope"
)

// The priorities a recorder listens to on zmq, as oslo names them.
var recordPriorities = []string{"audit", "debug", "info", "warn", "error", "critical", "sample"}

// recorder writes one JSON line per message (goslo record's --out). Calls
// whose reply may still come wait in pending (RabbitMQ with --firehose).
type recorder struct {
	mu      sync.Mutex
	w       io.Writer
	err     error // the first write error
	pending map[string]*pendingCall
}

type pendingCall struct {
	line  *goslo.Map
	timer *time.Timer
}

func (r *recorder) write(line *goslo.Map) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writeLocked(line)
}

func (r *recorder) writeLocked(line *goslo.Map) {
	if err := jsonLine(r.w, line); err != nil && r.err == nil {
		r.err = err
	}
}

// hold keeps a call line until its reply, or until wait has passed (the
// line is then written without one).
func (r *recorder) hold(msgID string, line *goslo.Map, wait time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := &pendingCall{line: line}
	p.timer = time.AfterFunc(wait, func() { r.complete(msgID, nil) })
	r.pending[msgID] = p
}

// complete writes the call line of msgID with reply (nil: none came).
func (r *recorder) complete(msgID string, reply *goslo.Map) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.pending[msgID]
	if !ok {
		return
	}
	delete(r.pending, msgID)
	p.timer.Stop()
	if reply != nil {
		p.line.Set("reply", reply)
	}
	r.writeLocked(p.line)
}

// flush writes every call line still waiting, without its reply.
func (r *recorder) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, p := range r.pending {
		p.timer.Stop()
		r.writeLocked(p.line)
		delete(r.pending, id)
	}
}

func nowText() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func targetMap(t compat.Target) *goslo.Map {
	m := goslo.NewMap("topic", t.Topic)
	if t.Server != "" {
		m.Append("server", t.Server)
	}
	if t.Fanout {
		m.Append("fanout", true)
	}
	if t.Namespace != "" {
		m.Append("namespace", t.Namespace)
	}
	if t.Version != "" {
		m.Append("version", t.Version)
	}
	if t.Exchange != "" {
		m.Append("exchange", t.Exchange)
	}
	return m
}

// requestLine is the line of an RPC request: time, type, target, method,
// args, context, message id (the reply is added when it comes).
func requestLine(kind driver.Kind, t compat.Target, body any, rctx any, msgID string) *goslo.Map {
	req, err := envelope.ParseRequest(body)
	t.Namespace, t.Version = req.Namespace, req.Version
	line := goslo.NewMap("time", nowText(), "type", kind.String(), "target", targetMap(t), "method", req.Method, "args", req.Args, "context", rctx, "message_id", msgID)
	if req.Args == nil {
		line.Set("args", goslo.NewMap())
	}
	if err != nil {
		line.Append("malformed", err.Error())
		line.Append("body", body)
	}
	return line
}

// notificationLine is the line of a notification taken on topic.
func notificationLine(topic string, body any, rctx any) *goslo.Map {
	n, err := envelope.ParseNotification(body)
	line := goslo.NewMap("time", nowText(), "type", "notification", "target", goslo.NewMap("topic", topic),
		"priority", strings.ToLower(n.Priority), "publisher_id", n.PublisherID, "event_type", n.EventType, "payload", n.Payload,
		"context", rctx, "message_id", n.MessageID, "timestamp", n.Timestamp)
	if err != nil {
		line.Append("malformed", err.Error())
		line.Append("body", body)
	}
	return line
}

// replyMap is a recorded reply: {"result": R} or {"failure": {class,
// module, message}}.
func replyMap(result any, failure error) *goslo.Map {
	if failure == nil {
		return goslo.NewMap("result", result)
	}
	re := envelope.ToRemoteError(failure)
	return goslo.NewMap("failure", goslo.NewMap("class", re.Class, "module", re.Module, "message", re.Message))
}

func recordCmd(args []string, stdin io.Reader, stderr io.Writer) int {
	fs := flag.NewFlagSet("record", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var b busFlags
	b.register(fs)
	var notifications multiFlag
	fs.Var(&notifications, "notifications", "a notification topic to record too (repeatable)")
	out := fs.String("out", "", "the JSON-lines file to write (created or truncated)")
	forward := fs.String("forward", "", "zmq: the topic the real servers listen on; the recorder serves --topic under --server and forwards every request there (same server name), so calls are still answered")
	firehose := fs.Bool("firehose", false, "RabbitMQ: record the replies of calls too, read from the vhost's firehose (amq.rabbitmq.trace; `rabbitmqctl trace_on` must be on): the default exchange that replies go through cannot be bound")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if b.topic == "" || *out == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: goslo record --url URL --topic T [--notifications N]... --out FILE.jsonl [--forward TOPIC (zmq)] [--firehose (RabbitMQ)]")
		return 2
	}
	if b.server == "" {
		b.server, _ = os.Hostname()
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(stderr, "goslo record:", err)
		return 1
	}
	defer f.Close()
	rec := &recorder{w: f, pending: map[string]*pendingCall{}}
	ctx, cancel := untilStopped(stdin)
	defer cancel()
	tr, err := b.transport(ctx, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "goslo record:", err)
		return 1
	}
	defer tr.Close()
	var stop func(context.Context) error
	var lostConn atomic.Bool
	if rt, ok := tr.Driver().(*rabbitdrv.Transport); ok {
		if *forward != "" {
			fmt.Fprintln(stderr, "goslo record: --forward is for zmq: on RabbitMQ the recorder reads a copy of the traffic through its own queue and the real servers answer")
			return 2
		}
		stop, err = recordRabbit(ctx, rt, rec, b.topic, notifications, *firehose, stderr, func(err error) {
			fmt.Fprintln(stderr, "goslo record:", err)
			lostConn.Store(true)
			cancel()
		})
	} else {
		if *forward == "" {
			fmt.Fprintln(stderr, "goslo record: on zmq, --forward TOPIC is required: the recorder stands in front of the real servers, which listen on that topic")
			return 2
		}
		if *firehose {
			fmt.Fprintln(stderr, "goslo record: --firehose is for RabbitMQ")
			return 2
		}
		stop, err = recordZMQ(ctx, tr.Driver(), rec, b.topic, b.server, *forward, notifications)
	}
	if err != nil {
		fmt.Fprintln(stderr, "goslo record:", err)
		return 1
	}
	fmt.Fprintf(stderr, "goslo record: recording topic %s to %s\n", b.topic, *out)
	<-ctx.Done()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	serr := stop(sctx)
	rec.flush()
	if serr != nil {
		fmt.Fprintln(stderr, "goslo record: stop:", serr)
		return 1
	}
	if rec.err != nil {
		fmt.Fprintln(stderr, "goslo record: write:", rec.err)
		return 1
	}
	if lostConn.Load() {
		return 1
	}
	return 0
}

// recordZMQ serves topic under server and forwards every request to the
// same server of the forward topic, recording it with its reply; it
// listens to the notification topics (every zmq listener gets every
// notification).
func recordZMQ(ctx context.Context, drv driver.Driver, rec *recorder, topic, server, forward string, notifications []string) (func(context.Context) error, error) {
	srv, err := drv.Listen(ctx, compat.Target{Topic: topic, Server: server}, func(hctx context.Context, r *driver.Request) error {
		t := compat.Target{Topic: topic, Server: server, Fanout: r.Kind == driver.KindFanout}
		if t.Fanout {
			t.Server = ""
		}
		line := requestLine(r.Kind, t, r.Body, r.Context, r.MsgID)
		body, ok := r.Body.(*envelope.Map)
		rctx, cok := r.Context.(*envelope.Map)
		if !ok || (!cok && r.Context != nil) {
			rec.write(line)
			return r.Reply(nil, goslo.ValueError("goslo record: the message or its context is not a dict"))
		}
		msg := driver.Message{Context: rctx, Body: body}
		to := compat.Target{Topic: forward, Server: t.Server, Fanout: t.Fanout}
		if r.Kind != driver.KindCall {
			rec.write(line)
			cctx, cancel := context.WithTimeout(hctx, 30*time.Second)
			defer cancel()
			return drv.Cast(cctx, to, msg)
		}
		deadline := r.Deadline
		if deadline.IsZero() {
			deadline = time.Now().Add(60 * time.Second)
		}
		cctx, cancel := context.WithDeadline(hctx, deadline)
		defer cancel()
		res, err := drv.Call(cctx, to, msg)
		var remote *envelope.RemoteError
		if err != nil && !errors.As(err, &remote) {
			// No reply came (a timeout, or the send failed): recorded as
			// such; the caller's own time is up or it gets the failure.
			line.Set("reply", goslo.NewMap("error", err.Error()))
			rec.write(line)
			if errors.Is(err, envelope.ErrMessagingTimeout) || errors.Is(err, context.DeadlineExceeded) {
				return nil
			}
			return r.Reply(nil, goslo.NewRemoteError("oslo_messaging.exceptions", "MessageDeliveryFailure", "goslo record: "+err.Error()))
		}
		line.Set("reply", replyMap(res, err))
		rec.write(line)
		return r.Reply(res, err)
	})
	if err != nil {
		return nil, err
	}
	servers := []driver.Server{srv}
	for _, n := range notifications {
		var targets []compat.Target
		for _, p := range recordPriorities {
			targets = append(targets, compat.Target{Topic: compat.NotificationTopic(n, p)})
		}
		l, err := drv.ListenNotifications(ctx, targets, driver.ListenOptions{}, func(_ context.Context, r *driver.Request) error {
			rec.write(notificationLine(n, r.Body, r.Context))
			return nil
		})
		if err != nil {
			for _, s := range servers {
				_ = s.Stop(context.Background())
			}
			return nil, err
		}
		servers = append(servers, l)
	}
	return func(ctx context.Context) error {
		var errs []error
		for _, s := range servers {
			errs = append(errs, s.Stop(ctx))
		}
		return errors.Join(errs...)
	}, nil
}

// firehoseExchange is RabbitMQ's trace exchange; "publish.<exchange>" is
// the routing key of a copy of every publish to <exchange> ("publish."
// for the default exchange, which replies go through).
const (
	firehoseExchange = "amq.rabbitmq.trace"
	firehoseReplies  = "publish."
)

// recordRabbit reads a copy of the traffic through a queue of its own
// (exclusive, server-named) bound to the keys the real consumers' queues
// are bound to: the topic, "<topic>.<server>" for every server, the
// topic's fanout exchange and "<notification topic>.<priority>". It takes
// nothing from the real consumers. With firehose, replies are read from
// the trace exchange and joined to their calls.
func recordRabbit(ctx context.Context, rt *rabbitdrv.Transport, rec *recorder, topic string, notifications []string, firehose bool, stderr io.Writer, lost func(error)) (func(context.Context) error, error) {
	conn, err := rt.DialAMQP(ctx, "goslo record")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (func(context.Context) error, error) {
		_ = conn.Close()
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return fail(err)
	}
	topo := rt.Topology()
	exchange := topo.Exchange("")
	fanout := topo.FanoutExchangeDecl(topic)
	for _, x := range []rabbitdrv.ExchangeDecl{topo.TopicExchange(exchange), fanout} {
		if err := ch.ExchangeDeclare(x.Name, x.Kind, x.Durable, x.AutoDelete, false, false, nil); err != nil {
			return fail(fmt.Errorf("declaring exchange %s: %w", x.Name, err))
		}
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		return fail(err)
	}
	binds := [][2]string{{exchange, rabbitdrv.TopicQueue(topic)}, {exchange, rabbitdrv.ServerQueue(topic, "#")}, {fanout.Name, rabbitdrv.FanoutRoutingKey}}
	for _, n := range notifications {
		binds = append(binds, [2]string{exchange, rabbitdrv.NotificationTopic(n, "*")})
	}
	if firehose {
		binds = append(binds, [2]string{firehoseExchange, firehoseReplies})
	}
	for _, bd := range binds {
		if err := ch.QueueBind(q.Name, bd[1], bd[0], false, nil); err != nil {
			return fail(fmt.Errorf("binding to %s with %q: %w", bd[0], bd[1], err))
		}
	}
	const tag = "goslo-record"
	deliveries, err := ch.Consume(q.Name, tag, true, true, false, false, nil)
	if err != nil {
		return fail(err)
	}
	done := make(chan struct{})
	var stopping atomic.Bool
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	go func() {
		defer close(done)
		for d := range deliveries {
			recordDelivery(rec, &d, exchange, fanout.Name, topic, notifications, firehose, stderr)
		}
		if !stopping.Load() {
			// The recording has a hole from here: say so and stop, rather
			// than go on silently.
			err := errors.New("the consumer was cancelled")
			select {
			case e := <-closed:
				if e != nil {
					err = e
				}
			case <-time.After(time.Second):
			}
			lost(fmt.Errorf("the connection to RabbitMQ ended: %w", err))
		}
	}()
	return func(ctx context.Context) error {
		stopping.Store(true)
		err := ch.Cancel(tag, false)
		_ = conn.Close()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
		return err
	}, nil
}

func recordDelivery(rec *recorder, d *amqp.Delivery, exchange, fanout, topic string, notifications []string, firehose bool, stderr io.Writer) {
	if d.Exchange == firehoseExchange {
		recordFirehoseReply(rec, d)
		return
	}
	props := rabbitdrv.DeliveryProperties(d)
	if d.Exchange == exchange {
		for _, n := range notifications {
			if prio, ok := strings.CutPrefix(d.RoutingKey, n+"."); ok && isPriority(prio) {
				nt, _, err := rabbitdrv.DecodeNotification(d.Body, props)
				if err != nil {
					fmt.Fprintf(stderr, "goslo record: a notification on %s not read: %v\n", d.RoutingKey, err)
					return
				}
				var rctx any
				if nt.Context != nil {
					rctx = nt.Context
				}
				rec.write(notificationLine(n, nt.Message, rctx))
				return
			}
		}
	}
	req, err := rabbitdrv.DecodeRequest(d.Body, props)
	if err != nil {
		fmt.Fprintf(stderr, "goslo record: a message on %s %q not read: %v\n", d.Exchange, d.RoutingKey, err)
		return
	}
	t := compat.Target{Topic: topic}
	kind := driver.KindCast
	switch {
	case d.Exchange == fanout:
		t.Fanout, kind = true, driver.KindFanout
	case d.RoutingKey != topic:
		t.Server = strings.TrimPrefix(d.RoutingKey, topic+".")
	}
	if req.IsCall() {
		kind = driver.KindCall
	}
	id := req.MsgID
	if id == "" {
		id = req.UniqueID
	}
	var rctx any
	if req.Context != nil {
		rctx = req.Context
	}
	line := requestLine(kind, t, req.Message, rctx, id)
	if kind != driver.KindCall || !firehose {
		rec.write(line)
		return
	}
	wait := 60 * time.Second
	if ms, err := strconv.ParseInt(d.Expiration, 10, 64); err == nil && ms >= 0 {
		wait = time.Duration(ms)*time.Millisecond + 5*time.Second
	}
	rec.hold(req.MsgID, line, wait)
}

// recordFirehoseReply joins a reply seen on the firehose to its call.
func recordFirehoseReply(rec *recorder, d *amqp.Delivery) {
	var props rabbitdrv.Properties
	if p, ok := d.Headers["properties"].(amqp.Table); ok {
		props.ContentType, _ = p["content_type"].(string)
		props.ContentEncoding, _ = p["content_encoding"].(string)
		if h, ok := p["headers"].(amqp.Table); ok {
			if c, ok := h[rabbitdrv.CompressionHeader]; ok {
				props.Headers = rabbitdrv.Args{{Key: rabbitdrv.CompressionHeader, Value: c}}
			}
		}
	}
	r, err := rabbitdrv.DecodeReply(d.Body, props)
	if err != nil || r.MsgID == "" || r.IsHeartbeat() {
		return
	}
	switch {
	case r.Failure != nil:
		s, _ := r.Failure.(string)
		re, err := envelope.ParseFailure(s)
		if err != nil {
			re = goslo.NewRemoteError(envelope.ModuleBuiltins, "RuntimeError", "unreadable failure: "+err.Error())
		}
		rec.complete(r.MsgID, replyMap(nil, re))
	case r.Result != nil || r.Ending:
		rec.complete(r.MsgID, replyMap(r.Result, nil))
	}
}

func isPriority(p string) bool {
	for _, q := range recordPriorities {
		if p == q {
			return true
		}
	}
	return false
}
