package zmq

/*
#cgo !windows pkg-config: libzmq
#include <zmq.h>
#include <errno.h>
#include <string.h>
#include <stdint.h>

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

// goslo_recv receives the parts of one multipart message into msgs,
// starting at *n, until the last part or until cap parts are held
// (*more is then 1 and the caller grows msgs and calls again). It
// returns 0 or an errno; EINTR is retried. lens[i] is part i's size.
// *total adds up the sizes of the parts; once it passes the socket's
// ZMQ_MAXMSGSIZE (libzmq bounds each frame, not their sum) the parts held
// are closed, the rest of the message is received and discarded, *n is 0
// and *over is 1.
static int goslo_recv(void *s, int flags, zmq_msg_t *msgs, size_t *lens, int cap, int *n, int *more,
		unsigned long long *total, int *over) {
	*more = 0;
	*over = 0;
	int64_t max = -1;
	size_t maxsz = sizeof max;
	if (zmq_getsockopt(s, ZMQ_MAXMSGSIZE, &max, &maxsz) != 0) {
		max = -1;
	}
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
		*total += lens[*n];
		(*n)++;
		int last = !zmq_msg_more(m);
		if (max >= 0 && *total > (unsigned long long)max) {
			for (int i = 0; i < *n; i++) {
				zmq_msg_close(&msgs[i]);
			}
			*n = 0;
			*over = 1;
			return last ? 0 : goslo_skip(s);
		}
		if (last) {
			return 0;
		}
		// The rest of a multipart message is already queued.
		flags = ZMQ_DONTWAIT;
	}
	*more = 1;
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
	"syscall"
	"unsafe"

	zmq "github.com/pebbe/zmq4"
)

// The errnos the socket loops tell apart (compared with zmq.AsErrno).
const (
	// errnoAgain: nothing could be sent or received without blocking
	// (zmq.DONTWAIT), e.g. no peer of a DEALER is ready yet.
	errnoAgain = zmq.Errno(syscall.EAGAIN)
	// errnoIntr: a signal interrupted the call; it is retried.
	errnoIntr = zmq.Errno(syscall.EINTR)
	// errnoTerm: the zmq context is being terminated.
	errnoTerm = zmq.ETERM
	// errnoHostUnreach: a ROUTER_MANDATORY socket has no peer of that
	// identity.
	errnoHostUnreach = zmq.Errno(syscall.EHOSTUNREACH)
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

// ErrTooLarge is a received message whose parts add up to more than the
// socket's MaxMessageSize (ZMQ_MAXMSGSIZE). libzmq applies that bound to
// each frame only (a peer that sends one larger frame is disconnected by
// libzmq: see watchDisconnects); recvMessage applies it to the whole
// message, which it consumes and discards without copying it.
var ErrTooLarge = errors.New("driver: message over max_message_size dropped")

// dropReason is the Observer.Dropped reason of a recvMessage error that
// consumed and discarded a message, or "" for any other error.
func dropReason(err error) string {
	switch {
	case errors.Is(err, ErrTooLarge):
		return "oversized"
	case errors.Is(err, ErrTooManyParts):
		return "too_many_parts"
	}
	return ""
}

// tooLarge checks a message received through pebbe/zmq4 against the
// socket's bound.
func tooLarge(s *zmq.Socket, msg [][]byte) error {
	max, err := s.GetMaxmsgsize()
	if err != nil || max < 0 {
		return nil
	}
	total := int64(0)
	for _, p := range msg {
		total += int64(len(p))
	}
	if total > max {
		return fmt.Errorf("%w (%d bytes in %d parts, limit %d)", ErrTooLarge, total, len(msg), max)
	}
	return nil
}

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
		msg, err := s.RecvMessageBytes(flags)
		if err == nil {
			if err = tooLarge(s, msg); err != nil {
				msg = nil
			}
		}
		return msg, err
	}
	sc := rxPool.Get().(*rxScratch)
	defer rxPool.Put(sc)
	h := handleOf(s)
	msgs := func() *C.zmq_msg_t { return (*C.zmq_msg_t)(unsafe.Pointer(&sc.msgs[0])) }
	var n, more, over C.int
	var total C.ulonglong
	fl := C.int(flags)
	for {
		rc := C.goslo_recv(h, fl, msgs(), &sc.lens[0], C.int(len(sc.lens)), &n, &more, &total, &over)
		if over != 0 {
			max, _ := s.GetMaxmsgsize()
			err := fmt.Errorf("%w (over %d bytes, limit %d)", ErrTooLarge, uint64(total), max)
			if rc != 0 {
				err = errors.Join(err, zmq.Errno(rc))
			}
			return nil, err
		}
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
	size := 0
	for _, l := range sc.lens[:n] {
		size += int(l)
	}
	buf := make([]byte, size) // non-nil even when empty, as pebbe's parts are
	var dst *C.char
	if size > 0 {
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
