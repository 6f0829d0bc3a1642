package envelope

import (
	"encoding/json"
	"testing"

	"github.com/goslo/goslo/internal/vectors"
)

// callEcho returns the captured call_echo request payload of a codec.
func callEcho(b *testing.B, serialization string) []byte {
	for _, p := range vectors.Payloads(b) {
		if p.Serialization == serialization && p.MessageType == "CALL" && p.File == "direct-"+serialization+".json" {
			return p.Bytes
		}
	}
	b.Fatal("no call_echo payload")
	return nil
}

func benchDecode(b *testing.B, c Codec) {
	p := callEcho(b, c.Name())
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodePair(c, p); err != nil {
			b.Fatal(err)
		}
	}
}

func benchEncode(b *testing.B, c Codec) {
	p := callEcho(b, c.Name())
	ctx, msg, err := DecodePair(c, p)
	if err != nil {
		b.Fatal(err)
	}
	req, _ := ParseRequest(msg)
	buf := make([]byte, 0, 2*len(p))
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = AppendPair(c, buf[:0], ctx, req.Map()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSONDecodeRequest(b *testing.B)    { benchDecode(b, JSON) }
func BenchmarkJSONEncodeRequest(b *testing.B)    { benchEncode(b, JSON) }
func BenchmarkMsgpackDecodeRequest(b *testing.B) { benchDecode(b, Msgpack) }
func BenchmarkMsgpackEncodeRequest(b *testing.B) { benchEncode(b, Msgpack) }

// BenchmarkStdlibJSONDecodeRequest is the baseline: encoding/json into
// interface{} (which loses key order and int precision).
func BenchmarkStdlibJSONDecodeRequest(b *testing.B) {
	p := callEcho(b, "json")
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		var v any
		if err := json.Unmarshal(p, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStdlibJSONEncodeRequest is the baseline for encoding.
func BenchmarkStdlibJSONEncodeRequest(b *testing.B) {
	var v any
	if err := json.Unmarshal(callEcho(b, "json"), &v); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(v); err != nil {
			b.Fatal(err)
		}
	}
}
