package goslo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	driver "github.com/goslo/goslo/driver/zmq"
	"github.com/goslo/goslo/internal/redistest"
)

// killedServerChild is the server process of TestCallToKilledServerFailsFast:
// a direct-mode server on the Redis at addr whose "hang" method tells the
// parent it has the call and never returns.
func killedServerChild(t *testing.T, addr string) {
	tr := redisTransport(t, addr)
	ep := NewEndpoint("", "1.0").Handle("hang", func(context.Context, *Map, *Map) (any, error) {
		fmt.Println("got")
		time.Sleep(2 * time.Minute) // the parent kills the process long before
		return nil, nil
	})
	srv, err := NewRPCServer(tr, Target{Topic: "killed", Server: "k"}, ep)
	require.NoError(t, err)
	require.NoError(t, srv.Start(context.Background()))
	fmt.Println("ready")
	time.Sleep(2 * time.Minute)
	os.Exit(3)
}

// TestCallToKilledServerFailsFast: a goslo server in a child process is
// SIGKILLed while it runs a CALL. Its record stays in Redis (until it
// expires), so nothing says it stopped: the call fails as soon as its
// connection ended and none came back (about 300 ms), with an error that
// matches ErrServerGone and ErrMessagingTimeout, instead of at its
// timeout. It is not sent again (the outcome is unknown). Before, the
// call failed at its timeout.
func TestCallToKilledServerFailsFast(t *testing.T) {
	if addr := os.Getenv("GOSLO_TEST_KILLED_SERVER_REDIS"); addr != "" {
		killedServerChild(t, addr)
		return
	}
	r := redistest.Start(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCallToKilledServerFailsFast$", "-test.count=1")
	cmd.Env = append(os.Environ(), "GOSLO_TEST_KILLED_SERVER_REDIS="+r.Addr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL); _ = cmd.Wait() })
	lines := make(chan string, 4)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- strings.TrimSpace(sc.Text())
		}
	}()
	expect := func(want string, within time.Duration) {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case l, ok := <-lines:
				require.True(t, ok, "the server process ended before saying %q", want)
				if l == want {
					return
				}
			case <-deadline:
				t.Fatalf("the server process did not say %q within %v", want, within)
			}
		}
	}
	expect("ready", 60*time.Second)

	const timeout = 10 * time.Second
	cl := NewRPCClient(redisTransport(t, r.Addr), Target{Topic: "killed", Server: "k", Version: "1.0"}).
		Prepare(PrepareOptions{Timeout: timeout})
	type outcome struct {
		err  error
		took time.Duration
	}
	out := make(chan outcome, 1)
	go func() {
		start := time.Now()
		_, err := cl.Call(context.Background(), nil, "hang", nil)
		out <- outcome{err, time.Since(start)}
	}()
	expect("got", 20*time.Second)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	killed := time.Now()
	var o outcome
	select {
	case o = <-out:
	case <-time.After(timeout + 10*time.Second):
		t.Fatal("the call never returned")
	}
	failedAfter := time.Since(killed)
	require.ErrorIs(t, o.err, ErrServerGone, "%v", o.err)
	require.ErrorIs(t, o.err, ErrMessagingTimeout)
	var ge *driver.ServerGoneError
	require.True(t, errors.As(o.err, &ge))
	require.Len(t, ge.Hosts, 1)
	t.Logf("CALL to a SIGKILLed server (record left in Redis): failed %v after the kill (%v in all, timeout %v): %v",
		failedAfter.Round(time.Millisecond), o.took.Round(time.Millisecond), timeout, o.err)
}
