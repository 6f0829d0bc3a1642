package goslo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	zmqdrv "github.com/goslo/goslo/driver/zmq"
	"github.com/goslo/goslo/envelope"
)

// Map is an ordered dict: the request context, args and most payloads.
type Map = envelope.Map

// NewMap builds a Map from alternating keys and values.
func NewMap(kv ...any) *Map { return envelope.NewMap(kv...) }

// Serializer is oslo's serializer hook: it turns the request context and
// every argument or result into what travels, and back. The default passes
// values through unchanged (oslo's NoOpSerializer).
type Serializer interface {
	SerializeContext(rctx *Map) (any, error)
	DeserializeContext(v any) (*Map, error)
	SerializeEntity(rctx *Map, v any) (any, error)
	DeserializeEntity(rctx *Map, v any) (any, error)
}

// NoOpSerializer passes everything through.
type NoOpSerializer struct{}

func (NoOpSerializer) SerializeContext(rctx *Map) (any, error) {
	if rctx == nil {
		return NewMap(), nil
	}
	return rctx, nil
}

func (NoOpSerializer) DeserializeContext(v any) (*Map, error) {
	switch m := v.(type) {
	case *Map:
		return m, nil
	case nil:
		return NewMap(), nil
	}
	return nil, fmt.Errorf("goslo: request context is %T, not a dict", v)
}

func (NoOpSerializer) SerializeEntity(_ *Map, v any) (any, error)   { return v, nil }
func (NoOpSerializer) DeserializeEntity(_ *Map, v any) (any, error) { return v, nil }

// RPCClient is oslo's RPCClient: Call and Cast to a target, Prepare for
// per-call overrides.
type RPCClient struct {
	t          *Transport
	target     Target
	timeout    time.Duration
	serializer Serializer
	versionCap string
	retry      *int
	// callMonitor is call_monitor_timeout (0: none).
	callMonitor time.Duration
	transport   TransportOptions
}

// TransportOptions is oslo's TransportOptions, given to a client with
// PrepareOptions.TransportOptions.
type TransportOptions struct {
	// AtLeastOnce is oslo's at_least_once: on RabbitMQ a CALL or CAST
	// (not a fanout) that no queue takes (no server listens on the topic)
	// fails at once with an error matching ErrMessageUndeliverable, instead
	// of being lost (a CALL would otherwise time out). The zmq driver
	// ignores it.
	AtLeastOnce bool
}

// NewRPCClient returns a client for target. The call timeout defaults to
// [DEFAULT] rpc_response_timeout; a context deadline always wins.
func NewRPCClient(t *Transport, target Target) *RPCClient {
	return &RPCClient{t: t, target: target, timeout: t.defaultTimeout(), serializer: NoOpSerializer{}}
}

// PrepareOptions are the overrides of RPCClient.Prepare (oslo's
// prepare()); zero fields keep the client's value, and Clear resets
// target fields first.
type PrepareOptions struct {
	Server string
	// Fanout makes a Cast go to every server of the topic.
	Fanout     bool
	Version    string
	Namespace  string
	Timeout    time.Duration
	VersionCap string
	Serializer Serializer
	// Retry is oslo's retry, which each driver reads in its own way. zmq
	// (rpc_use_acks): how often an unacked CALL or CAST is resent; nil or 0
	// means rpc_retry_attempts, negative for ever. RabbitMQ: how often a
	// publish is retried while the broker cannot be reached; nil or
	// negative for ever (bounded by the context), 0 never, N at most N
	// times, then an error matching ErrMessageDeliveryFailure.
	Retry *int
	// TransportOptions replaces the client's oslo TransportOptions (nil
	// keeps them).
	TransportOptions *TransportOptions
	// CallMonitorTimeout is oslo's call_monitor_timeout: a CALL fails when
	// the server sends no heartbeat for that long (RabbitMQ; whole
	// seconds). Zero keeps the client's value (none by default).
	CallMonitorTimeout time.Duration
	// Clear resets these target fields of the client before the fields
	// above apply, as oslo's prepare(server=None) does: e.g.
	// Clear: ClearServer|ClearVersion.
	Clear TargetFields
}

// TargetFields names fields of a client's target for PrepareOptions.Clear.
type TargetFields uint8

// The target fields Prepare can clear.
const (
	ClearServer TargetFields = 1 << iota
	ClearVersion
	ClearNamespace
	ClearFanout
)

// Prepare returns a copy of the client with overrides; c is unchanged.
func (c *RPCClient) Prepare(o PrepareOptions) *RPCClient {
	n := *c
	if o.Clear&ClearServer != 0 {
		n.target.Server = ""
	}
	if o.Clear&ClearVersion != 0 {
		n.target.Version = ""
	}
	if o.Clear&ClearNamespace != 0 {
		n.target.Namespace = ""
	}
	if o.Clear&ClearFanout != 0 {
		n.target.Fanout = false
	}
	if o.Server != "" {
		n.target.Server = o.Server
	}
	if o.Fanout {
		n.target.Fanout = true
	}
	if o.Version != "" {
		n.target.Version = o.Version
	}
	if o.Namespace != "" {
		n.target.Namespace = o.Namespace
	}
	if o.Timeout > 0 {
		n.timeout = o.Timeout
	}
	if o.VersionCap != "" {
		n.versionCap = o.VersionCap
	}
	if o.Serializer != nil {
		n.serializer = o.Serializer
	}
	if o.Retry != nil {
		r := *o.Retry
		n.retry = &r
	}
	if o.CallMonitorTimeout > 0 {
		n.callMonitor = o.CallMonitorTimeout
	}
	if o.TransportOptions != nil {
		n.transport = *o.TransportOptions
	}
	return &n
}

// Target is the client's target, with its Prepare overrides.
func (c *RPCClient) Target() Target { return c.target }

// CanSendVersion reports whether the client's version cap allows sending
// version ("" for the client's own target version), as oslo's
// can_send_version: true when there is no cap. This is the rpcapi idiom
// for rolling upgrades:
//
//	version := "5.1"
//	if !client.CanSendVersion(version) { version = "5.0"; /* drop the new argument */ }
//
// An unparsable version is never sendable.
func (c *RPCClient) CanSendVersion(version string) bool {
	if version == "" {
		version = c.target.Version
	}
	ok, err := compat.CapAllows(c.versionCap, version)
	return err == nil && ok
}

func (c *RPCClient) withRetry(ctx context.Context) context.Context {
	if c.retry != nil {
		return zmqdrv.WithRetry(ctx, *c.retry)
	}
	return ctx
}

func (c *RPCClient) message(rctx *Map, method string, a any) (driver.Message, error) {
	args, err := argsMap(a)
	if err != nil {
		return driver.Message{}, err
	}
	if ok, err := compat.CapAllows(c.versionCap, c.target.Version); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("goslo: requested version %s is incompatible with the version cap %s", c.target.Version, c.versionCap)
		}
		return driver.Message{}, err
	}
	sctx, err := c.serializer.SerializeContext(rctx)
	if err != nil {
		return driver.Message{}, err
	}
	sargs := args
	if _, noop := c.serializer.(NoOpSerializer); !noop || args == nil {
		sargs = envelope.MapWithCap(args.Len())
		for _, kv := range args.Items() {
			v, err := c.serializer.SerializeEntity(rctx, kv.Value)
			if err != nil {
				return driver.Message{}, fmt.Errorf("goslo: argument %s: %w", kv.Key, err)
			}
			sargs.Append(kv.Key, v)
		}
	}
	req := envelope.Request{Method: method, Args: sargs, Namespace: c.target.Namespace, Version: c.target.Version}
	return driver.Message{Context: sctx, Body: req.Map(), AtLeastOnce: c.transport.AtLeastOnce, Retry: c.retry}, nil
}

// Call invokes method on one server of the target and returns its result
// as decoded (a *Map for a dict, []any for a list, ...: see CallAs for a
// typed result). args are the keyword arguments: a *Map, a struct (each
// field an argument, named as its json tag says), a map with string keys,
// or nil for none. A remote failure comes back as a *RemoteError
// (errors.Is works with ErrNoSuchMethod, ErrUnsupportedVersion, ...); no
// reply in time as an error matching ErrMessagingTimeout.
func (c *RPCClient) Call(ctx context.Context, rctx *Map, method string, args any) (any, error) {
	if err := c.t.errIfClosed(); err != nil {
		return nil, err
	}
	if err := c.target.ValidateSend(true); err != nil {
		return nil, err
	}
	m, err := c.message(rctx, method, args)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
		m.Timeout = c.timeout
	}
	m.CallMonitorTimeout = c.callMonitor
	body, err := c.t.drv.Call(c.withRetry(ctx), c.target, m)
	if err != nil {
		return nil, err
	}
	return c.serializer.DeserializeEntity(rctx, body)
}

// Cast invokes method without waiting for a result (on every server of the
// topic when the target fans out). args are as for Call.
func (c *RPCClient) Cast(ctx context.Context, rctx *Map, method string, args any) error {
	if err := c.t.errIfClosed(); err != nil {
		return err
	}
	if err := c.target.ValidateSend(false); err != nil {
		return err
	}
	m, err := c.message(rctx, method, args)
	if err != nil {
		return err
	}
	return c.t.drv.Cast(c.withRetry(ctx), c.target, m)
}

// Handler serves one RPC method: rctx is the request context, args the
// keyword arguments by name. ctx is cancelled when the server's Stop runs
// out of time (or once Stop has returned). A panic is recovered: the
// caller gets a RuntimeError and the server logs it. Return a *RemoteError (e.g. envelope.ValueError)
// to raise a chosen Python class; other errors reach Python callers as
// RuntimeError.
type Handler func(ctx context.Context, rctx *Map, args *Map) (any, error)

// Endpoint is a set of methods with an optional namespace and version
// (oslo's endpoint target; the version defaults to "1.0").
type Endpoint struct {
	Namespace string
	Version   string
	methods   map[string]Handler
}

// NewEndpoint returns an empty endpoint.
func NewEndpoint(namespace, version string) *Endpoint {
	return &Endpoint{Namespace: namespace, Version: version, methods: map[string]Handler{}}
}

// Handle registers a method; it returns the endpoint for chaining.
func (e *Endpoint) Handle(name string, h Handler) *Endpoint {
	e.methods[name] = h
	return e
}

var handlerType = reflect.TypeOf(Handler(nil))

// EndpointOf makes an endpoint of a Go value: every exported method with
// the Handler signature, func(context.Context, *Map, *Map) (any, error),
// becomes an oslo method named in snake_case ("WhoAmI" -> "who_am_i",
// "Echo" -> "echo"). Arguments arrive by name in the args Map, exactly as
// the caller's keyword arguments. Methods starting with "_" are never
// exposed, as oslo's default access policy refuses them.
func EndpointOf(v any, namespace, version string) (*Endpoint, error) {
	e := NewEndpoint(namespace, version)
	rv := reflect.ValueOf(v)
	for i := 0; i < rv.NumMethod(); i++ {
		m := rv.Type().Method(i)
		fn := rv.Method(i)
		if !fn.Type().ConvertibleTo(handlerType) {
			continue
		}
		e.Handle(SnakeCase(m.Name), fn.Convert(handlerType).Interface().(Handler))
	}
	if len(e.methods) == 0 {
		return nil, fmt.Errorf("goslo: %T has no method of the Handler signature", v)
	}
	return e, nil
}

// SnakeCase is the oslo name of a Go method name.
func SnakeCase(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i, c := range r {
		if unicode.IsUpper(c) {
			if i > 0 && (unicode.IsLower(r[i-1]) || (i+1 < len(r) && unicode.IsLower(r[i+1]))) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(c))
		} else {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// versionIsCompatible is the endpoint version check (a variable for tests).
var versionIsCompatible = compat.VersionIsCompatible

// dispatch is oslo's RPCDispatcher: endpoints in order, the first one
// whose namespace matches and whose version is compatible and that has the
// method wins; NoSuchMethod when some endpoint was compatible,
// UnsupportedVersion otherwise.
func dispatch(endpoints []*Endpoint, req envelope.Request) (Handler, error) {
	compatible := false
	for _, e := range endpoints {
		if e.Namespace != req.Namespace {
			continue
		}
		v := e.Version
		if v == "" {
			v = "1.0"
		}
		ok, err := true, error(nil)
		if rv := req.DispatchVersion(); v != rv || !plainVersion(v) { // equal plain versions are compatible
			ok, err = versionIsCompatible(v, rv)
		}
		if err != nil {
			var ve *compat.VersionError
			if errors.As(err, &ve) {
				return nil, envelope.NewRemoteError(envelope.ModuleBuiltins, ve.PythonClass(), ve.Reason)
			}
			return nil, envelope.NewRemoteError(envelope.ModuleBuiltins, "RuntimeError", err.Error())
		}
		if !ok {
			continue
		}
		compatible = true
		if strings.HasPrefix(req.Method, "_") {
			continue
		}
		if h := e.methods[req.Method]; h != nil {
			return h, nil
		}
	}
	if compatible {
		return nil, envelope.NoSuchMethodError(req.Method)
	}
	return nil, envelope.UnsupportedVersionError(req.DispatchVersion(), req.Method)
}

// plainVersion reports "<digits>.<digits>[.<digits>]", which Python's int()
// reads part by part as the digits say (a version equal to itself is then
// compatible).
func plainVersion(v string) bool {
	parts, digits := 1, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && digits > 0:
			parts, digits = parts+1, 0
		default:
			return false
		}
	}
	return digits > 0 && (parts == 2 || parts == 3)
}

// RPCServer is oslo's RPC server on a target (topic and server required).
//
// As oslo's MessageHandlingServer, it may be started again after Stop:
// each Start after a Stop listens anew (a new socket or queue), with a
// fresh context for its handlers. Start on a running server and Stop on a
// stopped one do nothing.
type RPCServer struct {
	t      *Transport
	target Target
	mu     sync.Mutex
	cfg    serverConfig // what the next Start runs with
	run    *serverRun   // the running server; nil when stopped
	// stopped is closed by the Stop of the current run, or of the next
	// one when none runs; last is the last stopped run's (Wait after Stop).
	stopped, last chan struct{}
}

// serverRun is one Start-to-Stop run of a server or listener.
type serverRun struct {
	srv driver.Server
	// base is the handlers' context, cancelled when Stop's context ends
	// or Stop returns.
	base    context.Context
	cancel  context.CancelFunc
	stopped chan struct{}
	// cfg is the server's configuration at Start; slots bounds the
	// handlers running at once (nil: the driver's pool does).
	cfg   serverConfig
	slots chan struct{}
}

// stop stops r.srv bounded by ctx, cancelling the handlers' context when
// ctx ends first; it returns the driver's error (ctx.Err() when handlers
// still ran when ctx ended).
func (r *serverRun) stop(ctx context.Context) error {
	after := context.AfterFunc(ctx, r.cancel)
	defer after()
	err := r.srv.Stop(ctx)
	r.cancel()
	if r.stopped != nil {
		close(r.stopped)
	}
	return err
}

// stopAtOnce stops a run that Shutdown did not see, within a second.
func (r *serverRun) stopAtOnce() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return r.stop(ctx)
}

// NewRPCServer returns a server for target; Start makes it listen. opts
// are the endpoints it serves (at least one *Endpoint), in dispatch order,
// and its options (WithMiddleware, WithConcurrency, WithSerializer,
// WithObserver):
//
//	srv, err := goslo.NewRPCServer(tr, goslo.Target{Topic: "scheduler", Server: host}, ep,
//		goslo.WithMiddleware(logRequests), goslo.WithConcurrency(8))
func NewRPCServer(t *Transport, target Target, opts ...ServerOption) (*RPCServer, error) {
	if err := target.ValidateListen(); err != nil {
		return nil, err
	}
	cfg := serverConfig{serializer: NoOpSerializer{}}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("goslo: nil server option")
		}
		if err := o.applyServer(&cfg); err != nil {
			return nil, err
		}
	}
	if len(cfg.endpoints) == 0 {
		return nil, errors.New("goslo: a server needs at least one endpoint")
	}
	if pool := t.cfg.Default.ExecutorThreadPoolSize; cfg.concurrency >= pool && pool > 0 {
		cfg.concurrency = 0 // the driver's pool bounds it already
	}
	return &RPCServer{t: t, target: target, cfg: cfg, stopped: make(chan struct{})}, nil
}

// SetObserver registers f, called for every well-formed request before it
// is dispatched; it takes effect at the next Start.
//
// Deprecated: use WithObserver at NewRPCServer.
func (s *RPCServer) SetObserver(f func(RequestInfo)) {
	s.mu.Lock()
	s.cfg.observer = f
	s.mu.Unlock()
}

// SetSerializer replaces the serializer; it takes effect at the next
// Start.
//
// Deprecated: use WithSerializer at NewRPCServer.
func (s *RPCServer) SetSerializer(z Serializer) {
	s.mu.Lock()
	if z == nil {
		z = NoOpSerializer{}
	}
	s.cfg.serializer = z
	s.mu.Unlock()
}

// Start binds, registers and serves. Handlers run on a bounded pool of
// workers (executor_thread_pool_size, or WithConcurrency). It does nothing
// on a running server; after Stop it starts the server again. After the
// transport's Close it fails with an error matching ErrClosed.
func (s *RPCServer) Start(ctx context.Context) error {
	if err := s.t.errIfClosed(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run != nil {
		return nil
	}
	base, cancel := context.WithCancel(context.Background())
	run := &serverRun{base: base, cancel: cancel, cfg: s.cfg}
	run.cfg.endpoints = slices.Clone(s.cfg.endpoints)
	run.cfg.middleware = slices.Clone(s.cfg.middleware)
	if n := s.cfg.concurrency; n > 0 {
		run.slots = make(chan struct{}, n)
	}
	srv, err := s.t.drv.Listen(ctx, s.target, func(_ context.Context, r *driver.Request) error {
		return s.handle(run, r)
	})
	if err != nil {
		cancel()
		return err
	}
	run.srv, run.stopped = srv, s.stopped
	if err := s.t.track(s); err != nil {
		// Shutdown began meanwhile: it does not see this run.
		run.stopped = nil
		return errors.Join(err, run.stopAtOnce())
	}
	s.run = run
	return nil
}

func (s *RPCServer) handle(run *serverRun, r *driver.Request) error {
	if run.slots != nil {
		select {
		case run.slots <- struct{}{}:
			defer func() { <-run.slots }()
		case <-run.base.Done():
			// Stopped while waiting: answer as if run and cancelled.
			if r.Kind == driver.KindCall {
				_ = r.Reply(nil, envelope.NewRemoteError(envelope.ModuleBuiltins, "RuntimeError", "server stopped before the request ran"))
			}
			return nil
		}
	}
	body, err := s.invoke(run, r)
	if r.Kind != driver.KindCall {
		if err != nil {
			s.t.log.Warn("goslo: cast failed", "message_id", r.MsgID, "target", s.target.String(), "err", err)
		}
		return nil
	}
	if err != nil && errors.Is(err, envelope.ErrExpectedException) {
		s.t.log.Debug("goslo: expected exception", "message_id", r.MsgID, "err", err)
	}
	rerr := r.Reply(body, err)
	if errors.Is(rerr, envelope.ErrEncode) {
		// The codec refused the result (or the failure): log it, and tell
		// the caller with a failure that always encodes.
		what := "result"
		if err != nil {
			what = "failure"
		}
		s.t.log.Warn("goslo: "+what+" not serializable; replying RuntimeError", "message_id", r.MsgID, "target", s.target.String(), "err", rerr)
		rerr = r.Reply(nil, envelope.NewRemoteError(envelope.ModuleBuiltins, "RuntimeError", what+" not serializable: "+rerr.Error()))
	}
	if rerr != nil {
		s.t.log.Error("goslo: reply not sent", "message_id", r.MsgID, "target", s.target.String(), "err", rerr)
	}
	return nil
}

// invoke runs the request: the observer, the serializer and the handler
// in its middleware, any panic of which becomes a RuntimeError (and is
// logged).
func (s *RPCServer) invoke(run *serverRun, r *driver.Request) (res any, err error) {
	stage := "serializer"
	defer func() {
		if p := recover(); p != nil {
			err = recovered(s.t.log, stage, p, "message_id", r.MsgID, "target", s.target.String())
		}
	}()
	cfg := &run.cfg
	req, perr := envelope.ParseRequest(r.Body)
	info := &RequestInfo{Type: r.Kind.String(), MessageID: r.MsgID, Method: req.Method, Namespace: req.Namespace,
		Version: req.Version, Target: s.target, Deadline: r.Deadline, Args: req.Args, Context: r.Context}
	if cfg.observer != nil && perr == nil {
		stage = "observer"
		cfg.observer(*info)
		stage = "serializer"
	}
	rctx, err := cfg.serializer.DeserializeContext(r.Context)
	if err != nil {
		return nil, err
	}
	if perr != nil {
		return nil, envelope.NewRemoteError(envelope.ModuleBuiltins, "AttributeError", perr.Error())
	}
	h, err := dispatch(cfg.endpoints, req)
	if err != nil {
		return nil, err
	}
	args := req.Args // decoded for this request alone
	if _, noop := cfg.serializer.(NoOpSerializer); !noop || args == nil {
		args = envelope.MapWithCap(req.Args.Len())
		for _, kv := range req.Args.Items() {
			v, err := cfg.serializer.DeserializeEntity(rctx, kv.Value)
			if err != nil {
				return nil, err
			}
			args.Append(kv.Key, v)
		}
	}
	info.Args, info.RequestContext = args, rctx
	stage = "handler"
	res, err = chain(h, cfg.middleware)(withRequest(run.base, info), rctx, args)
	stage = "serializer"
	if err != nil {
		return nil, err
	}
	return cfg.serializer.SerializeEntity(rctx, res)
}

// recovered logs a recovered panic with its stack and returns the
// RuntimeError a caller sees.
func recovered(log *slog.Logger, what string, p any, attrs ...any) error {
	log.Error("goslo: "+what+" panicked", append(attrs, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))...)
	return envelope.NewRemoteError(envelope.ModuleBuiltins, "RuntimeError", fmt.Sprintf("%s panicked: %v", what, p))
}

// Stop unregisters, stops taking requests, lets in-flight handlers finish
// and reply, and closes the socket, bounded by ctx. When ctx ends first,
// the handlers' context is cancelled and Stop returns ctx.Err(); handlers
// still running then finish in the background, and their replies are
// still sent when the driver can (the zmq driver keeps the socket open
// until the last one returns). Stop on a stopped server does nothing.
func (s *RPCServer) Stop(ctx context.Context) error {
	s.mu.Lock()
	run := s.run
	if run != nil {
		s.run, s.last, s.stopped = nil, run.stopped, make(chan struct{})
		// Under s.mu (the order Start takes too): a Start right after
		// this Stop tracks its own run, which this Stop must not untrack.
		s.t.untrack(s)
	}
	s.mu.Unlock()
	if run == nil {
		return nil
	}
	return run.stop(ctx)
}

// Addr is the advertised "<host>:<port>" of a started server ("" before Start).
func (s *RPCServer) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run == nil {
		return ""
	}
	return s.run.srv.Addr()
}

// Wait blocks until the Stop of the current run (or, when the server is
// stopped, of the last one) has returned.
func (s *RPCServer) Wait() {
	s.mu.Lock()
	ch := s.stopped
	if s.run == nil && s.last != nil {
		ch = s.last
	}
	s.mu.Unlock()
	<-ch
}
