package zmq

import (
	"encoding/binary"
	"fmt"
	"maps"

	zmq "github.com/pebbe/zmq4"

	"github.com/goslo/goslo/internal/zmqwire"
)

// The client loop's DEALERs that carry CALLs (muxCall) watch their
// connections as the pooled CALL sockets do (see roundTrip): each CALL
// sent on one records the connections up at the send (its carriers);
// connections made later join them, connections that end leave them. When
// a CALL's carriers are all gone without its reply, the loop tells its
// caller (muxWait.lost) the hosts whose connections are down, and the
// caller decides as roundTrip does: sent again when none of them is
// registered any more (a clean stop: the request was not read), a
// *ServerGoneError when none came back within reconnectGrace.

// muxWait is a CALL sent on a watched loop DEALER (loop only).
type muxWait struct {
	dk       string          // the DEALER's key in client.dealers
	carriers map[string]bool // endpoints ("tcp://host:port") that may carry it or its reply
	lost     chan []string   // buffered 1; told the hosts down once carriers is empty
	told     bool
}

// watchDealer starts the monitor of a new loop DEALER, before it connects
// anywhere (loop only).
func (c *client) watchDealer(dk string, dl *dealer) error {
	ep := fmt.Sprintf("inproc://goslo-monitor-%d", monSeq.Add(1))
	if err := dl.s.Monitor(ep, zmq.EVENT_CONNECTED|zmq.EVENT_DISCONNECTED); err != nil {
		return err
	}
	m, err := c.d.zctx.NewSocket(zmq.PAIR)
	if err == nil {
		_ = m.SetLinger(0)
		if err = m.Connect(ep); err != nil {
			m.Close()
		}
	}
	if err != nil {
		_ = dl.s.Monitor("", 0)
		return err
	}
	dl.mon, dl.linked, dl.down = m, map[string]bool{}, map[string]bool{}
	c.l.addReader(m, func(frames [][]byte) { c.onDealerEvent(dk, frames) })
	return nil
}

// onDealerEvent applies one monitor event of the DEALER dk (loop only).
func (c *client) onDealerEvent(dk string, frames [][]byte) {
	dl := c.dealers[dk]
	if dl == nil || dl.linked == nil || len(frames) != 2 || len(frames[0]) < 6 {
		return
	}
	ev, addr := zmq.Event(binary.NativeEndian.Uint16(frames[0][:2])), string(frames[1])
	switch ev {
	case zmq.EVENT_CONNECTED:
		dl.linked[addr] = true
		delete(dl.down, addr)
		for _, w := range c.muxWaits {
			if w.dk == dk {
				w.carriers[addr] = true
			}
		}
	case zmq.EVENT_DISCONNECTED:
		delete(dl.linked, addr)
		dl.down[addr] = true
		for _, w := range c.muxWaits {
			if w.dk == dk {
				delete(w.carriers, addr)
				c.tellLost(w, dl)
			}
		}
	}
}

// events applies the monitor events of dl that are in (loop only).
func (c *client) dealerEvents(dk string, dl *dealer) {
	for {
		msg, err := recvMessage(dl.mon, zmq.DONTWAIT)
		if err != nil {
			return
		}
		c.onDealerEvent(dk, msg)
	}
}

// watchCall records the carriers of a CALL just sent on dl (loop only).
func (c *client) watchCall(o *outgoing, dl *dealer) {
	if dl.mon == nil || o.lost == nil {
		return
	}
	w := &muxWait{dk: o.key, carriers: maps.Clone(dl.linked), lost: o.lost}
	c.muxWaits[o.id] = w
	// A connection's pipe is attached only after its EVENT_CONNECTED is
	// out: one the request may have taken is in the monitor's queue.
	c.dealerEvents(o.key, dl)
	c.tellLost(w, dl)
}

// tellLost tells w's caller, once, that every carrier of its CALL ended.
func (c *client) tellLost(w *muxWait, dl *dealer) {
	if w.told || len(w.carriers) > 0 || len(dl.down) == 0 {
		return
	}
	w.told = true
	hosts := make([]string, 0, len(dl.down))
	for ep := range dl.down {
		hosts = append(hosts, zmqwire.TCPHost(ep))
	}
	select {
	case w.lost <- hosts:
	default:
	}
}

// cameBack reports whether a connection of id's CALL is up again, and if
// so re-arms its loss notice (loop only).
func (c *client) cameBack(id string) bool {
	w := c.muxWaits[id]
	if w == nil || len(w.carriers) == 0 {
		return false
	}
	w.told = false
	return true
}

// dropHosts disconnects the DEALER dk from hosts that are gone for good
// (unregistered): a connection still closing could otherwise take the
// request again (loop only).
func (c *client) dropHosts(dk string, hosts []string) {
	dl := c.dealers[dk]
	if dl == nil {
		return
	}
	for _, h := range hosts {
		if dl.hosts[h] {
			_ = dl.s.Disconnect(zmqwire.TCPAddress(h))
			delete(dl.hosts, h)
		}
		delete(dl.down, zmqwire.TCPAddress(h))
		delete(dl.linked, zmqwire.TCPAddress(h))
	}
}
