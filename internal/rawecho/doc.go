// Package rawecho is the baseline of goslo's benchmarks: a bare pebbe/zmq4
// DEALER/ROUTER echo with the frame shapes of the zmq driver's direct mode
// (5 frames out, the 5-frame reply back), no codec, no matchmaker.
//
// Start binds the echo Server, a ROUTER on a free loopback port that
// answers every CALL with its payload and counts every request; Dial
// connects a Client, one DEALER for one goroutine, that calls (Call, or
// Send and Recv to keep several calls in flight) or casts. `goslo bench
// raw` and the root package's benchmarks measure the driver against it.
package rawecho
