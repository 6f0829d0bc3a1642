package matchmaker

import (
	"context"
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Sentinel is the sentinel backend: writes go to the master of the group,
// reads to a replica, falling back to the master when there is none.
type Sentinel struct {
	schema
}

// NewSentinel builds the sentinel backend for the given sentinels
// ("host:port"), master password and group. Like the reference, the
// password is for the master and replicas only (no AUTH to sentinels).
func NewSentinel(ctx context.Context, sentinels []string, password, group string, cfg Config) (*Sentinel, error) {
	if len(sentinels) == 0 {
		return nil, errors.New("matchmaker: no sentinel address")
	}
	opts := func(replica bool) *redis.FailoverOptions {
		return &redis.FailoverOptions{
			MasterName:    group,
			SentinelAddrs: sentinels,
			Password:      password,
			ReplicaOnly:   replica,
			DialTimeout:   cfg.SocketTimeout,
			ReadTimeout:   cfg.SocketTimeout,
			WriteTimeout:  cfg.SocketTimeout,
			MaxRetries:    2,
		}
	}
	st := &sentinelStore{
		addrs:   sentinels,
		master:  redis.NewFailoverClient(opts(false)),
		replica: redis.NewFailoverClient(opts(true)),
		log:     cfg.logger(),
	}
	return &Sentinel{schema{st: st, cfg: cfg}}, nil
}

type sentinelStore struct {
	addrs           []string
	master, replica *redis.Client
	log             interface{ Warn(string, ...any) }
}

func (s *sentinelStore) unavailable(op string, err error) error {
	s.log.Warn("matchmaker: sentinel "+op+" failed", "sentinels", s.addrs, "err", err)
	if strings.Contains(err.Error(), "all sentinels are unreachable") || strings.Contains(err.Error(), "no master") ||
		isConnErr(err) {
		return &UnavailableError{Op: op, Addrs: s.addrs, Err: err}
	}
	return err
}

func (s *sentinelStore) write(ctx context.Context, f func(c rdb) error) error {
	if err := f(s.master); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return s.unavailable("write", err)
	}
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
	// No replica reachable: read the master, as redis-py's slave_for does.
	out, err2 := f(s.master)
	if err2 == nil {
		return out, nil
	}
	return nil, s.unavailable("read", errors.Join(err, err2))
}

func (s *sentinelStore) close() error {
	return errors.Join(s.master.Close(), s.replica.Close())
}
