package matchmaker

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/goslo/goslo/compat"
)

// store is where a Redis-schema matchmaker writes and reads: every
// available instance for writes, one ready instance for reads.
type store interface {
	write(ctx context.Context, f func(c rdb) error) error
	read(ctx context.Context, f func(c rdb) ([]string, error)) ([]string, error)
	close() error
}

// rdb is what the schema needs of a connection. Commands are sent with Do
// and upper-case names, so that MONITOR shows exactly what redis-py sends.
type rdb interface {
	Do(ctx context.Context, args ...any) *redis.Cmd
	Pipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error)
}

// schema implements the Matchmaker interface on the reference's Redis
// schema (matchmaker.md §3) over any store.
type schema struct {
	st     store
	cfg    Config
	closed atomic.Bool
}

func (s *schema) check() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// sadd is the reference's _sadd: SADD, then EXPIRE when expire > 0.
func (s *schema) sadd(ctx context.Context, key, member string, expire time.Duration) error {
	sec := expireSeconds(expire)
	return s.st.write(ctx, func(c rdb) error {
		if err := c.Do(ctx, "SADD", key, member).Err(); err != nil {
			return err
		}
		if sec > 0 {
			return c.Do(ctx, "EXPIRE", key, sec).Err()
		}
		return nil
	})
}

func (s *schema) srem(ctx context.Context, key, member string) error {
	return s.st.write(ctx, func(c rdb) error { return c.Do(ctx, "SREM", key, member).Err() })
}

// addMember registers member in key and its liveness key.
func (s *schema) addMember(ctx context.Context, key, member string, expire time.Duration) error {
	if err := s.sadd(ctx, key, member, expire); err != nil {
		return err
	}
	return s.sadd(ctx, member, compat.LivenessMember, expire)
}

func (s *schema) removeMember(ctx context.Context, key, member string) error {
	if err := s.srem(ctx, key, member); err != nil {
		return err
	}
	return s.srem(ctx, member, compat.LivenessMember)
}

// smembers is the reference's _smembers: SMEMBERS, then TTL of each
// member's liveness key, keeping those whose TTL is >= -1.
func (s *schema) smembers(ctx context.Context, key string) ([]string, error) {
	return s.st.read(ctx, func(c rdb) ([]string, error) {
		members, err := c.Do(ctx, "SMEMBERS", key).StringSlice()
		if err != nil || len(members) == 0 {
			return nil, err
		}
		cmds := make([]*redis.Cmd, len(members))
		_, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, m := range members {
				cmds[i] = p.Do(ctx, "TTL", m)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		live := members[:0]
		for i, m := range members {
			if ttl, err := cmds[i].Int64(); err == nil && ttl >= -1 {
				live = append(live, m)
			}
		}
		return live, nil
	})
}

func (s *schema) RegisterPublisher(ctx context.Context, p Publisher, expire time.Duration) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.addMember(ctx, compat.PublishersKey, compat.PublisherRecord(p.Pub, p.Frontend), expire)
}

func (s *schema) UnregisterPublisher(ctx context.Context, p Publisher) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.removeMember(ctx, compat.PublishersKey, compat.PublisherRecord(p.Pub, p.Frontend))
}

func (s *schema) Publishers(ctx context.Context) ([]Publisher, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	members, err := s.smembers(ctx, compat.PublishersKey)
	if err != nil {
		return nil, err
	}
	out := make([]Publisher, 0, len(members))
	for _, m := range members {
		pub, fe, _ := compat.ParsePublisherRecord(m)
		out = append(out, Publisher{Pub: pub, Frontend: fe})
	}
	return out, nil
}

func (s *schema) RegisterRouter(ctx context.Context, addr string, expire time.Duration) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.addMember(ctx, compat.RoutersKey, addr, expire)
}

func (s *schema) UnregisterRouter(ctx context.Context, addr string) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.removeMember(ctx, compat.RoutersKey, addr)
}

func (s *schema) Routers(ctx context.Context) ([]string, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.smembers(ctx, compat.RoutersKey)
}

func (s *schema) Register(ctx context.Context, t compat.Target, host, listenerType string, expire time.Duration) error {
	if err := s.check(); err != nil {
		return err
	}
	for _, key := range compat.RegistrationKeys(listenerType, t) {
		if err := s.addMember(ctx, key, host, expire); err != nil {
			return err
		}
	}
	return nil
}

func (s *schema) Unregister(ctx context.Context, t compat.Target, host, listenerType string) error {
	if err := s.check(); err != nil {
		return err
	}
	var first error
	for _, key := range compat.RegistrationKeys(listenerType, t) {
		if err := s.removeMember(ctx, key, host); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// hostsKey is the key get_hosts reads: the server key when the target has
// a server, else the topic key; no fallback between them.
func hostsKey(t compat.Target, listenerType string) string {
	if t.Server != "" {
		return compat.PrefixedKey(listenerType, t.Topic+"/"+compat.ServerName(t.Server))
	}
	return compat.TopicKey(listenerType, t)
}

func (s *schema) Hosts(ctx context.Context, t compat.Target, listenerType string) ([]string, error) {
	return s.HostsByKey(ctx, hostsKey(t, listenerType))
}

func (s *schema) HostsRetry(ctx context.Context, t compat.Target, listenerType string) ([]string, error) {
	key := hostsKey(t, listenerType)
	return retry(ctx, key, s.cfg.WaitTimeout, s.cfg.CheckTimeout, func(ctx context.Context) ([]string, error) {
		return s.HostsByKey(ctx, key)
	})
}

func (s *schema) HostsFanout(ctx context.Context, t compat.Target, listenerType string) ([]string, error) {
	return s.HostsByKey(ctx, compat.TargetKey(listenerType, t))
}

func (s *schema) HostsFanoutRetry(ctx context.Context, t compat.Target, listenerType string) ([]string, error) {
	key := compat.TargetKey(listenerType, t)
	return retry(ctx, key, s.cfg.WaitTimeout, s.cfg.CheckTimeout, func(ctx context.Context) ([]string, error) {
		return s.HostsByKey(ctx, key)
	})
}

func (s *schema) HostsByKey(ctx context.Context, key string) ([]string, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.smembers(ctx, key)
}

func (s *schema) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.st.close()
}

// Redis is the redis backend: one or more independent Redis servers,
// written to all, read from one.
type Redis struct {
	schema
}

// NewRedis connects to the instances (PING each; those that answer are
// available and ready now, the others are retried by a background checker),
// in a random order as the reference shuffles them. It fails only when no
// address is given; a Redis that is down is reported by later calls.
func NewRedis(ctx context.Context, addrs []RedisAddr, cfg Config) (*Redis, error) {
	if len(addrs) == 0 {
		return nil, errors.New("matchmaker: no Redis address")
	}
	ms := &multiStore{cfg: cfg, log: cfg.logger(), stop: make(chan struct{})}
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{
			Addr: a.Addr, Password: a.Password, DB: 0,
			Protocol:        2,    // RESP2 and no HELLO, as redis-py 4.3 speaks
			DisableIdentity: true, // no CLIENT SETINFO: MONITOR shows only the schema's commands
			MaxRetries:      -1,   // a failure marks the instance unavailable at once
			DialTimeout:     2 * time.Second,
		})
		inst := &instance{addr: a.Addr, c: c}
		if err := c.Do(ctx, "PING").Err(); err == nil {
			inst.available, inst.readyFrom = true, time.Now()
		} else {
			ms.log.Warn("matchmaker: Redis is not available now", "addr", a.Addr, "err", err)
			inst.readyFrom = time.Time{}
		}
		ms.instances = append(ms.instances, inst)
	}
	rand.Shuffle(len(ms.instances), func(i, j int) { ms.instances[i], ms.instances[j] = ms.instances[j], ms.instances[i] })
	ms.wg.Add(1)
	go ms.checker()
	return &Redis{schema{st: ms, cfg: cfg}}, nil
}

type instance struct {
	addr      string
	c         *redis.Client
	available bool
	readyFrom time.Time
}

type multiStore struct {
	cfg       Config
	log       *slog.Logger
	mu        sync.Mutex
	instances []*instance
	stop      chan struct{}
	stopOnce  sync.Once
	wg        sync.WaitGroup
}

// isConnErr tells a broken connection (the instance goes unavailable) from
// an error reply of a working server.
func isConnErr(err error) bool {
	if err == nil {
		return false
	}
	var rerr redis.Error // an error reply: the server works
	return !errors.As(err, &rerr)
}

func (m *multiStore) snapshot() []*instance {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*instance(nil), m.instances...)
}

func (m *multiStore) markDown(in *instance, err error) {
	m.mu.Lock()
	was := in.available
	in.available = false
	m.mu.Unlock()
	if was {
		m.log.Warn("matchmaker: Redis connection failed; instance marked unavailable", "addr", in.addr, "err", err)
	}
}

func (m *multiStore) write(ctx context.Context, f func(c rdb) error) error {
	var tried []string
	var last error
	ok := 0
	for _, in := range m.snapshot() {
		m.mu.Lock()
		avail := in.available
		m.mu.Unlock()
		if !avail {
			continue
		}
		tried = append(tried, in.addr)
		err := f(in.c)
		if err == nil {
			ok++
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !isConnErr(err) {
			return err
		}
		last = err
		m.markDown(in, err)
	}
	if ok == 0 {
		return &UnavailableError{Op: "write", Addrs: tried, Err: last}
	}
	return nil
}

func (m *multiStore) read(ctx context.Context, f func(c rdb) ([]string, error)) ([]string, error) {
	var tried []string
	var last error
	now := time.Now()
	for _, in := range m.snapshot() {
		m.mu.Lock()
		usable := in.available && !in.readyFrom.After(now)
		m.mu.Unlock()
		if !usable {
			continue
		}
		tried = append(tried, in.addr)
		out, err := f(in.c)
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !isConnErr(err) {
			return nil, err
		}
		last = err
		m.markDown(in, err)
	}
	return nil, &UnavailableError{Op: "read", Addrs: tried, Err: last}
}

// checker is the reference's availability updater: it PINGs unavailable
// instances; one that answers takes writes at once and reads only after
// zmq_target_expire, when every peer has re-registered into it.
func (m *multiStore) checker() {
	defer m.wg.Done()
	sleep := time.Duration(0)
	for {
		t := time.NewTimer(sleep)
		select {
		case <-m.stop:
			t.Stop()
			return
		case <-t.C:
		}
		avail := 0
		all := m.snapshot()
		for _, in := range all {
			m.mu.Lock()
			up := in.available
			m.mu.Unlock()
			if !up {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				err := in.c.Do(ctx, "PING").Err()
				cancel()
				if err == nil {
					m.mu.Lock()
					in.available = true
					in.readyFrom = time.Now().Add(m.cfg.TargetExpire)
					m.mu.Unlock()
					m.log.Info("matchmaker: Redis is available again", "addr", in.addr, "readable_from", in.readyFrom.Format(time.RFC3339))
					up = true
				}
			}
			if up {
				avail++
			}
		}
		sleep = time.Duration(float64(m.cfg.TargetUpdate) * float64(avail) / float64(len(all)))
		if sleep < m.cfg.MinCheckInterval {
			sleep = m.cfg.MinCheckInterval
		}
		if sleep < 100*time.Millisecond {
			sleep = 100 * time.Millisecond // never spin, whatever the config says
		}
	}
}

func (m *multiStore) close() error {
	m.stopOnce.Do(func() { close(m.stop) })
	m.wg.Wait()
	var first error
	for _, in := range m.instances {
		if err := in.c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
