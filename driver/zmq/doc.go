// Package zmq is goslo's transport driver for ZeroMQ under the public API:
// the zmq driver of oslo.messaging 8.1.4, message version 1.0, in every
// deployment mode, and the proxy.
//
// The wire (zmq-wire.md §3, §6, §11 in the repository's spec): the frame
// layouts of every hop (direct client and server, proxy client, server and
// routing rule, PUB/SUB) are built by one function each and parsed with
// the checks the Python receivers apply (package internal/zmqwire, with
// the socket identities, message ids and tcp:// endpoints). A message that fails them is a
// *FrameError: receivers log it with the message id and drop it, never
// answering the sender, as the reference does.
//
// The modes, chosen by Options (from [oslo_messaging_zmq]):
//
//   - direct static (the default): a server binds a ROUTER and registers
//     "<host>:<port>" as ROUTER/<topic>[/<server>]; a CALL owns a pooled
//     DEALER connected to every host of the key; casts go through cached
//     DEALERs owned by a socket loop.
//   - direct dynamic (Dynamic): a DEALER per message.
//   - router proxy (RouterProxy): clients connect a DEALER
//     "<host>/<uuid4>" to the frontend of every PUBLISHERS record; servers
//     connect a DEALER "<host>/<key>/<uuid4>" to every ROUTERS record and
//     register that identity as DEALER/<topic>[/<server>]; the routing key
//     of a request is the chosen server's identity.
//   - PUB/SUB (PubSub): fanout and notify go as one message to a proxy,
//     which publishes it; servers add a SUB socket subscribed to the topic.
//   - acks (Acks, proxy mode): servers ack CALL and CAST on receipt and
//     keep a per-server TTL cache of message ids and replies; clients
//     resend unacked messages with the same id.
//
// Every zmq socket is owned by one goroutine: a socket loop (poller plus
// an inproc wake-up), or the goroutine making a CALL on a pooled socket.
// User handlers run on a bounded worker pool, never on a socket goroutine.
// Proxy runs oslo-messaging-zmq-proxy's routing loop.
//
// A CALL whose server goes away (direct mode: the pooled CALL sockets,
// the client loop's DEALERs that carry concurrent CALLs and dynamic-mode
// sockets watch their connections with a zmq monitor): when every
// connection the request or its reply could take has ended without the
// reply, the driver asks the
// matchmaker about the hosts at their ends. None registered any more
// means a clean stop (a server unregisters first, then replies to all it
// took, then closes): the request was not read, so it is sent again to
// the target read anew. A host still registered means a kill, a crash or
// a lost host: after reconnectGrace (300 ms) with no connection back, the
// call fails with a *ServerGoneError (errors.Is driver.ErrServerGone and
// envelope.ErrMessagingTimeout), never resent, since the server may have
// run it. A connection that comes back keeps the call waiting until its
// deadline. Proxy mode has no such signal (the proxy's connection
// outlives the server).
//
// Options.MinReplyDelay (goslo only, off by default) holds each reply
// until a minimum time after its request was read, for oslo.messaging
// 8.1.4 Python clients, which lose replies that come too fast.
package zmq
