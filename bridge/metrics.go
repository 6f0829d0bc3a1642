package bridge

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/goslo/goslo/driver"
)

// Observer receives the bridge's events. It is called on the forwarding
// path, so it must be cheap and safe for concurrent use. Direction is
// "<from>-><to>" with the sides' names; kind is driver.Kind.String().
type Observer interface {
	// Forwarded counts a message delivered to the other bus (a CALL
	// whose reply, result or failure, went back to the caller).
	Forwarded(direction, topic string, kind driver.Kind)
	// Failed counts a message the bridge could not forward, with a short
	// reason: "timeout", "send_failed", "reply_failed", "malformed".
	Failed(direction, topic string, kind driver.Kind, reason string)
	// InFlight moves the number of messages being forwarded by delta.
	InFlight(direction, topic string, delta int)
	// Mirrors is the number of mirrors the bridge runs on side.
	Mirrors(side string, n int)
}

// Metrics is an Observer backed by Prometheus collectors:
//
//	goslo_bridge_forwarded_total{direction,topic,kind}
//	goslo_bridge_failed_total{direction,topic,kind,reason}
//	goslo_bridge_in_flight{direction,topic}
//	goslo_bridge_mirrors{side}
type Metrics struct {
	forwarded *prometheus.CounterVec
	failed    *prometheus.CounterVec
	inFlight  *prometheus.GaugeVec
	mirrors   *prometheus.GaugeVec
}

// NewMetrics registers the bridge's collectors on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "goslo_bridge_forwarded_total",
			Help: "Messages the bridge delivered to the other bus, by direction, topic and kind."}, []string{"direction", "topic", "kind"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "goslo_bridge_failed_total",
			Help: "Messages the bridge could not forward, by direction, topic, kind and reason."}, []string{"direction", "topic", "kind", "reason"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "goslo_bridge_in_flight",
			Help: "Messages being forwarded, by direction and topic."}, []string{"direction", "topic"}),
		mirrors: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "goslo_bridge_mirrors",
			Help: "Servers of the other bus the bridge mirrors on a side."}, []string{"side"}),
	}
	for _, c := range []prometheus.Collector{m.forwarded, m.failed, m.inFlight, m.mirrors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Forwarded implements Observer.
func (m *Metrics) Forwarded(direction, topic string, kind driver.Kind) {
	m.forwarded.WithLabelValues(direction, topic, kind.String()).Inc()
}

// Failed implements Observer.
func (m *Metrics) Failed(direction, topic string, kind driver.Kind, reason string) {
	m.failed.WithLabelValues(direction, topic, kind.String(), reason).Inc()
}

// InFlight implements Observer.
func (m *Metrics) InFlight(direction, topic string, delta int) {
	m.inFlight.WithLabelValues(direction, topic).Add(float64(delta))
}

// Mirrors implements Observer.
func (m *Metrics) Mirrors(side string, n int) { m.mirrors.WithLabelValues(side).Set(float64(n)) }

type nopObserver struct{}

func (nopObserver) Forwarded(string, string, driver.Kind)      {}
func (nopObserver) Failed(string, string, driver.Kind, string) {}
func (nopObserver) InFlight(string, string, int)               {}
func (nopObserver) Mirrors(string, int)                        {}
