package compat

import (
	"errors"
	"fmt"
)

// Sentinels matched with errors.Is.
var (
	ErrInvalidTarget       = errors.New("compat: invalid target")
	ErrInvalidTransportURL = errors.New("compat: invalid transport URL")
	ErrInvalidVersion      = errors.New("compat: invalid version string")
	ErrConfig              = errors.New("compat: invalid configuration")
)

// InvalidTargetError is oslo's InvalidTarget.
type InvalidTargetError struct {
	Target Target
	Reason string
}

func (e *InvalidTargetError) Error() string {
	return fmt.Sprintf("compat: invalid target %s: %s", e.Target, e.Reason)
}

// Is matches ErrInvalidTarget.
func (e *InvalidTargetError) Is(t error) bool { return t == ErrInvalidTarget }

// URLError is a transport URL that oslo's TransportURL.parse refuses. Python
// raises InvalidTransportURL for some faults and a bare ValueError for
// others (a bad port, an unbalanced IPv6 bracket); PythonClass says which.
type URLError struct {
	URL    string
	Class  string // "InvalidTransportURL" or "ValueError"
	Reason string // the Python exception's message
}

func (e *URLError) Error() string {
	return fmt.Sprintf("compat: invalid transport URL %q: %s", e.URL, e.Reason)
}

// Is matches ErrInvalidTransportURL.
func (e *URLError) Is(t error) bool { return t == ErrInvalidTransportURL }

// PythonClass is the class of the exception Python raises.
func (e *URLError) PythonClass() string { return e.Class }

// VersionError is a version string version_is_compatible cannot read:
// Python raises ValueError for a non-numeric part and IndexError for a
// missing minor part.
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

// ConfigError is a configuration file or value oslo.config would refuse (or
// that goslo refuses more strictly; see LoadConfig).
type ConfigError struct {
	File    string // "" when not from a file
	Line    int    // 0 when not a parse error
	Section string
	Option  string
	Value   string
	Reason  string
}

func (e *ConfigError) Error() string {
	s := "compat: config"
	if e.File != "" {
		s += " " + e.File
		if e.Line > 0 {
			s += fmt.Sprintf(":%d", e.Line)
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
