package rawecho_test

import (
	"fmt"

	"github.com/goslo/goslo/internal/rawecho"
)

// Example runs the echo on loopback: a cast, a call, then three pipelined
// calls whose replies come back in order. One DEALER's messages reach the
// ROUTER in the order they were sent, so once the last reply is in, the
// server has counted every request.
func Example() {
	srv, err := rawecho.Start()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	c, err := rawecho.Dial(srv.Addr)
	if err != nil {
		panic(err)
	}
	defer c.Close()

	fmt.Println("cast:", c.Cast([]byte("x")))
	fmt.Println("call:", c.Call([]byte("x")))
	for range 3 {
		if _, err := c.Send([]byte("x")); err != nil {
			panic(err)
		}
	}
	for range 3 {
		n, err := c.Recv()
		fmt.Println("reply to", n, err)
	}
	fmt.Println("received:", srv.Received())
	// Output:
	// cast: <nil>
	// call: <nil>
	// reply to 3 <nil>
	// reply to 4 <nil>
	// reply to 5 <nil>
	// received: 5
}
