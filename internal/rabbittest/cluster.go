package rabbittest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// Cluster is a set of nodes sharing one epmd and one cookie, joined into
// one RabbitMQ cluster.
type Cluster struct {
	Nodes []*Node
	// StartupTime covers booting all nodes and joining them.
	StartupTime time.Duration
	t           testing.TB
}

// StartCluster boots size nodes in parallel (distinct names, ports and
// directories; one private epmd, since nodes find each other through it;
// one cookie) and joins nodes 1.. to node 0 with rabbitmqctl stop_app,
// join_cluster, start_app. Everything is stopped when the test ends.
func StartCluster(t testing.TB, size int, opts ...Option) *Cluster {
	t.Helper()
	began := time.Now()
	e, err := startEpmd(t)
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs after every node's cleanup.
	t.Cleanup(func() { e.stop(t) })
	cookie := strings.ToUpper(randHex(16))
	c := &Cluster{t: t}
	for i := 0; i < size; i++ {
		cfg := config{cookie: cookie, epmd: e}
		for _, o := range opts {
			o(&cfg)
		}
		n, err := newNode(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.Nodes = append(c.Nodes, n)
	}
	errs := make([]error, size)
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Add(1)
		go func(i int, n *Node) {
			defer wg.Done()
			errs[i] = n.start()
		}(i, n)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range c.Nodes[1:] {
		n.Ctl("stop_app")
		n.Ctl("join_cluster", c.Nodes[0].Name)
		n.Ctl("start_app")
		n.Ctl("await_startup")
	}
	c.StartupTime = time.Since(began)
	return c
}

// Node returns node i.
func (c *Cluster) Node(i int) *Node { return c.Nodes[i] }

// Stop stops node i gracefully.
func (c *Cluster) Stop(i int) { c.Nodes[i].Stop() }

// Kill kills node i (SIGKILL).
func (c *Cluster) Kill(i int) { c.Nodes[i].Kill() }

// URL is a transport URL naming every node (oslo.messaging shuffles the
// hosts per connection and fails over between them).
func (c *Cluster) URL(vhost string) string {
	hosts := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		hosts[i] = fmt.Sprintf("guest:guest@127.0.0.1:%d", n.Port)
	}
	u := c.Nodes[0].URL(vhost)
	return "rabbit://" + strings.Join(hosts, ",") + u[strings.LastIndexByte(u, '/'):]
}

// RunningNodes is the cluster's running_nodes as node i reports them.
func (c *Cluster) RunningNodes(i int) []string {
	c.t.Helper()
	out := c.Nodes[i].Ctl("eval", "rabbit_nodes:all_running().")
	var names []string
	for _, f := range strings.Split(strings.Trim(strings.TrimSpace(out), "[]"), ",") {
		if f = strings.Trim(strings.TrimSpace(f), "'"); f != "" {
			names = append(names, f)
		}
	}
	return names
}
