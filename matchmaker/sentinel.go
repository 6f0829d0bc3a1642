package matchmaker

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Sentinel is the sentinel backend: writes go to the master of the group,
// reads (SMEMBERS and the TTL checks) to a replica, falling back to the
// master when no replica answers, as redis-py's slave_for does.
type Sentinel struct {
	schema
}

// NewSentinel builds the sentinel backend for the given sentinels
// ("host:port"), master password and group. Like the reference, the
// password is for the master and replicas only (no AUTH to sentinels), and
// cfg.SocketTimeout bounds their sockets. Nothing is dialled here: a
// missing master shows in the first call.
func NewSentinel(ctx context.Context, sentinels []string, password, group string, cfg Config) (*Sentinel, error) {
	if len(sentinels) == 0 {
		return nil, errors.New("matchmaker: no sentinel address")
	}
	if group == "" {
		return nil, errors.New("matchmaker: no sentinel group")
	}
	opts := func(replica bool) *redis.FailoverOptions {
		return &redis.FailoverOptions{
			MasterName:      group,
			SentinelAddrs:   sentinels,
			Password:        password,
			ReplicaOnly:     replica,
			Protocol:        2,
			DisableIdentity: true,
			DialTimeout:     cfg.SocketTimeout,
			ReadTimeout:     cfg.SocketTimeout,
			WriteTimeout:    cfg.SocketTimeout,
			MaxRetries:      2, // SADD, EXPIRE, SREM and the reads are idempotent
		}
	}
	st := &sentinelStore{
		addrs:   sentinels,
		group:   group,
		master:  redis.NewFailoverClient(opts(false)),
		replica: redis.NewFailoverClient(opts(true)),
		log:     cfg.logger(),
	}
	st.master.AddHook(pyWire{})
	st.replica.AddHook(pyWire{})
	routeRedisLogs(st.log)
	return &Sentinel{schema{st: st, cfg: cfg}}, nil
}

type sentinelStore struct {
	addrs           []string
	group           string
	master, replica *redis.Client
	log             *slog.Logger
	down            atomic.Bool // an outage was logged and has not ended
}

// fail turns err into what the caller gets: an *UnavailableError when the
// master cannot be reached (the reference maps MasterNotFoundError to
// MatchmakerUnavailable; goslo maps every connection failure too), else the
// error reply as is. An outage is logged once, with the sentinels' addresses.
func (s *sentinelStore) fail(op string, err error) error {
	if !isConnErr(err) {
		return err
	}
	if !s.down.Swap(true) {
		s.log.Warn("matchmaker: Redis Sentinel master not available now", "sentinels", s.addrs, "group", s.group, "op", op, "err", err)
	}
	return &UnavailableError{Op: op, Addrs: s.addrs, Err: err}
}

func (s *sentinelStore) ok() {
	if s.down.Swap(false) {
		s.log.Info("matchmaker: Redis Sentinel master available again", "sentinels", s.addrs, "group", s.group)
	}
}

func (s *sentinelStore) write(ctx context.Context, f func(c rdb) error) error {
	if err := f(s.master); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return s.fail("write", err)
	}
	s.ok()
	return nil
}

func (s *sentinelStore) read(ctx context.Context, f func(c rdb) ([]string, error)) ([]string, error) {
	out, err := f(s.replica)
	if err == nil {
		return out, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if !isConnErr(err) {
		return nil, err
	}
	// No replica reachable: read the master, as redis-py's slave_for does.
	out, err2 := f(s.master)
	if err2 == nil {
		s.ok()
		return out, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, s.fail("read", errors.Join(err, err2))
}

func (s *sentinelStore) close() error {
	return errors.Join(s.master.Close(), s.replica.Close())
}
