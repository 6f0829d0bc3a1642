package zmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/ratelog"
	"github.com/goslo/goslo/internal/shutdown"
	"github.com/goslo/goslo/matchmaker"
)

// OpenOptions are what Open takes beside the URL and the configuration.
type OpenOptions struct {
	Logger *slog.Logger
	// Observer counts the driver's events (the module
	// github.com/goslo/goslo/extra/gosloprom has a Prometheus one); nil
	// counts nothing.
	Observer Observer
	// WrapMatchmaker, when set, wraps the matchmaker the driver uses
	// (gosloprom counts its errors that way).
	WrapMatchmaker func(matchmaker.Matchmaker) matchmaker.Matchmaker
	// MinReplyDelay is Options.MinReplyDelay (goslo only; 0: off).
	MinReplyDelay time.Duration
}

// Transport is the zmq bus behind goslo's public API: the matchmaker of
// the URL, the payload codec of rpc_zmq_serialization and one ZMQ driver.
// It implements driver.Driver: messages travel as [context, message]
// pairs in the codec, replies as [reply_body, failure] (zmq-wire.md §7).
type Transport struct {
	z      *ZMQ
	mm     matchmaker.Matchmaker
	codec  envelope.Codec
	log    *slog.Logger
	closer shutdown.Once
}

var (
	_ driver.Driver     = (*Transport)(nil)
	_ driver.Shutdowner = (*Transport)(nil)
)

// Open builds the zmq transport of u (zmq://, zmq+redis://, ...) with cfg,
// whose URL query parameters must already be applied.
func Open(ctx context.Context, u *compat.TransportURL, cfg *compat.Config, o OpenOptions) (*Transport, error) {
	o.Logger = ratelog.Logger(o.Logger) // one limiter for the driver and its matchmaker
	codec, err := envelope.CodecByName(cfg.ZMQ.RPCZMQSerialization)
	if err != nil {
		return nil, err
	}
	mcfg := matchmaker.ConfigFrom(cfg)
	mcfg.Logger = o.Logger
	mm, err := matchmaker.New(ctx, u, cfg.ZMQ.RPCZMQMatchmaker, mcfg)
	if err != nil {
		return nil, err
	}
	if o.WrapMatchmaker != nil {
		mm = o.WrapMatchmaker(mm)
	}
	dopts := OptionsFrom(cfg)
	dopts.Logger = o.Logger
	dopts.Observer = o.Observer
	dopts.MinReplyDelay = o.MinReplyDelay
	z, err := NewZMQ(mm, dopts)
	if err != nil {
		_ = mm.Close()
		return nil, err
	}
	return &Transport{z: z, mm: mm, codec: codec, log: o.Logger}, nil
}

// ZMQ is the socket-level driver.
func (t *Transport) ZMQ() *ZMQ { return t.z }

// Matchmaker is the transport's name service.
func (t *Transport) Matchmaker() matchmaker.Matchmaker { return t.mm }

// Codec is the payload codec (rpc_zmq_serialization).
func (t *Transport) Codec() envelope.Codec { return t.codec }

func (t *Transport) request(m driver.Message) ([]byte, error) {
	ctx := m.Context
	if ctx == nil {
		ctx = &envelope.Map{}
	}
	return envelope.AppendPair(t.codec, nil, ctx, m.Body)
}

// Call implements driver.Driver.
func (t *Transport) Call(ctx context.Context, target compat.Target, m driver.Message) (any, error) {
	p, err := t.request(m)
	if err != nil {
		return nil, err
	}
	reply, err := t.z.Call(ctx, target, p)
	if err != nil {
		return nil, err
	}
	body, remote, err := envelope.DecodeReply(t.codec, reply)
	if err != nil {
		return nil, err
	}
	if remote != nil {
		return nil, remote
	}
	return body, nil
}

// Cast implements driver.Driver.
func (t *Transport) Cast(ctx context.Context, target compat.Target, m driver.Message) error {
	p, err := t.request(m)
	if err != nil {
		return err
	}
	return t.z.Cast(ctx, target, p)
}

// Notify implements driver.Driver.
func (t *Transport) Notify(ctx context.Context, target compat.Target, m driver.Message) error {
	p, err := envelope.AppendPair(t.codec, nil, m.Context, m.Body)
	if err != nil {
		return err
	}
	return t.z.Notify(ctx, target, p)
}

var kinds = [...]driver.Kind{Call: driver.KindCall, Cast: driver.KindCast, CastFanout: driver.KindFanout, Notify: driver.KindNotification}

func kindOf(t MsgType) driver.Kind {
	if t >= Call && t <= Notify {
		return kinds[t]
	}
	return 0
}

// handler adapts h to the socket-level driver: the payload is decoded on
// the worker, a reply is encoded there.
func (t *Transport) handler(target compat.Target, h driver.Handler) Handler {
	return func(r *Request) {
		ctxv, msg, err := envelope.DecodePair(t.codec, r.Payload)
		if err != nil {
			t.log.Warn("driver: dropping undecodable message", "message_id", r.MsgID, "type", r.Type.String(), "target", target.String(), "err", err)
			if obs := t.z.opts.Observer; obs != nil {
				obs.Dropped(r.Type, "malformed")
			}
			return
		}
		var reply func(any, error) error
		if r.Type == Call {
			reply = func(result any, failure error) error {
				out, err := envelope.EncodeReply(t.codec, result, failure)
				if err != nil {
					return err
				}
				return r.Reply(out)
			}
		}
		req := driver.NewRequest(kindOf(r.Type), r.MsgID, ctxv, msg, time.Time{}, reply)
		if err := h(context.Background(), req); err != nil {
			if errors.Is(err, driver.ErrRequeue) {
				t.log.Warn("driver: a handler asked for a requeue, which zmq cannot do: dropped", "message_id", r.MsgID, "target", target.String())
			} else {
				t.log.Warn("driver: handler failed", "message_id", r.MsgID, "type", r.Type.String(), "target", target.String(), "err", err)
			}
		}
	}
}

// Listen implements driver.Driver.
func (t *Transport) Listen(ctx context.Context, target compat.Target, h driver.Handler) (driver.Server, error) {
	return t.z.Listen(ctx, target, t.handler(target, h))
}

// ListenNotifications implements driver.Driver: one consumer per target.
// zmq has no pools (every listener of a topic gets every notification,
// zmq-wire §8) and cannot requeue.
func (t *Transport) ListenNotifications(ctx context.Context, targets []compat.Target, o driver.ListenOptions, h driver.Handler) (driver.Server, error) {
	g := &serverGroup{}
	for _, target := range targets {
		s, err := t.z.Listen(ctx, target, t.handler(target, h))
		if err != nil {
			return nil, errors.Join(fmt.Errorf("zmq driver: listen on %s: %w", target.String(), err), g.Stop(ctx))
		}
		g.srvs = append(g.srvs, s)
	}
	return g, nil
}

// Close closes the driver (ZMQ.Close) and the matchmaker; it is
// idempotent.
func (t *Transport) Close() error {
	return t.closer.Do(context.Background(), func(ctx context.Context) error {
		return errors.Join(t.z.close(ctx, drainFor, false), t.mm.Close())
	})
}

// Shutdown implements driver.Shutdowner: ZMQ.Shutdown (the servers are
// unregistered and drained, queued messages leave, within ctx), then the
// matchmaker is closed.
func (t *Transport) Shutdown(ctx context.Context) error {
	return t.closer.Do(ctx, func(ctx context.Context) error {
		return errors.Join(t.z.Shutdown(ctx), t.mm.Close())
	})
}

// serverGroup stops several servers as one.
type serverGroup struct{ srvs []*Server }

// Stop stops the servers together, so that one slow to drain does not
// use up the others' time to unregister.
func (g *serverGroup) Stop(ctx context.Context) error {
	errs := make([]error, len(g.srvs))
	var wg sync.WaitGroup
	for i, s := range g.srvs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Stop(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (g *serverGroup) Addr() string {
	if len(g.srvs) == 0 {
		return ""
	}
	return g.srvs[0].Addr()
}

type portKey struct{}

// WithPort asks Listen, in the direct modes, to bind port first and to
// fall back to a random port of the range when it is taken. A server
// that comes back on the same address after a restart is reached by
// peers that still hold the old one: 8.1.4 clients keep a connection to
// every host they found and send there until their routing table drops
// it. The bridge uses it for its mirrors.
func WithPort(ctx context.Context, port int) context.Context {
	return context.WithValue(ctx, portKey{}, port)
}

func preferredPort(ctx context.Context) int {
	p, _ := ctx.Value(portKey{}).(int)
	return p
}
