package rabbit_test

import (
	"fmt"
	"time"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver/rabbit"
	"github.com/goslo/goslo/envelope"
)

func ExampleTopology_RPCServer() {
	c := compat.DefaultConfig("host-1")
	top := rabbit.NewTopology(c)
	for _, cmd := range top.RPCServer("", "compute", "node-1", "0123456789abcdef0123456789abcdef").Commands() {
		switch {
		case cmd.Exchange != nil:
			fmt.Println(cmd.Method(), cmd.Exchange.Name, cmd.Exchange.Kind)
		case cmd.Queue != nil:
			fmt.Println(cmd.Method(), cmd.Queue.Name, cmd.Queue.Args.Table())
		case cmd.Bind != nil:
			fmt.Println(cmd.Method(), cmd.Bind.Queue, "<-", cmd.Bind.Exchange, cmd.Bind.RoutingKey)
		case cmd.Consume != nil:
			fmt.Println(cmd.Method(), cmd.Consume.Queue, "tag", cmd.Consume.Tag)
		}
	}
	// Output:
	// exchange.declare openstack topic
	// queue.declare compute map[]
	// queue.bind compute <- openstack compute
	// exchange.declare openstack topic
	// queue.declare compute.node-1 map[]
	// queue.bind compute.node-1 <- openstack compute.node-1
	// exchange.declare compute_fanout fanout
	// queue.declare compute_fanout_0123456789abcdef0123456789abcdef map[x-expires:1800000]
	// queue.bind compute_fanout_0123456789abcdef0123456789abcdef <- compute_fanout compute
	// basic.consume compute tag 1
	// basic.consume compute.node-1 tag 2
	// basic.consume compute_fanout_0123456789abcdef0123456789abcdef tag 3
}

func ExampleEncodeRequest() {
	req := rabbit.Request{
		Message:  envelope.Request{Method: "ping", Args: envelope.NewMap("x", 1), Version: "1.0"}.Map(),
		Context:  envelope.NewMap("user", "alice"),
		MsgID:    "6208b235581143d48f0777eece4c3067",
		ReplyQ:   rabbit.ReplyQueue("510d4a79e65b4750a02b5f9289aaea4e"),
		UniqueID: "1570f0266a05404dbf617759d693d2a3",
	}
	body, _ := rabbit.EncodeRequest(req)
	fmt.Println(string(body))
	p := rabbit.PublishProperties("", 10*time.Second)
	fmt.Println(p.ContentType, p.DeliveryMode, p.Expiration)

	back, _ := rabbit.DecodeRequest(body, p)
	fmt.Println(back.Context, back.IsCall())
	// Output:
	// {"oslo.version": "2.0", "oslo.message": "{\"method\": \"ping\", \"args\": {\"x\": 1}, \"version\": \"1.0\", \"_msg_id\": \"6208b235581143d48f0777eece4c3067\", \"_reply_q\": \"reply_510d4a79e65b4750a02b5f9289aaea4e\", \"_timeout\": null, \"_unique_id\": \"1570f0266a05404dbf617759d693d2a3\", \"_context_user\": \"alice\"}"}
	// application/json 2 10000
	// {"user": "alice"} true
}
