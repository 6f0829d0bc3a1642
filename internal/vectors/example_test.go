package vectors_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/goslo/goslo/internal/vectors"
	"github.com/goslo/goslo/internal/zmqwire"
)

// Example reads one zmq capture and checks goslo's parser against it, as
// the wire tests do (there through Load, which fails the test when the
// vectors are missing): the first message of the direct-mode JSON
// scenario is a CALL as the server's ROUTER received it from the real
// Python client.
func Example() {
	b, err := os.ReadFile(filepath.Join(vectors.Dir(), "direct-json.json"))
	if err != nil {
		panic(err)
	}
	var f vectors.File
	if err := json.Unmarshal(b, &f); err != nil {
		panic(err)
	}
	v := f.Vectors[0]
	fmt.Println(v.Name, v.MessageType, v.Serialization, v.Decoded.Layout)
	for _, r := range v.Decoded.Frames {
		fmt.Printf("%d: %s (%d bytes)\n", r.Index, r.Role, v.Frames[r.Index].Len)
	}

	in, err := zmqwire.ParseDirectRequest(v.FrameBytes())
	if err != nil {
		panic(err)
	}
	payload, _ := v.Payload()
	fmt.Println(in.Type, in.MsgID == v.Decoded.MessageID, string(in.Payload) == string(payload))
	// Output:
	// call_echo/01 client->server (direct) CALL json direct_request@ROUTER
	// 0: routing identity of sender (added by ROUTER) (36 bytes)
	// 1: empty delimiter (0 bytes)
	// 2: message version (3 bytes)
	// 3: message type (1 bytes)
	// 4: message id (36 bytes)
	// 5: payload (675 bytes)
	// CALL true true
}
