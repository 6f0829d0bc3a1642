package compat

import (
	"strconv"
	"strings"
)

// Target is oslo_messaging.Target: where a message goes, or what a server
// listens on. Exchange is kept for bridges; the zmq driver ignores it.
// Namespace and Version only travel inside the message dict.
type Target struct {
	Exchange         string
	Topic            string
	Namespace        string
	Version          string
	Server           string
	Fanout           bool
	LegacyNamespaces []string
}

// String renders the target like oslo's repr, with only the set fields.
func (t Target) String() string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("exchange", t.Exchange)
	add("topic", t.Topic)
	add("namespace", t.Namespace)
	add("version", t.Version)
	add("server", t.Server)
	if t.Fanout {
		parts = append(parts, "fanout=True")
	}
	return "<Target " + strings.Join(parts, ", ") + ">"
}

// ValidateSend checks a target for sending: a topic is required, and a CALL
// (wantReply) cannot fan out (oslo's InvalidTarget).
func (t Target) ValidateSend(wantReply bool) error {
	if t.Topic == "" {
		return &InvalidTargetError{t, "a target needs a topic to send to"}
	}
	if wantReply && t.Fanout {
		return &InvalidTargetError{t, "a call cannot be fanned out"}
	}
	return nil
}

// ValidateListen checks a target an RPC server listens on: topic and server
// are both required.
func (t Target) ValidateListen() error {
	if t.Topic == "" || t.Server == "" {
		return &InvalidTargetError{t, "a server target needs a topic and a server"}
	}
	return nil
}

// Listener types: the prefix of matchmaker keys for direct-mode (ROUTER)
// and proxy-mode (DEALER) servers.
const (
	Router = "ROUTER"
	Dealer = "DEALER"
)

// Matchmaker keys of the proxy records.
const (
	PublishersKey = "PUBLISHERS"
	RoutersKey    = "ROUTERS"
	// LivenessMember is the single member of a liveness key: one space.
	LivenessMember = " "
)

// ServerName cuts a server name at its first '@' (Cinder's backend suffix,
// bug 1630975), as every zmq key does.
func ServerName(server string) string {
	if i := strings.IndexByte(server, '@'); i >= 0 {
		return server[:i]
	}
	return server
}

// TargetToKey is zmq_address.target_to_key: the topic, plus "/" and the cut
// server name when a server is set and the target does not fan out.
func TargetToKey(t Target) string {
	if t.Server != "" && !t.Fanout {
		return t.Topic + "/" + ServerName(t.Server)
	}
	return t.Topic
}

// PrefixedKey is zmq_address.prefix_str: listenerType + "/" + key, e.g.
// "ROUTER/compute/node-1".
func PrefixedKey(listenerType, key string) string { return listenerType + "/" + key }

// TopicKey is the key of every server of a topic, L/topic.
func TopicKey(listenerType string, t Target) string { return PrefixedKey(listenerType, t.Topic) }

// TargetKey is the key a lookup for t reads, L/target_to_key(t).
func TargetKey(listenerType string, t Target) string {
	return PrefixedKey(listenerType, TargetToKey(t))
}

// RegistrationKeys lists the keys a server registers under, in the
// reference's order: L/topic/server (when a server is set), then L/topic.
func RegistrationKeys(listenerType string, t Target) []string {
	if t.Server != "" {
		return []string{PrefixedKey(listenerType, t.Topic+"/"+ServerName(t.Server)), TopicKey(listenerType, t)}
	}
	return []string{TopicKey(listenerType, t)}
}

// SubscribeFilter is the SUB socket filter and the PUB/SUB routing key of a
// target: the topic itself, never the server. SUB filters are prefixes.
func SubscribeFilter(t Target) []byte { return []byte(t.Topic) }

// NotificationTopic is "<topic>.<priority>" with the priority in lower case,
// the topic a notification of that priority is sent to.
func NotificationTopic(topic, priority string) string {
	return topic + "." + strings.ToLower(priority)
}

// HostPort is the address a direct-mode server advertises:
// "<rpc_zmq_host>:<port>".
func HostPort(host string, port int) string { return host + ":" + strconv.Itoa(port) }

// ClientIdentity is a proxy-mode client DEALER's identity "<host>/<uuid4>".
func ClientIdentity(host, uuid string) string { return host + "/" + uuid }

// ServerIdentity is a proxy-mode server DEALER's identity
// "<host>/<target_to_key(target)>/<uuid4>"; it is also the member the server
// registers under DEALER/... keys.
func ServerIdentity(host string, t Target, uuid string) string {
	return host + "/" + TargetToKey(t) + "/" + uuid
}

// SubIdentity is a SUB consumer's identity "<host>/<topic>/<uuid4>".
func SubIdentity(host, topic, uuid string) string { return host + "/" + topic + "/" + uuid }

// ProxyIdentity is a proxy socket's identity "<host>/zmq-proxy/<uuid4>".
func ProxyIdentity(host, uuid string) string { return host + "/zmq-proxy/" + uuid }

// PublisherRecord is a PUBLISHERS member: "<pub host:port>,<frontend host:port>".
func PublisherRecord(pub, frontend string) string { return pub + "," + frontend }

// ParsePublisherRecord splits a PUBLISHERS member at its first comma, as the
// reference's get_publishers does (the frontend is empty when the member
// holds no comma).
func ParsePublisherRecord(member string) (pub, frontend string, ok bool) {
	pub, frontend, ok = strings.Cut(member, ",")
	return pub, frontend, ok
}
