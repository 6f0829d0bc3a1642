package zmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/internal/ratelog"
	"github.com/goslo/goslo/internal/zmqwire"
	"github.com/goslo/goslo/matchmaker"
)

// ProxyKind is the kind of proxy, chosen at start as the reference does.
type ProxyKind int

const (
	// DoubleRouter has a frontend ROUTER for clients, a backend ROUTER for
	// servers and a PUB (ports all 0, or a backend port set).
	DoubleRouter ProxyKind = iota
	// SingleRouter has one ROUTER for both sides and a PUB (a frontend port
	// set and the backend port 0).
	SingleRouter
	// LocalPublisher is a SUB connected to the publishers (or subscribe_on)
	// that republishes everything on its own PUB; it registers nothing.
	LocalPublisher
)

func (k ProxyKind) String() string {
	switch k {
	case SingleRouter:
		return "ROUTER"
	case LocalPublisher:
		return "L-PUBLISHER"
	}
	return "ROUTER-ROUTER"
}

// ProxyOptions configure a proxy: [zmq_proxy_opts] and the
// [oslo_messaging_zmq] options the reference proxy reads.
type ProxyOptions struct {
	Host           string // zmq_proxy_opts.host: advertised host of every socket
	FrontendPort   int    // 0: random in [MinPort, MaxPort)
	BackendPort    int
	PublisherPort  int
	LocalPublisher bool
	AckPubSub      bool // ack_pub_sub: ack fanouts and notifications it publishes
	PubSub         bool // [oslo_messaging_zmq] use_pub_sub: publish types 3 and 4
	BindAddress    string
	MinPort        int
	MaxPort        int
	BindRetries    int
	TargetUpdate   time.Duration
	TargetExpire   time.Duration
	SubscribeOn    []string // local publisher: where to subscribe instead of PUBLISHERS
	HWM            int
	MaxMessageSize int64
	// SendTimeout is no longer used: the proxy never waits for room in a
	// peer's queue (one stuck peer stalled every other one), it drops what
	// a full queue cannot take and counts it (ProxyStats.Overflow).
	//
	// Deprecated: kept for source compatibility; ignored.
	SendTimeout time.Duration
	// Socket is zmq_linger and the zmq_tcp_keepalive options, set on every
	// socket of the proxy as the reference's do.
	Socket SocketOptions
	Logger *slog.Logger
}

// ProxyOptionsFrom reads the proxy options from a loaded config.
func ProxyOptionsFrom(c *compat.Config) ProxyOptions {
	return ProxyOptions{
		Host: c.ZMQProxy.Host, FrontendPort: c.ZMQProxy.FrontendPort, BackendPort: c.ZMQProxy.BackendPort,
		PublisherPort: c.ZMQProxy.PublisherPort, LocalPublisher: c.ZMQProxy.LocalPublisher, AckPubSub: c.ZMQProxy.AckPubSub,
		PubSub: c.ZMQ.UsePubSub, BindAddress: c.ZMQ.RPCZMQBindAddress,
		MinPort: c.ZMQ.RPCZMQMinPort, MaxPort: c.ZMQ.RPCZMQMaxPort, BindRetries: c.ZMQ.RPCZMQBindPortRetries,
		TargetUpdate: time.Duration(c.ZMQ.ZMQTargetUpdate) * time.Second,
		TargetExpire: time.Duration(c.ZMQ.ZMQTargetExpire) * time.Second,
		SubscribeOn:  append([]string(nil), c.ZMQ.SubscribeOn...),
		Socket:       SocketOptionsFrom(c),
	}
}

// Kind is the kind these options select.
func (o ProxyOptions) Kind() ProxyKind {
	switch {
	case o.LocalPublisher:
		return LocalPublisher
	case o.FrontendPort != 0 && o.BackendPort == 0:
		return SingleRouter
	}
	return DoubleRouter
}

// ProxyStats counts what a proxy did.
type ProxyStats struct {
	FrontToBack uint64 // routed from the frontend to the backend (or within a single router)
	BackToFront uint64 // routed from the backend to the frontend
	Published   uint64
	Acked       uint64 // pub/sub acks sent
	Dropped     uint64 // every message dropped: malformed, unsupported, unroutable, overflow, oversized or of too many parts
	// Overflow counts the messages dropped because their peer's queue was
	// full (the high-water mark reached: a peer that reads too slowly or
	// not at all); they are part of Dropped.
	Overflow uint64
	// Disconnects counts the connections the ROUTERs lost: closed by the
	// peer, or dropped by libzmq for a frame over MaxMessageSize.
	Disconnects uint64
}

// Proxy is oslo-messaging-zmq-proxy: it routes by the rule of
// zmq-wire.md §6.2, publishes fanouts and notifications with use_pub_sub,
// and keeps its PUBLISHERS and ROUTERS records alive. It never decodes a
// payload and keeps no per-message state. Its sockets are owned by one
// loop goroutine.
type Proxy struct {
	opts  ProxyOptions
	kind  ProxyKind
	mm    matchmaker.Matchmaker
	log   *slog.Logger
	zctx  *zmq.Context
	l     *loop
	fe    *zmq.Socket // frontend ROUTER (nil for a local publisher)
	be    *zmq.Socket // backend ROUTER (DoubleRouter only)
	pub   *zmq.Socket
	sub   *zmq.Socket // LocalPublisher only
	feID  []byte
	conns map[string]bool // local publisher's SUB connections (loop only)

	feAddr, beAddr, pubAddr string
	debug                   bool // the logger takes debug records

	keeper *matchmaker.Keeper
	stopC  chan struct{}
	subWG  sync.WaitGroup
	once   sync.Once

	frontToBack, backToFront, published, acked, dropped, overflow atomic.Uint64
	disconnects                                                   atomic.Uint64
	// overflowBy counts the overflow of each peer (loop only), for its log
	// lines; bounded by maxOverflowPeers.
	overflowBy map[string]uint64
}

// maxOverflowPeers bounds the peers whose overflow the proxy counts apart.
const maxOverflowPeers = 4096

// NewProxy binds the sockets of the kind the options select, registers the
// proxy (a central proxy registers PUBLISHERS "<pub>,<frontend>" and
// ROUTERS "<backend>", refreshed every TargetUpdate with TargetExpire) and
// starts routing.
func NewProxy(ctx context.Context, mm matchmaker.Matchmaker, opts ProxyOptions) (*Proxy, error) {
	opts.Logger = ratelog.Logger(opts.Logger)
	if opts.HWM <= 0 {
		opts.HWM = 100000
	}
	if opts.MaxMessageSize <= 0 {
		opts.MaxMessageSize = 64 << 20
	}
	if opts.TargetUpdate <= 0 {
		opts.TargetUpdate = 180 * time.Second
	}
	if opts.BindAddress == "" {
		opts.BindAddress = "*"
	}
	if opts.MaxPort <= opts.MinPort {
		return nil, fmt.Errorf("driver: port range [%d, %d) is empty", opts.MinPort, opts.MaxPort)
	}
	zctx, err := zmq.NewContext()
	if err != nil {
		return nil, err
	}
	p := &Proxy{opts: opts, kind: opts.Kind(), mm: mm, log: opts.Logger, zctx: zctx, stopC: make(chan struct{}), conns: map[string]bool{},
		debug: opts.Logger.Enabled(ctx, slog.LevelDebug)}
	if err := p.open(); err != nil {
		p.closeSockets()
		_ = zctx.Term()
		return nil, err
	}
	p.l, err = newLoop(zctx, "proxy", p.log, nil)
	if err != nil {
		p.closeSockets()
		_ = zctx.Term()
		return nil, err
	}
	p.l.onDrop = func(string) { p.dropped.Add(1) } // too many parts, or oversized
	err = p.l.sync(func() {
		if p.fe != nil {
			p.l.addReader(p.fe, func(f [][]byte) { p.route(p.fe, f) })
		}
		if p.be != nil {
			p.l.addReader(p.be, func(f [][]byte) { p.route(p.be, f) })
		}
		if p.sub != nil {
			p.l.addReader(p.sub, p.republish)
		}
	})
	if err != nil {
		p.Close()
		return nil, err
	}
	p.log.Info("driver: running proxy", "kind", p.kind.String(), "frontend", p.feAddr, "backend", p.beAddr, "publisher", p.pubAddr)
	if p.kind == LocalPublisher {
		p.subscribe(ctx)
		p.subWG.Add(1)
		go p.resubscriber()
		return p, nil
	}
	pubRec := matchmaker.Publisher{Pub: p.pubAddr, Frontend: p.feAddr}
	router := p.beAddr
	if p.kind == SingleRouter {
		router = p.feAddr
	}
	p.keeper, err = matchmaker.StartKeeper(context.WithoutCancel(ctx),
		func(ctx context.Context) error {
			if err := mm.RegisterPublisher(ctx, pubRec, opts.TargetExpire); err != nil {
				return err
			}
			return mm.RegisterRouter(ctx, router, opts.TargetExpire)
		},
		func(ctx context.Context) error {
			err1 := mm.UnregisterPublisher(ctx, pubRec)
			err2 := mm.UnregisterRouter(ctx, router)
			return errors.Join(err1, err2)
		},
		opts.TargetUpdate, p.log)
	p.keeper.Follow(mm) // re-register as soon as the matchmaker is back
	if err != nil {
		p.log.Warn("driver: proxy not registered yet; the keeper retries", "err", err)
	}
	return p, nil
}

func (p *Proxy) socket(t zmq.Type, identity string) (*zmq.Socket, error) {
	return newSocket(p.zctx, t, identity, p.opts.HWM, p.opts.MaxMessageSize, p.opts.Socket)
}

// routerOptions: ROUTER_MANDATORY, so that a full peer queue is seen
// (EAGAIN) rather than silently dropped, and unroutable messages are
// counted; ROUTER_HANDOVER, so that a server restarted in its transport,
// which reconnects with its predecessor's identity, takes that identity
// over even when the proxy has not yet seen the old connection close
// (without it libzmq ignores the new connection and everything routed to
// the identity is lost until the old one times out). Every send is
// non-blocking.
func (p *Proxy) routerOptions(s *zmq.Socket) {
	_ = s.SetRouterMandatory(1)
	_ = s.SetRouterHandover(true)
}

// bind binds on a fixed port, or a random one of the range when port is 0,
// and returns the advertised "<host>:<port>".
func (p *Proxy) bind(s *zmq.Socket, port int) (string, error) {
	if port != 0 {
		if err := s.Bind(zmqwire.TCPBindAddress(p.opts.BindAddress, port)); err != nil {
			return "", fmt.Errorf("driver: proxy port %d is busy: %w", port, err)
		}
		return compat.HostPort(p.opts.Host, port), nil
	}
	var err error
	for i := 0; i < max(p.opts.BindRetries, 1); i++ {
		port := p.opts.MinPort + rand.IntN(p.opts.MaxPort-p.opts.MinPort)
		if port > 65535 {
			continue
		}
		if err = s.Bind(zmqwire.TCPBindAddress(p.opts.BindAddress, port)); err == nil {
			return compat.HostPort(p.opts.Host, port), nil
		}
	}
	return "", fmt.Errorf("driver: random ports range exceeded: %v", err)
}

// watch logs and counts the connections a ROUTER loses (watchDisconnects).
func (p *Proxy) watch(s *zmq.Socket, name string) {
	if err := watchDisconnects(p.zctx, s, name, p.opts.MaxMessageSize, p.log, func() { p.disconnects.Add(1) }); err != nil {
		p.log.Warn("driver: cannot watch the proxy's connections", "socket", name, "err", err)
	}
}

func (p *Proxy) open() error {
	var err error
	if p.pub, err = p.socket(zmq.PUB, ""); err != nil {
		return err
	}
	if p.pubAddr, err = p.bind(p.pub, p.opts.PublisherPort); err != nil {
		return err
	}
	if p.kind == LocalPublisher {
		if p.sub, err = p.socket(zmq.SUB, ""); err != nil {
			return err
		}
		return p.sub.SetSubscribe("")
	}
	p.feID = []byte(zmqwire.ProxyIdentity(p.opts.Host, zmqwire.NewUUID4()))
	if p.fe, err = p.socket(zmq.ROUTER, string(p.feID)); err != nil {
		return err
	}
	p.routerOptions(p.fe)
	if p.feAddr, err = p.bind(p.fe, p.opts.FrontendPort); err != nil {
		return err
	}
	p.watch(p.fe, "proxy-frontend")
	if p.kind == DoubleRouter {
		if p.be, err = p.socket(zmq.ROUTER, zmqwire.ProxyIdentity(p.opts.Host, zmqwire.NewUUID4())); err != nil {
			return err
		}
		p.routerOptions(p.be)
		if p.beAddr, err = p.bind(p.be, p.opts.BackendPort); err != nil {
			return err
		}
		p.watch(p.be, "proxy-backend")
	}
	return nil
}

// route handles one message read on a ROUTER (loop only).
func (p *Proxy) route(from *zmq.Socket, frames [][]byte) {
	t, err := zmqwire.CheckProxyInput(frames)
	if err != nil {
		p.dropped.Add(1)
		p.log.Warn("driver: proxy dropping message", "err", err)
		return
	}
	if p.opts.PubSub && t.IsMultisend() {
		// [sender, "", ver, type, topic, mid, payload] → PUB topic·ver·type·mid·payload
		msg := make([][]byte, 0, len(frames)-2)
		msg = append(msg, frames[4], frames[2], frames[3])
		msg = append(msg, frames[5:]...)
		if err := sendMessage(p.pub, msg, zmq.DONTWAIT); err != nil {
			p.dropped.Add(1)
			p.log.Warn("driver: proxy publish failed", "message_id", string(frames[5]), "err", err)
		} else {
			p.published.Add(1)
		}
		if from == p.fe && p.opts.AckPubSub {
			ack := [][]byte{frames[0], []byte{}, frames[2], p.feID, Ack.Frame(), frames[5]}
			if err := sendMessage(p.fe, ack, zmq.DONTWAIT); err == nil {
				p.acked.Add(1)
			}
		}
		return
	}
	to := p.fe
	if p.be != nil && from == p.fe {
		to = p.be
	}
	msgID, dest := frames[5], frames[4]
	out := frames
	zmqwire.SwapRoute(out) // the message is ours: route it without a copy
	err = sendMessage(to, out, zmq.DONTWAIT)
	if err != nil {
		p.dropped.Add(1)
		if zmq.AsErrno(err) == errnoAgain {
			// The peer's queue is full (high-water mark): it reads too
			// slowly or not at all. Its message is dropped and counted;
			// the loop never waits for it, so every other peer keeps its
			// throughput (waiting here once stalled the whole proxy).
			p.overflowed(t, msgID, dest)
			return
		}
		if zmq.AsErrno(err) == errnoHostUnreach {
			// An unknown routing key: the reference drops it silently.
			p.log.Debug("driver: proxy dropping message for an unknown peer", "type", t.String(), "message_id", string(msgID), "to", string(dest))
			return
		}
		p.log.Warn("driver: proxy could not forward", "type", t.String(), "message_id", string(msgID), "to", string(dest), "err", err)
		return
	}
	if to == p.be || p.be == nil {
		p.frontToBack.Add(1)
	} else {
		p.backToFront.Add(1)
	}
	if p.debug {
		p.log.Debug("driver: dispatching", "type", t.String(), "message_id", string(msgID),
			"from", string(out[3]), "to", string(dest))
	}
}

// overflowed counts a message dropped because its peer's queue is full
// and logs it (the log is rate-limited per peer, with the peer's total).
func (p *Proxy) overflowed(t MsgType, msgID, dest []byte) {
	p.overflow.Add(1)
	if p.overflowBy == nil {
		p.overflowBy = map[string]uint64{}
	}
	peer := string(dest)
	n, ok := p.overflowBy[peer]
	if ok || len(p.overflowBy) < maxOverflowPeers {
		p.overflowBy[peer] = n + 1
	}
	p.log.Warn("driver: proxy dropping message: peer queue full", "type", t.String(), "message_id", string(msgID),
		"peer", peer, "peer_dropped", n+1)
}

// republish forwards what a local publisher's SUB receives (loop only).
func (p *Proxy) republish(frames [][]byte) {
	if err := sendMessage(p.pub, frames, zmq.DONTWAIT); err != nil {
		p.dropped.Add(1)
		return
	}
	p.published.Add(1)
}

// subscribe connects a local publisher's SUB to every publisher (or to
// subscribe_on), skipping its own PUB.
func (p *Proxy) subscribe(ctx context.Context) {
	addrs := p.opts.SubscribeOn
	if len(addrs) == 0 {
		pubs, err := p.mm.Publishers(ctx)
		if err != nil {
			p.log.Warn("driver: publishers not read", "err", err)
		}
		for _, r := range pubs {
			addrs = append(addrs, r.Pub)
		}
	}
	_ = p.l.sync(func() {
		for _, a := range addrs {
			if a == "" || a == p.pubAddr || p.conns[a] || p.sub == nil {
				continue
			}
			if err := p.sub.Connect(zmqwire.TCPAddress(a)); err != nil {
				p.log.Warn("driver: connect failed", "addr", a, "err", err)
				continue
			}
			p.conns[a] = true
		}
	})
}

func (p *Proxy) resubscriber() {
	defer p.subWG.Done()
	for {
		select {
		case <-p.stopC:
			return
		case <-time.After(p.opts.TargetUpdate):
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		p.subscribe(ctx)
		cancel()
	}
}

// Kind is the proxy's kind.
func (p *Proxy) Kind() ProxyKind { return p.kind }

// Frontend, Backend and Publisher are the advertised "<host>:<port>" of
// the sockets ("" when the kind has none).
func (p *Proxy) Frontend() string  { return p.feAddr }
func (p *Proxy) Backend() string   { return p.beAddr }
func (p *Proxy) Publisher() string { return p.pubAddr }

// Stats returns the proxy's counters.
func (p *Proxy) Stats() ProxyStats {
	return ProxyStats{FrontToBack: p.frontToBack.Load(), BackToFront: p.backToFront.Load(),
		Published: p.published.Load(), Acked: p.acked.Load(), Dropped: p.dropped.Load(), Overflow: p.overflow.Load(),
		Disconnects: p.disconnects.Load()}
}

// Stop removes the proxy's records (as the reference does on SIGINT),
// bounded by ctx, then closes it.
func (p *Proxy) Stop(ctx context.Context) error {
	var err error
	if p.keeper != nil {
		err = p.keeper.Stop(ctx)
	}
	p.Close()
	return err
}

// Close closes the proxy and leaves its records to expire (SIGTERM).
func (p *Proxy) Close() error {
	p.once.Do(func() {
		close(p.stopC)
		if p.keeper != nil {
			p.keeper.Close()
		}
		p.subWG.Wait()
		if p.l != nil {
			p.l.close(p.closeSockets)
		}
		termContext(p.zctx)
	})
	return nil
}

func (p *Proxy) closeSockets() {
	for _, s := range []**zmq.Socket{&p.fe, &p.be, &p.pub, &p.sub} {
		if *s != nil {
			if p.l != nil {
				p.l.removeReader(*s)
			}
			_ = (*s).Close()
			*s = nil
		}
	}
}
