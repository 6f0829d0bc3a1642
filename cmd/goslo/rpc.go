package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
	rabbitdrv "github.com/goslo/goslo/driver/rabbit"
	zmqdrv "github.com/goslo/goslo/driver/zmq"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/extra/gosloprom"
)

// common flags of every bus command.
type busFlags struct {
	url, config, topic, server string
	metrics                    metricsFlag // registered by the long-running commands only
	maskSecrets                bool        // goslo serve only
	minReplyDelay              secondsFlag // goslo serve only
	script                     string      // goslo serve only
}

func (b *busFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.url, "url", "", "transport URL: rabbit://[user:pass@]host:port[,host:port...]/vhost[?option=value] or zmq[+redis|+dummy]://... (default: [DEFAULT] transport_url, else zmq:// with the Redis matchmaker on 127.0.0.1:6379)")
	fs.StringVar(&b.config, "config", "", "oslo INI configuration file")
	fs.StringVar(&b.topic, "topic", "", "target topic")
	fs.StringVar(&b.server, "server", "", "target server")
}

func (b *busFlags) transport(ctx context.Context, stderr io.Writer, extra ...goslo.Option) (*goslo.Transport, error) {
	var opts []goslo.Option
	if b.config != "" {
		data, err := os.ReadFile(b.config)
		if err != nil {
			return nil, err
		}
		host, _ := os.Hostname()
		cfg, err := compat.ParseConfig(host, compat.ConfigFile{Name: b.config, Data: data})
		if err != nil {
			return nil, err
		}
		opts = append(opts, goslo.WithConfig(cfg))
	}
	opts = append(opts, goslo.WithLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	reg, err := b.metrics.start(stderr)
	if err != nil {
		return nil, err
	}
	if reg != nil {
		m, err := gosloprom.New(reg)
		if err != nil {
			b.metrics.close()
			return nil, err
		}
		opts = append(opts, goslo.WithDriverObserver(m))
	}
	opts = append(opts, extra...)
	tr, err := goslo.NewTransport(ctx, b.url, opts...)
	if err != nil {
		b.metrics.close()
	}
	return tr, err
}

func parseJSONMap(what, s string) (*goslo.Map, error) {
	if s == "" {
		return goslo.NewMap(), nil
	}
	v, err := envelope.DecodeJSON([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	m, ok := v.(*goslo.Map)
	if !ok {
		return nil, fmt.Errorf("%s must be a JSON object", what)
	}
	return m, nil
}

func jsonLine(w io.Writer, v any) error {
	b, err := envelope.MarshalJSON(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// untilStopped returns a context cancelled by SIGINT, SIGTERM, or a "quit"
// line on stdin when stdin is given (end of input alone does not stop it,
// so the command also runs with stdin closed, as a daemon).
func untilStopped(stdin io.Reader) (context.Context, context.CancelFunc) {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if stdin != nil {
		go func() {
			sc := bufio.NewScanner(stdin)
			for sc.Scan() {
				if strings.TrimSpace(sc.Text()) == "quit" {
					cancel()
					return
				}
			}
		}()
	}
	return ctx, cancel
}

type builtin struct{ name string }

func (b builtin) Echo(_ context.Context, _ *goslo.Map, args *goslo.Map) (any, error) {
	return args, nil
}
func (b builtin) Context(_ context.Context, rctx *goslo.Map, _ *goslo.Map) (any, error) {
	return rctx, nil
}
func (b builtin) Whoami(context.Context, *goslo.Map, *goslo.Map) (any, error) { return b.name, nil }
func (b builtin) Fail(_ context.Context, _ *goslo.Map, args *goslo.Map) (any, error) {
	m, _ := args.Get("message")
	s, _ := m.(string)
	return nil, envelope.ValueError(s)
}
func (b builtin) Sleep(ctx context.Context, _ *goslo.Map, args *goslo.Map) (any, error) {
	v, _ := args.Get("seconds")
	var d time.Duration
	switch x := v.(type) {
	case int64:
		d = time.Duration(x) * time.Second
	case float64:
		d = time.Duration(x * float64(time.Second))
	default:
		return nil, envelope.NewRemoteError(envelope.ModuleBuiltins, "TypeError", "sleep() needs a number of seconds")
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	return v, nil
}

// runServer is the life of every long-running server command: flags,
// transport, setup, then waiting for SIGINT, SIGTERM or "quit" and a
// bounded clean stop (unregistering).
func runServer(name string, args []string, stdin io.Reader, stderr io.Writer,
	setup func(ctx context.Context, tr *goslo.Transport, b busFlags) (stop func(context.Context) error, err error)) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var b busFlags
	b.register(fs)
	b.metrics.register(fs)
	if name == "serve" {
		fs.BoolVar(&b.maskSecrets, "mask-secrets", false,
			"print each request's context and args with the values of secret keys (auth_token, password, secret, token, ... as oslo.utils' mask_dict_password) replaced by ***")
		secondsVar(fs, &b.minReplyDelay, "min-reply-delay", 0,
			"zmq: hold each reply until this many seconds (at most 1) after its request arrived, so that oslo.messaging 8.1.4 Python clients do not lose fast replies (e.g. 0.005; default 0: off)")
		fs.StringVar(&b.script, "script", "", "answer from a script file (YAML or JSON: namespace, version, methods) instead of the built-in endpoint; SIGHUP reloads it")
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if b.topic == "" {
		fmt.Fprintf(stderr, "goslo %s: --topic is required\n", name)
		return 2
	}
	if b.minReplyDelay.duration() > zmqdrv.MaxMinReplyDelay {
		fmt.Fprintf(stderr, "goslo %s: --min-reply-delay is at most %v\n", name, zmqdrv.MaxMinReplyDelay)
		return 2
	}
	if b.server == "" {
		b.server, _ = os.Hostname()
	}
	ctx, cancel := untilStopped(stdin)
	defer cancel()
	var extra []goslo.Option
	if b.minReplyDelay > 0 {
		extra = append(extra, goslo.WithMinReplyDelay(b.minReplyDelay.duration()))
	}
	tr, err := b.transport(ctx, stderr, extra...)
	if err != nil {
		fmt.Fprintf(stderr, "goslo %s: %v\n", name, err)
		return 1
	}
	defer b.metrics.close()
	defer tr.Close()
	stop, err := setup(ctx, tr, b)
	if err != nil {
		fmt.Fprintf(stderr, "goslo %s: %v\n", name, err)
		return 1
	}
	<-ctx.Done()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	err = stop(sctx)
	// Then the transport, within the same 10 s: queued messages leave,
	// and what is left is closed at once when the time is up.
	if serr := tr.Shutdown(sctx); err == nil && serr != nil {
		err = fmt.Errorf("transport: %w", serr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "goslo %s: stop: %v\n", name, err)
		return 1
	}
	return 0
}

func serve(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runServer("serve", args, stdin, stderr, func(ctx context.Context, tr *goslo.Transport, b busFlags) (func(context.Context) error, error) {
		var mu sync.Mutex
		observe := goslo.WithObserver(func(r goslo.RequestInfo) {
			mu.Lock()
			defer mu.Unlock()
			var args, rctx any = r.Args, r.Context
			if b.maskSecrets {
				args, rctx = maskSecrets(r.Args), maskSecrets(r.Context)
			}
			_ = jsonLine(stdout, goslo.NewMap("type", r.Type, "method", r.Method, "args", args, "context", rctx, "message_id", r.MessageID))
		})
		target := goslo.Target{Topic: b.topic, Server: b.server}
		if b.script != "" {
			return serveScript(ctx, tr, target, b.script, stderr, observe)
		}
		ep, _ := goslo.EndpointOf(builtin{name: b.server}, "", "1.0")
		srv, err := goslo.NewRPCServer(tr, target, ep, observe)
		if err != nil {
			return nil, err
		}
		if err := srv.Start(ctx); err != nil {
			return nil, err
		}
		return srv.Stop, nil
	})
}

func callOrCast(mode string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var b busFlags
	b.register(fs)
	fanout := fs.Bool("fanout", false, "send to every server of the topic (cast only)")
	var timeout secondsFlag
	secondsVar(fs, &timeout, "timeout", 0, "call timeout in seconds, 0 to 1e9 (default: rpc_response_timeout)")
	version := fs.String("version", "", "target version")
	namespace := fs.String("namespace", "", "target namespace")
	rctxJSON := fs.String("context", "", "request context as a JSON object")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if b.topic == "" || fs.NArg() < 1 || fs.NArg() > 2 {
		fmt.Fprintf(stderr, "usage: goslo %s --url URL --topic T [--server S] [...] METHOD [ARGS_JSON]\n", mode)
		return 2
	}
	rctx, err := parseJSONMap("--context", *rctxJSON)
	if err != nil {
		fmt.Fprintln(stderr, "goslo:", err)
		return 2
	}
	margs, err := parseJSONMap("ARGS_JSON", fs.Arg(1))
	if err != nil {
		fmt.Fprintln(stderr, "goslo:", err)
		return 2
	}
	ctx := context.Background()
	tr, err := b.transport(ctx, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "goslo:", err)
		return 1
	}
	defer tr.Close()
	cl := goslo.NewRPCClient(tr, goslo.Target{Topic: b.topic, Version: *version}).Prepare(goslo.PrepareOptions{
		Server: b.server, Fanout: *fanout, Namespace: *namespace, Timeout: timeout.duration()})
	if mode == "cast" {
		if err := cl.Cast(ctx, rctx, fs.Arg(0), margs); err != nil {
			fmt.Fprintln(stderr, "goslo cast:", err)
			return 1
		}
		return 0
	}
	res, err := cl.Call(ctx, rctx, fs.Arg(0), margs)
	var re *goslo.RemoteError
	switch {
	case errors.As(err, &re):
		fmt.Fprintf(stderr, "remote error: class=%s module=%s message=%s\n", re.Class, re.Module, re.Message)
		return 1
	case errors.Is(err, goslo.ErrMessagingTimeout):
		fmt.Fprintln(stderr, "MessagingTimeout:", err)
		return 1
	case err != nil:
		fmt.Fprintln(stderr, "goslo call:", err)
		return 1
	}
	if err := jsonLine(stdout, res); err != nil {
		fmt.Fprintln(stderr, "goslo call: result:", err)
		return 1
	}
	return 0
}

func notifyCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("notify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var b busFlags
	b.register(fs)
	priority := fs.String("priority", "info", "audit, debug, info, warn, error, critical or sample")
	eventType := fs.String("event-type", "", "event type")
	publisher := fs.String("publisher-id", "goslo", "publisher id")
	rctxJSON := fs.String("context", "", "request context as a JSON object")
	format := fs.String("driver", "", "notification format, as [oslo_messaging_notifications] driver: messagingv2 (enveloped, the default) or messaging (1.0, bare); zmq sends both bare")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if b.topic == "" || *eventType == "" || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: goslo notify --url URL --topic T --priority P --event-type E [--publisher-id ID] [--driver messaging|messagingv2] PAYLOAD_JSON")
		return 2
	}
	var extra []goslo.Option
	switch *format {
	case "":
		// [oslo_messaging_notifications] driver of --config, else messagingv2.
	case "messaging", "messagingv2":
		f := *format
		extra = append(extra, goslo.WithOptions(func(c *compat.Config) { c.Notifications.Driver = []string{f} }))
	default:
		fmt.Fprintf(stderr, "goslo notify: --driver %q: messaging or messagingv2\n", *format)
		return 2
	}
	prio, err := envelope.NormalizePriority(*priority)
	if err != nil {
		fmt.Fprintln(stderr, "goslo notify:", err)
		return 2
	}
	rctx, err := parseJSONMap("--context", *rctxJSON)
	if err != nil {
		fmt.Fprintln(stderr, "goslo:", err)
		return 2
	}
	payload, err := envelope.DecodeJSON([]byte(fs.Arg(0)))
	if err != nil {
		fmt.Fprintln(stderr, "goslo notify: PAYLOAD_JSON:", err)
		return 2
	}
	ctx := context.Background()
	tr, err := b.transport(ctx, stderr, extra...)
	if err != nil {
		fmt.Fprintln(stderr, "goslo:", err)
		return 1
	}
	defer tr.Close()
	n := goslo.NewNotifier(tr, *publisher, b.topic)
	send := map[string]func(context.Context, *goslo.Map, string, any) error{
		"AUDIT": n.Audit, "DEBUG": n.Debug, "INFO": n.Info, "WARN": n.Warn, "ERROR": n.Error, "CRITICAL": n.Critical, "SAMPLE": n.Sample,
	}[prio]
	if err := send(ctx, rctx, *eventType, payload); err != nil {
		fmt.Fprintln(stderr, "goslo notify:", err)
		return 1
	}
	return 0
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func listenCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("listen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var b busFlags
	b.register(fs)
	b.metrics.register(fs)
	var prios multiFlag
	fs.Var(&prios, "priority", "priority to listen to (repeatable; default: all)")
	count := fs.Int("count", 0, "exit after N notifications")
	pool := fs.String("pool", "", "listener pool (RabbitMQ): listeners of one pool share the notifications, through a queue of that name")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if b.topic == "" {
		fmt.Fprintln(stderr, "goslo listen: --topic is required")
		return 2
	}
	if len(prios) == 0 {
		prios = multiFlag{"audit", "debug", "info", "warn", "error", "critical", "sample"}
	}
	ctx, cancel := untilStopped(stdin)
	defer cancel()
	tr, err := b.transport(ctx, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "goslo listen:", err)
		return 1
	}
	defer b.metrics.close()
	defer tr.Close()
	if _, rabbit := tr.Driver().(*rabbitdrv.Transport); *pool != "" && !rabbit {
		fmt.Fprintln(stderr, "goslo listen: --pool needs a RabbitMQ transport (rabbit://): zmq has no listener pools (every listener of a topic gets every notification)")
		return 2
	}
	var mu sync.Mutex
	seen := 0
	h := func(_ context.Context, n goslo.Notification) error {
		mu.Lock()
		defer mu.Unlock()
		_ = jsonLine(stdout, goslo.NewMap("priority", strings.ToLower(n.Priority), "publisher_id", n.PublisherID, "event_type", n.EventType,
			"payload", n.Payload, "context", n.Context, "metadata", goslo.NewMap("message_id", n.MessageID, "timestamp", n.Timestamp)))
		seen++
		if *count > 0 && seen >= *count {
			cancel()
		}
		return nil
	}
	ep := &goslo.NotificationEndpoint{Handlers: map[string]goslo.NotificationHandler{}}
	for _, p := range prios {
		ep.Handlers[strings.ToLower(p)] = h
	}
	l := goslo.NewNotificationListener(tr, []string{b.topic}, ep)
	l.WithPool(*pool)
	if err := l.Start(ctx); err != nil {
		fmt.Fprintln(stderr, "goslo listen:", err)
		return 1
	}
	<-ctx.Done()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	_ = l.Stop(sctx)
	return 0
}
