package interop

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/envelope"
)

type pyException struct {
	Class         string   `json:"class"`
	Module        string   `json:"module"`
	MRO           []string `json:"mro"`
	Str           string   `json:"str"`
	Args          any      `json:"args"`
	IsRemoteError bool     `json:"is_remote_error"`
	ExcType       string   `json:"exc_type"`
	Value         string   `json:"value"`
}

type customErr struct{}

func (customErr) Error() string                 { return "custom failure" }
func (customErr) PythonClass() (string, string) { return "builtins", "KeyError" }

// TestFailuresGoToPython: failure strings Go writes deserialize in Python to
// the class a Python server's failure would give.
func TestFailuresGoToPython(t *testing.T) {
	two := &envelope.RemoteError{Class: "ValueError", Module: "builtins", Message: "('bad thing', 42)", Args: []any{"bad thing", int64(42)}}
	cases := []struct {
		name      string
		err       error
		allowed   []string
		class     string // Python class of the rebuilt exception
		remoteErr bool   // Python gets oslo_messaging.RemoteError
		excType   string // RemoteError.exc_type
		mroHas    string
		args0     string // str(args[0]) prefix for rebuilt built-ins
	}{
		{"ValueError", envelope.ValueError("kaboom: sp\u00e9cial \u2603"), nil, "ValueError", false, "", "ValueError", "kaboom: sp\u00e9cial \u2603"},
		{"ValueError two args", two, nil, "ValueError", false, "", "ValueError", "('bad thing', 42)"},
		{"plain Go error", errors.New("disk on fire"), nil, "RuntimeError", false, "", "RuntimeError", "disk on fire"},
		{"wrapped Go error", fmt.Errorf("ctx: %w", errors.New("inner")), nil, "RuntimeError", false, "", "RuntimeError", "ctx: inner"},
		{"PythonException", customErr{}, nil, "KeyError", false, "", "KeyError", "custom failure"},
		{"Expected unwrapped", envelope.Expected(envelope.ValueError("expected one")), nil, "ValueError", false, "", "ValueError", "expected one"},
		{"_Remote suffix stripped", &envelope.RemoteError{Class: "ValueError_Remote", Module: "builtins_Remote", Message: "again", Args: []any{"again"}}, nil, "ValueError", false, "", "ValueError", "again"},
		{"NoSuchMethod", envelope.NoSuchMethodError("frob"), nil, "RemoteError", true, "NoSuchMethod", "RemoteError", ""},
		{"UnsupportedVersion", envelope.UnsupportedVersionError("2.0", "frob"), nil, "RemoteError", true, "UnsupportedVersion", "RemoteError", ""},
		{"NoSuchMethod allowed", envelope.NoSuchMethodError("frob"), []string{"oslo_messaging.rpc.dispatcher"}, "NoSuchMethod_Remote", false, "", "NoSuchMethod", ""},
		{"unknown class", envelope.NewRemoteError("myapp.errors", "QuotaExceeded", "over quota"), nil, "RemoteError", true, "QuotaExceeded", "RemoteError", ""},
		{"unknown builtin name", envelope.NewRemoteError("builtins", "NoSuchBuiltin", "x"), nil, "RemoteError", true, "NoSuchBuiltin", "RemoteError", ""},
		{"py2 exceptions module", envelope.NewRemoteError("exceptions", "KeyError", "k"), nil, "KeyError", false, "", "KeyError", "k"},
	}
	for _, env := range []string{EnvZMQ814, EnvModern} {
		t.Run(env, func(t *testing.T) {
			p := StartPeer(t, env)
			for _, c := range cases {
				f, err := envelope.MarshalFailure(c.err)
				require.NoError(t, err, c.name)
				var got pyException
				allowed := c.allowed
				if allowed == nil {
					allowed = []string{}
				}
				require.NoError(t, p.Do("deserialize_exception", map[string]any{"failure": f, "allowed": allowed}, &got), c.name)
				require.Equal(t, c.class, got.Class, c.name)
				require.Equal(t, c.remoteErr, got.IsRemoteError, c.name)
				require.Contains(t, got.MRO, c.mroHas, c.name)
				if c.remoteErr {
					require.Equal(t, c.excType, got.ExcType, c.name)
					require.Equal(t, envelope.ToRemoteError(c.err).Message, got.Value, c.name)
				}
				if c.args0 != "" {
					args, _ := got.Args.([]any)
					require.NotEmpty(t, args, c.name)
					require.Contains(t, fmt.Sprint(args[0]), c.args0, c.name)
				}
			}
			t.Logf("%s: %d Go failures deserialized by Python as expected", env, len(cases))
		})
	}
}

// TestFailuresPythonToGo: failure strings Python servers write parse in Go
// to the same class, module, message and args, with errors.Is working, and
// Go writes the same document for the dispatcher errors (tb aside).
func TestFailuresPythonToGo(t *testing.T) {
	cases := []struct {
		module, class string
		args          []any
		message       string
		sentinel      error
		goTwin        *envelope.RemoteError
		wantArgs      []any // args in the failure, when not the constructor's
	}{
		{"builtins", "ValueError", []any{"kaboom: sp\u00e9cial \u2603"}, "kaboom: sp\u00e9cial \u2603", nil, envelope.ValueError("kaboom: sp\u00e9cial \u2603"), nil},
		{"builtins", "ValueError", []any{"bad thing", 42}, "('bad thing', 42)", nil, nil, nil},
		{"builtins", "KeyError", []any{"k"}, "'k'", nil, nil, nil},
		{"builtins", "RuntimeError", []any{}, "", nil, nil, nil},
		{"oslo_messaging.rpc.dispatcher", "NoSuchMethod", []any{"frob"}, "Endpoint does not support RPC method frob", envelope.ErrNoSuchMethod, envelope.NoSuchMethodError("frob"), []any{"Endpoint does not support RPC method frob"}},
		{"oslo_messaging.rpc.dispatcher", "UnsupportedVersion", []any{"2.0"}, "Endpoint does not support RPC version 2.0", envelope.ErrUnsupportedVersion, envelope.UnsupportedVersionError("2.0", ""), []any{"Endpoint does not support RPC version 2.0"}},
		{"oslo_messaging.exceptions", "MessagingTimeout", []any{"Timeout 3 seconds was reached"}, "Timeout 3 seconds was reached", envelope.ErrMessagingTimeout, nil, nil},
		{"oslo_messaging.rpc.dispatcher", "ExpectedException", []any{}, "", envelope.ErrExpectedException, nil, nil},
	}
	for _, env := range []string{EnvZMQ814, EnvModern} {
		t.Run(env, func(t *testing.T) {
			p := StartPeer(t, env)
			for _, c := range cases {
				name := c.module + "." + c.class
				tagged, err := ToTagged(toModelInts(c.args))
				require.NoError(t, err)
				var out struct{ Failure string }
				require.NoError(t, p.Do("serialize_exception", map[string]any{"module": c.module, "cls": c.class, "args": tagged}, &out), name)
				re, err := envelope.ParseFailure(out.Failure)
				require.NoError(t, err, name)
				require.Equal(t, c.class, re.Class, name)
				require.Equal(t, c.module, re.Module, name)
				require.Equal(t, c.message, re.Message, name)
				want := c.wantArgs
				if want == nil {
					want = c.args
				}
				require.True(t, envelope.Equal(toModelInts(want), re.Args), "%s args %s", name, envelope.Repr(re.Args))
				require.Equal(t, 0, re.Kwargs.Len(), name)
				require.NotEmpty(t, re.Traceback, name)
				require.ErrorIs(t, re, envelope.ErrRemote)
				if c.sentinel != nil {
					require.ErrorIs(t, re, c.sentinel, name)
				}
				var asRE *envelope.RemoteError
				require.True(t, errors.As(error(re), &asRE))
				if c.goTwin != nil {
					// Same document from Go, but for the traceback lines.
					f, err := envelope.MarshalFailure(c.goTwin)
					require.NoError(t, err)
					twin, err := envelope.ParseFailure(f)
					require.NoError(t, err)
					require.Equal(t, re.Class, twin.Class)
					require.Equal(t, re.Module, twin.Module)
					require.Equal(t, re.Message, twin.Message)
					require.True(t, envelope.Equal(re.Args, twin.Args), "%s args: python %s go %s", name, envelope.Repr(re.Args), envelope.Repr(twin.Args))
				}
			}
			t.Logf("%s: %d Python failures parsed in Go as expected", env, len(cases))
		})
	}
}

func toModelInts(v []any) []any {
	out := make([]any, len(v))
	for i, x := range v {
		if n, ok := x.(int); ok {
			out[i] = int64(n)
		} else {
			out[i] = x
		}
	}
	return out
}
