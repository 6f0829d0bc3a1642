package compat

import (
	"math/big"
	"strings"
)

// VersionIsCompatible is oslo's version_is_compatible(imp, req): whether an
// endpoint implementing version imp can serve a request for version req.
// Parts are "major.minor[.revision]" read with Python's int(); the checks
// run in the reference's order, so a malformed part that the reference
// never reads is not an error either. A part int() refuses gives a
// *VersionError of class ValueError; a missing minor one of class IndexError.
func VersionIsCompatible(imp, req string) (bool, error) {
	v := strings.Split(req, ".")
	iv := strings.Split(imp, ".")
	part := func(parts []string, i int, whole string) (*big.Int, error) {
		if i >= len(parts) {
			return nil, &VersionError{Version: whole, Class: "IndexError", Reason: "list index out of range"}
		}
		n, ok := PyInt(parts[i])
		if !ok {
			return nil, &VersionError{Version: whole, Class: "ValueError", Reason: "invalid literal for int() with base 10: " + pyQuote(parts[i])}
		}
		return n, nil
	}
	rev := func(parts []string, whole string) (*big.Int, error) {
		if len(parts) < 3 {
			return big.NewInt(0), nil
		}
		return part(parts, 2, whole)
	}
	reqMajor, err := part(v, 0, req)
	if err != nil {
		return false, err
	}
	impMajor, err := part(iv, 0, imp)
	if err != nil {
		return false, err
	}
	if reqMajor.Cmp(impMajor) != 0 {
		return false, nil
	}
	reqMinor, err := part(v, 1, req)
	if err != nil {
		return false, err
	}
	impMinor, err := part(iv, 1, imp)
	if err != nil {
		return false, err
	}
	if reqMinor.Cmp(impMinor) > 0 {
		return false, nil
	}
	if reqMinor.Cmp(impMinor) == 0 {
		reqRev, err := rev(v, req)
		if err != nil {
			return false, err
		}
		impRev, err := rev(iv, imp)
		if err != nil {
			return false, err
		}
		if reqRev.Cmp(impRev) > 0 {
			return false, nil
		}
	}
	return true, nil
}

// CapAllows is version_is_compatible with Python's None spelled "": an empty
// cap (None) allows everything, an empty version (None) nothing. It is the
// client's version_cap check.
func CapAllows(capVersion, version string) (bool, error) {
	if capVersion == "" {
		return true, nil
	}
	if version == "" {
		return false, nil
	}
	return VersionIsCompatible(capVersion, version)
}

// PyInt reads s as Python's int(s) does for base 10 with ASCII digits:
// surrounding whitespace, an optional sign, and single underscores between
// digits. (Python also accepts non-ASCII decimal digits; goslo does not.)
func PyInt(s string) (*big.Int, bool) {
	s = strings.Trim(s, " \t\n\r\v\f")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' || strings.Contains(s, "__") {
		return nil, false
	}
	digits := strings.ReplaceAll(s, "_", "")
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return nil, false
		}
	}
	n, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return nil, false
	}
	if neg {
		n.Neg(n)
	}
	return n, true
}

// pyQuote renders s as Python's repr of a str does for the common cases.
func pyQuote(s string) string {
	q := "'"
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		q = `"`
	}
	var b strings.Builder
	b.WriteString(q)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case string(r) == q:
			b.WriteString(`\` + q)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			const hex = "0123456789abcdef"
			b.WriteString(`\x` + string(hex[r>>4]) + string(hex[r&0xf]))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteString(q)
	return b.String()
}
