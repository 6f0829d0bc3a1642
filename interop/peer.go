package interop

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environments built by `make deps` (tox.ini).
const (
	EnvZMQ814 = "zmq814" // oslo.messaging 8.1.4 with the zmq driver and the three shims
	EnvModern = "modern" // the newest oslo.messaging on the index
)

// SkipVar is the environment variable that skips the interop suite in quick
// local loops. CI (CI=true) never honours it.
const SkipVar = "GOSLO_SKIP_INTEROP"

// RepoRoot is the repository root (the directory holding go.mod).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// Python returns the interpreter of a tox environment, failing the test
// loudly when it is missing: a missing real peer is a failure, not a skip.
func Python(t testing.TB, env string) string {
	t.Helper()
	if os.Getenv(SkipVar) != "" && os.Getenv("CI") == "" {
		t.Skipf("%s is set: interop against real Python peers SKIPPED (never in CI)", SkipVar)
	}
	py := filepath.Join(RepoRoot(), ".tox", env, "bin", "python")
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("INTEROP PEER MISSING: tox environment %q is not built (%v); run `make deps`", env, err)
	}
	return py
}

// Peer is a running testdata/python/peer.py.
type Peer struct {
	Env   string
	Ready map[string]any // the environment report the peer printed first

	t      testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Reader
	mu     sync.Mutex
	nextID int
	stderr *strings.Builder
}

// StartPeer runs the peer under env and stops it when the test ends.
func StartPeer(t testing.TB, env string) *Peer {
	t.Helper()
	py := Python(t, env)
	cmd := exec.Command(py, filepath.Join(RepoRoot(), "testdata", "python", "peer.py"))
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONWARNINGS=ignore")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &Peer{Env: env, t: t, cmd: cmd, stdin: stdin, out: bufio.NewReaderSize(stdout, 1<<20), stderr: &strings.Builder{}}
	cmd.Stderr = &lockedWriter{w: p.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start python peer: %v", err)
	}
	t.Cleanup(p.stop)
	var first struct {
		Ready map[string]any `json:"ready"`
	}
	line, err := p.readLine(60 * time.Second)
	if err != nil || json.Unmarshal(line, &first) != nil || first.Ready == nil {
		t.Fatalf("python peer (%s) did not start: %v %q\nstderr:\n%s", env, err, line, p.stderr)
	}
	p.Ready = first.Ready
	return p
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (p *Peer) readLine(timeout time.Duration) ([]byte, error) {
	type res struct {
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		b, err := p.out.ReadBytes('\n')
		ch <- res{b, err}
	}()
	select {
	case r := <-ch:
		return r.b, r.err
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		return nil, fmt.Errorf("python peer gave no answer in %v", timeout)
	}
}

func (p *Peer) stop() {
	_, _ = io.WriteString(p.stdin, "quit\n")
	_ = p.stdin.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// PyError is an exception the peer raised while running an op.
type PyError struct {
	Type    string `json:"type"`
	Module  string `json:"module"`
	Message string `json:"message"`
	TB      string `json:"tb"`
}

func (e *PyError) Error() string { return "python " + e.Type + ": " + e.Message }

// Do runs op with args and decodes the result into out (which may be nil).
// A Python exception comes back as *PyError; a broken peer fails the test.
func (p *Peer) Do(op string, args map[string]any, out any) error {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextID++
	req := map[string]any{"id": p.nextID, "op": op}
	for k, v := range args {
		req[k] = v
	}
	b, err := json.Marshal(req)
	if err != nil {
		p.t.Fatalf("peer request %s: %v", op, err)
	}
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		p.t.Fatalf("peer write %s: %v\nstderr:\n%s", op, err, p.stderr)
	}
	line, err := p.readLine(60 * time.Second)
	if err != nil {
		p.t.Fatalf("peer read %s: %v\nstderr:\n%s", op, err, p.stderr)
	}
	var resp struct {
		ID     int             `json:"id"`
		OK     bool            `json:"ok"`
		Result json.RawMessage `json:"result"`
		Error  *PyError        `json:"error"`
	}
	dec := json.NewDecoder(strings.NewReader(string(line)))
	dec.UseNumber()
	if err := dec.Decode(&resp); err != nil || resp.ID != p.nextID {
		p.t.Fatalf("peer answer to %s unreadable (%v): %q", op, err, line)
	}
	if !resp.OK {
		return resp.Error
	}
	if out != nil {
		d := json.NewDecoder(strings.NewReader(string(resp.Result)))
		d.UseNumber()
		if err := d.Decode(out); err != nil {
			p.t.Fatalf("peer result of %s: %v: %s", op, err, resp.Result)
		}
	}
	return nil
}
