package compat

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseTransportURL: no panic; what parses prints to a URL that parses
// again, and printing reaches a fixed point after one more round (as in
// Python, a host entry with neither name nor port prints as nothing).
func FuzzParseTransportURL(f *testing.F) {
	if fh, err := os.Open(filepath.Join("..", "testdata", "compat", "urls.txt")); err == nil {
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
				f.Add(l)
			}
		}
		fh.Close()
	}
	f.Add("zmq+redis://127.0.0.1:6379")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseTransportURL(s)
		if err != nil {
			if _, ok := err.(*URLError); !ok {
				t.Fatalf("untyped error %T", err)
			}
			return
		}
		for _, h := range u.Hosts {
			if strings.ContainsAny(h.Hostname+h.Username+h.Password, "[]") {
				return // as in Python, stray brackets do not survive printing
			}
		}
		out := u.String()
		again, err := ParseTransportURL(out)
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", s, out, err)
		}
		third, err := ParseTransportURL(again.String())
		if err != nil || third.String() != again.String() {
			t.Fatalf("%q: %q then %q then %v", s, out, again.String(), err)
		}
	})
}

// FuzzParseConfig: any INI text loads or fails with a *ConfigError.
func FuzzParseConfig(f *testing.F) {
	if names, err := filepath.Glob(filepath.Join("..", "testdata", "compat", "configs", "*.conf")); err == nil {
		for _, n := range names {
			if b, err := os.ReadFile(n); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig("h", ConfigFile{Name: "fuzz.conf", Data: b})
		if err != nil {
			if _, ok := err.(*ConfigError); !ok {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		_ = c.Validate()
	})
}
