package compat_test

import (
	"fmt"

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

func ExampleVersionIsCompatible() {
	ok, _ := compat.VersionIsCompatible("1.3", "1.1")
	fmt.Println(ok)
	ok, _ = compat.VersionIsCompatible("1.3", "1.4")
	fmt.Println(ok)
	// Output:
	// true
	// false
}

func ExampleParseTransportURL() {
	u, err := compat.ParseTransportURL("zmq+redis://:secret@10.0.0.2:6379,10.0.0.3:6379/?rpc_zmq_serialization=msgpack")
	if err != nil {
		panic(err)
	}
	fmt.Println(u.Driver(), u.Backend(), len(u.Hosts), u.Hosts[0].Password)
	c := compat.DefaultConfig("node-1")
	if err := c.ApplyURLQuery(u); err != nil {
		panic(err)
	}
	fmt.Println(c.ZMQ.RPCZMQSerialization)
	// Output:
	// zmq redis 2 secret
	// msgpack
}

func ExampleParseConfig() {
	ini := []byte("[DEFAULT]\ntransport_url = zmq+redis://127.0.0.1:6379\n\n[oslo_messaging_zmq]\nrpc_zmq_host = compute-7\nuse_router_proxy = true\n")
	c, err := compat.ParseConfig("fallback-host", compat.ConfigFile{Name: "nova.conf", Data: ini})
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Default.TransportURL, c.ZMQ.RPCZMQHost, c.ZMQ.UseRouterProxy, c.ZMQ.ZMQTargetExpire)
	// Output: zmq+redis://127.0.0.1:6379 compute-7 true 300
}
