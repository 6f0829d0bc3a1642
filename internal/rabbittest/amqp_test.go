package rabbittest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// A minimal AMQP 0-9-1 client for this package's tests: just enough to
// prove the broker works (declare, publish with confirms, get) and to see
// connection.blocked. It is deliberately not shared with the driver.

type frame struct {
	typ     byte
	channel uint16
	payload []byte
}

type amqpConn struct {
	t      testing.TB
	c      net.Conn
	r      *bufio.Reader
	wmu    sync.Mutex
	frames chan frame
	events chan string // "blocked:<reason>", "unblocked", "closed:<code> <text>"
	done   chan struct{}
	seq    uint64
}

func dialAMQP(t testing.TB, addr, vhost string) *amqpConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return handshake(t, c, vhost)
}

func handshake(t testing.TB, c net.Conn, vhost string) *amqpConn {
	t.Helper()
	a := &amqpConn{t: t, c: c, r: bufio.NewReader(c), frames: make(chan frame, 64), events: make(chan string, 16), done: make(chan struct{})}
	if _, err := c.Write([]byte("AMQP\x00\x00\x09\x01")); err != nil {
		t.Fatal(err)
	}
	go a.readLoop()
	t.Cleanup(a.close)
	a.expect(0, 10, 10) // connection.start
	var b buf
	b.table(map[string]any{
		"product":      "goslo-rabbittest",
		"capabilities": map[string]any{"connection.blocked": true, "consumer_cancel_notify": true},
	})
	b.shortstr("PLAIN")
	b.longstr("\x00guest\x00guest")
	b.shortstr("en_US")
	a.method(0, 10, 11, b.Bytes())
	tune := a.expect(0, 10, 30)
	var ok buf
	ok.Write(tune[:6]) // channel-max, frame-max as proposed
	ok.u16(0)          // no heartbeats
	a.method(0, 10, 31, ok.Bytes())
	var open buf
	open.shortstr(vhost)
	open.shortstr("")
	open.WriteByte(0)
	a.method(0, 10, 40, open.Bytes())
	a.expect(0, 10, 41)
	var ch buf
	ch.shortstr("")
	a.method(1, 20, 10, ch.Bytes())
	a.expect(1, 20, 11)
	a.method(1, 85, 10, []byte{0}) // confirm.select
	a.expect(1, 85, 11)
	return a
}

func (a *amqpConn) readLoop() {
	defer close(a.done)
	defer close(a.frames)
	for {
		var h [7]byte
		if _, err := io.ReadFull(a.r, h[:]); err != nil {
			return
		}
		size := binary.BigEndian.Uint32(h[3:])
		p := make([]byte, size+1)
		if _, err := io.ReadFull(a.r, p); err != nil {
			return
		}
		f := frame{typ: h[0], channel: binary.BigEndian.Uint16(h[1:]), payload: p[:size]}
		if f.typ == 1 && len(f.payload) >= 4 {
			cls, m := binary.BigEndian.Uint16(f.payload), binary.BigEndian.Uint16(f.payload[2:])
			switch {
			case cls == 10 && m == 60:
				a.events <- "blocked:" + string(f.payload[5:5+int(f.payload[4])])
				continue
			case cls == 10 && m == 61:
				a.events <- "unblocked"
				continue
			case (cls == 10 || cls == 20) && m == 40:
				code := binary.BigEndian.Uint16(f.payload[4:])
				a.events <- fmt.Sprintf("closed:%d %s", code, f.payload[7:7+int(f.payload[6])])
			}
		}
		if f.typ == 8 {
			continue
		}
		a.frames <- f
	}
}

func (a *amqpConn) close() {
	_ = a.c.Close()
	<-a.done
}

func (a *amqpConn) send(typ byte, channel uint16, payload []byte) {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	var b buf
	b.WriteByte(typ)
	b.u16(channel)
	b.u32(uint32(len(payload)))
	b.Write(payload)
	b.WriteByte(0xCE)
	_ = a.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := a.c.Write(b.Bytes()); err != nil {
		a.t.Fatalf("amqp write: %v", err)
	}
}

func (a *amqpConn) method(channel, class, method uint16, args []byte) {
	var b buf
	b.u16(class)
	b.u16(method)
	b.Write(args)
	a.send(1, channel, b.Bytes())
}

func (a *amqpConn) next(timeout time.Duration) (frame, error) {
	select {
	case f, ok := <-a.frames:
		if !ok {
			return frame{}, io.EOF
		}
		return f, nil
	case <-time.After(timeout):
		return frame{}, fmt.Errorf("no frame within %v", timeout)
	}
}

// expect reads the next frame and requires it to be the given method; it
// returns the method's arguments.
func (a *amqpConn) expect(channel, class, method uint16) []byte {
	a.t.Helper()
	args, err := a.tryExpect(30*time.Second, channel, class, method)
	if err != nil {
		a.t.Fatal(err)
	}
	return args
}

func (a *amqpConn) tryExpect(timeout time.Duration, channel, class, method uint16) ([]byte, error) {
	f, err := a.next(timeout)
	if err != nil {
		return nil, fmt.Errorf("waiting for %d.%d: %v", class, method, err)
	}
	if f.typ != 1 || f.channel != channel || binary.BigEndian.Uint16(f.payload) != class || binary.BigEndian.Uint16(f.payload[2:]) != method {
		return nil, fmt.Errorf("want method %d.%d on channel %d, got frame type %d channel %d % x", class, method, channel, f.typ, f.channel, f.payload[:min(len(f.payload), 40)])
	}
	return f.payload[4:], nil
}

// declareQueue declares a durable queue with x-queue-type qtype
// ("classic", "quorum"; "" for none).
func (a *amqpConn) declareQueue(name, qtype string) {
	a.t.Helper()
	var b buf
	b.u16(0)
	b.shortstr(name)
	b.WriteByte(0x02) // durable
	args := map[string]any{}
	if qtype != "" {
		args["x-queue-type"] = qtype
	}
	b.table(args)
	a.method(1, 50, 10, b.Bytes())
	a.expect(1, 50, 11)
}

// publish sends body to the default exchange with routing key queue and
// waits for the broker's confirm (basic.ack).
func (a *amqpConn) publish(queue, body string, timeout time.Duration) error {
	a.startPublish(queue, body)
	_, err := a.tryExpect(timeout, 1, 60, 80)
	return err
}

// publishConfirmed publishes body until the broker confirms it: a quorum
// queue whose leader was on a node just killed nacks (basic.nack, 60.120)
// the publishes it takes before another member is elected (seen in make
// test about a second after the kill). A nacked message may or may not be
// in the queue.
func (a *amqpConn) publishConfirmed(queue, body string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		a.startPublish(queue, body)
		f, err := a.next(time.Until(deadline))
		if err != nil {
			return fmt.Errorf("waiting for the confirm: %v", err)
		}
		if f.typ == 1 && f.channel == 1 && len(f.payload) >= 4 && binary.BigEndian.Uint16(f.payload) == 60 {
			switch binary.BigEndian.Uint16(f.payload[2:]) {
			case 80: // basic.ack
				return nil
			case 120: // basic.nack
				if time.Now().Before(deadline) {
					a.t.Logf("publish to %s nacked; publishing again", queue)
					time.Sleep(200 * time.Millisecond)
					continue
				}
			}
		}
		return fmt.Errorf("want basic.ack on channel 1, got frame type %d channel %d % x", f.typ, f.channel, f.payload[:min(len(f.payload), 40)])
	}
}

func (a *amqpConn) startPublish(queue, body string) {
	var b buf
	b.u16(0)
	b.shortstr("")
	b.shortstr(queue)
	b.WriteByte(0)
	a.method(1, 60, 40, b.Bytes())
	var h buf
	h.u16(60)
	h.u16(0)
	h.u64(uint64(len(body)))
	h.u16(0x1000) // delivery-mode
	h.WriteByte(2)
	a.send(2, 1, h.Bytes())
	a.send(3, 1, []byte(body))
	a.seq++
}

// get fetches one message (auto-ack); ok false when the queue is empty.
func (a *amqpConn) get(queue string) (string, bool) {
	a.t.Helper()
	var b buf
	b.u16(0)
	b.shortstr(queue)
	b.WriteByte(1) // no-ack
	a.method(1, 60, 70, b.Bytes())
	f, err := a.next(30 * time.Second)
	if err != nil {
		a.t.Fatal(err)
	}
	if f.typ == 1 && binary.BigEndian.Uint16(f.payload[2:]) == 72 {
		return "", false
	}
	if f.typ != 1 || binary.BigEndian.Uint16(f.payload[2:]) != 71 {
		a.t.Fatalf("basic.get: unexpected frame % x", f.payload)
	}
	hdr, err := a.next(10 * time.Second)
	if err != nil || hdr.typ != 2 {
		a.t.Fatalf("basic.get: no content header (%v)", err)
	}
	size := binary.BigEndian.Uint64(hdr.payload[4:])
	var body []byte
	for uint64(len(body)) < size {
		f, err := a.next(10 * time.Second)
		if err != nil || f.typ != 3 {
			a.t.Fatalf("basic.get: no body (%v)", err)
		}
		body = append(body, f.payload...)
	}
	return string(body), true
}

func (a *amqpConn) event(timeout time.Duration) (string, error) {
	select {
	case e := <-a.events:
		return e, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("no connection event within %v", timeout)
	}
}

type buf struct{ bytes.Buffer }

func (b *buf) u16(v uint16) { _ = binary.Write(b, binary.BigEndian, v) }
func (b *buf) u32(v uint32) { _ = binary.Write(b, binary.BigEndian, v) }
func (b *buf) u64(v uint64) { _ = binary.Write(b, binary.BigEndian, v) }
func (b *buf) shortstr(s string) {
	b.WriteByte(byte(len(s)))
	b.WriteString(s)
}
func (b *buf) longstr(s string) {
	b.u32(uint32(len(s)))
	b.WriteString(s)
}

func (b *buf) table(m map[string]any) {
	var t buf
	for k, v := range m {
		t.shortstr(k)
		switch v := v.(type) {
		case string:
			t.WriteByte('S')
			t.longstr(v)
		case bool:
			t.WriteByte('t')
			if v {
				t.WriteByte(1)
			} else {
				t.WriteByte(0)
			}
		case map[string]any:
			t.WriteByte('F')
			t.table(v)
		default:
			panic(fmt.Sprintf("table value %T", v))
		}
	}
	b.u32(uint32(t.Len()))
	b.Write(t.Bytes())
}
