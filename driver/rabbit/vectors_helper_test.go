package rabbit

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/vectors"
)

// loadVector decodes a rabbit vector file keeping key order.
func loadVector(t testing.TB, name string) *envelope.Map {
	t.Helper()
	v, err := envelope.DecodeJSON(vectors.LoadRabbit(t, name))
	if err != nil {
		t.Fatalf("vectors %s: %v", name, err)
	}
	return v.(*envelope.Map)
}

func get(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(*envelope.Map)
		if !ok {
			return nil
		}
		v, _ = m.Get(k)
	}
	return v
}

func str(v any, path ...string) string { s, _ := get(v, path...).(string); return s }
func list(v any, path ...string) []any { l, _ := get(v, path...).([]any); return l }

var (
	hex32   = regexp.MustCompile(`^[0-9a-f]{32}$`)
	qmName  = regexp.MustCompile(`^capture-host:[a-z-]+\.py:[0-9]+$`)
	uuid4Re = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

// configFor builds the Config of a capture from its [oslo_messaging_rabbit]
// strings through the INI loader, then applies a URL query.
func configFor(t testing.TB, rabbitOpts *envelope.Map, controlExchange, query string) *compat.Config {
	t.Helper()
	var ini strings.Builder
	fmt.Fprintf(&ini, "[DEFAULT]\ncontrol_exchange = %s\n[oslo_messaging_rabbit]\n", controlExchange)
	for _, kv := range rabbitOpts.Items() {
		fmt.Fprintf(&ini, "%s = %v\n", kv.Key, kv.Value)
	}
	c, err := compat.ParseConfig("capture-host", compat.ConfigFile{Name: "capture.conf", Data: []byte(ini.String())})
	if err != nil {
		t.Fatal(err)
	}
	if query != "" {
		u, err := compat.ParseTransportURL("rabbit://h/" + query)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ApplyRabbitURLQuery(u); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.ValidateRabbit(); err != nil {
		t.Fatal(err)
	}
	return c
}

// Canonical one-line forms of a command, built the same way from a
// captured frame and from a Command, so that a test compares them as
// strings and a failure shows both.

func argsString(a Args) string {
	parts := make([]string, len(a))
	for i, kv := range a {
		v := kv.Value
		if s, ok := v.(string); ok {
			v = fmt.Sprintf("%q", s)
		}
		parts[i] = fmt.Sprintf("%s:%c=%v", kv.Key, FieldType(kv.Value), v)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func capturedArgs(v any) string {
	m, _ := v.(*envelope.Map)
	var parts []string
	for _, kv := range m.Items() {
		val := get(kv.Value, "value")
		if s, ok := val.(string); ok {
			val = fmt.Sprintf("%q", s)
		}
		parts = append(parts, fmt.Sprintf("%s:%s=%v", kv.Key, str(kv.Value, "type"), val))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func (c Command) String() string {
	switch {
	case c.QoS != nil:
		return fmt.Sprintf("basic.qos size=0 count=%d global=false", c.QoS.PrefetchCount)
	case c.Exchange != nil:
		e := c.Exchange
		return fmt.Sprintf("exchange.declare %s type=%s passive=false durable=%v auto_delete=%v internal=false no_wait=false args={}", e.Name, e.Kind, e.Durable, e.AutoDelete)
	case c.Queue != nil:
		q := c.Queue
		return fmt.Sprintf("queue.declare %s passive=false durable=%v exclusive=false auto_delete=%v no_wait=false args=%s", q.Name, q.Durable, q.AutoDelete, argsString(q.Args))
	case c.Bind != nil:
		b := c.Bind
		return fmt.Sprintf("queue.bind %s exchange=%s key=%q no_wait=false args={}", b.Queue, b.Exchange, b.RoutingKey)
	case c.Consume != nil:
		k := c.Consume
		return fmt.Sprintf("basic.consume %s tag=%s no_local=false no_ack=false exclusive=false no_wait=false args=%s", k.Queue, k.Tag, argsString(k.Args))
	}
	return "?"
}

func capturedString(cmd *envelope.Map) string {
	a := get(cmd, "args")
	switch str(cmd, "method") {
	case "basic.qos":
		return fmt.Sprintf("basic.qos size=%v count=%v global=%v", get(a, "prefetch_size"), get(a, "prefetch_count"), get(a, "global"))
	case "exchange.declare":
		return fmt.Sprintf("exchange.declare %s type=%s passive=%v durable=%v auto_delete=%v internal=%v no_wait=%v args=%s",
			str(a, "exchange"), str(a, "type"), get(a, "passive"), get(a, "durable"), get(a, "auto_delete"), get(a, "internal"), get(a, "no_wait"), capturedArgs(get(a, "arguments")))
	case "queue.declare":
		return fmt.Sprintf("queue.declare %s passive=%v durable=%v exclusive=%v auto_delete=%v no_wait=%v args=%s",
			str(a, "queue"), get(a, "passive"), get(a, "durable"), get(a, "exclusive"), get(a, "auto_delete"), get(a, "no_wait"), capturedArgs(get(a, "arguments")))
	case "queue.bind":
		return fmt.Sprintf("queue.bind %s exchange=%s key=%q no_wait=%v args=%s", str(a, "queue"), str(a, "exchange"), str(a, "routing_key"), get(a, "no_wait"), capturedArgs(get(a, "arguments")))
	case "basic.consume":
		return fmt.Sprintf("basic.consume %s tag=%s no_local=%v no_ack=%v exclusive=%v no_wait=%v args=%s",
			str(a, "queue"), str(a, "consumer_tag"), get(a, "no_local"), get(a, "no_ack"), get(a, "exclusive"), get(a, "no_wait"), capturedArgs(get(a, "arguments")))
	}
	return "?"
}

var setupMethods = map[string]bool{"basic.qos": true, "exchange.declare": true, "queue.declare": true, "queue.bind": true, "basic.consume": true}

// setupCommands are the client's topology commands of a captured
// connection, up to the first channel.close the broker sends (after which
// the durable_mismatch fallback re-declares, an I/O-layer path).
func setupCommands(conn any) []*envelope.Map {
	var out []*envelope.Map
	for _, c := range list(conn, "commands") {
		cmd := c.(*envelope.Map)
		if str(cmd, "dir") == "S>C" && str(cmd, "method") == "channel.close" {
			break
		}
		if str(cmd, "dir") == "C>S" && setupMethods[str(cmd, "method")] {
			out = append(out, cmd)
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
