package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/matchmaker"
)

// Lease decides which of the bridges of one group works: two bridges on
// the same pair of buses, run for availability, would otherwise deliver
// every fanout and notification twice. The holder mirrors and forwards;
// the others wait to take over.
type Lease interface {
	// Acquire blocks until this bridge holds the lease or ctx ends. The
	// returned channel is closed when the lease is lost; release gives it
	// up.
	Acquire(ctx context.Context) (lost <-chan struct{}, release func(), err error)
}

// LeaseQueue is the name of the exclusive queue that is a group's lease
// on RabbitMQ.
func LeaseQueue(group string) string { return "goslo-bridge.lease." + group }

// RabbitLease is a lease held as an exclusive queue on a RabbitMQ bus: one
// connection at a time can declare it (the others get RESOURCE_LOCKED),
// and the broker deletes it when that connection closes, so a bridge that
// dies hands the lease over at once.
type RabbitLease struct {
	Dial  Dialer
	Group string
	Retry time.Duration // between attempts (0: 1 s)
	Log   *slog.Logger
}

// Acquire implements Lease.
func (l *RabbitLease) Acquire(ctx context.Context) (<-chan struct{}, func(), error) {
	retry := l.Retry
	if retry <= 0 {
		retry = time.Second
	}
	name := LeaseQueue(l.Group)
	waiting := false
	for {
		conn, err := l.Dial(ctx, "bridge-lease")
		if err != nil {
			return nil, nil, err
		}
		for !conn.IsClosed() {
			ch, err := conn.Channel()
			if err != nil {
				break
			}
			_, err = ch.QueueDeclare(name, false, false, true, false, nil)
			if err == nil {
				lost := make(chan struct{})
				closed := conn.NotifyClose(make(chan *amqp.Error, 1))
				go func() {
					<-closed
					close(lost)
				}()
				return lost, func() { _ = conn.Close() }, nil
			}
			var ae *amqp.Error
			if !errors.As(err, &ae) || ae.Code != amqp.ResourceLocked {
				break
			}
			if !waiting && l.Log != nil {
				l.Log.Info("bridge: another bridge of the group holds the lease; standing by", "group", l.Group, "queue", name)
				waiting = true
			}
			select {
			case <-ctx.Done():
				_ = conn.Close()
				return nil, nil, ctx.Err()
			case <-time.After(retry):
			}
		}
		_ = conn.Close()
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(retry):
		}
	}
}

// LeaseType is the prefix of the matchmaker key of a group's lease:
// "GOSLO_BRIDGE_LEASE/<group>".
const LeaseType = "GOSLO_BRIDGE_LEASE"

// MatchmakerLease is a lease held in a zmq bus's matchmaker: every bridge
// of the group keeps a record "<start time>-<uuid>" under
// LeaseType/<group> with a short TTL, and the oldest live record holds
// the lease. A bridge that dies hands it over when its record expires
// (TTL); one that cannot refresh its record gives it up.
type MatchmakerLease struct {
	MM    matchmaker.Matchmaker
	Group string
	TTL   time.Duration // record TTL (0: 6 s); refreshed every TTL/3
	Log   *slog.Logger

	once sync.Once
	id   string
}

func (l *MatchmakerLease) ttl() time.Duration {
	if l.TTL <= 0 {
		return 6 * time.Second
	}
	return l.TTL
}

func (l *MatchmakerLease) target() compat.Target { return compat.Target{Topic: l.Group} }

// holds registers the record and reports whether it is the oldest.
func (l *MatchmakerLease) holds(ctx context.Context) (bool, error) {
	l.once.Do(func() { l.id = fmt.Sprintf("%020d-%s", time.Now().UnixNano(), envelope.NewUUID4()) })
	if err := l.MM.Register(ctx, l.target(), l.id, LeaseType, l.ttl()); err != nil {
		return false, err
	}
	ids, err := l.MM.HostsByKey(ctx, compat.TopicKey(LeaseType, l.target()))
	if err != nil {
		return false, err
	}
	sort.Strings(ids)
	return len(ids) > 0 && ids[0] == l.id, nil
}

// Acquire implements Lease.
func (l *MatchmakerLease) Acquire(ctx context.Context) (<-chan struct{}, func(), error) {
	every := l.ttl() / 3
	waiting := false
	for {
		cctx, cancel := context.WithTimeout(ctx, every)
		ok, err := l.holds(cctx)
		cancel()
		if ok {
			break
		}
		if err != nil && l.Log != nil && ctx.Err() == nil {
			l.Log.Warn("bridge: lease record not written", "group", l.Group, "err", err)
		} else if !waiting && l.Log != nil {
			l.Log.Info("bridge: another bridge of the group holds the lease; standing by", "group", l.Group)
			waiting = true
		}
		select {
		case <-ctx.Done():
			l.drop()
			return nil, nil, ctx.Err()
		case <-time.After(every):
		}
	}
	lost := make(chan struct{})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(lost)
		fails := 0
		for {
			select {
			case <-stop:
				return
			case <-time.After(every):
			}
			cctx, cancel := context.WithTimeout(context.Background(), every)
			ok, err := l.holds(cctx)
			cancel()
			switch {
			case ok:
				fails = 0
			case err != nil && fails == 0:
				fails++ // one miss is within the TTL
			default:
				if l.Log != nil {
					l.Log.Warn("bridge: lease lost", "group", l.Group, "err", err)
				}
				return
			}
		}
	}()
	var once sync.Once
	return lost, func() {
		once.Do(func() {
			close(stop)
			<-done
			l.drop()
		})
	}, nil
}

func (l *MatchmakerLease) drop() {
	if l.id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.ttl())
	defer cancel()
	_ = l.MM.Unregister(ctx, l.target(), l.id, LeaseType)
}
