package rabbit_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/driver/rabbit"
	"github.com/goslo/goslo/internal/rabbittest"
	"github.com/goslo/goslo/internal/vectors"
)

// TestFrames records the AMQP frames goslo sends (a recording relay per
// component, as the capture harness had) while it runs the actions of the
// default scenario, and compares them with default-frames.json field for
// field: method, channel, every argument with its field-table types, and
// the content-header properties. The differences allowed are amqp091-go's
// (rabbit.Transport's doc comment, docs/interop.md): client properties
// (product, capabilities), no empty headers table and no priority 0,
// channel.close and connection.close with reply code 200 (connection:
// "kthxbai"), and sending connections closed without channel.close.
func TestFrames(t *testing.T) {
	vec := loadFrames(t, "default-frames.json")
	n := rabbittest.Start(t)
	const vhost = "goslo-default" // the captured vhost: connection.open compares as is
	n.AddVhost(vhost)
	recs := map[string]*frameRecorder{}
	trs := map[string]*rabbit.Transport{}
	for _, comp := range []string{"rpc-server", "rpc-client", "notifier", "notifier-nova", "listener"} {
		recs[comp] = startRecorder(t, n.Addr())
		// The captured peers ran with the defaults (rabbit_retry_interval
		// etc. change nothing on the wire); the second notifier
		// transport with control_exchange nova.
		var mutate func(*compat.Config)
		if comp == "notifier-nova" {
			mutate = func(c *compat.Config) { c.Default.ControlExchange = "nova" }
		}
		trs[comp] = openURL(t, fmt.Sprintf("rabbit://guest:guest@127.0.0.1:%d/%s", recs[comp].port(), vhost), mutate)
	}

	// The scenario's actions (vectors README), those whose frames a Go
	// peer makes the same way.
	ctx := ctxT(t, 60*time.Second)
	e1, e2 := newEcho("srv1"), newEcho("srv2")
	s1, err := trs["rpc-server"].Listen(ctx, compat.Target{Topic: "demo", Server: "srv1"}, e1.handle)
	require.NoError(t, err)
	s2, err := trs["rpc-server"].Listen(ctx, compat.Target{Topic: "demo", Server: "srv2"}, e2.handle)
	require.NoError(t, err)
	cli := trs["rpc-client"]
	call := func(target compat.Target) {
		m := reqMsg("echo")
		m.Timeout = 10 * time.Second // the client's timeout=10
		cctx, cancel := context.WithTimeout(ctx, m.Timeout)
		defer cancel()
		_, err := cli.Call(cctx, target, m)
		require.NoError(t, err)
	}
	call(compat.Target{Topic: "demo"})
	call(compat.Target{Topic: "demo", Server: "srv1"})
	require.NoError(t, cli.Cast(ctx, compat.Target{Topic: "demo"}, reqMsg("cast_me")))
	require.NoError(t, cli.Cast(ctx, compat.Target{Topic: "demo", Server: "srv2"}, reqMsg("cast_me")))
	require.NoError(t, cli.Cast(ctx, compat.Target{Topic: "demo", Fanout: true}, reqMsg("fanout_me")))
	for _, p := range []string{"info", "error"} {
		require.NoError(t, trs["notifier"].Notify(ctx, compat.Target{Topic: "notifications." + p}, notification(strings.ToUpper(p), "compute.instance.create.end")))
	}
	require.NoError(t, trs["notifier-nova"].Notify(ctx, compat.Target{Topic: "monitor.info"}, notification("INFO", "monitor")))
	sink := &noteSink{got: make(chan *driver.Request, 20)}
	lis := trs["listener"]
	l1, err := lis.ListenNotifications(ctx, []compat.Target{{Topic: "notifications.info"}, {Topic: "notifications.error"}}, driver.ListenOptions{AllowRequeue: true}, sink.handle)
	require.NoError(t, err)
	l2, err := lis.ListenNotifications(ctx, []compat.Target{{Topic: "notifications.info"}}, driver.ListenOptions{Pool: "audit-pool"}, sink.handle)
	require.NoError(t, err)
	l3, err := lis.ListenNotifications(ctx, []compat.Target{{Topic: "monitor.info", Exchange: "nova"}}, driver.ListenOptions{}, sink.handle)
	require.NoError(t, err)
	for i := 0; i < 3; i++ { // the backlog: info, error, monitor
		waitReq(t, sink.got)
	}
	require.NoError(t, trs["notifier"].Notify(ctx, compat.Target{Topic: "notifications.info"}, notification("INFO", "after")))
	waitReq(t, sink.got)
	waitReq(t, sink.got)
	// Every request handled (and acked) before the servers stop.
	for i := 0; i < 4; i++ {
		select {
		case <-e1.seen:
		case <-e2.seen:
		case <-time.After(10 * time.Second):
			t.Fatal("a request did not arrive")
		}
	}
	for _, s := range []driver.Server{s1, s2, l1, l2, l3} {
		require.NoError(t, s.Stop(ctx))
	}
	for _, tr := range trs {
		require.NoError(t, tr.Close())
	}
	for comp, r := range recs {
		waitCmds(t, r, comp+" connections closed", func(cs [][]frameCmd) bool {
			for _, c := range cs {
				if len(c) == 0 || c[len(c)-1].Method != "connection.close-ok" {
					return false
				}
			}
			return true
		})
		require.NoError(t, r.errors(), comp)
	}

	// Which captured connection each recorded one plays.
	pairs := map[string][]frameCmd{}
	for comp, r := range recs {
		for _, c := range r.snapshot() {
			label := comp + " " + role(comp, c)
			if comp == "notifier-nova" {
				label = "notifier conn2"
			}
			require.NotContains(t, pairs, label, "two connections play %s", label)
			pairs[label] = c
		}
	}
	want := []string{"rpc-server conn1", "rpc-server conn2", "rpc-server conn3", "rpc-client conn1", "rpc-client conn2",
		"notifier conn1", "notifier conn2", "listener conn1", "listener conn2", "listener conn3"}
	require.ElementsMatch(t, want, keysOfMap(pairs))
	for _, label := range want {
		t.Run(strings.ReplaceAll(label, " ", "_"), func(t *testing.T) { compareConn(t, label, pairs[label], vec[label]) })
	}
}

// role names a recorded connection as the capture does: listening
// connections by the queues they consume, the sending one as the last.
func role(comp string, cmds []frameCmd) string {
	var queues []string
	for _, c := range cmds {
		if c.Dir == "C>S" && c.Method == "basic.consume" {
			queues = append(queues, fmt.Sprint(c.Args["queue"]))
		}
	}
	has := func(q string) bool { return slices.Contains(queues, q) }
	switch {
	case comp == "rpc-server" && has("demo.srv1"):
		return "conn1"
	case comp == "rpc-server" && has("demo.srv2"):
		return "conn2"
	case comp == "rpc-server":
		return "conn3"
	case comp == "rpc-client" && len(queues) > 0:
		return "conn1"
	case comp == "rpc-client":
		return "conn2"
	case comp == "listener" && has("audit-pool"):
		return "conn2"
	case comp == "listener" && has("monitor.info"):
		return "conn3"
	}
	return "conn1"
}

func keysOfMap[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// loadFrames reads a frames vector: the client's commands of each
// connection, by label, as generic JSON.
func loadFrames(t *testing.T, name string) map[string][]map[string]any {
	t.Helper()
	b := vectors.LoadRabbit(t, name)
	var f struct {
		Connections []struct {
			Label    string           `json:"label"`
			Commands []map[string]any `json:"commands"`
		} `json:"connections"`
	}
	require.NoError(t, json.Unmarshal(b, &f))
	out := map[string][]map[string]any{}
	for _, c := range f.Connections {
		for _, cmd := range c.Commands {
			if cmd["dir"] == "C>S" {
				out[c.Label] = append(out[c.Label], cmd)
			}
		}
	}
	return out
}

// generic is a recorded client command in the vectors' JSON shape.
func generic(t *testing.T, c frameCmd) map[string]any {
	switch {
	case c.Header:
		return map[string]any{"protocol_header": c.Args["protocol_header"]}
	case c.Heartbeat:
		return map[string]any{"heartbeat": true}
	}
	m := map[string]any{"channel": c.Channel, "method": c.Method, "class_id": c.ClassID, "method_id": c.MethodID, "args": c.Args}
	if c.Content != nil {
		m["content"] = map[string]any{"property_flags": fmt.Sprintf("0x%04x", c.Content.Flags), "properties": c.Content.Props, "body_size": c.Content.BodyLen}
	}
	return jsonShape(t, m).(map[string]any)
}

var hex32 = regexp.MustCompile(`[0-9a-f]{32}`)

// normalized is a command with what differs on every run, or by the
// allowed amqp091-go differences, taken out; as a comparable string.
func normalized(t *testing.T, cmd map[string]any, goslo bool) string {
	c := map[string]any{}
	for _, k := range []string{"channel", "method", "args", "protocol_header", "heartbeat"} {
		if v, ok := cmd[k]; ok {
			c[k] = v
		}
	}
	args, _ := c["args"].(map[string]any)
	if args != nil {
		a := map[string]any{}
		for k, v := range args {
			a[k] = v
		}
		if _, ok := a["delivery_tag"]; ok {
			a["delivery_tag"] = "<tag>"
		}
		method, _ := c["method"].(string)
		if goslo && (method == "channel.close" || method == "connection.close") && a["reply_code"] == float64(200) {
			// amqp091-go: reply code 200 (connection: "kthxbai"); py-amqp 0, "".
			a["reply_code"], a["reply_text"] = float64(0), ""
		}
		c["args"] = a
	}
	if ct, ok := cmd["content"].(map[string]any); ok {
		props := map[string]any{}
		for k, v := range ct["properties"].(map[string]any) {
			props[k] = v
		}
		var flags uint16
		fmt.Sscanf(fmt.Sprint(ct["property_flags"]), "0x%x", &flags)
		// amqp091-go writes no empty headers table and no priority 0.
		if h, ok := props["headers"].(map[string]any); ok && len(h) == 0 {
			delete(props, "headers")
			flags &^= 0x2000
		}
		if props["priority"] == float64(0) {
			delete(props, "priority")
			flags &^= 0x0800
		}
		c["content"] = map[string]any{"property_flags": fmt.Sprintf("0x%04x", flags), "properties": props}
	}
	b, err := json.Marshal(c)
	require.NoError(t, err)
	return hex32.ReplaceAllString(string(b), "<hex>")
}

// compareConn compares one recorded connection with its capture.
func compareConn(t *testing.T, label string, got []frameCmd, want []map[string]any) {
	require.NotEmpty(t, want, "no captured connection %s", label)
	var g []map[string]any
	for _, c := range got {
		if c.Dir == "C>S" && !c.Heartbeat {
			g = append(g, generic(t, c))
		}
	}
	var w []map[string]any
	for _, c := range want {
		if c["heartbeat"] == nil {
			w = append(w, c)
		}
	}
	require.GreaterOrEqual(t, len(g), 4)

	// The handshake: protocol header, start-ok, tune-ok, open.
	require.Equal(t, w[0]["protocol_header"], g[0]["protocol_header"])
	require.Equal(t, "connection.start-ok", g[1]["method"])
	ga, wa := g[1]["args"].(map[string]any), w[1]["args"].(map[string]any)
	for _, k := range []string{"mechanism", "locale"} {
		require.Equal(t, wa[k], ga[k], "start-ok %s", k)
	}
	// The AMQPLAIN response is a field table without its length: equal
	// entries (amqp091-go writes them in map order).
	require.Equal(t, plainResponse(t, wa["response"]), plainResponse(t, ga["response"]), "start-ok response")
	gp, wp := ga["client_properties"].(map[string]any), wa["client_properties"].(map[string]any)
	require.ElementsMatch(t, keysOfMap(wp), keysOfMap(gp), "client property names")
	for k, v := range wp {
		require.Equal(t, v.(map[string]any)["type"], gp[k].(map[string]any)["type"], "client property %s: field type", k)
	}
	name := gp["connection_name"].(map[string]any)["value"].(string)
	require.Regexp(t, `^[^:]+:\d+:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, name)
	for i := 2; i < 4; i++ {
		require.Equal(t, normalized(t, w[i], false), normalized(t, g[i], true), "handshake command %d", i)
	}

	// The setup: everything before the first publish, ack or reject is
	// the same, in the same order.
	prefix := func(l []map[string]any) []string {
		var out []string
		for _, c := range l[4:] {
			switch c["method"] {
			case "basic.publish", "basic.ack", "basic.reject", "queue.delete", "channel.close", "connection.close":
				return out
			}
			out = append(out, normalized(t, c, false))
		}
		return out
	}
	gPre := prefix(g)
	for i := range gPre {
		gPre[i] = normalized(t, g[4+i], true)
	}
	require.Equal(t, prefix(w), gPre, "setup commands")

	// Every later command is one the capture has, argument for argument.
	captured := map[string]bool{}
	methods := map[string]bool{}
	for _, c := range w {
		captured[normalized(t, c, false)] = true
		if m, ok := c["method"].(string); ok {
			methods[m] = true
		}
	}
	sent := map[string]bool{}
	for _, c := range g[4+len(gPre):] {
		s := normalized(t, c, true)
		require.True(t, captured[s], "%s sends a command the capture lacks:\n%s", label, s)
		sent[c["method"].(string)] = true
	}
	t.Logf("%s: handshake, %d setup commands, %d more commands each found in the capture (%d kinds)", label, len(gPre), len(g)-4-len(gPre), len(sent))
	// And every kind of command the capture has after its setup is sent,
	// but for rejects (bad input, probes) and the channel.close of a
	// sending connection (amqp091-go closes the connection only).
	sending := !slices.ContainsFunc(w, func(c map[string]any) bool { return c["method"] == "basic.consume" })
	for m := range methods {
		switch {
		case m == "basic.reject":
		case m == "channel.close" && sending:
		case slices.ContainsFunc(w[4:4+len(prefix(w))], func(c map[string]any) bool { return c["method"] == m }):
		case m == "connection.start-ok", m == "connection.tune-ok", m == "connection.open":
		default:
			require.True(t, sent[m], "%s: goslo sent no %s", label, m)
		}
	}
}

// plainResponse decodes an AMQPLAIN response (a field table's entries).
func plainResponse(t *testing.T, v any) any {
	t.Helper()
	s, _ := v.(string)
	r := &argReader{b: append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...)}
	tab := r.table()
	require.NoError(t, r.err)
	return jsonShape(t, tab)
}

// TestHeartbeatFrames: with heartbeat_timeout_threshold=4 and
// heartbeat_rate=2 (variant heartbeat_4s of options-matrix.json) goslo
// proposes the heartbeat Python does in tune-ok, and while idle sends
// heartbeat frames on every connection at least as often as the captured
// Python peers (every 3–4 s there; amqp091-go's rate is fixed at
// threshold/2, 2 s here, whatever heartbeat_rate says).
func TestHeartbeatFrames(t *testing.T) {
	var variant map[string]any
	var all struct {
		Variants []map[string]any `json:"variants"`
	}
	require.NoError(t, json.Unmarshal(vectors.LoadRabbit(t, "options-matrix.json"), &all))
	for _, v := range all.Variants {
		if v["variant"] == "heartbeat_4s" {
			variant = v
		}
	}
	require.NotNil(t, variant)
	var wantTune any
	var maxGap float64
	for _, c := range variant["connections"].([]any) {
		var last float64
		for _, x := range c.(map[string]any)["commands"].([]any) {
			cmd := x.(map[string]any)
			if cmd["method"] == "connection.tune-ok" {
				wantTune = cmd["args"]
			}
			if cmd["heartbeat"] == true && cmd["dir"] == "C>S" {
				ms := cmd["t_ms"].(float64)
				if last > 0 && ms-last > maxGap {
					maxGap = ms - last
				}
				last = ms
			}
		}
	}
	require.NotNil(t, wantTune)
	require.Greater(t, maxGap, 0.0)

	n := rabbittest.Start(t)
	n.AddVhost("goslo-hb")
	rec := startRecorder(t, n.Addr())
	tr := openURL(t, fmt.Sprintf("rabbit://guest:guest@127.0.0.1:%d/goslo-hb?heartbeat_timeout_threshold=4&heartbeat_rate=2", rec.port()), nil)
	e := newEcho("s")
	listen(t, tr, compat.Target{Topic: "hb", Server: "s"}, e.handle)
	_, err := tr.Call(ctxT(t, 10*time.Second), compat.Target{Topic: "hb"}, reqMsg("echo"))
	require.NoError(t, err)
	idleFrom := time.Now()
	time.Sleep(9 * time.Second)
	conns := rec.snapshot()
	require.Len(t, conns, 3, "server, reply and sending connections")
	for i, c := range conns {
		var tune map[string]any
		var beats int
		last := idleFrom
		var gap time.Duration
		for _, f := range c {
			if f.Dir == "C>S" && f.Method == "connection.tune-ok" {
				tune = f.Args
			}
			if f.Dir == "C>S" && f.Heartbeat && f.At.After(idleFrom) {
				beats++
				gap = max(gap, f.At.Sub(last))
				last = f.At
			}
		}
		gap = max(gap, time.Since(last))
		require.Equal(t, wantTune, jsonShape(t, tune), "connection %d: tune-ok", i)
		// Idle, no gap between heartbeats longer than Python's.
		require.LessOrEqual(t, gap, time.Duration(maxGap)*time.Millisecond+500*time.Millisecond, "connection %d: %d heartbeats, longest silence %v (Python: %.0f ms)", i, beats, gap, maxGap)
		t.Logf("connection %d: tune-ok %v, %d client heartbeats in %v idle, longest silence %v (Python's %.0f ms)", i, tune, beats, time.Since(idleFrom).Round(time.Millisecond), gap.Round(time.Millisecond), maxGap)
	}
	require.NoError(t, rec.errors())
}
