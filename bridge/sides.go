package bridge

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	rabbitdrv "github.com/goslo/goslo/driver/rabbit"
	zmqdrv "github.com/goslo/goslo/driver/zmq"
)

// SideFor builds the Side of a goslo driver with its registry: a zmq
// transport finds its servers in its matchmaker (cfg gives the mode and
// timings); a RabbitMQ transport knows them from servers (per topic, ""
// for all topics) and checks each with a passive declare of its server
// queue. The returned close function releases what the registry opened
// (the probe's connection); the driver stays the caller's.
func SideFor(name string, d driver.Driver, cfg *compat.Config, servers map[string][]string, log *slog.Logger) (Side, func() error, error) {
	switch t := d.(type) {
	case *zmqdrv.Transport:
		if len(servers) > 0 {
			return Side{}, nil, fmt.Errorf("bridge: side %s: a zmq bus finds its servers in its matchmaker; a server list is for RabbitMQ", name)
		}
		side := Side{Name: name, Driver: d, Registry: NewMatchmakerRegistry(t.Matchmaker(), cfg, log)}
		if cfg != nil && !cfg.ZMQ.UseRouterProxy {
			lo, hi := cfg.ZMQ.RPCZMQMinPort, cfg.ZMQ.RPCZMQMaxPort
			side.ListenContext = func(ctx context.Context, topic, server string) context.Context {
				return zmqdrv.WithPort(ctx, MirrorPort(topic, server, lo, hi))
			}
		}
		return side, func() error { return nil }, nil
	case *rabbitdrv.Transport:
		p := &RabbitProbe{Dial: t.DialAMQP, Queue: rabbitdrv.ServerQueue}
		return Side{Name: name, Driver: d, Registry: NewStaticRegistry(servers, p.Alive)}, p.Close, nil
	}
	return Side{}, nil, fmt.Errorf("bridge: side %s: no registry for a %T driver", name, d)
}

// MirrorPort is the port a zmq mirror of (topic, server) binds first: a
// hash of the two in [lo, hi), so that a restarted bridge comes back on
// the addresses zmq clients already hold (they keep sending to every host
// they found until their routing table drops it). Taken, it falls back to
// a random port.
func MirrorPort(topic, server string, lo, hi int) int {
	if hi <= lo {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(topic + "\x00" + server))
	return lo + int(h.Sum32()%uint32(hi-lo))
}

// LeaseFor is the lease of a group of bridges on one of the sides: an
// exclusive queue on the first RabbitMQ side, or a record in the first
// zmq side's matchmaker. Nil when neither can hold one.
func LeaseFor(group string, log *slog.Logger, sides ...Side) Lease {
	for _, s := range sides {
		if t, ok := s.Driver.(*rabbitdrv.Transport); ok {
			return &RabbitLease{Dial: t.DialAMQP, Group: group, Log: log}
		}
	}
	for _, s := range sides {
		if t, ok := s.Driver.(*zmqdrv.Transport); ok {
			return &MatchmakerLease{MM: t.Matchmaker(), Group: group, Log: log}
		}
	}
	return nil
}
