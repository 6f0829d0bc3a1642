package envelope

import (
	"testing"

	"github.com/goslo/goslo/internal/vectors"
)

// FuzzParseFailure: any text either parses into a *RemoteError that writes
// back and parses again to the same fields, or is a *DecodeError.
func FuzzParseFailure(f *testing.F) {
	for _, p := range vectors.Payloads(f) {
		if p.MessageType != "REPLY" {
			continue
		}
		c, _ := CodecByName(p.Serialization)
		if _, failure, err := DecodePair(c, p.Bytes); err == nil {
			if s, ok := failure.(string); ok {
				f.Add(s)
			}
		}
	}
	f.Add(`{}`)
	f.Add(`{"class": "X", "tb": [], "args": [1, 2.5, null], "kwargs": {"a": 1}}`)
	f.Fuzz(func(t *testing.T, s string) {
		re, err := ParseFailure(s)
		if err != nil {
			if _, ok := err.(*DecodeError); !ok {
				t.Fatalf("non-DecodeError %T: %v", err, err)
			}
			return
		}
		out, err := MarshalFailure(re)
		if err != nil {
			return // e.g. a value JSON decoding allows but encoding refuses
		}
		again, err := ParseFailure(out)
		if err != nil {
			t.Fatalf("re-parse of our own failure %q: %v", out, err)
		}
		stripped := ToRemoteError(re)
		if again.Class != stripped.Class || again.Module != stripped.Module || again.Message != stripped.Message {
			t.Fatalf("fields changed: %+v vs %+v", again, re)
		}
	})
}

// FuzzDecodePair: payload frames in either codec decode to a pair or fail
// with a *DecodeError; never a panic.
func FuzzDecodePair(f *testing.F) {
	for _, p := range vectors.Payloads(f) {
		f.Add(p.Serialization == "msgpack", p.Bytes)
	}
	f.Fuzz(func(t *testing.T, mp bool, b []byte) {
		c := JSON
		if mp {
			c = Msgpack
		}
		_, msg, err := DecodePair(c, b)
		if err != nil {
			if _, ok := err.(*DecodeError); !ok {
				t.Fatalf("non-DecodeError %T: %v", err, err)
			}
			return
		}
		_, _ = ParseRequest(msg)
		_, _ = ParseNotification(msg)
		_, _, _ = DecodeReply(c, b)
	})
}

// FuzzUnwrap: an oslo envelope with any version and inner text either
// unwraps or fails with a typed error; what Wrap makes always unwraps to
// the value wrapped.
func FuzzUnwrap(f *testing.F) {
	f.Add("2.0", `{"method": "echo", "args": {}}`)
	f.Add("2.5", `[1, 2.5, "x"]`)
	f.Add("1.0", `{}`)
	f.Add("2.x", `{}`)
	f.Add("2", `{}`)
	for _, p := range vectors.Payloads(f) {
		if p.Serialization == "json" {
			f.Add("2.0", string(p.Bytes))
		}
	}
	f.Fuzz(func(t *testing.T, version, inner string) {
		v, err := Unwrap(NewMap(EnvelopeVersionKey, version, EnvelopeMessageKey, inner))
		if err != nil {
			return
		}
		w, err := Wrap(v)
		if err != nil {
			return
		}
		back, err := Unwrap(w)
		if err != nil || !Equal(back, v) {
			t.Fatalf("wrap/unwrap of %s: %v %s", Repr(v), err, Repr(back))
		}
	})
}
