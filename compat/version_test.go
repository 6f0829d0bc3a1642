package compat

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVersionIsCompatible(t *testing.T) {
	for _, c := range []struct {
		imp, req string
		want     bool
	}{
		{"1.3", "1.0", true}, {"1.3", "1.3", true}, {"1.3", "1.3.0", true}, {"1.3", "1.4", false},
		{"1.3", "2.0", false}, {"1.3", "1.3.1", false}, {"1.3.1", "1.3.1", true}, {"1.10", "1.9", true},
		{"1.0", "2", false},    // the major differs before the minor is read
		{"1.5", "1.2.x", true}, // the revision is only read when the minors are equal
		{"01.2", "1.2", true}, {" 1.2", "1.2 ", true}, {"1_0.1", "10.1", true}, {"١.٣", "1.2", true},
		{"99999999999999999999.1", "99999999999999999999.0", true},
	} {
		got, err := VersionIsCompatible(c.imp, c.req)
		require.NoError(t, err, "%q %q", c.imp, c.req)
		require.Equal(t, c.want, got, "%q %q", c.imp, c.req)
	}
	for _, c := range []struct{ imp, req, class, reason string }{
		{"1.0", "1", "IndexError", "list index out of range"},
		{"1", "1.0", "IndexError", "list index out of range"},
		{"1.0", "", "ValueError", "invalid literal for int() with base 10: ''"},
		{"a.b", "1.0", "ValueError", "invalid literal for int() with base 10: 'a'"},
		{"1.0", "1.x", "ValueError", "invalid literal for int() with base 10: 'x'"},
		{"1.2", "1.2.x", "ValueError", "invalid literal for int() with base 10: 'x'"},
		{"1.0", "1.'x\"", "ValueError", `invalid literal for int() with base 10: '\'x"'`},
		{"1.0", "1.\u00a0", "ValueError", `invalid literal for int() with base 10: '\xa0'`},
		{"1.0", "1." + strings.Repeat("1", 4301), "ValueError", "Exceeds the limit (4300 digits) for integer string conversion: value has 4301 digits; use sys.set_int_max_str_digits() to increase the limit"},
	} {
		_, err := VersionIsCompatible(c.imp, c.req)
		require.ErrorIs(t, err, ErrInvalidVersion)
		var ve *VersionError
		require.True(t, errors.As(err, &ve))
		require.Equal(t, c.class, ve.PythonClass(), "%q %q", c.imp, c.req)
		require.Equal(t, c.reason, ve.Reason, "%q %q", c.imp, c.req)
		require.True(t, strings.HasPrefix(err.Error(), "compat: version "))
	}
	_, err := VersionIsCompatible("1.0", "1."+strings.Repeat("x", 300))
	require.Len(t, []rune(err.(*VersionError).Reason), len("invalid literal for int() with base 10: ")+200, "repr is cut at 200 characters")
}

func TestVersionIsCompatibleOptional(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, c := range []struct {
		imp, req *string
		want     bool
	}{{nil, nil, true}, {nil, s("9.9"), true}, {s("1.0"), nil, false}, {s("1.2"), s("1.1"), true}, {s("1.2"), s("1.3"), false}} {
		got, err := VersionIsCompatibleOptional(c.imp, c.req)
		require.NoError(t, err)
		require.Equal(t, c.want, got)
	}
	_, err := VersionIsCompatibleOptional(s("1.0"), s("x"))
	require.ErrorIs(t, err, ErrInvalidVersion)

	ok, err := CapAllows("", "9.9")
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = CapAllows("1.0", "")
	require.NoError(t, err)
	require.False(t, ok)
	ok, err = CapAllows("1.5", "1.2")
	require.NoError(t, err)
	require.True(t, ok)
}

// The plain-digits fast path answers as the reference's algorithm does.
func FuzzVersionFastPath(f *testing.F) {
	for _, s := range [][2]string{{"2.0", "2.0"}, {"1.3", "1.10"}, {"1.3.1", "1.3"}, {"1.3", "1.3.2"}, {"01.2", "1.02"},
		{"2.0", "3.0"}, {"1.0.0.7", "1.0"}, {"1.x", "1.0"}, {"1", "1.0"}, {"999999999999999999.1", "999999999999999999.0"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, imp, req string) {
		want, werr := versionIsCompatiblePy(imp, req)
		got, err := VersionIsCompatible(imp, req)
		if got != want || (err == nil) != (werr == nil) {
			t.Fatalf("VersionIsCompatible(%q, %q) = %v, %v; the reference's algorithm gives %v, %v", imp, req, got, err, want, werr)
		}
	})
}
