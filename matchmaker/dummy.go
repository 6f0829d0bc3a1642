package matchmaker

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/goslo/goslo/compat"
)

// Dummy is the in-process matchmaker (zmq+dummy://): one process talking
// to itself, as `make demo` runs (plain zmq:// follows rpc_zmq_matchmaker,
// redis by default). Records age as in the reference: a
// record is visible until its expiry passes, and re-registering refreshes
// it. Where the reference is broken it is fixed (see the package doc): an
// expiry <= 0 means "never expires" (the reference makes such records
// invisible), ages are kept per key and member (the reference keeps one per
// host, and unregistering one target breaks the others), HostsByKey exists
// (the reference lacks it), and the *Retry lookups retry. Aging needs no
// goroutine: records carry a deadline.
type Dummy struct {
	mu     sync.Mutex
	cfg    Config
	keys   map[string]map[string]time.Time // key -> member -> deadline (zero: none)
	now    func() time.Time
	closed bool
}

// NewDummy returns an empty in-process matchmaker.
func NewDummy(cfg Config) *Dummy {
	return &Dummy{cfg: cfg, keys: map[string]map[string]time.Time{}, now: time.Now}
}

func (d *Dummy) add(key, member string, expire time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	m := d.keys[key]
	if m == nil {
		m = map[string]time.Time{}
		d.keys[key] = m
	}
	var deadline time.Time
	if expire > 0 {
		deadline = d.now().Add(expire)
	}
	m[member] = deadline
	return nil
}

func (d *Dummy) remove(key, member string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if m := d.keys[key]; m != nil {
		delete(m, member)
		if len(m) == 0 {
			delete(d.keys, key)
		}
	}
	return nil
}

func (d *Dummy) live(key string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	now := d.now()
	var out []string
	for member, deadline := range d.keys[key] {
		if deadline.IsZero() || now.Before(deadline) {
			out = append(out, member)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (d *Dummy) RegisterPublisher(_ context.Context, p Publisher, expire time.Duration) error {
	return d.add(compat.PublishersKey, compat.PublisherRecord(p.Pub, p.Frontend), expire)
}

func (d *Dummy) UnregisterPublisher(_ context.Context, p Publisher) error {
	return d.remove(compat.PublishersKey, compat.PublisherRecord(p.Pub, p.Frontend))
}

func (d *Dummy) Publishers(context.Context) ([]Publisher, error) {
	members, err := d.live(compat.PublishersKey)
	out := make([]Publisher, 0, len(members))
	for _, m := range members {
		pub, fe, _ := compat.ParsePublisherRecord(m)
		out = append(out, Publisher{Pub: pub, Frontend: fe})
	}
	return out, err
}

func (d *Dummy) RegisterRouter(_ context.Context, addr string, expire time.Duration) error {
	return d.add(compat.RoutersKey, addr, expire)
}

func (d *Dummy) UnregisterRouter(_ context.Context, addr string) error {
	return d.remove(compat.RoutersKey, addr)
}

func (d *Dummy) Routers(context.Context) ([]string, error) { return d.live(compat.RoutersKey) }

func (d *Dummy) Register(_ context.Context, t compat.Target, host, listenerType string, expire time.Duration) error {
	for _, key := range compat.RegistrationKeys(listenerType, t) {
		if err := d.add(key, host, expire); err != nil {
			return err
		}
	}
	return nil
}

func (d *Dummy) Unregister(_ context.Context, t compat.Target, host, listenerType string) error {
	for _, key := range compat.RegistrationKeys(listenerType, t) {
		if err := d.remove(key, host); err != nil {
			return err
		}
	}
	return nil
}

// Hosts reads the server key, falling back to the topic key when that is
// empty, as the reference's dummy does.
func (d *Dummy) Hosts(_ context.Context, t compat.Target, listenerType string) ([]string, error) {
	hosts, err := d.live(hostsKey(t, listenerType))
	if err == nil && len(hosts) == 0 && t.Server != "" {
		return d.live(compat.TopicKey(listenerType, t))
	}
	return hosts, err
}

func (d *Dummy) HostsRetry(ctx context.Context, t compat.Target, listenerType string) ([]string, error) {
	return retry(ctx, hostsKey(t, listenerType), d.cfg.WaitTimeout, d.cfg.CheckTimeout, func(ctx context.Context) ([]string, error) {
		return d.Hosts(ctx, t, listenerType)
	})
}

func (d *Dummy) HostsFanout(_ context.Context, t compat.Target, listenerType string) ([]string, error) {
	return d.live(compat.TargetKey(listenerType, t))
}

func (d *Dummy) HostsFanoutRetry(ctx context.Context, t compat.Target, listenerType string) ([]string, error) {
	key := compat.TargetKey(listenerType, t)
	return retry(ctx, key, d.cfg.WaitTimeout, d.cfg.CheckTimeout, func(context.Context) ([]string, error) {
		return d.live(key)
	})
}

func (d *Dummy) HostsByKey(_ context.Context, key string) ([]string, error) { return d.live(key) }

// Close forgets every record.
func (d *Dummy) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	d.keys = nil
	return nil
}
