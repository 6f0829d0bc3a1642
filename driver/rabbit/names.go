package rabbit

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
)

// DefaultExchange is the AMQP default exchange: replies and call-monitor
// heartbeats are published to it with the reply queue as routing key (§6).
const DefaultExchange = ""

// FanoutRoutingKey is the routing key of a fanout cast (§6).
const FanoutRoutingKey = ""

// ExchangeName is the topic exchange of a target (§5.1): the Target's
// exchange when set, else [DEFAULT] control_exchange.
func ExchangeName(targetExchange, controlExchange string) string {
	if targetExchange != "" {
		return targetExchange
	}
	return controlExchange
}

// TopicQueue is the shared queue (and routing key) of an RPC topic: the
// topic itself. Queue names never contain the exchange (§13.1).
func TopicQueue(topic string) string { return topic }

// ServerQueue is the queue (and routing key) of one server of a topic:
// "<topic>.<server>", with the whole server string (§5.1, §14).
func ServerQueue(topic, server string) string { return topic + "." + server }

// FanoutExchange is the fanout exchange of a topic, "<topic>_fanout"; with
// rabbit_stream_fanout it is also the name of the shared stream (§5.3).
func FanoutExchange(topic string) string { return topic + "_fanout" }

// FanoutQueue is one server's fanout queue, "<topic>_fanout_<unique>",
// where unique is a uuid4 hex (NewUniqueHex) or a queue-manager name
// (QueueManagerName) (§5.1, §5.4).
func FanoutQueue(topic, unique string) string { return FanoutExchange(topic) + "_" + unique }

// ReplyQueue is a client's reply queue, "reply_<unique>" with unique as in
// FanoutQueue (§5.1, §5.4).
func ReplyQueue(unique string) string { return "reply_" + unique }

// QueueManagerName is "<hostname>:<processname>:<n>", the unique part of
// fanout and reply queue names with use_queue_manager (§5.4). goslo does
// not share the Python counter file; a caller picking n must avoid names a
// Python process of the same hostname and processname may take.
func QueueManagerName(hostname, processname string, n int) string {
	return hostname + ":" + processname + ":" + strconv.Itoa(n)
}

// NotificationTopic is the routing key (and the queue) of a notification:
// "<topic>.<priority>" with the priority in lower case (§5.1, §9.2).
func NotificationTopic(topic, priority string) string {
	return topic + "." + strings.ToLower(priority)
}

// NotificationQueue is the queue a listener consumes for (topic, priority):
// the pool name when a pool is given (§13.2), else NotificationTopic.
func NotificationQueue(topic, priority, pool string) string {
	if pool != "" {
		return pool
	}
	return NotificationTopic(topic, priority)
}

// ConsumerTag is the n-th consumer tag of a connection, counted from 1 in
// declaration order: "1", "2", ... (§4).
func ConsumerTag(n int) string { return strconv.Itoa(n) }

// ConnectionName is the connection_name client property,
// "<program>:<pid>:<uuid4>" (§2.2); program is compat.ProgramName(),
// uuid a hyphenated uuid4 (NewUUID4).
func ConnectionName(program string, pid int, uuid string) string {
	return program + ":" + strconv.Itoa(pid) + ":" + uuid
}

// NewUniqueHex returns uuid4().hex: 32 lower-case hex digits, as _msg_id,
// _unique_id and the uuid part of reply and fanout queue names.
func NewUniqueHex() string {
	u := newUUID4()
	return hex.EncodeToString(u[:])
}

// NewUUID4 returns str(uuid4()), hyphenated: a notification message_id and
// the uuid of a connection name.
func NewUUID4() string {
	u := newUUID4()
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func newUUID4() [16]byte {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		panic("rabbit: crypto/rand failed: " + err.Error())
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// Client identification in connection.start-ok (§2.2). Python peers send
// product "py-amqp" and product_version "5.4.2". goslo sends its own
// product name instead: RabbitMQ does not act on these two values (they are
// only shown by rabbitmqctl and the management UI), and an operator looking
// at a mixed deployment must be able to tell a Go peer from a Python one.
// Everything that does change broker behaviour is identical: the three
// capabilities and the connection_name format.
const (
	ClientProduct        = "goslo"
	ClientProductVersion = "0.1.0"
	PyAMQPProduct        = "py-amqp" // what Python peers send, for comparison
	PyAMQPVersion        = "5.4.2"
)

// ClientProperties is the client_properties table of connection.start-ok
// in py-amqp's key order, with goslo's product and version (see
// ClientProduct). Its capabilities are py-amqp's:
// authentication_failure_close, connection.blocked and
// consumer_cancel_notify, all true.
func ClientProperties(connectionName string) Args {
	return Args{
		{"product", ClientProduct},
		{"product_version", ClientProductVersion},
		{"capabilities", Args{
			{"authentication_failure_close", true},
			{"connection.blocked", true},
			{"consumer_cancel_notify", true},
		}},
		{"connection_name", connectionName},
	}
}

// tableValue turns nested Args into nested maps (see Args.Table).
func tableValue(v any) any {
	if a, ok := v.(Args); ok {
		t := a.Table()
		if t == nil {
			return map[string]any{}
		}
		return t
	}
	return v
}
