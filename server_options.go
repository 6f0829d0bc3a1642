package goslo

import (
	"context"
	"errors"
	"time"
)

// A ServerOption configures an RPCServer when it is made (NewRPCServer):
// an *Endpoint to serve, or one of WithConcurrency, WithSerializer,
// WithObserver and WithMiddleware.
type ServerOption interface {
	applyServer(*serverConfig) error
}

// serverConfig is what a server runs with; Start takes a copy, so that
// the deprecated setters never race with running handlers.
type serverConfig struct {
	endpoints   []*Endpoint
	serializer  Serializer
	observer    func(RequestInfo)
	middleware  []Middleware
	concurrency int // 0: the driver's pool (executor_thread_pool_size)
}

type serverOptionFunc func(*serverConfig) error

func (f serverOptionFunc) applyServer(c *serverConfig) error { return f(c) }

func (e *Endpoint) applyServer(c *serverConfig) error {
	if e == nil {
		return errors.New("goslo: nil endpoint")
	}
	c.endpoints = append(c.endpoints, e)
	return nil
}

// WithConcurrency bounds how many of the server's handlers run at once.
// The default, and the most that helps, is [DEFAULT]
// executor_thread_pool_size (64): the workers the driver runs each
// server's requests on. Requests beyond the bound wait for a free handler
// in arrival order.
func WithConcurrency(n int) ServerOption {
	return serverOptionFunc(func(c *serverConfig) error {
		if n < 1 {
			return errors.New("goslo: WithConcurrency needs at least 1")
		}
		c.concurrency = n
		return nil
	})
}

// WithSerializer sets oslo's serializer of the server: it turns the
// request context and each argument into what handlers get, and each
// result into what travels. A panic in it is recovered: the caller gets a
// RuntimeError. The default passes values through (NoOpSerializer).
func WithSerializer(z Serializer) ServerOption {
	return serverOptionFunc(func(c *serverConfig) error {
		if z == nil {
			return errors.New("goslo: WithSerializer(nil)")
		}
		c.serializer = z
		return nil
	})
}

// WithObserver sets f, called on the worker for every well-formed request
// before it is dispatched (so also for methods no endpoint has), with the
// request context as it arrived. Middleware sees only requests that found
// a handler; an observer sees them all.
func WithObserver(f func(RequestInfo)) ServerOption {
	return serverOptionFunc(func(c *serverConfig) error {
		c.observer = f
		return nil
	})
}

// WithMiddleware wraps every handler of the server in mw, the first
// outermost: WithMiddleware(a, b) runs a, then b, then the handler. Given
// several times, the chains join in that order.
func WithMiddleware(mw ...Middleware) ServerOption {
	return serverOptionFunc(func(c *serverConfig) error {
		for _, m := range mw {
			if m == nil {
				return errors.New("goslo: nil middleware")
			}
		}
		c.middleware = append(c.middleware, mw...)
		return nil
	})
}

// Middleware wraps a Handler: to log, check who calls, count, or refuse
// a request before it runs, in the style of net/http middleware. It runs
// on the handler's goroutine after dispatch, so RequestFrom(ctx) tells
// it the method, message id and the rest. A middleware that returns
// without calling next answers the request itself.
type Middleware func(next Handler) Handler

// chain wraps h in mw, the first outermost.
func chain(h Handler, mw []Middleware) Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// RequestInfo describes one request a server received. Observers get it
// before dispatch; handlers and middleware find it in their context
// (RequestFrom).
type RequestInfo struct {
	Type      string // "call", "cast" or "fanout"
	MessageID string // the wire's message id ("" when the driver has none)
	Method    string
	Namespace string // the requested namespace ("" for none)
	Version   string // the requested version ("" when the caller sent none)
	// Target is the server's target the request arrived at.
	Target Target
	// Deadline is when the caller stops waiting, when the wire says so
	// (RabbitMQ CALLs carry it); zero otherwise. The handler's context has
	// no deadline: take it with context.WithDeadline to stop work nobody
	// waits for.
	Deadline time.Time
	Args     *Map
	// Context is the request context as it arrived (before the
	// serializer).
	Context any
	// RequestContext is the request context the handler gets (rctx),
	// after the serializer; nil for observers.
	RequestContext *Map
}

type requestKey struct{}

// RequestFrom returns the request a handler (or middleware) is serving,
// from its ctx; ok is false outside a handler.
func RequestFrom(ctx context.Context) (info *RequestInfo, ok bool) {
	info, ok = ctx.Value(requestKey{}).(*RequestInfo)
	return info, ok
}

// withRequest returns ctx carrying info.
func withRequest(ctx context.Context, info *RequestInfo) context.Context {
	return context.WithValue(ctx, requestKey{}, info)
}
