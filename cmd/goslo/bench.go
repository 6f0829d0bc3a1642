package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goslo/goslo"
	rabbitdrv "github.com/goslo/goslo/driver/rabbit"
	"github.com/goslo/goslo/internal/rawamqp"
	"github.com/goslo/goslo/internal/rawecho"
)

// benchResult is the last stdout line of every bench client.
type benchResult struct {
	Mode        string  `json:"mode"`
	Concurrency int     `json:"concurrency"`
	DurationS   float64 `json:"duration_s"`
	DrainS      float64 `json:"drain_s"`
	Sent        int64   `json:"sent"`
	Received    int64   `json:"received"`
	Errors      int64   `json:"errors"`
	PerS        float64 `json:"per_s"`
	P50us       float64 `json:"p50_us"`
	P99us       float64 `json:"p99_us"`
}

func (r benchResult) write(w io.Writer) error {
	m := goslo.NewMap("mode", r.Mode, "concurrency", int64(r.Concurrency), "duration_s", r.DurationS,
		"drain_s", math.Round(r.DrainS*1000)/1000, "sent", r.Sent, "received", r.Received, "errors", r.Errors, "per_s", math.Round(r.PerS*10)/10,
		"p50_us", math.Round(r.P50us*10)/10, "p99_us", math.Round(r.P99us*10)/10)
	return jsonLine(w, m)
}

// awaitReceived returns what the server received, count's answer. For
// casts and notifications, which may still be in flight (queued in zmq and
// the proxy) when the window ends, it polls until all sent have arrived or
// the count stops moving for 500 ms (at most 30 s), and returns the drain:
// from the window's end to the last poll that saw the count move. The rate
// counts the drain, so what was queued at the end is not had for free.
func awaitReceived(mode string, sent int64, count func() (int64, error)) (int64, time.Duration, error) {
	if mode == "call" {
		n, err := count()
		return n, 0, err
	}
	end := time.Now()
	last, lastMove := int64(-1), end
	for {
		n, err := count()
		if err != nil {
			return 0, 0, err
		}
		now := time.Now()
		if n != last {
			last, lastMove = n, now
		}
		if n >= sent || now.Sub(lastMove) > 500*time.Millisecond || now.Sub(end) > 30*time.Second {
			return n, lastMove.Sub(end), nil
		}
		time.Sleep(time.Millisecond)
	}
}

// newResult makes a client's result line: the rate over the window plus
// the drain; latencies for calls only.
func newResult(bf benchFlags, sent, received, errs int64, drain time.Duration, lat []time.Duration) benchResult {
	res := benchResult{Mode: bf.mode, Concurrency: bf.concurrency, DurationS: float64(bf.duration), DrainS: drain.Seconds(),
		Sent: sent, Received: received, Errors: errs, PerS: float64(received) / (float64(bf.duration) + drain.Seconds())}
	if bf.mode == "call" {
		res.P50us, res.P99us = percentile(lat, 0.5), percentile(lat, 0.99)
	}
	return res
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	return float64(sorted[i]) / float64(time.Microsecond)
}

// progress prints a live rate on a terminal and plain lines otherwise.
type progress struct {
	w        io.Writer
	terminal bool
}

func newProgress(w io.Writer) progress {
	f, ok := w.(*os.File)
	if !ok {
		return progress{w: w}
	}
	st, err := f.Stat()
	return progress{w: w, terminal: err == nil && st.Mode()&os.ModeCharDevice != 0}
}

// every reports n once a second until the returned stop is called.
func (p progress) every(n *atomic.Int64, start time.Time) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p.report(n.Load(), time.Since(start))
			}
		}
	}()
	return func() { close(done) }
}

// finish ends the progress line and merges the workers' latencies, sorted.
func (p progress) finish(lats [][]time.Duration) []time.Duration {
	if p.terminal {
		fmt.Fprintln(p.w)
	}
	var lat []time.Duration
	for _, l := range lats {
		lat = append(lat, l...)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat
}

func (p progress) report(done int64, elapsed time.Duration) {
	rate := float64(done) / elapsed.Seconds()
	if p.terminal {
		fmt.Fprintf(p.w, "\r%8.1fs %10d done %10.0f/s", elapsed.Seconds(), done, rate)
	} else {
		fmt.Fprintf(p.w, "progress: %.1fs %d done %.0f/s\n", elapsed.Seconds(), done, rate)
	}
}

// soakLatencies is how many latencies one worker keeps in a --count run (a
// soak): it measures the first ones and then only counts, so that the
// client's memory stays flat. A --duration run keeps them all.
const soakLatencies = 10_000

// drive runs n workers for d, each calling op in a loop, and measures;
// with count > 0 the workers stop once count operations were started.
func drive(n int, d time.Duration, count int64, prog progress, op func(worker int) error) (sent, errs int64, lat []time.Duration, elapsed time.Duration) {
	var wg sync.WaitGroup
	var sentN, errN, started atomic.Int64
	lats := make([][]time.Duration, n)
	deadline := time.Now().Add(d)
	start := time.Now()
	stop := prog.every(&sentN, start)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if count > 0 && started.Add(1) > count {
					return
				}
				t0 := time.Now()
				if err := op(i); err != nil {
					errN.Add(1)
					continue
				}
				if count == 0 || len(lats[i]) < soakLatencies {
					lats[i] = append(lats[i], time.Since(t0))
				}
				sentN.Add(1)
			}
		}(i)
	}
	wg.Wait()
	elapsed = time.Since(start)
	stop()
	return sentN.Load(), errN.Load(), prog.finish(lats), elapsed
}

type benchFlags struct {
	mode        string
	concurrency int
	duration    secondsFlag
	payload     int
	count       int64
}

func (b *benchFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.mode, "mode", "call", "call or cast")
	fs.IntVar(&b.concurrency, "concurrency", 1, "concurrent callers")
	secondsVar(fs, &b.duration, "duration", 5, "seconds, 0 to 1e9")
	fs.IntVar(&b.payload, "payload-bytes", 16, "size of the string argument")
	fs.Int64Var(&b.count, "count", 0, "stop after this many operations (0: run for --duration; latencies are kept for the first 10000 per caller)")
}

func bench(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: goslo bench rpc-server|rpc-client|notify|raw|raw-server [flags]")
		return 2
	}
	switch args[0] {
	case "rpc-server":
		return benchServer(args[1:], stdin, stderr)
	case "rpc-client":
		return benchClient(args[1:], stdout, stderr)
	case "raw":
		return benchRaw(args[1:], stdout, stderr)
	case "raw-server":
		return benchRawServer(args[1:], stdin, stdout, stderr)
	case "notify":
		return benchClient(append([]string{"--mode", "notify"}, args[1:]...), stdout, stderr)
	}
	fmt.Fprintf(stderr, "goslo bench: unknown %q (rpc-server, rpc-client, notify, raw, raw-server)\n", args[0])
	return 2
}

func benchServer(args []string, stdin io.Reader, stderr io.Writer) int {
	return runServer("bench rpc-server", args, stdin, stderr, func(ctx context.Context, tr *goslo.Transport, b busFlags) (func(context.Context) error, error) {
		var received, notified atomic.Int64
		ep := goslo.NewEndpoint("", "1.0").
			Handle("echo", func(_ context.Context, _ *goslo.Map, a *goslo.Map) (any, error) {
				received.Add(1)
				return a, nil
			}).
			Handle("bench_stats", func(context.Context, *goslo.Map, *goslo.Map) (any, error) {
				return goslo.NewMap("received", received.Load(), "notified", notified.Load()), nil
			})
		srv, err := goslo.NewRPCServer(tr, goslo.Target{Topic: b.topic, Server: b.server}, ep)
		if err != nil {
			return nil, err
		}
		if err := srv.Start(ctx); err != nil {
			return nil, err
		}
		// Notifications of `goslo bench notify` go to <topic>.info.
		l := goslo.NewNotificationListener(tr, []string{b.topic}, &goslo.NotificationEndpoint{
			Handlers: map[string]goslo.NotificationHandler{"info": func(context.Context, goslo.Notification) error {
				notified.Add(1)
				return nil
			}}})
		if err := l.Start(ctx); err != nil {
			_ = srv.Stop(ctx)
			return nil, err
		}
		return func(ctx context.Context) error { return errors.Join(l.Stop(ctx), srv.Stop(ctx)) }, nil
	})
}

func benchClient(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench rpc-client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var b busFlags
	b.register(fs)
	var bf benchFlags
	bf.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if b.topic == "" || (bf.mode != "call" && bf.mode != "cast" && bf.mode != "notify") || bf.concurrency < 1 || bf.count < 0 {
		fmt.Fprintln(stderr, "usage: goslo bench rpc-client --url URL --topic T [--server S] --mode call|cast --concurrency N --duration SECONDS [--payload-bytes B]")
		return 2
	}
	ctx := context.Background()
	tr, err := b.transport(ctx, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "goslo bench:", err)
		return 1
	}
	defer tr.Close()
	if _, rabbit := tr.Driver().(*rabbitdrv.Transport); !rabbit && tr.Config().ZMQ.UseDynamicConnections {
		err := checkNOFILE("goslo bench", bf.concurrency, fdsPerDynamicCaller*bf.concurrency,
			fmt.Sprintf("use_dynamic_connections: %d per message in flight, a DEALER and its connection", fdsPerDynamicCaller))
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
	}
	cl := goslo.NewRPCClient(tr, goslo.Target{Topic: b.topic}).Prepare(goslo.PrepareOptions{Server: b.server, Timeout: 30 * time.Second})
	stats := func() (int64, error) {
		v, err := cl.Call(ctx, goslo.NewMap(), "bench_stats", nil)
		if err != nil {
			return 0, err
		}
		counter := "received"
		if bf.mode == "notify" {
			counter = "notified"
		}
		return statsCounter(v, counter)
	}
	before, err := stats()
	if err != nil {
		fmt.Fprintln(stderr, "goslo bench: the server does not answer bench_stats:", err)
		return 1
	}
	args2 := goslo.NewMap("data", strings.Repeat("x", bf.payload))
	rctx := goslo.NewMap("user", "bench")
	d := bf.duration.duration()
	notifier := goslo.NewNotifier(tr, "goslo.bench", b.topic)
	sent, errs, lat, elapsed := drive(bf.concurrency, d, bf.count, newProgress(stderr), func(int) error {
		switch bf.mode {
		case "call":
			_, err := cl.Call(ctx, rctx, "echo", args2)
			return err
		case "notify":
			return notifier.Info(ctx, rctx, "bench.event", args2)
		}
		return cl.Cast(ctx, rctx, "echo", args2)
	})
	// Ask the server what it got (only echo counts; bench_stats does not).
	count := func() (int64, error) {
		after, err := stats()
		return after - before, err
	}
	received, drain, err := awaitReceived(bf.mode, sent, count)
	if err != nil {
		fmt.Fprintln(stderr, "goslo bench: bench_stats:", err)
		return 1
	}
	if bf.count > 0 {
		bf.duration = secondsFlag(elapsed.Seconds()) // the run ended at its count
	}
	res := newResult(bf, sent, received, errs, drain, lat)
	if err := res.write(stdout); err != nil {
		return 1
	}
	return 0
}

func benchRaw(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench raw", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var bf benchFlags
	bf.register(fs)
	inflight := fs.Int("inflight", 0, "zmq: calls in flight in call mode, spread over the callers, each pipelining its share on its DEALER (default: 1 for one caller, the sequential echo; 128 for more)")
	var rf rawRabbitFlags
	rf.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if bf.concurrency < 1 || *inflight < 0 || (bf.mode != "call" && bf.mode != "cast") {
		fmt.Fprintln(stderr, "usage: goslo bench raw [--url zmq://...|rabbit://...] --mode call|cast --concurrency N --duration SECONDS [--inflight N] [--payload-bytes B] [--topic T --server S --confirm=BOOL --timeout SECONDS]")
		return 2
	}
	if rawamqp.IsRabbitURL(rf.url) {
		if *inflight != 0 {
			fmt.Fprintln(stderr, "goslo bench raw: --inflight is for the zmq echo; a rabbit caller has one call in flight")
			return 2
		}
		return benchRawRabbit(bf, rf, stdout, stderr)
	}
	if *inflight == 0 {
		*inflight = 1
		if bf.concurrency > 1 {
			*inflight = 128
		}
	}
	*inflight = max(*inflight, bf.concurrency)
	if err := checkNOFILE("goslo bench raw", bf.concurrency, fdsRawServer+fdsPerRawCaller*bf.concurrency,
		fmt.Sprintf("%d per caller: a zmq context and a connection, both ends", fdsPerRawCaller)); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	srv, err := rawecho.Start()
	if err != nil {
		fmt.Fprintln(stderr, "goslo bench raw:", err)
		return 1
	}
	defer srv.Close()
	clients := make([]*rawecho.Client, bf.concurrency)
	for i := range clients {
		if clients[i], err = rawecho.Dial(srv.Addr); err != nil {
			fmt.Fprintln(stderr, "goslo bench raw:", err)
			return 1
		}
		defer clients[i].Close()
	}
	payload := []byte(`[{"user": "bench"}, {"method": "echo", "args": {"data": "` + strings.Repeat("x", bf.payload) + `"}}]`)
	d := bf.duration.duration()
	var sent, errs int64
	var lat []time.Duration
	elapsed := d
	if bf.mode == "call" && *inflight > bf.concurrency {
		sent, errs, lat = drivePipelined(clients, *inflight, d, newProgress(stderr), payload)
	} else {
		sent, errs, lat, elapsed = drive(bf.concurrency, d, bf.count, newProgress(stderr), func(i int) error {
			if bf.mode == "call" {
				return clients[i].Call(payload)
			}
			return clients[i].Cast(payload)
		})
	}
	received, drain, _ := awaitReceived(bf.mode, sent, func() (int64, error) { return srv.Received(), nil })
	if bf.count > 0 {
		bf.duration = secondsFlag(elapsed.Seconds()) // the run ended at its count
	}
	res := newResult(bf, sent, received, errs, drain, lat)
	if err := res.write(stdout); err != nil {
		return 1
	}
	return 0
}

// drivePipelined keeps inflight calls outstanding over the raw clients
// (each caller its share, sent back to back on its DEALER) for d, then
// drains them; a call's latency runs from its send to its reply.
func drivePipelined(clients []*rawecho.Client, inflight int, d time.Duration, prog progress, payload []byte) (sent, errs int64, lat []time.Duration) {
	n := len(clients)
	var wg sync.WaitGroup
	var doneN, errN atomic.Int64
	lats := make([][]time.Duration, n)
	deadline := time.Now().Add(d)
	start := time.Now()
	stop := prog.every(&doneN, start)
	for i := 0; i < n; i++ {
		window := inflight / n
		if i < inflight%n {
			window++
		}
		wg.Add(1)
		go func(i, window int) {
			defer wg.Done()
			c := clients[i]
			// One connection to a one-goroutine echo: replies come back
			// in the order of the calls.
			type call struct {
				id int
				at time.Time
			}
			var fifo []call
			for {
				for len(fifo) < window && time.Now().Before(deadline) {
					t0 := time.Now()
					id, err := c.Send(payload)
					if err != nil {
						errN.Add(1)
						continue
					}
					fifo = append(fifo, call{id, t0})
				}
				if len(fifo) == 0 {
					return
				}
				id, err := c.Recv()
				if err != nil || id != fifo[0].id {
					// A lost or garbled reply: count the calls still
					// outstanding as errors and stop this caller.
					errN.Add(int64(len(fifo)))
					return
				}
				lats[i] = append(lats[i], time.Since(fifo[0].at))
				fifo = fifo[1:]
				doneN.Add(1)
			}
		}(i, window)
	}
	wg.Wait()
	stop()
	return doneN.Load(), errN.Load(), prog.finish(lats)
}

// rawRabbitFlags are the raw bench's flags for a rabbit:// URL; without
// one (or with a zmq URL) raw runs the in-process zmq echo.
type rawRabbitFlags struct {
	url, topic, server string
	confirm            bool
	timeout            secondsFlag
}

func (r *rawRabbitFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.url, "url", "", "rabbit://user:pass@host:port/vhost: run against `goslo bench raw-server` on that broker (default, or a zmq URL: the in-process zmq echo)")
	fs.StringVar(&r.topic, "topic", "bench", "rabbit: the raw server's topic")
	fs.StringVar(&r.server, "server", "s1", "rabbit: the raw server's name (queue <topic>.<server>)")
	fs.BoolVar(&r.confirm, "confirm", true, "rabbit casts: wait for each publish's confirm before the next (calls always do)")
	secondsVar(fs, &r.timeout, "timeout", 30, "rabbit calls: seconds to wait for a reply, also the message expiration (0 to 1e9)")
}

// benchRawRabbit runs concurrency callers against a raw rabbit echo
// server: they share the client's sending connection, each on a channel
// of its own (one outstanding confirm per channel, as the reference), and
// the client's one reply queue. The server's count (a bench_stats call)
// gives received.
func benchRawRabbit(bf benchFlags, rf rawRabbitFlags, stdout, stderr io.Writer) int {
	cl, err := rawamqp.Dial(rawamqp.ClientOptions{URL: rf.url, Topic: rf.topic, Server: rf.server,
		Timeout: rf.timeout.duration()})
	if err != nil {
		fmt.Fprintln(stderr, "goslo bench raw:", err)
		return 1
	}
	defer cl.Close()
	before, err := cl.ServerReceived()
	if err != nil {
		fmt.Fprintln(stderr, "goslo bench raw: the raw server does not answer bench_stats:", err)
		return 1
	}
	callers := make([]*rawamqp.Caller, bf.concurrency)
	for i := range callers {
		if callers[i], err = cl.Caller(bf.mode == "call" || rf.confirm); err != nil {
			fmt.Fprintln(stderr, "goslo bench raw:", err)
			return 1
		}
		defer callers[i].Close()
	}
	args := rawamqp.EscapedArgs(strings.Repeat("x", bf.payload))
	d := bf.duration.duration()
	sent, errs, lat, elapsed := drive(bf.concurrency, d, bf.count, newProgress(stderr), func(i int) error {
		if bf.mode == "call" {
			_, err := callers[i].Call("echo", args)
			return err
		}
		return callers[i].Cast("echo", args)
	})
	received, drain, err := awaitReceived(bf.mode, sent, func() (int64, error) {
		n, err := cl.ServerReceived()
		return n - before, err
	})
	if err != nil {
		fmt.Fprintln(stderr, "goslo bench raw: bench_stats:", err)
		return 1
	}
	if bf.count > 0 {
		bf.duration = secondsFlag(elapsed.Seconds()) // the run ended at its count
	}
	res := newResult(bf, sent, received, errs, drain, lat)
	if err := res.write(stdout); err != nil {
		return 1
	}
	return 0
}

// benchRawServer runs the raw rabbit echo server until "quit" on stdin,
// SIGINT or SIGTERM. It prints {"ready": ...} once consuming and its
// reply counts when it stops.
func benchRawServer(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench raw-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var rf rawRabbitFlags
	rf.register(fs)
	replyChannels := fs.Int("reply-channels", 30, "reply channels, each with one outstanding confirm (the reference's pool of rpc_conn_pool_size sending connections)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !rawamqp.IsRabbitURL(rf.url) || rf.topic == "" || rf.server == "" || *replyChannels < 1 {
		fmt.Fprintln(stderr, "usage: goslo bench raw-server --url rabbit://user:pass@host:port/vhost [--topic T] [--server S] [--reply-channels N]")
		return 2
	}
	ctx, cancel := untilStopped(stdin)
	defer cancel()
	srv, err := rawamqp.StartServer(rawamqp.ServerOptions{URL: rf.url, Topic: rf.topic, Server: rf.server, ReplyChannels: *replyChannels})
	if err != nil {
		fmt.Fprintln(stderr, "goslo bench raw-server:", err)
		return 1
	}
	defer srv.Close()
	if err := jsonLine(stdout, goslo.NewMap("ready", goslo.NewMap("queue", rf.topic+"."+rf.server, "pid", int64(os.Getpid())))); err != nil {
		return 1
	}
	<-ctx.Done()
	replied, returned, failed := srv.Stats()
	fmt.Fprintf(stderr, "goslo bench raw-server: received %d, replied %d, returned %d, failed %d\n", srv.Received(), replied, returned, failed)
	return 0
}

// statsCounter reads a counter of a bench_stats answer.
func statsCounter(v any, counter string) (int64, error) {
	m, ok := v.(*goslo.Map)
	if !ok || m == nil {
		return 0, fmt.Errorf("bench_stats answered %T, not a dict", v)
	}
	n, ok := m.Get(counter)
	if !ok {
		return 0, fmt.Errorf("bench_stats has no %q", counter)
	}
	x, ok := n.(int64)
	if !ok {
		return 0, fmt.Errorf("bench_stats %q is %T, not an integer", counter, n)
	}
	return x, nil
}
