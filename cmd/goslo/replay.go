package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/envelope"
)

// replayEntry is one line of a recording.
type replayEntry struct {
	line int
	time time.Time
	m    *goslo.Map
}

func mapGet(m *goslo.Map, k string) any {
	if m == nil {
		return nil
	}
	v, _ := m.Get(k)
	return v
}

func strGet(m *goslo.Map, k string) string {
	s, _ := mapGet(m, k).(string)
	return s
}

func mapOf(v any) *goslo.Map {
	m, _ := v.(*goslo.Map)
	return m
}

// readRecording reads a goslo record file; lines are sorted by time
// (calls are written when their reply comes).
func readRecording(file string) ([]replayEntry, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []replayEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 64<<20)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		v, err := envelope.DecodeJSON([]byte(text))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, n, err)
		}
		m, ok := v.(*goslo.Map)
		if !ok {
			return nil, fmt.Errorf("%s:%d: not a JSON object", file, n)
		}
		ts, err := time.Parse(time.RFC3339Nano, strGet(m, "time"))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: time: %w", file, n, err)
		}
		switch typ := strGet(m, "type"); typ {
		case "call", "cast", "fanout":
			if strGet(m, "method") == "" || strGet(mapOf(mapGet(m, "target")), "topic") == "" {
				return nil, fmt.Errorf("%s:%d: a %s needs a method and a target topic", file, n, typ)
			}
		case "notification":
			if strGet(mapOf(mapGet(m, "target")), "topic") == "" || strGet(m, "priority") == "" {
				return nil, fmt.Errorf("%s:%d: a notification needs a target topic and a priority", file, n)
			}
		default:
			return nil, fmt.Errorf("%s:%d: unknown type %q", file, n, typ)
		}
		out = append(out, replayEntry{line: n, time: ts, m: m})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].time.Before(out[j].time) })
	return out, nil
}

func replayCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var b busFlags
	b.register(fs)
	in := fs.String("in", "", "the goslo record file to replay")
	var rate float64
	fs.Float64Var(&rate, "rate", 0, "at most N messages per second (default 0: one after the other, without pause)")
	compare := fs.Bool("compare", false, "compare every reply with the recorded one; print one JSON line per difference; exit 1 when any differs")
	var timeout secondsFlag
	secondsVar(fs, &timeout, "timeout", 30, "call timeout in seconds")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *in == "" || fs.NArg() != 0 || rate < 0 {
		fmt.Fprintln(stderr, "usage: goslo replay --url URL --in FILE.jsonl [--rate N] [--compare] [--topic T (instead of the recorded one)] [--timeout SECONDS]")
		return 2
	}
	entries, err := readRecording(*in)
	if err != nil {
		fmt.Fprintln(stderr, "goslo replay:", err)
		return 1
	}
	ctx, cancel := untilStopped(nil)
	defer cancel()
	tr, err := b.transport(ctx, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "goslo replay:", err)
		return 1
	}
	defer tr.Close()
	var gap time.Duration
	if rate > 0 {
		gap = time.Duration(float64(time.Second) / rate)
	}
	counts := map[string]int{}
	differ, failed := 0, 0
	next := time.Now()
	for _, e := range entries {
		if gap > 0 {
			select {
			case <-time.After(time.Until(next)):
			case <-ctx.Done():
			}
			next = next.Add(gap)
		}
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "goslo replay: interrupted")
			return 1
		}
		typ := strGet(e.m, "type")
		counts[typ]++
		d, err := replayOne(ctx, tr, e, b.topic, timeout.duration(), *compare)
		if err != nil {
			failed++
			fmt.Fprintf(stderr, "goslo replay: line %d (%s %s): %v\n", e.line, typ, strGet(e.m, "method"), err)
			continue
		}
		if d != nil {
			differ++
			_ = jsonLine(stdout, d)
		}
	}
	fmt.Fprintf(stderr, "goslo replay: %d calls, %d casts, %d fanouts, %d notifications sent; %d failed", counts["call"], counts["cast"], counts["fanout"], counts["notification"], failed)
	if *compare {
		fmt.Fprintf(stderr, "; %d replies differ", differ)
	}
	fmt.Fprintln(stderr)
	if failed > 0 || differ > 0 {
		return 1
	}
	return 0
}

// replayOne sends one recorded message; for a call with compare, it
// returns the difference of its reply from the recorded one (nil: same).
func replayOne(ctx context.Context, tr *goslo.Transport, e replayEntry, topic string, timeout time.Duration, compare bool) (*goslo.Map, error) {
	m := e.m
	target := mapOf(mapGet(m, "target"))
	if topic == "" {
		topic = strGet(target, "topic")
	}
	rctx := mapOf(mapGet(m, "context"))
	if rctx == nil {
		rctx = goslo.NewMap()
	}
	if strGet(m, "type") == "notification" {
		n := goslo.NewNotifier(tr, strGet(m, "publisher_id"), topic)
		send := map[string]func(context.Context, *goslo.Map, string, any) error{
			"audit": n.Audit, "debug": n.Debug, "info": n.Info, "warn": n.Warn, "warning": n.Warn, "error": n.Error, "critical": n.Critical, "sample": n.Sample,
		}[strings.ToLower(strGet(m, "priority"))]
		if send == nil {
			return nil, fmt.Errorf("unknown priority %q", strGet(m, "priority"))
		}
		nctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return nil, send(nctx, rctx, strGet(m, "event_type"), mapGet(m, "payload"))
	}
	args := mapOf(mapGet(m, "args"))
	if args == nil {
		args = goslo.NewMap()
	}
	method := strGet(m, "method")
	cl := goslo.NewRPCClient(tr, goslo.Target{Topic: topic, Version: strGet(target, "version"), Exchange: strGet(target, "exchange")}).Prepare(goslo.PrepareOptions{
		Server: strGet(target, "server"), Fanout: strGet(m, "type") == "fanout", Namespace: strGet(target, "namespace"), Timeout: timeout})
	if strGet(m, "type") != "call" {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return nil, cl.Cast(cctx, rctx, method, args)
	}
	res, err := cl.Call(ctx, rctx, method, args)
	var re *goslo.RemoteError
	if err != nil && !errors.As(err, &re) {
		if !compare {
			return nil, err
		}
		if errors.Is(err, goslo.ErrMessagingTimeout) {
			if e, ok := mapGet(mapOf(mapGet(m, "reply")), "error").(string); ok && strings.Contains(e, "MessagingTimeout") {
				return nil, nil // timed out then too
			}
		}
		return replayDiff(e, method, mapGet(m, "reply"), goslo.NewMap("error", err.Error())), nil
	}
	if !compare {
		return nil, nil
	}
	recorded := mapOf(mapGet(m, "reply"))
	if recorded == nil {
		return nil, nil // recorded without its reply: nothing to compare
	}
	got := replyMap(res, err)
	if sameReply(recorded, got) {
		return nil, nil
	}
	return replayDiff(e, method, recorded, got), nil
}

func replayDiff(e replayEntry, method string, recorded, replayed any) *goslo.Map {
	return goslo.NewMap("line", int64(e.line), "method", method, "target", mapGet(e.m, "target"), "message_id", mapGet(e.m, "message_id"),
		"recorded", recorded, "replayed", replayed)
}

// sameReply compares a recorded reply with a new one: results by value,
// failures by class, module and message.
func sameReply(recorded, got *goslo.Map) bool {
	rf, gf := mapOf(mapGet(recorded, "failure")), mapOf(mapGet(got, "failure"))
	if rf != nil || gf != nil {
		if rf == nil || gf == nil {
			return false
		}
		for _, k := range []string{"class", "module", "message"} {
			if strGet(rf, k) != strGet(gf, k) {
				return false
			}
		}
		return true
	}
	if _, ok := recorded.Get("result"); !ok {
		return false
	}
	return envelope.Equal(mapGet(recorded, "result"), mapGet(got, "result"))
}
