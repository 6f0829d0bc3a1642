package interop

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a Python process speaking JSON lines (testdata/python/rpc_peer.py).
type Proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *strings.Builder
	mu     sync.Mutex
	// quitSent: "quit" was written and stdin closed
	quitSent bool
	// Ready is the first line the program printed.
	Ready string
}

// StartProc runs script with args under a tox environment and waits for
// its {"ready": ...} line. It is stopped ("quit", then a kill) at cleanup.
func StartProc(t testing.TB, env, script string, args ...string) *Proc {
	t.Helper()
	py := Python(t, env)
	return StartCommand(t, py, append([]string{filepath.Join(RepoRoot(), "testdata", "python", script)}, args...)...)
}

// StartCommand runs any program that prints a {"ready": ...} line first
// (or, for goslo proxy, a JSON line with its addresses) and waits for it.
func StartCommand(t testing.TB, prog string, args ...string) *Proc {
	t.Helper()
	return startCommand(t, nil, prog, args...)
}

func startCommand(t testing.TB, attr *syscall.SysProcAttr, prog string, args ...string) *Proc {
	t.Helper()
	script := filepath.Base(prog)
	cmd := exec.Command(prog, args...)
	cmd.SysProcAttr = attr
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONWARNINGS=ignore")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &Proc{t: t, cmd: cmd, stdin: stdin, lines: make(chan string, 1024), stderr: &strings.Builder{}}
	cmd.Stderr = &lockedWriter{w: p.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(p.Stop)
	line := p.Next(60 * time.Second)
	p.Ready = line
	if !strings.Contains(line, `"ready"`) && !strings.Contains(line, `"frontend"`) {
		t.Fatalf("%s did not start: %q\nstderr:\n%s", script, line, p.Stderr())
	}
	return p
}

// Next returns the next stdout line, failing the test after timeout.
func (p *Proc) Next(timeout time.Duration) string {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			p.t.Fatalf("python process exited; stderr:\n%s", p.Stderr())
		}
		return l
	case <-time.After(timeout):
		p.t.Fatalf("python process silent for %v; stderr:\n%s", timeout, p.Stderr())
	}
	return ""
}

// NextJSON decodes the next line into v.
func (p *Proc) NextJSON(timeout time.Duration, v any) {
	p.t.Helper()
	l := p.Next(timeout)
	dec := json.NewDecoder(strings.NewReader(l))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		p.t.Fatalf("bad line %q: %v", l, err)
	}
}

// Send writes one JSON line.
func (p *Proc) Send(v any) {
	p.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		p.t.Fatalf("write to python: %v\nstderr:\n%s", err, p.Stderr())
	}
}

// quit asks the process to quit without waiting (once).
func (p *Proc) quit() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.quitSent {
		return
	}
	p.quitSent = true
	_, _ = io.WriteString(p.stdin, "quit\n")
	_ = p.stdin.Close()
}

// Stop asks the process to quit, then kills it after 10 s.
func (p *Proc) Stop() {
	p.quit()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// Signal sends sig and waits (at most timeout) for the process to exit.
func (p *Proc) Signal(sig os.Signal, timeout time.Duration) {
	p.t.Helper()
	_ = p.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() {
		for range p.lines { // drain stdout until it closes at exit
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		p.t.Fatalf("%s did not exit on %v", p.cmd.Path, sig)
	}
}

// Interrupt sends SIGINT (a proxy then removes its records) and waits for
// the exit, killing the process after 10 s.
func (p *Proc) Interrupt() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	p.Stop()
}

// Stderr is what the process wrote on stderr so far.
func (p *Proc) Stderr() string {
	if lw, ok := p.cmd.Stderr.(*lockedWriter); ok {
		lw.mu.Lock()
		defer lw.mu.Unlock()
	}
	return p.stderr.String()
}
