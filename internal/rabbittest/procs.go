package rabbittest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// epmd is a private Erlang port mapper on a free port bound to 127.0.0.1.
type epmd struct {
	port   int
	marker string
	cmd    *exec.Cmd
	done   chan struct{}
}

func startEpmd(t testing.TB) (*epmd, error) {
	e := &epmd{port: FreePort(t), marker: "epmd-" + randHex(6)}
	// Foreground (no -daemon): it stays our child and is stopped by pid.
	cmd := exec.Command("epmd", "-port", strconv.Itoa(e.port), "-address", "127.0.0.1")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), markerVar + "=" + e.marker}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start epmd: %w", err)
	}
	e.cmd, e.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(e.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", e.port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return e, nil
		}
		select {
		case <-e.done:
			return nil, fmt.Errorf("epmd on port %d exited at start", e.port)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.stop(t)
			return nil, fmt.Errorf("epmd did not listen on %d within 10s", e.port)
		}
	}
}

func (e *epmd) stop(t testing.TB) {
	if e.cmd == nil {
		return
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.done
	}
	e.cmd = nil
	if left := waitGone(e.marker, 5*time.Second); len(left) > 0 {
		t.Errorf("rabbittest: epmd processes still running after stop: %v", left)
	}
}

// Proc is a running process found under /proc.
type Proc struct {
	Pid  int
	Cmd  string
	Stat string // one-letter state
}

func (p Proc) String() string { return fmt.Sprintf("%d(%s %s)", p.Pid, p.Stat, p.Cmd) }

// marked lists the live (not zombie) processes whose environment holds
// markerVar=marker.
func marked(marker string) []Proc {
	want := []byte(markerVar + "=" + marker + "\x00")
	ents, _ := os.ReadDir("/proc")
	var out []Proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !bytes.Contains(append([]byte{0}, env...), append([]byte{0}, want...)) {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) S ...: the comm may hold spaces and parentheses.
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || i+2 >= len(s) {
			continue
		}
		state := s[i+2 : i+3]
		if state == "Z" || state == "X" { // exited, waiting to be reaped
			continue
		}
		out = append(out, Proc{Pid: pid, Cmd: s[strings.IndexByte(s, '(')+1 : i], Stat: state})
	}
	return out
}

// killMarked sends SIGKILL to every live process carrying marker.
func killMarked(marker string) {
	for _, p := range marked(marker) {
		_ = syscall.Kill(p.Pid, syscall.SIGKILL)
	}
}

// waitGone waits until no live process carries marker, killing stragglers,
// and returns those still there at the deadline.
func waitGone(marker string, timeout time.Duration) []Proc {
	deadline := time.Now().Add(timeout)
	for {
		left := marked(marker)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		for _, p := range left {
			_ = syscall.Kill(p.Pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Processes lists the node's live processes (rabbitmq-server script,
// beam.smp, erl_child_setup, inet_gethost, …); empty when stopped.
func (n *Node) Processes() []Proc { return marked(n.marker) }
