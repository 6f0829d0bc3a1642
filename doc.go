// Package goslo lets Go programs join an OpenStack RPC bus as peers of
// Python services running oslo.messaging, wire-compatibly: the ZeroMQ
// driver of oslo.messaging 8.1.4 (zmq message version 1.0) and the
// RabbitMQ driver of 18.3.1.
//
// The API is shaped like oslo_messaging: a Transport built from a transport
// URL (and optionally an oslo INI configuration), a Target, an RPCClient
// with Call, Cast, Prepare and CanSendVersion, an RPCServer serving
// Endpoints, a Notifier and a NotificationListener. Every blocking call
// takes a context.Context; a CALL's timeout is the context deadline, or
// [DEFAULT] rpc_response_timeout when there is none.
//
// # Go values
//
// Arguments and results are Go values. Structs travel as the dicts a
// Python peer would send (json tags name the keys, as encoding/json does;
// time.Time is oslo's datetime); Decode, CallAs and typed handlers fill
// structs from what arrives and name the field that did not fit. The
// untyped layer stays for dynamic use: a *Map is a Python dict in order,
// and Call returns what was decoded (*Map, []any, int64, string, ...).
//
//	ep := goslo.NewEndpoint("", "1.0")
//	goslo.Handle(ep, "select_destinations", func(ctx context.Context, a SelectArgs) ([]Host, error) { ... })
//	hosts, err := goslo.CallAs[[]Host](ctx, client, rctx, "select_destinations", args)
//
// # Servers
//
// NewRPCServer takes the endpoints and options (WithMiddleware,
// WithConcurrency, WithSerializer, WithObserver). Handlers run on worker
// goroutines, never on a socket's; RequestFrom(ctx) tells a handler or a
// middleware which request it serves (message id, method, namespace,
// version, target, the caller's deadline where the bus carries one, the
// request context). The handlers' context is cancelled when Stop runs out
// of time.
//
// # Errors
//
// A remote exception is a *RemoteError (class, module, message,
// traceback, args, kwargs); errors.Is matches ErrNoSuchMethod,
// ErrUnsupportedVersion and ErrMessagingTimeout as oslo's classes. A Go
// handler raises a chosen Python class by returning ValueError("..."),
// TypeError, BuiltinError or NewRemoteError; any other error reaches
// Python callers as a RuntimeError.
//
// Layers, imported only downward: goslo (this API), driver (the zmq and
// rabbit buses), matchmaker (zmq's name service), envelope (codecs,
// message shapes, the value model) and compat (oslo semantics without
// I/O).
package goslo
