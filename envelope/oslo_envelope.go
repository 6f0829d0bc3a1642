package envelope

import (
	"errors"
	"fmt"

	"github.com/goslo/goslo/compat"
)

// The oslo envelope 2.0 (oslo_messaging/_drivers/common.py): what AMQP
// drivers hand to the broker for every RPC message, and for notifications
// sent with version 2.0. The zmq driver never uses it; a bridge does.
const (
	EnvelopeVersion    = "2.0"
	EnvelopeVersionKey = "oslo.version"
	EnvelopeMessageKey = "oslo.message"
)

// ErrUnsupportedEnvelopeVersion is matched by *UnsupportedEnvelopeVersionError.
var ErrUnsupportedEnvelopeVersion = errors.New("goslo: UnsupportedRpcEnvelopeVersion")

// UnsupportedEnvelopeVersionError is oslo's UnsupportedRpcEnvelopeVersion.
type UnsupportedEnvelopeVersionError struct {
	Version any
}

func (e *UnsupportedEnvelopeVersionError) Error() string {
	v := Repr(e.Version)
	if s, ok := e.Version.(string); ok {
		v = s
	}
	return "Specified RPC envelope version, " + v + ", not supported by this endpoint."
}

// Is matches ErrUnsupportedEnvelopeVersion.
func (e *UnsupportedEnvelopeVersionError) Is(target error) bool {
	return target == ErrUnsupportedEnvelopeVersion
}

// Wrap builds {"oslo.version": "2.0", "oslo.message": jsonutils.dumps(raw)}:
// the inner message is a JSON string, and the outer dict is encoded again by
// the transport.
func Wrap(raw any) (*Map, error) {
	b, err := AppendJSON(nil, raw)
	if err != nil {
		return nil, err
	}
	m := MapWithCap(2)
	m.Append(EnvelopeVersionKey, EnvelopeVersion)
	m.Append(EnvelopeMessageKey, string(b))
	return m, nil
}

// Unwrap reads a message as deserialize_msg does, liberally: anything that
// is not a dict, or a dict lacking either envelope key, is returned
// unchanged; otherwise the version must be compatible with 2.0 (else an
// *UnsupportedEnvelopeVersionError) and the inner JSON string is decoded.
func Unwrap(msg any) (any, error) {
	m, ok := msg.(*Map)
	if !ok {
		return msg, nil
	}
	ver, okv := m.Get(EnvelopeVersionKey)
	inner, okm := m.Get(EnvelopeMessageKey)
	if !okv || !okm {
		return msg, nil
	}
	vs, ok := ver.(string)
	if !ok {
		return nil, &UnsupportedEnvelopeVersionError{Version: ver}
	}
	compatible, err := compat.VersionIsCompatible(EnvelopeVersion, vs)
	if err != nil {
		return nil, fmt.Errorf("envelope: %s %q: %w", EnvelopeVersionKey, vs, err)
	}
	if !compatible {
		return nil, &UnsupportedEnvelopeVersionError{Version: vs}
	}
	var text []byte
	switch s := inner.(type) {
	case string:
		text = []byte(s)
	case []byte:
		text = s
	default:
		return nil, &DecodeError{Codec: "envelope", Offset: -1, Reason: fmt.Sprintf("%s is %s, not a JSON string", EnvelopeMessageKey, typeName(inner))}
	}
	v, err := DecodeJSON(text)
	if err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			return nil, &DecodeError{Codec: "envelope", Offset: de.Offset, Reason: EnvelopeMessageKey + ": " + de.Reason}
		}
		return nil, err
	}
	return v, nil
}
