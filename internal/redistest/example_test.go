package redistest_test

import (
	"fmt"

	"github.com/goslo/goslo/internal/redistest"
)

// ExampleParseMonitorLine reads MONITOR lines as a Monitor records them
// (these two are the matchmaker registering a server, as redis 7 prints
// it), undoing Redis' quoting; a line that is not a command is refused.
// Starting the servers themselves needs a test (Start takes a testing.TB).
func ExampleParseMonitorLine() {
	for _, line := range []string{
		`1700000000.123456 [0 127.0.0.1:50322] "SADD" "ROUTER/compute/node-1" "10.0.0.5:49200"`,
		`1700000000.123789 [0 127.0.0.1:50322] "SADD" "10.0.0.5:49200" " "`,
		`1700000000.124001 [0 127.0.0.1:50322] "SET" "k" "say \"hi\"\x01\n"`,
		`OK`,
	} {
		c, ok := redistest.ParseMonitorLine(line)
		if !ok {
			fmt.Println("refused:", line)
			continue
		}
		fmt.Printf("%s %q\n", c.Client, c.Args)
	}
	// Output:
	// 127.0.0.1:50322 ["SADD" "ROUTER/compute/node-1" "10.0.0.5:49200"]
	// 127.0.0.1:50322 ["SADD" "10.0.0.5:49200" " "]
	// 127.0.0.1:50322 ["SET" "k" "say \"hi\"\x01\n"]
	// refused: OK
}

// ExampleEncodeCommand is the raw RESP form a test writes to a socket to
// talk to Redis without a client library (as StartMonitor does).
func ExampleEncodeCommand() {
	fmt.Printf("%q\n", redistest.EncodeCommand("AUTH", "s3cret"))
	// Output:
	// "*2\r\n$4\r\nAUTH\r\n$6\r\ns3cret\r\n"
}
