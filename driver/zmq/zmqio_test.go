package zmq

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	zmq "github.com/pebbe/zmq4"
	"github.com/stretchr/testify/require"
)

// pairOf returns two connected PAIR sockets made by newSocket.
func pairOf(t *testing.T) (a, b *zmq.Socket) {
	t.Helper()
	zctx, err := zmq.NewContext()
	require.NoError(t, err)
	a, err = newSocket(zctx, zmq.PAIR, "", 0, -1, SocketOptions{})
	require.NoError(t, err)
	b, err = newSocket(zctx, zmq.PAIR, "", 0, -1, SocketOptions{})
	require.NoError(t, err)
	ep := fmt.Sprintf("inproc://zmqio-%s", t.Name())
	require.NoError(t, a.Bind(ep))
	require.NoError(t, b.Connect(ep))
	t.Cleanup(func() {
		a.SetLinger(0)
		b.SetLinger(0)
		a.Close()
		b.Close()
		zctx.Term()
	})
	return a, b
}

// messages covers the shapes the batch path must keep: empty parts, one
// part, oslo's seven, more parts than the scratch starts with, large parts.
func ioMessages() [][][]byte {
	big := bytes.Repeat([]byte("x"), 1<<20+3)
	many := make([][]byte, 100)
	for i := range many {
		many[i] = []byte(fmt.Sprintf("part-%d", i))
	}
	return [][][]byte{
		{[]byte("one")},
		{{}},
		{{}, {}, {}},
		{[]byte("client"), {}, []byte("1.0"), []byte("2"), []byte("127.0.0.1/t/s/1"), []byte("mid-1"), []byte(`{"a": 1}`)},
		{{}, big, {}, []byte("tail")},
		many,
	}
}

func TestBatchIORoundTrip(t *testing.T) {
	for _, mode := range []struct {
		name         string
		batch, pebbe bool // which side uses which path
	}{{"batch", true, true}, {"pebbe-send/batch-recv", false, true}, {"batch-send/pebbe-recv", true, false}} {
		t.Run(mode.name, func(t *testing.T) {
			a, b := pairOf(t)
			for _, msg := range ioMessages() {
				batchIO.Store(mode.batch)
				require.NoError(t, sendMessage(a, msg, 0))
				batchIO.Store(mode.pebbe)
				got, err := recvMessage(b, 0)
				batchIO.Store(true)
				require.NoError(t, err)
				require.Len(t, got, len(msg))
				for i := range msg {
					require.True(t, bytes.Equal(msg[i], got[i]), "part %d", i)
					require.NotNil(t, got[i], "part %d", i)
				}
			}
		})
	}
}

func TestBatchIOPartsDoNotAlias(t *testing.T) {
	a, b := pairOf(t)
	require.NoError(t, sendMessage(a, [][]byte{[]byte("ab"), []byte("cd")}, 0))
	got, err := recvMessage(b, 0)
	require.NoError(t, err)
	got[0] = append(got[0], 'X')
	require.Equal(t, "cd", string(got[1]))
}

func TestBatchIOErrors(t *testing.T) {
	a, b := pairOf(t)
	// Nothing queued: EAGAIN, as pebbe reports it.
	_, err := recvMessage(b, zmq.DONTWAIT)
	require.Equal(t, errnoAgain, zmq.AsErrno(err))

	// Too many parts: consumed and refused; the next message is intact.
	huge := make([][]byte, maxParts+5)
	for i := range huge {
		huge[i] = []byte{byte(i)}
	}
	require.NoError(t, sendMessage(a, huge, 0))
	require.NoError(t, sendMessage(a, [][]byte{[]byte("next")}, 0))
	_, err = recvMessage(b, 0)
	require.ErrorIs(t, err, ErrTooManyParts)
	got, err := recvMessage(b, 0)
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("next")}, got)

	require.Error(t, sendMessage(a, nil, 0))
}

func TestBatchIOMandatoryRouter(t *testing.T) {
	zctx, err := zmq.NewContext()
	require.NoError(t, err)
	defer zctx.Term()
	r, err := newSocket(zctx, zmq.ROUTER, "", 0, -1, SocketOptions{})
	require.NoError(t, err)
	defer r.Close()
	require.NoError(t, r.SetRouterMandatory(1))
	err = sendMessage(r, [][]byte{[]byte("nobody"), {}, []byte("x")}, zmq.DONTWAIT)
	require.Equal(t, errnoHostUnreach, zmq.AsErrno(err))
}

func TestBatchIOClosedSocket(t *testing.T) {
	zctx, err := zmq.NewContext()
	require.NoError(t, err)
	defer zctx.Term()
	s, err := newSocket(zctx, zmq.DEALER, "", 0, -1, SocketOptions{})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = recvMessage(s, zmq.DONTWAIT)
	require.Error(t, err)
	require.Error(t, sendMessage(s, [][]byte{[]byte("x")}, zmq.DONTWAIT))
}

func TestBatchIOHandleChecked(t *testing.T) {
	// newSocket proved the handle on every socket made above.
	zctx, err := zmq.NewContext()
	require.NoError(t, err)
	defer zctx.Term()
	for _, typ := range []zmq.Type{zmq.ROUTER, zmq.DEALER, zmq.PUB, zmq.SUB, zmq.PAIR} {
		s, err := newSocket(zctx, typ, "", 0, -1, SocketOptions{})
		require.NoError(t, err)
		s.Close()
	}
	require.True(t, batchIO.Load(), "the libzmq handle of pebbe/zmq4's Socket was not where goslo expects it")
}

// BenchmarkRecvSeven compares receiving oslo's seven-part message part by
// part through pebbe/zmq4 with the batch path.
func BenchmarkRecvSeven(b *testing.B) {
	msg := [][]byte{[]byte("client"), {}, []byte("1.0"), []byte("2"), []byte("127.0.0.1/t/s/1"), []byte("mid-1"), bytes.Repeat([]byte("p"), 200)}
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "pebbe", true: "batch"}[on], func(b *testing.B) {
			zctx, _ := zmq.NewContext()
			a, _ := newSocket(zctx, zmq.PAIR, "", 0, -1, SocketOptions{})
			c, _ := newSocket(zctx, zmq.PAIR, "", 0, -1, SocketOptions{})
			ep := fmt.Sprintf("inproc://bench-%v", on)
			a.Bind(ep)
			c.Connect(ep)
			old := batchIO.Load()
			batchIO.Store(on)
			b.ReportAllocs()
			for b.Loop() {
				if err := sendMessage(a, msg, 0); err != nil {
					b.Fatal(err)
				}
				if _, err := recvMessage(c, 0); err != nil {
					b.Fatal(err)
				}
			}
			batchIO.Store(old)
			a.SetLinger(0)
			c.SetLinger(0)
			a.Close()
			c.Close()
			zctx.Term()
		})
	}
}

// TestBatchIORandom: random messages (1–40 parts of 0–3000 bytes) read by
// the batch path equal what pebbe's per-part calls read, either way round.
func TestBatchIORandom(t *testing.T) {
	a, b := pairOf(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		msg := make([][]byte, 1+rng.IntN(40))
		for j := range msg {
			msg[j] = make([]byte, rng.IntN(3001))
			for k := range msg[j] {
				msg[j][k] = byte(rng.Uint32())
			}
		}
		batchIO.Store(i%2 == 0)
		require.NoError(t, sendMessage(a, msg, 0))
		batchIO.Store(i%3 != 0)
		got, err := recvMessage(b, 0)
		batchIO.Store(true)
		require.NoError(t, err)
		require.Equal(t, len(msg), len(got), "message %d", i)
		for j := range msg {
			require.True(t, bytes.Equal(msg[j], got[j]), "message %d part %d", i, j)
		}
	}
}
