package zmq

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/internal/zmqwire"
)

// openDealer makes the proxy-mode consumer (DealerConsumer): a DEALER with
// identity "<rpc_zmq_host>/<target key>/<uuid4>", registered under
// DEALER/topic[/server] with exactly those bytes, since replies carry it in
// their address frame and Python clients compare it with the routing key.
//
// A server that restarts in the same driver (Stop, then a new server of
// the same target) takes over its predecessor's identity and TTL cache,
// so the resends of messages the first one ran but whose ACK or REPLY was
// lost reach the second one (clients resend to the same routing key), and
// are answered from the cache instead of running twice. The reference makes
// a new identity and an empty cache, so such resends find no peer and are
// lost. Two live servers of one target never share an identity.
func (s *Server) openDealer() error {
	key := compat.TargetToKey(s.target)
	s.d.mu.Lock()
	m := s.d.mem[key]
	if m == nil || m.busy {
		m = &serverMemory{identity: zmqwire.ServerIdentity(s.d.opts.Host, s.target, zmqwire.NewUUID4())}
		if s.d.opts.Acks {
			m.cache = newTTLCache(s.d.opts.MessageTTL, 1<<20)
		}
		if s.d.mem[key] == nil {
			s.d.mem[key] = m
		}
	}
	m.busy = true
	s.d.mu.Unlock()
	s.mem = m
	sock, err := s.d.socket(zmq.DEALER, m.identity)
	if err != nil {
		s.releaseMem()
		return err
	}
	_ = sock.SetImmediate(s.d.opts.Immediate)
	s.sock, s.addr, s.listener, s.proxied = sock, m.identity, compat.Dealer, true
	s.cache = m.cache // handed over under d.mu; then owned by this server's loop
	return nil
}

// releaseMem lets the next server of the target take this one's memory
// (once its socket is closed, or was never made).
func (s *Server) releaseMem() {
	if s.mem == nil {
		return
	}
	s.d.mu.Lock()
	s.mem.busy = false
	s.d.mu.Unlock()
	s.mem = nil
}

// serverMemory is what a proxy-mode server leaves to the next server of
// its target in the same driver (guarded by ZMQ.mu).
type serverMemory struct {
	identity string
	cache    *ttlCache // nil without acks
	busy     bool      // a live server holds it
}

// openSub makes the SUB consumer of use_pub_sub: identity
// "<rpc_zmq_host>/<topic>/<uuid4>", subscribed to the topic (a prefix
// filter, never the server name).
func (s *Server) openSub() error {
	sock, err := s.d.socket(zmq.SUB, zmqwire.SubIdentity(s.d.opts.Host, s.target.Topic, zmqwire.NewUUID4()))
	if err != nil {
		return err
	}
	if err := sock.SetSubscribe(string(zmqwire.SubscribeFilter(s.target))); err != nil {
		sock.Close()
		return err
	}
	s.sub = sock
	return nil
}

// refresh reads ROUTERS (proxy mode) and PUBLISHERS (pub/sub, unless
// subscribe_on is set) and connects to what is new. It reports whether a
// socket still has nothing to connect to.
func (s *Server) refresh(ctx context.Context) (empty bool) {
	var routers, pubs []string
	if s.proxied {
		r, err := s.d.mm.Routers(ctx)
		if err != nil {
			s.d.log.Warn("driver: proxy routers not read", "target", s.target.String(), "err", err)
		}
		routers = r
	}
	if s.sub != nil {
		if len(s.d.opts.SubscribeOn) > 0 {
			pubs = s.d.opts.SubscribeOn
		} else {
			p, err := s.d.mm.Publishers(ctx)
			if err != nil {
				s.d.log.Warn("driver: publishers not read", "target", s.target.String(), "err", err)
			}
			for _, r := range p {
				if r.Pub != "" {
					pubs = append(pubs, r.Pub)
				}
			}
		}
	}
	_ = s.l.sync(func() {
		if s.sock == nil {
			return
		}
		if s.proxied {
			s.connect(s.sock, routers)
			empty = empty || len(s.conns[s.sock]) == 0
		}
		if s.sub != nil {
			s.connect(s.sub, pubs)
			empty = empty || len(s.conns[s.sub]) == 0
		}
	})
	return empty
}

// connect adds connections (loop only); none is ever removed, as in the
// reference: libzmq reconnects to a proxy that comes back.
func (s *Server) connect(sock *zmq.Socket, addrs []string) {
	m := s.conns[sock]
	if m == nil {
		m = map[string]bool{}
		s.conns[sock] = m
	}
	for _, a := range addrs {
		if m[a] {
			continue
		}
		if err := sock.Connect(zmqwire.TCPAddress(a)); err != nil {
			s.d.log.Warn("driver: connect failed", "target", s.target.String(), "addr", a, "err", err)
			continue
		}
		m[a] = true
		s.d.log.Debug("driver: consumer connected", "target", s.target.String(), "addr", a)
	}
}

// refresher re-reads the proxies every zmq_target_update; while a socket
// has no proxy at all it looks every second, so a proxy started after the
// server is found at once.
func (s *Server) refresher() {
	defer close(s.refDone)
	empty := false
	for {
		wait := s.d.opts.TargetUpdate
		if empty && wait > time.Second {
			wait = time.Second
		}
		select {
		case <-s.stopRef:
			return
		case <-time.After(wait):
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(s.d.opts.TargetUpdate, 5*time.Second))
		go func() {
			select {
			case <-s.stopRef:
				cancel()
			case <-ctx.Done():
			}
		}()
		empty = s.refresh(ctx)
		cancel()
	}
}

// onPublished handles what the SUB socket receives from a proxy PUB.
func (s *Server) onPublished(frames [][]byte) {
	in, topic, err := zmqwire.ParseSub(frames)
	if err != nil {
		s.d.log.Warn("driver: dropping published message", "target", s.target.String(), "err", err)
		if obs := s.d.opts.Observer; obs != nil {
			obs.Dropped(0, "malformed")
		}
		return
	}
	if obs := s.d.opts.Observer; obs != nil {
		obs.Received(in.Type)
	}
	if s.d.log.Enabled(context.Background(), slog.LevelDebug) {
		s.d.log.Debug("driver: published message", "topic", string(topic), "type", in.Type.String(), "message_id", in.MsgID)
	}
	s.dispatch(&Request{Type: in.Type, MsgID: in.MsgID, Payload: in.Payload, s: s})
}

// acked applies DealerConsumerWithAcks (loop only): a message id seen
// within rpc_message_ttl is a duplicate (acked again for CALL and CAST,
// with the cached REPLY resent for a CALL) and is not dispatched; a new
// CALL or CAST is acked at once, before dispatch. It reports whether to
// dispatch.
func (s *Server) acked(in *zmqwire.Incoming) bool {
	ack := in.Type == Call || in.Type == Cast
	if e, dup := s.cache.get(in.MsgID); dup {
		s.d.log.Info("driver: dropping duplicate", "type", in.Type.String(), "message_id", in.MsgID, "target", s.target.String())
		if obs := s.d.opts.Observer; obs != nil {
			obs.Dropped(in.Type, "duplicate")
		}
		if ack {
			s.send(zmqwire.ProxyAck(in.Identity, in.MsgID))
		}
		if in.Type == Call && e.reply != nil {
			s.send(e.reply)
		}
		return false
	}
	s.cache.add(in.MsgID)
	if ack {
		s.send(zmqwire.ProxyAck(in.Identity, in.MsgID))
	}
	return true
}

func (s *Server) send(frames [][]byte) {
	if err := sendMessage(s.sock, frames, zmq.DONTWAIT); err != nil {
		s.d.log.Warn("driver: response not sent", "message_id", string(frames[4]), "type", string(frames[2]), "target", s.target.String(), "err", err)
	} else if obs := s.d.opts.Observer; obs != nil {
		if t, ok := zmqwire.ParseType(frames[2]); ok {
			obs.Sent(t)
		}
	}
}

// tick sweeps the TTL cache (loop only).
func (s *Server) tick() time.Duration {
	if s.cache == nil {
		return -1
	}
	return s.cache.sweep(time.Now())
}

// ttlCache is the per-server message id cache of rpc_message_ttl (loop
// only). Entries expire in insertion order, so a FIFO of ids is the sweep
// order; size bounds it (the oldest entries go first).
type ttlCache struct {
	ttl     time.Duration
	size    int
	entries map[string]*cacheEntry
	order   []string
}

type cacheEntry struct {
	expires time.Time
	reply   [][]byte
}

func newTTLCache(ttl time.Duration, size int) *ttlCache {
	return &ttlCache{ttl: ttl, size: size, entries: map[string]*cacheEntry{}}
}

func (c *ttlCache) get(id string) (*cacheEntry, bool) {
	e, ok := c.entries[id]
	if ok && c.ttl > 0 && time.Now().After(e.expires) {
		return nil, false
	}
	return e, ok
}

func (c *ttlCache) add(id string) {
	if _, ok := c.entries[id]; ok {
		c.entries[id].expires = time.Now().Add(c.ttl)
		return
	}
	for len(c.order) >= c.size {
		delete(c.entries, c.order[0])
		c.order = c.order[1:]
	}
	c.entries[id] = &cacheEntry{expires: time.Now().Add(c.ttl)}
	c.order = append(c.order, id)
}

func (c *ttlCache) setReply(id string, frames [][]byte) {
	if e, ok := c.entries[id]; ok {
		e.reply = frames
	}
}

// sweep drops expired entries and returns when to sweep next.
func (c *ttlCache) sweep(now time.Time) time.Duration {
	if c.ttl <= 0 {
		return -1
	}
	for len(c.order) > 0 {
		e := c.entries[c.order[0]]
		if e != nil && now.Before(e.expires) {
			return e.expires.Sub(now) + time.Millisecond
		}
		delete(c.entries, c.order[0])
		c.order = c.order[1:]
	}
	return -1
}

var monSeq atomic.Uint64

// watch starts a handshake monitor on a socket the caller still owns.
func (s *Server) watch(sock *zmq.Socket) (*zmq.Socket, error) {
	ep := fmt.Sprintf("inproc://goslo-monitor-%d", monSeq.Add(1))
	if err := sock.Monitor(ep, zmq.EVENT_HANDSHAKE_SUCCEEDED); err != nil {
		return nil, err
	}
	m, err := s.d.zctx.NewSocket(zmq.PAIR)
	if err != nil {
		return nil, err
	}
	if err := m.Connect(ep); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// awaitHandshakes waits (at most until deadline) until every connection
// made so far by the socket watched by mon has completed its ZMTP
// handshake, so that Listen returns a consumer the proxies can reach (a
// DEALER unknown to a proxy ROUTER, or a SUB whose subscription has not
// left, loses what is sent to it meanwhile). Then it stops the monitor.
func (s *Server) awaitHandshakes(sock, mon *zmq.Socket, deadline time.Time) {
	defer func() {
		_ = s.l.sync(func() { _ = sock.Monitor("", 0) })
		_ = mon.SetLinger(0)
		_ = mon.Close()
	}()
	var want int
	_ = s.l.sync(func() { want = len(s.conns[sock]) })
	p := zmq.NewPoller()
	p.Add(mon, zmq.POLLIN)
	for got := 0; got < want; {
		left := time.Until(deadline)
		if left <= 0 {
			s.d.log.Warn("driver: consumer not connected to every proxy yet", "target", s.target.String(), "connected", got, "of", want)
			return
		}
		polled, err := p.Poll(left)
		if err != nil || len(polled) == 0 {
			continue
		}
		if ev, _, _, err := mon.RecvEvent(0); err == nil && ev == zmq.EVENT_HANDSHAKE_SUCCEEDED {
			got++
		}
	}
}
