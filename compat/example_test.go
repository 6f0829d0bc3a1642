package compat_test

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/goslo/goslo/compat"
)

func ExampleTargetKey() {
	t := compat.Target{Topic: "compute", Server: "node-1@lvm"}
	fmt.Println(compat.TargetKey(compat.Router, t))
	fmt.Println(compat.RegistrationKeys(compat.Dealer, t))
	// Output:
	// ROUTER/compute/node-1
	// [DEALER/compute/node-1 DEALER/compute]
}

func ExampleTarget_Validate() {
	t := compat.Target{Topic: "compute", Fanout: true}
	fmt.Println(t.Validate(compat.UseCast))
	err := t.Validate(compat.UseCall)
	var te *compat.InvalidTargetError
	fmt.Println(errors.As(err, &te), te.PythonClass()+": "+te.PythonMessage())
	// Output:
	// <nil>
	// true InvalidTarget: A call cannot be used with fanout:<Target topic=compute, fanout=True>
}

func ExampleParsePublisherRecord() {
	rec := compat.PublisherRecord("10.0.0.9:50003", "10.0.0.9:50001")
	pub, frontend, ok := compat.ParsePublisherRecord(rec)
	fmt.Println(rec, pub, frontend, ok)
	// Output: 10.0.0.9:50003,10.0.0.9:50001 10.0.0.9:50003 10.0.0.9:50001 true
}

func ExampleVersionIsCompatible() {
	ok, _ := compat.VersionIsCompatible("1.3", "1.1")
	fmt.Println(ok)
	ok, _ = compat.VersionIsCompatible("1.3", "1.4")
	fmt.Println(ok)
	_, err := compat.VersionIsCompatible("1.3", "1")
	var ve *compat.VersionError
	fmt.Println(errors.As(err, &ve), ve.PythonClass(), ve.Reason)
	// Output:
	// true
	// false
	// true IndexError list index out of range
}

func ExampleParseTransportURL() {
	u, err := compat.ParseTransportURL("zmq+redis://:secret@10.0.0.2:6379,10.0.0.3:6379/?rpc_zmq_serialization=msgpack")
	if err != nil {
		panic(err)
	}
	fmt.Println(u.Transport, u.Driver(), u.Backend(), len(u.Hosts), u.Hosts[0].Password, u.Hosts[1].HasPassword)
	fmt.Println(u)

	// As in oslo, "localhost" is read as the scheme here.
	u, _ = compat.ParseTransportURL("localhost:6379")
	fmt.Println(u.Transport, len(u.Hosts))

	_, err = compat.ParseTransportURL("//localhost:6379")
	var ue *compat.URLError
	fmt.Println(errors.As(err, &ue), ue.PythonClass(), ue.Reason)
	// Output:
	// zmq+redis zmq redis 2 secret false
	// zmq+redis://:secret@10.0.0.2:6379,10.0.0.3:6379/?rpc_zmq_serialization=msgpack
	// localhost 0
	// true InvalidTransportURL No scheme specified
}

func ExampleTransportURL_String() {
	u := &compat.TransportURL{Transport: "zmq+sentinel", VirtualHost: "my group", HasVirtualHost: true,
		Hosts: []compat.TransportHost{{Hostname: "::1", HasHostname: true, Port: 26379, HasPort: true, Password: "p@ss", HasPassword: true}}}
	fmt.Println(u)
	// Output: zmq+sentinel://:p%40ss@[::1]:26379/my%20group
}

func ExampleParseConfig() {
	ini := []byte(`[DEFAULT]
transport_url = zmq+redis://127.0.0.1:6379
# a deprecated spelling, still read
rpc_zmq_serialization = msgpack

[oslo_messaging_zmq]
rpc_zmq_host = compute-7
use_router_proxy = true
rpc_zmq_ipc_dir = /run/$rpc_zmq_host
`)
	c, err := compat.ParseConfig("fallback-host", compat.ConfigFile{Name: "nova.conf", Data: ini})
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Default.TransportURL, c.ZMQ.RPCZMQHost, c.ZMQ.UseRouterProxy, c.ZMQ.ZMQTargetExpire)
	fmt.Println(c.ZMQ.RPCZMQSerialization, c.ZMQ.RPCZMQIPCDir)
	// Output:
	// zmq+redis://127.0.0.1:6379 compute-7 true 300
	// msgpack /run/compute-7
}

func ExampleLoadConfig() {
	_, err := compat.LoadConfig("h", strings.NewReader("[oslo_messaging_zmq]\nuse_pub_sub = maybe\n"))
	var ce *compat.ConfigError
	if errors.As(err, &ce) {
		fmt.Println(ce.Section, ce.Option, ce.Value, ce.PythonClass())
		fmt.Println(err)
	}
	// Output:
	// oslo_messaging_zmq use_pub_sub maybe ConfigFileValueError
	// compat: config <config>: [oslo_messaging_zmq] use_pub_sub = "maybe": Unexpected boolean value 'maybe'
}

func ExampleLoadConfigFiles() {
	// compat does no I/O itself: the caller passes os.ReadFile.
	_, err := compat.LoadConfigFiles("h", os.ReadFile, "/nonexistent/nova.conf")
	fmt.Println(err.(*compat.ConfigError).Message)
	// Output: Failed to find some config files: /nonexistent/nova.conf
}

func ExampleConfig_ApplyURLQuery() {
	c := compat.DefaultConfig("node-1")
	u, _ := compat.ParseTransportURL("zmq+redis://127.0.0.1:6379/?use_pub_sub=true&subscribe_on=10.0.0.9:50003")
	if err := c.ApplyURLQuery(u); err != nil {
		panic(err)
	}
	fmt.Println(c.ZMQ.UsePubSub, c.ZMQ.SubscribeOn)

	u, _ = compat.ParseTransportURL("zmq://?rpc_zmq_hots=x")
	fmt.Println(c.ApplyURLQuery(u))
	// Output:
	// true [10.0.0.9:50003]
	// compat: config: [oslo_messaging_zmq] rpc_zmq_hots = "x": no such option rpc_zmq_hots in group [oslo_messaging_zmq]
}

func ExampleParseRabbitURL() {
	u, err := compat.ParseRabbitURL("rabbit://nova:s%40cret@10.0.0.2:5673,monitor@[fd00::3]/%2Fnova")
	if err != nil {
		panic(err)
	}
	for _, h := range u.Hosts {
		fmt.Println(h.Username, h.Password, h.Addr())
	}
	fmt.Printf("%q\n", u.VirtualHost)
	// Output:
	// nova s@cret 10.0.0.2:5673
	// monitor guest [fd00::3]:5672
	// "/nova"
}

func ExampleConfig_ApplyRabbitURLQuery() {
	c := compat.DefaultConfig("host-1")
	u, _ := compat.ParseTransportURL("rabbit://h/?amqp_durable_queues=true")
	fmt.Println(c.ApplyRabbitURLQuery(u), c.Rabbit.AMQPDurableQueues, c.ValidateRabbit())
	u, _ = compat.ParseTransportURL("rabbit://h/?durable=true")
	fmt.Println(c.ApplyRabbitURLQuery(u))
	// Output:
	// <nil> true <nil>
	// compat: config: [oslo_messaging_rabbit] durable = "true": no such option durable in group [oslo_messaging_rabbit]
}
