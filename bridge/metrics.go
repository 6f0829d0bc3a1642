package bridge

import "github.com/goslo/goslo/driver"

// Observer receives the bridge's events (extra/gosloprom.NewBridgeMetrics
// is a Prometheus one). It is called on the forwarding
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

type nopObserver struct{}

func (nopObserver) Forwarded(string, string, driver.Kind)      {}
func (nopObserver) Failed(string, string, driver.Kind, string) {}
func (nopObserver) InFlight(string, string, int)               {}
func (nopObserver) Mirrors(string, int)                        {}
