package ratelog_test

import (
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/goslo/goslo/internal/ratelog"
)

// ExampleNew limits a flood of one warning: per window, Burst records of
// one kind (level and message) from one source (here the "addr"
// attribute) pass, the rest are counted, and a summary record reports how
// many were suppressed. Another source keeps its own budget, and records
// below the limited level pass untouched.
func ExampleNew() {
	text := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // no time, for a stable output
			}
			return a
		},
	})
	// A long window, so that the summary comes from Flush below, not from
	// the window's timer.
	h := ratelog.New(text, ratelog.Options{Burst: 2, Window: time.Hour})
	log := slog.New(h)

	bad := errors.New("malformed message")
	for range 5 {
		log.Warn("message dropped", "addr", "10.0.0.5:49200", "err", bad)
	}
	log.Warn("message dropped", "addr", "10.0.0.6:49200", "err", bad)
	for range 3 {
		log.Info("connected", "addr", "10.0.0.5:49200")
	}
	h.Flush() // as at shutdown: emit the pending summary now
	// Output:
	// level=WARN msg="message dropped" addr=10.0.0.5:49200 err="malformed message"
	// level=WARN msg="message dropped" addr=10.0.0.5:49200 err="malformed message"
	// level=WARN msg="message dropped" addr=10.0.0.6:49200 err="malformed message"
	// level=INFO msg=connected addr=10.0.0.5:49200
	// level=INFO msg=connected addr=10.0.0.5:49200
	// level=INFO msg=connected addr=10.0.0.5:49200
	// level=WARN msg="message dropped" addr=10.0.0.5:49200 err="malformed message" suppressed=3 window=1h0m0s
}
