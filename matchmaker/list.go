package matchmaker

import (
	"context"
	"sort"
	"strings"
)

// Lister is implemented by the matchmakers that can list their keys: a
// goslo addition (oslo's matchmakers cannot), used by the bridge to find
// the servers of a topic ("ROUTER/<topic>/<server>" keys). Dummy and the
// Redis-schema backends implement it; the Prometheus wrapper of package
// metrics passes it through.
type Lister interface {
	// Keys returns the keys that start with prefix and hold at least one
	// record (on Redis: that exist; a record's liveness is read with
	// HostsByKey), sorted.
	Keys(ctx context.Context, prefix string) ([]string, error)
}

var (
	_ Lister = (*Dummy)(nil)
	_ Lister = (*Redis)(nil)
)

// Keys implements Lister.
func (d *Dummy) Keys(_ context.Context, prefix string) ([]string, error) {
	d.mu.Lock()
	var keys []string
	closed := d.closed
	for k := range d.keys {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	d.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	out := keys[:0]
	for _, k := range keys {
		if live, _ := d.live(k); len(live) > 0 {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Keys implements Lister with SCAN ... MATCH <prefix>* on the instance
// reads go to.
func (s *schema) Keys(ctx context.Context, prefix string) ([]string, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	pattern := globEscape(prefix) + "*"
	keys, err := s.st.read(ctx, func(c rdb) ([]string, error) {
		var out []string
		cursor := "0"
		for {
			v, err := c.Do(ctx, "SCAN", cursor, "MATCH", pattern, "COUNT", 500).Slice()
			if err != nil {
				return nil, err
			}
			if len(v) != 2 {
				return out, nil
			}
			cursor, _ = v[0].(string)
			if ks, ok := v[1].([]any); ok {
				for _, k := range ks {
					if s, ok := k.(string); ok {
						out = append(out, s)
					}
				}
			}
			if cursor == "0" || cursor == "" {
				return out, nil
			}
		}
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(keys)
	return slicesCompact(keys), nil
}

func slicesCompact(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// globEscape escapes the characters Redis's MATCH gives a meaning.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
