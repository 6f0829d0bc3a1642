// Command agent is a Go service on an OpenStack RPC bus: it serves an
// endpoint on a topic, as a nova-compute-like agent would, and calls a
// peer, which may be a Python service running oslo.messaging.
//
// It shows the server and client halves of the public API: an endpoint
// built from a Go type with goslo.EndpointOf (its methods Ping and Report
// become the oslo methods ping() and report(state)), an RPCServer on topic
// --topic (default "agent") as server --host (default "agent-1"), and an
// RPCClient that calls with a request context and reads a
// *goslo.RemoteError with errors.As.
//
//	go run ./examples/agent                      # alone, on the in-process matchmaker: calls itself
//	go run ./examples/agent --url 'zmq+redis://127.0.0.1:6379?rpc_zmq_host=127.0.0.1' \
//	    --peer-topic demo --peer-server srv1     # calls a Python server (testdata/python/rpc_peer.py)
//
// Calling itself, it calls ping, report(state="up") and report without
// its argument, which fails with the Python TypeError a Python server
// would raise. Calling a peer (--peer-topic, --peer-server), it calls the
// peer's whoami and echo once. Then it serves until interrupted, or exits
// at once with --once. `go test ./examples/agent` runs it on the
// in-process matchmaker and checks what it prints.
package main
