package zmqwire

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/internal/vectors"
)

func typeByName(n string) MsgType {
	for t := Call; t <= Ack; t++ {
		if t.String() == n {
			return t
		}
	}
	return 0
}

// TestReplayVectorFrames parses every captured message with the parser of
// its hop, checks type and message id against the capture, and builds the
// frames again with the builder of that hop: byte-equal.
func TestReplayVectorFrames(t *testing.T) {
	counts := map[string]int{}
	for _, name := range vectors.Files(t) {
		if name == "zmtp-raw.json" || name == "probes-direct-json.json" {
			continue
		}
		f := vectors.Load(t, name)
		for _, v := range f.Vectors {
			frames := v.FrameBytes()
			want := typeByName(v.MessageType)
			label := name + " " + v.Name
			var rebuilt [][]byte
			switch {
			case strings.HasPrefix(v.Hop, "client->server (direct)"):
				in, err := ParseDirectRequest(frames)
				require.NoError(t, err, label)
				require.Equal(t, want, in.Type, label)
				require.Equal(t, v.Decoded.MessageID, in.MsgID, label)
				rebuilt = append([][]byte{in.Identity}, DirectRequest(in.Type, in.MsgID, in.Payload)...)
			case strings.HasPrefix(v.Hop, "server->client (direct)"):
				r, err := ParseDirectResponse(frames)
				require.NoError(t, err, label)
				require.Equal(t, want, r.Type, label)
				rebuilt = DirectReply(nil, r.MsgID, r.Payload)[1:]
			case strings.HasPrefix(v.Hop, "client->proxy"):
				// What the proxy frontend ROUTER receives: sender first.
				out, typ, err := ProxyRoute(frames)
				require.NoError(t, err, label)
				require.Equal(t, want, typ, label)
				rebuilt = append([][]byte{frames[0]}, ProxyRequest(typ, frames[4], string(frames[5]), frames[6])...)
				require.Equal(t, frames[4], out[0], "%s: routed to the key", label)
				counts["proxy routing"]++
			case strings.HasPrefix(v.Hop, "proxy->server"):
				in, err := ParseProxyServerRequest(frames)
				require.NoError(t, err, label)
				require.Equal(t, want, in.Type, label)
				rebuilt = [][]byte{{}, []byte("1.0"), in.Identity, in.Type.Frame(), []byte(in.MsgID), in.Payload}
			case strings.HasPrefix(v.Hop, "server->proxy"):
				out, typ, err := ProxyRoute(frames)
				require.NoError(t, err, label)
				require.Equal(t, want, typ, label)
				if typ == Reply {
					rebuilt = append([][]byte{frames[0]}, ProxyReply(frames[4], string(frames[5]), frames[6])...)
				} else {
					rebuilt = append([][]byte{frames[0]}, ProxyAck(frames[4], string(frames[5]))...)
				}
				// The routed message is what the client DEALER gets (after
				// its ROUTER consumed the address frame).
				r, err := ParseProxyResponse(out[1:])
				require.NoError(t, err, label)
				require.Equal(t, frames[0], r.Sender, label)
				counts["proxy routing"]++
			case strings.HasPrefix(v.Hop, "proxy->client"):
				r, err := ParseProxyResponse(frames)
				require.NoError(t, err, label)
				require.Equal(t, want, r.Type, label)
				rebuilt = [][]byte{{}, []byte("1.0"), r.Sender, r.Type.Frame(), []byte(r.MsgID)}
				if r.Type == Reply {
					rebuilt = append(rebuilt, r.Payload)
				}
			case strings.HasPrefix(v.Hop, "proxy PUB -> server SUB"):
				in, topic, err := ParseSub(frames)
				require.NoError(t, err, label)
				require.Equal(t, want, in.Type, label)
				rebuilt = Publish(topic, in.Type, in.MsgID, in.Payload)
			case strings.HasPrefix(v.Hop, "server SUB -> proxy PUB"):
				require.Equal(t, byte(1), frames[0][0], label)
				counts["subscriptions"]++
				continue
			default:
				t.Fatalf("%s: unknown hop %q", label, v.Hop)
			}
			require.Equal(t, len(frames), len(rebuilt), label)
			for i := range frames {
				require.True(t, bytes.Equal(frames[i], rebuilt[i]), "%s frame %d: %q vs %q", label, i, frames[i], rebuilt[i])
			}
			counts[v.Hop]++
		}
	}
	t.Logf("frames replayed byte-equal by hop: %v", counts)
}

// TestProbes: the captured probes get the reaction the Python server had:
// a drop (no reply, nothing dispatched) or a normal dispatch.
func TestProbes(t *testing.T) {
	b, err := readVectorFile("probes-direct-json.json")
	require.NoError(t, err)
	var doc struct {
		Probes []struct {
			Name         string            `json:"name"`
			SentFrames   []vectors.Frame   `json:"sent_frames"`
			Replies      []json.RawMessage `json:"server_replies"`
			Dispatched   []json.RawMessage `json:"server_dispatched"`
			ServerLogged []string          `json:"server_log_lines"`
		} `json:"probes"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	require.Len(t, doc.Probes, 4)
	for _, p := range doc.Probes {
		frames := [][]byte{[]byte("probe-" + p.Name)}
		for _, f := range p.SentFrames {
			frames = append(frames, f.Bytes())
		}
		in, err := ParseDirectRequest(frames)
		if len(p.Replies) == 0 && len(p.Dispatched) == 0 {
			require.ErrorIs(t, err, ErrBadFrames, p.Name)
			// The same words the Python server logged.
			require.Contains(t, p.ServerLogged[0], err.(*FrameError).Reason, p.Name)
			continue
		}
		require.NoError(t, err, p.Name)
		require.Equal(t, Call, in.Type, p.Name)
	}
}

func TestFrameErrors(t *testing.T) {
	good := DirectRequest(Call, "id", []byte("[{}, {}]"))
	with := func(i int, v []byte) [][]byte {
		f := append([][]byte{[]byte("client")}, good...)
		f[i] = v
		return f
	}
	for name, frames := range map[string][][]byte{
		"no identity":    with(0, nil),
		"delimiter":      with(1, []byte("x")),
		"version":        with(2, []byte("1.1")),
		"type 5":         with(3, []byte("5")),
		"type garbage":   with(3, []byte("x")),
		"empty id":       with(4, nil),
		"bad utf8 id":    with(4, []byte{0xff}),
		"too few frames": append([][]byte{[]byte("c")}, good[:4]...),
		"extra frame":    append(append([][]byte{[]byte("c")}, good...), []byte("x")),
		"nothing":        nil,
	} {
		_, err := ParseDirectRequest(frames)
		require.ErrorIs(t, err, ErrBadFrames, name)
	}
	in, err := ParseDirectRequest(with(3, []byte(" 01")))
	require.NoError(t, err, "Python's int() reads ' 01'")
	require.Equal(t, Call, in.Type)
	_, _, err = ProxyRoute([][]byte{{1}, {}, []byte("2.0"), []byte("1"), []byte("k"), []byte("m")})
	require.ErrorIs(t, err, ErrBadFrames)
	_, _, err = ParseSub([][]byte{[]byte("t"), []byte("1.0"), []byte("1"), []byte("m"), []byte("p")})
	require.ErrorIs(t, err, ErrBadFrames)
}

// FuzzParseFrames: no parser panics on any multipart message.
func FuzzParseFrames(f *testing.F) {
	for _, name := range []string{"direct-json.json", "direct-msgpack.json", "proxy-json.json", "proxy-msgpack.json",
		"proxy-acks-json.json", "pubsub-json.json", "probes-direct-json.json"} {
		for _, v := range vectors.Load(f, name).Vectors {
			f.Add(joinFrames(v.FrameBytes()))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		frames := splitFrames(b)
		_, _ = ParseDirectRequest(frames)
		_, _ = ParseDirectResponse(frames)
		_, _ = ParseProxyServerRequest(frames)
		_, _ = ParseProxyResponse(frames)
		if out, _, err := ProxyRoute(frames); err == nil {
			// The rule only swaps two frames: routing the output back
			// (as a response would be) restores the sender and the key.
			if len(out) != len(frames) || string(out[0]) != string(frames[4]) || string(out[3]) != string(frames[0]) {
				t.Fatalf("routing rule broken: %q -> %q", frames, out)
			}
		}
		_, _, _ = ParseSub(frames)
	})
}

// joinFrames/splitFrames encode a multipart message in one byte string
// for the fuzzer (frames separated by 0x00 0xff).
func joinFrames(frames [][]byte) []byte { return bytes.Join(frames, []byte{0, 0xff}) }
func splitFrames(b []byte) [][]byte     { return bytes.Split(b, []byte{0, 0xff}) }

// TestFrameErrorsNameTheMessage: a message dropped for a bad frame names
// its id (in FrameError.MsgID, hence the drop's log line) whenever the id
// frame is there, whatever frame was wrong.
func TestFrameErrorsNameTheMessage(t *testing.T) {
	b := func(s ...string) [][]byte {
		out := make([][]byte, len(s))
		for i, f := range s {
			out[i] = []byte(f)
		}
		return out
	}
	for _, c := range []struct {
		name  string
		parse func([][]byte) error
		in    [][]byte
	}{
		{"direct request, 7 frames", func(f [][]byte) error { _, err := ParseDirectRequest(f); return err }, b("c", "", "1.0", "1", "mid-1", "p", "extra")},
		{"direct request, not a request", func(f [][]byte) error { _, err := ParseDirectRequest(f); return err }, b("c", "", "1.0", "5", "mid-1", "p")},
		{"direct response, not a response", func(f [][]byte) error { _, err := ParseDirectResponse(f); return err }, b("", "1.0", "1", "mid-1", "p")},
		{"proxy server request, 7 frames", func(f [][]byte) error { _, err := ParseProxyServerRequest(f); return err }, b("", "1.0", "rid", "1", "mid-1", "p", "x")},
		{"proxy server request, no reply id", func(f [][]byte) error { _, err := ParseProxyServerRequest(f); return err }, b("", "1.0", "", "1", "mid-1", "p")},
		{"proxy response, not a response", func(f [][]byte) error { _, err := ParseProxyResponse(f); return err }, b("", "1.0", "s", "2", "mid-1", "p")},
		{"proxy input, unknown type", func(f [][]byte) error { _, err := CheckProxyInput(f); return err }, b("c", "", "1.0", "9", "k", "mid-1", "p")},
		{"proxy input, bad version", func(f [][]byte) error { _, err := CheckProxyInput(f); return err }, b("c", "", "2.0", "1", "k", "mid-1", "p")},
		{"sub, not a fanout", func(f [][]byte) error { _, _, err := ParseSub(f); return err }, b("topic", "1.0", "1", "mid-1", "p")},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.parse(c.in)
			var fe *FrameError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, "mid-1", fe.MsgID)
			require.Contains(t, err.Error(), "(message mid-1)")
		})
	}
}
