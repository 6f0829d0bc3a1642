package rabbit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/goslo/goslo/compat"
)

// dialer opens AMQP connections to the brokers of a transport URL with the
// [oslo_messaging_rabbit] connection options (rabbit-wire.md §2, §11).
type dialer struct {
	hosts   []compat.AMQPHost
	vhost   string
	opts    compat.RabbitOptions
	tls     *tls.Config // nil without ssl
	program string
	log     *slog.Logger
}

func newDialer(ru *compat.RabbitURL, cfg *compat.Config, log *slog.Logger) (*dialer, error) {
	d := &dialer{hosts: ru.Hosts, vhost: ru.VirtualHost, opts: cfg.Rabbit, program: compat.ProgramName(), log: log}
	switch strings.ToUpper(cfg.Rabbit.RabbitLoginMethod) {
	case "", "AMQPLAIN", "PLAIN", "EXTERNAL":
	default:
		return nil, fmt.Errorf("rabbit driver: rabbit_login_method %q is not supported (AMQPLAIN, PLAIN, EXTERNAL)", cfg.Rabbit.RabbitLoginMethod)
	}
	if cfg.Rabbit.SSL {
		tc, err := tlsConfig(cfg.Rabbit, ru.Hosts)
		if err != nil {
			return nil, err
		}
		d.tls = tc
	}
	return d, nil
}

// tlsConfig builds the TLS client configuration of the ssl_* options:
// peer verification only with ssl_ca_file (kombu's CERT_NONE otherwise),
// and with it a hostname check for a single-host URL (18.1.0; with several
// hosts the name of the host being dialled is checked, see dialHost).
func tlsConfig(o compat.RabbitOptions, hosts []compat.AMQPHost) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	switch strings.ToLower(strings.ReplaceAll(o.SSLVersion, ".", "_")) {
	case "tlsv1_2":
		tc.MaxVersion = tls.VersionTLS12
	case "tlsv1_3":
		tc.MinVersion = tls.VersionTLS13
	}
	if o.SSLCertFile != "" || o.SSLKeyFile != "" {
		key := o.SSLKeyFile
		if key == "" {
			key = o.SSLCertFile
		}
		c, err := tls.LoadX509KeyPair(o.SSLCertFile, key)
		if err != nil {
			return nil, fmt.Errorf("rabbit driver: ssl_cert_file/ssl_key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	if o.SSLCAFile != "" {
		pem, err := os.ReadFile(o.SSLCAFile)
		if err != nil {
			return nil, fmt.Errorf("rabbit driver: ssl_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("rabbit driver: ssl_ca_file %s holds no PEM certificate", o.SSLCAFile)
		}
		tc.RootCAs = pool
	} else {
		tc.InsecureSkipVerify = true // kombu: cert_reqs CERT_NONE without a CA file
	}
	return tc, nil
}

// hostCursor walks a connection's own shuffled copy of the host list
// (§2.1: shuffled once per connection object, then round-robin, or a new
// random pick with kombu_failover_strategy=shuffle).
type hostCursor struct {
	hosts   []compat.AMQPHost
	next    int
	shuffle bool
}

func (d *dialer) cursor() *hostCursor {
	h := append([]compat.AMQPHost(nil), d.hosts...)
	rand.Shuffle(len(h), func(i, j int) { h[i], h[j] = h[j], h[i] })
	return &hostCursor{hosts: h, shuffle: d.opts.KombuFailoverStrategy == "shuffle"}
}

func (c *hostCursor) pick() compat.AMQPHost {
	if c.shuffle && len(c.hosts) > 1 {
		return c.hosts[rand.IntN(len(c.hosts))]
	}
	h := c.hosts[c.next%len(c.hosts)]
	c.next++
	return h
}

// dialHost opens one AMQP connection to h: the client properties and
// SASL mechanism of §2.2, the virtual host, heartbeat
// min(server, heartbeat_timeout_threshold), TLS from ssl_*.
func (d *dialer) dialHost(ctx context.Context, h compat.AMQPHost) (*amqp.Connection, error) {
	var auth amqp.Authentication
	switch strings.ToUpper(d.opts.RabbitLoginMethod) {
	case "PLAIN":
		auth = &amqp.PlainAuth{Username: h.Username, Password: h.Password}
	case "EXTERNAL":
		auth = &amqp.ExternalAuth{}
	default:
		auth = &amqp.AMQPlainAuth{Username: h.Username, Password: h.Password}
	}
	cfg := amqp.Config{
		SASL:       []amqp.Authentication{auth},
		Vhost:      d.vhost,
		ChannelMax: 2047,
		FrameSize:  131072,
		// amqp091-go cannot refuse heartbeats: a threshold of 0 (Python:
		// none) takes the server's interval instead.
		Heartbeat:  time.Duration(d.opts.HeartbeatTimeoutThreshold) * time.Second,
		Properties: amqp.Table(ClientProperties(ConnectionName(d.program, os.Getpid(), NewUUID4())).Table()),
		Locale:     "en_US",
	}
	scheme := "amqp"
	if d.tls != nil {
		scheme = "amqps"
		tc := d.tls.Clone()
		if !tc.InsecureSkipVerify {
			tc.ServerName = h.Host
		}
		cfg.TLSClientConfig = tc
	}
	const handshake = 30 * time.Second
	cfg.Dial = func(network, addr string) (net.Conn, error) {
		var nd net.Dialer
		dctx, cancel := context.WithTimeout(ctx, handshake)
		defer cancel()
		c, err := nd.DialContext(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		dl := time.Now().Add(handshake)
		if t, ok := ctx.Deadline(); ok && t.Before(dl) {
			dl = t
		}
		if err := c.SetDeadline(dl); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	u := (&url.URL{Scheme: scheme, Host: net.JoinHostPort(h.Host, strconv.Itoa(h.Port)), Path: "/"}).String()
	type result struct {
		c   *amqp.Connection
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := amqp.DialConfig(u, cfg)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("rabbit driver: connect to %s: %w", h.Addr(), r.err)
		}
		return r.c, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				closeConn(r.c)
			}
		}()
		return nil, ctx.Err()
	}
}

// backoff is the wait before reconnection attempt n (0-based, §3):
// kombu_reconnect_delay (+ random splay) plus rabbit_retry_interval grown
// by rabbit_retry_backoff per attempt, capped at rabbit_interval_max. The
// first attempt after a working connection is made at once.
func (d *dialer) backoff(n int) time.Duration {
	if n == 0 {
		return 0
	}
	o := d.opts
	s := o.KombuReconnectDelay
	if o.KombuReconnectSplay > 0 {
		s += rand.Float64() * o.KombuReconnectSplay
	}
	iv := o.RabbitRetryInterval + (n-1)*o.RabbitRetryBackoff
	if o.RabbitIntervalMax > 0 && iv > o.RabbitIntervalMax {
		iv = o.RabbitIntervalMax
	}
	if iv < 0 {
		iv = 0
	}
	return time.Duration((s + float64(iv)) * float64(time.Second))
}

// connect dials until a broker accepts, walking the cursor's hosts with
// the back-off between attempts; it ends with ctx. A publish with a retry
// bound (retryBound) dials once: its own loop counts the tries.
func (d *dialer) connect(ctx context.Context, cur *hostCursor, what string) (*amqp.Connection, error) {
	for n := 0; ; n++ {
		if w := d.backoff(n); w > 0 {
			if err := sleepCtx(ctx, w); err != nil {
				return nil, err
			}
		}
		h := cur.pick()
		c, err := d.dialHost(ctx, h)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if _, bounded := retryBound(ctx); bounded {
			return nil, err
		}
		var ae *amqp.Error
		if errors.As(err, &ae) && (ae.Code == amqp.AccessRefused || ae.Code == amqp.NotAllowed) {
			d.log.Error("rabbit driver: broker refused the login", "what", what, "host", h.Addr(), "vhost", d.vhost, "err", err)
		} else {
			d.log.Warn("rabbit driver: cannot connect, retrying", "what", what, "host", h.Addr(), "attempt", n+1, "err", err)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// blockGate records connection.blocked / unblocked (§11.2): publishers
// wait on it, bounded by their context.
type blockGate struct {
	mu      sync.Mutex
	blocked chan struct{} // non-nil and open while blocked
	reason  string
}

func (g *blockGate) set(b amqp.Blocking) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if b.Active {
		if g.blocked == nil {
			g.blocked = make(chan struct{})
			g.reason = b.Reason
		}
		return
	}
	if g.blocked != nil {
		close(g.blocked)
		g.blocked = nil
	}
}

func (g *blockGate) clear() { g.set(amqp.Blocking{Active: false}) }

// wait returns when the connection is not blocked, or ctx's error.
func (g *blockGate) wait(ctx context.Context, log *slog.Logger) error {
	g.mu.Lock()
	ch, reason := g.blocked, g.reason
	g.mu.Unlock()
	if ch == nil {
		return nil
	}
	log.Warn("rabbit driver: the broker blocked the connection; waiting before publishing", "reason", reason)
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rabbit driver: connection blocked by the broker (%s): %w", reason, ctx.Err())
	}
}

// isDurableMismatch is RabbitMQ's 406 for an exchange or queue that exists
// with the other durable flag (§10.2).
func isDurableMismatch(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == amqp.PreconditionFailed && strings.Contains(ae.Reason, "inequivalent arg 'durable'")
}

// declare sends one setup command on ch.
func declare(ch *amqp.Channel, c Command) error {
	switch {
	case c.QoS != nil:
		return ch.Qos(c.QoS.PrefetchCount, 0, false)
	case c.Exchange != nil:
		e := c.Exchange
		return ch.ExchangeDeclare(e.Name, e.Kind, e.Durable, e.AutoDelete, false, false, nil)
	case c.Queue != nil:
		q := c.Queue
		_, err := ch.QueueDeclare(q.Name, q.Durable, q.AutoDelete, false, false, amqp.Table(q.Args.Table()))
		return err
	case c.Bind != nil:
		b := c.Bind
		return ch.QueueBind(b.Queue, b.RoutingKey, b.Exchange, false, nil)
	}
	return fmt.Errorf("rabbit driver: unexpected command %s", c.Method())
}

// nondurable returns c with durable false on its exchange or queue (the
// fallback of §10.2).
func nondurable(c Command) Command {
	switch {
	case c.Exchange != nil:
		e := *c.Exchange
		e.Durable = false
		return Command{Exchange: &e}
	case c.Queue != nil:
		q := *c.Queue
		q.Durable = false
		return Command{Queue: &q}
	}
	return c
}

// amqpProps converts Properties to a publishing.
func amqpPublishing(p Properties, body []byte) amqp.Publishing {
	h := amqp.Table(p.Headers.Table())
	if h == nil {
		// amqp091-go omits an empty headers table (Python sends {} with
		// the flag bit set): nothing a receiver can tell apart.
		h = amqp.Table{}
	}
	return amqp.Publishing{
		ContentType:     p.ContentType,
		ContentEncoding: p.ContentEncoding,
		Headers:         h,
		DeliveryMode:    p.DeliveryMode,
		Priority:        p.Priority,
		Expiration:      p.Expiration,
		Body:            body,
	}
}

// deliveryProps reads the properties a receiver looks at.
func deliveryProps(d *amqp.Delivery) Properties {
	p := Properties{ContentType: d.ContentType, ContentEncoding: d.ContentEncoding, DeliveryMode: d.DeliveryMode,
		Priority: d.Priority, Expiration: d.Expiration}
	if c, ok := d.Headers[CompressionHeader]; ok {
		p.Headers = Args{{CompressionHeader, c}}
	}
	return p
}

// closeConn closes a connection without waiting long for close-ok: a
// broker that blocked the connection (§11.2) reads nothing, close-ok
// included.
func closeConn(c *amqp.Connection) {
	if c != nil {
		_ = c.CloseDeadline(time.Now().Add(2 * time.Second))
	}
}
