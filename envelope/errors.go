package envelope

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrDecode and ErrEncode are matched by every *DecodeError and *EncodeError
// with errors.Is.
var (
	ErrDecode = errors.New("envelope: decode error")
	ErrEncode = errors.New("envelope: encode error")
)

// DecodeError says why bytes are not a valid payload.
type DecodeError struct {
	Codec  string // "json", "msgpack", "envelope", "failure", ...
	Offset int    // byte offset where the fault was found, -1 if none
	Reason string
}

func (e *DecodeError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("envelope: bad %s at offset %d: %s", e.Codec, e.Offset, e.Reason)
	}
	return fmt.Sprintf("envelope: bad %s: %s", e.Codec, e.Reason)
}

// Is makes errors.Is(err, ErrDecode) hold.
func (e *DecodeError) Is(target error) bool { return target == ErrDecode }

// EncodeError says why a value cannot be written.
type EncodeError struct {
	Codec  string
	Path   string // where in the value, e.g. "[1].args.when"
	Type   string // the Go type refused
	Reason string
}

func (e *EncodeError) Error() string {
	p := e.Path
	if p == "" {
		p = "value"
	}
	return fmt.Sprintf("envelope: cannot encode %s as %s (%s): %s", p, e.Codec, e.Type, e.Reason)
}

// Is makes errors.Is(err, ErrEncode) hold.
func (e *EncodeError) Is(target error) bool { return target == ErrEncode }

// pathElem is one step into a value being encoded, kept cheaply and only
// formatted when an error names it.
type pathElem struct {
	key   string
	idx   int
	isKey bool
}

func formatPath(p []pathElem) string {
	var sb strings.Builder
	for _, e := range p {
		if e.isKey {
			sb.WriteString("." + e.key)
		} else {
			sb.WriteString("[" + strconv.Itoa(e.idx) + "]")
		}
	}
	return sb.String()
}
