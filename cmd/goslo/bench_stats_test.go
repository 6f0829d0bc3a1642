package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo"
)

// TestStatsCounterUnexpected: a bench_stats answer that is not a dict, or
// a counter that is not an integer, is an error, not a panic.
func TestStatsCounterUnexpected(t *testing.T) {
	n, err := statsCounter(goslo.NewMap("received", int64(7)), "received")
	require.NoError(t, err)
	require.Equal(t, int64(7), n)
	for _, v := range []any{nil, "not a dict", []any{1}, goslo.NewMap("received", "seven"), goslo.NewMap("other", int64(1))} {
		require.NotPanics(t, func() { _, err = statsCounter(v, "received") }, "%#v", v)
		require.Error(t, err, "%#v", v)
	}
}
