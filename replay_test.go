package goslo

import (
	"context"
	"errors"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/vectors"
)

// The inputs of the captured actions (vectors README, "inputs").
func captureCtx() *Map {
	return NewMap("user", "alice", "tenant", "t-42", "request_id", "req-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
		"user_name", "Zo\u00eb \u00dcnic\u00f8de \u2713", "roles", []any{"admin", "member"},
		"nested", NewMap("region", "RegionOne", "quota", NewMap("cores", int64(8), "ram_mb", int64(16384)), "flags", []any{true, false, nil}))
}

func captureArgs() *Map {
	return NewMap("an_int", int64(42), "a_neg_int", int64(-7), "a_big_int", int64(4294967296), "a_float", 3.14159,
		"a_true", true, "a_false", false, "a_none", nil, "a_list", []any{int64(1), "two", 3.5, nil, []any{false}},
		"a_dict", NewMap("k", "v", "inner", NewMap("x", []any{int64(1), int64(2)}, "y", NewMap("z", "deep"))),
		"a_unicode", "na\u00efve caf\u00e9 \u65e5\u672c\u8a9e \U0001F680",
		"a_datetime", time.Date(2017, 3, 14, 15, 9, 26, 535897000, time.UTC))
}

// referenceEndpoint behaves as the capture's Python endpoint (target 1.3).
func referenceEndpoint() *Endpoint {
	return NewEndpoint("", "1.3").
		Handle("echo", func(_ context.Context, rctx *Map, args *Map) (any, error) {
			u, _ := rctx.Get("user")
			return NewMap("echoed", args, "ctx_user", u, "server_dt", time.Date(2017, 3, 14, 15, 9, 26, 535897000, time.UTC),
				"a_tuple", []any{int64(1), "x"}, "ok", true), nil
		}).
		Handle("boom", func(context.Context, *Map, *Map) (any, error) {
			return nil, envelope.ValueError("kaboom: sp\u00e9cial \u2603")
		})
}

func replayTransport(t *testing.T, serialization string) *Transport {
	return localTransport(t, WithOptions(func(c *compat.Config) { c.ZMQ.RPCZMQSerialization = serialization }))
}

// TestReplayServer sends each captured CALL, byte for byte, to a goslo
// server with the capture's endpoint and compares the reply with the
// captured reply: the payload bytes for results, and class, module,
// message, args and kwargs for failures (tracebacks are per implementation).
func TestReplayServer(t *testing.T) {
	for _, file := range []string{"direct-json.json", "direct-msgpack.json"} {
		f := vectors.Load(t, file)
		ser := f.Vectors[0].Serialization
		t.Run(ser, func(t *testing.T) {
			tr := replayTransport(t, ser)
			srv, err := NewRPCServer(tr, Target{Topic: "demo", Server: "srv1"}, referenceEndpoint())
			require.NoError(t, err)
			require.NoError(t, srv.Start(context.Background()))
			defer srv.Stop(context.Background())

			zctx, _ := zmq.NewContext()
			defer zctx.Term()
			d, _ := zctx.NewSocket(zmq.DEALER)
			defer d.Close()
			d.SetLinger(0)
			require.NoError(t, d.Connect("tcp://"+srv.Addr()))
			d.SetRcvtimeo(5 * time.Second)

			replies := map[string]vectors.Vector{}
			for _, v := range f.Vectors {
				if v.MessageType == "REPLY" {
					replies[v.Action] = v
				}
			}
			n := 0
			for _, v := range f.Vectors {
				if v.MessageType != "CALL" {
					continue
				}
				frames := v.FrameBytes()[1:] // the identity is the ROUTER's addition
				parts := make([]any, len(frames))
				for i, fr := range frames {
					parts[i] = fr
				}
				_, err := d.SendMessage(parts...)
				require.NoError(t, err)
				got, err := d.RecvMessageBytes(0)
				require.NoError(t, err, v.Name)
				want := replies[v.Action].FrameBytes()
				require.Len(t, got, len(want), v.Name)
				for i := 0; i < 4; i++ {
					require.Equal(t, want[i], got[i], "%s frame %d", v.Name, i)
				}
				codec, _ := envelope.CodecByName(ser)
				wantBody, wantRemote, err := envelope.DecodeReply(codec, want[4])
				require.NoError(t, err)
				gotBody, gotRemote, err := envelope.DecodeReply(codec, got[4])
				require.NoError(t, err)
				if wantRemote == nil {
					require.Nil(t, gotRemote, v.Name)
					require.True(t, envelope.Equal(wantBody, gotBody), "%s: %s vs %s", v.Name, envelope.Repr(wantBody), envelope.Repr(gotBody))
					require.Equal(t, string(want[4]), string(got[4]), "%s: reply payload bytes", v.Name)
				} else {
					require.NotNil(t, gotRemote, v.Name)
					require.Equal(t, wantRemote.Class, gotRemote.Class, v.Name)
					require.Equal(t, wantRemote.Module, gotRemote.Module, v.Name)
					require.Equal(t, wantRemote.Message, gotRemote.Message, v.Name)
					require.True(t, envelope.Equal(wantRemote.Args, gotRemote.Args), v.Name)
					require.True(t, envelope.Equal(wantRemote.Kwargs, gotRemote.Kwargs), v.Name)
				}
				n++
			}
			require.Equal(t, 4, n)
			t.Logf("%s: %d captured calls answered like the Python server", file, n)
		})
	}
}

// TestReplayClient has a goslo client make the captured call_echo against a
// raw ROUTER standing in for the server: the frames it sends match the
// capture (the payload byte for byte), and the captured reply, sent back,
// is the result a Python caller got.
func TestReplayClient(t *testing.T) {
	for _, file := range []string{"direct-json.json", "direct-msgpack.json"} {
		f := vectors.Load(t, file)
		ser := f.Vectors[0].Serialization
		t.Run(ser, func(t *testing.T) {
			tr := replayTransport(t, ser)
			zctx, _ := zmq.NewContext()
			defer zctx.Term()
			tap, _ := zctx.NewSocket(zmq.ROUTER)
			defer tap.Close()
			tap.SetLinger(0)
			require.NoError(t, tap.Bind("tcp://127.0.0.1:*"))
			ep, _ := tap.GetLastEndpoint()
			target := Target{Topic: "demo", Server: "srv1", Version: "1.0"}
			require.NoError(t, tr.Matchmaker().Register(context.Background(), target, ep[len("tcp://"):], compat.Router, time.Minute))

			var capReq, capReply vectors.Vector
			for _, v := range f.Vectors {
				if v.Action == "call_echo" && v.MessageType == "CALL" {
					capReq = v
				}
				if v.Action == "call_echo" && v.MessageType == "REPLY" {
					capReply = v
				}
			}
			type result struct {
				v   any
				err error
			}
			done := make(chan result, 1)
			go func() {
				cl := NewRPCClient(tr, target).Prepare(PrepareOptions{Timeout: 10 * time.Second})
				v, err := cl.Call(context.Background(), captureCtx(), "echo", captureArgs())
				done <- result{v, err}
			}()
			tap.SetRcvtimeo(10 * time.Second)
			got, err := tap.RecvMessageBytes(0)
			require.NoError(t, err)
			want := capReq.FrameBytes()
			require.Len(t, got, len(want))
			require.Len(t, got[0], 36, "a uuid4 identity")
			require.Equal(t, want[1:4], got[1:4], "delimiter, version, type")
			require.Len(t, got[4], 36, "a uuid1 message id")
			require.Equal(t, byte('1'), got[4][14], "version-1 uuid")
			require.Equal(t, string(want[5]), string(got[5]), "payload bytes equal the capture's for the same inputs")

			reply := capReply.FrameBytes()
			_, err = tap.SendMessage(got[0], reply[0], reply[1], reply[2], got[4], reply[4])
			require.NoError(t, err)
			res := <-done
			require.NoError(t, res.err)
			codec, _ := envelope.CodecByName(ser)
			body, _, _ := envelope.DecodeReply(codec, reply[4])
			require.True(t, envelope.Equal(body, res.v))
			require.False(t, errors.Is(res.err, ErrRemote))
		})
	}
}
