package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/goslo/goslo"
)

// scriptedServer is goslo serve --script: an RPC server whose endpoint
// answers from the current script, reloaded on SIGHUP.
type scriptedServer struct {
	tr      *goslo.Transport
	target  goslo.Target
	file    string
	stderr  io.Writer
	observe goslo.ServerOption
	cur     atomic.Pointer[script]

	mu  sync.Mutex // srv, and one reload at a time
	srv *goslo.RPCServer
}

// serveScript loads file (refusing a bad one), starts the server and
// reloads the script on SIGHUP until the returned stop runs.
func serveScript(ctx context.Context, tr *goslo.Transport, target goslo.Target, file string, stderr io.Writer, observe goslo.ServerOption) (func(context.Context) error, error) {
	s, err := loadScript(file, target.Server)
	if err != nil {
		return nil, err
	}
	ss := &scriptedServer{tr: tr, target: target, file: file, stderr: stderr, observe: observe}
	ss.cur.Store(s)
	if err := ss.start(ctx, s); err != nil {
		return nil, err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-hup:
				ss.reload(ctx)
			case <-done:
				return
			}
		}
	}()
	return func(sctx context.Context) error {
		signal.Stop(hup)
		close(done)
		wg.Wait()
		ss.mu.Lock()
		defer ss.mu.Unlock()
		return ss.srv.Stop(sctx)
	}, nil
}

// endpoint is the endpoint of s's shape; each method answers from the
// script current when the request arrives.
func (ss *scriptedServer) endpoint(s *script) *goslo.Endpoint {
	ep := goslo.NewEndpoint(s.namespace, s.version)
	for _, name := range s.names {
		ep.Handle(name, func(ctx context.Context, rctx, args *goslo.Map) (any, error) {
			return ss.cur.Load().answer(ctx, name, rctx, args)
		})
	}
	return ep
}

func (ss *scriptedServer) start(ctx context.Context, s *script) error {
	srv, err := goslo.NewRPCServer(ss.tr, ss.target, ss.endpoint(s), ss.observe)
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	ss.mu.Lock()
	ss.srv = srv
	ss.mu.Unlock()
	return nil
}

// reload reads the script again. A bad script is refused (the running one
// stays). When only answers changed, the new script takes over at once;
// when the namespace, the version or the set of methods changed, the
// server is stopped (in-flight requests finish) and started anew with the
// new endpoint.
func (ss *scriptedServer) reload(ctx context.Context) {
	s, err := loadScript(ss.file, ss.target.Server)
	if err != nil {
		fmt.Fprintf(ss.stderr, "goslo serve: reload refused, keeping the running script: %v\n", err)
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	old := ss.cur.Load()
	if old.sameShape(s) {
		ss.cur.Store(s)
		fmt.Fprintf(ss.stderr, "goslo serve: script %s reloaded\n", ss.file)
		return
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ss.srv.Stop(sctx); err != nil {
		fmt.Fprintf(ss.stderr, "goslo serve: reload: stop: %v\n", err)
	}
	ss.cur.Store(s)
	srv, err := goslo.NewRPCServer(ss.tr, ss.target, ss.endpoint(s), ss.observe)
	if err == nil {
		err = srv.Start(ctx)
	}
	if err != nil {
		// Serve the old endpoint again rather than nothing.
		fmt.Fprintf(ss.stderr, "goslo serve: reload: %v; restarting with the previous script\n", err)
		ss.cur.Store(old)
		if err := ss.srv.Start(ctx); err != nil {
			fmt.Fprintf(ss.stderr, "goslo serve: reload: restart: %v\n", err)
		}
		return
	}
	ss.srv = srv
	fmt.Fprintf(ss.stderr, "goslo serve: script %s reloaded (new endpoint: namespace %q, version %s, %d methods)\n", ss.file, s.namespace, s.version, len(s.names))
}
