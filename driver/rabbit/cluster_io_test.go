package rabbit_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/compat"
	"github.com/goslo/goslo/driver"
	"github.com/goslo/goslo/internal/rabbittest"
)

// TestClusterFailover: a server, a client and a listener on a URL naming
// the three nodes of a cluster (§2.1: hosts shuffled per connection,
// round-robin failover). Two nodes are stopped one after the other;
// every connection fails over to the survivor, re-declares its queues
// (non-durable classic queues vanish with their node) and calls and
// notifications resume.
func TestClusterFailover(t *testing.T) {
	c := rabbittest.StartCluster(t, 3)
	t.Logf("cluster up in %v", c.StartupTime)
	c.Node(0).AddVhost("goslo-cluster")
	url := c.URL("goslo-cluster")
	srvT := openURL(t, url, nil)
	cliT := openURL(t, url, nil)
	e := newEcho("s1")
	listen(t, srvT, compat.Target{Topic: "cf", Server: "s1"}, e.handle)
	notes := make(chan *driver.Request, 100)
	listenNotes(t, srvT, []compat.Target{{Topic: "cfn.info"}}, driver.ListenOptions{}, func(_ context.Context, r *driver.Request) error {
		notes <- r
		return nil
	})
	call := func() error {
		_, err := cliT.Call(ctxT(t, 3*time.Second), compat.Target{Topic: "cf", Server: "s1"}, reqMsg("echo"))
		return err
	}
	require.NoError(t, call())

	for _, i := range []int{0, 1} {
		c.Stop(i)
		var err error
		ok := false
		for end := time.Now().Add(60 * time.Second); time.Now().Before(end); {
			if err = call(); err == nil {
				ok = true
				break
			}
		}
		require.True(t, ok, "calls did not resume after node %d stopped: %v", i, err)
		drainNotes(notes)
		// The listener may still be re-declaring its queue: notify until
		// one arrives.
		got := false
		for end := time.Now().Add(30 * time.Second); !got && time.Now().Before(end); {
			require.NoError(t, cliT.Notify(ctxT(t, 10*time.Second), compat.Target{Topic: "cfn.info"}, notification("INFO", "after")))
			select {
			case <-notes:
				got = true
			case <-time.After(time.Second):
			}
		}
		require.True(t, got, "notifications did not resume after node %d stopped", i)
	}
	// Everything now sits on node 2.
	conns := 0
	for _, r := range c.Node(2).ListConnections("vhost") {
		if r["vhost"] == "goslo-cluster" {
			conns++
		}
	}
	require.GreaterOrEqual(t, conns, 4) // server, listener, reply queue, sender
}

func drainNotes(c chan *driver.Request) {
	for len(c) > 0 {
		<-c
	}
}
