package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/bridge"
	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/extra/gosloprom"
)

// listFlag is a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// bridgeSettings are goslo bridge's settings, from flags and the [bridge]
// section of --config (flags add to list settings and override the
// others).
type bridgeSettings struct {
	urls, topics, notifications, servers listFlag
	config, group, pool, exchange, names string
	discoverEvery, callTimeout, drain    secondsFlag
	logLevel                             string
	metrics                              metricsFlag
	// cliServers are the --server flags and set the flags given: a SIGHUP
	// re-reads --config's servers on top of them.
	cliServers listFlag
	set        map[string]bool
}

// bridgeCmd is `goslo bridge`: it joins two buses until SIGINT, SIGTERM or
// a "quit" line on stdin, then drains in-flight calls (--drain seconds).
func bridgeCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("goslo bridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s bridgeSettings
	s.discoverEvery, s.callTimeout, s.drain = 5, 60, 30
	fs.Var(&s.urls, "url", "transport URL of a bus (twice: the two buses joined)")
	fs.Var(&s.topics, "topic", "RPC topic to bridge (repeat or comma-separate)")
	fs.Var(&s.notifications, "notifications", "notification topic to bridge, every priority (repeat or comma-separate)")
	fs.Var(&s.servers, "server", "a RabbitMQ server to mirror onto the other bus: [TOPIC:]NAME, or a=.../b=... to name the bus when both are RabbitMQ")
	fs.StringVar(&s.config, "config", "", "INI file: oslo's sections for the transports, and [bridge] with url, topic(s), notifications, server(s), group, pool, exchange, names, discover_every, call_timeout, drain; SIGHUP re-reads its server(s)")
	fs.StringVar(&s.group, "group", "", "bridges of one group share the work: one forwards fanouts and notifications (default goslo-bridge)")
	fs.StringVar(&s.pool, "pool", "", "notification pool prefix: the bridge reads RabbitMQ notifications from queue POOL.TOPIC (default goslo-bridge)")
	fs.StringVar(&s.exchange, "exchange", "", "target exchange (default: the control exchange)")
	fs.StringVar(&s.names, "names", "", "the two buses' names in logs and metrics, comma-separated (default: their schemes)")
	fs.Var(&s.discoverEvery, "discover-every", "seconds between discovery rounds")
	fs.Var(&s.callTimeout, "call-timeout", "seconds a forwarded CALL may take when its caller's deadline is not on the wire (zmq)")
	fs.Var(&s.drain, "drain", "seconds to let in-flight calls finish at shutdown")
	fs.StringVar(&s.logLevel, "log-level", "info", "debug (one line per forwarded message, with both ids), info, warn or error")
	s.metrics.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "goslo bridge: unexpected arguments %q\n", fs.Args())
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	s.cliServers, s.set = slices.Clone(s.servers), set
	var cfgData []byte
	if s.config != "" {
		var err error
		if cfgData, err = os.ReadFile(s.config); err != nil {
			fmt.Fprintln(stderr, "goslo bridge:", err)
			return 2
		}
		if err := s.fromINI(cfgData, set); err != nil {
			fmt.Fprintln(stderr, "goslo bridge:", s.config+":", err)
			return 2
		}
	}
	if len(s.urls) != 2 {
		fmt.Fprintf(stderr, "goslo bridge: two --url are needed (got %d)\n", len(s.urls))
		return 2
	}
	if len(s.topics) == 0 && len(s.notifications) == 0 {
		fmt.Fprintln(stderr, "goslo bridge: nothing to bridge: give --topic and/or --notifications")
		return 2
	}
	if s.group == "" {
		s.group = "goslo-bridge"
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(s.logLevel)); err != nil {
		fmt.Fprintln(stderr, "goslo bridge: --log-level:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	if err := runBridge(s, cfgData, stdin, log, stderr); err != nil {
		fmt.Fprintln(stderr, "goslo bridge:", err)
		return 1
	}
	return 0
}

func runBridge(s bridgeSettings, cfgData []byte, stdin io.Reader, log *slog.Logger, stderr io.Writer) error {
	ctx, cancel := untilStopped(stdin)
	defer cancel()
	reg, err := s.metrics.start(stderr)
	if err != nil {
		return err
	}
	defer s.metrics.close()
	names := strings.Split(s.names, ",")
	if s.names == "" {
		names = nil
	}
	if len(names) != 0 && len(names) != 2 {
		return errors.New("--names needs two names")
	}
	var trs [2]*goslo.Transport
	defer func() {
		for _, tr := range trs {
			if tr != nil {
				_ = tr.Close()
			}
		}
	}()
	var sides [2]bridge.Side
	schemes := [2]string{}
	for i, raw := range s.urls {
		u, err := compat.ParseTransportURL(raw)
		if err != nil {
			return err
		}
		schemes[i] = u.Driver()
	}
	servers, err := splitServers(s.servers, schemes)
	if err != nil {
		return err
	}
	for i, raw := range s.urls {
		opts := []goslo.Option{goslo.WithLogger(log)}
		if cfgData != nil {
			host, _ := os.Hostname()
			cfg, err := compat.ParseConfig(host, compat.ConfigFile{Name: s.config, Data: cfgData})
			if err != nil {
				return err
			}
			opts = append(opts, goslo.WithConfig(cfg))
		}
		tr, err := goslo.NewTransport(ctx, raw, opts...)
		if err != nil {
			return fmt.Errorf("bus %d (%s): %w", i+1, compat.RedactURL(raw), err)
		}
		trs[i] = tr
		name := schemes[i]
		if names != nil {
			name = names[i]
		} else if schemes[0] == schemes[1] {
			name = schemes[i] + strconv.Itoa(i+1)
		}
		side, closeReg, err := bridge.SideFor(name, tr.Driver(), tr.Config(), servers[i], log)
		if err != nil {
			return err
		}
		defer func() { _ = closeReg() }()
		sides[i] = side
	}
	cfg := bridge.Config{A: sides[0], B: sides[1], Topics: s.topics, Notifications: s.notifications, Exchange: s.exchange,
		Pool: s.pool, DiscoverEvery: dur(s.discoverEvery), CallTimeout: dur(s.callTimeout),
		Lease: bridge.LeaseFor(s.group, log, sides[0], sides[1]), Logger: log}
	if reg != nil {
		m, err := gosloprom.NewBridgeMetrics(reg)
		if err != nil {
			return err
		}
		cfg.Observer = m
	}
	b, err := bridge.New(cfg)
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := b.Start(ctx); err != nil {
		return err
	}
	log.Info("goslo bridge: running", "a", compat.RedactURL(s.urls[0]), "b", compat.RedactURL(s.urls[1]),
		"topics", s.topics.String(), "notifications", s.notifications.String(), "group", s.group)
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-hup:
			s.reloadServers(schemes, sides, log)
		}
	}
	log.Info("goslo bridge: stopping; draining in-flight calls", "within", dur(s.drain))
	dctx, dcancel := context.WithTimeout(context.Background(), dur(s.drain))
	defer dcancel()
	if err := b.Stop(dctx); err != nil {
		log.Warn("goslo bridge: not drained in time", "err", err)
	}
	// Then both buses, within the same drain time: what they still hold
	// leaves, and what is left is closed at once when the time is up.
	var wg sync.WaitGroup
	for _, tr := range trs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := tr.Shutdown(dctx); err != nil {
				log.Warn("goslo bridge: transport not shut down cleanly", "err", err)
			}
		}()
	}
	wg.Wait()
	return nil
}

// reloadServers is SIGHUP: the RabbitMQ server lists become the --server
// flags plus the servers of --config as it now reads; the next discovery
// round mirrors the names added and stops the mirrors of names taken off.
// Other settings keep their values until a restart. A file that cannot be
// read or parsed leaves the lists as they were.
func (s *bridgeSettings) reloadServers(schemes [2]string, sides [2]bridge.Side, log *slog.Logger) {
	if s.config == "" {
		log.Warn("goslo bridge: SIGHUP: the server list stays", "reason", "no --config to re-read")
		return
	}
	data, err := os.ReadFile(s.config)
	var servers [2]map[string][]string
	if err == nil {
		fresh := bridgeSettings{servers: slices.Clone(s.cliServers)}
		if err = fresh.fromINI(data, s.set); err == nil {
			servers, err = splitServers(fresh.servers, schemes)
		}
	}
	if err != nil {
		log.Warn("goslo bridge: SIGHUP: the server list stays", "config", s.config, "err", err)
		return
	}
	for i, side := range sides {
		reg, ok := side.Registry.(*bridge.StaticRegistry)
		if !ok {
			continue // zmq: the matchmaker lists its servers
		}
		reg.SetNames(servers[i])
		var names []string
		for topic, list := range servers[i] {
			for _, n := range list {
				if topic != "" {
					n = topic + ":" + n
				}
				names = append(names, n)
			}
		}
		sort.Strings(names)
		log.Info("goslo bridge: server list reloaded", "side", side.Name, "servers", strings.Join(names, " "))
	}
}

// splitServers sorts --server values by RabbitMQ side: "[TOPIC:]NAME"
// for the one RabbitMQ bus, "a=..." or "b=..." when both are RabbitMQ.
func splitServers(vals []string, schemes [2]string) ([2]map[string][]string, error) {
	var out [2]map[string][]string
	var rabbit []int
	for i, s := range schemes {
		if s == "rabbit" || s == "kombu" {
			rabbit = append(rabbit, i)
		}
	}
	for _, v := range vals {
		sides := rabbit
		if len(v) > 2 && (v[:2] == "a=" || v[:2] == "b=") {
			i := int(v[0] - 'a')
			if schemes[i] != "rabbit" && schemes[i] != "kombu" {
				return out, fmt.Errorf("--server %s: bus %c is not RabbitMQ (zmq finds its servers in its matchmaker)", v, v[0])
			}
			sides, v = []int{i}, v[2:]
		}
		switch len(sides) {
		case 0:
			return out, fmt.Errorf("--server %s: no RabbitMQ bus (zmq finds its servers in its matchmaker)", v)
		case 2:
			return out, fmt.Errorf("--server %s: both buses are RabbitMQ: write a=%s or b=%s", v, v, v)
		}
		topic, name := "", v
		if i := strings.IndexByte(v, ':'); i >= 0 {
			topic, name = v[:i], v[i+1:]
		}
		if name == "" {
			return out, fmt.Errorf("--server %q: no server name", v)
		}
		i := sides[0]
		if out[i] == nil {
			out[i] = map[string][]string{}
		}
		out[i][topic] = append(out[i][topic], name)
	}
	return out, nil
}

// fromINI reads the [bridge] section: list keys add to the flags' values,
// the others apply unless the flag was given.
func (s *bridgeSettings) fromINI(data []byte, set map[string]bool) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	in := false
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			in = strings.EqualFold(strings.Trim(line, "[] "), "bridge")
			continue
		}
		if !in {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("line %d: not key = value: %q", n, line)
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		var err error
		switch k {
		case "url", "urls":
			err = s.urls.Set(v)
		case "topic", "topics":
			err = s.topics.Set(v)
		case "notifications":
			err = s.notifications.Set(v)
		case "server", "servers":
			err = s.servers.Set(v)
		case "group", "pool", "exchange", "names", "log_level":
			f := map[string]*string{"group": &s.group, "pool": &s.pool, "exchange": &s.exchange, "names": &s.names, "log_level": &s.logLevel}[k]
			if !set[strings.ReplaceAll(k, "_", "-")] {
				*f = v
			}
		case "discover_every", "call_timeout", "drain":
			f := map[string]*secondsFlag{"discover_every": &s.discoverEvery, "call_timeout": &s.callTimeout, "drain": &s.drain}[k]
			if !set[strings.ReplaceAll(k, "_", "-")] {
				err = f.Set(v)
			}
		case "metrics_addr":
			if !set["metrics-addr"] {
				s.metrics.addr = v
			}
		default:
			err = fmt.Errorf("unknown option %q", k)
		}
		if err != nil {
			return fmt.Errorf("line %d: %s: %w", n, k, err)
		}
	}
	return sc.Err()
}

func dur(s secondsFlag) time.Duration { return time.Duration(float64(s) * float64(time.Second)) }
