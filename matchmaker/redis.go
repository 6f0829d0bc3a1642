package matchmaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
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
// member's liveness key, one command at a time on the same instance (as
// redis-py does: no pipeline), keeping those whose TTL is >= -1.
func (s *schema) smembers(ctx context.Context, key string) ([]string, error) {
	return s.st.read(ctx, func(c rdb) ([]string, error) {
		members, err := c.Do(ctx, "SMEMBERS", key).StringSlice()
		if err != nil || len(members) == 0 {
			return nil, err
		}
		live := members[:0]
		for _, m := range members {
			ttl, err := c.Do(ctx, "TTL", m).Int64()
			if err != nil {
				return nil, err
			}
			if ttl >= -1 {
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

// hostsKey is the key get_hosts reads: target_to_key(t) when the target
// has a server (L/topic/server, or L/topic with fanout), else L/topic; both
// are compat.TargetKey. There is no fallback from one key to the other.
func hostsKey(t compat.Target, listenerType string) string {
	return compat.TargetKey(listenerType, t)
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
	ms := &multiStore{cfg: cfg, log: cfg.logger(), wake: make(chan struct{}, 1), subs: map[int]func(){}}
	routeRedisLogs(ms.log)
	ms.ctx, ms.cancel = context.WithCancel(context.Background())
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{
			Addr: a.Addr, Password: a.Password, DB: 0,
			Protocol:        2,    // RESP2, as redis-py 4.3 speaks
			DisableIdentity: true, // no CLIENT SETINFO
			MaxRetries:      -1,   // a failure marks the instance unavailable at once
			DialTimeout:     2 * time.Second,
		})
		c.AddHook(pyWire{})
		inst := &instance{addr: a.Addr, c: c, lastLive: time.Now()}
		if err := c.Do(ctx, "PING").Err(); err == nil {
			inst.available, inst.readyFrom = true, time.Now()
		} else {
			inst.lastErr = err
			ms.log.Warn("matchmaker: Redis is not available now", "addr", a.Addr, "err", err)
		}
		ms.instances = append(ms.instances, inst)
	}
	rand.Shuffle(len(ms.instances), func(i, j int) { ms.instances[i], ms.instances[j] = ms.instances[j], ms.instances[i] })
	ms.wg.Add(1)
	go ms.checker()
	return &Redis{schema{st: ms, cfg: cfg}}, nil
}

// Addrs lists the instances in the order writes and reads visit them (the
// shuffled order).
func (r *Redis) Addrs() []string {
	ms := r.st.(*multiStore)
	out := make([]string, len(ms.instances))
	for i, in := range ms.instances {
		out[i] = in.addr
	}
	return out
}

// pyWire makes go-redis put on the wire what redis-py 4.3 puts there:
// upper-case command names, and no HELLO on a new connection. The HELLO is
// answered locally with an error reply, which sends go-redis down its path
// for servers without HELLO: RESP2, plus "AUTH <password>" when there is a
// password, exactly redis-py's connection set-up.
type pyWire struct{}

type noHello struct{}

func (noHello) Error() string { return "matchmaker: HELLO not sent (redis-py does not send it)" }
func (noHello) RedisError()   {}

func (pyWire) DialHook(next redis.DialHook) redis.DialHook { return next }

func (pyWire) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "hello" {
			cmd.SetErr(noHello{})
			return cmd.Err()
		}
		upperName(cmd)
		return next(ctx, cmd)
	}
}

func (pyWire) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			upperName(cmd)
		}
		return next(ctx, cmds)
	}
}

func upperName(cmd redis.Cmder) {
	if args := cmd.Args(); len(args) > 0 {
		if name, ok := args[0].(string); ok {
			args[0] = strings.ToUpper(name)
		}
	}
}

type instance struct {
	addr      string
	c         *redis.Client
	available bool
	readyFrom time.Time // meaningful while available
	lastLive  time.Time // checker only: the last liveness PING
	lastErr   error     // why it is down: its last failed PING or command
}

type multiStore struct {
	cfg       Config
	log       *slog.Logger
	mu        sync.Mutex
	instances []*instance     // shuffled once; never reordered
	ctx       context.Context // ends on close: stops the checker, cuts its PING
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	wake      chan struct{} // an instance went down: check now
	subs      map[int]func()
	subSeq    int
}

// OnRecovered implements Recoverer: f is called when an instance is
// available again after an outage, and when the liveness check finds an
// instance reconnected after its connection broke (a restart: its records
// may be gone).
func (r *Redis) OnRecovered(f func()) (cancel func()) {
	m := r.st.(*multiStore)
	m.mu.Lock()
	m.subSeq++
	id := m.subSeq
	m.subs[id] = f
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		delete(m.subs, id)
		m.mu.Unlock()
	}
}

func (m *multiStore) recovered() {
	m.mu.Lock()
	fs := make([]func(), 0, len(m.subs))
	for _, f := range m.subs {
		fs = append(fs, f)
	}
	m.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

func (m *multiStore) livenessInterval() time.Duration {
	switch {
	case m.cfg.LivenessInterval < 0:
		return -1
	case m.cfg.LivenessInterval == 0:
		return 10 * time.Second
	}
	return max(m.cfg.LivenessInterval, 100*time.Millisecond)
}

// isConnErr tells a broken or refused connection (the instance goes
// unavailable, as redis-py's ConnectionError does) from an error reply of a
// working server. Authentication failures count as connection errors, as
// redis-py's AuthenticationError is a ConnectionError.
func isConnErr(err error) bool {
	if err == nil {
		return false
	}
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return true // network, timeout, closed pool: not a reply
	}
	msg := rerr.Error()
	for _, p := range []string{"NOAUTH", "WRONGPASS", "ERR invalid password", "ERR Client sent AUTH", "ERR AUTH", "ERR max number of clients"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func (m *multiStore) markDown(in *instance, err error) {
	m.mu.Lock()
	was := in.available
	in.available, in.lastErr = false, err
	m.mu.Unlock()
	if was {
		m.log.Warn("matchmaker: Redis is not available now", "addr", in.addr, "err", err)
		select { // the checker looks for its return from now on
		case m.wake <- struct{}{}:
		default:
		}
	}
}

func (m *multiStore) state(in *instance) (available bool, readyFrom time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return in.available, in.readyFrom
}

// write runs f on every available instance in order. A connection error
// marks that instance unavailable and the others are still written; when
// none succeeded the result is an *UnavailableError. An error reply (e.g.
// WRONGTYPE) is returned as is, as the reference lets redis-py's
// ResponseError through.
func (m *multiStore) write(ctx context.Context, f func(c rdb) error) error {
	var tried []string
	failed := map[*instance]error{}
	ok := 0
	for _, in := range m.instances {
		if avail, _ := m.state(in); !avail {
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
		failed[in] = err
		m.markDown(in, err)
	}
	if ok == 0 {
		return m.unavailable("write", tried, failed)
	}
	return nil
}

// read runs f on the first instance that is available and ready
// (ready-from reached); a connection error marks it unavailable and the
// next one is tried.
func (m *multiStore) read(ctx context.Context, f func(c rdb) ([]string, error)) ([]string, error) {
	var tried []string
	failed := map[*instance]error{}
	for _, in := range m.instances {
		if avail, ready := m.state(in); !avail || ready.After(time.Now()) {
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
		failed[in] = err
		m.markDown(in, err)
	}
	return nil, m.unavailable("read", tried, failed)
}

// unavailable is the *UnavailableError of an op no instance served: its
// Err says, for each instance by host:port, why: the error of this call
// ("addr: err"), the last error of an instance that was already down
// ("addr is down: err"), or the time a recovered one becomes readable.
// Errors of go-redis name no password.
func (m *multiStore) unavailable(op string, tried []string, failed map[*instance]error) error {
	var why instanceErrors
	now := time.Now()
	m.mu.Lock()
	for _, in := range m.instances {
		switch {
		case failed[in] != nil:
			why = append(why, fmt.Errorf("%s: %w", in.addr, failed[in]))
		case !in.available && in.lastErr != nil:
			why = append(why, fmt.Errorf("%s is down: %w", in.addr, in.lastErr))
		case !in.available:
			why = append(why, fmt.Errorf("%s is down", in.addr))
		case op == "read" && in.readyFrom.After(now):
			why = append(why, fmt.Errorf("%s is back but not read from before %s (zmq_target_expire after it came back)",
				in.addr, in.readyFrom.Format(time.RFC3339)))
		}
	}
	m.mu.Unlock()
	e := &UnavailableError{Op: op, Addrs: tried}
	switch len(why) {
	case 0:
	case 1:
		e.Err = why[0]
	default:
		e.Err = why
	}
	return e
}

// instanceErrors is why each of several instances could not serve.
type instanceErrors []error

func (es instanceErrors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

func (es instanceErrors) Unwrap() []error { return es }

// checker is the reference's availability updater: it PINGs unavailable
// instances (first run at once); one that answers takes writes at once and
// reads only after zmq_target_expire, when every peer has re-registered
// into it. It sleeps max(zmq_target_update x fraction available, 10 s)
// between runs. goslo additions: an instance seen down by a read or write
// wakes it at once (rather than after a sleep of up to zmq_target_update);
// every LivenessInterval it PINGs the available instances too, so that an
// outage or a restart between two uses is seen; and it tells the
// Recoverer subscribers (keepers) when an instance is back or reconnected.
func (m *multiStore) checker() {
	defer m.wg.Done()
	sleep := time.Duration(0)
	live := m.livenessInterval()
	for {
		t := time.NewTimer(sleep)
		select {
		case <-m.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-m.wake:
			t.Stop()
		}
		avail := 0
		back := false
		for _, in := range m.instances {
			up, _ := m.state(in)
			if up && live > 0 && time.Since(in.lastLive) >= live {
				stale := in.c.PoolStats().StaleConns
				pctx, pcancel := context.WithTimeout(m.ctx, 2*time.Second)
				err := in.c.Do(pctx, "PING").Err()
				pcancel()
				in.lastLive = time.Now()
				switch {
				case err != nil && m.ctx.Err() == nil && isConnErr(err):
					m.markDown(in, err)
					up = false
				case err == nil && in.c.PoolStats().StaleConns != stale:
					// A broken connection was replaced: Redis restarted, or
					// the network failed, since the last use.
					m.log.Info("matchmaker: Redis connection was lost and is back", "addr", in.addr)
					back = true
				}
			}
			if !up {
				pctx, pcancel := context.WithTimeout(m.ctx, 2*time.Second)
				err := in.c.Do(pctx, "PING").Err()
				pcancel()
				if err == nil {
					ready := time.Now().Add(m.cfg.TargetExpire)
					m.mu.Lock()
					in.available, in.readyFrom = true, ready
					m.mu.Unlock()
					m.log.Info("matchmaker: Redis is available again", "addr", in.addr, "readable_from", ready.Format(time.RFC3339Nano))
					up = true
					back = true
					in.lastLive = time.Now()
				} else if m.ctx.Err() == nil {
					m.mu.Lock()
					in.lastErr = err
					m.mu.Unlock()
				}
			}
			if up {
				avail++
			}
		}
		if back {
			m.recovered()
		}
		sleep = max(time.Duration(float64(m.cfg.TargetUpdate)*float64(avail)/float64(len(m.instances))), m.cfg.MinCheckInterval)
		if live > 0 {
			sleep = min(sleep, live)
		}
		sleep = max(sleep, 100*time.Millisecond) // never spin, whatever the config says
	}
}

func (m *multiStore) close() error {
	m.cancel()
	m.wg.Wait()
	var first error
	for _, in := range m.instances {
		if err := in.c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// go-redis logs through a process-wide logger of its own (connection pool
// and reconnection troubles, printed to stderr by default). goslo routes
// those lines through slog: to the logger of the matchmaker built last
// (with repeated lines limited), at WARN, with "component" "go-redis".
var (
	redisLogOnce sync.Once
	redisLog     atomic.Pointer[slog.Logger]
)

type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l := redisLog.Load()
	if l == nil {
		l = slog.Default()
	}
	l.WarnContext(ctx, "matchmaker: go-redis: "+strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "go-redis")
}

// routeRedisLogs makes go-redis log through l from now on.
func routeRedisLogs(l *slog.Logger) {
	redisLog.Store(l)
	redisLogOnce.Do(func() { redis.SetLogger(redisLogger{}) })
}
