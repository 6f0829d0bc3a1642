package ratelog

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Options tune a Handler; zero values take the defaults.
type Options struct {
	// Burst is how many records of one kind and source pass per window
	// (default 10).
	Burst int
	// Window is the limiter's period (default 1 s).
	Window time.Duration
	// Level is the lowest level limited (default slog.LevelWarn): less
	// severe records pass untouched.
	Level slog.Level
	// MaxKeys bounds the kinds and sources tracked at once (default 4096);
	// beyond it the source is left out of new keys.
	MaxKeys int
}

// sourceAttrs are the attributes whose value tells one source from another.
var sourceAttrs = map[string]bool{"addr": true, "target": true, "key": true, "to": true, "host": true, "peer": true,
	"proxy": true, "routing_key": true, "sender": true, "remote": true}

// SuppressedKey is the attribute of the summary record a Handler emits at
// the end of a window in which it suppressed records of a kind: their
// count.
const SuppressedKey = "suppressed"

// Handler is the limiting slog.Handler.
type Handler struct {
	next   slog.Handler
	st     *state
	prefix string // source attributes given through WithAttrs
}

type state struct {
	opts Options
	mu   sync.Mutex
	keys map[string]*entry
}

type entry struct {
	start      time.Time
	n          int
	suppressed int
	timer      *time.Timer
	h          slog.Handler // the handler (with its attrs) the summary goes to
	rec        slog.Record  // the first suppressed record, for the summary
}

// New wraps h. Wrapping a *Handler again returns it as it is.
func New(h slog.Handler, o Options) *Handler {
	if r, ok := h.(*Handler); ok {
		return r
	}
	if o.Burst <= 0 {
		o.Burst = 10
	}
	if o.Window <= 0 {
		o.Window = time.Second
	}
	if o.Level == 0 {
		o.Level = slog.LevelWarn
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = 4096
	}
	return &Handler{next: h, st: &state{opts: o, keys: map[string]*entry{}}}
}

// Logger wraps l's handler with the default options (nil: slog.Default()).
func Logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		l = slog.Default()
	}
	if _, ok := l.Handler().(*Handler); ok {
		return l
	}
	return slog.New(New(l.Handler(), Options{}))
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	p := h.prefix
	for _, a := range as {
		if sourceAttrs[a.Key] {
			p += a.Key + "=" + a.Value.String() + " "
		}
	}
	return &Handler{next: h.next.WithAttrs(as), st: h.st, prefix: p}
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), st: h.st, prefix: h.prefix}
}

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	st := h.st
	if r.Level < st.opts.Level {
		return h.next.Handle(ctx, r)
	}
	var b strings.Builder
	b.WriteString(r.Level.String())
	b.WriteByte('|')
	b.WriteString(r.Message)
	b.WriteByte('|')
	b.WriteString(h.prefix)
	r.Attrs(func(a slog.Attr) bool {
		if sourceAttrs[a.Key] {
			b.WriteString(a.Key)
			b.WriteByte('=')
			b.WriteString(a.Value.String())
			b.WriteByte(' ')
		}
		return true
	})
	key := b.String()
	now := time.Now()
	st.mu.Lock()
	e := st.keys[key]
	if e == nil {
		if len(st.keys) >= st.opts.MaxKeys {
			st.sweep(now)
			if len(st.keys) >= st.opts.MaxKeys {
				key = r.Level.String() + "|" + r.Message + "|*"
				e = st.keys[key]
			}
		}
		if e == nil {
			e = &entry{start: now}
			st.keys[key] = e
		}
	}
	if e.timer == nil && now.Sub(e.start) >= st.opts.Window {
		e.start, e.n = now, 0
	}
	e.n++
	if e.n <= st.opts.Burst {
		st.mu.Unlock()
		return h.next.Handle(ctx, r)
	}
	e.suppressed++
	if e.timer == nil {
		e.h, e.rec = h.next, r.Clone()
		e.timer = time.AfterFunc(st.opts.Window-now.Sub(e.start), func() { st.flush(key) })
	}
	st.mu.Unlock()
	return nil
}

// flush emits the summary of a key's window and starts a new window.
func (st *state) flush(key string) {
	st.mu.Lock()
	e := st.keys[key]
	if e == nil || e.timer == nil {
		st.mu.Unlock()
		return
	}
	n, h, first := e.suppressed, e.h, e.rec
	e.timer, e.suppressed, e.h, e.rec = nil, 0, nil, slog.Record{}
	e.start, e.n = time.Now(), 0
	st.mu.Unlock()
	r := slog.NewRecord(time.Now(), first.Level, first.Message, first.PC)
	first.Attrs(func(a slog.Attr) bool {
		if sourceAttrs[a.Key] || a.Key == "err" || a.Key == "type" {
			r.AddAttrs(a)
		}
		return true
	})
	r.AddAttrs(slog.Int(SuppressedKey, n), slog.Duration("window", st.opts.Window))
	_ = h.Handle(context.Background(), r)
}

// sweep forgets idle keys whose window is over (mu held).
func (st *state) sweep(now time.Time) {
	for k, e := range st.keys {
		if e.timer == nil && now.Sub(e.start) >= st.opts.Window {
			delete(st.keys, k)
		}
	}
}

// Flush emits the pending summaries at once (for a clean shutdown).
func (h *Handler) Flush() {
	h.st.mu.Lock()
	var keys []string
	for k, e := range h.st.keys {
		if e.timer != nil && e.timer.Stop() {
			keys = append(keys, k)
		}
	}
	h.st.mu.Unlock()
	for _, k := range keys {
		h.st.flush(k)
	}
}
