package envelope

import "fmt"

// Codec is one rpc_zmq_serialization choice.
type Codec interface {
	// Name is the option value: "json" or "msgpack".
	Name() string
	// Append appends the encoding of v to dst.
	Append(dst []byte, v any) ([]byte, error)
	// Decode reads exactly one value filling all of b.
	Decode(b []byte) (any, error)
}

// The two codecs of the zmq driver.
var (
	JSON    Codec = jsonCodec{}
	Msgpack Codec = msgpackCodec{}
)

// CodecByName returns the codec for an rpc_zmq_serialization value.
func CodecByName(name string) (Codec, error) {
	switch name {
	case "json":
		return JSON, nil
	case "msgpack":
		return Msgpack, nil
	}
	return nil, fmt.Errorf("envelope: unknown serialization %q (choices: json, msgpack)", name)
}

type jsonCodec struct{}

func (jsonCodec) Name() string                             { return "json" }
func (jsonCodec) Append(dst []byte, v any) ([]byte, error) { return AppendJSON(dst, v) }
func (jsonCodec) Decode(b []byte) (any, error)             { return DecodeJSON(b) }

type msgpackCodec struct{}

func (msgpackCodec) Name() string                             { return "msgpack" }
func (msgpackCodec) Append(dst []byte, v any) ([]byte, error) { return AppendMsgpack(dst, v) }
func (msgpackCodec) Decode(b []byte) (any, error)             { return DecodeMsgpack(b) }
