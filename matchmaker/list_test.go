package matchmaker_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/internal/redistest"
	"github.com/goslo/goslo/matchmaker"
)

// TestKeys lists the keys under a prefix on both backends: only keys with
// live records on Dummy, every existing key on Redis; glob characters in
// the prefix are literal.
func TestKeys(t *testing.T) {
	r := redistest.Start(t)
	ctx := context.Background()
	red, err := matchmaker.NewRedis(ctx, []matchmaker.RedisAddr{{Addr: r.Addr}}, matchmaker.DefaultConfig())
	require.NoError(t, err)
	defer red.Close()
	dummy := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer dummy.Close()
	for name, mm := range map[string]matchmaker.Matchmaker{"redis": red, "dummy": dummy} {
		t.Run(name, func(t *testing.T) {
			l := mm.(matchmaker.Lister)
			for _, tg := range []compat.Target{{Topic: "t", Server: "a"}, {Topic: "t", Server: "b"}, {Topic: "t*", Server: "c"}, {Topic: "u", Server: "a"}} {
				require.NoError(t, mm.Register(ctx, tg, "127.0.0.1:1", compat.Router, time.Minute))
			}
			keys, err := l.Keys(ctx, "ROUTER/t/")
			require.NoError(t, err)
			require.Equal(t, []string{"ROUTER/t/a", "ROUTER/t/b"}, keys)
			keys, err = l.Keys(ctx, "ROUTER/t*/")
			require.NoError(t, err)
			require.Equal(t, []string{"ROUTER/t*/c"}, keys)
			require.NoError(t, mm.Unregister(ctx, compat.Target{Topic: "t", Server: "b"}, "127.0.0.1:1", compat.Router))
			keys, err = l.Keys(ctx, "ROUTER/t/")
			require.NoError(t, err)
			require.Equal(t, []string{"ROUTER/t/a"}, keys)
		})
	}
}
