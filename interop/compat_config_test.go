package interop

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
)

type configCase struct {
	name  string
	files []string // under testdata/compat/configs
	url   string   // a transport URL whose query overrides [oslo_messaging_zmq]; "" for none
	// goStricter says why goslo refuses a case oslo.config accepts.
	goStricter string
}

// goStricterConfigs are the corpus files oslo.config loads and goslo
// refuses, with the reason.
var goStricterConfigs = map[string]string{
	"18-unknown-option.conf":          "an unknown option name in a zmq group: oslo.config ignores it",
	"40-deprecated-in-new-group.conf": "rpc_cast_timeout inside [oslo_messaging_zmq] is no option there: oslo.config ignores it",
	"41-empty-int.conf":               "an empty integer is None in oslo.config, which a Go int cannot hold",
	"42-huge-int.conf":                "an integer beyond a Go int: Python's int is unbounded",
}

func configCases(t *testing.T) []configCase {
	names, err := filepath.Glob(filepath.Join(RepoRoot(), "testdata", "compat", "configs", "*.conf"))
	require.NoError(t, err)
	sort.Strings(names)
	var cases []configCase
	for _, n := range names {
		b := filepath.Base(n)
		cases = append(cases, configCase{name: b, files: []string{b}, goStricter: goStricterConfigs[b]})
	}
	cases = append(cases,
		configCase{name: "later file's deprecated name beats an earlier file's new name", files: []string{"02-zmq-overrides.conf", "03-deprecated-default.conf"}},
		configCase{name: "later file wins", files: []string{"03-deprecated-default.conf", "04-new-beats-deprecated.conf"}},
		configCase{name: "a parse error in the second file", files: []string{"02-zmq-overrides.conf", "16-parse-error.conf"}},
		configCase{name: "an invalid value in the first file, overridden by the second", files: []string{"13-bad-int.conf", "02-zmq-overrides.conf"}},
		configCase{name: "an invalid value in the first file, not overridden", files: []string{"11-bad-bool.conf", "02-zmq-overrides.conf"}},
		configCase{name: "location of a value: the last file holding the section as written", files: []string{"13-bad-int.conf", "10-case-of-sections.conf"}},
		configCase{name: "url query overrides", files: []string{"02-zmq-overrides.conf"},
			url: "zmq://h:1/?use_pub_sub=false&rpc_zmq_serialization=json&zmq_target_update=2&subscribe_on=a:1,b:2&rpc_zmq_host=from-url"},
		configCase{name: "url query repeated", files: []string{"01-empty.conf"}, url: "zmq://h:1/?subscribe_on=a:1&subscribe_on=b:2"},
		configCase{name: "url query unknown", files: []string{"01-empty.conf"}, url: "zmq://h:1/?no_such_option=1"},
		configCase{name: "url query deprecated name", files: []string{"01-empty.conf"}, url: "zmq://h:1/?rpc_cast_timeout=1"},
		configCase{name: "url query bad bool", files: []string{"01-empty.conf"}, url: "zmq://h:1/?use_pub_sub=perhaps"},
		configCase{name: "url query bad choice", files: []string{"01-empty.conf"}, url: "zmq://h:1/?rpc_zmq_serialization=xml"},
		configCase{name: "url query bad port", files: []string{"01-empty.conf"}, url: "zmq://h:1/?rpc_zmq_min_port=70000"},
		configCase{name: "url query no substitution", files: []string{"01-empty.conf"}, url: "zmq://h:1/?rpc_zmq_host=$rpc_zmq_ipc_dir"},
		configCase{name: "url query None backlog", files: []string{"01-empty.conf"}, url: "zmq://h:1/?rpc_zmq_topic_backlog=%20&zmq_linger=%2B5"},
		configCase{name: "url query None int", files: []string{"01-empty.conf"}, url: "zmq://h:1/?zmq_linger=%20",
			goStricter: "an integer query value of only spaces is None in Python, which a Go int cannot hold"},
		configCase{name: "url query first error wins", files: []string{"01-empty.conf"}, url: "zmq://h:1/?use_pub_sub=x&nope=1"},
		configCase{name: "url query not applied to other groups", files: []string{"05-matchmaker-redis.conf"}, url: "zmq://h:1/?host=x"},
		configCase{name: "url query over a deprecated [DEFAULT] value", files: []string{"03-deprecated-default.conf"}, url: "zmq+redis://h:1/?rpc_zmq_host=u"},
		configCase{name: "missing file", files: []string{"01-empty.conf", "!absent.conf"}},
	)
	return cases
}

// TestCompatConfig loads every config case with oslo.config 9.0.0 and the
// 8.1.4 options registered as the driver registers them, and with
// compat.ParseConfig (+ ApplyURLQuery): every option value agrees, in the
// same order, or both refuse the case with the same exception class and
// message. goslo may refuse more (listed, with the reason).
func TestCompatConfig(t *testing.T) {
	cases := configCases(t)
	require.GreaterOrEqual(t, len(cases), 10)
	p := StartPeer(t, EnvZMQ814)
	hostname, err := os.Hostname()
	require.NoError(t, err)
	var same, refused, stricter, values int
	classes := map[string]int{}
	for _, c := range cases {
		var pyFiles []map[string]any
		var paths []string
		contents := map[string][]byte{}
		for _, f := range c.files {
			if name, ok := strings.CutPrefix(f, "!"); ok {
				pyFiles = append(pyFiles, map[string]any{"name": name, "absent": true})
				paths = append(paths, name)
				continue
			}
			b, err := os.ReadFile(filepath.Join(RepoRoot(), "testdata", "compat", "configs", f))
			require.NoError(t, err)
			pyFiles = append(pyFiles, map[string]any{"name": f, "hex": hex.EncodeToString(b)})
			paths = append(paths, f)
			contents[f] = b
		}
		args := map[string]any{"files": pyFiles}
		op := "config_load"
		if c.url != "" {
			args["url"], op = c.url, "config_apply_url"
		}
		var py struct {
			Hostname string              `json:"hostname"`
			Values   [][]json.RawMessage `json:"values"`
			Error    *struct {
				Class   string `json:"class"`
				Message string `json:"message"`
			} `json:"error"`
		}
		require.NoError(t, p.Do(op, args, &py), c.name)

		cfg, goErr := compat.LoadConfigFiles(hostname, func(name string) ([]byte, error) {
			if b, ok := contents[name]; ok {
				return b, nil
			}
			return nil, os.ErrNotExist
		}, paths...)
		if goErr == nil && c.url != "" {
			var u *compat.TransportURL
			if u, goErr = compat.ParseTransportURL(c.url); goErr == nil {
				goErr = cfg.ApplyURLQuery(u)
			}
		}
		var ce *compat.ConfigError
		if goErr != nil {
			require.True(t, errors.As(goErr, &ce), "%s: untyped error %v", c.name, goErr)
			require.ErrorIs(t, goErr, compat.ErrConfig)
		}
		if c.goStricter != "" {
			require.Nil(t, py.Error, "%s: listed as goslo-stricter, but oslo.config refuses it too", c.name)
			require.NotNil(t, ce, "%s: listed as goslo-stricter, but goslo loads it", c.name)
			require.Equal(t, "", ce.Class, c.name)
			t.Logf("%s: goslo is stricter: %s (%v)", c.name, c.goStricter, goErr)
			stricter++
			continue
		}
		if py.Error != nil {
			require.NotNil(t, ce, "%s: python raised %s: %s; go loaded it", c.name, py.Error.Class, py.Error.Message)
			require.Equal(t, py.Error.Class, ce.PythonClass(), "%s: %v", c.name, goErr)
			if py.Error.Class == "RecursionError" {
				require.Contains(t, py.Error.Message, "maximum recursion depth exceeded", c.name)
			} else {
				require.Equal(t, py.Error.Message, ce.Message, c.name)
			}
			classes[py.Error.Class]++
			refused++
			continue
		}
		require.NoError(t, goErr, c.name)
		require.Equal(t, hostname, py.Hostname)
		require.Len(t, py.Values, len(compat.Options()), c.name)
		for i, v := range py.Values {
			var group, name string
			require.NoError(t, json.Unmarshal(v[0], &group))
			require.NoError(t, json.Unmarshal(v[1], &name))
			require.Equal(t, compat.Options()[i], group+"."+name, "%s: option order", c.name)
			gv, ok := cfg.Value(group, name)
			require.True(t, ok, "%s: go lacks option %s.%s", c.name, group, name)
			gj, err := json.Marshal(gv)
			require.NoError(t, err)
			require.JSONEq(t, string(v[2]), string(gj), "%s: %s.%s", c.name, group, name)
			values++
		}
		same++
	}
	t.Logf("config cases: %d: %d loaded identically (%d option values compared), %d refused by both with the same class and message %v, %d refused by goslo only",
		len(cases), same, values, refused, classes, stricter)
}
