// Package matchmaker is the name service of goslo's zmq driver, with the
// Redis schema of oslo.messaging 8.1.4 to the letter, so that Go and Python
// servers and clients find each other on one Redis.
//
// Backends: Dummy (in process, the embedded default), Redis (one or more
// independent servers: written to all, read from one) and Sentinel (writes
// to the master, reads from a replica). New picks one from a transport URL.
//
// Schema (see the repository's spec matchmaker.md): every key is a set; a
// server registers its address (direct mode) or DEALER identity (proxy
// mode) under ROUTER|DEALER/<topic>/<server> and ROUTER|DEALER/<topic>, a
// proxy its records under PUBLISHERS and ROUTERS; every member has a
// liveness key of its own name holding " ", and a reader keeps a member
// only while that key exists. Each write is SADD then EXPIRE; unregistering
// is SREM only. Keeper re-registers every zmq_target_update.
//
// Faults: a Redis that does not answer makes calls fail with an error
// matching ErrMatchmakerUnavailable (and one log line with its address);
// an instance that comes back takes writes at once and reads after
// zmq_target_expire. Nothing panics and no loop spins.
package matchmaker
