// Package shutdown runs a shutdown once, bounded by the contexts of all
// its callers: the pattern of net/http.Server's Shutdown and Close, shared
// by the root Transport and the drivers.
package shutdown

import (
	"context"
	"errors"
	"sync"
)

// Once runs a shutdown function once. Every caller of Do waits for it to
// finish; the function's context ends when the first caller's does, or
// when any later caller's does (that caller forces it), so each caller is
// bounded by its own context plus the time the function takes to close
// at once what is left. The zero value is ready.
type Once struct {
	mu      sync.Mutex
	started bool
	cancel  context.CancelCauseFunc
	done    chan struct{}
	err     error
}

// Do runs f once with a context derived from the first caller's ctx and
// returns its error to every caller. A caller whose ctx ended before f
// finished gets an error that also matches ctx.Err() (errors.Is).
func (o *Once) Do(ctx context.Context, f func(ctx context.Context) error) error {
	o.mu.Lock()
	first := !o.started
	var fctx context.Context
	if first {
		o.started = true
		o.done = make(chan struct{})
		fctx, o.cancel = context.WithCancelCause(ctx)
	}
	cancel, done := o.cancel, o.done
	o.mu.Unlock()

	// A later caller whose context ends forces the shutdown in progress.
	stop := context.AfterFunc(ctx, func() { cancel(context.Cause(ctx)) })
	if first {
		o.err = f(fctx)
		cancel(nil)
		close(done)
	} else {
		<-done
	}
	err := o.err // written before done was closed
	if !stop() && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = errors.Join(err, ctx.Err())
	}
	return err
}

// Begun reports whether a shutdown has begun.
func (o *Once) Begun() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.started
}
