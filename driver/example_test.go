package driver_test

import (
	"context"
	"fmt"
	"time"

	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/envelope"
)

// ExampleNewRequest is the receiving side as a driver author writes it:
// the driver decodes a CALL, builds a Request whose reply function puts
// the answer on its wire, and runs the API's Handler; the handler reads
// the request context and answers through Reply. A CAST's Request has no
// reply function, so its Reply does nothing.
func ExampleNewRequest() {
	// What the driver's reply function sends (here: prints).
	send := func(result any, failure error) error {
		if failure != nil {
			fmt.Println("wire: failure", failure)
			return nil
		}
		fmt.Println("wire: result", envelope.Repr(result))
		return nil
	}
	handler := func(ctx context.Context, r *driver.Request) error {
		rctx, err := driver.ContextDict(r.Context)
		if err != nil {
			return r.Reply(nil, err)
		}
		user, _ := rctx.Get("user")
		fmt.Println(r.Kind, r.MsgID, "from", user)
		return r.Reply(envelope.NewMap("echo", r.Body), nil)
	}

	ctx := context.Background()
	call := driver.NewRequest(driver.KindCall, "6208b235", envelope.NewMap("user", "alice"), "ping",
		time.Now().Add(time.Minute), send)
	fmt.Println("handler:", handler(ctx, call))

	cast := driver.NewRequest(driver.KindCast, "1570f026", nil, "ping", time.Time{}, nil)
	fmt.Println("handler:", handler(ctx, cast))

	bad := driver.NewRequest(driver.KindCall, "510d4a79", []any{"not", "a", "dict"}, "ping", time.Time{}, send)
	fmt.Println("handler:", handler(ctx, bad))
	// Output:
	// call 6208b235 from alice
	// wire: result {"echo": "ping"}
	// handler: <nil>
	// cast 1570f026 from <nil>
	// handler: <nil>
	// wire: failure the request context must be a dict (got []interface {})
	// handler: <nil>
}

// ExampleContextDict reads the request context of a Message or a Request:
// a dict, or nil for none; anything else is an error.
func ExampleContextDict() {
	for _, v := range []any{envelope.NewMap("user", "alice", "roles", []any{"admin"}), nil, "alice"} {
		m, err := driver.ContextDict(v)
		switch {
		case err != nil:
			fmt.Println("error:", err)
		case m == nil:
			fmt.Println("no context")
		default:
			fmt.Println("dict:", m)
		}
	}
	// Output:
	// dict: {"user": "alice", "roles": ["admin"]}
	// no context
	// error: the request context must be a dict (got string)
}

// ExampleWithSentID: a caller that joins two buses (the bridge) asks the
// driver for the id its message gets on the wire; the driver reports it
// with ReportSentID just before sending. Without WithSentID, reporting
// does nothing.
func ExampleWithSentID() {
	// sendCast stands for a driver's Cast.
	sendCast := func(ctx context.Context, id string) {
		driver.ReportSentID(ctx, id)
	}

	var sent string
	ctx := driver.WithSentID(context.Background(), func(id string) { sent = id })
	sendCast(ctx, "1570f0266a05404dbf617759d693d2a3")
	fmt.Println("sent as", sent)

	sendCast(context.Background(), "ignored") // nobody asked
	fmt.Println("sent as", sent)
	// Output:
	// sent as 1570f0266a05404dbf617759d693d2a3
	// sent as 1570f0266a05404dbf617759d693d2a3
}
