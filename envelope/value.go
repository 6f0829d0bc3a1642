package envelope

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"time"
)

// The value model. Decoders produce, and encoders accept, these Go types for
// the Python values oslo.serialization moves:
//
//	Python                 Go (decoded)              notes
//	None                   nil
//	bool                   bool
//	int                    int64, uint64, *big.Int   uint64 above MaxInt64; *big.Int beyond 64 bits (JSON only)
//	float                  float64                   NaN and ±Inf included
//	str                    string
//	bytes                  []byte                    msgpack bin; JSON encodes it as UTF-8 text
//	list, tuple            []any
//	dict                   *Map                      insertion order kept
//	datetime.datetime      time.Time                 msgpack ext 1; JSON "%Y-%m-%dT%H:%M:%S.%f"
//	datetime.date          Date                      msgpack ext 7
//	uuid.UUID              UUID                      msgpack ext 0; JSON str(uuid)
//	set / frozenset        Set / FrozenSet           msgpack ext 4 / 5; JSON array
//	itertools.count        Count                     msgpack ext 2
//	netaddr.IPAddress      IPAddress                 msgpack ext 3; JSON str(addr)
//	xmlrpc DateTime        XMLRPCDateTime            msgpack ext 6
//	unknown ext type       Ext                       kept opaque, re-encoded unchanged
//
// A time.Time whose Location is time.UTC is a naive Python datetime (what
// oslo's utcnow produces); any other location is an aware datetime whose tz
// name is the location's name.
//
// Encoders also accept the usual Go spellings: every int and uint kind,
// float32, []string, []map..., map[string]any (written in sorted key order,
// since Go maps have none), Map by value, values implementing Valuer,
// json.Marshaler or encoding.TextMarshaler, and structs (the dict of their
// fields by encoding/json's rules: see structs.go and ToMap). DecodeValue
// goes the other way, from a decoded value into a Go value.

// Valuer lets a Go type say which model value stands for it on the wire.
type Valuer interface {
	OsloValue() (any, error)
}

// KV is one entry of a Map.
type KV struct {
	Key   string
	Value any
}

// Map is a Python dict: string keys in insertion order. Setting an existing
// key replaces its value in place, as a dict does. The zero value is empty
// and ready to use. Maps in messages are small, so lookups scan.
type Map struct {
	items []KV
}

// NewMap builds a Map from alternating keys and values:
// NewMap("method", "echo", "args", NewMap()). It panics on an odd count or a
// non-string key, which are programming errors.
func NewMap(kv ...any) *Map {
	if len(kv)%2 != 0 {
		panic("envelope.NewMap: odd number of arguments")
	}
	m := &Map{items: make([]KV, 0, len(kv)/2)}
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			panic(fmt.Sprintf("envelope.NewMap: key %d is %T, not string", i/2, kv[i]))
		}
		m.Set(k, kv[i+1])
	}
	return m
}

// MapWithCap returns an empty Map with room for n entries.
func MapWithCap(n int) *Map { return &Map{items: make([]KV, 0, n)} }

// Len is the number of entries.
func (m *Map) Len() int {
	if m == nil {
		return 0
	}
	return len(m.items)
}

// Get returns the value under k.
func (m *Map) Get(k string) (any, bool) {
	if m == nil {
		return nil, false
	}
	for i := range m.items {
		if m.items[i].Key == k {
			return m.items[i].Value, true
		}
	}
	return nil, false
}

// Has reports whether k is present.
func (m *Map) Has(k string) bool { _, ok := m.Get(k); return ok }

// Set adds k at the end, or replaces its value where it stands.
func (m *Map) Set(k string, v any) {
	for i := range m.items {
		if m.items[i].Key == k {
			m.items[i].Value = v
			return
		}
	}
	m.items = append(m.items, KV{k, v})
}

// Append adds k at the end without looking for an existing entry. Decoders
// and builders that know the keys are distinct use it.
func (m *Map) Append(k string, v any) { m.items = append(m.items, KV{k, v}) }

// Delete removes k, keeping the order of the rest.
func (m *Map) Delete(k string) {
	for i := range m.items {
		if m.items[i].Key == k {
			m.items = append(m.items[:i], m.items[i+1:]...)
			return
		}
	}
}

// Keys returns the keys in order.
func (m *Map) Keys() []string {
	if m == nil {
		return nil
	}
	ks := make([]string, len(m.items))
	for i, kv := range m.items {
		ks[i] = kv.Key
	}
	return ks
}

// Items returns the entries in order. The slice is the Map's own: do not
// modify it.
func (m *Map) Items() []KV {
	if m == nil {
		return nil
	}
	return m.items
}

// String prints the map like a Python dict, for logs and test failures.
func (m *Map) String() string { return Repr(m) }

// Date is a datetime.date (msgpack ext 7).
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// UUID is a uuid.UUID (msgpack ext 0).
type UUID [16]byte

// String is the hyphenated lower-case form, as Python's str(uuid).
func (u UUID) String() string {
	const hex = "0123456789abcdef"
	var b [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hex[c>>4], hex[c&0xf]
		j += 2
	}
	return string(b[:])
}

// ParseUUID reads the forms Python's uuid.UUID(hex) accepts most often:
// 32 hex digits, optionally hyphenated, optionally in braces or urn:uuid:.
func ParseUUID(s string) (UUID, error) {
	var u UUID
	t := strings.TrimPrefix(strings.TrimPrefix(s, "urn:"), "uuid:")
	t = strings.Trim(t, "{}")
	t = strings.ReplaceAll(t, "-", "")
	if len(t) != 32 {
		return u, fmt.Errorf("envelope: bad UUID %q: want 32 hex digits", s)
	}
	for i := 0; i < 16; i++ {
		hi, ok1 := unhex(t[2*i])
		lo, ok2 := unhex(t[2*i+1])
		if !ok1 || !ok2 {
			return u, fmt.Errorf("envelope: bad UUID %q: not hex", s)
		}
		u[i] = hi<<4 | lo
	}
	return u, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Set is a Python set (msgpack ext 4). Order is the order on the wire.
type Set []any

// FrozenSet is a Python frozenset (msgpack ext 5).
type FrozenSet []any

// Count is an itertools.count (msgpack ext 2): [start, step].
type Count struct {
	Start any
	Step  any
}

// IPAddress is a netaddr.IPAddress (msgpack ext 3, the address as an int).
type IPAddress struct {
	netip.Addr
}

// XMLRPCDateTime is an xmlrpc.client.DateTime (msgpack ext 6), second
// precision.
type XMLRPCDateTime struct {
	time.Time
}

// Ext is a msgpack extension value of a code this package does not know.
// It is kept as it came and encoded back unchanged.
type Ext struct {
	Code int8
	Data []byte
}

// Equal reports whether two model values are equal the way Python's == sees
// decoded values: ints compare by value whatever their Go type, NaN equals
// NaN (so round trips can be checked), Maps compare in order.
func Equal(a, b any) bool {
	if ai, ok := asBig(a); ok {
		if bi, ok := asBig(b); ok {
			return ai.Cmp(bi) == 0
		}
		return false
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		if !ok {
			return false
		}
		if math.IsNaN(x) && math.IsNaN(y) {
			return true
		}
		return x == y && math.Signbit(x) == math.Signbit(y)
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case []any:
		y, ok := b.([]any)
		return ok && equalSlices(x, y)
	case Set:
		y, ok := b.(Set)
		return ok && equalSlices(x, y)
	case FrozenSet:
		y, ok := b.(FrozenSet)
		return ok && equalSlices(x, y)
	case *Map:
		y, ok := b.(*Map)
		if !ok || x.Len() != y.Len() {
			return false
		}
		for i, kv := range x.Items() {
			o := y.items[i]
			if kv.Key != o.Key || !Equal(kv.Value, o.Value) {
				return false
			}
		}
		return true
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y) && (x.Location() == time.UTC) == (y.Location() == time.UTC) &&
			(x.Location() == time.UTC || x.Location().String() == y.Location().String())
	case Count:
		y, ok := b.(Count)
		return ok && Equal(x.Start, y.Start) && Equal(x.Step, y.Step)
	case XMLRPCDateTime:
		y, ok := b.(XMLRPCDateTime)
		return ok && x.Equal(y.Time)
	case Ext:
		y, ok := b.(Ext)
		return ok && x.Code == y.Code && bytes.Equal(x.Data, y.Data)
	}
	return a == b
}

func equalSlices(x, y []any) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if !Equal(x[i], y[i]) {
			return false
		}
	}
	return true
}

// asBig converts any Go integer to a *big.Int (bools are not ints here).
func asBig(v any) (*big.Int, bool) {
	switch n := v.(type) {
	case int:
		return big.NewInt(int64(n)), true
	case int8:
		return big.NewInt(int64(n)), true
	case int16:
		return big.NewInt(int64(n)), true
	case int32:
		return big.NewInt(int64(n)), true
	case int64:
		return big.NewInt(n), true
	case uint:
		return new(big.Int).SetUint64(uint64(n)), true
	case uint8:
		return new(big.Int).SetUint64(uint64(n)), true
	case uint16:
		return new(big.Int).SetUint64(uint64(n)), true
	case uint32:
		return new(big.Int).SetUint64(uint64(n)), true
	case uint64:
		return new(big.Int).SetUint64(n), true
	case *big.Int:
		if n == nil {
			return nil, false
		}
		return n, true
	}
	return nil, false
}

// Repr renders a model value roughly as Python's repr would, for logs and
// test messages. It is not a wire format.
func Repr(v any) string {
	var sb strings.Builder
	repr(&sb, v)
	return sb.String()
}

func repr(sb *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		sb.WriteString("None")
	case bool:
		if x {
			sb.WriteString("True")
		} else {
			sb.WriteString("False")
		}
	case string:
		fmt.Fprintf(sb, "%q", x)
	case []byte:
		fmt.Fprintf(sb, "b%q", x)
	case []any:
		sb.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				sb.WriteString(", ")
			}
			repr(sb, e)
		}
		sb.WriteByte(']')
	case Set, FrozenSet:
		sb.WriteString(fmt.Sprintf("%T", x)[len("envelope."):])
		repr(sb, []any(toSlice(x)))
	case *Map:
		sb.WriteByte('{')
		for i, kv := range x.Items() {
			if i > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(sb, "%q: ", kv.Key)
			repr(sb, kv.Value)
		}
		sb.WriteByte('}')
	case float64:
		sb.WriteString(string(AppendPythonFloat(nil, x)))
	case time.Time:
		sb.WriteString("datetime(" + x.Format("2006-01-02T15:04:05.000000 MST") + ")")
	default:
		fmt.Fprintf(sb, "%v", x)
	}
}

func toSlice(v any) []any {
	switch x := v.(type) {
	case Set:
		return x
	case FrozenSet:
		return x
	}
	return nil
}

// mapBuilder fills a Map for a decoder: a repeated key replaces the value
// in place, as a dict does, in linear time however large the map.
type mapBuilder struct {
	m   *Map
	idx map[string]int
}

func (b *mapBuilder) set(k string, v any) {
	items := b.m.items
	if b.idx == nil {
		if len(items) < 16 {
			b.m.Set(k, v)
			return
		}
		b.idx = make(map[string]int, 2*len(items))
		for i, kv := range items {
			b.idx[kv.Key] = i
		}
	}
	if i, ok := b.idx[k]; ok {
		items[i].Value = v
		return
	}
	b.idx[k] = len(items)
	b.m.items = append(items, KV{k, v})
}

// sortedItems lists a Go map's entries in key order (Go maps have none).
func sortedItems(m map[string]any) []KV {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	items := make([]KV, len(keys))
	for i, k := range keys {
		items[i] = KV{k, m[k]}
	}
	return items
}

// fromReflect turns the less common Go spellings into model values for the
// encoders: other slices and arrays become []any, string-keyed maps a *Map
// in key order, pointers their target (or nil), named basic kinds their
// basic value. ok is false for anything else.
//
// Structs become dicts (see structs.go); a json.Marshaler or an
// encoding.TextMarshaler becomes what it marshals to. A pointer is
// followed unless only the pointer marshals, so that *time.Time is still
// a datetime.
func fromReflect(v any) (out any, ok bool, reason string) {
	if x, isBig := v.(big.Int); isBig {
		return &x, true, ""
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil, true, ""
		}
		if et := rv.Type().Elem(); !(rv.Type().Implements(jsonMarshalerType) && !et.Implements(jsonMarshalerType)) &&
			!(rv.Type().Implements(textMarshalerType) && !et.Implements(textMarshalerType)) {
			return rv.Elem().Interface(), true, ""
		}
	}
	if out, ok, reason := marshaled(v); ok || reason != "" {
		return out, ok, reason
	}
	switch rv.Kind() {
	case reflect.Struct:
		m, reason := structMap(rv)
		if m == nil {
			return nil, false, reason
		}
		return m, true, ""
	case reflect.Slice, reflect.Array:
		if rv.Type().Elem().Kind() == reflect.Uint8 && rv.Kind() == reflect.Slice {
			return rv.Bytes(), true, "" // a named []byte is bytes too
		}
		l := make([]any, rv.Len())
		for i := range l {
			l[i] = rv.Index(i).Interface()
		}
		return l, true, ""
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, false, "map keys must be strings"
		}
		keys := rv.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		m := MapWithCap(len(keys))
		for _, k := range keys {
			m.Append(k.String(), rv.MapIndex(k).Interface())
		}
		return m, true, ""
	case reflect.Pointer:
		return rv.Elem().Interface(), true, ""
	case reflect.String:
		return rv.String(), true, ""
	case reflect.Bool:
		return rv.Bool(), true, ""
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), true, ""
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return rv.Uint(), true, ""
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true, ""
	}
	return nil, false, "unsupported type"
}
