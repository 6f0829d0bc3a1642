package envelope

import (
	"strings"
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

func seedCodec(f *testing.F, serialization string) {
	for _, p := range vectors.Payloads(f) {
		if p.Serialization == serialization {
			f.Add(p.Bytes)
		}
	}
}

// roundTrip: what decodes encodes (unless the model holds something the
// codec cannot write, e.g. a JSON big int in msgpack) and decodes again to
// an equal value.
func roundTrip(t *testing.T, c Codec, b []byte) {
	v, err := c.Decode(b)
	if err != nil {
		if _, ok := err.(*DecodeError); !ok {
			t.Fatalf("non-DecodeError %T: %v", err, err)
		}
		return
	}
	out, err := c.Append(nil, v)
	if err != nil {
		if _, ok := err.(*EncodeError); !ok {
			t.Fatalf("non-EncodeError %T: %v", err, err)
		}
		return
	}
	back, err := c.Decode(out)
	if err != nil {
		t.Fatalf("our own output does not decode: %v\n%x", err, out)
	}
	if !Equal(v, back) {
		t.Fatalf("round trip changed the value: %s vs %s", Repr(v), Repr(back))
	}
}

// FuzzDecodeJSON fuzzes the JSON decoder, seeded with every captured JSON
// payload.
func FuzzDecodeJSON(f *testing.F) {
	seedCodec(f, "json")
	for _, s := range []string{`NaN`, `[-0.0, 1e400]`, `"\ud83d\ude80"`, `{"a": 1, "a": 2}`, `123456789012345678901234567890`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { roundTrip(t, JSON, b) })
}

// FuzzDecodeMsgpack fuzzes the msgpack decoder, seeded with every captured
// msgpack payload.
func FuzzDecodeMsgpack(f *testing.F) {
	seedCodec(f, "msgpack")
	for _, s := range []string{"d5049101", "c72000" + strings.Repeat("30", 32), "d42a07", "81c4016101"} {
		b := make([]byte, len(s)/2)
		for i := range b {
			hi, _ := unhex(s[2*i])
			lo, _ := unhex(s[2*i+1])
			b[i] = hi<<4 | lo
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { roundTrip(t, Msgpack, b) })
}
