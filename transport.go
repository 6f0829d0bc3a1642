package goslo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	rabbitdrv "github.com/goslo/goslo/driver/rabbit"
	zmqdrv "github.com/goslo/goslo/driver/zmq"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/shutdown"
	"github.com/goslo/goslo/matchmaker"
)

// Target is oslo_messaging.Target.
type Target = compat.Target

// Errors a caller tells apart with errors.Is; a *RemoteError carries the
// remote class, module, message, traceback, args and kwargs (errors.As).
var (
	ErrMessagingTimeout   = envelope.ErrMessagingTimeout
	ErrNoSuchMethod       = envelope.ErrNoSuchMethod
	ErrUnsupportedVersion = envelope.ErrUnsupportedVersion
	ErrRemote             = envelope.ErrRemote
	ErrClosed             = envelope.ErrClosed
	// ErrMessageUndeliverable is oslo's MessageUndeliverable: a CALL or
	// CAST sent with TransportOptions{AtLeastOnce: true} that no queue
	// took (RabbitMQ).
	ErrMessageUndeliverable = envelope.ErrMessageUndeliverable
	// ErrMessageDeliveryFailure is oslo's MessageDeliveryFailure: a send
	// given up after the retries its retry option allowed (RabbitMQ).
	ErrMessageDeliveryFailure = envelope.ErrMessageDeliveryFailure
	// ErrServerGone: a CALL whose server was killed or lost with it in
	// flight failed before its timeout (zmq); it matches
	// ErrMessagingTimeout too. See driver.ErrServerGone.
	ErrServerGone = driver.ErrServerGone
)

// RemoteError is an exception raised by the remote end of a call.
type RemoteError = envelope.RemoteError

// Transport is oslo's Transport: one driver (the bus of the URL's scheme)
// and its configuration, shared by clients, servers, notifiers and
// listeners.
type Transport struct {
	cfg    *compat.Config
	url    *compat.TransportURL
	drv    driver.Driver
	log    *slog.Logger
	closed atomic.Bool // set as Close or Shutdown begins: later operations fail at once
	// closer runs the Close of a driver that is no driver.Shutdowner.
	closer shutdown.Once
	mu     sync.Mutex
	// running are the started servers and listeners, stopped by Shutdown.
	running map[stopper]struct{}
}

// stopper is a started RPCServer or NotificationListener.
type stopper interface{ Stop(context.Context) error }

// Option adjusts a Transport.
type Option func(*transportOptions)

type transportOptions struct {
	cfg    *compat.Config
	log    *slog.Logger
	mutate []func(*compat.Config)
	obs    DriverObserver
	// minReplyDelay: WithMinReplyDelay
	minReplyDelay time.Duration
}

// WithMinReplyDelay makes this transport's zmq servers hold each CALL's
// reply until d after its request was read (goslo only; default 0: off;
// at most 1 s). It works around oslo.messaging 8.1.4's Python client,
// which tracks a CALL only after sending it and loses a reply that comes
// first: with 5 ms, none of several thousand calls of a Python client,
// monkey-patched by eventlet or on plain threads, was lost on a quiet host;
// an overloaded one needs more (docs/interop.md gives the rates). Its
// cost: every CALL takes at least d, and its worker is held meanwhile (a
// server answers at most executor_thread_pool_size/d calls per second).
// Handlers slower than d pay nothing. The rabbit driver ignores it.
func WithMinReplyDelay(d time.Duration) Option {
	return func(o *transportOptions) { o.minReplyDelay = d }
}

// DriverObserver counts a transport's driver events: messages sent,
// received and dropped (with a reason), and CALL durations by outcome. It
// is driver/zmq's Observer; the rabbit driver reports nothing to it yet.
// The Prometheus adapter lives in a module of its own,
// github.com/goslo/goslo/extra/gosloprom, so that the core pulls in no
// metrics library.
type DriverObserver = zmqdrv.Observer

// MatchmakerWrapper is an optional interface of a DriverObserver: a
// transport given one wraps its matchmaker with it (gosloprom counts the
// matchmaker's failures that way).
type MatchmakerWrapper interface {
	Matchmaker(matchmaker.Matchmaker) matchmaker.Matchmaker
}

// WithDriverObserver tells o of this transport's messages, drops and CALL
// latencies (and wraps the matchmaker when o is a MatchmakerWrapper). Off
// by default. For Prometheus metrics:
//
//	m, err := gosloprom.New(registry) // github.com/goslo/goslo/extra/gosloprom
//	tr, err := goslo.NewTransport(ctx, url, goslo.WithDriverObserver(m))
func WithDriverObserver(o DriverObserver) Option {
	return func(o2 *transportOptions) { o2.obs = o }
}

// WithConfig starts from a loaded oslo configuration (compat.ParseConfig)
// instead of the defaults.
func WithConfig(c *compat.Config) Option { return func(o *transportOptions) { o.cfg = c } }

// WithLogger sets the logger (slog.Default() otherwise).
func WithLogger(l *slog.Logger) Option { return func(o *transportOptions) { o.log = l } }

// WithOptions changes configuration values before the transport is built,
// e.g. WithOptions(func(c *compat.Config) { c.ZMQ.RPCZMQHost = "10.0.0.5" }).
func WithOptions(f func(*compat.Config)) Option {
	return func(o *transportOptions) { o.mutate = append(o.mutate, f) }
}

// NewTransport builds a transport from a URL such as
// "zmq+redis://127.0.0.1:6379?rpc_zmq_serialization=msgpack". An empty URL
// takes [DEFAULT] transport_url from the configuration, then oslo's default
// "zmq://" (the Redis matchmaker on 127.0.0.1:6379). Query parameters
// override [oslo_messaging_zmq] options, as in oslo.
func NewTransport(ctx context.Context, rawURL string, opts ...Option) (*Transport, error) {
	var o transportOptions
	for _, f := range opts {
		f(&o)
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	cfg := o.cfg
	if cfg == nil {
		host, _ := os.Hostname()
		cfg = compat.DefaultConfig(host)
	}
	for _, f := range o.mutate {
		f(cfg)
	}
	if rawURL == "" {
		rawURL = cfg.Default.TransportURL
	}
	if rawURL == "" {
		rawURL = "zmq://"
	}
	u, err := compat.ParseTransportURL(rawURL)
	if err != nil {
		return nil, err
	}
	switch u.Driver() {
	case "rabbit", "kombu":
		// The rabbit driver applies the query to [oslo_messaging_rabbit]
		// itself (rabbit.Open).
	default:
		if err := cfg.ApplyURLQuery(u); err != nil {
			return nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var drv driver.Driver
	switch u.Driver() {
	case "zmq":
		zo := zmqdrv.OpenOptions{Logger: o.log, MinReplyDelay: o.minReplyDelay}
		if o.obs != nil {
			zo.Observer = o.obs
			if w, ok := o.obs.(MatchmakerWrapper); ok {
				zo.WrapMatchmaker = w.Matchmaker
			}
		}
		drv, err = zmqdrv.Open(ctx, u, cfg, zo)
	case "rabbit", "kombu":
		var rt *rabbitdrv.Transport
		if rt, err = rabbitdrv.Open(ctx, u, cfg, rabbitdrv.OpenOptions{Logger: o.log}); err == nil {
			drv, cfg = rt, rt.Config()
		}
	default:
		return nil, fmt.Errorf("goslo: no driver for transport %q", u.Transport)
	}
	if err != nil {
		return nil, err
	}
	return &Transport{cfg: cfg, url: u, drv: drv, log: o.log}, nil
}

// Config is the configuration in force.
func (t *Transport) Config() *compat.Config { return t.cfg }

// Matchmaker is the transport's name service (nil for a bus that has
// none, such as RabbitMQ).
func (t *Transport) Matchmaker() matchmaker.Matchmaker {
	if z, ok := t.drv.(interface{ Matchmaker() matchmaker.Matchmaker }); ok {
		return z.Matchmaker()
	}
	return nil
}

// Codec is the payload codec (rpc_zmq_serialization on zmq; JSON on
// RabbitMQ).
func (t *Transport) Codec() envelope.Codec {
	if z, ok := t.drv.(interface{ Codec() envelope.Codec }); ok {
		return z.Codec()
	}
	c, _ := envelope.CodecByName("json")
	return c
}

// Driver is the bus driver under the transport.
func (t *Transport) Driver() driver.Driver { return t.drv }

// Close closes the driver and the matchmaker at once, within the driver's
// own bounds: the zmq driver closes its servers without unregistering
// them (waiting for their handlers), lets queued messages leave for up to
// a second and the sockets linger (ForeverLinger for oslo's -1); the
// rabbit driver stops its servers and reply queue within 10 s. Servers
// and listeners should be stopped first to unregister cleanly, or use
// Shutdown. Close is idempotent and safe for concurrent use, with Shutdown
// too: every call returns once the driver is closed, with the driver's
// error. Afterwards Call, Cast, Notify and the Start of a server or
// listener fail with an error matching ErrClosed, and so do calls in
// flight at Close.
func (t *Transport) Close() error {
	t.beginClose()
	if _, ok := t.drv.(driver.Shutdowner); ok {
		return t.drv.Close() // idempotent, and forced by a Shutdown's end
	}
	return t.closer.Do(context.Background(), t.closeDriver)
}

// Shutdown closes the transport gracefully, bounded by ctx, as
// net/http.Server's Shutdown is to its Close. New calls, casts,
// notifications and Starts fail at once with an error matching ErrClosed;
// calls already waiting for a reply fail so once the driver shuts down,
// after the servers have stopped (a reply that comes first is still
// returned). The servers and listeners started on
// the transport are stopped as their Stop(ctx) does (unregistered, no new
// request taken, in-flight handlers finish and reply); outgoing messages
// the driver still holds (zmq: casts and notifications waiting for a
// connection) get the chance to leave; then the driver and the matchmaker
// are closed.
//
// When ctx ends first, the handlers' context is cancelled and what is left
// is closed at once: a handler still running keeps only its own goroutine
// until it returns (its reply is dropped), queued messages are discarded,
// and Shutdown returns an error matching ctx.Err() (errors.Is) once the
// transport is fully closed. Afterwards the transport is as after Close.
// Shutdown is idempotent and safe for concurrent use, with Close too: a
// Shutdown whose ctx ends bounds a Close or Shutdown in progress. A driver
// that is no driver.Shutdowner is closed with its Close, given up (still
// running) when ctx ends.
func (t *Transport) Shutdown(ctx context.Context) error {
	running := t.beginClose()
	errs := make([]error, len(running)+1)
	var wg sync.WaitGroup
	for i, s := range running {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Stop(ctx); err != nil && ctx.Err() == nil {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	if sd, ok := t.drv.(driver.Shutdowner); ok {
		errs[len(running)] = sd.Shutdown(ctx)
	} else {
		errs[len(running)] = t.closer.Do(ctx, t.closeDriver)
	}
	return errors.Join(errs...)
}

// beginClose marks the transport closed and takes the servers and
// listeners still running.
func (t *Transport) beginClose() []stopper {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed.Store(true)
	out := make([]stopper, 0, len(t.running))
	for s := range t.running {
		out = append(out, s)
	}
	clear(t.running)
	return out
}

// closeDriver closes a driver that is no driver.Shutdowner, giving up
// when ctx ends (its Close goes on in the background).
func (t *Transport) closeDriver(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- t.drv.Close() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// track records a started server or listener for Shutdown; it fails
// with ErrClosed when the transport is closing (the caller stops it).
func (t *Transport) track(s stopper) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return ErrClosed
	}
	if t.running == nil {
		t.running = map[stopper]struct{}{}
	}
	t.running[s] = struct{}{}
	return nil
}

func (t *Transport) untrack(s stopper) {
	t.mu.Lock()
	delete(t.running, s)
	t.mu.Unlock()
}

// errIfClosed is ErrClosed once Close or Shutdown has begun.
func (t *Transport) errIfClosed() error {
	if t.closed.Load() {
		return ErrClosed
	}
	return nil
}

func (t *Transport) defaultTimeout() time.Duration {
	return time.Duration(t.cfg.Default.RPCResponseTimeout) * time.Second
}
