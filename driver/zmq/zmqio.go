package zmq

/*
#cgo !windows pkg-config: libzmq
#include <zmq.h>
#include <errno.h>
#include <string.h>

// goslo_recv receives the parts of one multipart message into msgs,
// starting at *n, until the last part or until cap parts are held
// (*more is then 1 and the caller grows msgs and calls again). It
// returns 0 or an errno; EINTR is retried. lens[i] is part i's size.
static int goslo_recv(void *s, int flags, zmq_msg_t *msgs, size_t *lens, int cap, int *n, int *more) {
	*more = 0;
	while (*n < cap) {
		zmq_msg_t *m = &msgs[*n];
		zmq_msg_init(m);
		int rc;
		do {
			rc = zmq_msg_recv(m, s, flags);
		} while (rc < 0 && zmq_errno() == EINTR);
		if (rc < 0) {
			int e = zmq_errno();
			zmq_msg_close(m);
			return e;
		}
		lens[*n] = zmq_msg_size(m);
		(*n)++;
		if (!zmq_msg_more(m)) {
			return 0;
		}
		// The rest of a multipart message is already queued.
		flags = ZMQ_DONTWAIT;
	}
	*more = 1;
	return 0;
}

// goslo_skip receives and discards the rest of a multipart message.
static int goslo_skip(void *s) {
	zmq_msg_t m;
	zmq_msg_init(&m);
	int more = 1;
	while (more) {
		int rc;
		do {
			rc = zmq_msg_recv(&m, s, ZMQ_DONTWAIT);
		} while (rc < 0 && zmq_errno() == EINTR);
		if (rc < 0) {
			int e = zmq_errno();
			zmq_msg_close(&m);
			return e;
		}
		more = zmq_msg_more(&m);
	}
	zmq_msg_close(&m);
	return 0;
}

// goslo_take copies the n parts held in msgs to dst, one after another,
// and closes them; dst may be NULL to discard them.
static void goslo_take(zmq_msg_t *msgs, int n, char *dst) {
	for (int i = 0; i < n; i++) {
		size_t sz = zmq_msg_size(&msgs[i]);
		if (dst != NULL && sz > 0) {
			memcpy(dst, zmq_msg_data(&msgs[i]), sz);
			dst += sz;
		}
		zmq_msg_close(&msgs[i]);
	}
}

// goslo_send sends n parts laid out one after another in buf as one
// multipart message. It returns 0 or an errno and sets *sent to the parts
// zmq took (0 when the first is refused: nothing left).
static int goslo_send(void *s, const char *buf, const size_t *lens, int n, int flags, int *sent) {
	*sent = 0;
	for (int i = 0; i < n; i++) {
		int fl = flags;
		if (i < n - 1) {
			fl |= ZMQ_SNDMORE;
		}
		int rc;
		do {
			rc = zmq_send(s, buf, lens[i], fl);
		} while (rc < 0 && zmq_errno() == EINTR);
		if (rc < 0) {
			return zmq_errno();
		}
		buf += lens[i];
		(*sent)++;
	}
	return 0;
}

static int goslo_type(void *s) {
	int t = -1;
	size_t sz = sizeof t;
	if (zmq_getsockopt(s, ZMQ_TYPE, &t, &sz) != 0) {
		return -1;
	}
	return t;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	zmq "github.com/pebbe/zmq4"
)

// Whole-message socket I/O. pebbe/zmq4 makes about six cgo calls for each
// part it receives (init, recv, data, copy, close, RCVMORE) and one per part
// it sends; a proxied CAST has seven parts and crosses three processes, so
// those crossings were the largest cost per message. recvMessage takes a
// whole message in two cgo calls and sendMessage sends one in a single call;
// the sockets are still made, configured, polled and closed by pebbe/zmq4.
//
// The libzmq handle is the first field of a zmq.Socket (pebbe/zmq4 v1.4.0,
// pinned in go.mod). checkHandle proves that on each socket newSocket makes
// (ZMQ_TYPE read through the handle equals the type asked for); should it
// ever fail, every call here falls back to pebbe's own functions for good
// (as they do until the first socket is proved).

// maxParts bounds the parts of one message; a message with more is
// consumed and refused (no oslo message has more than seven).
const maxParts = 1024

// ErrTooManyParts is a received message of more than maxParts parts; it
// was consumed and discarded.
var ErrTooManyParts = fmt.Errorf("driver: message of more than %d parts dropped", maxParts)

// batchIO is set once a socket's handle has been proved, and cleared for
// good if one ever fails the proof.
var batchIO, handleBad atomic.Bool

func handleOf(s *zmq.Socket) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(s)) }

// checkHandle verifies the handle of a fresh socket of type t; on a
// mismatch the batch path is switched off for the process.
func checkHandle(s *zmq.Socket, t zmq.Type) {
	if handleBad.Load() {
		return
	}
	if got := C.goslo_type(handleOf(s)); got != C.int(t) {
		handleBad.Store(true)
		batchIO.Store(false)
		return
	}
	batchIO.Store(true)
}

// rxScratch holds the zmq_msg_t of a message between its two cgo calls;
// []uint64 keeps them pointer-aligned, as zmq.h asks.
type rxScratch struct {
	msgs []uint64 // 8 words per zmq_msg_t
	lens []C.size_t
}

const msgWords = C.sizeof_zmq_msg_t / 8

var rxPool = sync.Pool{New: func() any {
	return &rxScratch{msgs: make([]uint64, 16*msgWords), lens: make([]C.size_t, 16)}
}}

// recvMessage receives one whole message. The parts share one allocation,
// each capped so that appending to one cannot overwrite the next.
func recvMessage(s *zmq.Socket, flags zmq.Flag) ([][]byte, error) {
	if !batchIO.Load() {
		return s.RecvMessageBytes(flags)
	}
	sc := rxPool.Get().(*rxScratch)
	defer rxPool.Put(sc)
	h := handleOf(s)
	msgs := func() *C.zmq_msg_t { return (*C.zmq_msg_t)(unsafe.Pointer(&sc.msgs[0])) }
	var n, more C.int
	fl := C.int(flags)
	for {
		rc := C.goslo_recv(h, fl, msgs(), &sc.lens[0], C.int(len(sc.lens)), &n, &more)
		if rc != 0 {
			C.goslo_take(msgs(), n, nil) // n is 0 unless zmq broke a message
			return nil, zmq.Errno(rc)
		}
		if more == 0 {
			break
		}
		fl = C.int(zmq.DONTWAIT)
		if len(sc.lens) >= maxParts { // discard the message whole
			C.goslo_take(msgs(), n, nil)
			if rc := C.goslo_skip(h); rc != 0 {
				return nil, zmq.Errno(rc)
			}
			return nil, ErrTooManyParts
		}
		// Grow: moving a zmq_msg_t's bytes is what zmq_msg_move does.
		msgs := make([]uint64, 2*len(sc.msgs))
		copy(msgs, sc.msgs)
		lens := make([]C.size_t, 2*len(sc.lens))
		copy(lens, sc.lens)
		sc.msgs, sc.lens = msgs, lens
	}
	total := 0
	for _, l := range sc.lens[:n] {
		total += int(l)
	}
	buf := make([]byte, total) // non-nil even when empty, as pebbe's parts are
	var dst *C.char
	if total > 0 {
		dst = (*C.char)(unsafe.Pointer(&buf[0]))
	}
	C.goslo_take(msgs(), n, dst)
	out := make([][]byte, n)
	off := 0
	for i := range out {
		l := int(sc.lens[i])
		out[i] = buf[off : off+l : off+l]
		off += l
	}
	return out, nil
}

type txScratch struct {
	buf  []byte
	lens []C.size_t
}

var txPool = sync.Pool{New: func() any { return &txScratch{buf: make([]byte, 0, 4096), lens: make([]C.size_t, 0, 16)} }}

// errPartial is a multipart send that zmq cut after its first part (only
// when the context is terminated).
var errPartial = errors.New("driver: multipart send cut short")

// sendMessage sends frames as one multipart message. With DONTWAIT, a
// refused message (EAGAIN, or EHOSTUNREACH on a mandatory ROUTER) sends
// nothing.
func sendMessage(s *zmq.Socket, frames [][]byte, flags zmq.Flag) error {
	if len(frames) == 0 {
		return errors.New("driver: empty message")
	}
	if !batchIO.Load() {
		return sendFramesPebbe(s, frames, flags)
	}
	sc := txPool.Get().(*txScratch)
	buf, lens := sc.buf[:0], sc.lens[:0]
	for _, f := range frames {
		buf = append(buf, f...)
		lens = append(lens, C.size_t(len(f)))
	}
	if len(buf) == 0 {
		buf = append(buf, 0) // a valid pointer for all-empty parts
	}
	var sent C.int
	rc := C.goslo_send(handleOf(s), (*C.char)(unsafe.Pointer(&buf[0])), &lens[0], C.int(len(frames)), C.int(flags), &sent)
	if cap(buf) <= 1<<20 { // do not keep a huge message's buffer
		sc.buf, sc.lens = buf, lens
		txPool.Put(sc)
	}
	if rc != 0 {
		if sent > 0 {
			return fmt.Errorf("%w after %d of %d parts: %w", errPartial, int(sent), len(frames), zmq.Errno(rc))
		}
		return zmq.Errno(rc)
	}
	return nil
}

// sendFramesPebbe is sendMessage through pebbe/zmq4, part by part.
func sendFramesPebbe(s *zmq.Socket, frames [][]byte, flags zmq.Flag) error {
	last := len(frames) - 1
	for i, f := range frames {
		fl := flags
		if i < last {
			fl |= zmq.SNDMORE
		}
		if _, err := s.SendBytes(f, fl); err != nil {
			return err
		}
	}
	return nil
}
