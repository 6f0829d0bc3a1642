package compat

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinels matched with errors.Is.
var (
	ErrInvalidTarget       = errors.New("compat: invalid target")
	ErrInvalidTransportURL = errors.New("compat: invalid transport URL")
	ErrInvalidVersion      = errors.New("compat: invalid version string")
	ErrConfig              = errors.New("compat: invalid configuration")
)

// InvalidTargetError is oslo's InvalidTarget (a ValueError): Reason is the
// reference's sentence, e.g. "A topic is required to send".
type InvalidTargetError struct {
	Target Target
	Reason string
}

func (e *InvalidTargetError) Error() string { return "compat: " + e.PythonMessage() }

// PythonMessage is str() of the Python exception: the reason, ":", and the
// target's repr.
func (e *InvalidTargetError) PythonMessage() string { return e.Reason + ":" + e.Target.String() }

// PythonClass is the class of the exception Python raises.
func (e *InvalidTargetError) PythonClass() string { return "InvalidTarget" }

// Is matches ErrInvalidTarget.
func (e *InvalidTargetError) Is(t error) bool { return t == ErrInvalidTarget }

// URLError is a transport URL that oslo's TransportURL.parse refuses.
// Python raises InvalidTransportURL for a URL without a scheme and a bare
// ValueError for the faults urllib or int() find (an unbalanced IPv6
// bracket, a port that is not a number, ...); Class says which. Class is ""
// for the only URL that Python parses and goslo refuses: a port beyond a
// Go int (and for the empty URL, which oslo never parses on its own).
type URLError struct {
	// URL is what the Python exception names: InvalidTransportURL's url
	// attribute (urllib's geturl() of the input) or, for the others, the
	// input.
	URL    string
	Class  string // "InvalidTransportURL", "ValueError" or ""
	Reason string // the Python exception's message
}

// Error names the URL with its passwords redacted (RedactURL); URL keeps
// them, as the Python exception's attribute does.
func (e *URLError) Error() string {
	return fmt.Sprintf("compat: invalid transport URL %q: %s", RedactURL(e.URL), e.Reason)
}

// Is matches ErrInvalidTransportURL.
func (e *URLError) Is(t error) bool { return t == ErrInvalidTransportURL }

// PythonClass is the class of the exception Python raises ("" if none).
func (e *URLError) PythonClass() string { return e.Class }

// VersionError is a version string version_is_compatible cannot read:
// Python raises ValueError for a non-numeric part and IndexError for a
// missing minor part. Reason is the Python message.
type VersionError struct {
	Version string
	Class   string // "ValueError" or "IndexError"
	Reason  string
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("compat: version %q: %s", e.Version, e.Reason)
}

// Is matches ErrInvalidVersion.
func (e *VersionError) Is(t error) bool { return t == ErrInvalidVersion }

// PythonClass is the class of the exception Python raises.
func (e *VersionError) PythonClass() string { return e.Class }

// ConfigError is a configuration oslo.config refuses, or one goslo refuses
// more strictly (Class ""): see ParseConfig.
type ConfigError struct {
	File    string // the ConfigFile name, "" when not from a file
	Line    int    // the line of a parse error, 0 otherwise
	Section string // the group, or the section as written
	Option  string
	Value   string
	Reason  string // what is wrong
	// Class and Message are the Python exception oslo.config (or the
	// driver's URL override) raises for the same input, its class name and
	// str(); with file names as given here. Class is "" where Python
	// accepts the input.
	Class   string
	Message string
}

func (e *ConfigError) Error() string {
	s := "compat: config"
	if e.File != "" {
		s += " " + e.File
		if e.Line > 0 {
			s += ":" + strconv.Itoa(e.Line)
		}
	}
	if e.Option != "" {
		s += fmt.Sprintf(": [%s] %s", e.Section, e.Option)
		if e.Value != "" {
			s += fmt.Sprintf(" = %q", e.Value)
		}
	} else if e.Section != "" {
		s += fmt.Sprintf(": [%s]", e.Section)
	}
	return s + ": " + e.Reason
}

// Is matches ErrConfig.
func (e *ConfigError) Is(t error) bool { return t == ErrConfig }

// PythonClass is the class of the exception Python raises ("" if none).
func (e *ConfigError) PythonClass() string { return e.Class }
