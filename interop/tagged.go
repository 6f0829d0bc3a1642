package interop

import "github.com/goslo/goslo/internal/tagged"

// ToTagged and FromTagged convert values for the peer channel.
var (
	ToTagged   = tagged.ToTagged
	FromTagged = tagged.FromTagged
)
