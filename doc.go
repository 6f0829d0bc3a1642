// Package goslo lets Go programs join an OpenStack RPC bus as peers of
// Python services running oslo.messaging's ZeroMQ driver (8.1.4, zmq
// message version 1.0), wire-compatibly.
//
// The API is shaped like oslo_messaging: a Transport built from a transport
// URL (and optionally an oslo INI configuration), a Target, an RPCClient
// with Call, Cast and Prepare, an RPCServer serving Endpoints, a Notifier
// and a NotificationListener. Every blocking call takes a context.Context;
// a CALL's timeout is the context deadline, or [DEFAULT]
// rpc_response_timeout when there is none.
//
// Errors: a remote exception is a *RemoteError (class, module, message,
// traceback, args, kwargs); errors.Is matches ErrNoSuchMethod,
// ErrUnsupportedVersion and ErrMessagingTimeout as oslo's classes. A Go
// endpoint raises a chosen Python class by returning a *RemoteError such as
// envelope.ValueError("..."); any other error reaches Python callers as a
// RuntimeError.
//
// Layers, imported only downward: goslo (this API), driver (zmq sockets,
// frames), matchmaker (the name service), envelope (codecs and message
// shapes) and compat (oslo semantics without I/O).
package goslo
