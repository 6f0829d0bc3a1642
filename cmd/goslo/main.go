// Command goslo is the command-line face of goslo.
//
// Commands:
//
//	goslo demo      one process: server, client, notifier and listener on real zmq sockets
//	goslo version   the goslo version and the oslo.messaging release it follows
package main

import (
	"fmt"
	"io"
	"os"
)

const version = "0.1.0-dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "demo":
		if err := demo(stdout); err != nil {
			fmt.Fprintln(stderr, "goslo demo:", err)
			return 1
		}
		return 0
	case "version", "--version", "-V":
		fmt.Fprintf(stdout, "goslo %s (wire-compatible with oslo.messaging 8.1.4, zmq message version 1.0)\n", version)
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "goslo: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: goslo <command>

commands:
  demo      run a server, a client (call, cast, fanout, failing call), a
            notifier and a listener in one process on the dummy matchmaker
  version   print the version
`)
}
