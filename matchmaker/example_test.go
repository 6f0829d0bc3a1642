package matchmaker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/matchmaker"
)

func Example() {
	ctx := context.Background()
	u, _ := compat.ParseTransportURL("zmq+dummy://")
	mm, err := matchmaker.New(ctx, u, "redis", matchmaker.DefaultConfig())
	if err != nil {
		panic(err)
	}
	defer mm.Close()

	// A direct-mode server keeps its address registered while it runs.
	target := compat.Target{Topic: "compute", Server: "node-1"}
	keeper, _ := matchmaker.StartKeeper(ctx,
		func(ctx context.Context) error {
			return mm.Register(ctx, target, compat.HostPort("10.0.0.5", 49200), compat.Router, 300*time.Second)
		},
		func(ctx context.Context) error {
			return mm.Unregister(ctx, target, compat.HostPort("10.0.0.5", 49200), compat.Router)
		},
		180*time.Second, nil)

	hosts, _ := mm.Hosts(ctx, target, compat.Router)
	fmt.Println(hosts)
	_ = keeper.Stop(ctx)
	hosts, _ = mm.Hosts(ctx, target, compat.Router)
	fmt.Println(hosts)
	// Output:
	// [10.0.0.5:49200]
	// []
}

// ExampleNewDummy shows the reference's aging: a record is visible for its
// expiry, and re-registering refreshes it.
func ExampleNewDummy() {
	ctx := context.Background()
	mm := matchmaker.NewDummy(matchmaker.DefaultConfig())
	defer mm.Close()

	_ = mm.RegisterPublisher(ctx, matchmaker.Publisher{Pub: "10.0.0.9:50003", Frontend: "10.0.0.9:50001"}, 300*time.Second)
	_ = mm.RegisterRouter(ctx, "10.0.0.9:50002", 300*time.Second)
	pubs, _ := mm.Publishers(ctx)
	routers, _ := mm.Routers(ctx)
	fmt.Println(pubs, routers)
	// Output:
	// [{10.0.0.9:50003 10.0.0.9:50001}] [10.0.0.9:50002]
}

// ExampleConfigFrom builds the matchmaker a goslo configuration asks for.
func ExampleConfigFrom() {
	cfg := compat.DefaultConfig("node-1")
	cfg.ZMQ.RPCZMQMatchmaker = "dummy"
	u, _ := compat.ParseTransportURL("zmq://")
	mm, err := matchmaker.New(context.Background(), u, cfg.ZMQ.RPCZMQMatchmaker, matchmaker.ConfigFrom(cfg))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mm.Close()
	fmt.Printf("%T, records live %v, re-registered every %v\n", mm,
		matchmaker.ConfigFrom(cfg).TargetExpire, matchmaker.ConfigFrom(cfg).TargetUpdate)
	// Output:
	// *matchmaker.Dummy, records live 5m0s, re-registered every 3m0s
}

// ExampleUnavailableError shows the typed error of a Redis outage.
func ExampleUnavailableError() {
	err := error(&matchmaker.UnavailableError{Op: "write", Addrs: []string{"127.0.0.1:6379"}})
	var ue *matchmaker.UnavailableError
	fmt.Println(errors.Is(err, matchmaker.ErrMatchmakerUnavailable), errors.As(err, &ue), ue.Addrs)
	// Output:
	// true true [127.0.0.1:6379]
}
