package goslo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	driver "github.com/goslo/goslo/driver/zmq"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/vectors"
	"github.com/goslo/goslo/internal/zmqwire"
	"github.com/goslo/goslo/matchmaker"
)

var (
	uuid4Re        = `[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`
	clientIDRe     = regexp.MustCompile(`^127\.0\.0\.1/` + uuid4Re + `$`)
	serverIDRe     = regexp.MustCompile(`^127\.0\.0\.1/demo/srv1/` + uuid4Re + `$`)
	proxyIDRe      = regexp.MustCompile(`^127\.0\.0\.1/zmq-proxy/` + uuid4Re + `$`)
	proxyFiles     = []string{"proxy-json.json", "proxy-msgpack.json", "proxy-acks-json.json", "pubsub-json.json"}
	proxyRPCFiles  = []string{"proxy-json.json", "proxy-msgpack.json", "proxy-acks-json.json"}
	errNoMoreFrame = errors.New("nothing received")
)

// newZctx is a zmq context terminated after every socket the test
// registered later has been closed (cleanups run last-in first-out).
func newZctx(t *testing.T) *zmq.Context {
	zctx, err := zmq.NewContext()
	require.NoError(t, err)
	t.Cleanup(func() { _ = zctx.Term() })
	return zctx
}

type rawSock struct {
	t *testing.T
	s *zmq.Socket
}

func newRaw(t *testing.T, zctx *zmq.Context, typ zmq.Type, identity string) *rawSock {
	s, err := zctx.NewSocket(typ)
	require.NoError(t, err)
	_ = s.SetLinger(0)
	if identity != "" {
		require.NoError(t, s.SetIdentity(identity))
	}
	t.Cleanup(func() { s.Close() })
	return &rawSock{t: t, s: s}
}

func (r *rawSock) send(frames [][]byte) {
	parts := make([]any, len(frames))
	for i, f := range frames {
		parts[i] = f
	}
	_, err := r.s.SendMessage(parts...)
	require.NoError(r.t, err)
}

// standInFrontend binds a ROUTER on loopback standing in for a proxy
// frontend and registers it in PUBLISHERS, so tr's proxy-mode clients
// connect to it.
func standInFrontend(t *testing.T, tr *Transport, zctx *zmq.Context, identity string) *rawSock {
	fe := newRaw(t, zctx, zmq.ROUTER, identity)
	require.NoError(t, fe.s.Bind("tcp://127.0.0.1:*"))
	ep, err := fe.s.GetLastEndpoint()
	require.NoError(t, err)
	require.NoError(t, tr.Matchmaker().RegisterPublisher(context.Background(),
		matchmaker.Publisher{Pub: "127.0.0.1:1", Frontend: strings.TrimPrefix(ep, "tcp://")}, time.Minute))
	return fe
}

// sendMandatory retries a ROUTER_MANDATORY send while the peer is not
// attached yet (EHOSTUNREACH), for at most 5 s.
func (r *rawSock) sendMandatory(frames [][]byte) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		parts := make([]any, len(frames))
		for i, f := range frames {
			parts[i] = f
		}
		_, err := r.s.SendMessage(parts...)
		if err == nil {
			return
		}
		require.Equal(r.t, zmq.Errno(syscall.EHOSTUNREACH), zmq.AsErrno(err), "%v", err)
		require.True(r.t, time.Now().Before(deadline), "peer %q never attached", frames[0])
		time.Sleep(time.Millisecond)
	}
}

func (r *rawSock) recv(timeout time.Duration) ([][]byte, error) {
	p := zmq.NewPoller()
	p.Add(r.s, zmq.POLLIN)
	polled, err := p.Poll(timeout)
	if err != nil {
		return nil, err
	}
	if len(polled) == 0 {
		return nil, errNoMoreFrame
	}
	return r.s.RecvMessageBytes(0)
}

func loadConfig(f *vectors.File, side string) (pubsub, acks bool) {
	var c map[string]map[string]any
	if err := json.Unmarshal(f.Config, &c); err != nil {
		panic(err)
	}
	return c[side]["use_pub_sub"] == true, c[side]["rpc_use_acks"] == true
}

// TestReplayProxyRouting drives a goslo proxy with every captured message a
// client or a server sent to the Python proxy, from sockets with the
// captured identities, and checks that what comes out on the other side is
// byte for byte what the Python proxy wrote (zmq-wire.md §6.2, §6.3),
// including the retransmissions of the acks capture and, in pub/sub, the
// published copy and the proxy's own ack.
func TestReplayProxyRouting(t *testing.T) {
	for _, file := range proxyFiles {
		t.Run(file, func(t *testing.T) {
			f := vectors.Load(t, file)
			pubsub, _ := loadConfig(f, "client")
			mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
			px, err := driver.NewProxy(context.Background(), mm, driver.ProxyOptions{Host: "127.0.0.1", BindAddress: "127.0.0.1",
				MinPort: 49153, MaxPort: 65536, BindRetries: 100, PubSub: pubsub, AckPubSub: pubsub})
			require.NoError(t, err)
			defer px.Close()
			zctx := newZctx(t)

			socks := map[string]*rawSock{}
			sockFor := func(identity, addr string) *rawSock {
				if s := socks[identity]; s != nil {
					return s
				}
				s := newRaw(t, zctx, zmq.DEALER, identity)
				require.NoError(t, s.s.Connect("tcp://"+addr))
				socks[identity] = s
				return s
			}
			var sub *rawSock
			if pubsub {
				sub = newRaw(t, zctx, zmq.SUB, "")
				require.NoError(t, sub.s.SetSubscribe(""))
				require.NoError(t, sub.s.Connect("tcp://"+px.Publisher()))
			}
			// Connect every captured peer first, so that the proxy knows
			// each identity before a message is routed to it.
			for _, v := range f.Vectors {
				fr := v.FrameBytes()
				switch {
				case strings.HasPrefix(v.Hop, "client->proxy"):
					sockFor(string(fr[0]), px.Frontend())
					if !pubsub || (v.MessageType != "CAST_FANOUT" && v.MessageType != "NOTIFY") {
						sockFor(string(fr[4]), px.Backend())
					}
				}
			}
			// The proxy routes to a peer only once its ROUTER attached the
			// peer's connection: a message it read from the peer proves it
			// (a truncated one, dropped and counted). In pub/sub, the SUB
			// gets what is published only once its subscription reached the
			// PUB: probe fanouts are sent until one comes out.
			for _, s := range socks {
				s.send([][]byte{[]byte("probe")})
			}
			require.Eventually(t, func() bool { return px.Stats().Dropped == uint64(len(socks)) }, 10*time.Second, 5*time.Millisecond,
				"the proxy never read every peer's probe: %+v", px.Stats())
			probes := uint64(len(socks))
			if pubsub {
				probe := newRaw(t, zctx, zmq.DEALER, "goslo-probe")
				require.NoError(t, probe.s.Connect("tcp://"+px.Frontend()))
				last, got := "", ""
				for i := 0; got == ""; i++ {
					require.Less(t, i, 200, "no probe fanout ever reached the SUB")
					last = fmt.Sprintf("probe-%d", i)
					probe.send(zmqwire.ProxyRequest(zmqwire.CastFanout, []byte("goslo-probe"), last, []byte("{}")))
					if m, err := sub.recv(50 * time.Millisecond); err == nil {
						require.True(t, len(m) > 3 && strings.HasPrefix(string(m[3]), "probe-"), "%q", m)
						got = string(m[3])
					}
				}
				// Every probe sent after the first that came out comes out
				// too, in order: read up to the last one.
				for got != last {
					m, err := sub.recv(10 * time.Second)
					require.NoError(t, err, "probe %s never came out", last)
					require.True(t, len(m) > 3 && strings.HasPrefix(string(m[3]), "probe-"), "%q", m)
					got = string(m[3])
				}
			}

			// What the proxy forwarded, in order; a captured proxy→peer
			// message must be among them (the capture's tap dropped some
			// outputs on purpose, to make the client resend).
			var forwarded [][][]byte
			counts := map[string]int{}
			for i, v := range f.Vectors {
				fr := v.FrameBytes()
				switch {
				case strings.HasPrefix(v.Hop, "client->proxy"), strings.HasPrefix(v.Hop, "server->proxy"):
					from := socks[string(fr[0])]
					if from == nil { // a server's first message
						from = sockFor(string(fr[0]), px.Backend())
						time.Sleep(100 * time.Millisecond)
					}
					from.send(fr[1:])
					counts["in"]++
					mt := v.MessageType
					if pubsub && (mt == "CAST_FANOUT" || mt == "NOTIFY") {
						got, err := sub.recv(5 * time.Second)
						require.NoError(t, err, v.Name)
						next := f.Vectors[i+1]
						require.Equal(t, "proxy PUB -> server SUB", next.Hop, v.Name)
						require.Equal(t, next.FrameBytes(), got, "%s: published frames", next.Name)
						counts["published"]++
						ack, err := from.recv(5 * time.Second)
						require.NoError(t, err, "%s: the proxy's ack", v.Name)
						want := f.Vectors[i+2].FrameBytes()
						require.Len(t, ack, len(want))
						require.Equal(t, want[:2], ack[:2])
						require.Regexp(t, proxyIDRe, string(ack[2]), "ack address frame: the frontend's own identity")
						require.Equal(t, want[3:], ack[3:])
						counts["pubsub acks"]++
						continue
					}
					to := socks[string(fr[4])]
					require.NotNil(t, to, "%s: routing key %q has no socket", v.Name, fr[4])
					out, err := to.recv(5 * time.Second)
					require.NoError(t, err, "%s: nothing forwarded to %q", v.Name, fr[4])
					// The rule of §6.2, whether or not the capture's tap let
					// the output through.
					rule, _, err := zmqwire.ProxyRoute(fr)
					require.NoError(t, err)
					require.Equal(t, rule[1:], out, v.Name)
					forwarded = append(forwarded, out)
				case strings.HasPrefix(v.Hop, "proxy->server"), strings.HasPrefix(v.Hop, "proxy->client"):
					if pubsub && (v.MessageType == "ACK" && proxyIDRe.Match(fr[2])) {
						continue // the pub/sub ack, checked above
					}
					found := -1
					for j, out := range forwarded {
						if reflect.DeepEqual(fr, out) {
							found = j
							break
						}
					}
					require.GreaterOrEqual(t, found, 0, "%s: the goslo proxy never wrote the frames the Python proxy wrote", v.Name)
					forwarded = append(forwarded[:found], forwarded[found+1:]...)
					counts["forwarded equal"]++
				}
			}
			require.Positive(t, counts["forwarded equal"])
			st := px.Stats()
			require.Equal(t, probes, st.Dropped, "nothing dropped but the peers' probes")
			t.Logf("%s: %v; proxy stats %+v", file, counts, st)
		})
	}
}

// TestReplayProxyServer sends each captured proxy→server request to a
// goslo server in proxy mode, from a raw ROUTER standing in for the proxy
// backend, and compares what the server sends back with the captured
// server→proxy messages: ACKs (with acks) and REPLYs in the same order,
// with equal frames (the server's own identity aside) and equal results or
// failures. The acks capture's retransmitted CALL and CAST are answered
// from the TTL cache and dispatched once; without acks no ACK ever leaves
// (zmq-wire.md §10 hazard).
func TestReplayProxyServer(t *testing.T) {
	for _, file := range proxyRPCFiles {
		t.Run(file, func(t *testing.T) {
			f := vectors.Load(t, file)
			ser := f.Vectors[0].Serialization
			_, acks := loadConfig(f, "server")
			zctx := newZctx(t)
			be := newRaw(t, zctx, zmq.ROUTER, "")
			// Mandatory: a send before the ROUTER has attached the server's
			// connection fails (and is retried) instead of vanishing.
			require.NoError(t, be.s.SetRouterMandatory(1))
			require.NoError(t, be.s.Bind("tcp://127.0.0.1:*"))
			ep, _ := be.s.GetLastEndpoint()
			tr := localTransport(t, WithOptions(func(c *compat.Config) {
				c.ZMQ.RPCZMQSerialization = ser
				c.ZMQ.UseRouterProxy = true
				c.ZMQ.RPCUseAcks = acks
			}))
			require.NoError(t, tr.Matchmaker().RegisterRouter(context.Background(), strings.TrimPrefix(ep, "tcp://"), time.Minute))
			var dispatched atomic.Int64
			ep2 := referenceEndpoint()
			echo := ep2.methods["echo"]
			ep2.Handle("echo", func(ctx context.Context, rctx *Map, args *Map) (any, error) {
				dispatched.Add(1)
				return echo(ctx, rctx, args)
			})
			srv, err := NewRPCServer(tr, Target{Topic: "demo", Server: "srv1"}, ep2)
			require.NoError(t, err)
			require.NoError(t, srv.Start(context.Background()))
			defer srv.Stop(context.Background())
			id := []byte(srv.Addr())
			require.Regexp(t, serverIDRe, string(id))
			hosts, err := tr.Matchmaker().Hosts(context.Background(), Target{Topic: "demo", Server: "srv1"}, compat.Dealer)
			require.NoError(t, err)
			require.Equal(t, []string{string(id)}, hosts, "registered under DEALER/demo/srv1 as its identity")

			codec, _ := envelope.CodecByName(ser)
			n := map[string]int{}
			for _, v := range f.Vectors {
				fr := v.FrameBytes()
				switch {
				case strings.HasPrefix(v.Hop, "proxy->server"):
					if v.MessageType == "NOTIFY" {
						continue // for the listeners, not this server
					}
					be.sendMandatory(append([][]byte{id}, fr...))
					n["sent"]++
				case strings.HasPrefix(v.Hop, "server->proxy"):
					got, err := be.recv(5 * time.Second)
					require.NoError(t, err, "%s: no %s", v.Name, v.MessageType)
					require.Len(t, got, len(fr), v.Name)
					require.Equal(t, id, got[0])
					require.Equal(t, fr[1:6], got[1:6], "%s: delimiter, version, type, reply id, message id", v.Name)
					if v.MessageType == "ACK" {
						n["acks"]++
						continue
					}
					wantBody, wantRemote, err := envelope.DecodeReply(codec, fr[6])
					require.NoError(t, err)
					gotBody, gotRemote, err := envelope.DecodeReply(codec, got[6])
					require.NoError(t, err)
					if wantRemote == nil {
						require.Nil(t, gotRemote, v.Name)
						require.Equal(t, string(fr[6]), string(got[6]), "%s: reply payload bytes", v.Name)
						require.True(t, envelope.Equal(wantBody, gotBody))
					} else {
						require.NotNil(t, gotRemote, v.Name)
						require.Equal(t, [3]string{wantRemote.Class, wantRemote.Module, wantRemote.Message},
							[3]string{gotRemote.Class, gotRemote.Module, gotRemote.Message}, v.Name)
					}
					n["replies"]++
				}
			}
			_, err = be.recv(300 * time.Millisecond)
			require.ErrorIs(t, err, errNoMoreFrame, "the server sent more than the Python server did")
			if !acks {
				require.Zero(t, n["acks"])
			} else {
				require.Positive(t, n["acks"])
			}
			// Every captured successful echo dispatched once, retransmissions included.
			echoCalls := map[string]bool{}
			for _, v := range f.Vectors {
				if strings.HasPrefix(v.Hop, "server->proxy") && v.MessageType == "REPLY" && strings.Contains(string(v.FrameBytes()[6]), "echoed") {
					echoCalls[string(v.FrameBytes()[5])] = true
				}
			}
			require.Equal(t, int64(len(echoCalls)), dispatched.Load(), "echo dispatched once per message id")
			t.Logf("%s: %v; echo dispatched %d times for %d message ids", file, n, dispatched.Load(), len(echoCalls))
		})
	}
}

// TestReplayProxyClient has a goslo client in proxy mode make the captured
// call_echo through a raw ROUTER standing in for the proxy frontend: the
// frames match the capture (identity shape, routing key, payload bytes),
// the captured ACK and REPLY complete the call, a REPLY from another sender
// than the routing key fails it, and with acks an unacked CALL is resent
// byte for byte.
func TestReplayProxyClient(t *testing.T) {
	for _, file := range proxyRPCFiles {
		t.Run(file, func(t *testing.T) {
			f := vectors.Load(t, file)
			ser := f.Vectors[0].Serialization
			_, acks := loadConfig(f, "client")
			zctx := newZctx(t)
			tr := localTransport(t, WithOptions(func(c *compat.Config) {
				c.ZMQ.RPCZMQSerialization = ser
				c.ZMQ.UseRouterProxy = true
				c.ZMQ.RPCUseAcks = acks
				c.ZMQ.RPCAckTimeoutBase = 1
			}))
			ctx := context.Background()
			fe := standInFrontend(t, tr, zctx, "")
			var req, ack, reply vectors.Vector
			for _, v := range f.Vectors {
				if v.Action != "call_echo" {
					continue
				}
				switch {
				case strings.HasPrefix(v.Hop, "client->proxy"):
					req = v
				case strings.HasPrefix(v.Hop, "proxy->client") && v.MessageType == "ACK":
					ack = v
				case strings.HasPrefix(v.Hop, "proxy->client") && v.MessageType == "REPLY":
					reply = v
				}
			}
			key := req.FrameBytes()[4]
			target := Target{Topic: "demo", Server: "srv1", Version: "1.0"}
			require.NoError(t, tr.Matchmaker().Register(ctx, target, string(key), compat.Dealer, time.Minute))

			call := func() chan error {
				done := make(chan error, 1)
				go func() {
					v, err := NewRPCClient(tr, target).Prepare(PrepareOptions{Timeout: 10 * time.Second}).Call(ctx, captureCtx(), "echo", captureArgs())
					if err == nil {
						codec, _ := envelope.CodecByName(ser)
						body, _, _ := envelope.DecodeReply(codec, reply.FrameBytes()[5])
						if !envelope.Equal(body, v) {
							err = errors.New("result differs from the captured reply")
						}
					}
					done <- err
				}()
				return done
			}
			done := call()
			got, err := fe.recv(10 * time.Second)
			require.NoError(t, err)
			want := req.FrameBytes()
			require.Len(t, got, len(want))
			require.Regexp(t, clientIDRe, string(got[0]), "client identity <host>/<uuid4>")
			require.Equal(t, want[1:5], got[1:5], "delimiter, version, type, routing key")
			require.Equal(t, string(want[6]), string(got[6]), "payload bytes equal the capture's")
			if acks {
				// No ACK: the identical frames come again after rpc_ack_timeout_base.
				again, err := fe.recv(3 * time.Second)
				require.NoError(t, err, "no resend without an ack")
				require.Equal(t, got, again, "the resend is byte-identical")
				a := ack.FrameBytes()
				fe.send([][]byte{got[0], a[0], a[1], a[2], a[3], got[5]})
			}
			r := reply.FrameBytes()
			fe.send([][]byte{got[0], r[0], r[1], r[2], r[3], got[5], r[5]})
			require.NoError(t, <-done)
			if acks {
				_, err := fe.recv(2500 * time.Millisecond)
				require.ErrorIs(t, err, errNoMoreFrame, "resent after the ack and the reply")
			}

			// A reply whose address frame is not the routing key.
			done = call()
			got, err = fe.recv(10 * time.Second)
			require.NoError(t, err)
			fe.send([][]byte{got[0], r[0], r[1], []byte("127.0.0.1/demo/srv1/someone-else"), r[3], got[5], r[5]})
			require.ErrorIs(t, <-done, driver.ErrBadReply)
		})
	}
}

// TestReplayPubSubSubscriptions: a goslo RPC server and notification
// listener with use_pub_sub subscribe on a publisher with exactly the
// subscription frames the Python consumers sent.
func TestReplayPubSubSubscriptions(t *testing.T) {
	f := vectors.Load(t, "pubsub-json.json")
	var want []string
	for _, v := range f.Vectors {
		if strings.HasPrefix(v.Hop, "server SUB -> proxy PUB") {
			want = append(want, string(v.FrameBytes()[0]))
		}
	}
	zctx := newZctx(t)
	xpub := newRaw(t, zctx, zmq.XPUB, "")
	require.NoError(t, xpub.s.Bind("tcp://127.0.0.1:*"))
	ep, _ := xpub.s.GetLastEndpoint()
	tr := localTransport(t, WithOptions(func(c *compat.Config) {
		c.ZMQ.UseRouterProxy = true
		c.ZMQ.UsePubSub = true
	}))
	ctx := context.Background()
	require.NoError(t, tr.Matchmaker().RegisterPublisher(ctx, matchmaker.Publisher{Pub: strings.TrimPrefix(ep, "tcp://"), Frontend: "127.0.0.1:1"}, time.Minute))
	srv, err := NewRPCServer(tr, Target{Topic: "demo", Server: "srv1"}, referenceEndpoint())
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	defer srv.Stop(ctx)
	l := NewNotificationListener(tr, []string{"notifications"}, &NotificationEndpoint{Handlers: map[string]NotificationHandler{
		"info": func(context.Context, Notification) error { return nil }, "error": func(context.Context, Notification) error { return nil }}})
	require.NoError(t, l.Start(ctx))
	defer l.Stop(ctx)
	var got []string
	for len(got) < len(want) {
		m, err := xpub.recv(5 * time.Second)
		require.NoError(t, err, "subscriptions so far: %q", got)
		got = append(got, string(m[0]))
	}
	require.ElementsMatch(t, want, got)
	t.Logf("subscriptions %q", got)
}
