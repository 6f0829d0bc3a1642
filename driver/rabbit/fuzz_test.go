package rabbit

import (
	"testing"

	"github.com/goslo/goslo/envelope"
)

// seedBodies adds every captured body of the scenario files to f.
func seedBodies(f *testing.F, kind string) {
	for _, m := range capturedMessages(f) {
		if kind == "" || m.kind == kind || (kind == "rpc-reply" && len(m.kind) > 9 && m.kind[:9] == "rpc-reply") {
			f.Add(m.body, m.props.ContentType, true)
		}
	}
	f.Add([]byte(`{"oslo.version": "2.1", "oslo.message": "{}"}`), ContentTypeJSON, false)
	f.Add([]byte(`{"a": {"__type__": "datetime", "__value__": "2017-03-14T15:09:26"}}`), ContentTypeJSON, false)
	f.Add([]byte{0x78, 0x9c, 0x03, 0x00}, ContentTypeJSON, true)
}

func props(ct string, _ bool) Properties { return Properties{ContentType: ct} }

// Each decoder must not panic; what it accepts must re-encode and decode
// to the same thing.

func FuzzDecodeRequest(f *testing.F) {
	seedBodies(f, "rpc-request")
	f.Fuzz(func(t *testing.T, body []byte, ct string, compressed bool) {
		p := props(ct, false)
		if compressed {
			p.Headers = Args{{CompressionHeader, CompressionGzip}}
		}
		r, err := DecodeRequest(body, p)
		if err != nil {
			return
		}
		b, err := EncodeRequest(r)
		if err != nil {
			return // a value JSON cannot carry back (e.g. a kombu date)
		}
		r2, err := DecodeRequest(b, PublishProperties("", 0))
		if err != nil {
			t.Fatalf("re-encoded request does not decode: %v\n%s", err, b)
		}
		if !envelope.Equal(r.Map(), r2.Map()) && !envelope.Equal(KombuEncode(r.Map()), KombuEncode(r2.Map())) {
			t.Logf("round trip changed the request (time values become strings inside the envelope): %v / %v", r.Map(), r2.Map())
		}
	})
}

func FuzzDecodeReply(f *testing.F) {
	seedBodies(f, "rpc-reply")
	f.Fuzz(func(t *testing.T, body []byte, ct string, compressed bool) {
		p := props(ct, false)
		if compressed {
			p.Headers = Args{{CompressionHeader, CompressionBZ2}}
		}
		r, err := DecodeReply(body, p)
		if err != nil {
			return
		}
		var w ReplyWaiter
		w.Add(r)
		if b, err := EncodeReply(r); err == nil {
			if _, err := DecodeReply(b, PublishProperties("", 0)); err != nil {
				t.Fatalf("re-encoded reply does not decode: %v\n%s", err, b)
			}
		}
	})
}

func FuzzDecodeNotification(f *testing.F) {
	seedBodies(f, "notification")
	f.Fuzz(func(t *testing.T, body []byte, ct string, compressed bool) {
		p := props(ct, false)
		if compressed {
			p.Headers = Args{{CompressionHeader, CompressionGzip}}
		}
		n, v2, err := DecodeNotification(body, p)
		if err != nil {
			return
		}
		if b, err := EncodeNotification(n, v2); err == nil {
			if _, _, err := DecodeNotification(b, PublishProperties("", 0)); err != nil {
				t.Fatalf("re-encoded notification does not decode: %v\n%s", err, b)
			}
		}
	})
}
