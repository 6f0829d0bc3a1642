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
	if im, ok := plainVersion(imp); ok {
		if rq, ok := plainVersion(req); ok {
			// Every part int() reads is plain digits: the same answer
			// without big.Int (every message's envelope takes this path).
			return rq[0] == im[0] && (rq[1] < im[1] || rq[1] == im[1] && rq[2] <= im[2]), nil
		}
	}
	return versionIsCompatiblePy(imp, req)
}

// versionIsCompatiblePy is the reference's algorithm step for step.
func versionIsCompatiblePy(imp, req string) (bool, error) {
	v := strings.Split(req, ".")
	iv := strings.Split(imp, ".")
	part := func(parts []string, i int, whole string) (*big.Int, error) {
		if i >= len(parts) {
			return nil, &VersionError{Version: whole, Class: "IndexError", Reason: "list index out of range"}
		}
		n, err := PyIntStr(parts[i])
		if err != nil {
			return nil, &VersionError{Version: whole, Class: "ValueError", Reason: err.Error()}
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

// VersionIsCompatibleOptional is version_is_compatible with Python's None
// as nil: a nil imp (no version implemented, or no cap) accepts every
// request, and a nil req (a request without a version) is refused by any
// non-nil imp. Otherwise it is VersionIsCompatible.
func VersionIsCompatibleOptional(imp, req *string) (bool, error) {
	if imp == nil {
		return true, nil
	}
	if req == nil {
		return false, nil
	}
	return VersionIsCompatible(*imp, *req)
}

// CapAllows is the RPC client's version_cap check with goslo's spelling of
// None, the empty string (Target.Version "" is an unset version): an empty
// cap allows everything, an empty version nothing. See
// VersionIsCompatibleOptional for the pointer form.
func CapAllows(capVersion, version string) (bool, error) {
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	return VersionIsCompatibleOptional(opt(capVersion), opt(version))
}

// plainVersion reads "X.Y" or "X.Y.Z" made of 1 to 18 ASCII digits each
// (the revision 0 when absent); ok is false for anything else, which
// VersionIsCompatible then reads as Python's int() does.
func plainVersion(s string) (v [3]uint64, ok bool) {
	i := 0
	for n := 0; n < 3; n++ {
		start := i
		var x uint64
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			x = x*10 + uint64(s[i]-'0')
			i++
		}
		if i == start || i-start > 18 {
			return v, false
		}
		v[n] = x
		if i == len(s) {
			return v, n >= 1
		}
		if s[i] != '.' {
			return v, false
		}
		i++
	}
	return v, false
}
