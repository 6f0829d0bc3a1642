package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Server is one redis-server or redis-sentinel process.
type Server struct {
	t    testing.TB
	Port int
	Addr string
	bin  string
	args []string
	dir  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been reaped
}

func binary(t testing.TB, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s NOT FOUND: the Redis tests need it (make deps installs redis-server and redis-sentinel): %v", name, err)
	}
	return p
}

// Start runs a redis-server on a free port of 127.0.0.1 with no
// persistence. Extra arguments are passed as "--name value" pairs.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	return StartBind(t, "127.0.0.1", extra...)
}

// StartBind is Start on a free port of host, an IP address ("::1" for the
// IPv6 loopback); Addr is host:port with brackets around an IPv6 address.
func StartBind(t testing.TB, host string, extra ...string) *Server {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	args := append([]string{"--port", strconv.Itoa(port), "--bind", host, "--save", "", "--appendonly", "no",
		"--dir", dir, "--protected-mode", "no"}, extra...)
	s := &Server{t: t, Port: port, Addr: net.JoinHostPort(host, strconv.Itoa(port)), bin: binary(t, "redis-server"), args: args, dir: dir}
	s.start()
	t.Cleanup(s.Kill)
	return s
}

// StartSentinel runs a redis-sentinel monitoring master as group, with
// short failure timings for tests (down-after-milliseconds 1000,
// failover-timeout 3000). Extra lines are appended to its configuration,
// e.g. "sentinel auth-pass <group> <password>".
func StartSentinel(t testing.TB, group, masterAddr string, quorum int, extraConf ...string) *Server {
	t.Helper()
	port := FreePort(t)
	dir := t.TempDir()
	host, mport, _ := strings.Cut(masterAddr, ":")
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\nsentinel monitor %s %s %s %d\n"+
		"sentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 3000\nsentinel parallel-syncs %s 1\n",
		port, dir, group, host, mport, quorum, group, group, group)
	for _, l := range extraConf {
		body += l + "\n"
	}
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, Port: port, Addr: fmt.Sprintf("127.0.0.1:%d", port), bin: binary(t, "redis-sentinel"), args: []string{conf}, dir: dir}
	s.start()
	t.Cleanup(s.Kill)
	return s
}

func (s *Server) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.dir
	logf, err := os.Create(filepath.Join(s.dir, fmt.Sprintf("server-%d.log", time.Now().UnixNano())))
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", s.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if Ping(s.Addr) == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("%s on %s did not answer PING within 10s", s.bin, s.Addr)
}

// Kill stops the process (SIGKILL, by pid) and waits until it is reaped,
// so that its port is closed. Killing a stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done // reaped: its port is closed
	s.cmd, s.done = nil, nil
}

// Restart starts the process again on the same port.
func (s *Server) Restart() {
	s.Kill()
	s.start()
}

// Ping sends a raw PING and expects +PONG.
func Ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") && !strings.HasPrefix(line, "-NOAUTH") { // a password-protected server is up too
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

// Monitor records the server's MONITOR stream until Stop.
type Monitor struct {
	conn  net.Conn
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

// StartMonitor opens a raw MONITOR connection (after AUTH when a password
// is given). The connection itself never shows in the stream.
func StartMonitor(t testing.TB, addr string, password ...string) *Monitor {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	send := func(args ...string) string {
		if _, err := c.Write(EncodeCommand(args...)); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: %v", args[0], err)
		}
		return line
	}
	if len(password) > 0 && password[0] != "" {
		if line := send("AUTH", password[0]); !strings.HasPrefix(line, "+OK") {
			t.Fatalf("AUTH: %q", line)
		}
	}
	if line := send("MONITOR"); !strings.HasPrefix(line, "+OK") {
		t.Fatalf("MONITOR: %q", line)
	}
	m := &Monitor{conn: c, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			m.mu.Lock()
			m.lines = append(m.lines, strings.TrimRight(strings.TrimPrefix(line, "+"), "\r\n"))
			m.mu.Unlock()
		}
	}()
	t.Cleanup(m.Stop)
	return m
}

// EncodeCommand is a RESP array of bulk strings.
func EncodeCommand(args ...string) []byte {
	b := []byte(fmt.Sprintf("*%d\r\n", len(args)))
	for _, a := range args {
		b = append(b, fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)...)
	}
	return b
}

// Lines returns what was recorded so far, in MONITOR's format.
func (m *Monitor) Lines() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.lines...)
}

// Commands returns what was recorded so far, parsed.
func (m *Monitor) Commands() []Command {
	var out []Command
	for _, l := range m.Lines() {
		if c, ok := ParseMonitorLine(l); ok {
			out = append(out, c)
		}
	}
	return out
}

// Stop closes the connection.
func (m *Monitor) Stop() {
	_ = m.conn.Close()
	<-m.done
}

// Command is one MONITOR line: the client connection ("ip:port") and the
// arguments, unquoted.
type Command struct {
	Client string
	Args   []string
}

// ParseMonitorLine parses `<time> [<db> <client>] "ARG" "arg" ...`, undoing
// Redis' quoting (\" \\ \n \r \t \a \b \xHH).
func ParseMonitorLine(line string) (Command, bool) {
	open := strings.IndexByte(line, '[')
	end := strings.IndexByte(line, ']')
	if open < 0 || end < open {
		return Command{}, false
	}
	f := strings.Fields(line[open+1 : end])
	if len(f) != 2 {
		return Command{}, false
	}
	c := Command{Client: f[1]}
	rest := line[end+1:]
	for {
		rest = strings.TrimLeft(rest, " ")
		if rest == "" {
			return c, len(c.Args) > 0
		}
		if rest[0] != '"' {
			return Command{}, false
		}
		var b strings.Builder
		i := 1
		for ; i < len(rest) && rest[i] != '"'; i++ {
			ch := rest[i]
			if ch != '\\' || i+1 >= len(rest) {
				b.WriteByte(ch)
				continue
			}
			i++
			switch rest[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'a':
				b.WriteByte('\a')
			case 'b':
				b.WriteByte('\b')
			case 'x':
				if i+2 < len(rest) {
					if v, err := strconv.ParseUint(rest[i+1:i+3], 16, 8); err == nil {
						b.WriteByte(byte(v))
						i += 2
						continue
					}
				}
				b.WriteByte('x')
			default:
				b.WriteByte(rest[i])
			}
		}
		if i >= len(rest) {
			return Command{}, false
		}
		c.Args = append(c.Args, b.String())
		rest = rest[i+1:]
	}
}
