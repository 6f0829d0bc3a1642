package matchmaker_test

import (
	"context"
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
