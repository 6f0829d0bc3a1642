package goslo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/internal/rabbittest"
)

// TestRabbitClusterFailover runs a goslo RPC server and client (separate
// transports, as two processes would have) on a 3-node RabbitMQ cluster,
// with a URL naming the three nodes, CALL traffic and a CAST stream to the
// server's topic queue, and SIGKILLs the node holding both the server's
// listening connection and the client's reply-queue connection
// mid-traffic (rabbit-wire.md §2.1, §11.3). Calls must resume through the
// other nodes and no call may run (and so be answered) twice; with quorum
// topic queues every confirmed cast must be handled. Calls whose request
// or reply died with the node may time out: they are counted and
// reported, not failed. The scenarios share the cluster (the killed node
// is started again between them), each in a vhost of its own:
//
//   - quorum: rabbit_quorum_queue and rabbit_transient_quorum_queue, every
//     queue a quorum queue (replicated on the three nodes);
//   - quorum-classic-transient: quorum topic queues, classic reply and
//     fanout queues (lost with their node, declared again elsewhere);
//   - classic-durable: amqp_durable_queues, no quorum: the topic queues
//     live on the killed node only. RabbitMQ 3.10 answers both their
//     declaration and their deletion elsewhere with 404 (home node down),
//     so the server can only consume again when the node is back: it is
//     started again after 10 s, and calls must resume then. Casts routed
//     to the dead queue are confirmed by the broker and lost (counted, not
//     failed).
func TestRabbitClusterFailover(t *testing.T) {
	c := rabbittest.StartCluster(t, 3)
	t.Logf("3-node cluster up in %v", c.StartupTime.Round(time.Millisecond))
	for i, sc := range []struct {
		name, query string
		quorum      bool          // topic queues are quorum queues
		outage      time.Duration // >0: the node is started again after that long
	}{
		{"quorum", "rabbit_quorum_queue=true&rabbit_transient_quorum_queue=true", true, 0},
		{"quorum-classic-transient", "rabbit_quorum_queue=true", true, 0},
		{"classic-durable", "amqp_durable_queues=true", false, 10 * time.Second},
	} {
		if i > 0 {
			for _, n := range c.Nodes {
				if !n.Running() {
					n.StartAgain()
				}
			}
			up := 0
			for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
				if up = len(c.RunningNodes(0)); up == 3 {
					break
				}
			}
			require.Equal(t, 3, up, "the killed node did not rejoin")
		}
		t.Run(sc.name, func(t *testing.T) { clusterFailover(t, c, "goslo-"+sc.name, sc.query, sc.quorum, sc.outage) })
	}
}

func clusterFailover(t *testing.T, c *rabbittest.Cluster, vhost, query string, quorum bool, outage time.Duration) {
	c.Node(0).AddVhost(vhost)
	url := c.URL(vhost) + "?" + query

	logs := &lockedBuffer{}
	logger := slog.New(&countingHandler{Handler: slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}), counts: map[string]int{}})
	defer func() {
		if t.Failed() {
			t.Logf("driver log (tail):\n%s", logs.tail(8000))
		}
	}()
	ctx := context.Background()
	const topic, server = "failover", "s1"

	var mu sync.Mutex
	callRuns := map[int64]int{} // handler runs per call id
	castRuns := map[int64]int{} // handler runs per cast id
	// Every handler run in order, for the report on duplicates: which
	// request ran again, when, and how many ran in between (oslo's dedup
	// window holds 16 _unique_ids, §8.1; goslo's dedupWindow more).
	type run struct {
		seq int
		at  time.Time
	}
	var seq int
	runs := map[string][]run{}
	ep := NewEndpoint("", "1.0").
		Handle("work", func(_ context.Context, _ *Map, a *Map) (any, error) {
			v, _ := a.Get("id")
			mu.Lock()
			callRuns[v.(int64)]++
			seq++
			runs[fmt.Sprint("call ", v)] = append(runs[fmt.Sprint("call ", v)], run{seq, time.Now()})
			mu.Unlock()
			return v, nil
		}).
		Handle("note", func(_ context.Context, _ *Map, a *Map) (any, error) {
			v, _ := a.Get("id")
			mu.Lock()
			castRuns[v.(int64)]++
			seq++
			runs[fmt.Sprint("cast ", v)] = append(runs[fmt.Sprint("cast ", v)], run{seq, time.Now()})
			mu.Unlock()
			return nil, nil
		})

	trS, err := NewTransport(ctx, url, WithLogger(logger))
	require.NoError(t, err)
	defer trS.Close()
	srv, err := NewRPCServer(trS, Target{Topic: topic, Server: server}, ep)
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		require.NoError(t, srv.Stop(sctx))
	}()

	// The topic queues are quorum queues with a member on every node, or
	// classic ones.
	for _, q := range c.Node(1).ListQueues(vhost, "name", "type", "members") {
		if q["name"] == topic || q["name"] == topic+"."+server {
			if !quorum {
				require.Equal(t, "classic", q["type"], "queue %v", q["name"])
				continue
			}
			require.Equal(t, "quorum", q["type"], "queue %v", q["name"])
			require.Len(t, q["members"], 3, "queue %v", q["name"])
		}
	}

	// Each connection shuffles the hosts (§2.1): open client transports
	// until the client's reply queue is consumed on the node that holds
	// the server's listening connection, so that one kill hits both.
	var trC *Transport
	var cl *RPCClient
	var victim int
	for attempt := 1; ; attempt++ {
		trC, err = NewTransport(ctx, url, WithLogger(logger))
		require.NoError(t, err)
		cl = NewRPCClient(trC, Target{Topic: topic, Version: "1.0"}).Prepare(PrepareOptions{Timeout: 10 * time.Second})
		_, err = cl.Call(ctx, NewMap(), "work", NewMap("id", int64(-attempt)))
		require.NoError(t, err)
		srvNode, replyNode := consumerNodes(t, c, 0, vhost)
		if srvNode == replyNode {
			victim = nodeIndex(t, c, srvNode)
			t.Logf("server listener and client reply queue both on node %d (%s), client transport #%d", victim, srvNode, attempt)
			break
		}
		trC.Close()
		require.Less(t, attempt, 30, "the reply queue never landed on the server's node")
	}
	defer trC.Close()
	// The leader of the topic queue: its node is being killed too when it
	// is the victim (the server declared it there: client-local leader).
	where := fmt.Sprintf("classic topic queue %q there", topic)
	for _, q := range c.Node(victim).ListQueues(vhost, "name", "leader") {
		if q["name"] == topic && quorum {
			where = fmt.Sprintf("leader of quorum queue %q there: %v", topic, q["leader"] == c.Node(victim).Name)
		}
	}

	type outcome struct {
		id         int64
		start, end time.Time
		err        error
		wrong      bool // answered with another call's id
	}
	var (
		stop      atomic.Bool
		nextCall  atomic.Int64
		outcomes  []outcome
		omu       sync.Mutex
		wg        sync.WaitGroup
		confirmed = map[int64]bool{}
		castErrs  int
		castSent  int64
	)
	const callers = 4
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				id := nextCall.Add(1)
				o := outcome{id: id, start: time.Now()}
				res, err := cl.Call(ctx, NewMap("user", "failover"), "work", NewMap("id", id))
				o.end, o.err = time.Now(), err
				if err == nil && res != id {
					o.wrong = true
				}
				omu.Lock()
				outcomes = append(outcomes, o)
				omu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() { // the cast stream, to the quorum topic queue
		defer wg.Done()
		for id := int64(1); !stop.Load(); id++ {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := cl.Cast(cctx, NewMap("user", "failover"), "note", NewMap("id", id))
			cancel()
			omu.Lock()
			castSent = id
			if err == nil {
				confirmed[id] = true
			} else {
				castErrs++
			}
			omu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()

	time.Sleep(3 * time.Second) // traffic in flight at the kill
	require.Eventually(t, func() bool { omu.Lock(); defer omu.Unlock(); return len(outcomes) > 0 }, 30*time.Second, 10*time.Millisecond,
		"no call completed before the kill")
	omu.Lock()
	before := len(outcomes)
	omu.Unlock()
	// now is when the kill starts; calls started after killed, when every
	// process of the node is gone, are the ones that must find another
	// node. The recovery time is counted from now.
	now := time.Now()
	c.Kill(victim)
	killed := time.Now()
	t.Logf("killed node %d after %d calls (SIGKILL to all its processes gone: %v)", victim, before, killed.Sub(now).Round(time.Millisecond))

	// Calls sent from `from` on must succeed again: from the kill, or,
	// when the node is to come back, from its restart.
	from, back := killed, ""
	if outage > 0 {
		time.Sleep(outage)
		omu.Lock()
		during := 0
		for _, o := range outcomes {
			if o.err == nil && !o.start.Before(killed) {
				during++
			}
		}
		omu.Unlock()
		c.Node(victim).StartAgain()
		from = time.Now()
		back = fmt.Sprintf("; node %d started again after a %v outage (calls sent after the kill answered during it: %d), up %v after the SIGKILL",
			victim, outage, during, from.Sub(now).Round(time.Millisecond))
	}

	// Run until a call sent after `from` succeeded, then 5 s more.
	var recovery time.Duration
	deadline := from.Add(90 * time.Second)
	for recovery == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		omu.Lock()
		for _, o := range outcomes {
			if o.err == nil && !o.start.Before(from) && (recovery == 0 || o.end.Sub(now) < recovery) {
				recovery = o.end.Sub(now)
			}
		}
		omu.Unlock()
	}
	if recovery > 0 {
		time.Sleep(5 * time.Second)
	}
	stop.Store(true)
	wg.Wait()

	// Every confirmed cast is handled, eventually.
	lost := func() (n int) {
		mu.Lock()
		defer mu.Unlock()
		for id := range confirmed {
			if castRuns[id] == 0 {
				n++
			}
		}
		return n
	}
	drain := 60 * time.Second
	if !quorum {
		drain = 3 * time.Second // casts routed to the dead node are gone
	}
	drainUntil := time.Now().Add(drain)
	for lost() > 0 && time.Now().Before(drainUntil) {
		time.Sleep(100 * time.Millisecond)
	}

	// Tally.
	var ok, timeouts, others, wrong, okAfter int
	var firstReply time.Duration
	var otherErrs []string
	for _, o := range outcomes {
		switch {
		case o.err == nil:
			ok++
			if o.wrong {
				wrong++
			}
			if d := o.end.Sub(now); d > 0 && (firstReply == 0 || d < firstReply) {
				firstReply = d
			}
			if !o.start.Before(killed) {
				okAfter++
			}
		case errors.Is(o.err, ErrMessagingTimeout):
			timeouts++
		default:
			others++
			if len(otherErrs) < 5 {
				otherErrs = append(otherErrs, o.err.Error())
			}
		}
	}
	mu.Lock()
	callDups, castDups, handled, handledConfirmed := 0, 0, 0, 0
	for id, n := range callRuns {
		if id > 0 && n > 1 {
			callDups++
		}
	}
	for id, n := range castRuns {
		handled++
		if n > 1 {
			castDups++
		}
		if confirmed[id] {
			handledConfirmed++
		}
	}
	var dupReport []string
	for k, rs := range runs {
		if len(rs) > 1 && !strings.HasPrefix(k, "call -") {
			d := fmt.Sprintf("%s ran %d times:", k, len(rs))
			for i, r := range rs {
				d += fmt.Sprintf(" run #%d at kill%+v (handler run %d", i+1, r.at.Sub(now).Round(time.Millisecond), r.seq)
				if i > 0 {
					d += fmt.Sprintf(", %d other runs since the previous one", r.seq-rs[i-1].seq-1)
				}
				d += ")"
			}
			dupReport = append(dupReport, d)
		}
	}
	sort.Strings(dupReport)
	mu.Unlock()
	lostN := lost()

	t.Logf("cluster failover (%s): SIGKILL of node %d (server listener, client reply queue; %s) after %d calls%s; "+
		"recovery %v (SIGKILL -> first successful call sent after the node was gone, or back); first reply after the SIGKILL (in-flight calls included) %v",
		query, victim, where, before, back, recovery.Round(time.Millisecond), firstReply.Round(time.Millisecond))
	t.Logf("calls: %d sent, %d answered (%d sent after the kill), %d timed out (allowed), %d other errors, %d run twice, %d wrong replies",
		len(outcomes), ok, okAfter, timeouts, others, callDups, wrong)
	kind := "classic"
	if quorum {
		kind = "quorum"
	}
	t.Logf("casts to %s queue %q: %d sent, %d confirmed, %d unconfirmed (publish error), %d handled (%d of the confirmed), %d confirmed but lost, %d handled twice",
		kind, topic, castSent, len(confirmed), castErrs, handled, handledConfirmed, lostN, castDups)
	t.Logf("driver log: %d 'listening connection lost; reconnecting', %d 'publish failed, retrying', %d 'dropping duplicate request', "+
		"%d 'dropping reply for an unknown or finished call' (a reply for a call already answered or timed out: dropped by the client)",
		countOf(logger, "rabbit driver: listening connection lost; reconnecting"), countOf(logger, "rabbit driver: publish failed, retrying"),
		countOf(logger, "rabbit driver: dropping duplicate request"), countOf(logger, "rabbit driver: dropping reply for an unknown or finished call"))
	for _, d := range dupReport {
		t.Logf("duplicate: %s", d)
	}

	require.NotZero(t, recovery, "no call sent after the kill (or the node's return) succeeded within 90 s")
	require.Zero(t, others, "calls failed other than by timing out: %v", otherErrs)
	require.Zero(t, callDups, "calls run (and answered) twice")
	require.Zero(t, wrong, "calls answered with another call's result")
	if quorum {
		require.Zero(t, lostN, "confirmed casts never handled")
	}
	require.NotZero(t, len(confirmed))

	// The server consumes again, from a surviving node (or any, once the
	// killed one is back).
	srvNode, replyNode := consumerNodes(t, c, (victim+1)%3, vhost)
	if outage == 0 {
		require.NotEqual(t, c.Node(victim).Name, srvNode)
		require.NotEqual(t, c.Node(victim).Name, replyNode)
	}
}

// consumerNodes returns the nodes of the channels consuming the server's
// three queues and the client's reply queue, as node i lists the
// channels of vhost: the only channels with 3 and 1 consumers. A channel
// is named "<client addr> -> 127.0.0.1:<node's AMQP port> (<n>)".
func consumerNodes(t *testing.T, c *rabbittest.Cluster, i int, vhost string) (srvNode, replyNode string) {
	t.Helper()
	rows := c.Node(i).ListChannels(vhost, "name", "consumer_count")
	for _, r := range rows {
		name, _ := r["name"].(string)
		node := ""
		for _, n := range c.Nodes {
			if strings.Contains(name, fmt.Sprintf("-> 127.0.0.1:%d ", n.Port)) {
				node = n.Name
			}
		}
		switch fmt.Sprint(r["consumer_count"]) {
		case "3":
			srvNode = node
		case "1":
			replyNode = node
		}
	}
	require.NotEmpty(t, srvNode, "no channel with the server's 3 consumers: %v", rows)
	require.NotEmpty(t, replyNode, "no channel with the reply queue's consumer: %v", rows)
	return srvNode, replyNode
}

func nodeIndex(t *testing.T, c *rabbittest.Cluster, name string) int {
	t.Helper()
	for i, n := range c.Nodes {
		if n.Name == name {
			return i
		}
	}
	t.Fatalf("no node %s in the cluster", name)
	return -1
}

func countOf(l *slog.Logger, msg string) int { return l.Handler().(*countingHandler).count(msg) }

// lockedBuffer is a log sink shared by goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) tail(n int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.b.String()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}
