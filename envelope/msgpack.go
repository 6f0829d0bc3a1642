package envelope

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"slices"
	"sync"
	"time"
	_ "time/tzdata" // zone names in datetimes must resolve on any machine
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// msgpackutils extension codes (oslo_serialization/msgpackutils.py).
const (
	extUUID     = 0
	extDatetime = 1
	extCount    = 2
	extIP       = 3
	extSet      = 4
	extFrozen   = 5
	extXMLRPC   = 6
	extDate     = 7
)

var (
	goNaNBits = math.Float64bits(math.NaN())
	pythonNaN = math.Float64frombits(0x7ff8000000000000)
)

// appendWriter lets the msgpack Encoder append to a byte slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
func (w *appendWriter) WriteByte(c byte) error      { w.b = append(w.b, c); return nil }

type mpEncoder struct {
	w    appendWriter
	enc  *msgpack.Encoder
	path []pathElem
}

var mpEncoders = sync.Pool{New: func() any {
	e := &mpEncoder{}
	e.enc = msgpack.NewEncoder(&e.w)
	return e
}}

// MarshalMsgpack encodes v as oslo.serialization's msgpackutils.dumps does.
func MarshalMsgpack(v any) ([]byte, error) { return AppendMsgpack(make([]byte, 0, 256), v) }

// AppendMsgpack appends v as msgpackutils.dumps writes it
// (msgpack.packb(use_bin_type=True) with oslo's extension registry): ints in
// their smallest form (unsigned family for non-negative values), every float
// as float64, text as str, bytes as bin, dicts in order, and the extension
// types 0–7 with their inner layouts. Ints beyond 64 bits are refused, as
// Python's packer refuses them.
func AppendMsgpack(dst []byte, v any) ([]byte, error) {
	e := mpEncoders.Get().(*mpEncoder)
	e.w.b = dst
	e.path = e.path[:0]
	err := e.value(v, 0)
	out := e.w.b
	e.w.b = nil
	mpEncoders.Put(e)
	if err != nil {
		return dst, err
	}
	return out, nil
}

func (e *mpEncoder) fail(v any, reason string) error {
	p := formatPath(e.path)
	return &EncodeError{Codec: "msgpack", Path: p, Type: fmt.Sprintf("%T", v), Reason: reason}
}

func (e *mpEncoder) value(v any, depth int) error {
	if depth > MaxDepth {
		return e.fail(v, "nesting deeper than the limit")
	}
	enc := e.enc
	switch x := v.(type) {
	case nil:
		return enc.EncodeNil()
	case bool:
		return enc.EncodeBool(x)
	case string:
		if !utf8.ValidString(x) {
			return e.fail(v, "string is not valid UTF-8")
		}
		return enc.EncodeString(x)
	case int64:
		return enc.EncodeInt(x)
	case int:
		return enc.EncodeInt(int64(x))
	case int32:
		return enc.EncodeInt(int64(x))
	case int16:
		return enc.EncodeInt(int64(x))
	case int8:
		return enc.EncodeInt(int64(x))
	case uint64:
		return enc.EncodeUint(x)
	case uint:
		return enc.EncodeUint(uint64(x))
	case uint32:
		return enc.EncodeUint(uint64(x))
	case uint16:
		return enc.EncodeUint(uint64(x))
	case uint8:
		return enc.EncodeUint(uint64(x))
	case *big.Int:
		if x == nil {
			return enc.EncodeNil()
		}
		if x.IsInt64() {
			return enc.EncodeInt(x.Int64())
		}
		if x.IsUint64() {
			return enc.EncodeUint(x.Uint64())
		}
		return e.fail(v, "int does not fit in 64 bits (Python's packer raises OverflowError)")
	case float64:
		if math.Float64bits(x) == goNaNBits {
			x = pythonNaN // float('nan') as CPython makes it
		}
		return enc.EncodeFloat64(x)
	case float32:
		return enc.EncodeFloat64(float64(x))
	case []byte:
		return enc.EncodeBytes(x)
	case *Map:
		if x == nil {
			return enc.EncodeNil()
		}
		return e.object(x.items, depth)
	case Map:
		return e.object(x.items, depth)
	case map[string]any:
		return e.object(sortedItems(x), depth)
	case []any:
		return e.array(x, depth)
	case []string:
		if err := enc.EncodeArrayLen(len(x)); err != nil {
			return err
		}
		for _, s := range x {
			if !utf8.ValidString(s) {
				return e.fail(v, "string is not valid UTF-8")
			}
			if err := enc.EncodeString(s); err != nil {
				return err
			}
		}
		return nil
	case time.Time:
		return e.ext(extDatetime, func() error { return e.datetimeMap(x) })
	case XMLRPCDateTime:
		return e.ext(extXMLRPC, func() error { return e.datetimeMap(x.Time.Truncate(time.Second)) })
	case Date:
		return e.ext(extDate, func() error {
			if err := enc.EncodeMapLen(3); err != nil {
				return err
			}
			for _, kv := range [...]struct {
				k string
				v int
			}{{"year", x.Year}, {"month", int(x.Month)}, {"day", x.Day}} {
				_ = enc.EncodeString(kv.k)
				_ = enc.EncodeInt(int64(kv.v))
			}
			return nil
		})
	case UUID:
		// The data is the 32 hex digits themselves, not a msgpack value.
		if err := enc.EncodeExtHeader(extUUID, 32); err != nil {
			return err
		}
		for _, c := range x {
			e.w.b = append(e.w.b, lowerHex[c>>4], lowerHex[c&0xf])
		}
		return nil
	case Set:
		return e.ext(extSet, func() error { return e.array(x, depth) })
	case FrozenSet:
		return e.ext(extFrozen, func() error { return e.array(x, depth) })
	case Count:
		return e.ext(extCount, func() error { return e.array([]any{x.Start, x.Step}, depth) })
	case IPAddress:
		return e.ext(extIP, func() error {
			if !x.Addr.IsValid() {
				return e.fail(v, "invalid IP address")
			}
			n := new(big.Int).SetBytes(x.Addr.AsSlice())
			return e.value(n, depth+1)
		})
	case Ext:
		if err := enc.EncodeExtHeader(x.Code, len(x.Data)); err != nil {
			return err
		}
		e.w.b = append(e.w.b, x.Data...)
		return nil
	case Valuer:
		w, err := x.OsloValue()
		if err != nil {
			return e.fail(v, err.Error())
		}
		return e.value(w, depth+1)
	case error:
		return e.fail(v, "errors travel as failures, not as values")
	}
	return e.reflectValue(v, depth)
}

func (e *mpEncoder) reflectValue(v any, depth int) error {
	w, ok, reason := fromReflect(v)
	if !ok {
		return e.fail(v, reason)
	}
	return e.value(w, depth+1)
}

func (e *mpEncoder) object(items []KV, depth int) error {
	if err := e.enc.EncodeMapLen(len(items)); err != nil {
		return err
	}
	for i := range items {
		if !utf8.ValidString(items[i].Key) {
			return e.fail(items[i].Key, "key is not valid UTF-8")
		}
		if err := e.enc.EncodeString(items[i].Key); err != nil {
			return err
		}
		e.path = append(e.path, pathElem{key: items[i].Key, isKey: true})
		if err := e.value(items[i].Value, depth+1); err != nil {
			return err
		}
		e.path = e.path[:len(e.path)-1]
	}
	return nil
}

func (e *mpEncoder) array(l []any, depth int) error {
	if err := e.enc.EncodeArrayLen(len(l)); err != nil {
		return err
	}
	for i := range l {
		e.path = append(e.path, pathElem{idx: i})
		if err := e.value(l[i], depth+1); err != nil {
			return err
		}
		e.path = e.path[:len(e.path)-1]
	}
	return nil
}

// ext writes an extension whose data is itself msgpack written by body.
func (e *mpEncoder) ext(code int8, body func() error) error {
	outer := e.w.b
	e.w.b = nil
	err := body()
	inner := e.w.b
	e.w.b = outer
	if err != nil {
		return err
	}
	if err := e.enc.EncodeExtHeader(code, len(inner)); err != nil {
		return err
	}
	e.w.b = append(e.w.b, inner...)
	return nil
}

// datetimeMap writes msgpackutils' datetime layout: day, month, year, hour,
// minute, second, microsecond, then tz for an aware datetime.
func (e *mpEncoder) datetimeMap(t time.Time) error {
	enc := e.enc
	aware := t.Location() != time.UTC
	n := 7
	if aware {
		n = 8
	}
	if err := enc.EncodeMapLen(n); err != nil {
		return err
	}
	for _, kv := range [...]struct {
		k string
		v int
	}{{"day", t.Day()}, {"month", int(t.Month())}, {"year", t.Year()}, {"hour", t.Hour()},
		{"minute", t.Minute()}, {"second", t.Second()}, {"microsecond", t.Nanosecond() / 1000}} {
		_ = enc.EncodeString(kv.k)
		_ = enc.EncodeInt(int64(kv.v))
	}
	if aware {
		_ = enc.EncodeString("tz")
		return enc.EncodeString(t.Location().String())
	}
	return nil
}

// DecodeMsgpack reads one msgpack document as msgpackutils.loads does
// (raw=False, strict_map_key): str as string, bin as []byte, maps as *Map,
// extension types 0–7 as the model types and any other code as Ext. Map
// keys must be str, or bin holding UTF-8 (what Python 2 peers send for
// text); other key types are refused, as strict_map_key refuses them.
// Trailing bytes after the document are an error (Python's ExtraData).
//
// What it allocates is bounded by the input it has read, not by the lengths
// the headers claim: the entries of the arrays and maps being read are kept
// on scratch stacks that grow as entries arrive, and each container is
// copied out at its end into a slice of exact size, as DecodeJSON does. A
// forged header (an array32 claiming as many entries as there are bytes
// left, at every level down to MaxDepth) once cost 528 MB for 64 KiB.
func DecodeMsgpack(b []byte) (any, error) {
	d := mpDecoderPool.Get().(*mpDecoder)
	d.b, d.i = b, 0
	v, err := d.value(0)
	if err == nil && d.i != len(d.b) {
		v, err = nil, d.fail("extra data after the document")
	}
	d.release()
	if err != nil {
		return nil, err
	}
	return v, nil
}

var mpDecoderPool = sync.Pool{New: func() any { return new(mpDecoder) }}

type mpDecoder struct {
	b []byte
	i int
	scratch
}

func (d *mpDecoder) release() {
	d.b = nil
	if d.reset() {
		mpDecoderPool.Put(d)
	}
}

func (d *mpDecoder) fail(reason string) error {
	return &DecodeError{Codec: "msgpack", Offset: d.i, Reason: reason}
}

func (d *mpDecoder) need(n int) error {
	if n < 0 || len(d.b)-d.i < n {
		return d.fail(fmt.Sprintf("truncated: need %d more bytes, have %d", n, len(d.b)-d.i))
	}
	return nil
}

func (d *mpDecoder) uintN(n int) (uint64, error) {
	if err := d.need(n); err != nil {
		return 0, err
	}
	var u uint64
	for k := 0; k < n; k++ {
		u = u<<8 | uint64(d.b[d.i+k])
	}
	d.i += n
	return u, nil
}

// length reads a length field of n bytes and checks that at least
// min*length bytes remain, so a forged header cannot make us allocate.
func (d *mpDecoder) length(n, min int) (int, error) {
	u, err := d.uintN(n)
	if err != nil {
		return 0, err
	}
	if u > uint64(len(d.b)-d.i) || int(u)*min > len(d.b)-d.i {
		return 0, d.fail(fmt.Sprintf("length %d exceeds the %d bytes left", u, len(d.b)-d.i))
	}
	return int(u), nil
}

func (d *mpDecoder) value(depth int) (any, error) {
	if depth > MaxDepth {
		return nil, d.fail(fmt.Sprintf("nesting deeper than %d", MaxDepth))
	}
	if err := d.need(1); err != nil {
		return nil, err
	}
	c := d.b[d.i]
	start := d.i
	d.i++
	switch {
	case msgpcode.IsFixedNum(c):
		return int64(int8(c)), nil
	case msgpcode.IsFixedMap(c):
		return d.mapBody(int(c&0x0f), depth)
	case msgpcode.IsFixedArray(c):
		return d.arrayBody(int(c&0x0f), depth)
	case msgpcode.IsFixedString(c):
		return d.strBody(int(c & 0x1f))
	}
	switch c {
	case msgpcode.Nil:
		return nil, nil
	case msgpcode.False:
		return false, nil
	case msgpcode.True:
		return true, nil
	case msgpcode.Uint8, msgpcode.Uint16, msgpcode.Uint32, msgpcode.Uint64:
		n := map[byte]int{msgpcode.Uint8: 1, msgpcode.Uint16: 2, msgpcode.Uint32: 4, msgpcode.Uint64: 8}[c]
		u, err := d.uintN(n)
		if err != nil {
			return nil, err
		}
		if u > math.MaxInt64 {
			return u, nil
		}
		return int64(u), nil
	case msgpcode.Int8:
		u, err := d.uintN(1)
		return int64(int8(u)), err
	case msgpcode.Int16:
		u, err := d.uintN(2)
		return int64(int16(u)), err
	case msgpcode.Int32:
		u, err := d.uintN(4)
		return int64(int32(u)), err
	case msgpcode.Int64:
		u, err := d.uintN(8)
		return int64(u), err
	case msgpcode.Float:
		u, err := d.uintN(4)
		return float64(math.Float32frombits(uint32(u))), err
	case msgpcode.Double:
		u, err := d.uintN(8)
		return math.Float64frombits(u), err
	case msgpcode.Str8, msgpcode.Str16, msgpcode.Str32:
		n, err := d.length(lenBytes(c, msgpcode.Str8), 1)
		if err != nil {
			return nil, err
		}
		return d.strBody(n)
	case msgpcode.Bin8, msgpcode.Bin16, msgpcode.Bin32:
		n, err := d.length(lenBytes(c, msgpcode.Bin8), 1)
		if err != nil {
			return nil, err
		}
		out := make([]byte, n)
		copy(out, d.b[d.i:d.i+n])
		d.i += n
		return out, nil
	case msgpcode.Array16, msgpcode.Array32:
		n, err := d.length(lenBytes(c, msgpcode.Array16-1), 1)
		if err != nil {
			return nil, err
		}
		return d.arrayBody(n, depth)
	case msgpcode.Map16, msgpcode.Map32:
		n, err := d.length(lenBytes(c, msgpcode.Map16-1), 2)
		if err != nil {
			return nil, err
		}
		return d.mapBody(n, depth)
	case msgpcode.FixExt1, msgpcode.FixExt2, msgpcode.FixExt4, msgpcode.FixExt8, msgpcode.FixExt16:
		n := map[byte]int{msgpcode.FixExt1: 1, msgpcode.FixExt2: 2, msgpcode.FixExt4: 4, msgpcode.FixExt8: 8, msgpcode.FixExt16: 16}[c]
		return d.extBody(n, depth)
	case msgpcode.Ext8, msgpcode.Ext16, msgpcode.Ext32:
		n, err := d.length(lenBytes(c, msgpcode.Ext8), 1)
		if err != nil {
			return nil, err
		}
		return d.extBody(n, depth)
	}
	d.i = start
	return nil, d.fail(fmt.Sprintf("unknown type byte 0x%02x", c))
}

// lenBytes is the size of the length field of the 8/16/32 family starting
// at base.
func lenBytes(c, base byte) int { return 1 << (c - base) }

func (d *mpDecoder) strBody(n int) (any, error) {
	if err := d.need(n); err != nil {
		return nil, err
	}
	s := d.b[d.i : d.i+n]
	if !utf8.Valid(s) {
		return nil, d.fail("str is not valid UTF-8")
	}
	d.i += n
	return string(s), nil
}

func (d *mpDecoder) arrayBody(n, depth int) ([]any, error) {
	if n > len(d.b)-d.i {
		return nil, d.fail(fmt.Sprintf("array of %d exceeds the %d bytes left", n, len(d.b)-d.i))
	}
	base := len(d.vals)
	for k := 0; k < n; k++ {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if len(d.vals) == cap(d.vals) {
			// Double, so the scratch costs at most twice what it holds
			// (append grows large slices by a quarter).
			d.vals = slices.Grow(d.vals, max(len(d.vals), 16))
		}
		d.vals = append(d.vals, v)
	}
	l := make([]any, n)
	copy(l, d.vals[base:])
	clear(d.vals[base:])
	d.vals = d.vals[:base]
	return l, nil
}

func (d *mpDecoder) mapBody(n, depth int) (*Map, error) {
	if 2*n > len(d.b)-d.i {
		return nil, d.fail(fmt.Sprintf("map of %d exceeds the %d bytes left", n, len(d.b)-d.i))
	}
	base := len(d.kvs)
	for k := 0; k < n; k++ {
		at := d.i
		key, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		var ks string
		switch x := key.(type) {
		case string:
			ks = x
		case []byte:
			if !utf8.Valid(x) {
				d.i = at
				return nil, d.fail("bin map key is not UTF-8 text")
			}
			ks = string(x)
		default:
			d.i = at
			return nil, d.fail(fmt.Sprintf("map key is %s; only str (or bin) keys are allowed", typeName(key)))
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if len(d.kvs) == cap(d.kvs) {
			d.kvs = slices.Grow(d.kvs, max(len(d.kvs), 16))
		}
		d.kvs = append(d.kvs, KV{ks, v})
	}
	// Every entry is read: n is now paid for by the input.
	m := MapWithCap(n)
	mb := mapBuilder{m: m}
	for _, kv := range d.kvs[base:] {
		mb.set(kv.Key, kv.Value)
	}
	clear(d.kvs[base:])
	d.kvs = d.kvs[:base]
	return m, nil
}

func (d *mpDecoder) extBody(n, depth int) (any, error) {
	if err := d.need(1 + n); err != nil {
		return nil, err
	}
	code := int8(d.b[d.i])
	d.i++
	data := d.b[d.i : d.i+n]
	at := d.i
	d.i += n
	if code < 0 || code > extDate {
		return Ext{Code: code, Data: bytes.Clone(data)}, nil
	}
	if code == extUUID {
		u, err := ParseUUID(string(data))
		if err != nil || len(data) != 32 {
			return nil, &DecodeError{Codec: "msgpack", Offset: at, Reason: "ext 0: UUID data is not 32 hex digits"}
		}
		return u, nil
	}
	// The payload is read by this decoder (sharing its scratch stacks),
	// with offsets relative to the payload, then the position restored.
	outerB, outerI := d.b, d.i
	d.b, d.i = data, 0
	v, err := d.value(depth + 1)
	if err == nil && d.i != len(data) {
		err = d.fail("extra data inside the extension")
	}
	d.b, d.i = outerB, outerI
	if err != nil {
		de := err.(*DecodeError)
		return nil, &DecodeError{Codec: "msgpack", Offset: at + de.Offset, Reason: fmt.Sprintf("ext %d: %s", code, de.Reason)}
	}
	out, reason := extValue(code, v)
	if reason != "" {
		return nil, &DecodeError{Codec: "msgpack", Offset: at, Reason: fmt.Sprintf("ext %d: %s", code, reason)}
	}
	return out, nil
}

func extValue(code int8, v any) (any, string) {
	switch code {
	case extDatetime, extXMLRPC:
		t, reason := datetimeFrom(v)
		if reason != "" {
			return nil, reason
		}
		if code == extXMLRPC {
			return XMLRPCDateTime{Time: t}, ""
		}
		return t, ""
	case extCount:
		l, ok := v.([]any)
		if !ok || len(l) != 2 {
			return nil, "count payload is not [start, step]"
		}
		return Count{Start: l[0], Step: l[1]}, ""
	case extIP:
		var n *big.Int
		switch x := v.(type) {
		case int64:
			if x < 0 {
				return nil, "negative IP address"
			}
			n = big.NewInt(x)
		case uint64:
			n = new(big.Int).SetUint64(x)
		default:
			return nil, "IP address payload is not an int"
		}
		if n.BitLen() <= 32 {
			var a [4]byte
			n.FillBytes(a[:])
			return IPAddress{netip.AddrFrom4(a)}, ""
		}
		var a [16]byte
		n.FillBytes(a[:])
		return IPAddress{netip.AddrFrom16(a)}, ""
	case extSet, extFrozen:
		l, ok := v.([]any)
		if !ok {
			return nil, "set payload is not an array"
		}
		if code == extSet {
			return Set(l), ""
		}
		return FrozenSet(l), ""
	case extDate:
		m, ok := v.(*Map)
		if !ok {
			return nil, "date payload is not a map"
		}
		f, reason := intFields(m, "year", "month", "day")
		if reason != "" {
			return nil, reason
		}
		if f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[0] < 1 || f[0] > 9999 {
			return nil, "date out of range"
		}
		return Date{Year: f[0], Month: time.Month(f[1]), Day: f[2]}, ""
	}
	return nil, "unknown extension"
}

func intFields(m *Map, keys ...string) ([]int, string) {
	out := make([]int, len(keys))
	for i, k := range keys {
		v, ok := m.Get(k)
		if !ok {
			return nil, fmt.Sprintf("missing %q", k)
		}
		n, ok := v.(int64)
		if !ok || n < 0 || n > 1<<31 {
			return nil, fmt.Sprintf("%q is not a small int", k)
		}
		out[i] = int(n)
	}
	return out, ""
}

func datetimeFrom(v any) (time.Time, string) {
	m, ok := v.(*Map)
	if !ok {
		return time.Time{}, "datetime payload is not a map"
	}
	f, reason := intFields(m, "year", "month", "day", "hour", "minute", "second", "microsecond")
	if reason != "" {
		return time.Time{}, reason
	}
	if f[0] < 1 || f[0] > 9999 || f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 ||
		f[3] > 23 || f[4] > 59 || f[5] > 59 || f[6] > 999999 {
		return time.Time{}, "datetime field out of range"
	}
	loc := time.UTC
	if tz, ok := m.Get("tz"); ok && tz != nil {
		name, ok := tz.(string)
		if !ok {
			return time.Time{}, `"tz" is not text`
		}
		if name == "UTC" {
			loc = time.FixedZone("UTC", 0) // aware UTC, distinct from naive
		} else {
			l, err := time.LoadLocation(name)
			if err != nil || name == "" || name == "Local" {
				return time.Time{}, fmt.Sprintf("unknown time zone %q", name)
			}
			loc = l
		}
	}
	return time.Date(f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], f[6]*1000, loc), ""
}
