package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/envelope"
)

type demoEndpoint struct{}

func (demoEndpoint) Echo(_ context.Context, _ *goslo.Map, args *goslo.Map) (any, error) {
	return args, nil
}

func (demoEndpoint) Fail(_ context.Context, _ *goslo.Map, args *goslo.Map) (any, error) {
	m, _ := args.Get("message")
	s, _ := m.(string)
	return nil, envelope.ValueError(s)
}

// demo runs the main job embedded in one process: the dummy matchmaker
// (zmq+dummy://; a plain zmq:// would follow rpc_zmq_matchmaker, redis by
// default as in oslo) and real zmq sockets on loopback. A server and two
// fanout peers, a client doing a call, a cast, a fanout and a failing
// call, and a notifier with a listener.
func demo(w io.Writer) error {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tr, err := goslo.NewTransport(ctx, "zmq+dummy://", goslo.WithLogger(quiet), goslo.WithOptions(func(c *compat.Config) {
		c.ZMQ.RPCZMQHost = "127.0.0.1"
		c.ZMQ.RPCZMQBindAddress = "127.0.0.1"
	}))
	if err != nil {
		return err
	}
	defer tr.Close()
	p("goslo demo: zmq direct mode on loopback, dummy matchmaker, %s payloads", tr.Codec().Name())

	var mu sync.Mutex
	seen := map[string][]string{}
	record := func(server string) goslo.Handler {
		return func(_ context.Context, _ *goslo.Map, args *goslo.Map) (any, error) {
			mu.Lock()
			seen[server] = append(seen[server], envelope.Repr(args))
			mu.Unlock()
			return nil, nil
		}
	}
	ep, err := goslo.EndpointOf(demoEndpoint{}, "", "1.3")
	if err != nil {
		return err
	}
	var servers []*goslo.RPCServer
	for _, name := range []string{"srv1", "srv2", "srv3"} {
		e := ep
		if name != "srv1" {
			e = goslo.NewEndpoint("", "1.3").Handle("echo", record(name))
		} else {
			ep.Handle("ping", record(name))
		}
		s, err := goslo.NewRPCServer(tr, goslo.Target{Topic: "demo", Server: name}, e)
		if err != nil {
			return err
		}
		if err := s.Start(ctx); err != nil {
			return err
		}
		servers = append(servers, s)
	}
	p("servers srv1, srv2, srv3 listen on topic demo")

	client := goslo.NewRPCClient(tr, goslo.Target{Topic: "demo", Version: "1.0"})
	rctx := goslo.NewMap("user", "alice", "request_id", "req-1")
	to1 := client.Prepare(goslo.PrepareOptions{Server: "srv1", Timeout: 10 * time.Second})
	res, err := to1.Call(ctx, rctx, "echo", goslo.NewMap("greeting", "h\u00e9llo", "n", int64(42)))
	if err != nil {
		return err
	}
	p("call  echo(greeting='h\u00e9llo', n=42) on srv1 -> %s", envelope.Repr(res))

	if err := to1.Cast(ctx, rctx, "ping", goslo.NewMap("seq", int64(1))); err != nil {
		return err
	}
	fan := true
	if err := client.Prepare(goslo.PrepareOptions{Fanout: fan}).Cast(ctx, rctx, "echo", goslo.NewMap("to", "all")); err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(seen["srv1"]) + len(seen["srv2"]) + len(seen["srv3"])
		mu.Unlock()
		if n >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	p("cast  ping(seq=1) to srv1 -> srv1 got %v", seen["srv1"])
	p("fanout echo(to='all') -> srv2 got %v, srv3 got %v (and srv1 echoed it)", seen["srv2"], seen["srv3"])
	mu.Unlock()

	_, err = to1.Call(ctx, rctx, "fail", goslo.NewMap("message", "kaboom"))
	var re *goslo.RemoteError
	if !errors.As(err, &re) {
		return fmt.Errorf("expected a remote error, got %v", err)
	}
	p("call  fail(message='kaboom') -> %s.%s: %s", re.Module, re.Class, re.Message)
	_, err = to1.Call(ctx, rctx, "nope", nil)
	if !errors.As(err, &re) || !errors.Is(err, goslo.ErrNoSuchMethod) {
		return fmt.Errorf("expected NoSuchMethod, got %v", err)
	}
	p("call  nope() -> %s: %s", re.Class, re.Message)

	got := make(chan goslo.Notification, 1)
	l := goslo.NewNotificationListener(tr, []string{"notifications"}, &goslo.NotificationEndpoint{
		Handlers: map[string]goslo.NotificationHandler{"info": func(_ context.Context, n goslo.Notification) error {
			got <- n
			return nil
		}},
	})
	if err := l.Start(ctx); err != nil {
		return err
	}
	if err := goslo.NewNotifier(tr, "compute.host-1").Info(ctx, rctx, "compute.instance.create.end", goslo.NewMap("instance_id", "i-1")); err != nil {
		return err
	}
	select {
	case n := <-got:
		p("notify INFO compute.instance.create.end -> listener got %s from %s, payload %s", n.EventType, n.PublisherID, envelope.Repr(n.Payload))
	case <-ctx.Done():
		return errors.New("the notification never arrived")
	}
	if err := l.Stop(ctx); err != nil {
		return err
	}
	for _, s := range servers {
		if err := s.Stop(ctx); err != nil {
			return err
		}
	}
	p("done: servers and listener stopped and unregistered.")
	return nil
}
