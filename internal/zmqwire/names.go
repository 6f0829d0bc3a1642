package zmqwire

import (
	"strings"

	"github.com/goslo/goslo/compat"
)

// The names and endpoints of the zmq driver's sockets (zmq_address and
// the socket identities of oslo.messaging 8.1.4's zmq driver); the
// interop suite compares them with the reference's.

// SubscribeFilter is the SUB socket filter and the PUB/SUB routing key of a
// target: the topic itself, never the server. SUB filters are prefixes.
func SubscribeFilter(t compat.Target) []byte { return []byte(t.Topic) }

// ClientIdentity is a proxy-mode client DEALER's identity "<host>/<uuid4>".
func ClientIdentity(host, uuid string) string { return host + "/" + uuid }

// ServerIdentity is a proxy-mode server DEALER's identity
// "<host>/<target_to_key(target)>/<uuid4>"; it is also the member the server
// registers under DEALER/... keys.
func ServerIdentity(host string, t compat.Target, uuid string) string {
	return host + "/" + compat.TargetToKey(t) + "/" + uuid
}

// SubIdentity is a SUB consumer's identity "<host>/<topic>/<uuid4>".
func SubIdentity(host, topic, uuid string) string { return host + "/" + topic + "/" + uuid }

// ProxyIdentity is a proxy socket's identity "<host>/zmq-proxy/<uuid4>".
func ProxyIdentity(host, uuid string) string { return host + "/zmq-proxy/" + uuid }

// TCPAddress is zmq_address.get_tcp_direct_address: "tcp://" + host, the
// endpoint a socket connects to for a "host:port" address.
func TCPAddress(hostPort string) string { return tcpScheme + hostPort }

// tcpScheme is the one "tcp://" of goslo's zmq code: TCPAddress and
// TCPHost are the only functions that build or read it.
const tcpScheme = "tcp://"

// TCPHost is the "host:port" of an endpoint TCPAddress built.
func TCPHost(endpoint string) string { return strings.TrimPrefix(endpoint, tcpScheme) }

// TCPBindAddress is the endpoint a server binds: "tcp://<bind address>:<port>"
// (get_tcp_direct_address(combine_address(bind_address, port))).
func TCPBindAddress(bindAddress string, port int) string {
	return TCPAddress(compat.HostPort(bindAddress, port))
}
