package rawamqp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/goslo/goslo/compat"
)

// Exchange is the control exchange of the reference's defaults.
const Exchange = "openstack"

// ReplyQueueExpires is the reply queue's x-expires (rabbit_transient_queues_ttl
// 1800 s), an int32 so that amqp091-go encodes it as field type I, as py-amqp does.
const ReplyQueueExpires int32 = 1800000

// AMQPURL turns an oslo transport URL (rabbit://user:pass@host:port/vhost;
// kombu:// too) into amqp091-go's amqp:// form. Only the first host is
// used; the query (oslo options) is dropped. The vhost rules agree: an
// empty path is the default vhost "/", "/nova" is "nova", "/%2Fnova" is
// "/nova".
func AMQPURL(transportURL string) (string, error) {
	u, err := url.Parse(transportURL)
	if err != nil {
		// url.Error quotes the whole URL, password included.
		var ue *url.Error
		if errors.As(err, &ue) {
			return "", fmt.Errorf("rawamqp: invalid URL %q: %w", compat.RedactURL(transportURL), ue.Err)
		}
		return "", fmt.Errorf("rawamqp: invalid URL %q", compat.RedactURL(transportURL))
	}
	switch u.Scheme {
	case "rabbit", "kombu", "amqp":
	default:
		return "", fmt.Errorf("rawamqp: not a rabbit URL: %q", compat.RedactURL(transportURL))
	}
	u.Scheme = "amqp"
	if i := strings.IndexByte(u.Host, ','); i >= 0 {
		u.Host = u.Host[:i]
	}
	if u.Host == "" {
		u.Host = "localhost:5672"
	}
	u.RawQuery = ""
	return u.String(), nil
}

// IsRabbitURL reports whether s names the rabbit driver.
func IsRabbitURL(s string) bool {
	return strings.HasPrefix(s, "rabbit://") || strings.HasPrefix(s, "kombu://")
}

func dial(transportURL, name string) (*amqp.Connection, error) {
	u, err := AMQPURL(transportURL)
	if err != nil {
		return nil, err
	}
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(name)
	return amqp.DialConfig(u, amqp.Config{Heartbeat: 60 * time.Second, Properties: props})
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// idGen makes 32-hex ids like uuid4().hex cheaply: a random prefix and a counter.
type idGen struct {
	prefix string
	n      atomic.Uint64
}

func newIDGen() *idGen { return &idGen{prefix: newID()[:16]} }

func (g *idGen) next() string {
	var b [16]byte
	n := g.n.Add(1)
	for i := 15; i >= 0; i-- {
		b[i] = "0123456789abcdef"[n&15]
		n >>= 4
	}
	return g.prefix + string(b[:])
}

// Body markers the echo searches for instead of decoding JSON. They are
// the keys as they appear inside the envelope's oslo.message string.
var (
	keyArgs    = []byte(`\"args\": `)
	keyMsgID   = []byte(`, \"_msg_id\": \"`)
	keyReplyQ  = []byte(`\"_reply_q\": \"`)
	keyStats   = []byte(`{\"method\": \"bench_stats\"`)
	envelopeHd = `{"oslo.version": "2.0", "oslo.message": "`
)

// field returns the bytes after key up to the next `\"`.
func field(body, key []byte) []byte {
	i := bytes.Index(body, key)
	if i < 0 {
		return nil
	}
	rest := body[i+len(key):]
	j := bytes.Index(rest, []byte(`\"`))
	if j < 0 {
		return nil
	}
	return rest[:j]
}

// requestBody is an oslo 2.0 envelope of an RPC request (rabbit-wire.md
// §7.3 key order); msgID and replyQ are empty for a cast.
func requestBody(method, args, msgID, replyQ, unique string) []byte {
	var b bytes.Buffer
	b.Grow(256 + len(args))
	b.WriteString(envelopeHd)
	b.WriteString(`{\"method\": \"`)
	b.WriteString(method)
	b.WriteString(`\", \"args\": `)
	b.WriteString(args)
	if msgID != "" {
		b.WriteString(`, \"_msg_id\": \"`)
		b.WriteString(msgID)
		b.WriteString(`\", \"_reply_q\": \"`)
		b.WriteString(replyQ)
		b.WriteString(`\", \"_timeout\": null`)
	}
	b.WriteString(`, \"_unique_id\": \"`)
	b.WriteString(unique)
	b.WriteString(`\", \"_context_user\": \"bench\"}"}`)
	return b.Bytes()
}

// replyBody is an oslo 2.0 envelope of a successful reply (§7.4); result
// is already in the escaped form of the inner string.
func replyBody(result, msgID []byte, unique string) []byte {
	var b bytes.Buffer
	b.Grow(160 + len(result))
	b.WriteString(envelopeHd)
	b.WriteString(`{\"result\": `)
	b.Write(result)
	b.WriteString(`, \"failure\": null, \"ending\": true, \"_msg_id\": \"`)
	b.Write(msgID)
	b.WriteString(`\", \"_unique_id\": \"`)
	b.WriteString(unique)
	b.WriteString(`\"}"}`)
	return b.Bytes()
}

// ServerOptions configures StartServer.
type ServerOptions struct {
	URL, Topic, Server string
	// ReplyChannels is the number of reply channels, each with one
	// outstanding confirm (default 30, as rpc_conn_pool_size).
	ReplyChannels int
}

// Server is the raw echo RPC server.
type Server struct {
	listen, send *amqp.Connection
	received     atomic.Int64
	replied      atomic.Int64
	returned     atomic.Int64
	replyErrs    atomic.Int64
	ids          *idGen
	wg           sync.WaitGroup
	closeOnce    sync.Once
}

type replyJob struct {
	replyQ string
	body   []byte
}

// StartServer declares the server's topology and starts consuming.
func StartServer(o ServerOptions) (*Server, error) {
	if o.Topic == "" || o.Server == "" {
		return nil, errors.New("rawamqp: a server needs a topic and a server name")
	}
	if o.ReplyChannels <= 0 {
		o.ReplyChannels = 30
	}
	s := &Server{ids: newIDGen()}
	var err error
	if s.listen, err = dial(o.URL, "goslo-rawamqp-server:listen"); err != nil {
		return nil, err
	}
	if s.send, err = dial(o.URL, "goslo-rawamqp-server:send"); err != nil {
		_ = s.listen.Close()
		return nil, err
	}
	fail := func(err error) (*Server, error) {
		s.Close()
		return nil, err
	}
	ch, err := s.listen.Channel()
	if err != nil {
		return fail(err)
	}
	name := o.Topic + "." + o.Server
	if err := ch.ExchangeDeclare(Exchange, amqp.ExchangeTopic, false, false, false, false, nil); err != nil {
		return fail(err)
	}
	if _, err := ch.QueueDeclare(name, false, false, false, false, amqp.Table{}); err != nil {
		return fail(err)
	}
	if err := ch.QueueBind(name, name, Exchange, false, amqp.Table{}); err != nil {
		return fail(err)
	}
	replyChans := make([]*amqp.Channel, o.ReplyChannels)
	for i := range replyChans {
		c, err := s.send.Channel()
		if err != nil {
			return fail(err)
		}
		if err := c.Confirm(false); err != nil {
			return fail(err)
		}
		// Mandatory replies to a vanished reply queue come back as
		// basic.return (then basic.ack); the baseline counts them.
		rets := c.NotifyReturn(make(chan amqp.Return, 16))
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for range rets {
				s.returned.Add(1)
			}
		}()
		replyChans[i] = c
	}
	deliveries, err := ch.Consume(name, "1", false, false, false, false, amqp.Table{})
	if err != nil {
		return fail(err)
	}
	jobs := make(chan replyJob, 1024)
	for _, c := range replyChans {
		s.wg.Add(1)
		go func(c *amqp.Channel) {
			defer s.wg.Done()
			for j := range jobs {
				s.reply(c, j)
			}
		}(c)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(jobs)
		for d := range deliveries {
			// Acked on receipt, single, before anything else (§8.1).
			if err := d.Ack(false); err != nil {
				continue
			}
			s.handle(d.Body, jobs)
		}
	}()
	return s, nil
}

func (s *Server) handle(body []byte, jobs chan<- replyJob) {
	stats := bytes.Contains(body, keyStats)
	if !stats {
		s.received.Add(1)
	}
	msgID := field(body, keyMsgID)
	if msgID == nil {
		return // a cast
	}
	replyQ := field(body, keyReplyQ)
	var result []byte
	if stats {
		result = []byte(`{\"received\": ` + strconv.FormatInt(s.received.Load(), 10) + `}`)
	} else if i := bytes.Index(body, keyArgs); i >= 0 {
		// The echo's result is the request's args, copied as they are.
		rest := body[i+len(keyArgs):]
		if j := bytes.Index(rest, keyMsgID); j >= 0 {
			result = rest[:j]
		}
	}
	if result == nil {
		result = []byte("null")
	}
	jobs <- replyJob{replyQ: string(replyQ), body: replyBody(result, msgID, s.ids.next())}
}

func (s *Server) reply(c *amqp.Channel, j replyJob) {
	dc, err := c.PublishWithDeferredConfirm("", j.replyQ, true, false, amqp.Publishing{
		ContentType:     "application/json",
		ContentEncoding: "utf-8",
		DeliveryMode:    amqp.Persistent,
		Body:            j.body,
	})
	if err != nil || !dc.Wait() {
		s.replyErrs.Add(1)
		return
	}
	s.replied.Add(1)
}

// Received counts the echo requests (calls and casts) the server got.
func (s *Server) Received() int64 { return s.received.Load() }

// Stats reports the replies confirmed, returned by the broker (no reply
// queue) and failed.
func (s *Server) Stats() (replied, returned, failed int64) {
	return s.replied.Load(), s.returned.Load(), s.replyErrs.Load()
}

// Close closes both connections (not cancelling the consumer, as the
// reference does not) and waits for the server's goroutines.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		if s.listen != nil {
			_ = s.listen.Close()
		}
		if s.send != nil {
			_ = s.send.Close()
		}
		s.wg.Wait()
	})
}

// ClientOptions configures Dial.
type ClientOptions struct {
	URL, Topic, Server string
	// Timeout of a call: the message's expiration and how long the caller
	// waits for the reply (default 30 s).
	Timeout time.Duration
}

// Client is the raw RPC client: one reply queue, one sending connection.
type Client struct {
	o              ClientOptions
	listen, send   *amqp.Connection
	ReplyQueue     string
	key            string
	expiration     string
	ids            *idGen
	mu             sync.Mutex
	waiting        map[string]chan []byte
	wg             sync.WaitGroup
	closeOnce      sync.Once
	statsCaller    *Caller
	statsCallerErr error
	statsOnce      sync.Once
}

// Dial connects the client and declares and consumes its reply queue.
func Dial(o ClientOptions) (*Client, error) {
	if o.Topic == "" || o.Server == "" {
		return nil, errors.New("rawamqp: a client needs a topic and a server name")
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	c := &Client{o: o, ReplyQueue: "reply_" + newID(), key: o.Topic + "." + o.Server,
		expiration: strconv.FormatInt(o.Timeout.Milliseconds(), 10), ids: newIDGen(),
		waiting: map[string]chan []byte{}}
	var err error
	if c.listen, err = dial(o.URL, "goslo-rawamqp-client:listen"); err != nil {
		return nil, err
	}
	if c.send, err = dial(o.URL, "goslo-rawamqp-client:send"); err != nil {
		_ = c.listen.Close()
		return nil, err
	}
	fail := func(err error) (*Client, error) {
		c.Close()
		return nil, err
	}
	ch, err := c.listen.Channel()
	if err != nil {
		return fail(err)
	}
	if _, err := ch.QueueDeclare(c.ReplyQueue, false, false, false, false, amqp.Table{"x-expires": ReplyQueueExpires}); err != nil {
		return fail(err)
	}
	deliveries, err := ch.Consume(c.ReplyQueue, "1", false, false, false, false, amqp.Table{})
	if err != nil {
		return fail(err)
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for d := range deliveries {
			_ = d.Ack(false) // each reply acked on receipt (§9.1)
			id := field(d.Body, keyMsgID)
			c.mu.Lock()
			w := c.waiting[string(id)]
			delete(c.waiting, string(id))
			c.mu.Unlock()
			if w != nil {
				w <- d.Body
			} // else: a late reply, dropped as the reference does
		}
	}()
	return c, nil
}

// Close closes the client's connections. The reply queue stays until its
// x-expires, as the reference's does.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		if c.listen != nil {
			_ = c.listen.Close()
		}
		if c.send != nil {
			_ = c.send.Close()
		}
		c.wg.Wait()
	})
}

// Caller is one caller's channel on the client's sending connection; use
// one per goroutine.
type Caller struct {
	c       *Client
	ch      *amqp.Channel
	confirm bool
}

// Caller opens a channel for one caller, declares the exchange on it and,
// with confirm, puts it in confirm mode. Calls always wait for confirms
// (the reference's sending channels are always in confirm mode); confirm
// false is for the cast mode without confirms.
func (c *Client) Caller(confirm bool) (*Caller, error) {
	ch, err := c.send.Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.ExchangeDeclare(Exchange, amqp.ExchangeTopic, false, false, false, false, nil); err != nil {
		_ = ch.Close()
		return nil, err
	}
	if confirm {
		if err := ch.Confirm(false); err != nil {
			_ = ch.Close()
			return nil, err
		}
	}
	return &Caller{c: c, ch: ch, confirm: confirm}, nil
}

// Close closes the caller's channel.
func (k *Caller) Close() { _ = k.ch.Close() }

func (k *Caller) publish(ctx context.Context, body []byte, expiration string) error {
	p := amqp.Publishing{
		ContentType:     "application/json",
		ContentEncoding: "utf-8",
		DeliveryMode:    amqp.Persistent,
		Expiration:      expiration,
		Body:            body,
	}
	if !k.confirm {
		return k.ch.PublishWithContext(ctx, Exchange, k.c.key, false, false, p)
	}
	dc, err := k.ch.PublishWithDeferredConfirmWithContext(ctx, Exchange, k.c.key, false, false, p)
	if err != nil {
		return err
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("rawamqp: publish nacked")
	}
	return nil
}

// ErrTimeout is a call that got no reply within the client's timeout.
var ErrTimeout = errors.New("rawamqp: timed out waiting for a reply")

// Call sends a request of method with args (the JSON object, escaped as
// it appears inside the envelope's string) and returns the reply's body.
func (k *Caller) Call(method, args string) ([]byte, error) {
	c := k.c
	ctx, cancel := context.WithTimeout(context.Background(), c.o.Timeout)
	defer cancel()
	id := c.ids.next()
	w := make(chan []byte, 1)
	c.mu.Lock()
	c.waiting[id] = w
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.waiting, id)
		c.mu.Unlock()
	}
	if err := k.publish(ctx, requestBody(method, args, id, c.ReplyQueue, c.ids.next()), c.expiration); err != nil {
		forget()
		return nil, err
	}
	select {
	case b := <-w:
		return b, nil
	case <-ctx.Done():
		forget()
		return nil, ErrTimeout
	}
}

// Cast sends a request of method with args and waits for nothing but its
// confirm, if the caller has confirms.
func (k *Caller) Cast(method, args string) error {
	ctx, cancel := context.WithTimeout(context.Background(), k.c.o.Timeout)
	defer cancel()
	return k.publish(ctx, requestBody(method, args, "", "", k.c.ids.next()), "")
}

// ServerReceived asks the server how many echo requests it got (a
// bench_stats call, not counted itself).
func (c *Client) ServerReceived() (int64, error) {
	c.statsOnce.Do(func() { c.statsCaller, c.statsCallerErr = c.Caller(true) })
	if c.statsCallerErr != nil {
		return 0, c.statsCallerErr
	}
	b, err := c.statsCaller.Call("bench_stats", "{}")
	if err != nil {
		return 0, err
	}
	var env struct {
		Message string `json:"oslo.message"`
	}
	var msg struct {
		Result struct {
			Received int64 `json:"received"`
		} `json:"result"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return 0, err
	}
	if err := json.Unmarshal([]byte(env.Message), &msg); err != nil {
		return 0, err
	}
	return msg.Result.Received, nil
}

// EscapedArgs is the echo's args object {"data": data} in the escaped form
// that goes inside the envelope's oslo.message string (data is ASCII
// without quotes or backslashes).
func EscapedArgs(data string) string { return `{\"data\": \"` + data + `\"}` }
