package zmq

import (
	"fmt"
	"log/slog"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// A frame larger than MaxMessageSize (ZMQ_MAXMSGSIZE) never reaches
// goslo: libzmq's decoder refuses it and drops the connection it came on,
// and says nothing to the application but the socket monitor's
// ZMQ_EVENT_DISCONNECTED. libzmq 4.3 emits that same event when a peer
// closes its end, and no event or detail tells the two apart, so goslo
// logs and counts every connection a listening socket loses (the server's
// ROUTER, the proxy's ROUTERs): a rising count with peers that did not
// go away points at oversized frames. Whole messages over the bound are
// caught by recvMessage (ErrTooLarge) and counted as dropped, "oversized".

// disconnectLogEvery spaces watchDisconnects' log lines.
const disconnectLogEvery = 10 * time.Second

// DisconnectObserver is an Observer that also counts the connections a
// listening socket lost: closed by the peer, or dropped by libzmq for a
// frame over MaxMessageSize. The metrics package implements it.
type DisconnectObserver interface {
	Disconnected(socket string)
}

// watchDisconnects counts (count may be nil) and logs (at most once per
// disconnectLogEvery, with the number since) each connection libzmq ends
// on s. It stops by itself when s is closed (libzmq then sends
// ZMQ_EVENT_MONITOR_STOPPED) or its context is terminated.
func watchDisconnects(zctx *zmq.Context, s *zmq.Socket, name string, maxMsg int64, log *slog.Logger, count func()) error {
	ep := fmt.Sprintf("inproc://goslo-monitor-%d", monSeq.Add(1))
	if err := s.Monitor(ep, zmq.EVENT_DISCONNECTED|zmq.EVENT_MONITOR_STOPPED); err != nil {
		return err
	}
	m, err := zctx.NewSocket(zmq.PAIR)
	if err != nil {
		_ = s.Monitor("", 0)
		return err
	}
	if err := m.Connect(ep); err != nil {
		m.Close()
		_ = s.Monitor("", 0)
		return err
	}
	go func() {
		defer m.Close()
		var last time.Time // of the last log line
		unlogged := 0      // connections ended since
		for {
			ev, addr, _, err := m.RecvEvent(0)
			if err != nil {
				if zmq.AsErrno(err) == errnoIntr {
					continue
				}
				return
			}
			switch ev {
			case zmq.EVENT_MONITOR_STOPPED:
				return
			case zmq.EVENT_DISCONNECTED:
				if count != nil {
					count()
				}
				// Every one is counted; the log says so at most once per
				// disconnectLogEvery, with how many ended since (a peer per
				// message in dynamic mode would otherwise flood it).
				unlogged++
				if now := time.Now(); now.Sub(last) >= disconnectLogEvery {
					log.Info("driver: a peer's connection ended (the peer closed it, or libzmq dropped it for a frame over max_message_size)",
						"socket", name, "endpoint", addr, "max_message_size", maxMsg, "connections_ended", unlogged)
					last, unlogged = now, 0
				}
			}
		}
	}()
	return nil
}

// dropped counts a message a socket gave up whole, before its type was
// known (a loop's onDrop).
func (d *ZMQ) dropped(reason string) {
	if obs := d.opts.Observer; obs != nil {
		obs.Dropped(0, reason)
	}
}

// recvDropped logs and counts a message recvMessage gave up whole on a
// socket read outside a loop (a CALL's own socket); it reports whether err
// was such a drop.
func (d *ZMQ) recvDropped(err error, where string) bool {
	reason := dropReason(err)
	if reason == "" {
		return false
	}
	d.log.Warn("driver: dropping a message", "socket", where, "reason", reason, "err", err)
	d.dropped(reason)
	return true
}

// disconnectCounter is what watchDisconnects counts with for a driver.
func (d *ZMQ) disconnectCounter(name string) func() {
	o, ok := d.opts.Observer.(DisconnectObserver)
	if !ok {
		return nil
	}
	return func() { o.Disconnected(name) }
}
