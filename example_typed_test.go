package goslo_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
)

// localTransport is an in-process bus for the examples: zmq with the dummy
// matchmaker on 127.0.0.1. Use zmq+redis://host:port, or
// rabbit://user:pass@host:5672/, to meet Python services.
func localTransport() *goslo.Transport {
	tr, err := goslo.NewTransport(context.Background(), "zmq+dummy://", goslo.WithOptions(func(c *compat.Config) {
		c.ZMQ.RPCZMQHost, c.ZMQ.RPCZMQBindAddress = "127.0.0.1", "127.0.0.1"
	}))
	if err != nil {
		panic(err)
	}
	return tr
}

// RequestSpec and Host are the arguments and result of a scheduler call.
// Their json tags are the keyword arguments and dict keys Python sees.
type RequestSpec struct {
	NumInstances int               `json:"num_instances"`
	FlavorID     string            `json:"flavor_id"`
	Hints        map[string]string `json:"scheduler_hints,omitempty"`
}

type SelectArgs struct {
	Spec       RequestSpec `json:"spec_obj"`
	Alternates bool        `json:"return_alternates"`
}

type Host struct {
	Name     string    `json:"host"`
	FreeRAM  int       `json:"free_ram_mb"`
	Updated  time.Time `json:"updated_at"`
	Disabled bool      `json:"disabled,omitempty"`
}

// A typed handler takes the caller's keyword arguments as a struct and
// returns a struct (here a list of them), which Python receives as dicts.
// CallAs is the typed call.
func ExampleHandle() {
	ctx := context.Background()
	tr := localTransport()
	defer tr.Close()

	ep := goslo.NewEndpoint("", "1.0")
	goslo.Handle(ep, "select_destinations", func(ctx context.Context, a SelectArgs) ([]Host, error) {
		if a.Spec.NumInstances < 1 {
			return nil, goslo.ValueError("num_instances must be at least 1")
		}
		at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
		return []Host{{Name: "compute-1", FreeRAM: 2048, Updated: at}, {Name: "compute-2", FreeRAM: 1024, Updated: at}}[:a.Spec.NumInstances], nil
	})
	srv, err := goslo.NewRPCServer(tr, goslo.Target{Topic: "scheduler", Server: "sched-1"}, ep)
	if err != nil {
		panic(err)
	}
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	defer srv.Stop(ctx)

	client := goslo.NewRPCClient(tr, goslo.Target{Topic: "scheduler", Version: "1.0"})
	hosts, err := goslo.CallAs[[]Host](ctx, client, goslo.NewMap("user_id", "u1"), "select_destinations",
		SelectArgs{Spec: RequestSpec{NumInstances: 2, FlavorID: "m1.small"}})
	fmt.Println(hosts[0].Name, hosts[1].FreeRAM, hosts[0].Updated.Format(time.RFC3339), err)

	_, err = goslo.CallAs[[]Host](ctx, client, nil, "select_destinations", SelectArgs{})
	fmt.Println(err)
	// Output:
	// compute-1 1024 2024-05-06T07:08:09Z <nil>
	// Remote error: ValueError num_instances must be at least 1
}

// Structs travel as the dicts a Python endpoint would send: json tags name
// the keys, omitempty drops empty fields, time.Time is oslo's datetime.
// Untyped results decode into structs with Decode, which names the field
// that does not fit.
func ExampleDecode() {
	ctx := context.Background()
	tr := localTransport()
	defer tr.Close()

	ep := goslo.NewEndpoint("", "")
	goslo.Handle(ep, "get_host", func(context.Context, *goslo.Map) (Host, error) {
		return Host{Name: "compute-1", FreeRAM: 512, Updated: time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)}, nil
	})
	srv, _ := goslo.NewRPCServer(tr, goslo.Target{Topic: "hosts", Server: "h"}, ep)
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	defer srv.Stop(ctx)

	res, _ := goslo.NewRPCClient(tr, goslo.Target{Topic: "hosts"}).Call(ctx, nil, "get_host", nil)
	fmt.Println(res) // what a Python caller gets, as a Python dict

	var h Host
	fmt.Println(goslo.Decode(res, &h), h.Name, h.Updated.Nanosecond())
	var wrong struct {
		FreeRAM string `json:"free_ram_mb"`
	}
	fmt.Println(goslo.Decode(res, &wrong))
	// Output:
	// {"host": "compute-1", "free_ram_mb": 512, "updated_at": "2024-05-06T07:08:09.123456"}
	// <nil> compute-1 123456000
	// envelope: cannot decode free_ram_mb (an int) into Go string
}

// Middleware wraps every handler of a server: here one logs, one refuses
// callers without a role, one counts calls per method. RequestFrom tells
// them which request they serve.
func ExampleWithMiddleware() {
	ctx := context.Background()
	tr := localTransport()
	defer tr.Close()

	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "message_id" {
				return slog.Attr{} // not reproducible
			}
			return a
		}}))
	logging := func(next goslo.Handler) goslo.Handler {
		return func(ctx context.Context, rctx, args *goslo.Map) (any, error) {
			info, _ := goslo.RequestFrom(ctx)
			res, err := next(ctx, rctx, args)
			logger.Info("rpc", "method", info.Method, "type", info.Type, "message_id", info.MessageID, "err", err)
			return res, err
		}
	}
	requireAdmin := func(next goslo.Handler) goslo.Handler {
		return func(ctx context.Context, rctx, args *goslo.Map) (any, error) {
			if roles, _ := rctx.Get("roles"); !hasRole(roles, "admin") {
				return nil, goslo.NewRemoteError("nova.exception", "Forbidden", "admin required")
			}
			return next(ctx, rctx, args)
		}
	}
	var mu sync.Mutex
	calls := map[string]int{}
	metrics := func(next goslo.Handler) goslo.Handler {
		return func(ctx context.Context, rctx, args *goslo.Map) (any, error) {
			info, _ := goslo.RequestFrom(ctx)
			mu.Lock()
			calls[info.Method]++
			mu.Unlock()
			return next(ctx, rctx, args)
		}
	}

	ep := goslo.NewEndpoint("", "")
	goslo.Handle(ep, "reboot", func(context.Context, struct {
		ID string `json:"instance_id"`
	}) (bool, error) {
		return true, nil
	})
	srv, err := goslo.NewRPCServer(tr, goslo.Target{Topic: "compute", Server: "c1"}, ep,
		goslo.WithMiddleware(logging, metrics, requireAdmin))
	if err != nil {
		panic(err)
	}
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	defer srv.Stop(ctx)

	client := goslo.NewRPCClient(tr, goslo.Target{Topic: "compute"})
	ok, err := client.Call(ctx, goslo.NewMap("roles", []any{"admin"}), "reboot", goslo.NewMap("instance_id", "i-1"))
	fmt.Println(ok, err)
	_, err = client.Call(ctx, goslo.NewMap("roles", []any{"reader"}), "reboot", goslo.NewMap("instance_id", "i-1"))
	fmt.Println(err)
	mu.Lock()
	fmt.Println("calls:", calls)
	mu.Unlock()
	// Output:
	// level=INFO msg=rpc method=reboot type=call err=<nil>
	// true <nil>
	// level=INFO msg=rpc method=reboot type=call err="Remote error: nova.exception.Forbidden admin required"
	// Remote error: nova.exception.Forbidden admin required
	// calls: map[reboot:2]
}

func hasRole(roles any, want string) bool {
	l, _ := roles.([]any)
	for _, r := range l {
		if r == want {
			return true
		}
	}
	return false
}

// A handler finds the request it serves in its context: message id,
// method, namespace, version, the server's target, the caller's deadline
// when the bus carries it, and the request context.
func ExampleRequestFrom() {
	ctx := context.Background()
	tr := localTransport()
	defer tr.Close()

	ep := goslo.NewEndpoint("compute", "5.1")
	goslo.Handle(ep, "describe", func(ctx context.Context, _ *goslo.Map) (string, error) {
		info, _ := goslo.RequestFrom(ctx)
		user, _ := info.RequestContext.Get("user_id")
		keys := info.Args.Keys()
		sort.Strings(keys)
		return fmt.Sprintf("%s %s ns=%s v=%s on %s by %v args=%v id=%t deadline=%t",
			info.Type, info.Method, info.Namespace, info.Version, info.Target.Server, user, keys,
			info.MessageID != "", !info.Deadline.IsZero()), nil
	})
	srv, _ := goslo.NewRPCServer(tr, goslo.Target{Topic: "compute", Server: "c1"}, ep)
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	defer srv.Stop(ctx)

	client := goslo.NewRPCClient(tr, goslo.Target{Topic: "compute", Namespace: "compute", Version: "5.0"})
	s, err := goslo.CallAs[string](ctx, client, goslo.NewMap("user_id", "u1"), "describe", goslo.NewMap("b", 1, "a", 2))
	fmt.Println(s, err)
	// Output:
	// call describe ns=compute v=5.0 on c1 by u1 args=[a b] id=true deadline=false <nil>
}

// CanSendVersion is the rpcapi idiom for rolling upgrades: send the new
// version only when the version cap (the oldest service's) allows it.
func ExampleRPCClient_CanSendVersion() {
	tr := localTransport()
	defer tr.Close()

	base := goslo.NewRPCClient(tr, goslo.Target{Topic: "compute", Version: "5.0"})
	client := base.Prepare(goslo.PrepareOptions{VersionCap: "5.1"}) // from [upgrade_levels] compute
	for _, v := range []string{"5.2", "5.1"} {
		if client.CanSendVersion(v) {
			fmt.Println("sending", v)
			break
		}
		fmt.Println("cannot send", v)
	}
	// Prepare can also take a server or a version away again.
	cctxt := client.Prepare(goslo.PrepareOptions{Server: "compute-1", Version: "5.1"})
	fmt.Println(cctxt.Target().Server, cctxt.Prepare(goslo.PrepareOptions{Clear: goslo.ClearServer}).Target().Server == "")
	// Output:
	// cannot send 5.2
	// sending 5.1
	// compute-1 true
}
