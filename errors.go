package goslo

import (
	"errors"

	"github.com/goslo/goslo/envelope"
)

// Raising Python exceptions from a handler.
//
// A handler's error reaches a Python caller as an exception: a
// *RemoteError keeps its class and module (use ModuleBuiltins with a
// built-in class, or your service's exception module, so that the caller
// rebuilds the real class); an error implementing PythonException names its
// class itself; anything else arrives as RuntimeError with the error's
// text. Wrap an error with Expected to log it at debug level only, as
// oslo's @expected_exceptions does.

// ModuleBuiltins is the module of Python's built-in exceptions.
const ModuleBuiltins = envelope.ModuleBuiltins

// ErrExpectedException matches an error wrapped by Expected.
var ErrExpectedException = envelope.ErrExpectedException

// PythonException lets a Go error choose the Python class it is raised as.
type PythonException = envelope.PythonException

// NewRemoteError builds the exception class of module with message as its
// one argument, e.g. NewRemoteError("nova.exception", "NoValidHost", "...").
func NewRemoteError(module, class, message string) *RemoteError {
	return envelope.NewRemoteError(module, class, message)
}

// BuiltinError builds the built-in exception class ("KeyError",
// "TypeError", ...) with message.
func BuiltinError(class, message string) *RemoteError {
	return envelope.NewRemoteError(ModuleBuiltins, class, message)
}

// ValueError builds a Python ValueError.
func ValueError(message string) *RemoteError { return envelope.ValueError(message) }

// TypeError builds a Python TypeError.
func TypeError(message string) *RemoteError { return BuiltinError("TypeError", message) }

// Expected marks err as expected (oslo's @expected_exceptions): the server
// logs it at debug level only; the caller gets err itself.
func Expected(err error) error { return envelope.Expected(err) }

// IsTimeout reports whether err is a CALL that got no reply in time
// (oslo's MessagingTimeout).
func IsTimeout(err error) bool { return errors.Is(err, ErrMessagingTimeout) }

// IsRemote reports whether err is an exception raised by the remote end
// (a *RemoteError, which errors.As extracts).
func IsRemote(err error) bool { return errors.Is(err, ErrRemote) }
