// Package rawamqp is the RabbitMQ baseline of goslo's benchmarks: a bare
// github.com/rabbitmq/amqp091-go echo with the topology, properties, acks
// and publisher confirms of oslo.messaging 18.3.1's rabbit driver
// (shared/spec/rabbit-wire.md §4–§9, §11), and nothing else: no codec (the
// bodies are fixed oslo-like envelopes built and searched as bytes), no
// dispatcher, no reconnection.
//
// Server, like an RPC server for <topic>.<server>:
//   - one listening connection: exchange "openstack" (topic, not durable,
//     not auto-delete), queue <topic>.<server> (not durable, not
//     auto-delete, no arguments) bound with <topic>.<server>, consumed
//     with manual acks (tag "1", no basic.qos: unlimited prefetch); every
//     delivery is acked (single) on receipt, before anything else;
//   - one sending connection with a pool of reply channels (ReplyChannels,
//     default 30: the reference's rpc_conn_pool_size of sending
//     connections, here channels of one connection), each in confirm
//     mode with one outstanding confirm: a reply goes to the default
//     exchange, routing key = the request's _reply_q, mandatory set, and
//     waits for its basic.ack before that channel publishes again.
//
// Client, like an RPC client:
//   - one listening connection with the reply queue reply_<uuid4 hex> (not
//     durable, not exclusive, not auto-delete, x-expires 1800000 as int32,
//     no binding: the default exchange routes by name), consumed with
//     manual acks, each reply acked on receipt and handed to its call by
//     _msg_id;
//   - one sending connection shared by all callers, each caller its own
//     channel (Caller): the reference's one outstanding confirm per
//     channel then limits each caller, not the whole client. A caller
//     declares the exchange once, before its first publish, and with
//     confirms puts its channel in confirm mode and waits for each
//     publish's basic.ack before the next.
//
// Requests carry content type application/json, content encoding utf-8,
// delivery mode 2 and, for calls, expiration = timeout in ms. Two
// differences from py-amqp's frames, both from amqp091-go: an empty
// headers table and priority 0 are not sent (py-amqp sends both).
package rawamqp
