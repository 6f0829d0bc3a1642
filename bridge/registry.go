package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/matchmaker"
)

// Registry is how a bridge finds the servers of a bus and tells its
// mirrors apart from them.
type Registry interface {
	// Servers lists the servers of topic that live on this bus: real
	// servers, never a mirror that this or another bridge runs there.
	Servers(ctx context.Context, topic string) ([]string, error)
	// Mirrored is told of a mirror started on this bus for server (it
	// lives on the other bus), so that Servers leaves it out from now on,
	// here and in every bridge that reads the same registry. The returned
	// function undoes it once the mirror is stopped.
	Mirrored(ctx context.Context, topic, server string, s driver.Server) (release func(context.Context))
}

// MarkerType is the prefix of the matchmaker key under which a bridge
// registers the addresses of its mirrors: "GOSLO_BRIDGE/<topic>". Python
// peers never read it.
const MarkerType = "GOSLO_BRIDGE"

// MatchmakerRegistry finds the servers of a zmq bus in its matchmaker:
// each key "<L>/<topic>/<server>" (L is ROUTER in direct mode, DEALER in
// proxy mode) that holds a live record other than a bridge's mirror. A
// mirror's address is registered under MarkerType/<topic>, refreshed as
// servers refresh theirs, and removed when it stops.
//
// The key holds the server name cut at '@' (zmq does, spec rabbit-wire
// §14): a zmq server "node@backend" is found as "node".
type MatchmakerRegistry struct {
	MM           matchmaker.Matchmaker
	ListenerType string        // compat.Router (direct, the default) or compat.Dealer (proxy)
	Expire       time.Duration // zmq_target_expire of the markers (0: 300 s)
	Update       time.Duration // zmq_target_update: their refresh period (0: 180 s)
	Logger       *slog.Logger

	mu  sync.Mutex
	own map[string]bool // addresses of this bridge's mirrors
}

// NewMatchmakerRegistry is a MatchmakerRegistry of mm with the timings
// and mode of cfg's [oslo_messaging_zmq].
func NewMatchmakerRegistry(mm matchmaker.Matchmaker, cfg *compat.Config, log *slog.Logger) *MatchmakerRegistry {
	r := &MatchmakerRegistry{MM: mm, ListenerType: compat.Router, Logger: log}
	if cfg != nil {
		if cfg.ZMQ.UseRouterProxy {
			r.ListenerType = compat.Dealer
		}
		r.Expire = time.Duration(cfg.ZMQ.ZMQTargetExpire) * time.Second
		r.Update = time.Duration(cfg.ZMQ.ZMQTargetUpdate) * time.Second
	}
	return r
}

func (r *MatchmakerRegistry) listenerType() string {
	if r.ListenerType == "" {
		return compat.Router
	}
	return r.ListenerType
}

func (r *MatchmakerRegistry) markerKey(topic string) string {
	return compat.TopicKey(MarkerType, compat.Target{Topic: topic})
}

// Servers implements Registry.
func (r *MatchmakerRegistry) Servers(ctx context.Context, topic string) ([]string, error) {
	l, ok := r.MM.(matchmaker.Lister)
	if !ok {
		return nil, fmt.Errorf("bridge: the matchmaker %T cannot list keys", r.MM)
	}
	prefix := compat.TopicKey(r.listenerType(), compat.Target{Topic: topic}) + "/"
	keys, err := l.Keys(ctx, prefix)
	if err != nil {
		return nil, err
	}
	marks, err := r.MM.HostsByKey(ctx, r.markerKey(topic))
	if err != nil {
		return nil, err
	}
	mirror := map[string]bool{}
	for _, m := range marks {
		mirror[m] = true
	}
	r.mu.Lock()
	for a := range r.own {
		mirror[a] = true
	}
	r.mu.Unlock()
	var out []string
	for _, k := range keys {
		server := strings.TrimPrefix(k, prefix)
		if server == "" || strings.Contains(server, "/") {
			continue
		}
		hosts, err := r.MM.HostsByKey(ctx, k)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(hosts, func(h string) bool { return !mirror[h] }) {
			out = append(out, server)
		}
	}
	return out, nil
}

// Mirrored implements Registry: the mirror's address is kept under the
// marker key by a matchmaker.Keeper.
func (r *MatchmakerRegistry) Mirrored(ctx context.Context, topic, server string, s driver.Server) func(context.Context) {
	addr := s.Addr()
	if addr == "" {
		return func(context.Context) {}
	}
	r.mu.Lock()
	if r.own == nil {
		r.own = map[string]bool{}
	}
	r.own[addr] = true
	r.mu.Unlock()
	expire, update := r.Expire, r.Update
	if expire <= 0 {
		expire = 300 * time.Second
	}
	if update <= 0 {
		update = 180 * time.Second
	}
	t := compat.Target{Topic: topic}
	k, err := matchmaker.StartKeeper(context.WithoutCancel(ctx),
		func(ctx context.Context) error { return r.MM.Register(ctx, t, addr, MarkerType, expire) },
		func(ctx context.Context) error { return r.MM.Unregister(ctx, t, addr, MarkerType) },
		update, r.Logger)
	if err != nil && r.Logger != nil {
		r.Logger.Warn("bridge: mirror marker not registered yet; retrying", "topic", topic, "server", server, "addr", addr, "err", err)
	}
	k.Follow(r.MM)
	return func(ctx context.Context) {
		_ = k.Stop(ctx)
		r.mu.Lock()
		delete(r.own, addr)
		r.mu.Unlock()
	}
}

// StaticRegistry knows the servers of a bus from a list, and asks Probe
// whether each one is alive. It is the RabbitMQ side's registry: a
// RabbitMQ server cannot be listed without the management plugin, but the
// queue "<topic>.<server>" of a listed name can be checked with a passive
// declare (RabbitProbe). Mirrors are never on the list, so Mirrored has
// nothing to do. The list can be replaced while the bridge runs (SetNames:
// `goslo bridge` re-reads it on SIGHUP); the next discovery round uses it.
type StaticRegistry struct {
	// Probe tells whether server of topic is alive (nil: always).
	Probe func(ctx context.Context, topic, server string) (bool, error)

	mu    sync.RWMutex
	names map[string][]string
}

// NewStaticRegistry lists names (servers per topic; the key "" lists
// servers of every topic), each checked with probe.
func NewStaticRegistry(names map[string][]string, probe func(ctx context.Context, topic, server string) (bool, error)) *StaticRegistry {
	r := &StaticRegistry{Probe: probe}
	r.SetNames(names)
	return r
}

// SetNames replaces the list (per topic, "" for every topic); a copy is
// kept.
func (r *StaticRegistry) SetNames(names map[string][]string) {
	cp := make(map[string][]string, len(names))
	for k, v := range names {
		cp[k] = slices.Clone(v)
	}
	r.mu.Lock()
	r.names = cp
	r.mu.Unlock()
}

// Names returns the listed servers of topic (those listed for every topic
// included), sorted, without repeats.
func (r *StaticRegistry) Names(topic string) []string {
	r.mu.RLock()
	names := append(append([]string(nil), r.names[""]...), r.names[topic]...)
	r.mu.RUnlock()
	sort.Strings(names)
	return slices.Compact(names)
}

// Servers implements Registry.
func (r *StaticRegistry) Servers(ctx context.Context, topic string) ([]string, error) {
	var out []string
	for _, n := range r.Names(topic) {
		if r.Probe != nil {
			ok, err := r.Probe(ctx, topic, n)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		out = append(out, n)
	}
	return out, nil
}

// Listed reports whether server is on the list for topic.
func (r *StaticRegistry) Listed(topic, server string) bool {
	return slices.Contains(r.Names(topic), server)
}

// Mirrored implements Registry (nothing to record).
func (r *StaticRegistry) Mirrored(context.Context, string, string, driver.Server) func(context.Context) {
	return func(context.Context) {}
}

// Dialer opens an AMQP connection to a bus (rabbit.Transport.DialAMQP).
type Dialer func(ctx context.Context, what string) (*amqp.Connection, error)

// RabbitProbe checks RabbitMQ servers with passive declares of their
// server queues on one connection of its own: a server is alive when its
// queue exists and has a consumer.
type RabbitProbe struct {
	Dial  Dialer
	Queue func(topic, server string) string // the server queue's name (rabbit.ServerQueue)

	mu   sync.Mutex
	conn *amqp.Connection
}

// Alive is a StaticRegistry.Probe.
func (p *RabbitProbe) Alive(ctx context.Context, topic, server string) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil || p.conn.IsClosed() {
		c, err := p.Dial(ctx, "bridge-probe")
		if err != nil {
			return false, err
		}
		p.conn = c
	}
	ch, err := p.conn.Channel()
	if err != nil {
		_ = p.conn.Close()
		p.conn = nil
		return false, err
	}
	q, err := ch.QueueDeclarePassive(p.Queue(topic, server), false, false, false, false, nil)
	if err != nil {
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.NotFound {
			return false, nil // the broker closed the channel
		}
		return false, err
	}
	_ = ch.Close()
	return q.Consumers > 0, nil
}

// Close closes the probe's connection.
func (p *RabbitProbe) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		return nil
	}
	err := p.conn.Close()
	p.conn = nil
	if errors.Is(err, amqp.ErrClosed) {
		return nil
	}
	return err
}
