package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/internal/rabbittest"
	"github.com/goslo/goslo/internal/redistest"
)

// One private RabbitMQ node serves every test of the package that needs
// one (a vhost each); it starts with the first such test and stops after
// the last test (TestMain).
var broker struct {
	once sync.Once
	node *rabbittest.Node
	tb   *mainTB
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if broker.tb != nil && !broker.tb.cleanup() && code == 0 {
		code = 1
	}
	os.Exit(code)
}

// rabbitVhost returns the shared node and a fresh vhost named after the
// test.
func rabbitVhost(t *testing.T) (*rabbittest.Node, string) {
	t.Helper()
	broker.once.Do(func() {
		broker.tb = &mainTB{}
		// Three tries: FreePort's ports may be taken by another process
		// before the node binds them (eaddrinuse).
		for try := 0; try < 3; try++ {
			if broker.err = broker.tb.run(func() { broker.node = rabbittest.Start(broker.tb) }); broker.err == nil {
				return
			}
		}
	})
	require.NoError(t, broker.err, "starting the shared RabbitMQ node")
	vhost := "goslo-" + regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")
	require.NoError(t, broker.tb.run(func() { broker.node.AddVhost(vhost) }))
	return broker.node, vhost
}

// mainTB is the testing.TB of the shared node, which outlives any one
// test: Fatal panics (run turns it into an error), cleanups run when
// TestMain calls cleanup. Only the methods rabbittest uses are provided.
type mainTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	dirs     []string
	failed   bool
}

type tbFatal string

func (m *mainTB) Helper()                           {}
func (m *mainTB) Fatal(args ...any)                 { panic(tbFatal(fmt.Sprint(args...))) }
func (m *mainTB) Fatalf(format string, args ...any) { panic(tbFatal(fmt.Sprintf(format, args...))) }
func (m *mainTB) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "shared rabbitmq node: "+format+"\n", args...)
}
func (m *mainTB) Errorf(format string, args ...any) {
	m.mu.Lock()
	m.failed = true
	m.mu.Unlock()
	m.Logf(format, args...)
}
func (m *mainTB) Cleanup(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cleanups = append(m.cleanups, f)
}
func (m *mainTB) TempDir() string {
	d, err := os.MkdirTemp("", "goslo-cmd-rabbit-")
	if err != nil {
		m.Fatal(err)
	}
	m.mu.Lock()
	m.dirs = append(m.dirs, d)
	m.mu.Unlock()
	return d
}

// run calls f, returning a Fatal as an error.
func (m *mainTB) run(f func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			msg, ok := p.(tbFatal)
			if !ok {
				panic(p)
			}
			err = fmt.Errorf("%s", string(msg))
		}
	}()
	f()
	return nil
}

// cleanup stops the node (by pid) and removes its directories; false when
// something was left running.
func (m *mainTB) cleanup() bool {
	m.mu.Lock()
	cs := m.cleanups
	m.cleanups = nil
	m.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		if err := m.run(cs[i]); err != nil {
			m.Errorf("cleanup: %v", err)
		}
	}
	for _, d := range m.dirs {
		_ = os.RemoveAll(d)
	}
	return !m.failed
}

// lockedBuffer is an output written by a command's goroutines and read by
// the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// lines decodes the JSON lines written so far.
func (w *lockedBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(w.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), "line %q", l)
		out = append(out, m)
	}
	return out
}

// background runs a long-running goslo command until stop writes "quit";
// stop returns its exit code.
func background(t *testing.T, args ...string) (stdout, stderr *lockedBuffer, stop func() int) {
	stdout, stderr = &lockedBuffer{}, &lockedBuffer{}
	r, w := io.Pipe()
	done := make(chan int, 1)
	go func() { done <- run(args, r, stdout, stderr) }()
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() {
			_, _ = w.Write([]byte("quit\n"))
			select {
			case code = <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("goslo %s did not stop within 30 s; stderr:\n%s", args[0], stderr.String())
			}
			w.Close()
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return stdout, stderr, stop
}

// waitConsumers waits until queue exists in vhost with n consumers.
func waitConsumers(t *testing.T, node *rabbittest.Node, vhost, queue string, n int) {
	t.Helper()
	conn, err := amqp.Dial(node.AMQPURL(vhost))
	require.NoError(t, err)
	defer conn.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ch, err := conn.Channel()
		require.NoError(t, err)
		q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
		if err == nil {
			_ = ch.Close()
			if q.Consumers >= n {
				return
			}
		}
		require.True(t, time.Now().Before(deadline), "queue %s of vhost %s has no %d consumers after 30 s (%v)", queue, vhost, n, err)
		time.Sleep(100 * time.Millisecond)
	}
}

func runGoslo(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, nil, &out, &errb)
	return code, out.String(), errb.String()
}

// TestRabbitServeCallCast: goslo serve on a rabbit:// URL declares what an
// oslo.messaging 18.3.1 server declares (rabbit-wire.md §5.1) and prints
// one JSON line per request; goslo call and cast reach it through the
// topic, the server and the fanout queues.
func TestRabbitServeCallCast(t *testing.T) {
	node, vhost := rabbitVhost(t)
	url := node.URL(vhost)
	out, serr, stop := background(t, "serve", "--url", url, "--topic", "demo", "--server", "srv1")
	waitConsumers(t, node, vhost, "demo.srv1", 1)

	// The queues, exchanges and consumers of a Python server.
	queues := map[string]rabbittest.Row{}
	for _, q := range node.ListQueues(vhost) {
		queues[q["name"].(string)] = q
	}
	require.Contains(t, queues, "demo")
	require.Contains(t, queues, "demo.srv1")
	fanoutQ := ""
	for name := range queues {
		if strings.HasPrefix(name, "demo_fanout_") {
			fanoutQ = name
		}
	}
	require.Regexp(t, `^demo_fanout_[0-9a-f]{32}$`, fanoutQ)
	for _, name := range []string{"demo", "demo.srv1"} {
		require.Equal(t, false, queues[name]["durable"], name)
		require.Equal(t, []any{}, queues[name]["arguments"], name)
	}
	require.Equal(t, []any{[]any{"x-expires", "signedint", json.Number("1800000")}}, queues[fanoutQ]["arguments"])
	exchanges := map[string]rabbittest.Row{}
	for _, x := range node.ListExchanges(vhost) {
		exchanges[x["name"].(string)] = x
	}
	require.Equal(t, "topic", exchanges["openstack"]["type"])
	require.Equal(t, "fanout", exchanges["demo_fanout"]["type"])
	require.Equal(t, true, exchanges["demo_fanout"]["auto_delete"])
	tags := map[string]string{}
	for _, c := range node.ListConsumers(vhost) {
		tags[c["queue_name"].(string)] = c["consumer_tag"].(string)
	}
	require.Equal(t, map[string]string{"demo": "1", "demo.srv1": "2", fanoutQ: "3"}, tags)

	// call: to the server, then through the topic queue.
	code, res, errs := runGoslo("call", "--url", url, "--topic", "demo", "--server", "srv1", "--timeout", "20",
		"--context", `{"user": "alice"}`, "echo", `{"x": 1, "s": "h\u00e9"}`)
	require.Equal(t, 0, code, errs)
	require.JSONEq(t, `{"x": 1, "s": "hé"}`, res)
	code, res, errs = runGoslo("call", "--url", url, "--topic", "demo", "--timeout", "20", "whoami")
	require.Equal(t, 0, code, errs)
	require.Equal(t, "\"srv1\"\n", res)
	// A URL naming a dead host too (closed port): the connection fails
	// over to the live one (§2.1).
	dead := rabbittest.FreePort(t)
	multi := strings.Replace(url, "rabbit://", fmt.Sprintf("rabbit://guest:guest@127.0.0.1:%d,", dead), 1)
	code, res, errs = runGoslo("call", "--url", multi, "--topic", "demo", "--timeout", "20", "whoami")
	require.Equal(t, 0, code, errs)
	require.Equal(t, "\"srv1\"\n", res)
	code, _, errs = runGoslo("call", "--url", url, "--topic", "demo", "--timeout", "20", "fail", `{"message": "kaboom"}`)
	require.Equal(t, 1, code)
	require.Contains(t, errs, "class=ValueError")
	require.Contains(t, errs, "message=kaboom")

	// cast, and a fanout cast.
	code, _, errs = runGoslo("cast", "--url", url, "--topic", "demo", "--server", "srv1", "echo", `{"n": 2}`)
	require.Equal(t, 0, code, errs)
	code, _, errs = runGoslo("cast", "--url", url, "--topic", "demo", "--fanout", "echo", `{"to": "all"}`)
	require.Equal(t, 0, code, errs)
	require.Eventually(t, func() bool { return len(out.lines(t)) >= 6 }, 20*time.Second, 50*time.Millisecond, "serve printed:\n%s", out.String())

	lines := out.lines(t)
	require.Len(t, lines, 6, out.String())
	byMethod := func(typ, method string) map[string]any {
		for _, l := range lines {
			if l["type"] == typ && l["method"] == method {
				return l
			}
		}
		t.Fatalf("no %s %s line in:\n%s", typ, method, out.String())
		return nil
	}
	echo := byMethod("call", "echo")
	require.Equal(t, map[string]any{"x": 1.0, "s": "hé"}, echo["args"])
	require.Equal(t, map[string]any{"user": "alice"}, echo["context"])
	require.Regexp(t, `^[0-9a-f]{32}$`, echo["message_id"])
	byMethod("call", "whoami")
	byMethod("call", "fail")
	require.Equal(t, map[string]any{"n": 2.0}, byMethod("cast", "echo")["args"])
	require.Equal(t, map[string]any{"to": "all"}, byMethod("fanout", "echo")["args"])

	require.Equal(t, 0, stop(), serr.String())
	// Stopped as a Python server stops (§8.6): the fanout queue is gone,
	// the topic queues stay.
	left := map[string]bool{}
	for _, q := range node.ListQueues(vhost, "name") {
		left[q["name"].(string)] = true
	}
	require.False(t, left[fanoutQ])
	require.True(t, left["demo"] && left["demo.srv1"])
}

// TestRabbitNotifyListenPool: goslo listen --pool consumes the pool's
// queue; goslo notify sends messaging (1.0, bare) or messagingv2
// (enveloped, the default) notifications, as the wire shows.
func TestRabbitNotifyListenPool(t *testing.T) {
	node, vhost := rabbitVhost(t)
	url := node.URL(vhost)
	out, serr, stop := background(t, "listen", "--url", url, "--topic", "events", "--priority", "info", "--pool", "auditors", "--count", "2")
	waitConsumers(t, node, vhost, "auditors", 1)
	bound := false
	for _, b := range node.ListBindings(vhost) {
		bound = bound || (b["source_name"] == "openstack" && b["destination_name"] == "auditors" && b["routing_key"] == "events.info")
	}
	require.True(t, bound, "the pool queue is bound to events.info")

	code, _, errs := runGoslo("notify", "--url", url, "--topic", "events", "--priority", "info", "--event-type", "compute.start",
		"--publisher-id", "compute.host-1", "--driver", "messaging", `{"a": 1}`)
	require.Equal(t, 0, code, errs)
	code, _, errs = runGoslo("notify", "--url", url, "--topic", "events", "--priority", "INFO", "--event-type", "compute.end",
		"--publisher-id", "compute.host-1", "--context", `{"user": "bob"}`, `{"b": 2}`)
	require.Equal(t, 0, code, errs)

	require.Eventually(t, func() bool { return len(out.lines(t)) >= 2 }, 20*time.Second, 50*time.Millisecond, "listen printed:\n%s\n%s", out.String(), serr.String())
	require.Equal(t, 0, stop(), serr.String()) // --count 2 ended it already
	lines := out.lines(t)
	require.Len(t, lines, 2)
	byEvent := map[string]map[string]any{}
	for _, l := range lines {
		byEvent[l["event_type"].(string)] = l
	}
	require.Equal(t, map[string]any{"a": 1.0}, byEvent["compute.start"]["payload"])
	require.Equal(t, map[string]any{"b": 2.0}, byEvent["compute.end"]["payload"])
	for _, l := range lines {
		require.Equal(t, "info", l["priority"])
		require.Equal(t, "compute.host-1", l["publisher_id"])
	}

	// The notifier declared events.info too (§5.1), where both wait: the
	// first bare, the second in the 2.0 envelope.
	conn, err := amqp.Dial(node.AMQPURL(vhost))
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	var bodies []map[string]any
	for i := 0; i < 2; i++ {
		d, ok, err := ch.Get("events.info", true)
		require.NoError(t, err)
		require.True(t, ok, "events.info holds %d notifications", i)
		var m map[string]any
		require.NoError(t, json.Unmarshal(d.Body, &m))
		bodies = append(bodies, m)
	}
	require.Equal(t, "compute.start", bodies[0]["event_type"])
	require.NotContains(t, bodies[0], "oslo.version")
	require.Equal(t, "2.0", bodies[1]["oslo.version"])
	require.Contains(t, bodies[1]["oslo.message"], `"event_type": "compute.end"`)
}

// TestPoolAndDriverFlagsOnZMQ: --pool is refused on zmq, --driver is checked, and
// accepted (and ignored: zmq sends both formats bare) there.
func TestPoolAndDriverFlagsOnZMQ(t *testing.T) {
	code, _, errs := runGoslo("listen", "--url", "zmq+dummy://", "--topic", "events", "--pool", "p")
	require.Equal(t, 2, code)
	require.Contains(t, errs, "--pool needs a RabbitMQ transport")
	code, _, errs = runGoslo("notify", "--url", "zmq+dummy://", "--topic", "events", "--event-type", "e", "--driver", "log", `{}`)
	require.Equal(t, 2, code)
	require.Contains(t, errs, `--driver "log": messaging or messagingv2`)

	r := redistest.Start(t)
	url := "zmq+redis://" + r.Addr + "?rpc_zmq_host=127.0.0.1&rpc_zmq_bind_address=127.0.0.1"
	out, serr, stop := background(t, "listen", "--url", url, "--topic", "events", "--priority", "info", "--count", "1")
	// Notify until the listener printed one (it exits after one and
	// unregisters, so later sends may find no host).
	accepted := false
	require.Eventually(t, func() bool {
		if len(out.lines(t)) == 0 {
			code, _, errs = runGoslo("notify", "--url", url, "--topic", "events", "--event-type", "e", "--driver", "messaging", `{"z": 1}`)
			accepted = accepted || code == 0
		}
		return len(out.lines(t)) == 1
	}, 20*time.Second, 200*time.Millisecond, "notify: %s; listen: %s", errs, serr.String())
	require.True(t, accepted)
	require.Equal(t, map[string]any{"z": 1.0}, out.lines(t)[0]["payload"])
	require.Equal(t, 0, stop(), serr.String())
}

// TestRabbitBench: goslo bench rpc-server and rpc-client (call, cast,
// notify) on a rabbit:// URL.
func TestRabbitBench(t *testing.T) {
	node, vhost := rabbitVhost(t)
	url := node.URL(vhost)
	_, serr, stop := background(t, "bench", "rpc-server", "--url", url, "--topic", "b", "--server", "s")
	waitConsumers(t, node, vhost, "b.s", 1)
	waitConsumers(t, node, vhost, "b.info", 1)
	for _, mode := range []string{"call", "cast", "notify"} {
		args := []string{"bench", "rpc-client", "--url", url, "--topic", "b", "--server", "s", "--mode", mode, "--concurrency", "2", "--duration", "0.5"}
		if mode == "notify" {
			args = []string{"bench", "notify", "--url", url, "--topic", "b", "--server", "s", "--concurrency", "2", "--duration", "0.5"}
		}
		code, out, errs := runGoslo(args...)
		require.Equal(t, 0, code, errs)
		var res map[string]any
		require.NoError(t, json.Unmarshal([]byte(lastLine(out)), &res))
		t.Logf("rabbit bench %s: %s", mode, lastLine(out))
		require.Equal(t, mode, res["mode"])
		require.Greater(t, res["sent"], 0.0)
		require.Equal(t, res["sent"], res["received"], "every %s reached the server", mode)
		require.Equal(t, 0.0, res["errors"])
	}
	require.Equal(t, 0, stop(), serr.String())
}
