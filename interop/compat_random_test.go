package interop

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
)

// The randomized comparison: transport URLs and configuration files built
// from fragments chosen to meet every rule (brackets, ports, escapes,
// deprecated names, section case, substitution, types, query overrides),
// run through oslo and compat. The seed is fixed; COMPAT_SEED picks
// another, COMPAT_ROUNDS the number of inputs of each kind.

func pick(r *rand.Rand, xs ...string) string { return xs[r.Intn(len(xs))] }

func randomURL(r *rand.Rand) string {
	var b strings.Builder
	b.WriteString(pick(r, "zmq", "zmq+redis", "ZMQ+Sentinel", "http", "", "1x", " zmq", "zmq+dummy"))
	b.WriteString(pick(r, "://", ":", ":/", "//", "://"))
	for h := 0; h < r.Intn(4); h++ {
		if h > 0 {
			b.WriteString(",")
		}
		if r.Intn(3) == 0 {
			b.WriteString(pick(r, "u", "", "u%40", "u%E2%9C", "ü") + pick(r, "", ":", ":p", ":p%3A") + "@")
		}
		b.WriteString(pick(r, "h", "", "[::1]", "[]", "[fe80::1%25e]", "[1.2.3.4]", "[v1.x]", "::1", "[::1", "a]", "h℀", "ｈ", "10.0.0.1"))
		b.WriteString(pick(r, "", ":", ":1", ":x", ": 2", ":+3", ":1:2", ":٣", ":-1"))
	}
	b.WriteString(pick(r, "", "/", "/v", "/v%20h", "/a;b", "/a/b;c", "/%E2%9C"))
	b.WriteString(pick(r, "", "?", "?a=1", "?a=1&a=2", "?a=&b", "?x+y=%41+", "?use_pub_sub=true"))
	b.WriteString(pick(r, "", "#", "#f", "#f?x"))
	return b.String()
}

func randomValue(r *rand.Rand) string {
	if r.Intn(2) == 0 {
		return pick(r, "1", "5", "true", "no", "json", "redis", "h", "a:1, b:2", "$rpc_zmq_host/x", "${rpc_response_timeout}",
			"$rpc_cast_timeout", `\$x`, "$$", "'q'", "$control_exchange", "$oslo_messaging_zmq.rpc_zmq_host", "$rpc_thread_pool_size")
	}
	parts := []string{"", "1", "-1", "0", " 7 ", "+5", "1_0", "٣", "x", "true", "Off", "yes", "maybe", "json", "msgpack", "redis",
		"dummy", "JSON", "$rpc_zmq_host", "${rpc_zmq_host}", "$rpc_cast_timeout", "$nope", "$$", `\$`, "$", "${",
		"$oslo_messaging_zmq.rpc_zmq_host", "$DEFAULT.x", "$matchmaker_redis", "$zmq_proxy_opts.url", "$control_exchange",
		"$subscribe_on", "$rpc_thread_pool_size", "$transport_url", "$use_pub_sub", "'q'", `"q"`, `"`, "a,b", " , ", "a:1,",
		"\u00a0", "\x1c", "é", "99999999999999999999", "70000", "65536", "$zmq_target_expire", "$rpc_response_timeout"}
	var b strings.Builder
	for i := 0; i < 1+r.Intn(3); i++ {
		b.WriteString(parts[r.Intn(len(parts))])
	}
	return b.String()
}

func randomConfig(r *rand.Rand) string {
	opts := compat.Options()
	var b strings.Builder
	for s := 0; s < 1+r.Intn(4); s++ {
		b.WriteString("[" + pick(r, "DEFAULT", "oslo_messaging_zmq", "OSLO_MESSAGING_ZMQ", "matchmaker_redis", "zmq_proxy_opts", "default", "database") + "]\n")
		for k := 0; k < 1+r.Intn(5); k++ {
			name := strings.SplitN(opts[r.Intn(len(opts))], ".", 2)[1]
			if r.Intn(10) == 0 {
				name = pick(r, "rpc_cast_timeout", "rpc_thread_pool_size", "host", "port", "url")
			}
			b.WriteString(name + pick(r, " = ", "=", ": ", " =") + randomValue(r) + "\n")
			if r.Intn(8) == 0 {
				b.WriteString("  " + randomValue(r) + "\n")
			}
			if r.Intn(8) == 0 {
				b.WriteString(pick(r, "\n", "# c\n", "; c\n"))
			}
		}
	}
	return b.String()
}

func randomQueryURL(r *rand.Rand) string {
	opts := compat.Options()
	q := url.Values{}
	for i := 0; i < 1+r.Intn(3); i++ {
		name := strings.SplitN(opts[r.Intn(len(opts))], ".", 2)[1]
		if r.Intn(6) == 0 {
			name = pick(r, "rpc_cast_timeout", "nope", "host")
		}
		q.Add(name, randomValue(r))
	}
	return "zmq+redis://127.0.0.1:6379/?" + q.Encode()
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

func TestCompatRandom(t *testing.T) {
	seed, rounds := int64(envInt("COMPAT_SEED", 1)), envInt("COMPAT_ROUNDS", 1000)
	r := rand.New(rand.NewSource(seed))
	p := StartPeer(t, EnvZMQ814)
	host, err := os.Hostname()
	require.NoError(t, err)

	urls := map[string]int{}
	for i := 0; i < rounds; i++ {
		raw := randomURL(r)
		var py map[string]any
		require.NoError(t, p.Do("url_parse", map[string]any{"url": raw}, &py))
		g, goOnly := goURL(raw)
		switch {
		case goOnly:
			urls["refused by goslo only"]++
			continue
		case py["error"] != nil:
			urls["refused"]++
		default:
			urls["parsed"]++
		}
		require.Equal(t, canonical(t, py), canonical(t, g), "%q", raw)
	}

	configs := map[string]int{}
	for i := 0; i < rounds; i++ {
		var files []compat.ConfigFile
		var pyFiles []map[string]any
		for f := 0; f < 1+r.Intn(2); f++ {
			text := randomConfig(r)
			name := "f" + strconv.Itoa(f) + ".conf"
			files = append(files, compat.ConfigFile{Name: name, Data: []byte(text)})
			pyFiles = append(pyFiles, map[string]any{"name": name, "hex": hex.EncodeToString([]byte(text))})
		}
		args, op, rawURL := map[string]any{"files": pyFiles}, "config_load", ""
		if r.Intn(3) == 0 {
			rawURL = randomQueryURL(r)
			args["url"], op = rawURL, "config_apply_url"
		}
		var py struct {
			Values [][]json.RawMessage `json:"values"`
			Error  *struct{ Class, Message string }
		}
		require.NoError(t, p.Do(op, args, &py))
		c, err := compat.ParseConfig(host, files...)
		var strict error
		if ce, ok := err.(*compat.ConfigError); ok && ce.Class == "" && c != nil {
			strict, err = err, nil // oslo would go on: so does the comparison
		}
		if err == nil && rawURL != "" {
			u, perr := compat.ParseTransportURL(rawURL)
			require.NoError(t, perr)
			err = c.ApplyURLQuery(u)
		}
		if err == nil {
			err = strict
		}
		var ce *compat.ConfigError
		if err != nil {
			require.True(t, errors.As(err, &ce), "untyped %v", err)
		}
		var texts []string
		for _, f := range files {
			texts = append(texts, string(f.Data))
		}
		input := strings.Join(texts, "\n---- next file ----\n") + "\n---- url: " + rawURL
		switch {
		case py.Error != nil:
			require.NotNil(t, ce, "%s\npython: %v; goslo loaded it", input, *py.Error)
			require.Equal(t, py.Error.Class, ce.Class, "%s\n%v", input, err)
			if ce.Class != "RecursionError" {
				require.Equal(t, py.Error.Message, ce.Message, input)
			}
			configs[py.Error.Class]++
		case ce != nil:
			require.Equal(t, "", ce.Class, "%s\npython loaded it; goslo: %v", input, err)
			configs["refused by goslo only"]++
		default:
			for _, v := range py.Values {
				var g, n string
				require.NoError(t, json.Unmarshal(v[0], &g))
				require.NoError(t, json.Unmarshal(v[1], &n))
				gv, ok := c.Value(g, n)
				require.True(t, ok)
				gj, err := json.Marshal(gv)
				require.NoError(t, err)
				require.JSONEq(t, string(v[2]), string(gj), "%s\n%s.%s", input, g, n)
			}
			configs["loaded"]++
		}
	}
	t.Logf("seed %d: %d random URLs identical %v; %d random configurations identical %v", seed, rounds, urls, rounds, configs)
}
