package main

import (
	"fmt"
	"os"
	"syscall"
)

// Descriptors the bench modes open (measured on Linux with libzmq 4.3):
// a raw zmq caller has a zmq context of its own (its mailboxes, reaper and
// I/O thread: 7) and a TCP connection whose other end the in-process echo
// server holds (1); the server's context takes 7 more. A zmq rpc-client
// with use_dynamic_connections has a DEALER (1 mailbox) and a connection
// (1) per call or cast in flight; without, the calls share the driver's
// sockets, and the rabbit driver's pool has at most rpc_conn_pool_size
// connections.
const (
	fdsPerRawCaller     = 8
	fdsRawServer        = 7
	fdsPerDynamicCaller = 2
	fdsSpare            = 32 // the Go runtime, stdio, the matchmaker, metrics
)

// checkNOFILE refuses to start when need more descriptors than
// RLIMIT_NOFILE leaves over those open now; past it libzmq aborts the
// process ("Too many open files") or calls fail one by one. why says what
// needs them.
func checkNOFILE(cmd string, concurrency, need int, why string) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return nil // no limit known: let it try
	}
	open := 0
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		open = len(fds)
	}
	if rl.Cur == ^uint64(0) || uint64(open)+uint64(need)+fdsSpare <= rl.Cur {
		return nil
	}
	return fmt.Errorf("%s: --concurrency %d needs about %d file descriptors (%s), and RLIMIT_NOFILE allows %d with %d open now (hard limit %d): lower --concurrency or raise the limit (ulimit -n)",
		cmd, concurrency, need, why, rl.Cur, open, rl.Max)
}
