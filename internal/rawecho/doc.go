// Package rawecho is the baseline of goslo's benchmarks: a bare pebbe/zmq4
// DEALER/ROUTER echo with the frame shapes of the zmq driver's direct mode
// (5 frames out, the 5-frame reply back), no codec, no matchmaker.
package rawecho
