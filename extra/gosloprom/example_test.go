package gosloprom_test

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/extra/gosloprom"
)

// A transport counts its messages on a Prometheus registry of yours.
func Example() {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	m, err := gosloprom.New(reg)
	if err != nil {
		panic(err)
	}
	tr, err := goslo.NewTransport(ctx, "zmq+dummy://", goslo.WithDriverObserver(m), goslo.WithOptions(func(c *compat.Config) {
		c.ZMQ.RPCZMQHost, c.ZMQ.RPCZMQBindAddress = "127.0.0.1", "127.0.0.1"
	}))
	if err != nil {
		panic(err)
	}
	defer tr.Close()

	ep := goslo.NewEndpoint("", "1.0").Handle("ping", func(context.Context, *goslo.Map, *goslo.Map) (any, error) { return "pong", nil })
	srv, _ := goslo.NewRPCServer(tr, goslo.Target{Topic: "metrics", Server: "s1"}, ep)
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	defer srv.Stop(ctx)
	client := goslo.NewRPCClient(tr, goslo.Target{Topic: "metrics", Server: "s1"}).Prepare(goslo.PrepareOptions{Timeout: 5 * time.Second})
	fmt.Println(client.Call(ctx, nil, "ping", nil))

	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			if mf.GetName() == "goslo_messages_sent_total" && s.GetCounter().GetValue() > 0 {
				fmt.Println(mf.GetName(), s.GetLabel()[0].GetValue(), s.GetCounter().GetValue())
			}
		}
	}
	// Output:
	// pong <nil>
	// goslo_messages_sent_total CALL 1
	// goslo_messages_sent_total REPLY 1
}
