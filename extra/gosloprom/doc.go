// Package gosloprom exposes goslo's driver, matchmaker and proxy activity as
// Prometheus metrics (github.com/prometheus/client_golang). It is a module
// of its own, github.com/goslo/goslo/extra/gosloprom, so that a program
// importing only github.com/goslo/goslo pulls in no Prometheus (as
// go-redis keeps its extras). Nothing is registered anywhere unless asked:
// build a Metrics on a registry of yours, pass it to
// goslo.WithDriverObserver (or set the zmq driver's Options.Observer and
// wrap the matchmaker with Matchmaker), and register proxies with Proxy.
//
// Metrics, all prefixed goslo_:
//
//	messages_sent_total{type}              CALL, CAST, CAST_FANOUT, NOTIFY, REPLY, ACK written to a socket
//	messages_received_total{type}          well-formed messages taken from a socket
//	messages_dropped_total{type,reason}    malformed, duplicate, no_hosts, timeout, queue_full, closed, send_failed,
//	                                       server_gone (a CALL whose server's connection closed before the reply),
//	                                       oversized (parts adding up to more than max_message_size),
//	                                       too_many_parts (over 1,024); these two with type "unknown"
//	peer_disconnects_total{socket}         connections a listening ROUTER lost: the peer closed, or libzmq
//	                                       dropped it for a frame over max_message_size (libzmq tells no
//	                                       difference)
//	call_duration_seconds{outcome}         histogram of CALLs: ok, timeout, error
//	matchmaker_errors_total{op}            failed matchmaker operations (register, lookup, publishers, ...)
//	proxy_messages_total{direction}        front_to_back, back_to_front, published, acked
//	proxy_dropped_total                    messages a proxy dropped (malformed, unroutable, overflow, oversized, too many parts)
//	proxy_peer_disconnects_total           connections the proxy's ROUTERs lost (as peer_disconnects_total)
package gosloprom
