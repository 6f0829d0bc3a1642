package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/envelope"
)

// agent is the endpoint: exported methods with the handler signature
// become oslo methods (Ping -> "ping", Report -> "report").
type agent struct{ host string }

func (a agent) Ping(context.Context, *goslo.Map, *goslo.Map) (any, error) {
	return "pong from " + a.host, nil
}

func (a agent) Report(_ context.Context, rctx *goslo.Map, args *goslo.Map) (any, error) {
	state, ok := args.Get("state")
	if !ok {
		return nil, envelope.NewRemoteError("builtins", "TypeError", "report() missing 1 required positional argument: 'state'")
	}
	user, _ := rctx.Get("user")
	return goslo.NewMap("host", a.host, "state", state, "seen_by", user), nil
}

type options struct {
	url, topic, host, peerTopic, peerServer string
	once                                    bool
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "zmq+dummy://", "transport URL (zmq+redis://host:port?rpc_zmq_host=... to meet Python services)")
	flag.StringVar(&o.topic, "topic", "agent", "topic this agent serves")
	flag.StringVar(&o.host, "host", "agent-1", "server name of this agent")
	flag.StringVar(&o.peerTopic, "peer-topic", "", "topic of the peer to call (default: this agent itself)")
	flag.StringVar(&o.peerServer, "peer-server", "", "server of the peer to call")
	flag.BoolVar(&o.once, "once", false, "exit after the calls instead of serving")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	tr, err := goslo.NewTransport(ctx, o.url, goslo.WithOptions(func(c *compat.Config) {
		if o.url == "zmq+dummy://" { // one process: loopback only
			c.ZMQ.RPCZMQHost, c.ZMQ.RPCZMQBindAddress = "127.0.0.1", "127.0.0.1"
		}
	}))
	if err != nil {
		return err
	}
	defer tr.Close()

	ep, err := goslo.EndpointOf(agent{host: o.host}, "", "1.0")
	if err != nil {
		return err
	}
	srv, err := goslo.NewRPCServer(tr, goslo.Target{Topic: o.topic, Server: o.host}, ep)
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer srv.Stop(context.Background())
	fmt.Fprintf(out, "serving %s/%s\n", o.topic, o.host)

	peer := goslo.Target{Topic: o.peerTopic, Server: o.peerServer, Version: "1.0"}
	if peer.Topic == "" {
		peer.Topic, peer.Server = o.topic, o.host
	}
	client := goslo.NewRPCClient(tr, peer).Prepare(goslo.PrepareOptions{Timeout: 10 * time.Second})
	rctx := goslo.NewMap("user", "agent", "request_id", "req-example")
	if peer.Topic == o.topic {
		// Calling ourselves: the endpoint's own methods, and a failure.
		res, err := client.Call(ctx, rctx, "ping", nil)
		fmt.Fprintln(out, "ping:", res, err)
		res, err = client.Call(ctx, rctx, "report", goslo.NewMap("state", "up"))
		fmt.Fprintln(out, "report:", envelope.Repr(res), err)
		_, err = client.Call(ctx, rctx, "report", nil)
		var re *goslo.RemoteError
		fmt.Fprintln(out, "report without state:", errors.As(err, &re) && re.Class == "TypeError")
	} else {
		// A Python peer: rpc_peer.py's endpoint has whoami and echo.
		res, err := client.Call(ctx, rctx, "whoami", nil)
		fmt.Fprintln(out, "peer whoami:", res, err)
		res, err = client.Call(ctx, rctx, "echo", goslo.NewMap("from", o.host, "when", time.Now().UTC()))
		fmt.Fprintln(out, "peer echo:", envelope.Repr(res), err)
	}
	if o.once {
		return nil
	}
	<-ctx.Done()
	return nil
}
