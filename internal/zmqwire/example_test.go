package zmqwire_test

import (
	"errors"
	"fmt"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/internal/zmqwire"
)

// A fixed message id, as NewUUID1 would make one.
const msgID = "50551340-e84e-11f1-87e1-02fc00000001"

// ExampleDirectRequest builds the frames a direct-mode client DEALER sends
// for a CALL, and parses them as the server's ROUTER receives them: with
// the sender's identity in front. The server's reply goes back through the
// ROUTER, which consumes the identity frame.
func ExampleDirectRequest() {
	out := zmqwire.DirectRequest(zmqwire.Call, msgID, []byte(`[{}, {"method": "ping"}]`))
	fmt.Printf("%q\n", out)

	identity := []byte("092dc08e-3b57-4e11-83ea-aeb032dd6b36")
	in, err := zmqwire.ParseDirectRequest(append([][]byte{identity}, out...))
	if err != nil {
		panic(err)
	}
	fmt.Println(in.Type, in.MsgID, string(in.Payload))

	reply := zmqwire.DirectReply(in.Identity, in.MsgID, []byte(`["pong", null]`))
	resp, err := zmqwire.ParseDirectResponse(reply[1:]) // what the DEALER gets
	fmt.Println(resp.Type, resp.MsgID, string(resp.Payload), err)
	// Output:
	// ["" "1.0" "1" "50551340-e84e-11f1-87e1-02fc00000001" "[{}, {\"method\": \"ping\"}]"]
	// CALL 50551340-e84e-11f1-87e1-02fc00000001 [{}, {"method": "ping"}]
	// REPLY 50551340-e84e-11f1-87e1-02fc00000001 ["pong", null] <nil>
}

// ExampleParseDirectRequest: a message a Python receiver would drop is a
// *FrameError with the reason it would log, matching ErrBadFrames.
func ExampleParseDirectRequest() {
	frames := [][]byte{[]byte("peer"), {}, []byte("2.0"), []byte("1"), []byte(msgID), []byte("{}")}
	_, err := zmqwire.ParseDirectRequest(frames)
	var fe *zmqwire.FrameError
	fmt.Println(errors.Is(err, zmqwire.ErrBadFrames), errors.As(err, &fe))
	fmt.Println(fe.Hop, "|", fe.Reason)

	// The type frame is read as Python's int() reads it.
	t, ok := zmqwire.ParseType([]byte(" 01"))
	fmt.Println(t, ok)
	// Output:
	// true true
	// direct server | Message version 2.0 is not supported.
	// CALL true
}

// ExampleProxyRoute is the proxy's one routing rule: the frames a proxy
// ROUTER receives from a client carry the routing key (the chosen server's
// identity) after the type; the proxy swaps the sender and the key, so the
// backend ROUTER delivers to the server and the server learns whom to
// answer.
func ExampleProxyRoute() {
	client := zmqwire.ClientIdentity("host-a", "7d3f6b2e-0c1a-4d8e-9f00-1b2c3d4e5f60")
	server := zmqwire.ServerIdentity("host-b", compat.Target{Topic: "compute", Server: "node-1"}, "e1f2a3b4-c5d6-4e7f-8091-a2b3c4d5e6f7")
	req := zmqwire.ProxyRequest(zmqwire.Call, []byte(server), msgID, []byte("{}"))
	received := append([][]byte{[]byte(client)}, req...) // the frontend ROUTER adds the sender
	routed, t, err := zmqwire.ProxyRoute(received)
	fmt.Println(t, err)
	fmt.Printf("%q\n", routed)

	in, err := zmqwire.ParseProxyServerRequest(routed[1:]) // the backend ROUTER consumes the key
	fmt.Println(string(in.Identity), in.Type, err)
	// Output:
	// CALL <nil>
	// ["host-b/compute/node-1/e1f2a3b4-c5d6-4e7f-8091-a2b3c4d5e6f7" "" "1.0" "host-a/7d3f6b2e-0c1a-4d8e-9f00-1b2c3d4e5f60" "1" "50551340-e84e-11f1-87e1-02fc00000001" "{}"]
	// host-a/7d3f6b2e-0c1a-4d8e-9f00-1b2c3d4e5f60 CALL <nil>
}
