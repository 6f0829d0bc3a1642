package interop

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// EnvRabbit1831 is oslo.messaging 18.3.1 with the versions the rabbit
// vectors were captured with (tox.ini, testdata/python/constraints-oslo-18.3.1.txt).
const EnvRabbit1831 = "rabbit1831"

// RabbitPeer is a running testdata/python/rabbit_peer.py: one real
// oslo.messaging 18.3.1 RPC server, RPC client, notifier or notification
// listener on the rabbit driver.
type RabbitPeer struct {
	*Proc
	Role  string
	Ready map[string]any // the peer's {"ready": …} report

	mu      sync.Mutex
	nextID  int
	replies map[int]RabbitReply // answers read while waiting for another
	events  []map[string]any    // events read while waiting for an answer
}

// RabbitPeerConfig are the command-line flags of rabbit_peer.py.
type RabbitPeerConfig struct {
	Topic        string   // server, listener (comma-separated topics for a listener)
	Servers      []string // server names (one rpc server object each); default srv1
	Exchange     string   // Target.exchange (default: control_exchange)
	Priorities   []string // listener; default info, error
	Pool         string   // listener pool
	AllowRequeue bool     // listener
	Name         string   // listener name in its events
	// Opts are oslo.config options as "group.name=value", e.g.
	// "oslo_messaging_rabbit.rabbit_quorum_queue=true",
	// "DEFAULT.control_exchange=nova".
	Opts        []string
	ConfigFiles []string // INI files passed through
}

func (c RabbitPeerConfig) args(role, url string) []string {
	a := []string{role, "--url", url}
	add := func(flag, v string) {
		if v != "" {
			a = append(a, flag, v)
		}
	}
	add("--topic", c.Topic)
	add("--server", strings.Join(c.Servers, ","))
	add("--exchange", c.Exchange)
	add("--priorities", strings.Join(c.Priorities, ","))
	add("--pool", c.Pool)
	add("--name", c.Name)
	if c.AllowRequeue {
		a = append(a, "--allow-requeue")
	}
	for _, o := range c.Opts {
		a = append(a, "--opt", o)
	}
	for _, f := range c.ConfigFiles {
		a = append(a, "--config-file", f)
	}
	return a
}

// peerSeq numbers the queue-manager peers of this test binary.
var peerSeq atomic.Int64

// StartRabbitPeer runs rabbit_peer.py role ("server", "client",
// "notifier", "listener") against url with the rabbit1831 interpreter,
// waits for its ready line and stops it when the test ends. A missing
// environment fails the test (see Python; SkipVar as for every peer).
func StartRabbitPeer(t testing.TB, role, url string, cfg RabbitPeerConfig) *RabbitPeer {
	t.Helper()
	args := cfg.args(role, url)
	var attr *syscall.SysProcAttr
	if slices.Contains(cfg.Opts, "oslo_messaging_rabbit.use_queue_manager=true") {
		// 18.3.1's queue manager keys its counter on the process group and
		// reads the group leader's /proc entry: each peer runs as a service
		// of its own (its own group and processname), as on a real node,
		// so that no peer depends on a group leader that may be gone.
		attr = &syscall.SysProcAttr{Setpgid: true}
		args = append(args, "--opt", fmt.Sprintf("oslo_messaging_rabbit.processname=rabbit_peer.py-%d", peerSeq.Add(1)))
	}
	p := startCommand(t, attr, Python(t, EnvRabbit1831), append([]string{filepath.Join(RepoRoot(), "testdata", "python", "rabbit_peer.py")}, args...)...)
	var first struct {
		Ready map[string]any `json:"ready"`
	}
	if err := json.Unmarshal([]byte(p.Ready), &first); err != nil || first.Ready == nil {
		t.Fatalf("rabbit_peer.py %s: bad ready line %q: %v", role, p.Ready, err)
	}
	if v := first.Ready["oslo.messaging"]; v != "18.3.1" {
		t.Fatalf("rabbit_peer.py %s runs oslo.messaging %v, not 18.3.1", role, v)
	}
	return &RabbitPeer{Proc: p, Role: role, Ready: first.Ready, replies: map[int]RabbitReply{}}
}

// RabbitError is an exception the Python side raised. For a RemoteError
// (the server raised), ExcType and Value are the remote exception's.
type RabbitError struct {
	Class   string `json:"class"`
	Module  string `json:"module"`
	Message string `json:"message"`
	ExcType string `json:"exc_type"`
	Value   string `json:"value"`
}

func (e *RabbitError) Error() string {
	if e.ExcType != "" {
		return fmt.Sprintf("python %s (%s: %s)", e.Class, e.ExcType, e.Value)
	}
	return "python " + e.Class + ": " + e.Message
}

// RabbitReply is the peer's answer to one request.
type RabbitReply struct {
	ID        int             `json:"id"`
	OK        bool            `json:"ok"`
	Result    json.RawMessage `json:"result"` // tagged form (tagged.py)
	Error     *RabbitError    `json:"error"`
	ElapsedMS int64           `json:"elapsed_ms"`
}

// Err is the Python exception (nil when OK).
func (r RabbitReply) Err() error {
	if r.OK {
		return nil
	}
	return r.Error
}

// Decode decodes the (tagged) result into v.
func (r RabbitReply) Decode(t testing.TB, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(r.Result)))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("result %s: %v", r.Result, err)
	}
}

// Send writes a request ({"op": …} plus fields; the id is added) and
// returns its id without waiting: the peer runs each request in its own
// thread, so calls may overlap. Wait collects the answer.
func (r *RabbitPeer) Send(op string, fields map[string]any) int {
	r.t.Helper()
	r.mu.Lock()
	r.nextID++
	id := r.nextID
	r.mu.Unlock()
	req := map[string]any{"id": id, "op": op}
	for k, v := range fields {
		req[k] = v
	}
	r.Proc.Send(req)
	return id
}

// Wait returns the answer to request id, keeping events and other answers
// read meanwhile.
func (r *RabbitPeer) Wait(id int, timeout time.Duration) RabbitReply {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		if rep, ok := r.replies[id]; ok {
			delete(r.replies, id)
			r.mu.Unlock()
			return rep
		}
		r.mu.Unlock()
		left := time.Until(deadline)
		if left <= 0 {
			r.t.Fatalf("rabbit_peer.py %s: no answer to request %d within %v; stderr:\n%s", r.Role, id, timeout, r.Stderr())
		}
		r.readOne(left)
	}
}

// Do sends a request and waits (timeout + 30 s at most) for its answer.
func (r *RabbitPeer) Do(op string, fields map[string]any) RabbitReply {
	r.t.Helper()
	wait := 60 * time.Second
	if to, ok := fields["timeout"].(int); ok {
		wait = time.Duration(to)*time.Second + 30*time.Second
	}
	return r.Wait(r.Send(op, fields), wait)
}

// Event returns the next event line ({"event": "request"|"notification"|…}).
func (r *RabbitPeer) Event(timeout time.Duration) map[string]any {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		if len(r.events) > 0 {
			e := r.events[0]
			r.events = r.events[1:]
			r.mu.Unlock()
			return e
		}
		r.mu.Unlock()
		left := time.Until(deadline)
		if left <= 0 {
			r.t.Fatalf("rabbit_peer.py %s: no event within %v; stderr:\n%s", r.Role, timeout, r.Stderr())
		}
		r.readOne(left)
	}
}

// NoEvent fails the test if an event arrives within d.
func (r *RabbitPeer) NoEvent(d time.Duration) {
	r.t.Helper()
	r.mu.Lock()
	n := len(r.events)
	r.mu.Unlock()
	if n == 0 {
		select {
		case l, ok := <-r.lines:
			if !ok {
				r.t.Fatalf("rabbit_peer.py %s exited; stderr:\n%s", r.Role, r.Stderr())
			}
			r.file(l)
		case <-time.After(d):
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) > 0 {
		r.t.Fatalf("rabbit_peer.py %s: unexpected event %v", r.Role, r.events[0])
	}
}

func (r *RabbitPeer) readOne(timeout time.Duration) {
	r.t.Helper()
	r.file(r.Next(timeout))
}

func (r *RabbitPeer) file(line string) {
	r.t.Helper()
	var probe struct {
		ID    *int   `json:"id"`
		Event string `json:"event"`
	}
	if err := json.Unmarshal([]byte(line), &probe); err != nil {
		r.t.Fatalf("rabbit_peer.py %s: bad line %q: %v", r.Role, line, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case probe.ID != nil:
		var rep RabbitReply
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&rep); err != nil {
			r.t.Fatalf("rabbit_peer.py %s: bad answer %q: %v", r.Role, line, err)
		}
		r.replies[rep.ID] = rep
	case probe.Event != "":
		var ev map[string]any
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		_ = dec.Decode(&ev)
		r.events = append(r.events, ev)
	default:
		r.t.Fatalf("rabbit_peer.py %s: line is neither an answer nor an event: %q", r.Role, line)
	}
}

// RabbitPeerSpec is one peer for StartRabbitPeers.
type RabbitPeerSpec struct {
	Role, URL string
	Config    RabbitPeerConfig
}

// StartRabbitPeers starts several peers at once (importing oslo.messaging
// takes seconds of CPU each) and returns them in order; it fails the test
// when any of them does not start.
func StartRabbitPeers(t testing.TB, specs ...RabbitPeerSpec) []*RabbitPeer {
	t.Helper()
	out := make([]*RabbitPeer, len(specs))
	var wg sync.WaitGroup
	for i, s := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done() // also runs when StartRabbitPeer fails the test (Goexit)
			out[i] = StartRabbitPeer(t, s.Role, s.URL, s.Config)
		}()
	}
	wg.Wait()
	for i, p := range out {
		if p == nil {
			t.Fatalf("rabbit_peer.py %s (%d of %d) did not start", specs[i].Role, i+1, len(specs))
		}
	}
	// Ask them all to quit at once (a listener or server takes a second or
	// two to stop); each one's own cleanup then waits for its exit.
	t.Cleanup(func() {
		for _, p := range out {
			p.quit()
		}
	})
	return out
}
