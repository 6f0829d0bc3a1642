package envelope

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/internal/vectors"
)

// TestVectorPayloads decodes every payload frame the real Python driver
// sent, reads it as the message its type says, and builds the frame again
// from the typed message: the bytes must equal the capture.
func TestVectorPayloads(t *testing.T) {
	counts := map[string]int{}
	for _, p := range vectors.Payloads(t) {
		name := p.File + " " + p.Vector
		c, err := CodecByName(p.Serialization)
		require.NoError(t, err, name)

		a, b, err := DecodePair(c, p.Bytes)
		require.NoError(t, err, name)
		counts[p.Serialization+" decoded"]++

		var rebuilt []byte
		switch p.MessageType {
		case "CALL", "CAST", "CAST_FANOUT":
			req, err := ParseRequest(b)
			require.NoError(t, err, name)
			require.NotEmpty(t, req.Method, name)
			rebuilt, err = EncodeRequest(c, a, req)
			require.NoError(t, err, name)
		case "NOTIFY":
			n, err := ParseNotification(b)
			require.NoError(t, err, name)
			require.Len(t, n.MessageID, 36, name)
			_, err = NormalizePriority(n.Priority)
			require.NoError(t, err, name)
			rebuilt, err = AppendPair(c, nil, a, n.Map())
			require.NoError(t, err, name)
		case "REPLY":
			body, remote, err := DecodeReply(c, p.Bytes)
			require.NoError(t, err, name)
			if remote != nil {
				require.NotEmpty(t, remote.Class, name)
				require.NotEmpty(t, remote.Traceback, name)
				counts["failures parsed"]++
				rebuilt, err = AppendPair(c, nil, nil, b)
			} else {
				rebuilt, err = AppendPair(c, nil, body, nil)
			}
			require.NoError(t, err, name)
		default:
			t.Fatalf("%s: unexpected message type %s with a payload", name, p.MessageType)
		}
		require.Equal(t, string(p.Bytes), string(rebuilt), "%s: rebuilt frame differs", name)
		counts[p.Serialization+" re-encoded byte-equal"]++
	}
	t.Logf("vector payloads: %v", counts)
	require.Positive(t, counts["json re-encoded byte-equal"])
	require.Positive(t, counts["msgpack re-encoded byte-equal"])
}

// TestVectorFailures checks the dispatcher and endpoint failures captured
// in every codec against the classes oslo raises, and that Go writes the
// same document for them (traceback aside).
func TestVectorFailures(t *testing.T) {
	seen := map[string]int{}
	for _, p := range vectors.Payloads(t) {
		if p.MessageType != "REPLY" {
			continue
		}
		c, _ := CodecByName(p.Serialization)
		_, remote, err := DecodeReply(c, p.Bytes)
		require.NoError(t, err)
		if remote == nil {
			continue
		}
		seen[remote.Class]++
		var twin *RemoteError
		switch remote.Class {
		case "NoSuchMethod":
			require.ErrorIs(t, remote, ErrNoSuchMethod)
			twin = NoSuchMethodError("no_such_method")
		case "UnsupportedVersion":
			require.ErrorIs(t, remote, ErrUnsupportedVersion)
			twin = UnsupportedVersionError("2.0", "echo")
		case "ValueError":
			require.Equal(t, ModuleBuiltins, remote.Module)
			require.NotErrorIs(t, remote, ErrNoSuchMethod)
			twin = ValueError(remote.Message)
		default:
			t.Fatalf("unexpected failure class %s in %s %s", remote.Class, p.File, p.Vector)
		}
		f, err := MarshalFailure(twin)
		require.NoError(t, err)
		mine, err := ParseFailure(f)
		require.NoError(t, err)
		require.Equal(t, remote.Class, mine.Class)
		require.Equal(t, remote.Module, mine.Module)
		require.Equal(t, remote.Message, mine.Message)
		require.True(t, Equal(remote.Args, mine.Args), "args %s vs %s", Repr(remote.Args), Repr(mine.Args))
		require.True(t, Equal(remote.Kwargs, mine.Kwargs))
	}
	t.Logf("captured failures checked: %v", seen)
	require.Len(t, seen, 3)
}
