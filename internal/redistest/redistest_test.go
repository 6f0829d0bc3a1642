package redistest

import (
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseMonitorLine(t *testing.T) {
	for line, want := range map[string][]string{
		`1795555956.277150 [0 127.0.0.1:42192] "SADD" "127.0.0.1:52356" " "`: {"SADD", "127.0.0.1:52356", " "},
		`1.5 [0 unix:/tmp/r.sock] "SET" "a\"b\\c" "\x00\xff\n"`:              {"SET", `a"b\c`, "\x00\xff\n"},
		`1.5 [0 127.0.0.1:1] "PING"`:                                         {"PING"},
	} {
		c, ok := ParseMonitorLine(line)
		if !ok || len(c.Args) != len(want) {
			t.Fatalf("%s: %v %q", line, ok, c.Args)
		}
		for i := range want {
			if c.Args[i] != want[i] {
				t.Fatalf("%s: arg %d = %q, want %q", line, i, c.Args[i], want[i])
			}
		}
	}
	for _, bad := range []string{"OK", `1.5 [0 127.0.0.1:1] "PING`, `1.5 [0 127.0.0.1:1] PING`, `1.5 [0 127.0.0.1:1]`} {
		if _, ok := ParseMonitorLine(bad); ok {
			t.Fatalf("%q parsed", bad)
		}
	}
}

// TestServerLifecycle: a server answers, Kill closes its port, Restart
// brings it back on the same port, and a MONITOR sees commands.
func TestServerLifecycle(t *testing.T) {
	s := Start(t, "--requirepass", "pw")
	if err := Ping(s.Addr); err != nil {
		t.Fatal(err)
	}
	mon := StartMonitor(t, s.Addr, "pw")
	c, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write(EncodeCommand("AUTH", "pw"))
	_, _ = c.Write(EncodeCommand("SADD", "k", " "))
	deadline := time.Now().Add(5 * time.Second)
	for len(mon.Commands()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	c.Close()
	cmds := mon.Commands()
	if len(cmds) < 2 || cmds[1].Args[0] != "SADD" || cmds[1].Args[2] != " " {
		t.Fatalf("monitor saw %v", cmds)
	}
	mon.Stop()
	s.Kill()
	if Ping(s.Addr) == nil {
		t.Fatal("killed server still answers")
	}
	s.Kill() // idempotent
	s.Restart()
	if err := Ping(s.Addr); err != nil {
		t.Fatal(err)
	}
}
