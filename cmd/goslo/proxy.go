package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/goslo/goslo/compat"
	driver "github.com/goslo/goslo/driver/zmq"
	"github.com/goslo/goslo/extra/gosloprom"
	"github.com/goslo/goslo/matchmaker"
)

// portFlag is a port flag of the proxy: a TCP port 1..65535, or 0 for
// the config's value (else random). The reference's argparse takes any
// int, and libzmq then binds the port modulo 65536 while the proxy
// registers the number given.
type portFlag int

func (p *portFlag) String() string {
	if p == nil {
		return "0"
	}
	return strconv.Itoa(int(*p))
}

func (p *portFlag) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, strconv.IntSize)
	if err != nil {
		return errors.New("not an integer")
	}
	if n < 0 || n > 65535 {
		return fmt.Errorf("port %d is not a TCP port (1..65535, or 0 for the config's or a random one)", n)
	}
	*p = portFlag(n)
	return nil
}

// proxyCmd is oslo-messaging-zmq-proxy with the same flags and config:
// [zmq_proxy_opts] and the [oslo_messaging_zmq] options it reads come from
// --config-file; flags override [zmq_proxy_opts] when given non-zero, as
// the reference's argparse does; the matchmaker comes from the URL
// (zmq_proxy_opts.url), whose query parameters are not applied. SIGINT and
// SIGTERM both remove the proxy's records before it exits (the reference
// removes them on SIGINT only: SIGTERM, systemd's stop signal, kills the
// Python process without cleanup and leaves clients routing to a dead proxy
// until zmq_target_expire). A "quit" line on stdin acts as SIGINT.
func proxyCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("goslo proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		configFile, logFile, host, url string
		fe, be, pub                    int
		local, ack, debug              bool
	)
	str := func(p *string, short, long, help string) {
		fs.StringVar(p, short, "", help)
		fs.StringVar(p, long, "", help)
	}
	num := func(p *int, short, long, help string) {
		fs.Var((*portFlag)(p), short, help)
		fs.Var((*portFlag)(p), long, help)
	}
	boolean := func(p *bool, short, long, help string) {
		fs.BoolVar(p, short, false, help)
		fs.BoolVar(p, long, false, help)
	}
	str(&configFile, "c", "config-file", "Path to configuration file")
	str(&logFile, "l", "log-file", "Path to log file")
	str(&host, "H", "host", "Host FQDN for current proxy")
	num(&fe, "f", "frontend-port", "Front-end ROUTER port number")
	num(&be, "b", "backend-port", "Back-end ROUTER port number")
	num(&pub, "p", "publisher-port", "Back-end PUBLISHER port number")
	boolean(&local, "lp", "local-publisher", "Specify publisher/subscriber local proxy.")
	boolean(&ack, "a", "ack-pub-sub", "Acknowledge PUB/SUB messages")
	str(&url, "u", "url", "Transport URL with configurations")
	boolean(&debug, "d", "debug", "Turn on DEBUG logging level instead of INFO")
	var mf metricsFlag
	mf.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "goslo proxy: unexpected arguments %q\n", fs.Args())
		return 2
	}
	logOut := stderr
	if logFile != "" {
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(stderr, "goslo proxy:", err)
			return 1
		}
		defer f.Close()
		logOut = f
	}
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))

	hostname, _ := os.Hostname()
	cfg := compat.DefaultConfig(hostname)
	if configFile != "" {
		data, err := os.ReadFile(configFile)
		if err != nil {
			fmt.Fprintln(stderr, "goslo proxy:", err)
			return 1
		}
		if cfg, err = compat.ParseConfig(hostname, compat.ConfigFile{Name: configFile, Data: data}); err != nil {
			fmt.Fprintln(stderr, "goslo proxy:", err)
			return 1
		}
	}
	p := &cfg.ZMQProxy
	if host != "" {
		p.Host = host
	}
	if fe != 0 {
		p.FrontendPort = fe
	}
	if be != 0 {
		p.BackendPort = be
	}
	if pub != 0 {
		p.PublisherPort = pub
	}
	if local {
		p.LocalPublisher = true
	}
	if ack {
		p.AckPubSub = true
	}
	if url != "" {
		p.URL = url
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "goslo proxy:", err)
		return 1
	}
	u, err := compat.ParseTransportURL(p.URL)
	if err != nil {
		fmt.Fprintln(stderr, "goslo proxy:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mcfg := matchmaker.ConfigFrom(cfg)
	mcfg.Logger = log
	mm, err := matchmaker.New(ctx, u, cfg.ZMQ.RPCZMQMatchmaker, mcfg)
	if err != nil {
		fmt.Fprintln(stderr, "goslo proxy:", err)
		return 1
	}
	defer mm.Close()
	reg, err := mf.start(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "goslo proxy:", err)
		return 1
	}
	defer mf.close()
	var m *gosloprom.Metrics
	if reg != nil {
		if m, err = gosloprom.New(reg); err != nil {
			fmt.Fprintln(stderr, "goslo proxy:", err)
			return 1
		}
		mm = m.Matchmaker(mm)
	}
	opts := driver.ProxyOptionsFrom(cfg)
	opts.Logger = log
	px, err := driver.NewProxy(ctx, mm, opts)
	if err != nil {
		fmt.Fprintln(stderr, "goslo proxy:", err)
		return 1
	}
	if m != nil {
		if err := m.Proxy(px); err != nil {
			px.Close()
			fmt.Fprintln(stderr, "goslo proxy:", err)
			return 1
		}
	}
	// Catch the signals before saying ready: one sent right after the
	// ready line would otherwise kill the proxy with its records in place.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	_ = jsonLine(stdout, map[string]any{"proxy": px.Kind().String(), "frontend": px.Frontend(),
		"backend": px.Backend(), "publisher": px.Publisher(), "pid": os.Getpid()})
	quit := make(chan struct{})
	go func() {
		if stdin == nil {
			return
		}
		buf := make([]byte, 0, 64)
		one := make([]byte, 1)
		for {
			n, err := stdin.Read(one)
			if n == 1 {
				if one[0] == '\n' {
					if string(buf) == "quit" {
						close(quit)
						return
					}
					buf = buf[:0]
				} else if len(buf) < 64 {
					buf = append(buf, one[0])
				}
			}
			if err != nil {
				return
			}
		}
	}()
	var sig os.Signal = os.Interrupt
	select {
	case sig = <-sigs:
	case <-quit:
	}
	st := px.Stats()
	log.Info("Proxy shutting down ...", "signal", sig.String(), "front_to_back", st.FrontToBack,
		"back_to_front", st.BackToFront, "published", st.Published, "acked", st.Acked, "dropped", st.Dropped)
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := px.Stop(sctx); err != nil {
		log.Warn("proxy records not removed", "err", err)
	}
	return 0
}
