package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

type sink struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (s *sink) Enabled(context.Context, slog.Level) bool { return true }
func (s *sink) Handle(_ context.Context, r slog.Record) error {
	s.mu.Lock()
	s.recs = append(s.recs, r.Clone())
	s.mu.Unlock()
	return nil
}
func (s *sink) WithAttrs([]slog.Attr) slog.Handler { return s }
func (s *sink) WithGroup(string) slog.Handler      { return s }

func (s *sink) snapshot() []slog.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]slog.Record(nil), s.recs...)
}

func suppressed(r slog.Record) int {
	n := -1
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == SuppressedKey {
			n = int(a.Value.Int64())
		}
		return true
	})
	return n
}

// TestFloodLimited: 10000 identical WARNs from one source give Burst lines
// and one summary counting the rest; another source and INFO lines are
// not limited.
func TestFloodLimited(t *testing.T) {
	s := &sink{}
	log := slog.New(New(s, Options{Burst: 5, Window: 200 * time.Millisecond}))
	for i := 0; i < 10000; i++ {
		log.Warn("driver: dropping request", "target", "a", "i", i)
	}
	log.Warn("driver: dropping request", "target", "b")
	for i := 0; i < 20; i++ {
		log.Info("driver: call timed out", "target", "a")
	}
	if n := len(s.snapshot()); n != 5+1+20 {
		t.Fatalf("%d lines passed, want 26", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && len(s.snapshot()) < 27 {
		time.Sleep(10 * time.Millisecond)
	}
	recs := s.snapshot()
	if len(recs) != 27 {
		t.Fatalf("no summary: %d lines", len(recs))
	}
	if got := suppressed(recs[26]); got != 10000-5 {
		t.Fatalf("summary counts %d suppressed, want %d", got, 10000-5)
	}
	t.Logf("10000 WARNs in one burst: %d lines out (5 + a summary of %d suppressed)", 6, suppressed(recs[26]))
	// A new window lets lines through again.
	log.Warn("driver: dropping request", "target", "a")
	if len(s.snapshot()) != 28 {
		t.Fatal("the next window is not limited")
	}
}

func TestFlushAndWithAttrs(t *testing.T) {
	s := &sink{}
	h := New(s, Options{Burst: 1, Window: time.Hour})
	a := slog.New(h).With("addr", "x")
	b := slog.New(h).With("addr", "y")
	for i := 0; i < 3; i++ {
		a.Error("boom")
		b.Error("boom")
	}
	if n := len(s.snapshot()); n != 2 {
		t.Fatalf("%d lines, want 2", n)
	}
	h.Flush()
	recs := s.snapshot()
	if len(recs) != 4 || suppressed(recs[2]) != 2 || suppressed(recs[3]) != 2 {
		t.Fatalf("flush: %d lines", len(recs))
	}
	if New(h, Options{}) != h {
		t.Fatal("wrapped twice")
	}
}
