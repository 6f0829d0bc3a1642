package interop

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
)

func readLines(t *testing.T, rel string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(RepoRoot(), rel))
	require.NoError(t, err)
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	require.NoError(t, sc.Err())
	return out
}

type pyHost struct {
	Hostname *string      `json:"hostname"`
	Port     *json.Number `json:"port"`
	Username *string      `json:"username"`
	Password *string      `json:"password"`
}

type pyURL struct {
	Transport   string     `json:"transport"`
	VirtualHost *string    `json:"virtual_host"`
	Hosts       []pyHost   `json:"hosts"`
	Query       [][]string `json:"query"`
	Str         string     `json:"str"`
}

func optStr(s string, has bool) *string {
	if !has {
		return nil
	}
	return &s
}

// modernURLDifferences are URLs the newest oslo.messaging parses
// differently from 8.1.4. goslo follows 8.1.4; these are logged.
var modernURLDifferences = map[string]string{
	"zmq+redis://[::1]:/": "an empty port is None in 8.1.4 and a ValueError in the modern release",
	"zmq+redis://host:":   "an empty port is None in 8.1.4 and a ValueError in the modern release",
}

// TestCompatURLs parses every URL of testdata/compat/urls.txt with oslo's
// TransportURL.parse and with compat.ParseTransportURL: the fields, the
// str() form, or the error class and message must agree.
func TestCompatURLs(t *testing.T) {
	urls := readLines(t, "testdata/compat/urls.txt")
	require.GreaterOrEqual(t, len(urls), 40)
	for _, env := range []string{EnvZMQ814, EnvModern} {
		t.Run(env, func(t *testing.T) {
			p := StartPeer(t, env)
			var ok, failed int
			for _, raw := range urls {
				if why, ok := modernURLDifferences[raw]; ok && env == EnvModern {
					t.Logf("%s %q: not compared: %s", env, raw, why)
					continue
				}
				var py pyURL
				pyErr := p.Do("url_parse", map[string]any{"url": raw}, &py)
				u, goErr := compat.ParseTransportURL(raw)
				if pyErr != nil {
					var pe *PyError
					require.True(t, errors.As(pyErr, &pe))
					var ue *compat.URLError
					if !errors.As(goErr, &ue) {
						t.Errorf("%q: python raised %s(%s), go parsed %+v", raw, pe.Type, pe.Message, u)
						continue
					}
					require.ErrorIs(t, goErr, compat.ErrInvalidTransportURL)
					require.Equal(t, pe.Type, ue.PythonClass(), raw)
					require.Equal(t, pe.Message, ue.Reason, raw)
					failed++
					continue
				}
				if !assertNoErr(t, goErr, raw) {
					continue
				}
				require.Equal(t, py.Transport, u.Transport, raw)
				require.Equal(t, py.VirtualHost, optStr(u.VirtualHost, u.HasVirtualHost), raw)
				require.Len(t, u.Hosts, len(py.Hosts), raw)
				for i, h := range py.Hosts {
					g := u.Hosts[i]
					require.Equal(t, h.Hostname, optStr(g.Hostname, g.Hostname != ""), "%s host %d", raw, i)
					if h.Port == nil {
						require.False(t, g.HasPort, raw)
					} else {
						require.True(t, g.HasPort, raw)
						require.Equal(t, string(*h.Port), itoa(g.Port), raw)
					}
					require.Equal(t, h.Username, optStr(g.Username, g.HasUsername), raw)
					require.Equal(t, h.Password, optStr(g.Password, g.HasPassword), raw)
				}
				var q [][]string
				for _, kv := range u.Query {
					q = append(q, []string{kv.Name, kv.Value})
				}
				if len(py.Query) == 0 {
					require.Empty(t, q, raw)
				} else {
					require.Equal(t, py.Query, q, raw)
				}
				require.Equal(t, py.Str, u.String(), raw)
				// What String writes parses back to the same URL.
				again, err := compat.ParseTransportURL(u.String())
				require.NoError(t, err, raw)
				require.Equal(t, u.String(), again.String(), raw)
				ok++
			}
			t.Logf("%s: %d URLs: %d parsed identically, %d refused with the same error", env, len(urls), ok, failed)
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestCompatVersions runs a version table through version_is_compatible in
// both environments and compat.VersionIsCompatible.
func TestCompatVersions(t *testing.T) {
	pairs := [][2]string{
		{"1.0", "1.0"}, {"1.3", "1.0"}, {"1.3", "1.3"}, {"1.3", "1.4"}, {"1.3", "2.0"}, {"2.0", "1.0"},
		{"1.3", "1.3.0"}, {"1.3", "1.3.1"}, {"1.3.1", "1.3"}, {"1.3.2", "1.3.1"}, {"1.3.2", "1.3.3"},
		{"1.10", "1.9"}, {"1.9", "1.10"}, {"01.2", "1.2"}, {" 1.2", "1.2 "}, {"+1.2", "1.-0"},
		{"1_0.1", "10.1"}, {"1.0", "1"}, {"1", "1.0"}, {"1", "2"}, {"2", "1.5"}, {"1.0", ""},
		{"", "1.0"}, {"a.b", "1.0"}, {"1.0", "x.0"}, {"1.0", "1.x"}, {"1.5", "1.2.x"}, {"1.2", "1.2.x"},
		{"1.2.3.4", "1.2.3.9"}, {"1.0", "1..0"}, {"2.0", "2.0.0.0"}, {"99999999999999999999.1", "99999999999999999999.0"},
		{"1.0", "1.0."}, {"1.0.", "1.0"}, {"2.0", "2.5"}, {"3.1", "3.0.7"},
	}
	for _, env := range []string{EnvZMQ814, EnvModern} {
		t.Run(env, func(t *testing.T) {
			p := StartPeer(t, env)
			var agree, errs int
			for _, pr := range pairs {
				var py bool
				pyErr := p.Do("version_compatible", map[string]any{"imp": pr[0], "req": pr[1]}, &py)
				got, goErr := compat.VersionIsCompatible(pr[0], pr[1])
				if pyErr != nil {
					var pe *PyError
					require.True(t, errors.As(pyErr, &pe))
					var ve *compat.VersionError
					require.True(t, errors.As(goErr, &ve), "%v: python raised %s: %s; go gave %v", pr, pe.Type, pe.Message, got)
					require.Equal(t, pe.Type, ve.PythonClass(), "%v", pr)
					require.Equal(t, pe.Message, ve.Reason, "%v", pr)
					errs++
				} else {
					require.NoError(t, goErr, "%v", pr)
					require.Equal(t, py, got, "%v", pr)
				}
				agree++
			}
			t.Logf("%s: %d version pairs agree (%d are errors in both)", env, agree, errs)
		})
	}
}
