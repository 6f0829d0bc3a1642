// Command agent is a Go service on an OpenStack RPC bus: it serves an
// endpoint on a topic, as a nova-compute-like agent would, and calls a
// peer, which may be a Python service running oslo.messaging.
//
//	go run ./examples/agent                      # alone, on the in-process matchmaker: calls itself
//	go run ./examples/agent --url 'zmq+redis://127.0.0.1:6379?rpc_zmq_host=127.0.0.1' \
//	    --peer-topic demo --peer-server srv1     # calls a Python server (testdata/python/rpc_peer.py)
//
// It serves "agent.<host>" with two methods, ping() and report(state), and
// calls the peer's whoami and echo once, then serves until interrupted
// (or exits at once with --once).
package main
