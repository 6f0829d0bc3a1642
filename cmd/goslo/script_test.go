package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/envelope"
)

// exampleScript is the README's example, which the tests serve as it is.
var exampleScript = filepath.Join("..", "..", "examples", "ci", "fake-scheduler.yaml")

// TestScriptRefusesBadScripts: a bad script is refused with the file, the
// line and the reason, by the parser and by goslo serve at start.
func TestScriptRefusesBadScripts(t *testing.T) {
	for _, c := range []struct{ name, text, want string }{
		{"syntax", "methods:\n  a: {result: 1}\n  b: x: y\n", "bad.yaml:3: mapping values are not allowed"},
		{"not a mapping", "- 1\n", "bad.yaml:1: the script must be a mapping"},
		{"unknown top key", "methods: {a: {result: 1}}\nversoin: 1.2\n", `bad.yaml:2: unknown key "versoin"`},
		{"no methods", "version: \"1.2\"\n", "bad.yaml:1: methods: a mapping of method names is required"},
		{"unknown builtin", "methods:\n  frob: builtin\n", `bad.yaml:2: method "frob": no such built-in`},
		{"scalar", "methods:\n  a: 3\n", `bad.yaml:2: method "a": a scalar value must be "builtin"`},
		{"result and error", "methods:\n  a:\n    result: 1\n    error: {class: ValueError}\n", `bad.yaml:3: method "a": a case has a result or an error, not both`},
		{"bad delay", "methods:\n  a:\n    delay: soon\n", `bad.yaml:3: method "a": delay: a duration`},
		{"negative delay", "methods:\n  a:\n    delay: -1\n", `bad.yaml:3: method "a": delay: out of range`},
		{"error without class", "methods:\n  a:\n    error: {message: x}\n", `bad.yaml:3: method "a": error needs a class`},
		{"unknown case key", "methods:\n  a:\n    - reslt: 1\n", `bad.yaml:3: method "a": unknown key "reslt"`},
		{"match not a mapping", "methods:\n  a:\n    - match: [1]\n      result: 1\n", `bad.yaml:3: method "a": match must be a mapping`},
		{"private", "methods:\n  _a: {result: 1}\n", `bad.yaml:2: method "_a"`},
		{"duplicate", "methods:\n  a: {result: 1}\n  a: {result: 2}\n", "bad.yaml:"},
		{"json", "{\"methods\": {\"a\": {\"delay\": \"x\"}}}", `bad.yaml:1: method "a": delay`},
		{"empty", "", "bad.yaml: empty script"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseScript("bad.yaml", []byte(c.text), "s")
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
		})
	}
	// goslo serve refuses it at start, before serving anything.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("methods:\n  a:\n    delay: soon\n"), 0o600))
	code, _, stderr := runGoslo("serve", "--url", "zmq+dummy://", "--topic", "t", "--server", "s", "--script", bad)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, bad+`:3: method "a": delay: a duration`)
}

// TestScriptParsesJSONAndYAML: the same script in JSON and YAML reads the
// same; values keep their types and their order.
func TestScriptParsesJSONAndYAML(t *testing.T) {
	y, err := parseScript("a.yaml", []byte("version: \"1.3\"\nnamespace: ns\nmethods:\n  m:\n    delay: 0.25\n    result: {b: 1, a: [x, 2.5, true, null]}\n"), "s")
	require.NoError(t, err)
	j, err := parseScript("a.json", []byte("{\"version\": \"1.3\", \"namespace\": \"ns\",\n\t\"methods\": {\"m\": {\"delay\": 0.25, \"result\": {\"b\": 1, \"a\": [\"x\", 2.5, true, null]}}}}"), "s")
	require.NoError(t, err)
	for _, s := range []*script{y, j} {
		require.Equal(t, "1.3", s.version)
		require.Equal(t, "ns", s.namespace)
		c := s.methods["m"].cases[0]
		require.Equal(t, 250*time.Millisecond, c.delay)
		require.True(t, envelope.Equal(goslo.NewMap("b", int64(1), "a", []any{"x", 2.5, true, nil}), c.result), "%v", c.result)
		require.Equal(t, []string{"b", "a"}, c.result.(*goslo.Map).Keys())
	}
	s, err := loadScript(exampleScript, "s")
	require.NoError(t, err)
	require.Equal(t, []string{"select_destinations", "build_and_run_instance", "check_quota", "slow_method", "echo", "get_by_uuid"}, s.names)
	require.Equal(t, "", s.namespace)
	require.Equal(t, "4.5", s.version)
}

// scriptCall calls method on topic/server with a timeout.
func scriptCall(t *testing.T, tr *goslo.Transport, version, method string, args *goslo.Map, timeout time.Duration) (any, error) {
	t.Helper()
	cl := goslo.NewRPCClient(tr, goslo.Target{Topic: "scheduler", Version: version}).Prepare(goslo.PrepareOptions{Server: "fake-1", Timeout: timeout})
	return cl.Call(context.Background(), goslo.NewMap("user", "u"), method, args)
}

// TestServeScriptRabbit: goslo serve --script with the README's example
// answers each method as scripted on a real broker (result, error of an
// allowed and a foreign class, delay, match, built-in, unknown method),
// prints its request lines as without a script, and reloads on SIGHUP.
func TestServeScriptRabbit(t *testing.T) {
	node, vhost := rabbitVhost(t)
	url := node.URL(vhost)
	file := filepath.Join(t.TempDir(), "s.yaml")
	data, err := os.ReadFile(exampleScript)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, data, 0o600))
	out, serr, stop := background(t, "serve", "--url", url, "--topic", "scheduler", "--server", "fake-1", "--script", file)
	waitConsumers(t, node, vhost, "scheduler.fake-1", 1)
	tr, err := goslo.NewTransport(context.Background(), url)
	require.NoError(t, err)
	defer tr.Close()

	res, err := scriptCall(t, tr, "4.5", "select_destinations", goslo.NewMap("spec", "x"), 10*time.Second)
	require.NoError(t, err)
	require.True(t, envelope.Equal([]any{goslo.NewMap("host", "node-1", "nodename", "node-1", "limits", goslo.NewMap())}, res), "%v", res)

	_, err = scriptCall(t, tr, "4.5", "build_and_run_instance", nil, 10*time.Second)
	var re *goslo.RemoteError
	require.ErrorAs(t, err, &re)
	require.Equal(t, "InstanceExists", re.Class)
	require.Equal(t, "nova.exception", re.Module)
	require.Equal(t, "Instance i-1 already exists.", re.Message)
	require.True(t, envelope.Equal(goslo.NewMap("name", "i-1"), re.Kwargs), "%v", re.Kwargs)

	_, err = scriptCall(t, tr, "4.5", "check_quota", nil, 10*time.Second)
	require.ErrorAs(t, err, &re)
	require.Equal(t, "ValueError", re.Class)
	require.Equal(t, "builtins", re.Module)
	require.Equal(t, "quota exceeded", re.Message)

	res, err = scriptCall(t, tr, "4.5", "get_by_uuid", goslo.NewMap("uuid", "u-1", "other", 1), 10*time.Second)
	require.NoError(t, err)
	require.True(t, envelope.Equal(goslo.NewMap("uuid", "u-1", "vm_state", "active"), res), "%v", res)
	_, err = scriptCall(t, tr, "4.5", "get_by_uuid", goslo.NewMap("uuid", "u-2"), 10*time.Second)
	require.ErrorAs(t, err, &re)
	require.Equal(t, "InstanceNotFound", re.Class)

	res, err = scriptCall(t, tr, "4.5", "echo", goslo.NewMap("a", int64(1)), 10*time.Second)
	require.NoError(t, err)
	require.True(t, envelope.Equal(goslo.NewMap("a", int64(1)), res))

	_, err = scriptCall(t, tr, "4.5", "nope", nil, 10*time.Second)
	require.ErrorIs(t, err, goslo.ErrNoSuchMethod)
	_, err = scriptCall(t, tr, "5.0", "echo", nil, 10*time.Second)
	require.ErrorIs(t, err, goslo.ErrUnsupportedVersion)

	start := time.Now()
	_, err = scriptCall(t, tr, "4.5", "slow_method", nil, 500*time.Millisecond)
	require.ErrorIs(t, err, goslo.ErrMessagingTimeout)
	res, err = scriptCall(t, tr, "4.5", "slow_method", nil, 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, true, res)
	require.GreaterOrEqual(t, time.Since(start), 2500*time.Millisecond)

	// The request lines, as without a script.
	require.Eventually(t, func() bool { return len(out.lines(t)) >= 10 }, 10*time.Second, 20*time.Millisecond)
	first := out.lines(t)[0]
	require.Equal(t, "call", first["type"])
	require.Equal(t, "select_destinations", first["method"])
	require.Equal(t, map[string]any{"spec": "x"}, first["args"])
	require.Equal(t, map[string]any{"user": "u"}, first["context"])
	require.Len(t, first["message_id"], 32)

	// SIGHUP: new answers at once; a bad script is refused and the
	// running one kept; a new method set restarts the endpoint.
	require.NoError(t, os.WriteFile(file, []byte("version: \"4.5\"\nmethods:\n  select_destinations: {result: node-2}\n  build_and_run_instance: builtin\n  check_quota: {result: 1}\n  slow_method: {result: 2}\n  echo: builtin\n  get_by_uuid: {result: 3}\n"), 0o600))
	require.Error(t, func() error {
		// "builtin" of a method that is no built-in is refused.
		_, err := loadScript(file, "fake-1")
		return err
	}())
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return strings.Contains(serr.String(), "reload refused, keeping the running script: "+file+":4:")
	}, 10*time.Second, 20*time.Millisecond, serr.String())
	res, err = scriptCall(t, tr, "4.5", "select_destinations", nil, 10*time.Second)
	require.NoError(t, err)
	require.IsType(t, []any{}, res)

	require.NoError(t, os.WriteFile(file, []byte("version: \"4.5\"\nmethods:\n  select_destinations: {result: node-2}\n  build_and_run_instance: {result: 0}\n  check_quota: {result: 1}\n  slow_method: {result: 2}\n  echo: builtin\n  get_by_uuid: {result: 3}\n"), 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool {
		res, err := scriptCall(t, tr, "4.5", "select_destinations", nil, 10*time.Second)
		return err == nil && res == "node-2"
	}, 10*time.Second, 50*time.Millisecond, serr.String())

	require.NoError(t, os.WriteFile(file, []byte("version: \"4.6\"\nmethods:\n  added: {result: new}\n"), 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool {
		res, err := scriptCall(t, tr, "4.6", "added", nil, 10*time.Second)
		return err == nil && res == "new"
	}, 20*time.Second, 100*time.Millisecond, serr.String())
	_, err = scriptCall(t, tr, "4.6", "select_destinations", nil, 10*time.Second)
	require.True(t, errors.Is(err, goslo.ErrNoSuchMethod), "%v", err)
	require.Equal(t, 0, stop(), serr.String())
}
