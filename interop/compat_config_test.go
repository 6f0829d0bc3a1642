package interop

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
)

type configCase struct {
	name  string
	files []string // under testdata/compat/configs
	url   string   // query overrides, "" for none
	// goStricter: oslo.config accepts the case and goslo refuses it.
	goStricter string
}

func configCases(t *testing.T) []configCase {
	names, err := filepath.Glob(filepath.Join(RepoRoot(), "testdata", "compat", "configs", "*.conf"))
	require.NoError(t, err)
	sort.Strings(names)
	var cases []configCase
	for _, n := range names {
		b := filepath.Base(n)
		c := configCase{name: b, files: []string{b}}
		if b == "18-unknown-option.conf" {
			c.goStricter = "an unknown option name in a zmq group is an error in goslo and ignored by oslo.config"
		}
		cases = append(cases, c)
	}
	cases = append(cases,
		configCase{name: "later file's deprecated name wins", files: []string{"02-zmq-overrides.conf", "03-deprecated-default.conf"}},
		configCase{name: "later file wins", files: []string{"03-deprecated-default.conf", "04-new-beats-deprecated.conf"}},
		configCase{name: "url query overrides", files: []string{"02-zmq-overrides.conf"},
			url: "zmq://h:1/?use_pub_sub=false&rpc_zmq_serialization=json&zmq_target_update=2&subscribe_on=a:1,b:2&rpc_zmq_host=from-url"},
		configCase{name: "url query repeated", files: []string{"01-empty.conf"}, url: "zmq://h:1/?subscribe_on=a:1&subscribe_on=b:2"},
		configCase{name: "url query unknown", files: []string{"01-empty.conf"}, url: "zmq://h:1/?no_such_option=1"},
		configCase{name: "url query bad bool", files: []string{"01-empty.conf"}, url: "zmq://h:1/?use_pub_sub=perhaps"},
		configCase{name: "url query bad choice", files: []string{"01-empty.conf"}, url: "zmq://h:1/?rpc_zmq_serialization=xml"},
	)
	return cases
}

// TestCompatConfig loads every config case with oslo.config and the 8.1.4
// option definitions, and with compat.ParseConfig: all option values agree,
// or both refuse the case with the same reason.
func TestCompatConfig(t *testing.T) {
	cases := configCases(t)
	require.GreaterOrEqual(t, len(cases), 10)
	p := StartPeer(t, EnvZMQ814)
	var same, refused, stricter, values int
	for _, c := range cases {
		var texts []string
		var files []compat.ConfigFile
		for _, f := range c.files {
			b, err := os.ReadFile(filepath.Join(RepoRoot(), "testdata", "compat", "configs", f))
			require.NoError(t, err)
			texts = append(texts, string(b))
			files = append(files, compat.ConfigFile{Name: f, Data: b})
		}
		args := map[string]any{"files": texts}
		if c.url != "" {
			args["url"] = c.url
		}
		var py struct {
			Hostname string                                `json:"hostname"`
			Groups   map[string]map[string]json.RawMessage `json:"groups"`
		}
		pyErr := p.Do("config_load", args, &py)

		var cfg *compat.Config
		hostname, _ := os.Hostname()
		cfg, goErr := compat.ParseConfig(hostname, files...)
		if goErr == nil && c.url != "" {
			u, err := compat.ParseTransportURL(c.url)
			require.NoError(t, err)
			goErr = cfg.ApplyURLQuery(u)
		}
		if c.goStricter != "" {
			require.NoError(t, pyErr, c.name)
			require.ErrorIs(t, goErr, compat.ErrConfig, c.name)
			t.Logf("%s: goslo is stricter: %s (%v)", c.name, c.goStricter, goErr)
			stricter++
			continue
		}
		if pyErr != nil {
			var pe *PyError
			require.True(t, errors.As(pyErr, &pe))
			var ce *compat.ConfigError
			require.True(t, errors.As(goErr, &ce), "%s: python raised %s: %s; go loaded it", c.name, pe.Type, pe.Message)
			require.Contains(t, pe.Message, ce.Reason, "%s: python %s: %s", c.name, pe.Type, pe.Message)
			refused++
			continue
		}
		require.NoError(t, goErr, c.name)
		require.Equal(t, hostname, py.Hostname)
		for group, opts := range py.Groups {
			for name, raw := range opts {
				gv, ok := cfg.Value(group, name)
				require.True(t, ok, "%s: go lacks option %s.%s", c.name, group, name)
				gj, err := json.Marshal(gv)
				require.NoError(t, err)
				require.JSONEq(t, string(raw), string(gj), "%s: %s.%s", c.name, group, name)
				values++
			}
		}
		same++
	}
	require.Equal(t, len(compat.Options()), countOptions(t, p), "goslo and 8.1.4 define the same options")
	t.Logf("config cases: %d: %d identical (%d option values compared), %d refused by both, %d refused by goslo only (stricter)",
		len(cases), same, values, refused, stricter)
}

func countOptions(t *testing.T, p *Peer) int {
	var py struct {
		Groups map[string]map[string]json.RawMessage `json:"groups"`
	}
	require.NoError(t, p.Do("config_load", map[string]any{"files": []string{""}}, &py))
	n := 0
	for g, opts := range py.Groups {
		for name := range opts {
			require.Contains(t, compat.Options(), g+"."+name)
			n++
		}
	}
	return n
}
