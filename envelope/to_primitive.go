package envelope

import (
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"strconv"
	"time"
)

func appendUUID(b []byte, u UUID) []byte {
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, lowerHex[c>>4], lowerHex[c&0xf])
	}
	return b
}

// appendNetaddr writes a as str(netaddr.IPAddress) does. netaddr formats
// IPv6 with inet_ntop, which is RFC 5952 (as netip) except that an
// IPv4-compatible address (96 zero bits, then a non-zero 7th group) keeps a
// dotted tail: "::1.2.3.4", where netip writes "::102:304". A zone, which
// netaddr cannot hold, is kept as netip writes it ("%eth0").
func appendNetaddr(b []byte, a netip.Addr) []byte {
	if a.Is6() && !a.Is4In6() {
		s := a.As16()
		if s == [16]byte{12: s[12], 13: s[13], 14: s[14], 15: s[15]} && (s[12] != 0 || s[13] != 0) {
			b = append(b, "::"...)
			b = netip.AddrFrom4([4]byte(s[12:])).AppendTo(b)
			if z := a.Zone(); z != "" {
				b = append(b, '%')
				b = append(b, z...)
			}
			return b
		}
	}
	return a.AppendTo(b)
}

// appendISODatetime writes "%Y-%m-%dT%H:%M:%S.%f" as Python's strftime does
// on Linux (glibc does not zero-pad the year below 1000; CPython 3.11, the
// reference peer, passes %Y through to it).
func appendISODatetime(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	b = strconv.AppendInt(b, int64(year), 10)
	b = append(b, '-')
	b = append2(b, int(month))
	b = append(b, '-')
	b = append2(b, day)
	b = append(b, 'T')
	b = append2(b, hour)
	b = append(b, ':')
	b = append2(b, minute)
	b = append(b, ':')
	b = append2(b, sec)
	b = append(b, '.')
	us := t.Nanosecond() / 1000
	for d := 100000; d > 0; d /= 10 {
		b = append(b, byte('0'+us/d%10))
	}
	return b
}

func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }

// countRepr is repr(itertools.count(start, step)) as CPython 3.11 writes it:
// the step is left out when it is the int 1 (True included); with such a
// step an int start that fits in 64 bits is held as a C integer, so True
// shows as 1, and 2**63-1, the C sentinel, shows as "<NULL>" (a CPython
// quirk, reproduced).
func countRepr(c Count) (string, error) {
	stepOne := false
	if n, ok := pyInt(c.Step); ok {
		stepOne = n.IsInt64() && n.Int64() == 1
	}
	if stepOne {
		if n, ok := pyInt(c.Start); ok && n.IsInt64() {
			if n.Int64() == math.MaxInt64 {
				return "count(<NULL>)", nil
			}
			return "count(" + n.String() + ")", nil
		}
	}
	s, err := pyNumberRepr(c.Start)
	if err != nil {
		return "", err
	}
	if stepOne {
		return "count(" + s + ")", nil
	}
	st, err := pyNumberRepr(c.Step)
	if err != nil {
		return "", err
	}
	return "count(" + s + ", " + st + ")", nil
}

// pyInt reads a Python int (bool included) as a *big.Int.
func pyInt(v any) (*big.Int, bool) {
	if b, ok := v.(bool); ok {
		if b {
			return big.NewInt(1), true
		}
		return big.NewInt(0), true
	}
	return asBig(v)
}

func pyNumberRepr(v any) (string, error) {
	switch x := v.(type) {
	case bool:
		if x {
			return "True", nil
		}
		return "False", nil
	case float64:
		switch {
		case math.IsNaN(x):
			return "nan", nil
		case math.IsInf(x, 1):
			return "inf", nil
		case math.IsInf(x, -1):
			return "-inf", nil
		}
		return string(AppendPythonFloat(nil, x)), nil
	}
	if n, ok := asBig(v); ok {
		return n.String(), nil
	}
	return "", fmt.Errorf("itertools.count holds %T, not a number", v)
}
