package interop

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/envelope"
)

// TestOsloEnvelope: Go's envelope 2.0 equals serialize_msg's, and both
// sides unwrap the same inputs to the same values or errors.
func TestOsloEnvelope(t *testing.T) {
	msgs := []any{
		envelope.NewMap("method", "echo", "args", envelope.NewMap("x", int64(1)), "_msg_id", "abc", "_unique_id", "u"),
		envelope.NewMap("result", "\u2603", "failure", nil, "ending", true),
		[]any{int64(1), "two"},
		"just a string",
	}
	unwrapCases := []any{
		envelope.NewMap("oslo.version", "2.0", "oslo.message", `{"a": 1}`),
		envelope.NewMap("oslo.version", "2.5", "oslo.message", `[1, 2]`),
		envelope.NewMap("oslo.version", "1.0", "oslo.message", `{}`),
		envelope.NewMap("oslo.version", "3.0", "oslo.message", `{}`),
		envelope.NewMap("oslo.version", "2.0.1", "oslo.message", `{}`),
		envelope.NewMap("oslo.version", "2.0"),
		envelope.NewMap("oslo.message", `{}`),
		envelope.NewMap("method", "m"),
		"not a dict",
		[]any{"list"},
		envelope.NewMap("oslo.version", "2.0", "oslo.message", `{"broken": `),
	}
	for _, env := range []string{EnvZMQ814, EnvModern} {
		t.Run(env, func(t *testing.T) {
			p := StartPeer(t, env)
			for _, m := range msgs {
				tagged, err := ToTagged(m)
				require.NoError(t, err)
				var out struct{ Value any }
				require.NoError(t, p.Do("envelope_serialize", map[string]any{"value": tagged}, &out))
				pyWrapped, err := FromTagged(out.Value)
				require.NoError(t, err)
				goWrapped, err := envelope.Wrap(m)
				require.NoError(t, err)
				require.True(t, envelope.Equal(pyWrapped, goWrapped), "wrap: python %s go %s", envelope.Repr(pyWrapped), envelope.Repr(goWrapped))
			}
			agree := 0
			for _, c := range unwrapCases {
				tagged, err := ToTagged(c)
				require.NoError(t, err)
				var out struct{ Value any }
				pyErr := p.Do("envelope_deserialize", map[string]any{"value": tagged}, &out)
				goVal, goErr := envelope.Unwrap(c)
				if pyErr != nil {
					var pe *PyError
					require.True(t, errors.As(pyErr, &pe))
					require.Error(t, goErr, "python raised %s for %s", pe.Type, envelope.Repr(c))
					if pe.Type == "UnsupportedRpcEnvelopeVersion" {
						require.ErrorIs(t, goErr, envelope.ErrUnsupportedEnvelopeVersion)
						require.Equal(t, pe.Message, goErr.Error())
					}
					agree++
					continue
				}
				require.NoError(t, goErr, envelope.Repr(c))
				pyVal, err := FromTagged(out.Value)
				require.NoError(t, err)
				require.True(t, envelope.Equal(pyVal, goVal), "unwrap %s: python %s go %s", envelope.Repr(c), envelope.Repr(pyVal), envelope.Repr(goVal))
				agree++
			}
			t.Logf("%s: %d wraps byte-equal, %d unwraps agree", env, len(msgs), agree)
		})
	}
}
