package goslo_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/envelope"
)

type calculator struct{}

// Add is exposed as "add": arguments arrive by name, as Python's keyword
// arguments.
func (calculator) Add(_ context.Context, _ *goslo.Map, args *goslo.Map) (any, error) {
	a, _ := args.Get("a")
	b, _ := args.Get("b")
	x, ok1 := a.(int64)
	y, ok2 := b.(int64)
	if !ok1 || !ok2 {
		return nil, envelope.NewRemoteError(envelope.ModuleBuiltins, "TypeError", "add() takes two ints")
	}
	return x + y, nil
}

func Example() {
	ctx := context.Background()
	// zmq+dummy:// is the in-process matchmaker; use zmq+redis://host:port to
	// meet Python services.
	tr, err := goslo.NewTransport(ctx, "zmq+dummy://", goslo.WithOptions(func(c *compat.Config) {
		c.ZMQ.RPCZMQHost, c.ZMQ.RPCZMQBindAddress = "127.0.0.1", "127.0.0.1"
	}))
	if err != nil {
		panic(err)
	}
	defer tr.Close()

	ep, _ := goslo.EndpointOf(calculator{}, "", "1.0")
	srv, _ := goslo.NewRPCServer(tr, goslo.Target{Topic: "calc", Server: "c1"}, ep)
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	defer srv.Stop(ctx)

	client := goslo.NewRPCClient(tr, goslo.Target{Topic: "calc"}).Prepare(goslo.PrepareOptions{Timeout: 5 * time.Second})
	sum, err := client.Call(ctx, goslo.NewMap("user", "demo"), "add", goslo.NewMap("a", int64(2), "b", int64(40)))
	fmt.Println(sum, err)

	_, err = client.Call(ctx, nil, "add", goslo.NewMap("a", "x", "b", int64(1)))
	var re *goslo.RemoteError
	fmt.Println(errors.As(err, &re), re.Class)

	_, err = client.Call(ctx, nil, "divide", nil)
	fmt.Println(errors.Is(err, goslo.ErrNoSuchMethod))
	// Output:
	// 42 <nil>
	// true TypeError
	// true
}

// Shutdown ends a process's use of a transport within a time limit: the
// servers started on it stop taking requests, the handlers in flight
// finish and reply, queued messages leave, then everything is closed;
// when the limit passes, what is left is closed at once.
func ExampleTransport_Shutdown() {
	ctx := context.Background()
	tr, err := goslo.NewTransport(ctx, "zmq+dummy://", goslo.WithOptions(func(c *compat.Config) {
		c.ZMQ.RPCZMQHost, c.ZMQ.RPCZMQBindAddress = "127.0.0.1", "127.0.0.1"
	}))
	if err != nil {
		panic(err)
	}
	ep, _ := goslo.EndpointOf(calculator{}, "", "1.0")
	srv, _ := goslo.NewRPCServer(tr, goslo.Target{Topic: "calc", Server: "c1"}, ep)
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	client := goslo.NewRPCClient(tr, goslo.Target{Topic: "calc"}).Prepare(goslo.PrepareOptions{Timeout: 5 * time.Second})
	sum, _ := client.Call(ctx, nil, "add", goslo.NewMap("a", int64(2), "b", int64(40)))
	fmt.Println(sum)

	// On SIGTERM, say: give the transport 10 s to wind down.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(sctx); err != nil {
		fmt.Println("not shut down cleanly:", errors.Is(err, context.DeadlineExceeded), err)
	}
	_, err = client.Call(ctx, nil, "add", goslo.NewMap("a", int64(1), "b", int64(1)))
	fmt.Println(errors.Is(err, goslo.ErrClosed))
	// Output:
	// 42
	// true
}
