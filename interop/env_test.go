package interop

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPythonEnvironments proves what the other interop tests run against:
// zmq814 imports oslo.messaging 8.1.4 with its zmq driver and all three
// Python 3.11 shims active; modern imports a newer release.
func TestPythonEnvironments(t *testing.T) {
	p := StartPeer(t, EnvZMQ814)
	require.Equal(t, "8.1.4", p.Ready["oslo.messaging"])
	require.Equal(t, true, p.Ready["zmq_driver"], "8.1.4 must carry the zmq driver")
	shims, _ := p.Ready["shims"].([]any)
	require.ElementsMatch(t, []any{"collections_abcs", "zmq_send_kwarg", "redis_get_publishers"}, shims)
	t.Logf("zmq814: %v", p.Ready)

	// The shims are the ones in effect, not only listed: ask the peer.
	var probe struct {
		SendAcceptsKwarg   bool `json:"send_accepts_call_monitor_timeout"`
		PublishersDecode   bool `json:"get_publishers_decodes"`
		CollectionsMapping bool `json:"collections_mapping"`
	}
	require.NoError(t, p.Do("shim_probe", nil, &probe))
	require.True(t, probe.SendAcceptsKwarg)
	require.True(t, probe.PublishersDecode)
	require.True(t, probe.CollectionsMapping)

	m := StartPeer(t, EnvModern)
	require.NotEqual(t, "8.1.4", m.Ready["oslo.messaging"])
	require.Equal(t, false, m.Ready["zmq_driver"])
	t.Logf("modern: %v", m.Ready)
}
