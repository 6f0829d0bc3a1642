package envelope

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
)

func TestWrapUnwrap(t *testing.T) {
	m := NewMap("method", "echo", "args", NewMap("x", int64(1)))
	w, err := Wrap(m)
	require.NoError(t, err)
	require.Equal(t, []string{"oslo.version", "oslo.message"}, w.Keys())
	s, _ := w.Get("oslo.message")
	require.Equal(t, `{"method": "echo", "args": {"x": 1}}`, s)
	back, err := Unwrap(w)
	require.NoError(t, err)
	require.True(t, Equal(m, back))

	// Liberal reading: no envelope, returned as is.
	for _, v := range []any{"x", []any{}, NewMap("oslo.version", "2.0")} {
		got, err := Unwrap(v)
		require.NoError(t, err)
		require.True(t, Equal(v, got))
	}

	_, err = Unwrap(NewMap("oslo.version", "3.0", "oslo.message", "{}"))
	require.ErrorIs(t, err, ErrUnsupportedEnvelopeVersion)
	require.Equal(t, "Specified RPC envelope version, 3.0, not supported by this endpoint.", err.Error())

	_, err = Unwrap(NewMap("oslo.version", "x.0", "oslo.message", "{}"))
	require.ErrorIs(t, err, compat.ErrInvalidVersion)

	_, err = Unwrap(NewMap("oslo.version", "2.0", "oslo.message", "{bad"))
	require.ErrorIs(t, err, ErrDecode)
	_, err = Unwrap(NewMap("oslo.version", "2.0", "oslo.message", int64(3)))
	require.ErrorIs(t, err, ErrDecode)
}
