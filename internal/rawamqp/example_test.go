package rawamqp_test

import (
	"encoding/json"
	"fmt"

	"github.com/goslo/goslo/internal/rawamqp"
)

// ExampleAMQPURL turns the oslo transport URLs that goslo bench takes into
// the amqp:// URLs amqp091-go dials (the broker itself is needed only by
// Dial and StartServer): the first host only, the query dropped, and
// oslo's vhost rules.
func ExampleAMQPURL() {
	for _, raw := range []string{
		"rabbit://guest:guest@127.0.0.1:5672/",
		"rabbit://nova:secret@10.0.0.1:5672,10.0.0.2:5672/nova?rabbit_qos_prefetch_count=10",
		"kombu://guest:guest@localhost/%2Fnova",
		"zmq+redis://127.0.0.1:6379",
	} {
		if !rawamqp.IsRabbitURL(raw) {
			fmt.Println("not rabbit:", raw)
			continue
		}
		u, err := rawamqp.AMQPURL(raw)
		fmt.Println(u, err)
	}
	// Output:
	// amqp://guest:guest@127.0.0.1:5672/ <nil>
	// amqp://nova:secret@10.0.0.1:5672/nova <nil>
	// amqp://guest:guest@localhost/%2Fnova <nil>
	// not rabbit: zmq+redis://127.0.0.1:6379
}

// ExampleEscapedArgs: the echo's args sit inside the envelope's
// oslo.message string, so they are written escaped; unescaped once, they
// are the JSON object {"data": ...}.
func ExampleEscapedArgs() {
	esc := rawamqp.EscapedArgs("xxxx")
	fmt.Println(esc)
	var inner string
	if err := json.Unmarshal([]byte(`"`+esc+`"`), &inner); err != nil {
		panic(err)
	}
	var args map[string]string
	err := json.Unmarshal([]byte(inner), &args)
	fmt.Println(args, err)
	// Output:
	// {\"data\": \"xxxx\"}
	// map[data:xxxx] <nil>
}
