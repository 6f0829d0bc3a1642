package main

import (
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/envelope"
)

// Fixed ids keep the transcript reproducible.
const (
	demoMsgID    = "50551340-e84e-11f1-87e1-02fc00000001"
	demoNotifyID = "37f41f3b-ab48-4e6d-b05c-e3a067aca06a"
	// demoNotifyMsgID is the zmq message id of the NOTIFY (uuid1, like every
	// message id); demoNotifyID is the notification's own uuid4.
	demoNotifyMsgID = "5e5501c6-e84e-11f1-a173-02fc00000001"
	demoHost        = "127.0.0.1"
)

// demo walks one CALL, its reply, a failing CALL and a notification
// through the foundation (compat and envelope), printing the frames a
// Python 8.1.4 peer would put on the wire in direct mode.
func demo(w io.Writer) error {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	cfg := compat.DefaultConfig(demoHost)
	u, err := compat.ParseTransportURL("zmq+dummy://?rpc_zmq_serialization=json")
	if err != nil {
		return err
	}
	if err := cfg.ApplyURLQuery(u); err != nil {
		return err
	}
	codec, err := envelope.CodecByName(cfg.ZMQ.RPCZMQSerialization)
	if err != nil {
		return err
	}
	p("goslo demo: the foundation at work (matchmaker %s, serialization %s)", u.Backend(), codec.Name())
	p("")

	target := compat.Target{Topic: "demo", Server: "srv1@backend", Version: "1.0"}
	p("1. Target %s", target)
	p("   server registers under  %v", compat.RegistrationKeys(compat.Router, target))
	p("   as address              %s", compat.HostPort(cfg.ZMQ.RPCZMQHost, 49200))
	p("   a client looks up       %s", compat.TargetKey(compat.Router, target))
	p("")

	ctx := envelope.NewMap("user", "alice", "roles", []any{"admin"})
	req := envelope.Request{
		Method:  "echo",
		Args:    envelope.NewMap("greeting", "h\u00e9llo \U0001F680", "when", time.Date(2017, 3, 14, 15, 9, 26, 535897000, time.UTC)),
		Version: target.Version,
	}
	payload, err := envelope.EncodeRequest(codec, ctx, req)
	if err != nil {
		return err
	}
	p("2. CALL frames, client DEALER -> server ROUTER")
	printFrames(w, [][]byte{{}, []byte("1.0"), []byte("1"), []byte(demoMsgID), payload})
	p("")

	gotCtx, msg, err := envelope.DecodePair(codec, payload)
	if err != nil {
		return err
	}
	got, err := envelope.ParseRequest(msg)
	if err != nil {
		return err
	}
	ok, err := compat.VersionIsCompatible("1.3", got.DispatchVersion())
	if err != nil {
		return err
	}
	user, _ := gotCtx.(*envelope.Map).Get("user")
	p("3. The server reads method %q, args %s, context user %v;", got.Method, envelope.Repr(got.Args), user)
	p("   an endpoint at version 1.3 serves version %s: %v", got.DispatchVersion(), ok)
	p("")

	reply, err := envelope.EncodeReply(codec, got.Args, nil)
	if err != nil {
		return err
	}
	p("4. REPLY frames, server ROUTER -> client DEALER")
	printFrames(w, [][]byte{{}, []byte("1.0"), []byte("5"), []byte(demoMsgID), reply})
	p("")

	failed, err := envelope.EncodeReply(codec, nil, envelope.ValueError("kaboom: sp\u00e9cial \u2603"))
	if err != nil {
		return err
	}
	_, remote, err := envelope.DecodeReply(codec, failed)
	if err != nil {
		return err
	}
	p("5. A failing call: the reply payload carries the failure as a JSON string")
	p("   %s", clip(string(failed), 160))
	p("   the caller gets %v (class %s, module %s)", remote, remote.Class, remote.Module)
	_, missing, err := envelope.DecodeReply(codec, mustReply(codec, envelope.NoSuchMethodError("frob")))
	if err != nil {
		return err
	}
	p("   and for an unknown method: errors.Is(err, ErrNoSuchMethod) = %v", errors.Is(missing, envelope.ErrNoSuchMethod))
	p("")

	n := envelope.Notification{
		MessageID: demoNotifyID, PublisherID: "compute.host-1", EventType: "compute.instance.create.end",
		Priority: envelope.PriorityInfo, Payload: envelope.NewMap("instance_id", "i-1"),
		Timestamp: envelope.FormatTimestamp(time.Date(2026, 11, 24, 21, 30, 52, 37461000, time.UTC)),
	}
	np, err := envelope.AppendPair(codec, nil, envelope.NewMap(), n.Map())
	if err != nil {
		return err
	}
	p("6. NOTIFY to %s (a fanout to every listener of that topic)", compat.TargetKey(compat.Router, compat.Target{Topic: compat.NotificationTopic("notifications", n.Priority)}))
	printFrames(w, [][]byte{{}, []byte("1.0"), []byte("4"), []byte(demoNotifyMsgID), np})
	p("")
	p("done: each frame above has the bytes oslo.messaging 8.1.4 writes for the same input,")
	p("traceback lines aside (checked against the real Python peer by `make test`).")
	return nil
}

func mustReply(c envelope.Codec, err error) []byte {
	b, e := envelope.EncodeReply(c, nil, err)
	if e != nil {
		panic(e)
	}
	return b
}

func printFrames(w io.Writer, frames [][]byte) {
	for i, f := range frames {
		text := string(f)
		if !utf8.Valid(f) {
			text = fmt.Sprintf("%x", f)
		}
		fmt.Fprintf(w, "   [%d] %s\n", i, clip(fmt.Sprintf("%q", text), 400))
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
