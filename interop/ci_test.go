package interop

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/redistest"
)

// ciScript is the scripted server the Python clients call: one method per
// case of issue 15.
const ciScript = `# goslo serve --script, as a CI job stands a fake peer up
version: "1.3"
methods:
  select_destinations:
    result: [{"host": "node-1", "nodename": "node-1", "limits": {}}]
  check_quota:
    error: {class: ValueError, module: builtins, message: "quota exceeded"}
  build_and_run_instance:
    error: {class: InstanceExists, module: nova.exception, message: "Instance i-1 already exists.", kwargs: {name: i-1}}
  slow_method:
    delay: 3s
    result: true
  get_by_uuid:
    - match: {uuid: "u-1"}
      result: {"uuid": "u-1", "vm_state": "active"}
    - error: {class: KeyError, message: "no such instance"}
  whoami: builtin
`

// scriptedServe runs `goslo serve --script` (the script above) until the
// test ends ("quit", then a clean exit within 15 s).
func scriptedServe(t *testing.T, url, topic, server string, extra ...string) (stdout, stderr *safeBuffer) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "fake.yaml")
	require.NoError(t, os.WriteFile(file, []byte(ciScript), 0o600))
	args := append([]string{"serve", "--url", url, "--topic", topic, "--server", server, "--script", file}, extra...)
	cmd := exec.Command(gosloBin(t), args...)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, stderr = &safeBuffer{}, &safeBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_, _ = stdin.Write([]byte("quit\n"))
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("goslo serve --script: %v\n%s", err, stderr.String())
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
			t.Errorf("goslo serve --script did not stop on quit\n%s", stderr.String())
		}
	})
	return stdout, stderr
}

// TestScriptedServerPython814: an oslo.messaging 8.1.4 client (zmq) calls
// a scripted goslo server: a plain result, an allowed exception (ValueError
// arrives as ValueError), a foreign one (nova.exception arrives as
// RemoteError), a delay past the caller's timeout, a match on args and an
// unknown method.
func TestScriptedServerPython814(t *testing.T) {
	r := redistest.Start(t)
	url := pyTransportURL(r.Addr)
	// --min-reply-delay: the 8.1.4 client's own race with fast replies
	// (docs/interop.md); retries below count what it still loses.
	_, serr := scriptedServe(t, url, "scheduler", "fake-1", "--min-reply-delay", "0.005")
	pc := StartProc(t, EnvZMQ814, "rpc_peer.py", "client", url)
	lost := 0
	call := func(method string, args any, timeout int) zmqPyResult {
		t.Helper()
		pc.Send(map[string]any{"op": "call", "topic": "scheduler", "server": "fake-1", "version": "1.3", "method": method,
			"args": pyArg(t, args), "timeout": timeout, "retries": 2})
		var res zmqPyResult
		pc.NextJSON(60*time.Second, &res)
		lost += res.Lost
		return res
	}
	defer func() { require.LessOrEqual(t, lost, 3, "replies the 8.1.4 client lost to its own race") }()
	require.Eventually(t, func() bool { return call("whoami", goslo.NewMap(), 2).OK }, 30*time.Second, 100*time.Millisecond,
		"goslo serve --script never answered; stderr: %s", serr.String())

	res := call("select_destinations", goslo.NewMap("spec", "x"), 10)
	require.True(t, res.OK, "%+v", res.Error)
	require.True(t, envelope.Equal([]any{goslo.NewMap("host", "node-1", "nodename", "node-1", "limits", goslo.NewMap())}, pyValue(t, res.Result)), string(res.Result))

	res = call("check_quota", goslo.NewMap(), 10)
	require.False(t, res.OK)
	require.Equal(t, "ValueError", res.Error.Class)
	require.Equal(t, "builtins", res.Error.Module)
	require.True(t, strings.HasPrefix(res.Error.Message, "quota exceeded\n"), res.Error.Message) // oslo adds the remote traceback

	res = call("build_and_run_instance", goslo.NewMap("instance", "i-1"), 10)
	require.False(t, res.OK)
	require.Equal(t, "RemoteError", res.Error.Class, "%+v", res.Error)
	require.True(t, strings.HasPrefix(res.Error.Message, "Remote error: InstanceExists Instance i-1 already exists."), res.Error.Message)

	res = call("get_by_uuid", goslo.NewMap("uuid", "u-1", "expected_attrs", []any{"flavor"}), 10)
	require.True(t, res.OK, "%+v", res.Error)
	require.True(t, envelope.Equal(goslo.NewMap("uuid", "u-1", "vm_state", "active"), pyValue(t, res.Result)), string(res.Result))
	res = call("get_by_uuid", goslo.NewMap("uuid", "u-2"), 10)
	require.False(t, res.OK)
	require.Equal(t, "KeyError", res.Error.Class)

	res = call("no_such_method", goslo.NewMap(), 10)
	require.False(t, res.OK)
	require.Equal(t, "RemoteError", res.Error.Class, "%+v", res.Error)
	require.True(t, strings.HasPrefix(res.Error.Message, "Remote error: NoSuchMethod Endpoint does not support RPC method no_such_method"), res.Error.Message)

	start := time.Now()
	pc.Send(map[string]any{"op": "call", "topic": "scheduler", "server": "fake-1", "version": "1.3", "method": "slow_method", "timeout": 1})
	pc.NextJSON(60*time.Second, &res)
	require.False(t, res.OK)
	require.Equal(t, "MessagingTimeout", res.Error.Class)
	require.Less(t, time.Since(start), 3*time.Second, "the caller gave up at its timeout")
}

// TestScriptedServerPython1831: the same cases from an oslo.messaging
// 18.3.1 client on RabbitMQ.
func TestScriptedServerPython1831(t *testing.T) {
	defer stopSharedOnPanic()
	_, url := rabbitVhost(t, "goslo-ci-script")
	_, serr := scriptedServe(t, url, "scheduler", "fake-1")
	rc := StartRabbitPeer(t, "client", url, RabbitPeerConfig{})
	call := func(method string, args any, timeout int) RabbitReply {
		t.Helper()
		return rc.Do("call", map[string]any{"topic": "scheduler", "server": "fake-1", "version": "1.3", "method": method,
			"args": pyArg(t, args), "timeout": timeout})
	}
	require.Eventually(t, func() bool { return call("whoami", goslo.NewMap(), 2).OK }, 30*time.Second, 100*time.Millisecond,
		"goslo serve --script never answered; stderr: %s", serr.String())

	rep := call("select_destinations", goslo.NewMap("spec", "x"), 10)
	require.NoError(t, rep.Err())
	require.True(t, envelope.Equal([]any{goslo.NewMap("host", "node-1", "nodename", "node-1", "limits", goslo.NewMap())}, pyValue(t, rep.Result)), string(rep.Result))

	rep = call("check_quota", goslo.NewMap(), 10)
	require.Error(t, rep.Err())
	require.Equal(t, "ValueError", rep.Error.Class)
	require.Equal(t, "builtins", rep.Error.Module)
	require.True(t, strings.HasPrefix(rep.Error.Message, "quota exceeded\n"), rep.Error.Message) // oslo adds the remote traceback

	rep = call("build_and_run_instance", goslo.NewMap("instance", "i-1"), 10)
	require.Error(t, rep.Err())
	require.Equal(t, "RemoteError", rep.Error.Class, "%+v", rep.Error)
	require.Equal(t, "InstanceExists", rep.Error.ExcType)
	require.Equal(t, "Instance i-1 already exists.", rep.Error.Value)

	rep = call("get_by_uuid", goslo.NewMap("uuid", "u-1", "expected_attrs", []any{"flavor"}), 10)
	require.NoError(t, rep.Err())
	require.True(t, envelope.Equal(goslo.NewMap("uuid", "u-1", "vm_state", "active"), pyValue(t, rep.Result)), string(rep.Result))
	rep = call("get_by_uuid", goslo.NewMap("uuid", "u-2"), 10)
	require.Error(t, rep.Err())
	require.Equal(t, "KeyError", rep.Error.Class)

	rep = call("no_such_method", goslo.NewMap(), 10)
	require.Error(t, rep.Err())
	require.Equal(t, "RemoteError", rep.Error.Class, "%+v", rep.Error)
	require.Equal(t, "NoSuchMethod", rep.Error.ExcType)

	start := time.Now()
	rep = call("slow_method", goslo.NewMap(), 1)
	require.Error(t, rep.Err())
	require.Equal(t, "MessagingTimeout", rep.Error.Class)
	require.Less(t, time.Since(start), 3*time.Second, "the caller gave up at its timeout")
}

// gosloCmd runs a long-running goslo command; stop writes "quit" and waits
// (15 s at most) for a clean exit. It also runs at cleanup.
func gosloCmd(t *testing.T, args ...string) (stderr *safeBuffer, stop func()) {
	t.Helper()
	cmd := exec.Command(gosloBin(t), args...)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stderr = &safeBuffer{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_, _ = stdin.Write([]byte("quit\n"))
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("goslo %s: %v\n%s", args[0], err, stderr.String())
				}
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Signal(syscall.SIGKILL)
				<-done
				t.Errorf("goslo %s did not stop on quit\n%s", args[0], stderr.String())
			}
		})
	}
	t.Cleanup(stop)
	return stderr, stop
}

// recordedLines reads a goslo record file, keyed "<type> <method>" (the
// last of each).
func recordedLines(t *testing.T, file string) (map[string]map[string]any, int) {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	out := map[string]map[string]any{}
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		out[m["type"].(string)+" "+m["method"].(string)] = m
		n++
	}
	return out, n
}

// TestRecordReplayPython814: goslo record stands in front of a Python
// 8.1.4 service on zmq (it serves the topic and forwards to the service's
// real topic), records a Python client's calls and cast with their
// replies; goslo replay --compare sends them to the service again and
// finds the same replies.
func TestRecordReplayPython814(t *testing.T) {
	r := redistest.Start(t)
	url := pyTransportURL(r.Addr)
	pys := StartProc(t, EnvZMQ814, "rpc_peer.py", "server", url, "svc-real", "py1")
	file := filepath.Join(t.TempDir(), "rec.jsonl")
	rerr, rstop := gosloCmd(t, "record", "--url", url, "--topic", "svc", "--server", "py1", "--forward", "svc-real", "--out", file)
	pc := StartProc(t, EnvZMQ814, "rpc_peer.py", "client", url)
	lost := 0
	call := func(op, method string, args any) zmqPyResult {
		t.Helper()
		pc.Send(map[string]any{"op": op, "topic": "svc", "server": "py1", "method": method, "args": pyArg(t, args),
			"context": pyArg(t, goslo.NewMap("user", "alice")), "timeout": 5, "retries": 2})
		var res zmqPyResult
		pc.NextJSON(60*time.Second, &res)
		lost += res.Lost
		return res
	}
	require.Eventually(t, func() bool { return call("call", "whoami", goslo.NewMap()).OK }, 30*time.Second, 100*time.Millisecond,
		"goslo record never answered; stderr: %s", rerr.String())
	res := call("call", "echo", goslo.NewMap("a", int64(1), "s", "h\u00e9llo"))
	require.True(t, res.OK, "%+v", res.Error)
	res = call("call", "fail", goslo.NewMap("message", "bad"))
	require.False(t, res.OK)
	require.Equal(t, "ValueError", res.Error.Class)
	res = call("cast", "echo", goslo.NewMap("c", int64(2)))
	require.True(t, res.OK, "%+v", res.Error)
	// The service got the forwarded cast.
	for {
		l := pys.Next(10 * time.Second)
		if strings.Contains(l, `"method": "echo"`) && strings.Contains(l, `["c", 2]`) {
			break
		}
	}
	require.Eventually(t, func() bool {
		data, _ := os.ReadFile(file)
		return strings.Contains(string(data), `"c": 2`)
	}, 10*time.Second, 20*time.Millisecond)
	rstop()
	require.LessOrEqual(t, lost, 3)

	lines, n := recordedLines(t, file)
	echo := lines["call echo"]
	require.Equal(t, map[string]any{"topic": "svc", "server": "py1", "version": "1.0"}, echo["target"])
	require.Equal(t, map[string]any{"a": 1.0, "s": "h\u00e9llo"}, echo["args"])
	require.Equal(t, map[string]any{"user": "alice"}, echo["context"])
	require.Equal(t, map[string]any{"result": map[string]any{"a": 1.0, "s": "h\u00e9llo"}}, echo["reply"])
	require.Equal(t, map[string]any{"failure": map[string]any{"class": "ValueError", "module": "builtins", "message": "bad"}}, lines["call fail"]["reply"])
	require.Equal(t, map[string]any{"result": "py1"}, lines["call whoami"]["reply"])
	require.Equal(t, map[string]any{"c": 2.0}, lines["cast echo"]["args"])

	// The service, replayed to where it listens: the same replies.
	out, errs, code := runGoslo(t, "replay", "--url", url, "--in", file, "--topic", "svc-real", "--compare", "--rate", "20")
	require.Equal(t, 0, code, errs+out)
	require.Empty(t, out)
	require.Contains(t, errs, fmt.Sprintf("goslo replay: %d calls, 1 casts, 0 fanouts, 0 notifications sent; 0 failed; 0 replies differ", n-1))
}

// TestRecordReplayPython1831: goslo record reads a copy of a Python
// 18.3.1 service's traffic on RabbitMQ through its own queue (the service
// still gets everything) with the replies from the firehose; goslo replay
// --compare against the service finds the same replies.
func TestRecordReplayPython1831(t *testing.T) {
	defer stopSharedOnPanic()
	_, url := rabbitVhost(t, "goslo-ci-record")
	pyr := StartRabbitPeer(t, "server", url, RabbitPeerConfig{Topic: "svc", Servers: []string{"srv1"}})
	file := filepath.Join(t.TempDir(), "rec.jsonl")
	rerr, rstop := gosloCmd(t, "record", "--url", url, "--topic", "svc", "--firehose", "--out", file)
	require.Eventually(t, func() bool { return strings.Contains(rerr.String(), "goslo record: recording topic svc") }, 30*time.Second, 20*time.Millisecond, rerr.String())
	rc := StartRabbitPeer(t, "client", url, RabbitPeerConfig{})
	do := func(op, method string, args any, server string) RabbitReply {
		return rc.Do(op, map[string]any{"topic": "svc", "server": server, "method": method, "args": pyArg(t, args),
			"context": pyArg(t, goslo.NewMap("user", "alice")), "timeout": 10})
	}
	rep := do("call", "echo", goslo.NewMap("a", int64(1), "s", "h\u00e9llo"), "srv1")
	require.NoError(t, rep.Err())
	rep = do("call", "boom", goslo.NewMap("message", "bad"), "")
	require.Error(t, rep.Err())
	require.Equal(t, "ValueError", rep.Error.Class)
	rep = do("call", "whoami", goslo.NewMap(), "srv1")
	require.NoError(t, rep.Err())
	rep = do("cast", "cast_me", goslo.NewMap("c", int64(2)), "srv1")
	require.NoError(t, rep.Err())
	rep = do("fanout", "fanout_me", goslo.NewMap("f", int64(3)), "")
	require.NoError(t, rep.Err())
	// The service got every request: the recorder took none.
	got := map[string]bool{}
	for len(got) < 5 {
		ev := pyr.Event(10 * time.Second)
		if ev["event"] == "request" {
			got[ev["method"].(string)] = true
		}
	}
	require.Eventually(t, func() bool {
		data, _ := os.ReadFile(file)
		return strings.Count(string(data), "\n") == 5
	}, 10*time.Second, 20*time.Millisecond)
	rstop()

	lines, _ := recordedLines(t, file)
	echo := lines["call echo"]
	require.Equal(t, map[string]any{"topic": "svc", "server": "srv1"}, echo["target"])
	require.Equal(t, map[string]any{"a": 1.0, "s": "h\u00e9llo"}, echo["args"])
	require.Equal(t, "alice", echo["context"].(map[string]any)["user"])
	require.Equal(t, map[string]any{"result": map[string]any{"a": 1.0, "s": "h\u00e9llo"}}, echo["reply"])
	require.Equal(t, map[string]any{"topic": "svc"}, lines["call boom"]["target"])
	require.Equal(t, map[string]any{"failure": map[string]any{"class": "ValueError", "module": "builtins", "message": "bad"}}, lines["call boom"]["reply"])
	require.Equal(t, map[string]any{"result": "srv1"}, lines["call whoami"]["reply"])
	require.NotContains(t, lines["cast cast_me"], "reply")
	require.Equal(t, true, lines["fanout fanout_me"]["target"].(map[string]any)["fanout"])

	out, errs, code := runGoslo(t, "replay", "--url", url, "--in", file, "--compare")
	require.Equal(t, 0, code, errs+out)
	require.Empty(t, out)
	require.Contains(t, errs, "goslo replay: 3 calls, 1 casts, 1 fanouts, 0 notifications sent; 0 failed; 0 replies differ")
	got = map[string]bool{}
	for len(got) < 5 {
		ev := pyr.Event(10 * time.Second)
		if ev["event"] == "request" {
			got[ev["method"].(string)] = true
		}
	}
}
