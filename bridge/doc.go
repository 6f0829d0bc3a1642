// Package bridge joins two oslo.messaging buses so that services can move
// from one to the other one at a time: zmq (oslo.messaging 8.1.4) and
// RabbitMQ (18.3.1), or two of a kind (two RabbitMQ virtual hosts or
// clusters, two zmq buses with their own matchmakers). One code path
// serves every pair: it works on driver.Driver, plus a Registry per side
// for discovery. `goslo bridge` is the command; docs/migration.md the
// operator's guide.
//
// # Mirrors
//
// Every server of a bridged topic is reachable from the other bus under
// its own name. For each server s of topic T found on bus X and not on
// bus Y, the bridge runs a mirror on Y: an RPC server of (T, s) there,
// whose every request is forwarded to (T, s) on X. On zmq a mirror
// registers ROUTER/T/s and ROUTER/T (DEALER/... in proxy mode) as a
// server does, refreshed within zmq_target_expire and removed when s
// leaves; on RabbitMQ it declares and consumes T, T.s and a fanout queue
// with the reference's arguments (the rabbit driver's topology).
//
// # Discovery
//
//   - zmq: the matchmaker's keys "<L>/<T>/<server>" (matchmaker.Lister: a
//     SCAN on Redis), minus the mirrors: each mirror's address is also
//     registered under GOSLO_BRIDGE/<T> (MarkerType), which Python peers
//     never read. A zmq server "node@backend" is found as "node" (zmq
//     keys cut at '@', rabbit-wire §14).
//   - RabbitMQ: a static list of server names (--server), each checked
//     every round with a passive declare of its queue "<T>.<s>": alive
//     when the queue exists and has a consumer. The management API was
//     not chosen: Debian's rabbitmq-server ships the plugin, but it is
//     off by default, needs its own port, credentials and firewall rule,
//     and lists the bridge's own mirrors as servers too. A listed name is
//     never mirrored onto RabbitMQ, whatever the other side says. The list
//     can change while the bridge runs (StaticRegistry.SetNames; `goslo
//     bridge` re-reads its --config on SIGHUP).
//
// A server seen on both buses (a service moved but its old instance still
// running) is mirrored onto neither: each bus keeps serving its own. A
// server is mirrored once it is seen in two rounds in a row (DiscoverEvery
// apart), and its mirror stops in the first round it is gone.
//
// # Routing
//
//   - A CALL or CAST to (T, s) reaches s wherever it lives.
//   - Topic-only CALLs and CASTs are load-balanced over the servers of
//     both buses: a mirror is one more server of T on its bus (one more
//     consumer of the queue T on RabbitMQ, one more host of ROUTER/T on
//     zmq), and it forwards to the server it stands for.
//   - A fanout reaches every server of T on both buses exactly once: a
//     mirror forwards a fanout as a CAST to its one server.
//   - Notifications of the listed topics, every priority, are read on each
//     bus and re-sent on the other with the same topic and priority. On
//     RabbitMQ the bridge reads its own pool queue "<pool>.<topic>"
//     (PoolQueue), so it never takes notifications from real listeners;
//     what it sent itself comes back to it there and is recognised by its
//     message_id and dropped (the echo cache).
//
// # Message mapping (rabbit-wire §14)
//
// The drivers do the wire: a zmq [context, message] pair becomes a
// RabbitMQ body with the context flattened into _context_* keys and back,
// fresh _msg_id/_unique_id or zmq message ids are made by the sending
// driver. Failures come back as *envelope.RemoteError and are answered
// verbatim with Request.Reply: class, module, message and traceback
// intact. A forwarded CALL's deadline is the caller's: on RabbitMQ the
// receipt time plus the expiration property (the rabbit driver sets
// Request.Deadline), never more; zmq 8.1.4 carries no timeout, so a CALL
// from zmq gets CallTimeout. While the forwarded CALL runs, the rabbit
// driver's server sends the call-monitor heartbeats a caller with
// call_monitor_timeout asked for (_timeout); zmq has none to forward.
//
// # Loops and two bridges
//
// A bridge forwards only requests addressed to a mirror, and a mirror
// forwards only to a real server: discovery leaves mirrors out (markers on
// zmq, the static list on RabbitMQ), and a name real on both sides is not
// mirrored. Notifications it sent are dropped when it hears them again.
//
// Bridges of one group (the same pair of buses, run for availability) all
// run mirrors and all forward CALLs and CASTs (each request reaches one
// of them). Fanouts and notifications, which every mirror and listener
// would see, are forwarded by one bridge only: the holder of the group's
// Lease (an exclusive queue on RabbitMQ, RabbitLease; or the oldest record
// under GOSLO_BRIDGE_LEASE/<group> in a zmq matchmaker, MatchmakerLease).
// When it dies the lease passes at once (RabbitMQ) or within the record's
// TTL (matchmaker); fanouts sent in between are not forwarded. zmq clients
// keep a dead bridge's mirror addresses in their routing tables until
// they refresh them (zmq_target_update), as for any zmq server.
//
// # Observability
//
// Observer (Prometheus: Metrics) counts per direction "<from>-><to>" and
// topic: forwarded, failed (timeout, send_failed, reply_failed,
// malformed), in flight, and mirrors per side. Log lines carry both
// sides' ids: in_id (the received message's) and out_id (the forwarded
// one's, from driver.WithSentID); one line per mirror started and
// stopped, per-message lines at debug level.
package bridge
