package envelope_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/goslo/goslo/envelope"
)

func ExampleEncodeRequest() {
	ctx := envelope.NewMap("user", "alice")
	req := envelope.Request{
		Method:  "echo",
		Args:    envelope.NewMap("text", "caf\u00e9", "when", time.Date(2017, 3, 14, 15, 9, 26, 535897000, time.UTC)),
		Version: "1.0",
	}
	b, err := envelope.EncodeRequest(envelope.JSON, ctx, req)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))
	m, _ := envelope.EncodeRequest(envelope.Msgpack, ctx, req)
	fmt.Printf("msgpack: %d bytes, starts %x\n", len(m), m[:2])
	// Output:
	// [{"user": "alice"}, {"method": "echo", "args": {"text": "caf\u00e9", "when": "2017-03-14T15:09:26.535897"}, "version": "1.0"}]
	// msgpack: 123 bytes, starts 9281
}

func ExampleDecodeReply() {
	payload := []byte(`[null, "{\"class\": \"NoSuchMethod\", \"module\": \"oslo_messaging.rpc.dispatcher\", \"message\": \"Endpoint does not support RPC method frob\", \"tb\": [], \"args\": [\"Endpoint does not support RPC method frob\"], \"kwargs\": {}}"]`)
	_, remote, err := envelope.DecodeReply(envelope.JSON, payload)
	if err != nil {
		panic(err)
	}
	fmt.Println(remote.Class, errors.Is(remote, envelope.ErrNoSuchMethod))
	fmt.Println(remote)
	// Output:
	// NoSuchMethod true
	// Remote error: oslo_messaging.rpc.dispatcher.NoSuchMethod Endpoint does not support RPC method frob
}

func ExampleMarshalFailure() {
	f, _ := envelope.MarshalFailure(envelope.ValueError("bad input"))
	fmt.Println(f)
	// Output:
	// {"class": "ValueError", "module": "builtins", "message": "bad input", "tb": ["Traceback (most recent call last):\n", "ValueError: bad input\n"], "args": ["bad input"], "kwargs": {}}
}

func ExampleWrap() {
	w, _ := envelope.Wrap(envelope.NewMap("method", "ping", "args", envelope.NewMap()))
	fmt.Println(envelope.Repr(w))
	// Output:
	// {"oslo.version": "2.0", "oslo.message": "{\"method\": \"ping\", \"args\": {}}"}
}
