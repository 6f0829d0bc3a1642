package zmq_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/driver/zmq"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/matchmaker"
)

// ExampleOpen opens the zmq transport of a zmq+dummy:// URL (the
// in-process matchmaker: one process talking to itself over real zmq
// sockets on loopback), serves a target through the driver.Driver
// interface and calls it: the request goes out as a [context, message]
// pair in the JSON codec, and the reply comes back decoded.
func ExampleOpen() {
	ctx := context.Background()
	u, err := compat.ParseTransportURL("zmq+dummy://")
	if err != nil {
		panic(err)
	}
	cfg := compat.DefaultConfig("127.0.0.1")
	cfg.ZMQ.RPCZMQBindAddress = "127.0.0.1" // loopback only
	tr, err := zmq.Open(ctx, u, cfg, zmq.OpenOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	defer tr.Close()
	fmt.Println("codec:", tr.Codec().Name())

	target := compat.Target{Topic: "compute", Server: "node-1"}
	srv, err := tr.Listen(ctx, target, func(ctx context.Context, r *driver.Request) error {
		rctx, _ := driver.ContextDict(r.Context)
		user, _ := rctx.Get("user")
		body := r.Body.(*envelope.Map)
		method, _ := body.Get("method")
		args, _ := body.Get("args")
		return r.Reply(envelope.NewMap("method", method, "args", args, "user", user), nil)
	})
	if err != nil {
		panic(err)
	}
	defer srv.Stop(ctx)

	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := tr.Call(cctx, target, driver.Message{
		Context: envelope.NewMap("user", "alice"),
		Body:    envelope.Request{Method: "echo", Args: envelope.NewMap("x", 1)}.Map(),
	})
	fmt.Println(res, err)
	// Output:
	// codec: json
	// {"method": "echo", "args": {"x": 1}, "user": "alice"} <nil>
}

// ExampleNewZMQ uses the socket-level driver directly: payloads are bytes,
// a server binds a ROUTER on a loopback port of the range and registers
// "<host>:<port>" in the matchmaker, and a CALL finds it there.
func ExampleNewZMQ() {
	ctx := context.Background()
	mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer mm.Close()
	cfg := compat.DefaultConfig("127.0.0.1")
	cfg.ZMQ.RPCZMQBindAddress = "127.0.0.1"
	opts := zmq.OptionsFrom(cfg)
	opts.Logger = slog.New(slog.DiscardHandler)
	d, err := zmq.NewZMQ(mm, opts)
	if err != nil {
		panic(err)
	}
	defer d.Close()

	target := compat.Target{Topic: "echo", Server: "s1"}
	// With no server registered, a cast waits for one to appear in the
	// matchmaker, bounded by its context, then is dropped.
	sctx, scancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err = d.Cast(sctx, target, []byte("lost"))
	scancel()
	fmt.Println("cast before listen:", errors.Is(err, context.DeadlineExceeded))

	srv, err := d.Listen(ctx, target, func(r *zmq.Request) {
		_ = r.Reply(append([]byte("echo: "), r.Payload...)) // a no-op for a CAST
	})
	if err != nil {
		panic(err)
	}
	defer srv.Stop(ctx)
	hosts, _ := mm.Hosts(ctx, target, compat.Router)
	fmt.Println("registered:", len(hosts) == 1 && hosts[0] == srv.Addr())

	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	reply, err := d.Call(cctx, target, []byte("hello"))
	fmt.Printf("%s %v\n", reply, err)
	// Output:
	// cast before listen: true
	// registered: true
	// echo: hello <nil>
}

// ExampleOptionsFrom reads the driver's options from an oslo configuration
// whose [oslo_messaging_zmq] options were set by the transport URL's query,
// as the reference's driver does.
func ExampleOptionsFrom() {
	u, err := compat.ParseTransportURL("zmq+redis://127.0.0.1:6379?use_router_proxy=true&rpc_use_acks=true&rpc_zmq_min_port=50000")
	if err != nil {
		panic(err)
	}
	cfg := compat.DefaultConfig("node-1")
	if err := cfg.ApplyURLQuery(u); err != nil {
		panic(err)
	}
	o := zmq.OptionsFrom(cfg)
	fmt.Println("host:", o.Host, "ports:", o.MinPort, "-", o.MaxPort)
	fmt.Println("proxy:", o.RouterProxy, "acks:", o.Acks, "ack timeout:", o.AckTimeout, "retries:", o.RetryAttempts)
	fmt.Println("call timeout:", o.ResponseTimeout, "workers:", o.Workers, "linger:", o.Socket.Linger)

	// A name that is not an option of the group is refused, as oslo's
	// NoSuchOptError refuses it.
	err = cfg.ApplyURLQuery(mustURL("zmq://?no_such_option=1"))
	fmt.Println(err)
	// Output:
	// host: node-1 ports: 50000 - 65536
	// proxy: true acks: true ack timeout: 15s retries: 3
	// call timeout: 1m0s workers: 64 linger: 1s
	// compat: config: [oslo_messaging_zmq] no_such_option = "1": no such option no_such_option in group [oslo_messaging_zmq]
}

func mustURL(raw string) *compat.TransportURL {
	u, err := compat.ParseTransportURL(raw)
	if err != nil {
		panic(err)
	}
	return u
}
