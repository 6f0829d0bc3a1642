package rabbit

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/envelope"
)

// capturedMessage is one traced publish of a vector file.
type capturedMessage struct {
	file, id, step, kind, publisher string
	body                            []byte
	props                           Properties
	enveloped, reencodes            bool
	decoded                         any
}

func propsOf(m any) Properties {
	p := Properties{ContentType: str(m, "content_type"), ContentEncoding: str(m, "content_encoding"), Expiration: str(m, "expiration")}
	if h, ok := get(m, "headers").(*envelope.Map); ok {
		p.Headers = Args{}
		for _, kv := range h.Items() {
			p.Headers = append(p.Headers, Arg{kv.Key, kv.Value})
		}
	}
	if n, ok := get(m, "delivery_mode").(int64); ok {
		p.DeliveryMode = uint8(n)
	}
	if n, ok := get(m, "priority").(int64); ok {
		p.Priority = uint8(n)
	}
	return p
}

func capturedMessages(t testing.TB) []capturedMessage {
	var out []capturedMessage
	for _, name := range []string{"default.json", "quorum-qmanager.json", "client-probes.json"} {
		f := loadVector(t, name)
		for _, m := range list(f, "messages") {
			b, err := hex.DecodeString(str(m, "body", "hex"))
			require.NoError(t, err)
			out = append(out, capturedMessage{
				file: name, id: str(m, "id"), step: str(m, "step"), kind: str(m, "decoded", "kind"),
				publisher: str(m, "publisher"), body: b, props: propsOf(get(m, "properties")),
				enveloped: get(m, "decoded", "envelope") != nil, reencodes: get(m, "decoded", "outer_reencodes_identically") == true,
				decoded: get(m, "decoded"),
			})
		}
	}
	return out
}

func TestBodiesAgainstVectors(t *testing.T) {
	counts := map[string]int{}
	for _, m := range capturedMessages(t) {
		at := m.file + " " + m.id + " " + m.step
		var reencoded []byte
		var flat *envelope.Map
		switch {
		case m.step == "probe_envelope_2_1" || m.step == "probe_no_content_type":
			_, err := DecodeRequest(m.body, m.props)
			require.ErrorIs(t, err, ErrReject, at)
			if m.step == "probe_envelope_2_1" {
				require.ErrorIs(t, err, envelope.ErrUnsupportedEnvelopeVersion, at)
			}
			counts["rejected"]++
			continue
		case m.kind == "rpc-request":
			r, err := DecodeRequest(m.body, m.props)
			require.NoError(t, err, at)
			if r.UniqueID != "" {
				require.Regexp(t, hex32, r.UniqueID, at)
			}
			if r.IsCall() {
				require.Regexp(t, hex32, r.MsgID, at)
				require.NotEmpty(t, r.ReplyQ, at)
			}
			_, err = r.Parse()
			require.NoError(t, err, at)
			want := get(m.decoded, "context_unflattened")
			if r.Context == nil {
				r.Context = envelope.NewMap()
			}
			require.True(t, envelope.Equal(want, r.Context), "%s: context %v, want %v", at, r.Context, want)
			flat = r.Map()
			if m.enveloped {
				reencoded, err = EncodeRequest(r)
			} else {
				reencoded, err = envelope.MarshalJSON(KombuEncode(flat))
			}
			require.NoError(t, err, at)
		case strings.HasPrefix(m.kind, "rpc-reply"):
			r, err := DecodeReply(m.body, m.props)
			if m.step == "probe_reply_without_failure_key" {
				require.ErrorIs(t, err, ErrMissingFailure, at)
				counts["missing failure"]++
				continue
			}
			require.NoError(t, err, at)
			require.Regexp(t, hex32, r.MsgID, at)
			require.Regexp(t, hex32, r.UniqueID, at)
			require.Equal(t, strings.Contains(m.kind, "heartbeat"), r.IsHeartbeat(), at)
			if f, ok := r.Failure.(string); ok {
				_, err := envelope.ParseFailure(f)
				require.NoError(t, err, at)
			}
			flat = r.Map()
			if m.step == "probe_reply_without_ending" {
				flat.Delete("ending") // the probe left it out: Ending false is the reading
				require.False(t, r.Ending)
			}
			if m.enveloped {
				reencoded, err = encodeEnveloped(flat)
			} else {
				reencoded, err = envelope.MarshalJSON(KombuEncode(flat))
			}
			require.NoError(t, err, at)
		case m.kind == "notification":
			n, v2, err := DecodeNotification(m.body, m.props)
			require.NoError(t, err, at)
			require.Equal(t, m.enveloped, v2, at)
			require.Regexp(t, uuid4Re, str(n.Message, "message_id"), at)
			require.Regexp(t, hex32, n.UniqueID, at)
			parsed, err := envelope.ParseNotification(n.Message)
			require.NoError(t, err, at)
			require.Regexp(t, `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$`, parsed.Timestamp, at)
			if !v2 {
				// kombu's datetime object came back as a time.Time.
				if la := get(n.Message, "payload", "launched_at"); la != nil {
					require.IsType(t, time.Time{}, la, at)
				}
			}
			flat = n.Map()
			reencoded, err = EncodeNotification(n, v2)
			require.NoError(t, err, at)
		default:
			t.Fatalf("%s: unknown kind %q", at, m.kind)
		}
		// The decoded structure is the harness's, key for key.
		require.Equal(t, keysOf(list(m.decoded, "key_order")), flat.Keys(), at)
		require.True(t, envelope.Equal(get(m.decoded, "message"), KombuEncode(flat)), "%s: message differs", at)
		if m.reencodes {
			require.Equal(t, string(m.body), string(reencoded), at)
			counts["byte-identical "+m.kind]++
		} else {
			counts["compact"]++
		}
		// Properties of the real components' publishes.
		if !strings.Contains(m.publisher, "probe") {
			var timeout time.Duration
			if m.props.Expiration != "" {
				ms, err := time.ParseDuration(m.props.Expiration + "ms")
				require.NoError(t, err)
				timeout = ms
			}
			require.Equal(t, PublishProperties("", timeout), m.props, at)
		}
	}
	t.Log(counts)
	require.Equal(t, 2, counts["rejected"])
	require.Equal(t, 1, counts["missing failure"])
	require.GreaterOrEqual(t, counts["compact"], 2)
	require.Greater(t, counts["byte-identical notification"], 10)
}

func keysOf(l []any) []string {
	out := make([]string, len(l))
	for i, k := range l {
		out[i] = k.(string)
	}
	return out
}

// TestClientProbes folds each probe's replies as the Python client did.
func TestClientProbes(t *testing.T) {
	f := loadVector(t, "client-probes.json")
	for _, p := range list(f, "probes") {
		name := str(p, "probe")
		var w ReplyWaiter
		var done bool
		var result, failure any
		var err error
		heartbeats := 0
		for _, s := range list(p, "replies_sent") {
			var r Reply
			r, err = DecodeReply([]byte(s.(string)), PublishProperties("", 0))
			if err != nil {
				break
			}
			var hb bool
			done, hb, result, failure = w.Add(r)
			if hb {
				heartbeats++
			}
		}
		ok := get(p, "client_result", "ok") == true
		switch name {
		case "reply_without_failure_key":
			require.ErrorIs(t, err, ErrMissingFailure, name)
		case "reply_without_ending":
			require.NoError(t, err)
			require.False(t, done, "%s: Python times out", name)
		case "heartbeat_without_call_monitor":
			// Python fails with AttributeError; goslo sees the heartbeat
			// and then the result.
			require.Equal(t, 1, heartbeats, name)
			require.True(t, done, name)
		case "failure_foreign_module":
			require.True(t, done, name)
			re, err := envelope.ParseFailure(failure.(string))
			require.NoError(t, err)
			require.Equal(t, "nova.exception", re.Module)
			require.False(t, ok)
		default:
			require.NoError(t, err, name)
			require.True(t, done, name)
			require.True(t, ok, name)
			require.Nil(t, failure, name)
			if name == "bare_reply_with_kombu_datetime" {
				require.Equal(t, time.Date(2017, 3, 14, 15, 9, 26, 535897000, time.UTC), get(result, "when"))
			} else {
				require.True(t, envelope.Equal(get(p, "client_result", "result"), result), name)
			}
		}
	}
}

func TestCompressedBodies(t *testing.T) {
	f := loadVector(t, "options-matrix.json")
	n := 0
	for _, v := range list(f, "variants") {
		if str(v, "variant") != "kombu_compression_gzip" {
			continue
		}
		for _, m := range list(v, "publishes") {
			body, _ := hex.DecodeString(str(m, "body", "hex"))
			plain, _ := hex.DecodeString(str(m, "decoded", "decompressed", "hex"))
			props := propsOf(get(m, "properties"))
			h, _ := props.Headers.Get(CompressionHeader)
			require.Equal(t, CompressionGzip, h)
			got, err := DecompressBody(body, props.Headers)
			require.NoError(t, err)
			require.Equal(t, plain, got)
			// Our compression reads back the same, and carries the header.
			z, err := CompressBody(plain, CompressionGzip)
			require.NoError(t, err)
			require.Equal(t, []byte{0x78, 0x9c}, z[:2])
			back, err := DecompressBody(z, Args{{CompressionHeader, CompressionGzip}})
			require.NoError(t, err)
			require.Equal(t, plain, back)
			var timeout time.Duration
			if e := props.Expiration; e != "" {
				timeout, _ = time.ParseDuration(e + "ms")
			}
			require.Equal(t, PublishProperties(CompressionGzip, timeout), props)
			n++
		}
	}
	require.Greater(t, n, 0)
	_, err := CompressBody([]byte("x"), CompressionBZ2)
	require.ErrorIs(t, err, ErrBZ2Unsupported)
	_, err = DecompressBody([]byte("junk"), Args{{CompressionHeader, CompressionGzip}})
	require.ErrorIs(t, err, ErrReject)
	_, err = DecompressBody([]byte("junk"), Args{{CompressionHeader, "application/x-lzma"}})
	require.True(t, errors.Is(err, ErrReject))
}
