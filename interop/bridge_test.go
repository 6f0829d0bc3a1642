package interop

// Python 8.1.4 on a zmq bus and Python 18.3.1 on RabbitMQ, joined by the
// goslo bridge command (issue 13): each Python side calls, casts and fans
// out to a server of the other, and notifications cross both ways.

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/redistest"
	"github.com/goslo/goslo/matchmaker"
)

// zmqPyResult is rpc_peer.py client's answer.
type zmqPyResult struct {
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Lost   int             `json:"lost"`
	Error  *struct {
		Class, Module, Message string
	} `json:"error"`
}

// bridgeProc is a running `goslo bridge`.
type bridgeProc struct {
	errb *safeBuffer
	stop func() // "quit" on stdin, then a clean exit
	term func() // SIGTERM, then a clean exit
}

// startBridgeCmd runs `goslo bridge` and waits for the mirrors it should
// serve ("<side> <topic> <server>" as logged). stop sends "quit" and waits
// for a clean exit (also done at cleanup).
func startBridgeCmd(t *testing.T, bin string, args []string, serving ...string) *bridgeProc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"bridge"}, args...)...)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	errb := &safeBuffer{}
	cmd.Stderr = errb
	require.NoError(t, cmd.Start())
	var once sync.Once
	end := func(how func()) {
		once.Do(func() {
			how()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("goslo bridge: %v\n%s", err, errb.String())
				}
			case <-time.After(40 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Errorf("goslo bridge did not stop on quit\n%s", errb.String())
			}
		})
	}
	stop := func() { end(func() { _, _ = stdin.Write([]byte("quit\n")) }) }
	term := func() { end(func() { _ = cmd.Process.Signal(syscall.SIGTERM) }) }
	t.Cleanup(stop)
	require.Eventually(t, func() bool {
		s := errb.String()
		for _, m := range serving {
			f := strings.Fields(m)
			if !strings.Contains(s, `msg="bridge: serving" side=`+f[0]+` topic=`+f[1]+` server=`+f[2]+` `) {
				return false
			}
		}
		return true
	}, 60*time.Second, 50*time.Millisecond, "the bridge never served %v:\n%s", serving, errb.String())
	return &bridgeProc{errb: errb, stop: stop, term: term}
}

// bulkCalls is how many calls each way the bulk case makes.
var bulkCalls = 1000

func TestBridgePythonZmqRabbit(t *testing.T) {
	defer stopSharedOnPanic()
	red := redistest.Start(t)
	zurl := pyTransportURL(red.Addr)
	_, rurl := rabbitVhost(t, "goslo-bridge")

	pyz := StartProc(t, EnvZMQ814, "rpc_peer.py", "server", zurl, "bt", "pyz")
	pyr := StartRabbitPeer(t, "server", rurl, RabbitPeerConfig{Topic: "bt", Servers: []string{"pyr"}})
	// A binary of its own: the test outlives other tests' temporary files.
	bin := filepath.Join(t.TempDir(), "goslo")
	out, err := exec.Command("go", "build", "-o", bin, filepath.Join(RepoRoot(), "cmd", "goslo")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	bargs := []string{"--url", zurl, "--url", rurl, "--topic", "bt", "--notifications", "bn",
		"--server", "pyr", "--discover-every", "0.5", "--log-level", "debug", "--group", "py"}
	br := startBridgeCmd(t, bin, bargs, "zmq bt pyr", "rabbit bt pyz")
	errb := br.errb
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("first bridge's stderr:\n%s", errb.String())
			t.Logf("last bridge's stderr:\n%s", br.errb.String())
		}
	})
	// The zmq client refreshes its routing table every 2 s, as
	// docs/migration.md advises where bridges are restarted or doubled.
	zc := StartProc(t, EnvZMQ814, "rpc_peer.py", "client", zurl+"&zmq_target_update=2")
	rc := StartRabbitPeer(t, "client", rurl, RabbitPeerConfig{})

	lost := 0
	zcall := func(req map[string]any) zmqPyResult {
		t.Helper()
		if _, ok := req["topic"]; !ok {
			req["topic"] = "bt"
		}
		if _, ok := req["timeout"]; !ok {
			req["timeout"] = 10
		}
		req["retries"] = 2 // the 8.1.4 client's own reply race (docs/interop.md), counted apart
		zc.Send(req)
		var res zmqPyResult
		zc.NextJSON(60*time.Second, &res)
		lost += res.Lost
		return res
	}
	defer func() {
		if lost > 0 {
			t.Logf("the python 8.1.4 client lost %d replies to its own reply-tracking race and retried", lost)
		}
		require.LessOrEqual(t, lost, 3)
	}()
	rctxT := pyArg(t, goslo.NewMap("user", "alice", "roles", []any{"admin"}, "request_id", "req-\u2603"))

	t.Run("8.1.4 zmq client -> 18.3.1 rabbit server", func(t *testing.T) {
		res := zcall(map[string]any{"op": "call", "server": "pyr", "method": "echo", "args": pyArg(t, goslo.NewMap("a", int64(1), "s", "h\u00e9llo")), "context": rctxT})
		require.True(t, res.OK, "%+v", res.Error)
		require.JSONEq(t, `{"$dict": [["a", 1], ["s", "h\u00e9llo"]]}`, string(res.Result))
		ev := pyr.Event(10 * time.Second)
		require.Equal(t, "echo", ev["method"])
		require.Equal(t, "pyr", ev["server"])
		// 18.3.1 servers add client_timeout (from _timeout, null here) to
		// every context they hand an endpoint, bridged or not.
		require.True(t, envelope.Equal(goslo.NewMap("user", "alice", "roles", []any{"admin"}, "request_id", "req-\u2603", "client_timeout", nil), pyValue(t, ev["context"])),
			"the rabbit server sees the zmq caller's context: %v", ev["context"])

		res = zcall(map[string]any{"op": "call", "server": "pyr", "method": "context", "context": rctxT})
		require.True(t, res.OK, "%+v", res.Error)
		require.True(t, envelope.Equal(goslo.NewMap("user", "alice", "roles", []any{"admin"}, "request_id", "req-\u2603", "client_timeout", nil), pyValue(t, res.Result)), string(res.Result))
		pyr.Event(10 * time.Second)

		res = zcall(map[string]any{"op": "call", "server": "pyr", "method": "boom", "args": pyArg(t, goslo.NewMap("message", "kaboom \u2603"))})
		require.False(t, res.OK)
		require.Equal(t, "ValueError", res.Error.Class)
		require.Equal(t, "builtins", res.Error.Module)
		require.Contains(t, res.Error.Message, "kaboom \u2603")
		pyr.Event(10 * time.Second)

		res = zcall(map[string]any{"op": "call", "server": "pyr", "method": "nope"})
		require.False(t, res.OK)
		// As from any server: the 8.1.4 client does not rebuild exceptions
		// of modules outside allowed_remote_exmods; the remote class and
		// the 18.3.1 server's traceback come through.
		require.Equal(t, "RemoteError", res.Error.Class, "%+v", res.Error)
		require.True(t, strings.HasPrefix(res.Error.Message, "Remote error: NoSuchMethod Endpoint does not support RPC method nope"), res.Error.Message)
		require.Contains(t, res.Error.Message, "oslo_messaging/rpc/dispatcher.py")

		res = zcall(map[string]any{"op": "cast", "server": "pyr", "method": "cast_me", "args": pyArg(t, goslo.NewMap("n", int64(7)))})
		require.True(t, res.OK, "%+v", res.Error)
		ev = pyr.Event(10 * time.Second)
		require.Equal(t, "cast_me", ev["method"])
		pyr.NoEvent(500 * time.Millisecond)
	})

	t.Run("18.3.1 rabbit client -> 8.1.4 zmq server", func(t *testing.T) {
		rep := rc.Do("call", map[string]any{"topic": "bt", "server": "pyz", "method": "echo", "args": map[string]any{"a": 2}, "context": map[string]any{"user": "bob"}, "timeout": 20})
		require.NoError(t, rep.Err())
		require.JSONEq(t, `{"$dict": [["a", 2]]}`, string(rep.Result))
		var seen struct{ Method, Type string }
		pyz.NextJSON(10*time.Second, &seen)
		require.Equal(t, "echo", seen.Method)

		rep = rc.Do("call", map[string]any{"topic": "bt", "server": "pyz", "method": "context", "context": map[string]any{"is_admin": false, "user": "bob"}, "timeout": 20})
		require.NoError(t, rep.Err())
		require.True(t, envelope.Equal(goslo.NewMap("is_admin", false, "user", "bob"), pyValue(t, rep.Result)), string(rep.Result)) // (the request's keys are sorted by encoding/json)
		pyz.Next(10 * time.Second)

		rep = rc.Do("call", map[string]any{"topic": "bt", "server": "pyz", "method": "fail", "args": map[string]any{"message": "bad \u2603"}, "timeout": 20})
		require.Error(t, rep.Err())
		require.Equal(t, "ValueError", rep.Error.Class)
		require.Contains(t, rep.Error.Message, "bad \u2603")
		pyz.Next(10 * time.Second)

		rep = rc.Do("call", map[string]any{"topic": "bt", "server": "pyz", "method": "nope", "timeout": 20})
		require.Error(t, rep.Err())
		require.Equal(t, "NoSuchMethod", rep.Error.ExcType, "%+v", rep.Error)

		// call monitor: the bridge's rabbit side sends heartbeats while the zmq server sleeps
		rep = rc.Do("call", map[string]any{"topic": "bt", "server": "pyz", "method": "sleep", "args": map[string]any{"seconds": 3.5}, "timeout": 30, "call_monitor_timeout": 2})
		require.NoError(t, rep.Err())
		require.GreaterOrEqual(t, rep.ElapsedMS, int64(3400))
		pyz.Next(10 * time.Second)

		rep = rc.Do("cast", map[string]any{"topic": "bt", "server": "pyz", "method": "echo", "args": map[string]any{"c": true}})
		require.NoError(t, rep.Err())
		pyz.NextJSON(10*time.Second, &seen)
		require.Equal(t, "echo", seen.Method)
	})

	t.Run("fanout both ways reaches each server once", func(t *testing.T) {
		res := zcall(map[string]any{"op": "cast", "fanout": true, "method": "echo", "args": pyArg(t, goslo.NewMap("f", int64(1)))})
		require.True(t, res.OK, "%+v", res.Error)
		pyz.Next(10 * time.Second)
		require.Equal(t, "echo", pyr.Event(10 * time.Second)["method"])
		rep := rc.Do("fanout", map[string]any{"topic": "bt", "method": "echo", "args": map[string]any{"f": 2}})
		require.NoError(t, rep.Err())
		pyz.Next(10 * time.Second)
		require.Equal(t, "echo", pyr.Event(10 * time.Second)["method"])
		pyr.NoEvent(time.Second)
		select {
		case l := <-pyz.lines:
			t.Fatalf("the zmq server got a fanout twice: %s", l)
		default:
		}
	})

	t.Run("notifications both ways", func(t *testing.T) {
		zl := StartProc(t, EnvZMQ814, "rpc_peer.py", "listen", zurl, "bn")
		rl := StartRabbitPeer(t, "listener", rurl, RabbitPeerConfig{Topic: "bn", Name: "rl"})
		// A Python 8.1.4 notifier keeps the hosts it found: send once the
		// bridge's zmq listener is registered (it is, since it serves).
		mm, err := matchmaker.NewRedis(context.Background(), []matchmaker.RedisAddr{{Addr: red.Addr}}, matchmaker.DefaultConfig())
		require.NoError(t, err)
		defer mm.Close()
		require.Eventually(t, func() bool {
			hosts, _ := mm.HostsByKey(context.Background(), compat.TopicKey(compat.Router, goslo.Target{Topic: "bn.info"}))
			return len(hosts) == 2 // the Python listener and the bridge
		}, 20*time.Second, 50*time.Millisecond)
		// A notifier process of its own: in the 8.1.4 client's process a
		// second (notification) transport makes its RPC calls lose replies.
		zpn := StartProc(t, EnvZMQ814, "rpc_peer.py", "notify", zurl)
		zpn.Send(map[string]any{"topic": "bn", "publisher_id": "zmq.py", "priority": "info", "event_type": "from.zmq", "payload": pyArg(t, goslo.NewMap("k", "v"))})
		zpn.Next(20 * time.Second)
		ev := rl.Event(20 * time.Second)
		require.Equal(t, "from.zmq", ev["event_type"])
		require.Equal(t, "zmq.py", ev["publisher_id"])
		require.Equal(t, "info", ev["priority"])
		var zn struct {
			EventType string `json:"event_type"`
		}
		zl.NextJSON(20*time.Second, &zn)
		require.Equal(t, "from.zmq", zn.EventType)

		rep := rc.Do("ping", nil)
		require.NoError(t, rep.Err())
		rn := StartRabbitPeer(t, "notifier", rurl, RabbitPeerConfig{})
		rep = rn.Do("notify", map[string]any{"priority": "error", "event_type": "from.rabbit", "payload": map[string]any{"x": 1}, "publisher_id": "rabbit.py", "topics": []string{"bn"}})
		require.NoError(t, rep.Err())
		ev = rl.Event(20 * time.Second)
		require.Equal(t, "from.rabbit", ev["event_type"])
		zl.NextJSON(20*time.Second, &zn)
		require.Equal(t, "from.rabbit", zn.EventType)
		rl.NoEvent(time.Second)
		select {
		case l := <-zl.lines:
			t.Fatalf("the zmq listener got a notification twice: %s", l)
		default:
		}
	})

	t.Run("1000 calls each way, none lost", func(t *testing.T) {
		before := lost
		start := time.Now()
		for i := 0; i < bulkCalls; i++ {
			res := zcall(map[string]any{"op": "call", "server": "pyr", "method": "echo", "args": map[string]any{"$dict": [][]any{{"i", i}}}})
			require.True(t, res.OK, "call %d: %+v", i, res.Error)
			require.JSONEq(t, fmt.Sprintf(`{"$dict": [["i", %d]]}`, i), string(res.Result))
			for j := 0; j <= res.Lost; j++ { // a retried call ran again
				pyr.Event(10 * time.Second)
			}
		}
		t.Logf("%d zmq->rabbit calls in %v", bulkCalls, time.Since(start))
		start = time.Now()
		for i := 0; i < bulkCalls; i++ {
			rep := rc.Do("call", map[string]any{"topic": "bt", "server": "pyz", "method": "echo", "args": map[string]any{"i": i}, "timeout": 20})
			require.NoError(t, rep.Err(), "call %d", i)
			require.JSONEq(t, fmt.Sprintf(`{"$dict": [["i", %d]]}`, i), string(rep.Result))
			pyz.Next(10 * time.Second)
		}
		t.Logf("%d rabbit->zmq calls in %v", bulkCalls, time.Since(start))
		raced := lost - before
		lost = before // counted apart
		t.Logf("%d calls each way through the bridge; the 8.1.4 client lost %d replies to its own race (retried)", bulkCalls, raced)
		require.LessOrEqual(t, raced, 20)
	})

	t.Run("bridge restarted mid-traffic", func(t *testing.T) {
		const n = 150
		// Calls sent every 20 ms for 3 s from each side; the bridge is
		// stopped (draining) and started again 1 s in.
		idc := make(chan int, n)
		go func() {
			defer close(idc)
			for i := 0; i < n; i++ {
				idc <- rc.Send("call", map[string]any{"topic": "bt", "server": "pyz", "method": "echo", "args": map[string]any{"r": i}, "timeout": 60})
				time.Sleep(20 * time.Millisecond)
			}
		}()
		zsent := make(chan struct{})
		go func() {
			defer close(zsent)
			for i := 0; i < n; i++ {
				zc.Send(map[string]any{"op": "call", "topic": "bt", "server": "pyr", "method": "echo", "args": map[string]any{"$dict": [][]any{{"r", i}}}, "timeout": 10, "retries": 3})
				time.Sleep(20 * time.Millisecond)
			}
		}()
		time.Sleep(time.Second)
		br.term()
		require.Contains(t, br.errb.String(), "goslo bridge: stopping; draining in-flight calls")
		br = startBridgeCmd(t, bin, bargs, "zmq bt pyr", "rabbit bt pyz")
		i := 0
		for id := range idc {
			rep := rc.Wait(id, 120*time.Second)
			require.NoError(t, rep.Err(), "call %d", i)
			require.JSONEq(t, fmt.Sprintf(`{"$dict": [["r", %d]]}`, i), string(rep.Result))
			i++
		}
		<-zsent
		retried := 0
		for i := 0; i < n; i++ {
			var res zmqPyResult
			zc.NextJSON(120*time.Second, &res)
			require.True(t, res.OK, "zmq call %d: %+v", i, res.Error)
			require.JSONEq(t, fmt.Sprintf(`{"$dict": [["r", %d]]}`, i), string(res.Result))
			retried += res.Lost
		}
		t.Logf("across the restart: %d rabbit->zmq and %d zmq->rabbit calls answered; the 8.1.4 client timed out and retried %d times", n, n, retried)
		for i := 0; i < n; i++ {
			select {
			case <-pyz.lines:
			case <-time.After(10 * time.Second):
				t.Fatalf("the zmq server printed %d lines for %d calls", i, n)
			}
		}
		// Every call ran; a call the 8.1.4 client retried may have run twice
		// (its reply lost) or once (its first attempt lost in the stopping
		// bridge's socket, as with any zmq server that stops).
		ran := map[string]int{}
		extra := 0
		for len(ran) < n {
			ev := pyr.Event(10 * time.Second)
			ran[fmt.Sprint(ev["args"])]++
		}
		for {
			if _, ok := rabbitEventWithin(pyr, time.Second); !ok {
				break
			}
			extra++
		}
		for _, c := range ran {
			extra += c - 1
		}
		require.LessOrEqual(t, extra, retried, "runs beyond one per call")
		require.LessOrEqual(t, retried, 3)
		// the restarted bridge carried part of the traffic, both ways
		require.Contains(t, br.errb.String(), `msg="bridge: forwarded" direction=zmq->rabbit kind=call`)
		require.Contains(t, br.errb.String(), `msg="bridge: forwarded" direction=rabbit->zmq kind=call`)
	})

	t.Run("two bridges at once", func(t *testing.T) {
		br2 := startBridgeCmd(t, bin, bargs, "zmq bt pyr", "rabbit bt pyz")
		time.Sleep(3 * time.Second) // the zmq client's routing table learns the second bridge's mirror
		for round := 0; round < 3; round++ {
			res := zcall(map[string]any{"op": "cast", "fanout": true, "method": "echo", "args": pyArg(t, goslo.NewMap("f", int64(round)))})
			require.True(t, res.OK, "%+v", res.Error)
			rep := rc.Do("fanout", map[string]any{"topic": "bt", "method": "echo", "args": map[string]any{"g": round}})
			require.NoError(t, rep.Err())
			for i := 0; i < 2; i++ {
				pyz.Next(10 * time.Second)
				require.Equal(t, "echo", pyr.Event(10 * time.Second)["method"])
			}
			pyr.NoEvent(time.Second)
			select {
			case l := <-pyz.lines:
				t.Fatalf("the zmq server got a fanout twice: %s", l)
			default:
			}
		}
		for i := 0; i < 20; i++ {
			res := zcall(map[string]any{"op": "call", "server": "pyr", "method": "whoami"})
			require.True(t, res.OK, "%+v", res.Error)
			require.JSONEq(t, `"pyr"`, string(res.Result))
			pyr.Event(10 * time.Second)
			rep := rc.Do("call", map[string]any{"topic": "bt", "server": "pyz", "method": "whoami", "timeout": 20})
			require.NoError(t, rep.Err())
			require.JSONEq(t, `"pyz"`, string(rep.Result))
			pyz.Next(10 * time.Second)
		}
		require.Contains(t, br2.errb.String(), `msg="bridge: forwarded" direction=rabbit->zmq kind=call`, "the second bridge serves calls too")
	})

	require.Contains(t, errb.String(), "in_id=")
	require.Contains(t, errb.String(), "out_id=")
}

// rabbitEventWithin is the next event of r, or false when none comes
// within d.
func rabbitEventWithin(r *RabbitPeer, d time.Duration) (map[string]any, bool) {
	deadline := time.After(d)
	for {
		r.mu.Lock()
		if len(r.events) > 0 {
			e := r.events[0]
			r.events = r.events[1:]
			r.mu.Unlock()
			return e, true
		}
		r.mu.Unlock()
		select {
		case l, ok := <-r.lines:
			if !ok {
				return nil, false
			}
			r.file(l)
		case <-deadline:
			return nil, false
		}
	}
}
