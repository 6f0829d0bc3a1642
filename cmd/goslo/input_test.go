package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The proxy's port flags take TCP ports only (0: from the config, else
// random); before, -f 99999 bound 34463 and registered ":99999".
func TestProxyRefusesBadPortFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-f", "99999"}, {"--frontend-port", "65536"}, {"-b", "-1"}, {"--backend-port", "70000"},
		{"-p", "99999"}, {"--publisher-port", "-5"},
	} {
		var out, errb bytes.Buffer
		full := append([]string{"proxy", "-u", "zmq+dummy://"}, args...)
		code := run(full, strings.NewReader("quit\n"), &out, &errb)
		require.Equal(t, 2, code, "%v: %s", args, errb.String())
		require.Contains(t, errb.String(), args[1], args)
		require.Contains(t, errb.String(), "1..65535", args)
		require.Empty(t, out.String(), "nothing bound")
	}
	// The same ports from [zmq_proxy_opts] are refused too (exit 1, the
	// config's error).
	for _, opt := range []string{"frontend_port = 99999", "backend_port = -1", "publisher_port = 65536"} {
		cfg := filepath.Join(t.TempDir(), "p.conf")
		require.NoError(t, os.WriteFile(cfg, []byte("[zmq_proxy_opts]\n"+opt+"\n"), 0o600))
		var out, errb bytes.Buffer
		code := run([]string{"proxy", "-u", "zmq+dummy://", "-c", cfg}, strings.NewReader("quit\n"), &out, &errb)
		require.Equal(t, 1, code, "%s: %s", opt, errb.String())
		require.Contains(t, errb.String(), "0..65535", opt)
		require.Empty(t, out.String(), "nothing bound")
	}
}

// Seconds flags take a finite, non-negative number up to 1e9 s; before,
// --timeout -1, NaN and 1e300 became a negative time.Duration (the float
// conversion overflows) and the command ran with it.
func TestSecondsFlagsRefuseBadValues(t *testing.T) {
	cmds := [][]string{
		{"call", "--url", "zmq+dummy://", "--topic", "t", "--timeout", "V", "m"},
		{"cast", "--url", "zmq+dummy://", "--topic", "t", "--timeout", "V", "m"},
		{"bench", "raw", "--duration", "V"},
		{"bench", "raw", "--timeout", "V"},
		{"bench", "rpc-client", "--url", "zmq+dummy://", "--topic", "t", "--duration", "V"},
		{"bench", "notify", "--url", "zmq+dummy://", "--topic", "t", "--duration", "V"},
	}
	for _, c := range cmds {
		for _, v := range []string{"-1", "NaN", "nan", "Inf", "-Inf", "1e300", "1e10"} {
			args := make([]string, len(c))
			for i, a := range c {
				if a == "V" {
					a = v
				}
				args[i] = a
			}
			var out, errb bytes.Buffer
			done := make(chan int, 1)
			go func() { done <- run(args, nil, &out, &errb) }()
			select {
			case code := <-done:
				require.Equal(t, 2, code, "%v: %s", args, errb.String())
				require.Contains(t, errb.String(), "invalid value "+strconv.Quote(v), args)
				require.Contains(t, errb.String(), "seconds", args)
			case <-time.After(20 * time.Second):
				t.Fatalf("%v still running", args)
			}
		}
	}
}

// The raw zmq bench opens a zmq context and a connection per caller (8
// descriptors with the server's side); past RLIMIT_NOFILE libzmq aborted
// the process ("Too many open files"). It now refuses before opening any.
// The bench runs in a child process, which the abort took down before.
func TestBenchRefusesConcurrencyBeyondNOFILE(t *testing.T) {
	if os.Getenv("GOSLO_TEST_CHILD") == "bench-raw" {
		os.Exit(run([]string{"bench", "raw", "--mode", "call", "--concurrency", "100000", "--duration", "0.2"}, nil, os.Stdout, os.Stderr))
	}
	var rl syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl))
	if rl.Cur >= 800100 {
		t.Skipf("RLIMIT_NOFILE %d holds 100000 raw callers", rl.Cur)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchRefusesConcurrencyBeyondNOFILE$")
	cmd.Env = append(os.Environ(), "GOSLO_TEST_CHILD=bench-raw")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "stdout %s\nstderr %s", out.String(), errb.String())
	require.Equal(t, 2, ee.ExitCode(), errb.String())
	require.Contains(t, errb.String(), "--concurrency 100000 needs about 800")
	require.Contains(t, errb.String(), "RLIMIT_NOFILE")
	require.NotContains(t, out.String(), `"mode"`)

	// rpc-client with dynamic connections: a DEALER and a connection per
	// call in flight. Before, the calls past the limit failed with "too
	// many open files" (or, with no server, it waited for one).
	var o, e bytes.Buffer
	code := run([]string{"bench", "rpc-client", "--url", "zmq+dummy://?use_dynamic_connections=true", "--topic", "t", "--server", "s",
		"--concurrency", "100000", "--duration", "0.2"}, nil, &o, &e)
	require.Equal(t, 2, code, e.String())
	require.Contains(t, e.String(), "--concurrency 100000 needs about 200")
	require.Contains(t, e.String(), "use_dynamic_connections")
	// Without dynamic connections the calls share the driver's sockets:
	// nothing to refuse (this one fails later: there is no server).
}

// TestServeMinReplyDelayFlag: --min-reply-delay takes seconds up to 1 (a
// goslo serve that holds its replies answers a call no sooner); beyond,
// or not a number, it is refused with exit 2.
func TestServeMinReplyDelayFlag(t *testing.T) {
	for _, bad := range []string{"2", "-0.1", "NaN", "x"} {
		var out, errb bytes.Buffer
		code := run([]string{"serve", "--url", "zmq+dummy://", "--topic", "t", "--min-reply-delay", bad}, strings.NewReader("quit\n"), &out, &errb)
		require.Equal(t, 2, code, "--min-reply-delay %s: %s", bad, errb.String())
		require.Contains(t, errb.String(), "min-reply-delay")
	}
	var out, errb bytes.Buffer
	code := run([]string{"serve", "--url", "zmq+dummy://", "--topic", "t", "--min-reply-delay", "0.005"}, strings.NewReader("quit\n"), &out, &errb)
	require.Equal(t, 0, code, errb.String())
}
