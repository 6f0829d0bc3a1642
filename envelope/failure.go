package envelope

import (
	"errors"
	"fmt"
	"strings"
)

// Modules of the oslo exception classes a Go peer must recognise.
const (
	ModuleBuiltins   = "builtins"   // Python 3 built-in exceptions
	ModuleExceptions = "exceptions" // the same, as Python 2 names it
	ModuleDispatcher = "oslo_messaging.rpc.dispatcher"
	ModuleOsloExc    = "oslo_messaging.exceptions"

	remoteSuffix = "_Remote"
)

// Sentinels for the oslo exceptions a Go caller must be able to tell apart.
// A *RemoteError of the matching class and module satisfies errors.Is with
// them, and so do the errors goslo raises locally for the same conditions.
var (
	ErrMessagingTimeout   = errors.New("goslo: MessagingTimeout")
	ErrNoSuchMethod       = errors.New("goslo: NoSuchMethod")
	ErrUnsupportedVersion = errors.New("goslo: UnsupportedVersion")
	ErrExpectedException  = errors.New("goslo: ExpectedException")
	// ErrMessageUndeliverable is oslo_messaging.MessageUndeliverable: a
	// message published with mandatory set (a CALL or CAST with
	// TransportOptions(at_least_once=True), a reply) that no queue took;
	// the broker returned it.
	ErrMessageUndeliverable = errors.New("goslo: MessageUndeliverable")
	// ErrMessageDeliveryFailure is oslo_messaging.MessageDeliveryFailure:
	// a send that failed after the retries its retry option allowed.
	ErrMessageDeliveryFailure = errors.New("goslo: MessageDeliveryFailure")
	// ErrRemote is matched by every *RemoteError.
	ErrRemote = errors.New("goslo: remote error")
	// ErrClosed is matched by every error of a closed transport, driver or
	// matchmaker (goslo.ErrClosed is the same value).
	ErrClosed = errors.New("goslo: closed")
)

type classKey struct{ module, class string }

var sentinelByClass = map[classKey]error{
	{ModuleOsloExc, "MessagingTimeout"}:       ErrMessagingTimeout,
	{ModuleDispatcher, "NoSuchMethod"}:        ErrNoSuchMethod,
	{ModuleDispatcher, "UnsupportedVersion"}:  ErrUnsupportedVersion,
	{ModuleDispatcher, "ExpectedException"}:   ErrExpectedException,
	{ModuleOsloExc, "MessageDeliveryFailure"}: ErrMessageDeliveryFailure,
}

// RemoteError is an exception raised by the remote end of a call, as carried
// in the failure string of a reply (oslo's serialize_remote_exception): the
// Python class and module, str(exception), the formatted traceback lines,
// the exception's args and kwargs.
//
// A Go server returns one from an endpoint to raise a chosen Python class;
// a Go caller receives one for every failure reply. errors.Is matches
// ErrRemote always, and ErrNoSuchMethod, ErrUnsupportedVersion,
// ErrMessagingTimeout or ErrExpectedException by class and module.
type RemoteError struct {
	Class     string
	Module    string
	Message   string
	Traceback []string
	Args      []any
	Kwargs    *Map
}

// Error reads like the text of oslo's RemoteError: "Remote error: <class> <message>".
func (e *RemoteError) Error() string {
	return "Remote error: " + e.QualifiedClass() + " " + e.Message
}

// QualifiedClass is "module.Class", or just the class for built-ins.
func (e *RemoteError) QualifiedClass() string {
	if IsBuiltinsModule(e.Module) || e.Module == "" {
		return e.Class
	}
	return e.Module + "." + e.Class
}

// Is matches ErrRemote and the sentinel of the error's class.
func (e *RemoteError) Is(target error) bool {
	if target == ErrRemote {
		return true
	}
	s, ok := sentinelByClass[classKey{e.Module, e.Class}]
	return ok && s == target
}

// IsBuiltinsModule reports whether a module name means Python's built-ins
// ("builtins" on Python 3, "exceptions" on Python 2).
func IsBuiltinsModule(m string) bool { return m == ModuleBuiltins || m == ModuleExceptions }

// NewRemoteError builds a RemoteError of a Python class with one argument,
// the message, as most exceptions are raised. Use module "builtins" with a
// built-in class name (ValueError, KeyError, RuntimeError, ...) so that
// Python callers rebuild the real exception.
func NewRemoteError(module, class, message string) *RemoteError {
	return &RemoteError{Class: class, Module: module, Message: message, Args: []any{message}}
}

// ValueError is a builtins.ValueError, which a Python caller re-raises as
// ValueError.
func ValueError(message string) *RemoteError {
	return NewRemoteError(ModuleBuiltins, "ValueError", message)
}

// NoSuchMethodError is the dispatcher's NoSuchMethod for method.
func NoSuchMethodError(method string) *RemoteError {
	return NewRemoteError(ModuleDispatcher, "NoSuchMethod", "Endpoint does not support RPC method "+method)
}

// UnsupportedVersionError is the dispatcher's UnsupportedVersion; the
// ". Attempted method" part appears only when method is not empty, as in oslo.
func UnsupportedVersionError(version, method string) *RemoteError {
	msg := "Endpoint does not support RPC version " + version
	if method != "" {
		msg += ". Attempted method: " + method
	}
	return NewRemoteError(ModuleDispatcher, "UnsupportedVersion", msg)
}

// ExpectedError marks an endpoint error as expected (oslo's
// @expected_exceptions): the server logs it at debug level only, and the
// caller receives the wrapped error, never an ExpectedException.
type ExpectedError struct{ Err error }

func (e *ExpectedError) Error() string { return e.Err.Error() }
func (e *ExpectedError) Unwrap() error { return e.Err }

// Is matches ErrExpectedException.
func (e *ExpectedError) Is(target error) bool { return target == ErrExpectedException }

// Expected wraps err as an ExpectedError.
func Expected(err error) error {
	if err == nil {
		return nil
	}
	return &ExpectedError{Err: err}
}

// PythonException lets a Go error choose the Python class it is raised as:
// PythonClass returns the module and class name the reply carries.
type PythonException interface {
	error
	PythonClass() (module, class string)
}

// ToRemoteError maps any Go error to the exception a Python peer sees:
// a *RemoteError in its chain is used as is (with the _Remote suffix rule);
// an ExpectedError is unwrapped; a PythonException gives its class; errors
// matching ErrNoSuchMethod / ErrUnsupportedVersion / ErrMessagingTimeout
// keep their oslo class; anything else becomes builtins.RuntimeError with
// the error text, which Python callers rebuild as a RuntimeError.
func ToRemoteError(err error) *RemoteError {
	for {
		var exp *ExpectedError
		if errors.As(err, &exp) && exp.Err != nil {
			err = exp.Err
			continue
		}
		break
	}
	var re *RemoteError
	if errors.As(err, &re) {
		out := *re
		if strings.HasSuffix(out.Class, remoteSuffix) && strings.HasSuffix(out.Module, remoteSuffix) {
			out.Class = strings.TrimSuffix(out.Class, remoteSuffix)
			out.Module = strings.TrimSuffix(out.Module, remoteSuffix)
		}
		return &out
	}
	var pe PythonException
	if errors.As(err, &pe) {
		m, c := pe.PythonClass()
		return NewRemoteError(m, c, pe.Error())
	}
	switch {
	case errors.Is(err, ErrNoSuchMethod):
		return NewRemoteError(ModuleDispatcher, "NoSuchMethod", err.Error())
	case errors.Is(err, ErrUnsupportedVersion):
		return NewRemoteError(ModuleDispatcher, "UnsupportedVersion", err.Error())
	case errors.Is(err, ErrMessagingTimeout):
		return NewRemoteError(ModuleOsloExc, "MessagingTimeout", err.Error())
	}
	return NewRemoteError(ModuleBuiltins, "RuntimeError", err.Error())
}

// MarshalFailure writes the failure string of a reply for err, with the keys
// of serialize_remote_exception in its order: class, module, message, tb,
// args, kwargs. When the error carries no traceback, a short one is made
// whose last line names the class and message as Python's would.
func MarshalFailure(err error) (string, error) {
	re := ToRemoteError(err)
	tb := re.Traceback
	if tb == nil {
		tb = []string{"Traceback (most recent call last):\n", re.QualifiedClass() + ": " + re.Message + "\n"}
	}
	tbv := make([]any, len(tb))
	for i, l := range tb {
		tbv[i] = l
	}
	args := re.Args
	if args == nil {
		args = []any{}
	}
	kwargs := re.Kwargs
	if kwargs == nil {
		kwargs = &Map{}
	}
	m := MapWithCap(6)
	m.Append("class", re.Class)
	m.Append("module", re.Module)
	m.Append("message", re.Message)
	m.Append("tb", tbv)
	m.Append("args", args)
	m.Append("kwargs", kwargs)
	b, e := AppendJSON(nil, m)
	if e != nil {
		return "", fmt.Errorf("envelope: failure of %s: %w", re.QualifiedClass(), e)
	}
	return string(b), nil
}

// ParseFailure reads a failure string into a *RemoteError, with the
// liberal reading of deserialize_remote_exception: missing keys are empty,
// "exceptions" is kept as sent (IsBuiltinsModule treats both names alike).
func ParseFailure(failure string) (*RemoteError, error) {
	v, err := DecodeJSON([]byte(failure))
	if err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			return nil, &DecodeError{Codec: "failure", Offset: de.Offset, Reason: de.Reason}
		}
		return nil, err
	}
	m, ok := v.(*Map)
	if !ok {
		return nil, &DecodeError{Codec: "failure", Offset: -1, Reason: fmt.Sprintf("failure is %s, not a JSON object", typeName(v))}
	}
	re := &RemoteError{}
	str := func(key string) (string, error) {
		x, ok := m.Get(key)
		if !ok || x == nil {
			return "", nil
		}
		s, ok := x.(string)
		if !ok {
			return "", &DecodeError{Codec: "failure", Offset: -1, Reason: fmt.Sprintf("%q is %s, not a string", key, typeName(x))}
		}
		return s, nil
	}
	if re.Class, err = str("class"); err != nil {
		return nil, err
	}
	if re.Module, err = str("module"); err != nil {
		return nil, err
	}
	if re.Message, err = str("message"); err != nil {
		return nil, err
	}
	if x, ok := m.Get("tb"); ok && x != nil {
		l, ok := x.([]any)
		if !ok {
			return nil, &DecodeError{Codec: "failure", Offset: -1, Reason: fmt.Sprintf(`"tb" is %s, not a list`, typeName(x))}
		}
		re.Traceback = make([]string, 0, len(l))
		for _, e := range l {
			s, ok := e.(string)
			if !ok {
				return nil, &DecodeError{Codec: "failure", Offset: -1, Reason: fmt.Sprintf(`"tb" holds %s, not a string`, typeName(e))}
			}
			re.Traceback = append(re.Traceback, s)
		}
	}
	if x, ok := m.Get("args"); ok && x != nil {
		l, ok := x.([]any)
		if !ok {
			return nil, &DecodeError{Codec: "failure", Offset: -1, Reason: fmt.Sprintf(`"args" is %s, not a list`, typeName(x))}
		}
		re.Args = l
	}
	if x, ok := m.Get("kwargs"); ok && x != nil {
		km, ok := x.(*Map)
		if !ok {
			return nil, &DecodeError{Codec: "failure", Offset: -1, Reason: fmt.Sprintf(`"kwargs" is %s, not an object`, typeName(x))}
		}
		re.Kwargs = km
	}
	return re, nil
}

// typeName names a model value's Python type, for error messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a bool"
	case int64, uint64, int:
		return "an int"
	case float64:
		return "a float"
	case string:
		return "a string"
	case []byte:
		return "bytes"
	case []any:
		return "a list"
	case *Map:
		return "a dict"
	}
	return fmt.Sprintf("%T", v)
}
