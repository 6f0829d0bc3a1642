package zmqwire

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
)

func TestNames(t *testing.T) {
	srv := compat.Target{Topic: "compute", Server: "node-1@lvm"}
	fan := compat.Target{Topic: "compute", Server: "node-1@lvm", Fanout: true}

	require.Equal(t, []byte("compute"), SubscribeFilter(srv))
	require.Equal(t, "tcp://10.0.0.5:49200", TCPAddress(compat.HostPort("10.0.0.5", 49200)))
	require.Equal(t, "tcp://*:49153", TCPBindAddress("*", 49153))
	require.Equal(t, "h/6f1d", ClientIdentity("h", "6f1d"))
	require.Equal(t, "h/compute/node-1/6f1d", ServerIdentity("h", srv, "6f1d"))
	require.Equal(t, "h/compute/6f1d", ServerIdentity("h", fan, "6f1d"))
	require.Equal(t, "h/compute/6f1d", SubIdentity("h", "compute", "6f1d"))
	require.Equal(t, "h/zmq-proxy/6f1d", ProxyIdentity("h", "6f1d"))
	require.Equal(t, "10.0.0.5:49200", TCPHost(TCPAddress("10.0.0.5:49200")))
}
