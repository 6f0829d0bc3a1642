package bridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/bridge"
	"github.com/goslo/goslo/compat"
)

// Two zmq buses in one process (each zmq+dummy:// transport has its own
// in-process matchmaker), joined by a bridge: a server on bus A answers a
// caller on bus B under its own name. With RabbitMQ, pass the server
// names of that bus to SideFor.
func ExampleNew() {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	bus := func() *goslo.Transport {
		tr, err := goslo.NewTransport(ctx, "zmq+dummy://", goslo.WithLogger(quiet), goslo.WithOptions(func(c *compat.Config) {
			c.ZMQ.RPCZMQHost, c.ZMQ.RPCZMQBindAddress = "127.0.0.1", "127.0.0.1"
		}))
		if err != nil {
			panic(err)
		}
		return tr
	}
	a, b := bus(), bus()
	defer a.Close()
	defer b.Close()
	// The bridge's own transports are usually separate processes' buses;
	// a dummy matchmaker lives in its transport, so it shares them here.
	sideA, closeA, _ := bridge.SideFor("a", a.Driver(), a.Config(), nil, quiet)
	sideB, closeB, _ := bridge.SideFor("b", b.Driver(), b.Config(), nil, quiet)
	defer closeA()
	defer closeB()

	ep := goslo.NewEndpoint("", "1.0").Handle("whoami", func(context.Context, *goslo.Map, *goslo.Map) (any, error) { return "node-1", nil })
	srv, _ := goslo.NewRPCServer(a, goslo.Target{Topic: "compute", Server: "node-1"}, ep)
	_ = srv.Start(ctx)
	defer srv.Stop(ctx)

	br, err := bridge.New(bridge.Config{A: sideA, B: sideB, Topics: []string{"compute"}, DiscoverEvery: 50 * time.Millisecond, Logger: quiet})
	if err != nil {
		panic(err)
	}
	_ = br.Start(ctx)
	defer br.Stop(ctx)
	for len(br.Mirrors()) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println(br.Mirrors())

	cl := goslo.NewRPCClient(b, goslo.Target{Topic: "compute", Server: "node-1"}).Prepare(goslo.PrepareOptions{Timeout: 5 * time.Second})
	res, err := cl.Call(ctx, nil, "whoami", nil)
	fmt.Println(res, err)
	// Output:
	// [b:compute.node-1]
	// node-1 <nil>
}
