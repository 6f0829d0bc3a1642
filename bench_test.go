package goslo

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/rawecho"
)

// The benchmarks compare goslo with the raw zmq echo of internal/rawecho in
// one run: `make bench` (or go test -run '^$' -bench 'Echo|Call|Cast' .).

func benchPayload() []byte {
	p, _ := envelope.EncodeRequest(envelope.JSON, NewMap("user", "bench"), envelope.Request{Method: "echo", Args: NewMap("n", int64(1), "s", "payload"), Version: "1.0"})
	return p
}

func BenchmarkRawEchoCall(b *testing.B) {
	srv, err := rawecho.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	c, err := rawecho.Dial(srv.Addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	p := benchPayload()
	for b.Loop() {
		if err := c.Call(p); err != nil {
			b.Fatal(err)
		}
	}
}

func benchTransport(b *testing.B) (*Transport, *RPCClient, func()) {
	tr, err := NewTransport(context.Background(), "zmq+dummy://", WithOptions(func(c *compat.Config) {
		c.ZMQ.RPCZMQHost, c.ZMQ.RPCZMQBindAddress = "127.0.0.1", "127.0.0.1"
	}))
	if err != nil {
		b.Fatal(err)
	}
	var received atomic.Int64
	ep := NewEndpoint("", "1.0").Handle("echo", func(_ context.Context, _ *Map, args *Map) (any, error) {
		received.Add(1)
		return args, nil
	})
	srv, err := NewRPCServer(tr, Target{Topic: "bench", Server: "s"}, ep)
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	cl := NewRPCClient(tr, Target{Topic: "bench", Version: "1.0"}).Prepare(PrepareOptions{Server: "s", Timeout: 10 * time.Second})
	return tr, cl, func() {
		_ = srv.Stop(context.Background())
		_ = tr.Close()
	}
}

func BenchmarkGosloCall(b *testing.B) {
	_, cl, stop := benchTransport(b)
	defer stop()
	ctx := context.Background()
	rctx, args := NewMap("user", "bench"), NewMap("n", int64(1), "s", "payload")
	for b.Loop() {
		if _, err := cl.Call(ctx, rctx, "echo", args); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGosloCallParallel(b *testing.B) {
	_, cl, stop := benchTransport(b)
	defer stop()
	b.SetParallelism(5) // 10 callers on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		rctx, args := NewMap("user", "bench"), NewMap("n", int64(1), "s", "payload")
		for pb.Next() {
			if _, err := cl.Call(ctx, rctx, "echo", args); err != nil {
				panic(fmt.Sprint(err))
			}
		}
	})
}

func BenchmarkGosloCast(b *testing.B) {
	_, cl, stop := benchTransport(b)
	defer stop()
	ctx := context.Background()
	rctx, args := NewMap("user", "bench"), NewMap("n", int64(1), "s", "payload")
	for b.Loop() {
		if err := cl.Cast(ctx, rctx, "echo", args); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawEchoCast(b *testing.B) {
	srv, err := rawecho.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	c, err := rawecho.Dial(srv.Addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	p := benchPayload()
	for b.Loop() {
		if err := c.Cast(p); err != nil {
			b.Fatal(err)
		}
	}
}
