// Package matchmaker is the name service of goslo's zmq driver, with the
// Redis schema and command sequence of oslo.messaging 8.1.4, so that Go and
// Python servers and clients find each other on one Redis. The contract is
// the repository's spec matchmaker.md (../shared/spec); every key string
// comes from package compat.
//
// # Backends
//
// Dummy is in process (zmq+dummy://, for one process talking to itself, as
// goslo demo does). Redis is one or more independent Redis servers
// (zmq+redis://h1:p1,h2:p2): every write goes to every available instance,
// reads come from the first instance that is available and ready. Sentinel
// (zmq+sentinel://s1,s2/group) writes to the master of the group and reads
// from a replica, falling back to the master. New picks one from a
// transport URL, or from rpc_zmq_matchmaker for a plain zmq:// URL (redis
// by default, as in oslo); ConfigFrom takes the options from a
// compat.Config.
//
// # Schema
//
// Every key is a set. A server registers its address (direct mode) or its
// DEALER identity (proxy mode) under L/<topic>/<server> (when the target
// has a server) and L/<topic>, L being ROUTER or DEALER; a proxy registers
// "<pub>,<frontend>" under PUBLISHERS and its backend under ROUTERS. Every
// member also gets a liveness key of its own name holding " ". One
// registration of a member in a key is SADD key member, EXPIRE key ttl,
// SADD member " ", EXPIRE member ttl (no EXPIRE when the expiry is <= 0),
// one command at a time. Unregistering is SREM key member, SREM member " ",
// never DEL. A read is SMEMBERS key, then TTL member for each member, one at
// a time, keeping members whose TTL is >= -1 (the liveness key exists);
// stale members are hidden, never deleted. go-redis is made to put exactly
// redis-py 4.3's commands on the wire: upper-case names, RESP2, and no
// HELLO or CLIENT SETINFO at connection set-up (AUTH <password> when there
// is one, as redis-py sends). Tests compare this against MONITOR traces of
// the reference and against the real 8.1.4 matchmaker, command for
// command.
//
// Keeper keeps a registration alive as the reference's target updater
// does: at start, then every zmq_target_update, with TTL zmq_target_expire.
//
// # Faults
//
// A Redis that does not answer (refused, reset, timed out, or refusing the
// password) makes calls fail with an *UnavailableError matching
// ErrMatchmakerUnavailable, and one log line with its address per outage.
// A background checker PINGs unavailable instances (first at once, then every
// max(zmq_target_update x fraction available, 10 s)); one that answers
// takes writes at once and reads after zmq_target_expire, when every peer
// has re-registered into it. An error reply from a working server (e.g.
// WRONGTYPE) is returned as is and does not mark the instance down.
// Calls end early when their context ends. Nothing panics, no loop spins,
// and Close stops every goroutine.
//
// # Differences from the reference
//
// Deliberate, each because the reference is broken there or because Go
// callers want the error:
//
//   - Errors are returned, not swallowed: the reference's register_publisher,
//     register_router, their unregister counterparts and unregister drop
//     MatchmakerUnavailable, and get_publishers/get_routers turn it into [].
//     Callers that want the reference's behaviour ignore the error.
//   - Retried lookups return *NoHostsError (ErrNoHosts) where tenacity
//     raises RetryError; wait_timeout is floored at 10 ms so that 0 cannot
//     spin.
//   - Redis backend: every connection failure, timeout and authentication
//     failure marks an instance unavailable (the reference: redis-py's
//     ConnectionError; with Redis >= 6 a wrong password is a ResponseError
//     there, raised raw from the constructor). Sockets have go-redis'
//     timeouts (2 s dial, 3 s read) where the reference has none.
//   - Sentinel backend: connection failures become ErrMatchmakerUnavailable
//     too (the reference maps only MasterNotFoundError and lets
//     ConnectionError kill the server's updater thread).
//   - Dummy: an expiry <= 0 means "never expires" (the reference makes such
//     records invisible); records age per key and member (the reference
//     keeps one counter per host across all its keys, and unregistering a
//     host from one target breaks lookups of its other targets with
//     KeyError); HostsByKey exists (the reference lacks get_hosts_by_key, so
//     its routing-table refresher dies); its *Retry lookups retry (the
//     reference's do not).
//   - Keeper registers once at start, not twice (the reference's server
//     registers in its constructor and again at once from its updater
//     thread); on failure it retries every min(zmq_target_update, 10 s)
//     where the reference always waits 10 s, and logs once per outage
//     where the reference logs every attempt.
package matchmaker
