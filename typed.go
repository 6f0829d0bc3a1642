package goslo

import (
	"context"
	"errors"
	"fmt"

	"github.com/goslo/goslo/envelope"
)

// Go values on the wire.
//
// A struct travels as the dict a Python peer would send for it: one entry
// per exported field, keys in field order, named and filtered by the
// field's `json` tag exactly as encoding/json does (omitempty, omitzero,
// "-", ",string", embedded structs promoted). Inside, values are what
// oslo.serialization writes: a time.Time as to_primitive's
// "%Y-%m-%dT%H:%M:%S.%f" (JSON) or msgpackutils' datetime (msgpack), a
// nil slice or map as None, []byte as bytes. A json.Marshaler is
// honoured: the JSON it writes is read as Python's json.loads reads it and
// that value travels (in either codec); an encoding.TextMarshaler travels
// as a str. Going the other way, Decode fills structs, maps, slices and
// the basic types from what arrived, by the same names.

// FieldError is the error of Decode, CallAs and the typed handlers' argument
// decoding when a value does not fit: its Path names the field
// ("flavor.disk_gb", "hosts[2]").
type FieldError = envelope.FieldError

// Decode stores v, a value as Call returns it or as a Handler receives its
// args, into the Go value dst points to: a dict fills a struct by its
// fields' json names (unknown keys are ignored), a map, or a *Map; a list a
// slice; and so on, as encoding/json's Unmarshal does for the same JSON. A
// value that does not fit is a *FieldError naming the path.
func Decode(v any, dst any) error { return envelope.DecodeValue(v, dst) }

// argsMap is the kwargs dict of a call's args: a *Map as it is, a struct
// or a string-keyed map by its entries, nil for none.
func argsMap(a any) (*Map, error) {
	switch m := a.(type) {
	case nil:
		return nil, nil
	case *Map:
		return m, nil
	}
	m, err := envelope.ToMap(a)
	if err != nil {
		return nil, fmt.Errorf("goslo: args: %w", err)
	}
	return m, nil
}

// CallAs is Call with a typed result: the reply is decoded into a Resp
// (a struct, a map, a slice, a basic type, *Map or any), and a reply that
// does not fit is an error wrapping a *FieldError. args are as for Call.
//
//	hosts, err := goslo.CallAs[[]Host](ctx, client, rctx, "select_destinations", SelectArgs{Spec: spec})
func CallAs[Resp any](ctx context.Context, c *RPCClient, rctx *Map, method string, args any) (Resp, error) {
	var out Resp
	v, err := c.Call(ctx, rctx, method, args)
	if err != nil {
		return out, err
	}
	if err := envelope.DecodeValue(v, &out); err != nil {
		return out, fmt.Errorf("goslo: result of %s: %w", method, err)
	}
	return out, nil
}

// Handle registers fn as method on e, with typed arguments and result.
// The caller's keyword arguments fill a Req as Decode does: Req is
// usually a struct whose fields are the arguments (named by json tags);
// a map[string]any or *Map takes them all. Arguments that do not fit make
// the caller get a TypeError naming the argument, as Python raises for a
// bad call, and fn is not run. fn's result is sent as described above
// (a struct as a dict); its error as for a Handler. The request context
// and the rest of the request are in ctx: see RequestFrom.
//
//	goslo.Handle(ep, "select_destinations", func(ctx context.Context, a SelectArgs) ([]Host, error) { ... })
func Handle[Req, Resp any](e *Endpoint, method string, fn func(ctx context.Context, req Req) (Resp, error)) {
	e.Handle(method, func(ctx context.Context, _ *Map, args *Map) (any, error) {
		var req Req
		if err := decodeArgs(args, &req); err != nil {
			return nil, envelope.NewRemoteError(envelope.ModuleBuiltins, "TypeError", method+"(): "+err.Error())
		}
		return fn(ctx, req)
	})
}

// decodeArgs fills dst from the kwargs; a *Map destination takes them as
// they are.
func decodeArgs(args *Map, dst any) error {
	if p, ok := dst.(**Map); ok {
		*p = args
		if args == nil {
			*p = NewMap()
		}
		return nil
	}
	if args == nil {
		args = NewMap()
	}
	err := envelope.DecodeValue(args, dst)
	var fe *FieldError
	if errors.As(err, &fe) {
		where := "argument " + fe.Path
		if fe.Path == "" {
			where = "arguments"
		}
		msg := fmt.Sprintf("%s: got %s, want Go %s", where, fe.Got, fe.Type)
		if fe.Reason != "" {
			msg += " (" + fe.Reason + ")"
		}
		return errors.New(msg)
	}
	return err
}
