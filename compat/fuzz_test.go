package compat

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// bracketReasons are the urllib errors a printed URL may meet on the way
// back, as in Python: str() of a host list with a bracketed IPv6 host not
// in the one place urllib's CVE-2024-11168 check allows it.
var bracketReasons = []string{"Invalid IPv6 URL", "does not appear to be an IPv4 or IPv6 address"}

// FuzzParseTransportURL: no panic, typed errors only; what parses prints to
// a URL that parses again, with the same transport, virtual host and
// query (or fails, as in Python, only on urllib's bracket check), and
// printing reaches a fixed point after one more round (as in Python, a
// host entry with an empty name and no port prints as nothing, which can
// leave a stray comma for the next round).
func FuzzParseTransportURL(f *testing.F) {
	if fh, err := os.Open(filepath.Join("..", "testdata", "compat", "urls.txt")); err == nil {
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			l := sc.Text()
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			if u, err := strconv.Unquote(l); err == nil && strings.HasPrefix(l, `"`) {
				l = u
			}
			f.Add(l)
		}
		fh.Close()
	}
	f.Add("zmq+redis://127.0.0.1:6379")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseTransportURL(s)
		if err != nil {
			var ue *URLError
			if !errors.As(err, &ue) || !errors.Is(err, ErrInvalidTransportURL) {
				t.Fatalf("untyped error %T %v", err, err)
			}
			return
		}
		out := u.String()
		again, err := ParseTransportURL(out)
		if err != nil {
			for _, r := range bracketReasons {
				if strings.Contains(err.(*URLError).Reason, r) {
					return
				}
			}
			t.Fatalf("%q printed as %q, which does not parse: %v", s, out, err)
		}
		third, err := ParseTransportURL(again.String())
		if err != nil || third.String() != again.String() {
			t.Fatalf("%q: printed %q, then %q, then %v", s, out, again.String(), err)
		}
		if again.Transport != u.Transport || !reflect.DeepEqual(again.Query, u.Query) {
			t.Fatalf("%q: %+v became %+v", s, u, again)
		}
		if u.VirtualHost != again.VirtualHost {
			t.Fatalf("%q: virtual host %q became %q", s, u.VirtualHost, again.VirtualHost)
		}
	})
}

// FuzzLoadConfig: any INI text loads or fails with a *ConfigError; loading
// is deterministic, an empty second file changes nothing, and Validate and
// Value never panic.
func FuzzLoadConfig(f *testing.F) {
	if names, err := filepath.Glob(filepath.Join("..", "testdata", "compat", "configs", "*.conf")); err == nil {
		for _, n := range names {
			if b, err := os.ReadFile(n); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig("h", ConfigFile{Name: "fuzz.conf", Data: b})
		c2, err2 := ParseConfig("h", ConfigFile{Name: "fuzz.conf", Data: b}, ConfigFile{Name: "empty.conf"})
		if (err == nil) != (err2 == nil) || (err == nil && !reflect.DeepEqual(c, c2)) {
			t.Fatalf("an empty second file changed the outcome: %v / %v", err, err2)
		}
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrConfig) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			if ce.Class != "" && ce.Message == "" {
				t.Fatalf("a Python error without a message: %+v", ce)
			}
			if err.Error() != err2.Error() {
				t.Fatalf("nondeterministic: %v / %v", err, err2)
			}
			return
		}
		_ = c.Validate()
		for _, name := range Options() {
			g, n, _ := strings.Cut(name, ".")
			if _, ok := c.Value(g, n); !ok {
				t.Fatalf("no value for %s", name)
			}
		}
	})
}
