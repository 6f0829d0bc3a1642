package rabbit_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"testing"
	"time"
)

// frameRecorder is a TCP relay between goslo and a broker that decodes the
// AMQP 0-9-1 frames of every connection in both directions, as the capture
// harness of the vectors did (vectors/rabbit/README.md: "Recording TCP
// relay"): methods with their arguments by their spec names, field tables
// typed, content headers with their properties, heartbeats.
type frameRecorder struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []*recordedConn
	wg     sync.WaitGroup
}

// recordedConn is one relayed connection.
type recordedConn struct {
	mu   sync.Mutex
	cmds []frameCmd
	errs []error
}

// frameCmd is one decoded frame (or the protocol header).
type frameCmd struct {
	Dir       string // "C>S" or "S>C"
	Header    bool   // the protocol header
	Heartbeat bool
	At        time.Time // when the relay read it
	Channel   uint16
	ClassID   uint16
	MethodID  uint16
	Method    string         // "basic.publish"; "<class>.<method>" when unknown here
	Args      map[string]any // JSON-shaped: tables as {"type": letter, "value": v}
	Content   *frameContent
}

// frameContent is the content header of a content-bearing method.
type frameContent struct {
	Flags   uint16
	Props   map[string]any
	BodyLen uint64
}

func startRecorder(t *testing.T, target string) *frameRecorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &frameRecorder{ln: ln, target: target}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.close)
	return r
}

func (r *frameRecorder) port() int { return r.ln.Addr().(*net.TCPAddr).Port }

func (r *frameRecorder) close() {
	_ = r.ln.Close()
	r.wg.Wait()
}

func (r *frameRecorder) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		rc := &recordedConn{}
		r.mu.Lock()
		r.conns = append(r.conns, rc)
		r.mu.Unlock()
		r.wg.Add(2)
		go r.pipe(rc, c, b, "C>S")
		go r.pipe(rc, b, c, "S>C")
	}
}

// pipe copies src to dst, decoding what passes; either side closing
// closes both.
func (r *frameRecorder) pipe(rc *recordedConn, src, dst net.Conn, dir string) {
	defer r.wg.Done()
	defer src.Close()
	defer dst.Close()
	p := &frameParser{dir: dir, rc: rc, header: dir == "C>S"}
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.feed(buf[:n])
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// snapshot returns the commands recorded so far, per connection.
func (r *frameRecorder) snapshot() [][]frameCmd {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [][]frameCmd
	for _, c := range r.conns {
		c.mu.Lock()
		out = append(out, append([]frameCmd(nil), c.cmds...))
		c.mu.Unlock()
	}
	return out
}

// errors returns the decoding errors of every connection.
func (r *frameRecorder) errors() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []error
	for _, c := range r.conns {
		c.mu.Lock()
		all = append(all, c.errs...)
		c.mu.Unlock()
	}
	return errors.Join(all...)
}

// frameParser decodes one direction of a connection.
type frameParser struct {
	dir    string
	rc     *recordedConn
	header bool // a protocol header comes first
	buf    []byte
	// pending[channel] is the index of the content-bearing method whose
	// header has not come yet.
	pending map[uint16]int
}

func (p *frameParser) feed(b []byte) {
	p.buf = append(p.buf, b...)
	p.rc.mu.Lock()
	defer p.rc.mu.Unlock()
	if p.pending == nil {
		p.pending = map[uint16]int{}
	}
	if p.header {
		if len(p.buf) < 8 {
			return
		}
		p.rc.cmds = append(p.rc.cmds, frameCmd{Dir: p.dir, Header: true, Args: map[string]any{"protocol_header": fmt.Sprintf("%x", p.buf[:8])}})
		p.buf = p.buf[8:]
		p.header = false
	}
	for len(p.buf) >= 7 {
		size := binary.BigEndian.Uint32(p.buf[3:7])
		if uint64(len(p.buf)) < 8+uint64(size) {
			return
		}
		typ, ch := p.buf[0], binary.BigEndian.Uint16(p.buf[1:3])
		payload := p.buf[7 : 7+size]
		if p.buf[7+size] != 0xCE {
			p.rc.errs = append(p.rc.errs, fmt.Errorf("%s: frame without frame-end", p.dir))
		}
		if err := p.frame(typ, ch, payload); err != nil {
			p.rc.errs = append(p.rc.errs, fmt.Errorf("%s channel %d: %w", p.dir, ch, err))
		}
		p.buf = p.buf[8+size:]
	}
}

func (p *frameParser) frame(typ byte, ch uint16, payload []byte) error {
	switch typ {
	case 1:
		r := &argReader{b: payload}
		cls, mth := r.u16(), r.u16()
		if r.err != nil {
			return r.err
		}
		cmd := frameCmd{Dir: p.dir, Channel: ch, ClassID: cls, MethodID: mth}
		spec, ok := methodSpecs[[2]uint16{cls, mth}]
		if ok {
			cmd.Method = spec.name
			args, err := spec.decode(r)
			if err != nil {
				return fmt.Errorf("%s: %w", spec.name, err)
			}
			cmd.Args = args
		} else {
			cmd.Method = fmt.Sprintf("%d.%d", cls, mth)
		}
		p.rc.cmds = append(p.rc.cmds, cmd)
		if ok && spec.content {
			p.pending[ch] = len(p.rc.cmds) - 1
		}
	case 2:
		i, ok := p.pending[ch]
		if !ok {
			return errors.New("content header without a method")
		}
		delete(p.pending, ch)
		c, err := decodeContentHeader(payload)
		if err != nil {
			return err
		}
		p.rc.cmds[i].Content = c
	case 3: // body: counted in the header's size
	case 8:
		p.rc.cmds = append(p.rc.cmds, frameCmd{Dir: p.dir, Heartbeat: true, Channel: ch, At: time.Now()})
	default:
		return fmt.Errorf("frame type %d", typ)
	}
	return nil
}

// Argument kinds of the AMQP 0-9-1 spec.
const (
	kOctet    = 'o'
	kShort    = 's'
	kLong     = 'l'
	kLongLong = 'L'
	kShortStr = 'q'
	kLongStr  = 'Q'
	kBit      = 'b'
	kTable    = 'T'
)

type methodSpec struct {
	name    string
	fields  []string // "name:kind"
	content bool
}

func (m methodSpec) decode(r *argReader) (map[string]any, error) {
	out := map[string]any{}
	var bits byte
	nbits := 0
	for _, f := range m.fields {
		name, kind := f[:len(f)-2], f[len(f)-1]
		if kind != kBit {
			nbits = 0
		}
		switch kind {
		case kOctet:
			out[name] = r.u8()
		case kShort:
			out[name] = r.u16()
		case kLong:
			out[name] = r.u32()
		case kLongLong:
			out[name] = r.u64()
		case kShortStr:
			out[name] = r.shortstr()
		case kLongStr:
			out[name] = string(r.longstr())
		case kBit:
			if nbits%8 == 0 {
				bits = r.u8()
			}
			out[name] = bits&(1<<(nbits%8)) != 0
			nbits++
		case kTable:
			out[name] = r.table()
		}
	}
	return out, r.err
}

var methodSpecs = func() map[[2]uint16]methodSpec {
	closeArgs := []string{"reply_code:s", "reply_text:q", "class_id:s", "method_id:s"}
	m := map[[2]uint16]methodSpec{
		{10, 10}:  {name: "connection.start", fields: []string{"version_major:o", "version_minor:o", "server_properties:T", "mechanisms:Q", "locales:Q"}},
		{10, 11}:  {name: "connection.start-ok", fields: []string{"client_properties:T", "mechanism:q", "response:Q", "locale:q"}},
		{10, 30}:  {name: "connection.tune", fields: []string{"channel_max:s", "frame_max:l", "heartbeat:s"}},
		{10, 31}:  {name: "connection.tune-ok", fields: []string{"channel_max:s", "frame_max:l", "heartbeat:s"}},
		{10, 40}:  {name: "connection.open", fields: []string{"virtual_host:q", "reserved_1:q", "reserved_2:b"}},
		{10, 41}:  {name: "connection.open-ok", fields: []string{"reserved_1:q"}},
		{10, 50}:  {name: "connection.close", fields: closeArgs},
		{10, 51}:  {name: "connection.close-ok"},
		{10, 60}:  {name: "connection.blocked", fields: []string{"reason:q"}},
		{10, 61}:  {name: "connection.unblocked"},
		{20, 10}:  {name: "channel.open", fields: []string{"reserved_1:q"}},
		{20, 11}:  {name: "channel.open-ok", fields: []string{"reserved_1:Q"}},
		{20, 40}:  {name: "channel.close", fields: closeArgs},
		{20, 41}:  {name: "channel.close-ok"},
		{40, 10}:  {name: "exchange.declare", fields: []string{"reserved_1:s", "exchange:q", "type:q", "passive:b", "durable:b", "auto_delete:b", "internal:b", "no_wait:b", "arguments:T"}},
		{40, 11}:  {name: "exchange.declare-ok"},
		{50, 10}:  {name: "queue.declare", fields: []string{"reserved_1:s", "queue:q", "passive:b", "durable:b", "exclusive:b", "auto_delete:b", "no_wait:b", "arguments:T"}},
		{50, 11}:  {name: "queue.declare-ok", fields: []string{"queue:q", "message_count:l", "consumer_count:l"}},
		{50, 20}:  {name: "queue.bind", fields: []string{"reserved_1:s", "queue:q", "exchange:q", "routing_key:q", "no_wait:b", "arguments:T"}},
		{50, 21}:  {name: "queue.bind-ok"},
		{50, 40}:  {name: "queue.delete", fields: []string{"reserved_1:s", "queue:q", "if_unused:b", "if_empty:b", "no_wait:b"}},
		{50, 41}:  {name: "queue.delete-ok", fields: []string{"message_count:l"}},
		{60, 10}:  {name: "basic.qos", fields: []string{"prefetch_size:l", "prefetch_count:s", "global:b"}},
		{60, 11}:  {name: "basic.qos-ok"},
		{60, 20}:  {name: "basic.consume", fields: []string{"reserved_1:s", "queue:q", "consumer_tag:q", "no_local:b", "no_ack:b", "exclusive:b", "no_wait:b", "arguments:T"}},
		{60, 21}:  {name: "basic.consume-ok", fields: []string{"consumer_tag:q"}},
		{60, 30}:  {name: "basic.cancel", fields: []string{"consumer_tag:q", "no_wait:b"}},
		{60, 31}:  {name: "basic.cancel-ok", fields: []string{"consumer_tag:q"}},
		{60, 40}:  {name: "basic.publish", fields: []string{"reserved_1:s", "exchange:q", "routing_key:q", "mandatory:b", "immediate:b"}, content: true},
		{60, 50}:  {name: "basic.return", fields: []string{"reply_code:s", "reply_text:q", "exchange:q", "routing_key:q"}, content: true},
		{60, 60}:  {name: "basic.deliver", fields: []string{"consumer_tag:q", "delivery_tag:L", "redelivered:b", "exchange:q", "routing_key:q"}, content: true},
		{60, 80}:  {name: "basic.ack", fields: []string{"delivery_tag:L", "multiple:b"}},
		{60, 90}:  {name: "basic.reject", fields: []string{"delivery_tag:L", "requeue:b"}},
		{60, 120}: {name: "basic.nack", fields: []string{"delivery_tag:L", "multiple:b", "requeue:b"}},
		{85, 10}:  {name: "confirm.select", fields: []string{"no_wait:b"}},
		{85, 11}:  {name: "confirm.select-ok"},
	}
	return m
}()

// The basic properties in flag order (bit 15 first).
var basicProps = []string{"content_type:q", "content_encoding:q", "headers:T", "delivery_mode:o", "priority:o",
	"correlation_id:q", "reply_to:q", "expiration:q", "message_id:q", "timestamp:L", "type:q", "user_id:q", "app_id:q", "cluster_id:q"}

func decodeContentHeader(b []byte) (*frameContent, error) {
	r := &argReader{b: b}
	r.u16() // class
	r.u16() // weight
	c := &frameContent{BodyLen: r.u64(), Flags: r.u16(), Props: map[string]any{}}
	for i, f := range basicProps {
		if c.Flags&(1<<(15-i)) == 0 {
			continue
		}
		name, kind := f[:len(f)-2], f[len(f)-1]
		switch kind {
		case kOctet:
			c.Props[name] = r.u8()
		case kLongLong:
			c.Props[name] = r.u64()
		case kShortStr:
			c.Props[name] = r.shortstr()
		case kTable:
			c.Props[name] = r.table()
		}
	}
	return c, r.err
}

// argReader reads AMQP method arguments and field tables.
type argReader struct {
	b   []byte
	err error
}

func (r *argReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = io.ErrUnexpectedEOF
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *argReader) u8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *argReader) u16() uint16 {
	if b := r.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *argReader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *argReader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *argReader) shortstr() string { return string(r.take(int(r.u8()))) }
func (r *argReader) longstr() []byte  { return r.take(int(r.u32())) }

// table reads a field table as {"name": {"type": letter, "value": v}}, as
// the vectors write it.
func (r *argReader) table() map[string]any {
	sub := &argReader{b: r.longstr()}
	out := map[string]any{}
	for sub.err == nil && len(sub.b) > 0 {
		k := sub.shortstr()
		out[k] = sub.value()
	}
	if sub.err != nil && r.err == nil {
		r.err = sub.err
	}
	return out
}

func (r *argReader) value() map[string]any {
	t := r.u8()
	var v any
	switch t {
	case 't':
		v = r.u8() != 0
	case 'b':
		v = int8(r.u8())
	case 'B':
		v = r.u8()
	case 's':
		v = int16(r.u16())
	case 'u':
		v = r.u16()
	case 'I':
		v = int32(r.u32())
	case 'i':
		v = r.u32()
	case 'l':
		v = int64(r.u64())
	case 'f':
		v = math.Float32frombits(r.u32())
	case 'd':
		v = math.Float64frombits(r.u64())
	case 'D':
		scale := r.u8()
		v = map[string]any{"scale": scale, "value": int32(r.u32())}
	case 'S':
		v = string(r.longstr())
	case 'x':
		v = fmt.Sprintf("%x", r.longstr())
	case 'T':
		v = r.u64()
	case 'F':
		v = r.table()
	case 'A':
		sub := &argReader{b: r.longstr()}
		var l []any
		for sub.err == nil && len(sub.b) > 0 {
			l = append(l, sub.value())
		}
		if sub.err != nil && r.err == nil {
			r.err = sub.err
		}
		v = l
	case 'V':
		v = nil
	default:
		if r.err == nil {
			r.err = fmt.Errorf("field type %q", t)
		}
	}
	return map[string]any{"type": string(rune(t)), "value": v}
}

// jsonShape turns v into what encoding/json makes of it (numbers as
// float64), so recorded and captured arguments compare with Equal.
func jsonShape(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitCmds waits until f holds for the recorder's connections.
func waitCmds(t *testing.T, r *frameRecorder, what string, f func([][]frameCmd) bool) [][]frameCmd {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := r.snapshot()
		if f(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("recorder: %s did not happen", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
