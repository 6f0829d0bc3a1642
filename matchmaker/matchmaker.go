package matchmaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/ratelog"
)

// ErrMatchmakerUnavailable is oslo's MatchmakerUnavailable: no backend
// instance could serve the request.
var ErrMatchmakerUnavailable = errors.New("matchmaker: Matchmaker is not currently available")

// Recoverer is implemented by a matchmaker that can tell when its backend
// may have lost records: an instance available again after an outage, or
// reconnected after its connection broke (a restart). A Keeper that
// follows it re-registers at once.
type Recoverer interface {
	// OnRecovered calls f (on a goroutine of the matchmaker; f must not
	// block) at each such event until cancel is called.
	OnRecovered(f func()) (cancel func())
}

// ErrNoHosts is returned by the *Retry lookups when check_timeout passes
// with nobody registered for the key.
var ErrNoHosts = errors.New("matchmaker: no hosts registered")

// ErrClosed is returned after Close.
var ErrClosed = fmt.Errorf("matchmaker: %w", envelope.ErrClosed)

// UnavailableError wraps ErrMatchmakerUnavailable with what failed.
type UnavailableError struct {
	Op    string // "write", "read", "ping"
	Addrs []string
	Err   error // the last underlying error, if any
}

func (e *UnavailableError) Error() string {
	s := fmt.Sprintf("matchmaker: %s failed: no Redis instance available (tried %v)", e.Op, e.Addrs)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is matches ErrMatchmakerUnavailable.
func (e *UnavailableError) Is(t error) bool { return t == ErrMatchmakerUnavailable }

// Unwrap returns the underlying error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// NoHostsError is ErrNoHosts for one key.
type NoHostsError struct {
	Key     string
	Waited  time.Duration
	Retries int
}

func (e *NoHostsError) Error() string {
	return fmt.Sprintf("matchmaker: no hosts for %s after %v (%d lookups)", e.Key, e.Waited.Round(time.Millisecond), e.Retries)
}

// Is matches ErrNoHosts.
func (e *NoHostsError) Is(t error) bool { return t == ErrNoHosts }

// Publisher is a proxy's PUBLISHERS record: its PUB address and its
// frontend ROUTER address.
type Publisher struct {
	Pub      string
	Frontend string
}

// Matchmaker is the name service of the zmq driver (oslo's MatchmakerBase).
// Every call takes a context; expire is the record TTL (zmq_target_expire),
// where zero or less means no expiry.
type Matchmaker interface {
	// RegisterPublisher adds a proxy's PUBLISHERS record.
	RegisterPublisher(ctx context.Context, p Publisher, expire time.Duration) error
	UnregisterPublisher(ctx context.Context, p Publisher) error
	Publishers(ctx context.Context) ([]Publisher, error)

	// RegisterRouter adds a proxy's ROUTERS record (its backend address).
	RegisterRouter(ctx context.Context, addr string, expire time.Duration) error
	UnregisterRouter(ctx context.Context, addr string) error
	Routers(ctx context.Context) ([]string, error)

	// Register adds host under L/topic/server (when the target has a
	// server) and L/topic, L being compat.Router or compat.Dealer.
	Register(ctx context.Context, t compat.Target, host, listenerType string, expire time.Duration) error
	Unregister(ctx context.Context, t compat.Target, host, listenerType string) error

	// Hosts reads L/topic/server when the target has a server, else L/topic.
	Hosts(ctx context.Context, t compat.Target, listenerType string) ([]string, error)
	// HostsRetry repeats Hosts every wait_timeout while it is empty, for at
	// most check_timeout or until ctx ends; then it returns a *NoHostsError.
	HostsRetry(ctx context.Context, t compat.Target, listenerType string) ([]string, error)
	// HostsFanout reads L/target_to_key(t).
	HostsFanout(ctx context.Context, t compat.Target, listenerType string) ([]string, error)
	HostsFanoutRetry(ctx context.Context, t compat.Target, listenerType string) ([]string, error)
	// HostsByKey reads a full key, as the client's routing-table refresh does.
	HostsByKey(ctx context.Context, key string) ([]string, error)

	// Close releases connections and stops background work.
	Close() error
}

// Config holds the matchmaker options ([matchmaker_redis] and the two
// timing options of [oslo_messaging_zmq]).
type Config struct {
	// WaitTimeout is the pause between empty lookups of the *Retry calls.
	WaitTimeout time.Duration
	// CheckTimeout bounds the *Retry calls.
	CheckTimeout time.Duration
	// SocketTimeout applies to Sentinel-backend sockets.
	SocketTimeout time.Duration
	// TargetExpire is zmq_target_expire: also the delay before a Redis
	// instance that came back is read from.
	TargetExpire time.Duration
	// TargetUpdate is zmq_target_update: the availability checker's period.
	TargetUpdate time.Duration
	// MinCheckInterval is the floor of the availability checker's sleep
	// (the reference's 10 s).
	MinCheckInterval time.Duration
	// LivenessInterval is how often the Redis backend PINGs the instances
	// it believes available (0: 10 s; negative: never), a goslo addition:
	// a Redis that restarted (empty) between two uses is seen within that
	// time and the keepers re-register at once (see Recoverer), instead of
	// at their next zmq_target_update.
	LivenessInterval time.Duration
	// Redis is the deprecated [matchmaker_redis] host, port and password,
	// used when the URL names no host.
	RedisHost     string
	RedisPort     int
	RedisPassword string
	// SentinelHosts and SentinelGroup are used when the URL names none.
	SentinelHosts []string
	SentinelGroup string
	// Logger receives fault lines; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultConfig is the reference's defaults.
func DefaultConfig() Config {
	return Config{
		WaitTimeout:      2 * time.Second,
		CheckTimeout:     20 * time.Second,
		SocketTimeout:    10 * time.Second,
		TargetExpire:     300 * time.Second,
		TargetUpdate:     180 * time.Second,
		MinCheckInterval: 10 * time.Second,
		RedisHost:        "127.0.0.1",
		RedisPort:        6379,
		SentinelGroup:    "oslo-messaging-zeromq",
	}
}

// ConfigFrom takes the matchmaker options from a compat.Config.
func ConfigFrom(c *compat.Config) Config {
	m := DefaultConfig()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	m.WaitTimeout = ms(c.MatchmakerRedis.WaitTimeout)
	m.CheckTimeout = ms(c.MatchmakerRedis.CheckTimeout)
	m.SocketTimeout = ms(c.MatchmakerRedis.SocketTimeout)
	m.TargetExpire = time.Duration(c.ZMQ.ZMQTargetExpire) * time.Second
	m.TargetUpdate = time.Duration(c.ZMQ.ZMQTargetUpdate) * time.Second
	m.RedisHost = c.MatchmakerRedis.Host
	m.RedisPort = c.MatchmakerRedis.Port
	m.RedisPassword = c.MatchmakerRedis.Password
	m.SentinelHosts = c.MatchmakerRedis.SentinelHosts
	m.SentinelGroup = c.MatchmakerRedis.SentinelGroupName
	return m
}

// Validate reports options that cannot work: negative durations, and a
// re-registration period that is not below the record expiry (records would
// vanish between updates).
func (c *Config) Validate() error {
	for name, d := range map[string]time.Duration{
		"wait_timeout": c.WaitTimeout, "check_timeout": c.CheckTimeout, "socket_timeout": c.SocketTimeout,
		"zmq_target_update": c.TargetUpdate, "min_check_interval": c.MinCheckInterval,
	} {
		if d < 0 {
			return fmt.Errorf("matchmaker: %s is negative (%v)", name, d)
		}
	}
	if c.TargetExpire > 0 && c.TargetUpdate >= c.TargetExpire {
		return fmt.Errorf("matchmaker: zmq_target_update (%v) must be below zmq_target_expire (%v)", c.TargetUpdate, c.TargetExpire)
	}
	return nil
}

// logger is the configured logger (slog.Default() when none), its
// repeated WARN and ERROR lines limited (package ratelog).
func (c *Config) logger() *slog.Logger {
	return ratelog.Logger(c.Logger)
}

// New builds the matchmaker a transport URL asks for: zmq+redis://,
// zmq+sentinel://, zmq+dummy://, or zmq:// with backend (the
// rpc_zmq_matchmaker option: "redis", "sentinel" or "dummy").
func New(ctx context.Context, u *compat.TransportURL, backend string, cfg Config) (Matchmaker, error) {
	if u.Driver() != "zmq" {
		return nil, fmt.Errorf("matchmaker: transport %q is not zmq", u.Transport)
	}
	if b := u.Backend(); b != "" {
		backend = b
	}
	switch backend {
	case "dummy":
		return NewDummy(cfg), nil
	case "redis", "":
		return NewRedis(ctx, redisAddrs(u, cfg), cfg)
	case "sentinel":
		addrs, password, group := sentinelParams(u, cfg)
		return NewSentinel(ctx, addrs, password, group, cfg)
	}
	return nil, fmt.Errorf("matchmaker: unknown backend %q (choices: redis, sentinel, dummy)", backend)
}

// dialAddr is the host:port go-redis dials, with brackets around an IPv6
// address (redis-py takes host and port apart; go-redis one string, which
// "::1:6379" is not). It is no record: records keep compat.HostPort.
func dialAddr(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// RedisAddr is one Redis instance with its password.
type RedisAddr struct {
	Addr     string // host:port
	Password string
}

func redisAddrs(u *compat.TransportURL, cfg Config) []RedisAddr {
	var out []RedisAddr
	for _, h := range u.Hosts {
		// The reference passes port None to redis-py 4.3, whose connection
		// fails with TypeError; goslo takes Redis' default port instead.
		port := 6379
		if h.HasPort {
			port = h.Port
		}
		out = append(out, RedisAddr{Addr: dialAddr(h.Hostname, port), Password: h.Password})
	}
	if len(out) == 0 {
		out = append(out, RedisAddr{Addr: dialAddr(cfg.RedisHost, cfg.RedisPort), Password: cfg.RedisPassword})
	}
	return out
}

func sentinelParams(u *compat.TransportURL, cfg Config) (addrs []string, password, group string) {
	group = cfg.SentinelGroup
	for _, h := range u.Hosts {
		port := 26379 // Sentinel's default (the reference passes None, which fails)
		if h.HasPort {
			port = h.Port
		}
		addrs = append(addrs, dialAddr(h.Hostname, port))
		if h.Password != "" {
			password = h.Password // the last host with one wins, as in the reference
		}
	}
	if len(u.Hosts) > 0 {
		if u.VirtualHost != "" {
			group = u.VirtualHost
		}
		return addrs, password, group
	}
	return cfg.SentinelHosts, cfg.RedisPassword, group
}

func expireSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64((d + time.Second - 1) / time.Second)
	return s
}

// minWait floors wait_timeout in the retry loops, so that a zero
// wait_timeout cannot make them spin.
const minWait = 10 * time.Millisecond

// retry is the reference's _retry_method (tenacity: retry while the result
// is empty, wait_fixed(wait), stop_after_delay(check)): call f; while it
// returns an empty list and less than check has passed since the first
// call, wait and call again. Errors are not retried. The context ends it
// early.
func retry(ctx context.Context, key string, wait, check time.Duration, f func(context.Context) ([]string, error)) ([]string, error) {
	wait = max(wait, minWait)
	start := time.Now()
	n := 0
	for {
		hosts, err := f(ctx)
		n++
		if err != nil || len(hosts) > 0 {
			return hosts, err
		}
		if time.Since(start) >= check {
			return nil, &NoHostsError{Key: key, Waited: time.Since(start), Retries: n}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
