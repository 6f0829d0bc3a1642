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

// String is the target's repr in oslo: "<Target " and the set fields
// among exchange, topic, namespace, version, server and fanout as
// "name=value", comma-separated, then ">". LegacyNamespaces is not shown.
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

// Use is what a target is used for, which decides the rules Validate
// applies.
type Use int

const (
	// UseCast sends a CAST (RPCClient.cast): a topic is required.
	UseCast Use = iota
	// UseCall sends a CALL (RPCClient.call): no fanout, then a topic.
	UseCall
	// UseNotify sends a notification (Notifier): a topic is required.
	UseNotify
	// UseListen is an RPC server's target: topic and server are required.
	UseListen
	// UseListenNotifications is a notification listener's target: a topic
	// is required.
	UseListenNotifications
)

// Validate applies oslo's checks for a use, in the reference's order and
// with its messages: RPCClient.call refuses fanout ("A call cannot be used
// with fanout"), Transport._send and _send_notification need a topic ("A
// topic is required to send"), Transport._listen a topic and a server ("A
// server's target must have topic and server names specified"), and
// _listen_for_notifications a topic ("A target must have topic
// specified"). The error is an *InvalidTargetError.
func (t Target) Validate(use Use) error {
	switch use {
	case UseCall:
		if t.Fanout {
			return &InvalidTargetError{t, "A call cannot be used with fanout"}
		}
		fallthrough
	case UseCast, UseNotify:
		if t.Topic == "" {
			return &InvalidTargetError{t, "A topic is required to send"}
		}
	case UseListen:
		if t.Topic == "" || t.Server == "" {
			return &InvalidTargetError{t, "A server's target must have topic and server names specified"}
		}
	case UseListenNotifications:
		if t.Topic == "" {
			return &InvalidTargetError{t, "A target must have topic specified"}
		}
	}
	return nil
}

// ValidateSend is Validate(UseCall) when wantReply, else Validate(UseCast).
func (t Target) ValidateSend(wantReply bool) error {
	if wantReply {
		return t.Validate(UseCall)
	}
	return t.Validate(UseCast)
}

// ValidateListen is Validate(UseListen).
func (t Target) ValidateListen() error { return t.Validate(UseListen) }

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
// reference's order (the matchmaker's register): TargetKey when a server
// is set (which is the topic key again for a fanout target), then
// TopicKey.
func RegistrationKeys(listenerType string, t Target) []string {
	if t.Server != "" {
		return []string{TargetKey(listenerType, t), TopicKey(listenerType, t)}
	}
	return []string{TopicKey(listenerType, t)}
}

// NotificationTopic is "<topic>.<priority>" with the priority in lower case,
// the topic a notification of that priority is sent to.
func NotificationTopic(topic, priority string) string {
	return topic + "." + strings.ToLower(priority)
}

// HostPort is the address a direct-mode server advertises:
// "<rpc_zmq_host>:<port>".
func HostPort(host string, port int) string { return host + ":" + strconv.Itoa(port) }

// PublisherRecord is a PUBLISHERS member: "<pub host:port>,<frontend
// host:port>" (the matchmaker's register_publisher joins the pair with ",").
func PublisherRecord(pub, frontend string) string { return pub + "," + frontend }

// ParsePublisherRecord reads a PUBLISHERS member as the reference's
// get_publishers does, tuple(member.split(",")): ok is true only for
// exactly two parts, the pair every caller unpacks (a Python peer fails on
// any other member). Otherwise pub is the part before the first comma and
// frontend the second part, or "" when there is none.
func ParsePublisherRecord(member string) (pub, frontend string, ok bool) {
	parts := strings.Split(member, ",")
	if len(parts) > 1 {
		frontend = parts[1]
	}
	return parts[0], frontend, len(parts) == 2
}
