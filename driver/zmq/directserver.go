package zmq

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/internal/zmqwire"
	"github.com/goslo/goslo/matchmaker"
)

// Request is one request a server received.
type Request struct {
	Type    MsgType
	MsgID   string
	Payload []byte
	s       *Server
	ident   []byte    // the client's identity: ROUTER-prepended (direct) or the reply id frame (proxy)
	arrived time.Time // when a CALL was read, with MinReplyDelay only
}

// Reply sends the reply payload of a CALL. It is a no-op for other types.
func (r *Request) Reply(payload []byte) error {
	if r.Type != Call {
		return nil
	}
	if !r.arrived.IsZero() {
		if wait := time.Until(r.arrived.Add(r.s.d.opts.MinReplyDelay)); wait > 0 {
			time.Sleep(wait) // bounded by MaxMinReplyDelay
		}
	}
	var frames [][]byte
	if r.s.proxied {
		frames = zmqwire.ProxyReply(r.ident, r.MsgID, payload)
	} else {
		frames = zmqwire.DirectReply(r.ident, r.MsgID, payload)
	}
	// Set before the hand-off, so the close (after the workers) sees it;
	// the send is taken before the close's task.
	r.s.lastReply.Store(time.Now().UnixNano())
	return r.s.l.do(func() {
		if r.s.sock == nil {
			return
		}
		if r.s.cache != nil {
			r.s.cache.setReply(r.MsgID, frames)
		}
		if err := sendMessage(r.s.sock, frames, zmq.DONTWAIT); err != nil {
			r.s.d.log.Warn("driver: reply not sent", "message_id", r.MsgID, "target", r.s.target.String(), "err", err)
			if obs := r.s.d.opts.Observer; obs != nil {
				obs.Dropped(Reply, "send_failed")
			}
		} else if obs := r.s.d.opts.Observer; obs != nil {
			obs.Sent(Reply)
		}
	})
}

// Handler serves one request on a worker goroutine.
type Handler func(r *Request)

// Server is a consumer registered in the matchmaker: a ROUTER bound on a
// port (direct modes) or a DEALER connected to every proxy backend (proxy
// mode), plus a SUB socket with use_pub_sub.
type Server struct {
	d        *ZMQ
	target   compat.Target
	addr     string // "<host>:<port>" (direct) or the DEALER identity (proxy)
	listener string // compat.Router or compat.Dealer
	proxied  bool
	l        *loop
	sock     *zmq.Socket // owned by l
	sub      *zmq.Socket // owned by l; nil without pub/sub
	cache    *ttlCache   // owned by l; nil without acks
	mem      *serverMemory
	conns    map[*zmq.Socket]map[string]bool
	keeper   *matchmaker.Keeper
	work     chan *Request
	wg       sync.WaitGroup
	stopRef  chan struct{}
	refDone  chan struct{}
	once     sync.Once
	stopping chan struct{} // closed when the shutdown begins
	done     chan struct{} // closed once the last worker left and the sockets are closed
	// lastReply is when the last reply was handed to the loop (unix
	// nanoseconds; 0: none yet), for the close's grace (replyGrace).
	lastReply atomic.Int64
}

// replyGrace is how long a server that stops keeps its sockets open after
// its last reply. A client socket with ZMQ_IMMEDIATE (8.1.4's default, and
// goslo's CALL sockets) loses what it has received but not yet read when
// the connection ends: libzmq terminates the pipe without waiting. So a
// reply a draining handler sent just before the close could be lost, and
// a client that then finds the server unregistered would send the request
// again. Seen in about one of 20 stops under load (TestStopDrainsReply);
// never with the grace. Bounded by the socket's linger.
const replyGrace = 200 * time.Millisecond

// Listen starts a consumer of t. Direct modes bind a ROUTER on a random
// port of the range and register "<host>:<port>" as ROUTER/topic[/server];
// proxy mode connects a DEALER with identity "<host>/<key>/<uuid4>" to
// every ROUTERS record and registers that identity as DEALER/topic[/server];
// use_pub_sub adds a SUB socket subscribed to the topic on every publisher.
// Each request runs h on a bounded pool of workers.
func (d *ZMQ) Listen(ctx context.Context, t compat.Target, h Handler) (*Server, error) {
	d.mu.Lock()
	if d.zctx == nil || d.closing {
		d.mu.Unlock()
		return nil, ErrClosed
	}
	d.mu.Unlock()
	s := &Server{d: d, target: t, work: make(chan *Request, d.opts.Workers), conns: map[*zmq.Socket]map[string]bool{},
		stopRef: make(chan struct{}), refDone: make(chan struct{}), stopping: make(chan struct{}), done: make(chan struct{})}
	var err error
	if d.opts.RouterProxy {
		err = s.openDealer()
	} else {
		err = s.openRouter(preferredPort(ctx))
	}
	if err == nil && d.opts.PubSub {
		err = s.openSub()
	}
	if err == nil {
		s.l, err = newLoop(d.zctx, "server-"+t.Topic, d.log, s.tick)
		if err == nil {
			s.l.onDrop = d.dropped
		}
	}
	if err != nil {
		if s.sock != nil {
			s.sock.Close()
		}
		if s.sub != nil {
			s.sub.Close()
		}
		s.releaseMem()
		return nil, err
	}
	for i := 0; i < d.opts.Workers; i++ {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for r := range s.work {
				h(r)
				if r.Type == Call {
					s.l.settle()
				}
			}
		}()
	}
	err = s.l.sync(func() {
		s.l.addReader(s.sock, s.onRequest)
		if s.sub != nil {
			s.l.addReader(s.sub, s.onPublished)
		}
	})
	if err != nil {
		close(s.refDone)
		s.shutdown()
		return nil, err
	}
	if s.proxied || s.sub != nil {
		mons := s.startMonitors()
		s.refresh(ctx)
		deadline := time.Now().Add(2 * time.Second)
		if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
			deadline = dl
		}
		for _, m := range mons {
			s.awaitHandshakes(m[0], m[1], deadline)
		}
		if s.sub != nil {
			// The subscription leaves right after the handshake and the
			// publisher applies it asynchronously: give it a moment, so a
			// fanout sent just after Listen returns is not lost to the
			// slow-joiner window of PUB/SUB.
			time.Sleep(20 * time.Millisecond)
		}
		go s.refresher()
	} else {
		close(s.refDone)
	}
	s.keeper, err = matchmaker.StartKeeper(context.WithoutCancel(ctx),
		func(ctx context.Context) error {
			return d.mm.Register(ctx, t, s.addr, s.listener, d.opts.TargetExpire)
		},
		func(ctx context.Context) error { return d.mm.Unregister(ctx, t, s.addr, s.listener) },
		d.opts.TargetUpdate, d.log)
	s.keeper.Follow(d.mm) // re-register as soon as the matchmaker is back
	if err != nil {
		d.log.Warn("driver: server not registered yet; the keeper retries", "target", t.String(), "addr", s.addr, "err", err)
	}
	d.mu.Lock()
	closing := d.closing
	d.srvs[s] = true
	d.mu.Unlock()
	if closing {
		// A shutdown began meanwhile and did not see this server.
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.stopWithin(sctx, true)
		return nil, ErrClosed
	}
	return s, nil
}

// startMonitors starts a handshake monitor on the proxy-mode DEALER and
// on the SUB socket, and returns [socket, monitor] pairs.
func (s *Server) startMonitors() [][2]*zmq.Socket {
	var mons [][2]*zmq.Socket
	for _, sock := range []*zmq.Socket{s.sock, s.sub} {
		var err error
		if sock == nil || (sock == s.sock && !s.proxied) {
			continue
		}
		var m *zmq.Socket
		// The socket now belongs to the loop: start the monitor there.
		if serr := s.l.sync(func() { m, err = s.watch(sock) }); serr != nil {
			err = serr
		}
		if err != nil {
			// Listen goes on without waiting for that socket's handshakes.
			s.d.log.Warn("driver: handshake monitor not started", "target", s.target.String(), "err", err)
			continue
		}
		mons = append(mons, [2]*zmq.Socket{sock, m})
	}
	return mons
}

// openRouter binds the direct-mode ROUTER on a random port of the range,
// or on pref first when it is set (WithPort).
func (s *Server) openRouter(pref int) error {
	d := s.d
	sock, err := d.socket(zmq.ROUTER, zmqwire.NewUUID4())
	if err != nil {
		return err
	}
	port := 0
	if pref > 0 && pref <= 65535 {
		if err = sock.Bind(zmqwire.TCPBindAddress(d.opts.BindAddress, pref)); err == nil {
			port = pref
		}
	}
	tries := max(d.opts.BindRetries, 1)
	for i := 0; i < tries && port == 0; i++ {
		p := d.opts.MinPort + rand.IntN(d.opts.MaxPort-d.opts.MinPort)
		if p > 65535 {
			continue
		}
		if err = sock.Bind(zmqwire.TCPBindAddress(d.opts.BindAddress, p)); err == nil {
			port = p
			break
		}
	}
	if port == 0 {
		sock.Close()
		return fmt.Errorf("driver: no free port in [%d, %d) on %s after %d tries: %v", d.opts.MinPort, d.opts.MaxPort, d.opts.BindAddress, tries, err)
	}
	if err := watchDisconnects(d.zctx, sock, "server-router", d.opts.MaxMessageSize, d.log, d.disconnectCounter("server-router")); err != nil {
		d.log.Warn("driver: cannot watch the ROUTER's connections", "err", err)
	}
	s.sock, s.addr, s.listener = sock, compat.HostPort(d.opts.Host, port), compat.Router
	return nil
}

// Addr is the advertised "<host>:<port>" (direct modes) or the DEALER
// identity (proxy mode).
func (s *Server) Addr() string { return s.addr }

func (s *Server) onRequest(frames [][]byte) {
	var in *zmqwire.Incoming
	var err error
	if s.proxied {
		in, err = zmqwire.ParseProxyServerRequest(frames)
	} else {
		in, err = zmqwire.ParseDirectRequest(frames)
	}
	if err != nil {
		var fe *FrameError
		id := ""
		if errors.As(err, &fe) {
			id = fe.MsgID
		}
		s.d.log.Warn("driver: dropping request", "target", s.target.String(), "message_id", id, "err", err)
		if obs := s.d.opts.Observer; obs != nil {
			obs.Dropped(0, "malformed")
		}
		return
	}
	if obs := s.d.opts.Observer; obs != nil {
		obs.Received(in.Type)
	}
	if s.cache != nil && !s.acked(in) {
		return
	}
	if in.Type == Call {
		s.l.expect() // its reply comes back soon, usually
	}
	// Blocks the loop when every worker is busy and the queue is full:
	// back-pressure to the senders through the socket's high-water mark.
	s.l.yield = true
	r := &Request{Type: in.Type, MsgID: in.MsgID, Payload: in.Payload, s: s, ident: in.Identity}
	if in.Type == Call && s.d.opts.MinReplyDelay > 0 {
		r.arrived = time.Now()
	}
	s.dispatch(r)
}

// dispatch hands r to a worker (loop only). It blocks while every worker
// is busy and the queue is full, unless the server is stopping: then r is
// dropped, so that a stop is never held by handlers that do not return.
func (s *Server) dispatch(r *Request) {
	select {
	case s.work <- r:
	case <-s.stopping:
		s.d.log.Warn("driver: server stopping; request dropped", "type", r.Type.String(), "message_id", r.MsgID, "target", s.target.String())
		if r.Type == Call {
			s.l.settle()
		}
		if obs := s.d.opts.Observer; obs != nil {
			obs.Dropped(r.Type, "stopping")
		}
	}
}

// Stop unregisters, stops taking requests, lets in-flight handlers finish
// and send their replies, then closes the sockets. It is bounded by ctx:
// when ctx ends first it returns ctx.Err(), and the handlers still running
// finish in the background; their replies are still sent (the sockets stay
// open until the last worker leaves, then they are closed and the server's
// goroutines end). Stop is idempotent.
func (s *Server) Stop(ctx context.Context) error {
	var err error
	if s.keeper != nil {
		err = s.keeper.Stop(ctx)
	}
	s.beginShutdown()
	select {
	case <-s.done:
		return err
	case <-ctx.Done():
		if err == nil || !errors.Is(err, ctx.Err()) {
			err = errors.Join(err, ctx.Err())
		}
		return err
	}
}

// shutdown stops the server without unregistering it and waits until it
// is released, however long its handlers take.
func (s *Server) shutdown() {
	s.beginShutdown()
	<-s.done
}

// stopWithin stops the server (as Stop when unregister, else without
// unregistering) bounded by ctx; when ctx ends first it closes the
// server's sockets at once (abort).
func (s *Server) stopWithin(ctx context.Context, unregister bool) error {
	var err error
	if unregister {
		err = s.Stop(ctx)
	} else {
		s.beginShutdown()
		select {
		case <-s.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	select {
	case <-s.done:
	default:
		s.abort()
	}
	return err
}

// abort closes the sockets of a stopping server without waiting for its
// workers (a shutdown whose context ended): the replies of handlers still
// running are dropped (Reply fails: the loop is closed), and the workers
// and release end when those handlers return.
func (s *Server) abort() {
	s.l.close(func() {
		s.closeSockets()
	})
}

// closeSockets closes the server's sockets (loop only).
func (s *Server) closeSockets() {
	if s.sock != nil {
		s.d.capLinger(s.sock)
		_ = s.sock.Close()
		s.sock = nil
	}
	if s.sub != nil {
		s.d.capLinger(s.sub)
		_ = s.sub.Close()
		s.sub = nil
	}
}

// beginShutdown stops reading and lets the workers drain; the server is
// released (sockets closed, memory handed on, s.done closed) in the
// background once the last worker has left.
func (s *Server) beginShutdown() {
	s.once.Do(func() {
		if s.keeper != nil {
			s.keeper.Close()
		}
		close(s.stopping) // frees a loop blocked handing work to busy workers
		close(s.stopRef)
		<-s.refDone
		// Stop reading; after this no request is handed to the workers.
		_ = s.l.sync(func() {
			s.l.removeReader(s.sock)
			if s.sub != nil {
				s.l.removeReader(s.sub)
			}
		})
		close(s.work)
		go s.release()
	})
}

// release waits for the workers, flushes the replies and closes the
// sockets.
func (s *Server) release() {
	defer close(s.done)
	s.wg.Wait()
	if last := s.lastReply.Load(); last != 0 {
		grace := min(replyGrace, s.d.opts.Socket.Linger)
		if by := s.d.lingerBy.Load(); by != 0 {
			grace = min(grace, max(time.Until(time.Unix(0, by)), 0)) // a Shutdown's ctx bounds it too
		}
		if wait := time.Until(time.Unix(0, last).Add(grace)); wait > 0 {
			time.Sleep(wait) // the clients read the last replies before their connections end
		}
	}
	s.l.close(s.closeSockets)
	s.d.mu.Lock()
	delete(s.d.srvs, s)
	s.d.mu.Unlock()
	s.releaseMem() // the socket is closed: the next server may take it
}
