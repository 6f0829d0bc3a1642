package main

import (
	"context"
	"os"
	"regexp"
	"time"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
)

// Example sends nova-style notifications through a goslo Notifier and
// prints what the consumer receives (the in-process matchmaker, real zmq
// sockets); the filter drops the volume event.
func Example() {
	ctx := context.Background()
	tr, err := goslo.NewTransport(ctx, "zmq+dummy://", goslo.WithOptions(func(c *compat.Config) {
		c.ZMQ.RPCZMQHost, c.ZMQ.RPCZMQBindAddress = "127.0.0.1", "127.0.0.1"
	}))
	if err != nil {
		panic(err)
	}
	defer tr.Close()
	p := &printer{out: os.Stdout, printed: make(chan string, 4)}
	l := listener(tr, "notifications", regexp.MustCompile(`^compute\.instance\.`), p)
	if err := l.Start(ctx); err != nil {
		panic(err)
	}
	defer l.Stop(ctx)

	n := goslo.NewNotifier(tr, "compute.node-1", "notifications")
	rctx := goslo.NewMap("user", "alice", "tenant", "t-42")
	wait := func() { // one line at a time, for a stable output
		select {
		case <-p.printed:
		case <-time.After(5 * time.Second):
			panic("notification not printed")
		}
	}
	_ = n.Info(ctx, rctx, "volume.create.end", goslo.NewMap("volume_id", "v-9")) // filtered out
	_ = n.Info(ctx, rctx, "compute.instance.create.end", goslo.NewMap("instance_id", "i-1", "state", "active", "memory_mb", int64(2048)))
	wait()
	_ = n.Error(ctx, rctx, "compute.instance.delete.error", goslo.NewMap("instance_id", "i-1", "reason", "disk busy"))
	wait()
	// Output:
	// INFO  compute.instance.create.end from compute.node-1 (user alice): {"instance_id": "i-1", "state": "active", "memory_mb": 2048}
	// ERROR compute.instance.delete.error from compute.node-1 (user alice): {"instance_id": "i-1", "reason": "disk busy"}
}
