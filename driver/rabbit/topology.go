package rabbit

import (
	"strconv"

	"github.com/goslo/goslo/compat"
)

// Exchange kinds.
const (
	KindTopic  = "topic"
	KindFanout = "fanout"
)

// ExchangeDecl is an exchange.declare (passive, internal and no_wait
// false, arguments {}).
type ExchangeDecl struct {
	Name       string
	Kind       string
	Durable    bool
	AutoDelete bool
}

// QueueDecl is a queue.declare (passive, exclusive and no_wait false).
type QueueDecl struct {
	Name       string
	Durable    bool
	AutoDelete bool
	Args       Args
}

// Binding is a queue.bind (no_wait false, arguments {}).
type Binding struct {
	Queue      string
	Exchange   string
	RoutingKey string
}

// Consume is a basic.consume (no_local, no_ack, exclusive, no_wait false:
// acknowledgements are manual).
type Consume struct {
	Queue string
	Tag   string
	Args  Args
}

// QoS is a basic.qos(prefetch_size 0, PrefetchCount, global false).
type QoS struct {
	PrefetchCount int
}

// Command is one AMQP method of a setup sequence: exactly one field is set.
type Command struct {
	QoS      *QoS
	Exchange *ExchangeDecl
	Queue    *QueueDecl
	Bind     *Binding
	Consume  *Consume
}

// Method is the AMQP method name: "basic.qos", "exchange.declare",
// "queue.declare", "queue.bind" or "basic.consume".
func (c Command) Method() string {
	switch {
	case c.QoS != nil:
		return "basic.qos"
	case c.Exchange != nil:
		return "exchange.declare"
	case c.Queue != nil:
		return "queue.declare"
	case c.Bind != nil:
		return "queue.bind"
	case c.Consume != nil:
		return "basic.consume"
	}
	return ""
}

// Consumer is what one Python Consumer object declares, in this order:
// its exchange (none for a reply queue, which uses the default exchange),
// its queue, its binding (none for a reply queue).
type Consumer struct {
	Exchange *ExchangeDecl
	Queue    QueueDecl
	Bind     *Binding
	// ConsumeArgs are the arguments of its basic.consume.
	ConsumeArgs Args
}

// ListenPlan is the setup of one listening connection (channel 1): an
// optional basic.qos, each consumer's declarations in order, then one
// basic.consume per consumer with tags "1", "2", ... (§4, §5.1). After a
// reconnection the same plan is replayed with the same tags (§11.3).
type ListenPlan struct {
	QoS       *QoS
	Consumers []Consumer
}

// Commands is the plan in wire order.
func (p ListenPlan) Commands() []Command {
	var out []Command
	if p.QoS != nil {
		q := *p.QoS
		out = append(out, Command{QoS: &q})
	}
	for i := range p.Consumers {
		c := p.Consumers[i]
		if c.Exchange != nil {
			out = append(out, Command{Exchange: c.Exchange})
		}
		out = append(out, Command{Queue: &c.Queue})
		if c.Bind != nil {
			out = append(out, Command{Bind: c.Bind})
		}
	}
	for i, c := range p.Consumers {
		out = append(out, Command{Consume: &Consume{Queue: c.Queue.Name, Tag: ConsumerTag(i + 1), Args: c.ConsumeArgs}})
	}
	return out
}

// Topology computes declarations from the options of rabbit-wire.md §3 and
// §5. Its zero value is not useful: use NewTopology.
type Topology struct {
	opts            compat.RabbitOptions
	controlExchange string
}

// NewTopology reads the options that shape the topology from c
// ([oslo_messaging_rabbit] and [DEFAULT] control_exchange). c should have
// passed ValidateRabbit.
func NewTopology(c *compat.Config) Topology {
	return Topology{opts: c.Rabbit, controlExchange: c.Default.ControlExchange}
}

// ControlExchange is [DEFAULT] control_exchange.
func (t Topology) ControlExchange() string { return t.controlExchange }

// Exchange is ExchangeName with this topology's control_exchange.
func (t Topology) Exchange(targetExchange string) string {
	return ExchangeName(targetExchange, t.controlExchange)
}

// topicDurable is the durable flag of topic exchanges and of topic,
// server, notification and pool queues: amqp_durable_queues, forced by
// rabbit_quorum_queue.
func (t Topology) topicDurable() bool { return t.opts.AMQPDurableQueues || t.opts.RabbitQuorumQueue }

// transientDurable is the durable flag of fanout exchanges and of fanout
// and reply queues: rabbit_transient_quorum_queue (stream fanout needs it).
func (t Topology) transientDurable() bool {
	return t.opts.RabbitTransientQuorumQueue || t.opts.RabbitStreamFanout
}

// TopicExchange is the topic exchange name, as every RPC consumer and
// publisher and the notifier declare it.
func (t Topology) TopicExchange(name string) ExchangeDecl {
	return ExchangeDecl{Name: name, Kind: KindTopic, Durable: t.topicDurable(), AutoDelete: t.opts.AMQPAutoDelete}
}

// FanoutExchangeDecl is the fanout exchange of topic: always auto-delete,
// durable with transient quorum queues.
func (t Topology) FanoutExchangeDecl(topic string) ExchangeDecl {
	return ExchangeDecl{Name: FanoutExchange(topic), Kind: KindFanout, Durable: t.transientDurable(), AutoDelete: true}
}

// TopicQueueArgs are the arguments of topic, server, notification and pool
// queues, in Python's order: x-ha-policy or x-queue-type quorum, then the
// quorum limits (each only when > 0).
func (t Topology) TopicQueueArgs() Args {
	var a Args
	if t.opts.RabbitHAQueues {
		a = append(a, Arg{"x-ha-policy", "all"})
	}
	if t.opts.RabbitQuorumQueue {
		a = append(a, Arg{"x-queue-type", "quorum"})
		if n := t.opts.RabbitQuorumDeliveryLimit; n > 0 {
			a = append(a, Arg{"x-delivery-limit", pyInt(int64(n))})
		}
		if n := t.opts.RabbitQuorumMaxMemoryLength; n > 0 {
			a = append(a, Arg{"x-max-in-memory-length", pyInt(int64(n))})
		}
		if n := t.opts.RabbitQuorumMaxMemoryBytes; n > 0 {
			a = append(a, Arg{"x-max-in-memory-bytes", pyInt(int64(n))})
		}
	}
	return a
}

// TransientQueueArgs are the arguments of per-server fanout queues and of
// reply queues: x-ha-policy, or x-queue-type quorum with
// rabbit_transient_quorum_queue, then x-expires (ttl·1000, 'I') unless
// rabbit_transient_queues_ttl is 0.
func (t Topology) TransientQueueArgs() Args {
	var a Args
	if t.opts.RabbitHAQueues {
		a = append(a, Arg{"x-ha-policy", "all"})
	}
	if t.opts.RabbitTransientQuorumQueue {
		a = append(a, Arg{"x-queue-type", "quorum"})
	}
	if ttl := t.opts.RabbitTransientQueuesTTL; ttl > 0 {
		a = append(a, Arg{"x-expires", pyInt(int64(ttl) * 1000)})
	}
	return a
}

// StreamQueueArgs are the arguments of the shared fanout stream (§5.3):
// x-queue-type stream, then x-max-age "<ttl>s" unless the ttl is 0.
func (t Topology) StreamQueueArgs() Args {
	a := Args{{"x-queue-type", "stream"}}
	if ttl := t.opts.RabbitTransientQueuesTTL; ttl > 0 {
		a = append(a, Arg{"x-max-age", strconv.Itoa(ttl) + "s"})
	}
	return a
}

// TopicQueueDecl declares a topic, server, notification or pool queue.
func (t Topology) TopicQueueDecl(name string) QueueDecl {
	return QueueDecl{Name: name, Durable: t.topicDurable(), AutoDelete: t.opts.AMQPAutoDelete, Args: t.TopicQueueArgs()}
}

// TransientQueueDecl declares a per-server fanout queue or a reply queue:
// never auto-delete (they expire through x-expires, §5.1).
func (t Topology) TransientQueueDecl(name string) QueueDecl {
	return QueueDecl{Name: name, Durable: t.transientDurable(), Args: t.TransientQueueArgs()}
}

// FanoutQueueName is the fanout queue a server of topic consumes: the
// shared stream FanoutExchange(topic) with rabbit_stream_fanout, else
// FanoutQueue(topic, unique).
func (t Topology) FanoutQueueName(topic, unique string) string {
	if t.opts.RabbitStreamFanout {
		return FanoutExchange(topic)
	}
	return FanoutQueue(topic, unique)
}

// FanoutQueueDecl declares the queue named FanoutQueueName(topic, unique).
func (t Topology) FanoutQueueDecl(topic, unique string) QueueDecl {
	if t.opts.RabbitStreamFanout {
		return QueueDecl{Name: FanoutExchange(topic), Durable: true, Args: t.StreamQueueArgs()}
	}
	return t.TransientQueueDecl(FanoutQueue(topic, unique))
}

// consumeArgs are the basic.consume arguments: x-cancel-on-ha-failover
// with enable_cancel_on_failover; x-stream-offset "last" for the stream.
func (t Topology) consumeArgs(stream bool) Args {
	var a Args
	if t.opts.EnableCancelOnFailover {
		a = append(a, Arg{"x-cancel-on-ha-failover", true})
	}
	if stream {
		a = append(a, Arg{"x-stream-offset", "last"})
	}
	return a
}

func (t Topology) qos() *QoS {
	if n := t.opts.RabbitQoSPrefetchCount; n > 0 {
		return &QoS{PrefetchCount: n}
	}
	return nil
}

func (t Topology) topicConsumer(exchange, queue, key string) Consumer {
	ex := t.TopicExchange(exchange)
	return Consumer{Exchange: &ex, Queue: t.TopicQueueDecl(queue),
		Bind: &Binding{Queue: queue, Exchange: exchange, RoutingKey: key}, ConsumeArgs: t.consumeArgs(false)}
}

// RPCServer is the listening connection of one RPC server (§5.1): topic
// queue (tag "1"), server queue (tag "2"), fanout queue (tag "3", bound to
// the fanout exchange with the topic as key). targetExchange "" means
// control_exchange; fanoutUnique is the uuid4 hex or queue-manager name of
// the fanout queue (unused with stream fanout).
func (t Topology) RPCServer(targetExchange, topic, server, fanoutUnique string) ListenPlan {
	ex := t.Exchange(targetExchange)
	fx := t.FanoutExchangeDecl(topic)
	fq := t.FanoutQueueDecl(topic, fanoutUnique)
	return ListenPlan{QoS: t.qos(), Consumers: []Consumer{
		t.topicConsumer(ex, TopicQueue(topic), TopicQueue(topic)),
		t.topicConsumer(ex, ServerQueue(topic, server), ServerQueue(topic, server)),
		{Exchange: &fx, Queue: fq, Bind: &Binding{Queue: fq.Name, Exchange: fx.Name, RoutingKey: topic},
			ConsumeArgs: t.consumeArgs(t.opts.RabbitStreamFanout)},
	}}
}

// ShutdownDeletes are the queues an RPC server's listening connection
// deletes when it closes (queue.delete, if_unused and if_empty false;
// §8.6): its fanout queue, unless stream fanout or the queue manager is on.
func (t Topology) ShutdownDeletes(p ListenPlan) []string {
	if t.opts.RabbitStreamFanout || t.opts.UseQueueManager || len(p.Consumers) != 3 {
		return nil
	}
	return []string{p.Consumers[2].Queue.Name}
}

// ReplyListener is an RPC client's listening connection: its reply queue
// only, no exchange and no binding (the default exchange routes by queue
// name), tag "1".
func (t Topology) ReplyListener(replyQueue string) ListenPlan {
	return ListenPlan{QoS: t.qos(), Consumers: []Consumer{{Queue: t.TransientQueueDecl(replyQueue), ConsumeArgs: t.consumeArgs(false)}}}
}

// Subscription is one (target, priority) a notification listener serves.
type Subscription struct {
	Exchange string // Target.exchange; "" = control_exchange
	Topic    string
	Priority string // any case; sent lower case
}

// NotificationListener is a listener's connection: one consumer per
// subscription, in the order given (Python's follows the order of a set of
// priorities, so it varies between runs), each bound with
// "<topic>.<priority>" to the pool queue when pool is set, else to the
// queue of that name (§10.1, §13.2).
func (t Topology) NotificationListener(subs []Subscription, pool string) ListenPlan {
	p := ListenPlan{QoS: t.qos()}
	for _, s := range subs {
		key := NotificationTopic(s.Topic, s.Priority)
		p.Consumers = append(p.Consumers, t.topicConsumer(t.Exchange(s.Exchange), NotificationQueue(s.Topic, s.Priority, pool), key))
	}
	return p
}

// Publication is where one message goes and what its sender declares
// first on its channel (§5.1, §6). Declarations are cached per channel;
// the caches are cleared when the channel is replaced.
type Publication struct {
	Exchange   string
	RoutingKey string
	Mandatory  bool
	// Prepare is sent before the first publish to each (Exchange,
	// RoutingKey) on a channel: the notifier's exchange, queue and binding
	// (§9.2). Nil for RPC.
	Prepare []Command
	// ExchangeDecl is declared before the first publish to Exchange on a
	// channel (after Prepare when both are due); nil for the default
	// exchange, which is never declared.
	ExchangeDecl *ExchangeDecl
}

// Cast is a CALL or CAST to a topic (server "") or to one server on the
// topic exchange. atLeastOnce is TransportOptions(at_least_once=True),
// which sets mandatory.
func (t Topology) Cast(targetExchange, topic, server string, atLeastOnce bool) Publication {
	ex := t.TopicExchange(t.Exchange(targetExchange))
	key := TopicQueue(topic)
	if server != "" {
		key = ServerQueue(topic, server)
	}
	return Publication{Exchange: ex.Name, RoutingKey: key, Mandatory: atLeastOnce, ExchangeDecl: &ex}
}

// FanoutCast publishes to "<topic>_fanout" with routing key "" (the
// target's exchange is ignored).
func (t Topology) FanoutCast(topic string) Publication {
	ex := t.FanoutExchangeDecl(topic)
	return Publication{Exchange: ex.Name, RoutingKey: FanoutRoutingKey, ExchangeDecl: &ex}
}

// Reply publishes a reply or heartbeat to the default exchange, never
// declared, mandatory per direct_mandatory_flag (§8.3).
func (t Topology) Reply(replyQueue string) Publication {
	return Publication{Exchange: DefaultExchange, RoutingKey: replyQueue, Mandatory: t.opts.DirectMandatoryFlag}
}

// Notify is a notification to "<topic>.<priority>" on the notifier's
// exchange: before the first one of each routing key per channel the
// notifier declares the exchange, the queue "<topic>.<priority>" and its
// binding; its publish path then declares the exchange once per channel
// (captured in every frames file).
func (t Topology) Notify(targetExchange, topic, priority string) Publication {
	ex := t.TopicExchange(t.Exchange(targetExchange))
	key := NotificationTopic(topic, priority)
	q := t.TopicQueueDecl(key)
	return Publication{Exchange: ex.Name, RoutingKey: key, ExchangeDecl: &ex, Prepare: []Command{
		{Exchange: &ex}, {Queue: &q}, {Bind: &Binding{Queue: key, Exchange: ex.Name, RoutingKey: key}},
	}}
}

// PublishCache is a channel's record of what it has declared for
// publishing. Its zero value is an empty cache; replace it with a new one
// when the channel is replaced.
type PublishCache struct {
	exchanges map[string]bool
	prepared  map[[2]string]bool
}

// Due returns the commands to send before publishing p on the channel,
// and records them as sent.
func (c *PublishCache) Due(p Publication) []Command {
	if c.exchanges == nil {
		c.exchanges, c.prepared = map[string]bool{}, map[[2]string]bool{}
	}
	var out []Command
	if k := [2]string{p.Exchange, p.RoutingKey}; p.Prepare != nil && !c.prepared[k] {
		c.prepared[k] = true
		out = append(out, p.Prepare...)
	}
	if p.ExchangeDecl != nil && !c.exchanges[p.Exchange] {
		c.exchanges[p.Exchange] = true
		out = append(out, Command{Exchange: p.ExchangeDecl})
	}
	return out
}
