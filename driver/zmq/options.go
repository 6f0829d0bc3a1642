package zmq

import (
	"fmt"
	"log/slog"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/goslo/goslo/compat"
)

// Options configure the zmq driver; the names follow [oslo_messaging_zmq].
type Options struct {
	Host            string // rpc_zmq_host: advertised host
	BindAddress     string // rpc_zmq_bind_address
	MinPort         int    // rpc_zmq_min_port
	MaxPort         int    // rpc_zmq_max_port (exclusive)
	BindRetries     int    // rpc_zmq_bind_port_retries
	TargetExpire    time.Duration
	TargetUpdate    time.Duration
	ResponseTimeout time.Duration // rpc_response_timeout: a CALL's default timeout
	// Workers is executor_thread_pool_size ([DEFAULT], default 64): the
	// handlers a server runs at once (0: 64).
	Workers int
	// Dynamic is use_dynamic_connections: a new DEALER per message,
	// connected to the next host of the key plus the first Failover hosts
	// (zmq_failover_connections), closed after the send (after the reply
	// for a CALL).
	Dynamic  bool
	Failover int
	HWM      int // send/receive high-water mark of every socket
	// MaxMessageSize bounds one received message (ZMQ_MAXMSGSIZE); a peer
	// that sends more is disconnected by libzmq. Default 64 MiB.
	MaxMessageSize int64
	// Socket is what oslo's ZmqSocket sets on every socket: zmq_linger and
	// the zmq_tcp_keepalive options.
	Socket SocketOptions
	Logger *slog.Logger

	// RouterProxy is use_router_proxy: CALL/CAST (and, without PubSub,
	// fanout and notify) go through the proxies of PUBLISHERS; servers
	// connect a DEALER to every ROUTERS record and register it as
	// DEALER/<topic>[/<server>].
	RouterProxy bool
	// PubSub is use_pub_sub: fanout and notify go as one message to one
	// proxy, which publishes them; servers add a SUB consumer.
	PubSub bool
	// SubscribeOn (subscribe_on) replaces the publishers of PUBLISHERS as
	// the addresses SUB consumers connect to.
	SubscribeOn []string
	// Immediate is zmq_immediate, for the proxy-mode DEALERs.
	Immediate bool
	// Acks is rpc_use_acks (proxy mode only): servers ack CALL and CAST on
	// receipt and drop duplicates within MessageTTL; clients resend an
	// unacked CALL or CAST after AckTimeout × AckMultiplier^n, at most
	// RetryAttempts times (negative: for ever).
	Acks          bool
	MessageTTL    time.Duration
	AckTimeout    time.Duration
	AckMultiplier int
	RetryAttempts int
	// MaxTracked bounds the messages a proxy-mode client tracks for acks
	// (beyond it, new messages are sent untracked, with a warning).
	MaxTracked int
	// Observer, when set, is told of every message sent, received and
	// dropped, and of every CALL's latency (see the metrics package).
	Observer Observer

	// MinReplyDelay (goslo only, default 0: off; at most MaxMinReplyDelay)
	// makes a server hold each CALL's reply until that long after its
	// request was read: a workaround for oslo.messaging 8.1.4's Python
	// client, which tracks a CALL only after sending it and drops a reply
	// that comes first (the call then times out). The handler's worker
	// waits out the rest of the delay in Request.Reply, so every CALL
	// takes at least MinReplyDelay and, at saturation, a server answers at
	// most Workers/MinReplyDelay calls per second; handlers slower than
	// the delay pay nothing. docs/interop.md gives the loss rates.
	MinReplyDelay time.Duration
}

// MaxMinReplyDelay bounds Options.MinReplyDelay: a hold beyond it is an
// outage, not a workaround.
const MaxMinReplyDelay = time.Second

// SocketOptions are the options oslo 8.1.4's ZmqSocket sets on every
// socket (zmq_socket.py), with its meanings.
type SocketOptions struct {
	// Linger is zmq_linger (ZMQ_LINGER): how long a closed socket keeps
	// trying to send what it still holds; 0: it is discarded at once.
	// oslo's -1 (for ever) is bounded at ForeverLinger, so that Close
	// returns: terminating the zmq context waits for every closed socket's
	// linger. Sockets of CALLs discard at once, as their caller has given
	// up.
	Linger time.Duration
	// TCPKeepalive is zmq_tcp_keepalive (ZMQ_TCP_KEEPALIVE): negative
	// leaves the OS default, 0 turns keepalive off, positive on.
	TCPKeepalive int
	// TCPKeepaliveIdle, TCPKeepaliveCnt and TCPKeepaliveIntvl are
	// zmq_tcp_keepalive_idle, _cnt and _intvl (ZMQ_TCP_KEEPALIVE_IDLE, _CNT,
	// _INTVL, in the OS's unit: seconds on Linux); 0 or negative leaves the
	// OS default.
	TCPKeepaliveIdle, TCPKeepaliveCnt, TCPKeepaliveIntvl int
}

// ForeverLinger is what zmq_linger -1 (for ever, oslo's default) means in
// goslo: a closed socket keeps sending what it holds for this long. oslo
// 8.1.4 blocks its cleanup for good on a message no peer takes; goslo's
// Close is bounded instead.
const ForeverLinger = time.Second

// SocketOptionsFrom takes the socket options from a compat.Config.
func SocketOptionsFrom(c *compat.Config) SocketOptions {
	z := c.ZMQ
	linger := ForeverLinger
	if z.ZMQLinger >= 0 {
		linger = time.Duration(z.ZMQLinger) * time.Second
	}
	return SocketOptions{Linger: linger, TCPKeepalive: z.ZMQTCPKeepalive,
		TCPKeepaliveIdle: z.ZMQTCPKeepaliveIdle, TCPKeepaliveCnt: z.ZMQTCPKeepaliveCnt, TCPKeepaliveIntvl: z.ZMQTCPKeepaliveIntvl}
}

// apply sets the options on s as oslo does: ZMQ_LINGER always;
// ZMQ_TCP_KEEPALIVE to -1, 0 or 1 and the others to their value or -1,
// each only when not -1 (libzmq's default, the OS's settings).
func (o SocketOptions) apply(s *zmq.Socket) error {
	linger := o.Linger
	if linger < 0 {
		linger = ForeverLinger
	}
	if err := s.SetLinger(linger); err != nil {
		return err
	}
	ka := -1
	switch {
	case o.TCPKeepalive == 0:
		ka = 0
	case o.TCPKeepalive > 0:
		ka = 1
	}
	for _, v := range []struct {
		name string
		n    int
		set  func(int) error
	}{
		{"zmq_tcp_keepalive", ka, s.SetTcpKeepalive},
		{"zmq_tcp_keepalive_idle", o.TCPKeepaliveIdle, s.SetTcpKeepaliveIdle},
		{"zmq_tcp_keepalive_cnt", o.TCPKeepaliveCnt, s.SetTcpKeepaliveCnt},
		{"zmq_tcp_keepalive_intvl", o.TCPKeepaliveIntvl, s.SetTcpKeepaliveIntvl},
	} {
		if v.n < 0 || (v.n == 0 && v.name != "zmq_tcp_keepalive") {
			continue
		}
		if err := v.set(v.n); err != nil {
			return fmt.Errorf("driver: %s = %d: %w", v.name, v.n, err)
		}
	}
	return nil
}

// OptionsFrom takes the driver options from a compat.Config.
func OptionsFrom(c *compat.Config) Options {
	return Options{
		Host: c.ZMQ.RPCZMQHost, BindAddress: c.ZMQ.RPCZMQBindAddress,
		MinPort: c.ZMQ.RPCZMQMinPort, MaxPort: c.ZMQ.RPCZMQMaxPort, BindRetries: c.ZMQ.RPCZMQBindPortRetries,
		TargetExpire:    time.Duration(c.ZMQ.ZMQTargetExpire) * time.Second,
		TargetUpdate:    time.Duration(c.ZMQ.ZMQTargetUpdate) * time.Second,
		ResponseTimeout: time.Duration(c.Default.RPCResponseTimeout) * time.Second,
		Workers:         c.Default.ExecutorThreadPoolSize, HWM: 100000,
		Socket:        SocketOptionsFrom(c),
		Dynamic:       c.ZMQ.UseDynamicConnections,
		Failover:      c.ZMQ.ZMQFailoverConnections,
		RouterProxy:   c.ZMQ.UseRouterProxy,
		PubSub:        c.ZMQ.UsePubSub,
		SubscribeOn:   append([]string(nil), c.ZMQ.SubscribeOn...),
		Immediate:     c.ZMQ.ZMQImmediate,
		Acks:          c.ZMQ.RPCUseAcks,
		MessageTTL:    time.Duration(c.ZMQ.RPCMessageTTL) * time.Second,
		AckTimeout:    time.Duration(c.ZMQ.RPCAckTimeoutBase) * time.Second,
		AckMultiplier: c.ZMQ.RPCAckTimeoutMultiplier,
		RetryAttempts: c.ZMQ.RPCRetryAttempts,
	}
}
