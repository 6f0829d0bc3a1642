package gosloprom

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/goslo/goslo/compat"
	driver "github.com/goslo/goslo/driver/zmq"
	"github.com/goslo/goslo/matchmaker"
)

// Metrics is a driver.Observer backed by Prometheus collectors.
type Metrics struct {
	reg      prometheus.Registerer
	sent     *prometheus.CounterVec
	received *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	calls    *prometheus.HistogramVec
	mmErrors *prometheus.CounterVec
	discs    *prometheus.CounterVec
	// the series of each type, resolved once: Sent and Received run per message
	sentBy, receivedBy [driver.Ack + 1]prometheus.Counter
}

// New registers goslo's collectors on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		reg: reg,
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "goslo_messages_sent_total",
			Help: "Messages written to a zmq socket, by type."}, []string{"type"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "goslo_messages_received_total",
			Help: "Well-formed messages taken from a zmq socket, by type."}, []string{"type"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "goslo_messages_dropped_total",
			Help: "Messages given up, by type and reason."}, []string{"type", "reason"}),
		calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "goslo_call_duration_seconds",
			Help:    "CALL round trips, by outcome (ok, timeout, error).",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 18)}, []string{"outcome"}),
		mmErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "goslo_matchmaker_errors_total",
			Help: "Failed matchmaker operations, by operation."}, []string{"op"}),
		discs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "goslo_peer_disconnects_total",
			Help: "Connections a listening socket lost: closed by the peer, or dropped by libzmq for a frame over max_message_size."}, []string{"socket"}),
	}
	for _, c := range []prometheus.Collector{m.sent, m.received, m.dropped, m.calls, m.mmErrors, m.discs} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for t := driver.Call; t <= driver.Ack; t++ {
		m.sentBy[t] = m.sent.WithLabelValues(t.String())
		m.receivedBy[t] = m.received.WithLabelValues(t.String())
	}
	return m, nil
}

func typeLabel(t driver.MsgType) string {
	if t < driver.Call || t > driver.Ack {
		return "unknown"
	}
	return t.String()
}

// Sent implements driver.Observer.
func (m *Metrics) Sent(t driver.MsgType) {
	if t >= driver.Call && t <= driver.Ack {
		m.sentBy[t].Inc()
		return
	}
	m.sent.WithLabelValues(typeLabel(t)).Inc()
}

// Received implements driver.Observer.
func (m *Metrics) Received(t driver.MsgType) {
	if t >= driver.Call && t <= driver.Ack {
		m.receivedBy[t].Inc()
		return
	}
	m.received.WithLabelValues(typeLabel(t)).Inc()
}

// Dropped implements driver.Observer.
func (m *Metrics) Dropped(t driver.MsgType, reason string) {
	m.dropped.WithLabelValues(typeLabel(t), reason).Inc()
}

// Disconnected implements driver.DisconnectObserver.
func (m *Metrics) Disconnected(socket string) {
	m.discs.WithLabelValues(socket).Inc()
}

// Call implements driver.Observer.
func (m *Metrics) Call(d time.Duration, outcome string) {
	m.calls.WithLabelValues(outcome).Observe(d.Seconds())
}

// Proxy exports a proxy's counters (driver.Proxy.Stats) on the registry.
func (m *Metrics) Proxy(p *driver.Proxy) error {
	fn := func(f func(driver.ProxyStats) uint64) func() float64 {
		return func() float64 { return float64(f(p.Stats())) }
	}
	directions := []struct {
		name  string
		field func(driver.ProxyStats) uint64
	}{
		{"front_to_back", func(s driver.ProxyStats) uint64 { return s.FrontToBack }},
		{"back_to_front", func(s driver.ProxyStats) uint64 { return s.BackToFront }},
		{"published", func(s driver.ProxyStats) uint64 { return s.Published }},
		{"acked", func(s driver.ProxyStats) uint64 { return s.Acked }},
	}
	var cs []prometheus.Collector
	for _, d := range directions {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "goslo_proxy_messages_total",
			Help: "Messages a proxy forwarded, by direction.", ConstLabels: prometheus.Labels{"direction": d.name}}, fn(d.field)))
	}
	cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "goslo_proxy_dropped_total",
		Help: "Messages a proxy dropped (malformed, unroutable, overflow, oversized, too many parts)."}, fn(func(s driver.ProxyStats) uint64 { return s.Dropped })))
	cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "goslo_proxy_overflow_total",
		Help: "Messages a proxy dropped because their peer's queue was full (a slow or stuck peer); part of goslo_proxy_dropped_total."},
		fn(func(s driver.ProxyStats) uint64 { return s.Overflow })))
	cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "goslo_proxy_peer_disconnects_total",
		Help: "Connections the proxy's ROUTERs lost: closed by the peer, or dropped by libzmq for a frame over max_message_size."},
		fn(func(s driver.ProxyStats) uint64 { return s.Disconnects })))
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Matchmaker wraps mm so that its failed operations are counted in
// goslo_matchmaker_errors_total{op}.
func (m *Metrics) Matchmaker(mm matchmaker.Matchmaker) matchmaker.Matchmaker {
	return &countingMM{Matchmaker: mm, m: m}
}

type countingMM struct {
	matchmaker.Matchmaker
	m *Metrics
}

// count counts failures of the name service, not answers: "nobody is
// registered" and a caller's own deadline are outcomes, not errors.
func (c *countingMM) count(op string, err error) error {
	if err != nil && !errors.Is(err, matchmaker.ErrNoHosts) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		c.m.mmErrors.WithLabelValues(op).Inc()
	}
	return err
}

// OnRecovered passes matchmaker.Recoverer through the wrapper.
func (c *countingMM) OnRecovered(f func()) func() {
	if r, ok := c.Matchmaker.(matchmaker.Recoverer); ok {
		return r.OnRecovered(f)
	}
	return func() {}
}

// Keys passes matchmaker.Lister through the wrapper.
func (c *countingMM) Keys(ctx context.Context, prefix string) ([]string, error) {
	l, ok := c.Matchmaker.(matchmaker.Lister)
	if !ok {
		return nil, errors.New("metrics: the matchmaker cannot list keys")
	}
	v, err := l.Keys(ctx, prefix)
	return v, c.count("keys", err)
}

func (c *countingMM) RegisterPublisher(ctx context.Context, p matchmaker.Publisher, expire time.Duration) error {
	return c.count("register_publisher", c.Matchmaker.RegisterPublisher(ctx, p, expire))
}
func (c *countingMM) UnregisterPublisher(ctx context.Context, p matchmaker.Publisher) error {
	return c.count("unregister_publisher", c.Matchmaker.UnregisterPublisher(ctx, p))
}
func (c *countingMM) Publishers(ctx context.Context) ([]matchmaker.Publisher, error) {
	v, err := c.Matchmaker.Publishers(ctx)
	return v, c.count("publishers", err)
}
func (c *countingMM) RegisterRouter(ctx context.Context, addr string, expire time.Duration) error {
	return c.count("register_router", c.Matchmaker.RegisterRouter(ctx, addr, expire))
}
func (c *countingMM) UnregisterRouter(ctx context.Context, addr string) error {
	return c.count("unregister_router", c.Matchmaker.UnregisterRouter(ctx, addr))
}
func (c *countingMM) Routers(ctx context.Context) ([]string, error) {
	v, err := c.Matchmaker.Routers(ctx)
	return v, c.count("routers", err)
}
func (c *countingMM) Register(ctx context.Context, t compat.Target, host, l string, expire time.Duration) error {
	return c.count("register", c.Matchmaker.Register(ctx, t, host, l, expire))
}
func (c *countingMM) Unregister(ctx context.Context, t compat.Target, host, l string) error {
	return c.count("unregister", c.Matchmaker.Unregister(ctx, t, host, l))
}
func (c *countingMM) Hosts(ctx context.Context, t compat.Target, l string) ([]string, error) {
	v, err := c.Matchmaker.Hosts(ctx, t, l)
	return v, c.count("hosts", err)
}
func (c *countingMM) HostsRetry(ctx context.Context, t compat.Target, l string) ([]string, error) {
	v, err := c.Matchmaker.HostsRetry(ctx, t, l)
	return v, c.count("hosts", err)
}
func (c *countingMM) HostsFanout(ctx context.Context, t compat.Target, l string) ([]string, error) {
	v, err := c.Matchmaker.HostsFanout(ctx, t, l)
	return v, c.count("hosts", err)
}
func (c *countingMM) HostsFanoutRetry(ctx context.Context, t compat.Target, l string) ([]string, error) {
	v, err := c.Matchmaker.HostsFanoutRetry(ctx, t, l)
	return v, c.count("hosts", err)
}
func (c *countingMM) HostsByKey(ctx context.Context, key string) ([]string, error) {
	v, err := c.Matchmaker.HostsByKey(ctx, key)
	return v, c.count("hosts", err)
}

var _ driver.Observer = (*Metrics)(nil)
