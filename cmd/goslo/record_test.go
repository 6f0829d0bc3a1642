package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/internal/redistest"
)

// readJSONLines decodes every line of file.
func readJSONLines(t *testing.T, file string) []map[string]any {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
		out = append(out, m)
	}
	return out
}

func byMethod(lines []map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, l := range lines {
		k, _ := l["method"].(string)
		if l["type"] == "notification" {
			k = "notification " + l["event_type"].(string)
		} else if l["type"] != "call" {
			k = l["type"].(string) + " " + k
		}
		out[k] = l
	}
	return out
}

// TestRecordReplayRabbit: goslo record reads a copy of a topic's traffic
// through its own queue (the real server still gets every message), with
// the replies from the firehose; goslo replay --compare sends it again and
// finds no difference against the same server, and each changed reply
// against a scripted one.
func TestRecordReplayRabbit(t *testing.T) {
	node, vhost := rabbitVhost(t)
	node.EnableFirehose(vhost)
	url := node.URL(vhost)
	sout, serr, sstop := background(t, "serve", "--url", url, "--topic", "svc", "--server", "srv1")
	waitConsumers(t, node, vhost, "svc.srv1", 1)
	file := filepath.Join(t.TempDir(), "rec.jsonl")
	_, rerr, rstop := background(t, "record", "--url", url, "--topic", "svc", "--notifications", "notes", "--firehose", "--out", file)
	require.Eventually(t, func() bool { return strings.Contains(rerr.String(), "goslo record: recording topic svc") }, 20*time.Second, 20*time.Millisecond, rerr.String())

	code, out, errs := runGoslo("call", "--url", url, "--topic", "svc", "--server", "srv1", "--context", `{"user": "u1"}`, "echo", `{"a": 1, "b": ["x"]}`)
	require.Equal(t, 0, code, errs)
	require.Equal(t, `{"a": 1, "b": ["x"]}`, strings.TrimSpace(out))
	code, _, errs = runGoslo("call", "--url", url, "--topic", "svc", "fail", `{"message": "bad"}`)
	require.Equal(t, 1, code)
	require.Contains(t, errs, "class=ValueError module=builtins message=bad")
	code, _, errs = runGoslo("call", "--url", url, "--topic", "svc", "--server", "srv1", "whoami")
	require.Equal(t, 0, code, errs)
	code, _, errs = runGoslo("cast", "--url", url, "--topic", "svc", "--server", "srv1", "echo", `{"c": 1}`)
	require.Equal(t, 0, code, errs)
	code, _, errs = runGoslo("cast", "--url", url, "--topic", "svc", "--fanout", "echo", `{"f": 1}`)
	require.Equal(t, 0, code, errs)
	code, _, errs = runGoslo("notify", "--url", url, "--topic", "notes", "--priority", "warn", "--event-type", "x.y", "--publisher-id", "p1", `{"k": "v"}`)
	require.Equal(t, 0, code, errs)
	// The real server got every request (the recorder took none).
	require.Eventually(t, func() bool { return len(sout.lines(t)) == 5 }, 10*time.Second, 20*time.Millisecond, sout.String())
	require.Eventually(t, func() bool { return len(readJSONLines(t, file)) == 6 }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, 0, rstop(), rerr.String())

	lines := byMethod(readJSONLines(t, file))
	echo := lines["echo"]
	require.Equal(t, map[string]any{"topic": "svc", "server": "srv1"}, echo["target"])
	require.Equal(t, map[string]any{"a": 1.0, "b": []any{"x"}}, echo["args"])
	require.Equal(t, map[string]any{"user": "u1"}, echo["context"])
	require.Regexp(t, `^[0-9a-f]{32}$`, echo["message_id"])
	require.Equal(t, map[string]any{"result": map[string]any{"a": 1.0, "b": []any{"x"}}}, echo["reply"])
	_, err := time.Parse(time.RFC3339Nano, echo["time"].(string))
	require.NoError(t, err)
	require.Equal(t, map[string]any{"topic": "svc"}, lines["fail"]["target"])
	require.Equal(t, map[string]any{"failure": map[string]any{"class": "ValueError", "module": "builtins", "message": "bad"}}, lines["fail"]["reply"])
	require.Equal(t, map[string]any{"result": "srv1"}, lines["whoami"]["reply"])
	require.Equal(t, map[string]any{"c": 1.0}, lines["cast echo"]["args"])
	require.NotContains(t, lines["cast echo"], "reply")
	require.Equal(t, map[string]any{"topic": "svc", "fanout": true}, lines["fanout echo"]["target"])
	note := lines["notification x.y"]
	require.Equal(t, "warn", note["priority"])
	require.Equal(t, "p1", note["publisher_id"])
	require.Equal(t, map[string]any{"k": "v"}, note["payload"])
	require.Equal(t, map[string]any{"topic": "notes"}, note["target"])

	// Replay against the same server: the same replies.
	var rout, rerrb strings.Builder
	require.Equal(t, 0, run([]string{"replay", "--url", url, "--in", file, "--compare", "--rate", "50"}, nil, &rout, &rerrb), rerrb.String()+rout.String())
	require.Empty(t, rout.String())
	require.Contains(t, rerrb.String(), "goslo replay: 3 calls, 1 casts, 1 fanouts, 1 notifications sent; 0 failed; 0 replies differ")
	require.Eventually(t, func() bool { return len(sout.lines(t)) == 10 }, 10*time.Second, 20*time.Millisecond, sout.String())
	replayed := sout.lines(t)[5:]
	require.Equal(t, map[string]any{"user": "u1"}, replayed[0]["context"])
	require.Equal(t, 0, sstop(), serr.String())

	// A "new release" that answers differently: every changed reply is
	// reported, with its line.
	script := filepath.Join(t.TempDir(), "new.yaml")
	require.NoError(t, os.WriteFile(script, []byte("methods:\n  echo: builtin\n  whoami: {result: srv2}\n  fail: {error: {class: KeyError, message: bad}}\n"), 0o600))
	_, s2err, s2stop := background(t, "serve", "--url", url, "--topic", "svc", "--server", "srv1", "--script", script)
	waitConsumers(t, node, vhost, "svc.srv1", 1)
	rout.Reset()
	rerrb.Reset()
	require.Equal(t, 1, run([]string{"replay", "--url", url, "--in", file, "--compare"}, nil, &rout, &rerrb), rerrb.String())
	require.Contains(t, rerrb.String(), "; 2 replies differ")
	var diffs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(rout.String()), "\n") {
		var d map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &d))
		diffs = append(diffs, d)
	}
	require.Len(t, diffs, 2)
	got := map[string]map[string]any{}
	for _, d := range diffs {
		got[d["method"].(string)] = d
	}
	require.Equal(t, map[string]any{"result": "srv1"}, got["whoami"]["recorded"])
	require.Equal(t, map[string]any{"result": "srv2"}, got["whoami"]["replayed"])
	require.Equal(t, "KeyError", got["fail"]["replayed"].(map[string]any)["failure"].(map[string]any)["class"])
	require.Greater(t, got["fail"]["line"], 0.0)
	require.Equal(t, 0, s2stop(), s2err.String())
}

// TestRecordReplayRefusesBadInput: the flags each bus needs, and bad
// recordings refused with file and line.
func TestRecordReplayRefusesBadInput(t *testing.T) {
	code, _, errs := runGoslo("record", "--url", "zmq+dummy://", "--topic", "t", "--out", filepath.Join(t.TempDir(), "x.jsonl"))
	require.Equal(t, 2, code)
	require.Contains(t, errs, "on zmq, --forward TOPIC is required")
	code, _, errs = runGoslo("record", "--url", "zmq+dummy://", "--topic", "t")
	require.Equal(t, 2, code)
	require.Contains(t, errs, "usage: goslo record")
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	for _, c := range []struct{ text, want string }{
		{`{"time": "2026-01-01T00:00:00Z", "type": "call", "target": {"topic": "t"}, "method": "m"}` + "\n{", ":2: "},
		{`{"time": "yesterday", "type": "call"}`, ":1: time: "},
		{`{"time": "2026-01-01T00:00:00Z", "type": "call", "target": {}}`, ":1: a call needs a method and a target topic"},
		{`{"time": "2026-01-01T00:00:00Z", "type": "poke"}`, `:1: unknown type "poke"`},
		{`[1]`, ":1: not a JSON object"},
	} {
		require.NoError(t, os.WriteFile(bad, []byte(c.text), 0o600))
		code, _, errs = runGoslo("replay", "--url", "zmq+dummy://", "--in", bad)
		require.Equal(t, 1, code)
		require.Contains(t, errs, bad+c.want)
	}
}

// TestRecordRabbitSaysWhenItsConnectionEnds: a recording with a hole is
// not silent: goslo record reports the lost connection and exits 1.
func TestRecordRabbitSaysWhenItsConnectionEnds(t *testing.T) {
	node, vhost := rabbitVhost(t)
	file := filepath.Join(t.TempDir(), "rec.jsonl")
	_, rerr, rstop := background(t, "record", "--url", node.URL(vhost), "--topic", "svc", "--out", file)
	require.Eventually(t, func() bool { return strings.Contains(rerr.String(), "goslo record: recording topic svc") }, 20*time.Second, 20*time.Millisecond, rerr.String())
	node.Ctl("close_all_connections", "-p", vhost, "test")
	require.Eventually(t, func() bool { return strings.Contains(rerr.String(), "goslo record: the connection to RabbitMQ ended") }, 20*time.Second, 20*time.Millisecond, rerr.String())
	require.Equal(t, 1, rstop(), rerr.String())
}

// TestRecordZMQForwardsAndRecordsNotifications: on zmq the recorder
// serves the topic, forwards to the real server's topic (same server
// name) and records the call with its reply; it records notifications
// too (every zmq listener gets every notification).
func TestRecordZMQForwardsAndRecordsNotifications(t *testing.T) {
	r := redistest.Start(t)
	url := "zmq+redis://" + r.Addr + "?rpc_zmq_host=127.0.0.1&rpc_zmq_bind_address=127.0.0.1"
	sout, serr, sstop := background(t, "serve", "--url", url, "--topic", "svc-real", "--server", "s1")
	file := filepath.Join(t.TempDir(), "rec.jsonl")
	_, rerr, rstop := background(t, "record", "--url", url, "--topic", "svc", "--server", "s1", "--forward", "svc-real", "--notifications", "notes", "--out", file)
	require.Eventually(t, func() bool {
		code, out, _ := runGoslo("call", "--url", url, "--topic", "svc", "--server", "s1", "--timeout", "2", "whoami")
		return code == 0 && strings.TrimSpace(out) == `"s1"`
	}, 20*time.Second, 100*time.Millisecond, rerr.String()+serr.String())
	code, out, errs := runGoslo("call", "--url", url, "--topic", "svc", "--server", "s1", "echo", `{"a": 1}`)
	require.Equal(t, 0, code, errs)
	require.Equal(t, `{"a": 1}`, strings.TrimSpace(out))
	require.Eventually(t, func() bool {
		code, _, _ := runGoslo("notify", "--url", url, "--topic", "notes", "--priority", "error", "--event-type", "e.t", `{"k": 1}`)
		if code != 0 {
			return false
		}
		data, _ := os.ReadFile(file)
		return strings.Contains(string(data), `"event_type": "e.t"`)
	}, 20*time.Second, 200*time.Millisecond, rerr.String())
	require.Equal(t, 0, rstop(), rerr.String())
	lines := byMethod(readJSONLines(t, file))
	require.Equal(t, map[string]any{"result": map[string]any{"a": 1.0}}, lines["echo"]["reply"])
	require.Equal(t, map[string]any{"topic": "svc", "server": "s1"}, lines["echo"]["target"])
	require.Equal(t, "error", lines["notification e.t"]["priority"])
	require.Equal(t, map[string]any{"k": 1.0}, lines["notification e.t"]["payload"])
	// The real server answered it (the forward).
	require.Contains(t, sout.String(), `"method": "echo"`)
	require.Equal(t, 0, sstop(), serr.String())
}
