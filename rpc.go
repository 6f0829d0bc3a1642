package goslo

import (
	"context"
	"errors"
	"fmt"
	"reflect"
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
}

// NewRPCClient returns a client for target. The call timeout defaults to
// [DEFAULT] rpc_response_timeout; a context deadline always wins.
func NewRPCClient(t *Transport, target Target) *RPCClient {
	return &RPCClient{t: t, target: target, timeout: t.defaultTimeout(), serializer: NoOpSerializer{}}
}

// PrepareOptions are the overrides of RPCClient.Prepare; zero fields keep
// the client's value.
type PrepareOptions struct {
	Server     string
	Fanout     *bool
	Version    string
	Namespace  string
	Timeout    time.Duration
	VersionCap string
	Serializer Serializer
	// Retry is oslo's retry for rpc_use_acks: how often an unacked CALL or
	// CAST is resent; nil or 0 means rpc_retry_attempts, negative for ever.
	Retry *int
	// CallMonitorTimeout is oslo's call_monitor_timeout: a CALL fails when
	// the server sends no heartbeat for that long (RabbitMQ; whole
	// seconds). Zero keeps the client's value (none by default).
	CallMonitorTimeout time.Duration
}

// Prepare returns a copy of the client with overrides.
func (c *RPCClient) Prepare(o PrepareOptions) *RPCClient {
	n := *c
	if o.Server != "" {
		n.target.Server = o.Server
	}
	if o.Fanout != nil {
		n.target.Fanout = *o.Fanout
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
	return &n
}

func (c *RPCClient) withRetry(ctx context.Context) context.Context {
	if c.retry != nil {
		return zmqdrv.WithRetry(ctx, *c.retry)
	}
	return ctx
}

func (c *RPCClient) message(rctx *Map, method string, args *Map) (driver.Message, error) {
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
	return driver.Message{Context: sctx, Body: req.Map()}, nil
}

// Call invokes method on one server of the target and returns its result.
// A remote failure comes back as a *RemoteError (errors.Is works with
// ErrNoSuchMethod, ErrUnsupportedVersion, ...); no reply in time as an
// error matching ErrMessagingTimeout.
func (c *RPCClient) Call(ctx context.Context, rctx *Map, method string, args *Map) (any, error) {
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
	}
	m.CallMonitorTimeout = c.callMonitor
	body, err := c.t.drv.Call(c.withRetry(ctx), c.target, m)
	if err != nil {
		return nil, err
	}
	return c.serializer.DeserializeEntity(rctx, body)
}

// Cast invokes method without waiting for a result (on every server of the
// topic when the target fans out).
func (c *RPCClient) Cast(ctx context.Context, rctx *Map, method string, args *Map) error {
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
// out of time. Return a *RemoteError (e.g. envelope.ValueError)
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
			ok, err = compat.VersionIsCompatible(v, rv)
		}
		if err != nil {
			return nil, envelope.NewRemoteError(envelope.ModuleBuiltins, err.(*compat.VersionError).PythonClass(), err.(*compat.VersionError).Reason)
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
type RPCServer struct {
	t          *Transport
	target     Target
	endpoints  []*Endpoint
	serializer Serializer
	mu         sync.Mutex
	srv        driver.Server
	inflight   sync.WaitGroup
	stopped    chan struct{}
	observer   func(RequestInfo)
	// handlers run under base, cancelled when Stop's context ends.
	base       context.Context
	cancelBase context.CancelFunc
}

// RequestInfo describes one request a server received, for observers.
type RequestInfo struct {
	Type      string // "call", "cast" or "fanout"
	MessageID string
	Method    string
	Args      *Map
	Context   any
}

// SetObserver registers f, called (on the worker) for every well-formed
// request before it is dispatched. Set it before Start.
func (s *RPCServer) SetObserver(f func(RequestInfo)) { s.observer = f }

// NewRPCServer returns a server; Start makes it listen.
func NewRPCServer(t *Transport, target Target, endpoints ...*Endpoint) (*RPCServer, error) {
	if err := target.ValidateListen(); err != nil {
		return nil, err
	}
	if len(endpoints) == 0 {
		return nil, errors.New("goslo: a server needs at least one endpoint")
	}
	base, cancel := context.WithCancel(context.Background())
	return &RPCServer{t: t, target: target, endpoints: endpoints, serializer: NoOpSerializer{}, stopped: make(chan struct{}),
		base: base, cancelBase: cancel}, nil
}

// SetSerializer replaces the serializer (before Start).
func (s *RPCServer) SetSerializer(z Serializer) { s.serializer = z }

// Start binds, registers and serves. Handlers run on a bounded pool of
// workers (the transport's driver options).
func (s *RPCServer) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil
	}
	srv, err := s.t.drv.Listen(ctx, s.target, s.handle)
	if err != nil {
		return err
	}
	s.srv = srv
	return nil
}

func (s *RPCServer) handle(_ context.Context, r *driver.Request) error {
	s.inflight.Add(1)
	defer s.inflight.Done()
	if s.observer != nil {
		if req, perr := envelope.ParseRequest(r.Body); perr == nil {
			s.observer(RequestInfo{Type: r.Kind.String(), MessageID: r.MsgID, Method: req.Method, Args: req.Args, Context: r.Context})
		}
	}
	body, err := s.invoke(r.Context, r.Body)
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
		rerr = r.Reply(nil, fmt.Errorf("goslo: result not serializable: %w", rerr))
	}
	if rerr != nil {
		s.t.log.Error("goslo: reply not sent", "message_id", r.MsgID, "target", s.target.String(), "err", rerr)
	}
	return nil
}

func (s *RPCServer) invoke(ctxv, msg any) (any, error) {
	rctx, err := s.serializer.DeserializeContext(ctxv)
	if err != nil {
		return nil, err
	}
	req, err := envelope.ParseRequest(msg)
	if err != nil {
		return nil, envelope.NewRemoteError(envelope.ModuleBuiltins, "AttributeError", err.Error())
	}
	h, err := dispatch(s.endpoints, req)
	if err != nil {
		return nil, err
	}
	args := req.Args // decoded for this request alone
	if _, noop := s.serializer.(NoOpSerializer); !noop || args == nil {
		args = envelope.MapWithCap(req.Args.Len())
		for _, kv := range req.Args.Items() {
			v, err := s.serializer.DeserializeEntity(rctx, kv.Value)
			if err != nil {
				return nil, err
			}
			args.Append(kv.Key, v)
		}
	}
	res, err := safeCall(s.base, h, rctx, args)
	if err != nil {
		return nil, err
	}
	return s.serializer.SerializeEntity(rctx, res)
}

// safeCall turns a panicking handler into a RuntimeError reply.
func safeCall(ctx context.Context, h Handler, rctx, args *Map) (res any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = envelope.NewRemoteError(envelope.ModuleBuiltins, "RuntimeError", fmt.Sprintf("handler panicked: %v", p))
		}
	}()
	return h(ctx, rctx, args)
}

// Stop unregisters, stops taking requests, lets in-flight handlers finish
// and reply (bounded by ctx), and closes the socket.
func (s *RPCServer) Stop(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	// In-flight handlers may finish until ctx ends; then their context is
	// cancelled, and Stop still waits for them to return.
	stop := context.AfterFunc(ctx, s.cancelBase)
	defer stop()
	err := srv.Stop(ctx)
	s.cancelBase()
	close(s.stopped)
	return err
}

// Addr is the advertised "<host>:<port>" of a started server ("" before Start).
func (s *RPCServer) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return ""
	}
	return s.srv.Addr()
}

// Wait blocks until Stop has run.
func (s *RPCServer) Wait() { <-s.stopped }
