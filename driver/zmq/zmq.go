package zmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/ratelog"
	"github.com/goslo/goslo/internal/shutdown"
	"github.com/goslo/goslo/matchmaker"
)

// ZMQ is the zmq driver in direct static mode: servers bind a ROUTER and
// register its address; clients keep one DEALER per target key connected
// to every host of the key. One zmq context per driver (per Transport).
type ZMQ struct {
	opts Options
	mm   matchmaker.Matchmaker
	log  *slog.Logger
	zctx *zmq.Context
	mu   sync.Mutex
	cl   *client
	pc   *proxyClient
	srvs map[*Server]bool
	// mem keeps, per proxy-mode server target, the DEALER identity and the
	// acks TTL cache of a stopped server for the next server of that
	// target in this driver (see openDealer).
	mem map[string]*serverMemory
	// closing is set (under mu) as a shutdown begins: no server or client
	// is made after it.
	closing bool
	closer  shutdown.Once
	// lingerBy caps the linger of the sockets closed during a shutdown
	// (UnixNano; 0: none): its context's deadline, then now once the
	// context has ended.
	lingerBy atomic.Int64
}

// NewZMQ builds the driver over a matchmaker.
func NewZMQ(mm matchmaker.Matchmaker, opts Options) (*ZMQ, error) {
	// Repeated WARN and ERROR lines (a flood of junk, a dead target) are
	// limited per kind and source, with a count of what was suppressed.
	opts.Logger = ratelog.Logger(opts.Logger)
	if opts.Workers <= 0 {
		opts.Workers = 64 // executor_thread_pool_size's default
	}
	if opts.HWM <= 0 {
		opts.HWM = 100000
	}
	if opts.MaxMessageSize <= 0 {
		opts.MaxMessageSize = 64 << 20
	}
	if opts.ResponseTimeout <= 0 {
		opts.ResponseTimeout = 60 * time.Second
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 15 * time.Second
	}
	if opts.AckMultiplier <= 0 {
		opts.AckMultiplier = 2
	}
	if opts.MaxTracked <= 0 {
		opts.MaxTracked = 100000
	}
	if opts.MaxPort <= opts.MinPort {
		return nil, fmt.Errorf("driver: port range [%d, %d) is empty", opts.MinPort, opts.MaxPort)
	}
	if opts.MinReplyDelay < 0 || opts.MinReplyDelay > MaxMinReplyDelay {
		return nil, fmt.Errorf("driver: minimum reply delay %v is outside [0, %v]", opts.MinReplyDelay, MaxMinReplyDelay)
	}
	zctx, err := zmq.NewContext()
	if err != nil {
		return nil, err
	}
	return &ZMQ{opts: opts, mm: mm, log: opts.Logger, zctx: zctx, srvs: map[*Server]bool{}, mem: map[string]*serverMemory{}}, nil
}

func (d *ZMQ) socket(t zmq.Type, identity string) (*zmq.Socket, error) {
	return newSocket(d.zctx, t, identity, d.opts.HWM, d.opts.MaxMessageSize, d.opts.Socket)
}

// newSocket makes a socket with goslo's options (high-water marks, a
// bound on received messages) and oslo's (linger, TCP keepalive), and the
// identity if any.
func newSocket(zctx *zmq.Context, t zmq.Type, identity string, hwm int, maxMsg int64, so SocketOptions) (*zmq.Socket, error) {
	s, err := zctx.NewSocket(t)
	if err != nil {
		return nil, err
	}
	checkHandle(s, t)
	_ = s.SetSndhwm(hwm)
	_ = s.SetRcvhwm(hwm)
	_ = s.SetMaxmsgsize(maxMsg)
	if err := so.apply(s); err != nil {
		s.Close()
		return nil, err
	}
	if identity != "" {
		if err := s.SetIdentity(identity); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// TimeoutError is a CALL that got no reply in time: oslo's MessagingTimeout.
type TimeoutError struct {
	MsgID   string
	Timeout time.Duration
	NoHosts bool
}

func (e *TimeoutError) Error() string {
	s := "Timeout " + strconv.FormatFloat(e.Timeout.Seconds(), 'f', -1, 64) + " seconds was reached for message " + e.MsgID
	if e.NoHosts {
		s += " (no server is registered for the target)"
	}
	return s
}

// Is matches envelope.ErrMessagingTimeout and context.DeadlineExceeded.
func (e *TimeoutError) Is(t error) bool {
	return t == envelope.ErrMessagingTimeout || t == context.DeadlineExceeded
}

// ErrClosed is returned once the driver is closed.
var ErrClosed = fmt.Errorf("zmq driver: %w", envelope.ErrClosed)

// closedErr is ErrClosed for the error of a socket whose zmq context was
// terminated under it (a message in flight when the driver closed), and
// err otherwise.
func closedErr(err error) error {
	if err != nil && zmq.AsErrno(err) == errnoTerm {
		return ErrClosed
	}
	return err
}

// DiscardedError is returned by Close when messages accepted earlier (casts,
// notifications waiting for a ready connection) were still queued after
// Close let them drain for a moment: they were discarded, each counted by
// the Observer as dropped ("closed").
type DiscardedError struct{ N int }

func (e *DiscardedError) Error() string {
	return fmt.Sprintf("zmq driver: closed with %d queued messages not sent", e.N)
}

// Is matches ErrDiscarded.
func (e *DiscardedError) Is(t error) bool { return t == ErrDiscarded }

// ErrDiscarded matches the *DiscardedError of Close.
var ErrDiscarded = errors.New("zmq driver: queued messages discarded at close")

// Close closes every server (without unregistering: use Server.Stop for a
// clean stop), waiting for its handlers however long they take, and the
// client sockets, then the zmq context. Messages still waiting for a ready
// connection get up to a second (drainFor) to leave; those that do not are
// discarded, counted (Observer.Dropped, reason "closed"), logged once with
// their number, and reported as a *DiscardedError. (Messages already
// written to a socket are left to zmq_linger, at most ForeverLinger for
// oslo's -1.) A Shutdown called meanwhile bounds it by its context.
func (d *ZMQ) Close() error { return d.close(context.Background(), drainFor, false) }

// Shutdown is the graceful Close, bounded by ctx: every server is stopped
// as Server.Stop does (unregistered, no request taken, in-flight handlers
// finish and reply), the messages still waiting for a ready connection
// get until ctx ends to leave, and the sockets' linger is cut to what
// is left of ctx's deadline, so that terminating the zmq context does not
// outlast it. When ctx ends first, the servers whose handlers still run
// have their sockets closed at once (the replies of those handlers are
// dropped; their goroutines end when they return), queued messages are
// discarded (*DiscardedError), and the error matches ctx.Err(). A ctx
// without a deadline that is cancelled still lets the sockets closed
// before linger as configured.
func (d *ZMQ) Shutdown(ctx context.Context) error { return d.close(ctx, 0, true) }

// close runs the shutdown once (see shutdown.Once): drain bounds the wait
// for queued messages when > 0; unregister stops the servers as
// Server.Stop does.
func (d *ZMQ) close(ctx context.Context, drain time.Duration, unregister bool) error {
	return d.closer.Do(ctx, func(ctx context.Context) error { return d.shutdown(ctx, drain, unregister) })
}

func (d *ZMQ) shutdown(ctx context.Context, drainBound time.Duration, unregister bool) error {
	if dl, ok := ctx.Deadline(); ok {
		d.lingerBy.Store(dl.UnixNano())
	}
	ended := context.AfterFunc(ctx, func() { d.lingerBy.Store(time.Now().UnixNano()) })
	defer ended()
	d.mu.Lock()
	d.closing = true
	srvs := make([]*Server, 0, len(d.srvs))
	for s := range d.srvs {
		srvs = append(srvs, s)
	}
	cl, pc := d.cl, d.pc
	d.mu.Unlock()
	var errs []error
	var emu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range srvs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.stopWithin(ctx, unregister); err != nil && ctx.Err() == nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	discarded := 0
	if pc != nil {
		discarded += pc.close(ctx, drainBound)
	}
	if cl != nil {
		drain(ctx, drainBound, cl.l, func() int { return cl.retries.n })
		cl.cancel()
		cl.closeCalls()
		cl.l.close(func() {
			for _, dl := range cl.dealers {
				cl.l.removeReader(dl.s)
				if dl.mon != nil {
					cl.l.removeReader(dl.mon)
					_ = dl.mon.Close()
				}
				// Keep the socket's linger (zmq_linger, cut to the
				// shutdown's deadline): messages already queued, such as
				// a notification just sent, still leave.
				d.capLinger(dl.s)
				_ = dl.s.Close()
			}
			discarded += cl.retries.failAll(ErrClosed)
			clear(cl.muxWaits)
			for id, ch := range cl.pending {
				delete(cl.pending, id)
				ch <- callResult{err: ErrClosed}
			}
		})
		cl.wg.Wait()
	}
	// d.zctx stays set (it is read without d.mu by a Listen that passed
	// its closing check); d.closing refuses new sockets, and a socket
	// made on the terminated context fails with ETERM.
	termContext(d.zctx)
	if discarded > 0 {
		d.log.Warn("driver: closed with queued messages not sent", "discarded", discarded)
		errs = append(errs, &DiscardedError{N: discarded})
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// capLinger cuts s's linger to what is left until the shutdown's
// lingerBy, if any.
func (d *ZMQ) capLinger(s *zmq.Socket) {
	by := d.lingerBy.Load()
	if by == 0 {
		return
	}
	left := max(time.Until(time.Unix(0, by)), 0)
	if cur, err := s.GetLinger(); err == nil && (cur < 0 || cur > left) {
		_ = s.SetLinger(left)
	}
}

// termContext terminates a zmq context whose sockets are closed: it waits,
// at most their linger (ForeverLinger for zmq_linger -1), for what they
// still hold to leave.
func termContext(z *zmq.Context) { _ = z.Term() }
