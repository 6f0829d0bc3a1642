package rabbit

import (
	"context"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DialAMQP opens a new AMQP connection to the transport's broker (hosts,
// credentials, virtual host, TLS and back-off of the URL and
// configuration), until one accepts or ctx ends. The caller owns and
// closes it. It is a hook for tools beside the driver (the bridge's
// passive declares and its exclusive lease queue); the driver never uses
// it.
func (t *Transport) DialAMQP(ctx context.Context, what string) (*amqp.Connection, error) {
	if err := t.live(); err != nil {
		return nil, err
	}
	return t.dialer.connect(ctx, t.dialer.cursor(), what)
}

// Topology is the transport's naming and declaration plan (names.go,
// topology.go), for tools beside the driver.
func (t *Transport) Topology() Topology { return t.topo }

// DeliveryProperties are the properties of a delivery that DecodeRequest,
// DecodeReply and DecodeNotification read, for tools beside the driver
// that consume with their own channel (goslo record).
func DeliveryProperties(d *amqp.Delivery) Properties { return deliveryProps(d) }
