package main

import (
	"context"
	"os"
)

// Example runs the agent on the in-process matchmaker: it serves its
// endpoint and calls itself through real zmq sockets on loopback.
func Example() {
	o := options{url: "zmq+dummy://", topic: "agent", host: "agent-1", once: true}
	if err := run(context.Background(), o, os.Stdout); err != nil {
		panic(err)
	}
	// Output:
	// serving agent/agent-1
	// ping: pong from agent-1 <nil>
	// report: {"host": "agent-1", "state": "up", "seen_by": "agent"} <nil>
	// report without state: true
}
