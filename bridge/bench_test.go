package bridge_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/goslo/goslo"
	"github.com/goslo/goslo/internal/rabbittest"
	"github.com/goslo/goslo/internal/redistest"
)

// BenchmarkCall measures a CALL on each bus alone (zmq, rabbit) and
// through the bridge each way, one caller (p50/p99 reported) and 10
// callers (calls/s reported):
//
//	go test -run '^$' -bench BenchmarkCall -benchtime 2000x ./bridge
func BenchmarkCall(b *testing.B) {
	red := redistest.Start(b)
	node := rabbittest.Start(b)
	url := node.URL("/")
	mkZ := func(t testing.TB) *goslo.Transport { return zmqTransport(t, red.Addr) }
	mkR := func(t testing.TB) *goslo.Transport { return rabbitTransport(t, url) }
	zt, rt := mkZ(b), mkR(b)
	startServer(b, zt, "bb", "zy")
	startServer(b, rt, "bb", "rx")
	br := startBridge(b, [2]func(testing.TB) *goslo.Transport{mkZ, mkR}, bridgeOpts{topics: []string{"bb"}, names: [2]string{"zmq", "rabbit"},
		servers: [2]map[string][]string{nil, {"": {"rx"}}}, group: "bench"})
	waitMirrors(b, br, "rabbit:bb.zy", "zmq:bb.rx")
	ctx := context.Background()
	args := goslo.NewMap("payload", "0123456789abcdef0123456789abcdef")
	for _, c := range []struct {
		name   string
		tr     *goslo.Transport
		server string
	}{
		{"zmq", zt, "zy"},
		{"rabbit", rt, "rx"},
		{"zmq-to-rabbit", zt, "rx"},
		{"rabbit-to-zmq", rt, "zy"},
	} {
		cl := client(c.tr, "bb", c.server, 10*time.Second)
		for i := 0; i < 50; i++ { // warm up (connections, reply queue, routing tables)
			if _, err := cl.Call(ctx, nil, "echo", args); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(c.name+"/1-caller", func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if _, err := cl.Call(ctx, nil, "echo", args); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50_us")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99_us")
		})
		b.Run(c.name+"/10-callers", func(b *testing.B) {
			var wg sync.WaitGroup
			per := (b.N + 9) / 10
			errs := make(chan error, 10)
			start := time.Now()
			for w := 0; w < 10; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < per; i++ {
						if _, err := cl.Call(ctx, nil, "echo", args); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(per*10)/time.Since(start).Seconds(), "calls/s")
		})
	}
}
