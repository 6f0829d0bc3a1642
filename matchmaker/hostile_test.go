package matchmaker

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// TestGoRedisLogsThroughSlog: go-redis's own log lines (here its warning
// about a sub-millisecond TTL, printed to stderr by default) reach the
// matchmaker's slog logger.
func TestGoRedisLogsThroughSlog(t *testing.T) {
	logs := &logRecorder{}
	cfg := fastConfig()
	cfg.Logger = slog.New(logs)
	addr := "127.0.0.1:1" // nothing listens there
	mm := newTestRedis(t, addr, cfg)
	_ = mm
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	_ = c.Set(context.Background(), "k", "v", 500*time.Microsecond).Err()
	got := logs.lines(slog.LevelWarn, "go-redis", "truncating to 1ms")
	require.Len(t, got, 1, "go-redis's line did not reach slog: %v", logs.all())
	t.Logf("routed: %s", got[0])
}
