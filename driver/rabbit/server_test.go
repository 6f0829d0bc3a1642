package rabbit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRequestDeadline(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	require.Equal(t, at.Add(10*time.Second), requestDeadline(at, "10000"))
	require.Equal(t, at.Add(2*time.Second), requestDeadline(at, "2000"))
	require.Equal(t, at, requestDeadline(at, "0"))
	for _, bad := range []string{"", "abc", "-5", "1.5", " 10", "99999999999999999999", "9223372036854775807"} {
		require.True(t, requestDeadline(at, bad).IsZero(), bad)
	}
}
