package main

import (
	"fmt"
	"io"
	"os"
)

// Example_demo runs `goslo demo` (what `make demo` runs): three servers, a
// client, a notifier and a listener in one process, on the in-process
// matchmaker and real zmq sockets on loopback.
func Example_demo() {
	code := run([]string{"demo"}, nil, os.Stdout, io.Discard)
	fmt.Println("exit status", code)
	// Output:
	// goslo demo: zmq direct mode on loopback, dummy matchmaker, json payloads
	// servers srv1, srv2, srv3 listen on topic demo
	// call  echo(greeting='héllo', n=42) on srv1 -> {"greeting": "héllo", "n": 42}
	// cast  ping(seq=1) to srv1 -> srv1 got [{"seq": 1}]
	// fanout echo(to='all') -> srv2 got [{"to": "all"}], srv3 got [{"to": "all"}] (and srv1 echoed it)
	// call  fail(message='kaboom') -> builtins.ValueError: kaboom
	// call  nope() -> NoSuchMethod: Endpoint does not support RPC method nope
	// notify INFO compute.instance.create.end -> listener got compute.instance.create.end from compute.host-1, payload {"instance_id": "i-1"}
	// done: servers and listener stopped and unregistered.
	// exit status 0
}
