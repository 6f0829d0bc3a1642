package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsFlag is --metrics-addr of serve, listen, proxy and bench
// rpc-server: Prometheus metrics on http://ADDR/metrics for the life of
// the command.
type metricsFlag struct {
	addr string
	reg  *prometheus.Registry
	stop func()
}

func (m *metricsFlag) register(fs *flag.FlagSet) {
	fs.StringVar(&m.addr, "metrics-addr", "", "serve Prometheus metrics on http://ADDR/metrics (host:port)")
}

// start serves the registry when --metrics-addr is set; it returns nil
// (metrics off) otherwise. The bound address goes to stderr.
func (m *metricsFlag) start(stderr io.Writer) (*prometheus.Registry, error) {
	if m.addr == "" {
		return nil, nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := net.Listen("tcp", m.addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintf(stderr, "goslo: metrics on http://%s/metrics\n", ln.Addr())
	m.reg = reg
	m.stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
	return reg, nil
}

// close stops the HTTP server, if any.
func (m *metricsFlag) close() {
	if m.stop != nil {
		m.stop()
	}
}
