package gosloprom

import (
	"github.com/prometheus/client_golang/prometheus"

	gdriver "github.com/goslo/goslo/driver"
)

// BridgeMetrics is a bridge.Observer backed by Prometheus collectors:
//
//	goslo_bridge_forwarded_total{direction,topic,kind}
//	goslo_bridge_failed_total{direction,topic,kind,reason}
//	goslo_bridge_in_flight{direction,topic}
//	goslo_bridge_mirrors{side}
type BridgeMetrics struct {
	forwarded *prometheus.CounterVec
	failed    *prometheus.CounterVec
	inFlight  *prometheus.GaugeVec
	mirrors   *prometheus.GaugeVec
}

// NewBridgeMetrics registers the bridge's collectors on reg.
func NewBridgeMetrics(reg prometheus.Registerer) (*BridgeMetrics, error) {
	m := &BridgeMetrics{
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

// Forwarded implements bridge.Observer.
func (m *BridgeMetrics) Forwarded(direction, topic string, kind gdriver.Kind) {
	m.forwarded.WithLabelValues(direction, topic, kind.String()).Inc()
}

// Failed implements bridge.Observer.
func (m *BridgeMetrics) Failed(direction, topic string, kind gdriver.Kind, reason string) {
	m.failed.WithLabelValues(direction, topic, kind.String(), reason).Inc()
}

// InFlight implements bridge.Observer.
func (m *BridgeMetrics) InFlight(direction, topic string, delta int) {
	m.inFlight.WithLabelValues(direction, topic).Add(float64(delta))
}

// Mirrors implements bridge.Observer.
func (m *BridgeMetrics) Mirrors(side string, n int) { m.mirrors.WithLabelValues(side).Set(float64(n)) }
