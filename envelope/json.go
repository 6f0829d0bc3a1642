package envelope

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of decoded documents (Python's json gives up
// with RecursionError near 1000 levels; msgpack at 512).
const MaxDepth = 512

// MarshalJSON encodes v as oslo.serialization's jsonutils.dumps does.
func MarshalJSON(v any) ([]byte, error) { return AppendJSON(make([]byte, 0, 256), v) }

// AppendJSON appends v as jsonutils.dump_as_bytes writes it: Python's
// json.dumps with separators ", " and ": ", ensure_ascii (\uXXXX in lower
// case, astral characters as surrogate pairs), dict order kept, floats as
// repr, NaN/Infinity literals, and to_primitive's fallbacks: datetimes as
// "%Y-%m-%dT%H:%M:%S.%f" (zone dropped), UUIDs and IP addresses as text,
// bytes as UTF-8 text, sets as arrays. Values to_primitive cannot convert
// (datetime.date, unknown msgpack ext types) are refused; an itertools.count
// is written as the text of its repr, as to_primitive's fallback does.
func AppendJSON(dst []byte, v any) ([]byte, error) {
	e := jsonEncoder{buf: dst}
	if err := e.value(v, 0); err != nil {
		return dst, err
	}
	return e.buf, nil
}

type jsonEncoder struct {
	buf  []byte
	path []pathElem
}

func (e *jsonEncoder) fail(v any, reason string) error {
	p := formatPath(e.path)
	return &EncodeError{Codec: "json", Path: p, Type: fmt.Sprintf("%T", v), Reason: reason}
}

func (e *jsonEncoder) value(v any, depth int) error {
	if depth > MaxDepth {
		return e.fail(v, "nesting deeper than the limit")
	}
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case bool:
		if x {
			e.buf = append(e.buf, "true"...)
		} else {
			e.buf = append(e.buf, "false"...)
		}
	case string:
		if !utf8.ValidString(x) {
			return e.fail(v, "string is not valid UTF-8")
		}
		e.str(x)
	case int64:
		e.buf = strconv.AppendInt(e.buf, x, 10)
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int32:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int16:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int8:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case uint64:
		e.buf = strconv.AppendUint(e.buf, x, 10)
	case uint:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint32:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint16:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint8:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case *big.Int:
		if x == nil {
			e.buf = append(e.buf, "null"...)
		} else {
			e.buf = x.Append(e.buf, 10)
		}
	case float64:
		e.buf = AppendPythonFloat(e.buf, x)
	case float32:
		e.buf = AppendPythonFloat(e.buf, float64(x))
	case []byte:
		if !utf8.Valid(x) {
			return e.fail(v, "bytes are not valid UTF-8 (oslo's to_primitive decodes them)")
		}
		e.str(string(x))
	case *Map:
		if x == nil {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		return e.object(x.items, depth)
	case Map:
		return e.object(x.items, depth)
	case map[string]any:
		return e.object(sortedItems(x), depth)
	case []any:
		return e.array(x, depth)
	case Set:
		return e.array(x, depth)
	case FrozenSet:
		return e.array(x, depth)
	case []string:
		e.buf = append(e.buf, '[')
		for i, s := range x {
			if i > 0 {
				e.buf = append(e.buf, ", "...)
			}
			if !utf8.ValidString(s) {
				return e.fail(v, "string is not valid UTF-8")
			}
			e.str(s)
		}
		e.buf = append(e.buf, ']')
	case time.Time:
		e.buf = append(e.buf, '"')
		e.buf = appendISODatetime(e.buf, x)
		e.buf = append(e.buf, '"')
	case XMLRPCDateTime:
		e.buf = append(e.buf, '"')
		e.buf = appendISODatetime(e.buf, x.Time.Truncate(time.Second))
		e.buf = append(e.buf, '"')
	case UUID:
		e.buf = append(e.buf, '"')
		e.buf = append(e.buf, x.String()...)
		e.buf = append(e.buf, '"')
	case IPAddress:
		e.str(x.Addr.String())
	case Date:
		return e.fail(v, "datetime.date has no JSON form in oslo (to_primitive fails)")
	case Count:
		// to_primitive's fallback: the text of repr(count).
		r, err := countRepr(x)
		if err != nil {
			return e.fail(v, err.Error())
		}
		e.str(r)
	case Ext:
		return e.fail(v, "msgpack extension values have no JSON form")
	case Valuer:
		w, err := x.OsloValue()
		if err != nil {
			return e.fail(v, err.Error())
		}
		return e.value(w, depth+1)
	case error:
		return e.fail(v, "errors travel as failures, not as values")
	default:
		return e.reflectValue(v, depth)
	}
	return nil
}

func countRepr(c Count) (string, error) {
	num := func(v any) (string, error) {
		if f, ok := v.(float64); ok {
			return string(AppendPythonFloat(nil, f)), nil
		}
		if n, ok := asBig(v); ok {
			return n.String(), nil
		}
		return "", fmt.Errorf("itertools.count holds %T, not a number", v)
	}
	s, err := num(c.Start)
	if err != nil {
		return "", err
	}
	if n, ok := asBig(c.Step); ok && n.IsInt64() && n.Int64() == 1 {
		return "count(" + s + ")", nil
	}
	st, err := num(c.Step)
	if err != nil {
		return "", err
	}
	return "count(" + s + ", " + st + ")", nil
}

// reflectValue handles the less common Go spellings: other slices and
// string-keyed maps.
func (e *jsonEncoder) reflectValue(v any, depth int) error {
	w, ok, reason := fromReflect(v)
	if !ok {
		return e.fail(v, reason)
	}
	return e.value(w, depth+1)
}

func (e *jsonEncoder) object(items []KV, depth int) error {
	e.buf = append(e.buf, '{')
	for i := range items {
		if i > 0 {
			e.buf = append(e.buf, ", "...)
		}
		if !utf8.ValidString(items[i].Key) {
			return e.fail(items[i].Key, "key is not valid UTF-8")
		}
		e.str(items[i].Key)
		e.buf = append(e.buf, ": "...)
		e.path = append(e.path, pathElem{key: items[i].Key, isKey: true})
		if err := e.value(items[i].Value, depth+1); err != nil {
			return err
		}
		e.path = e.path[:len(e.path)-1]
	}
	e.buf = append(e.buf, '}')
	return nil
}

func (e *jsonEncoder) array(l []any, depth int) error {
	e.buf = append(e.buf, '[')
	for i := range l {
		if i > 0 {
			e.buf = append(e.buf, ", "...)
		}
		e.path = append(e.path, pathElem{idx: i})
		if err := e.value(l[i], depth+1); err != nil {
			return err
		}
		e.path = e.path[:len(e.path)-1]
	}
	e.buf = append(e.buf, ']')
	return nil
}

const lowerHex = "0123456789abcdef"

// str writes s (valid UTF-8) with ensure_ascii escaping.
func (e *jsonEncoder) str(s string) {
	e.buf = append(e.buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			i++
			continue
		}
		e.buf = append(e.buf, s[start:i]...)
		if c < utf8.RuneSelf {
			switch c {
			case '"':
				e.buf = append(e.buf, '\\', '"')
			case '\\':
				e.buf = append(e.buf, '\\', '\\')
			case '\n':
				e.buf = append(e.buf, '\\', 'n')
			case '\r':
				e.buf = append(e.buf, '\\', 'r')
			case '\t':
				e.buf = append(e.buf, '\\', 't')
			case '\b':
				e.buf = append(e.buf, '\\', 'b')
			case '\f':
				e.buf = append(e.buf, '\\', 'f')
			default:
				e.u4(rune(c))
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r >= 0x10000 {
			hi, lo := utf16.EncodeRune(r)
			e.u4(hi)
			e.u4(lo)
		} else {
			e.u4(r)
		}
		i += size
		start = i
	}
	e.buf = append(e.buf, s[start:]...)
	e.buf = append(e.buf, '"')
}

func (e *jsonEncoder) u4(r rune) {
	e.buf = append(e.buf, '\\', 'u', lowerHex[r>>12&0xf], lowerHex[r>>8&0xf], lowerHex[r>>4&0xf], lowerHex[r&0xf])
}

// appendISODatetime writes "%Y-%m-%dT%H:%M:%S.%f" as Python's strftime does
// on Linux (the year is not zero-padded below 1000).
func appendISODatetime(b []byte, t time.Time) []byte {
	b = strconv.AppendInt(b, int64(t.Year()), 10)
	b = append(b, '-')
	b = append2(b, int(t.Month()))
	b = append(b, '-')
	b = append2(b, t.Day())
	b = append(b, 'T')
	b = append2(b, t.Hour())
	b = append(b, ':')
	b = append2(b, t.Minute())
	b = append(b, ':')
	b = append2(b, t.Second())
	b = append(b, '.')
	us := t.Nanosecond() / 1000
	for d := 100000; d > 0; d /= 10 {
		b = append(b, byte('0'+us/d%10))
	}
	return b
}

func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }

// DecodeJSON reads one JSON document as Python's json.loads does: objects
// become *Map (a repeated key keeps its first position and takes the last
// value), integers int64, uint64 or *big.Int, other numbers float64 (NaN,
// Infinity and -Infinity accepted, overflow to ±Inf), strings string. A
// lone surrogate escape, which Python keeps in its str, becomes U+FFFD: Go
// strings cannot hold it.
func DecodeJSON(b []byte) (any, error) {
	d := jsonDecoder{b: b}
	d.ws()
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	d.ws()
	if d.i != len(d.b) {
		return nil, d.fail("extra data after the document")
	}
	return v, nil
}

type jsonDecoder struct {
	b []byte
	i int
}

func (d *jsonDecoder) fail(reason string) error {
	return &DecodeError{Codec: "json", Offset: d.i, Reason: reason}
}

func (d *jsonDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *jsonDecoder) lit(s string) bool {
	if len(d.b)-d.i >= len(s) && string(d.b[d.i:d.i+len(s)]) == s {
		d.i += len(s)
		return true
	}
	return false
}

func (d *jsonDecoder) value(depth int) (any, error) {
	if depth > MaxDepth {
		return nil, d.fail(fmt.Sprintf("nesting deeper than %d", MaxDepth))
	}
	if d.i >= len(d.b) {
		return nil, d.fail("unexpected end of input, expecting a value")
	}
	switch c := d.b[d.i]; {
	case c == '{':
		return d.object(depth)
	case c == '[':
		return d.array(depth)
	case c == '"':
		return d.str()
	case c == 'n':
		if d.lit("null") {
			return nil, nil
		}
	case c == 't':
		if d.lit("true") {
			return true, nil
		}
	case c == 'f':
		if d.lit("false") {
			return false, nil
		}
	case c == 'N':
		if d.lit("NaN") {
			return math.NaN(), nil
		}
	case c == 'I':
		if d.lit("Infinity") {
			return math.Inf(1), nil
		}
	case c == '-' || (c >= '0' && c <= '9'):
		if c == '-' && d.lit("-Infinity") {
			return math.Inf(-1), nil
		}
		return d.number()
	}
	return nil, d.fail(fmt.Sprintf("unexpected character %q, expecting a value", rune(d.b[d.i])))
}

func (d *jsonDecoder) object(depth int) (any, error) {
	d.i++ // {
	m := &Map{}
	mb := mapBuilder{m: m}
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return m, nil
	}
	for {
		d.ws()
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return nil, d.fail("expecting a property name in double quotes")
		}
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		d.ws()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, d.fail("expecting ':' after a property name")
		}
		d.i++
		d.ws()
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		mb.set(k.(string), v)
		d.ws()
		if d.i >= len(d.b) {
			return nil, d.fail("unexpected end of input inside an object")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return m, nil
		default:
			return nil, d.fail("expecting ',' or '}' in an object")
		}
	}
}

func (d *jsonDecoder) array(depth int) (any, error) {
	d.i++ // [
	l := make([]any, 0, 4)
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return l, nil
	}
	for {
		d.ws()
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		l = append(l, v)
		d.ws()
		if d.i >= len(d.b) {
			return nil, d.fail("unexpected end of input inside an array")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			return l, nil
		default:
			return nil, d.fail("expecting ',' or ']' in an array")
		}
	}
}

func (d *jsonDecoder) number() (any, error) {
	start := d.i
	if d.b[d.i] == '-' {
		d.i++
	}
	digits := func() int {
		n := 0
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	intStart := d.i
	if n := digits(); n == 0 {
		return nil, d.fail("expecting a digit")
	}
	if d.b[intStart] == '0' && d.i-intStart > 1 {
		// Python's scanner reads "0" and then fails on the extra digits.
		d.i = intStart + 1
		return nil, d.fail("extra data: leading zeros are not allowed")
	}
	isFloat := false
	if d.i < len(d.b) && d.b[d.i] == '.' {
		save := d.i
		d.i++
		if digits() == 0 {
			d.i = save // "1." : Python reads 1 and then fails on "."
		} else {
			isFloat = true
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		save := d.i
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			d.i = save
		} else {
			isFloat = true
		}
	}
	text := string(d.b[start:d.i])
	if isFloat {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return f, nil // ±Inf or 0, as Python's float() gives
			}
			return nil, &DecodeError{Codec: "json", Offset: start, Reason: "bad number " + strconv.Quote(text)}
		}
		return f, nil
	}
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		return n, nil
	}
	if n, err := strconv.ParseUint(text, 10, 64); err == nil {
		return n, nil
	}
	if len(text) > 4300 {
		// CPython refuses int literals over 4300 digits (sys.int_info.default_max_str_digits).
		return nil, &DecodeError{Codec: "json", Offset: start, Reason: "integer literal longer than 4300 digits"}
	}
	n, ok := new(big.Int).SetString(text, 10)
	if !ok {
		return nil, &DecodeError{Codec: "json", Offset: start, Reason: "bad number " + strconv.Quote(text)}
	}
	return n, nil
}

// str reads a string at d.i (which is '"').
func (d *jsonDecoder) str() (any, error) {
	d.i++
	start := d.i
	// Fast path: no escapes, all ASCII printable.
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			s := string(d.b[start:d.i])
			d.i++
			return s, nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		d.i++
	}
	out := make([]byte, 0, d.i-start+16)
	out = append(out, d.b[start:d.i]...)
	for {
		if d.i >= len(d.b) {
			return nil, &DecodeError{Codec: "json", Offset: start - 1, Reason: "unterminated string"}
		}
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return string(out), nil
		case c < 0x20:
			return nil, d.fail("invalid control character in a string")
		case c == '\\':
			d.i++
			if d.i >= len(d.b) {
				return nil, &DecodeError{Codec: "json", Offset: start - 1, Reason: "unterminated string"}
			}
			esc := d.b[d.i]
			d.i++
			switch esc {
			case '"', '\\', '/':
				out = append(out, esc)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, err := d.hex4()
				if err != nil {
					return nil, err
				}
				if utf16.IsSurrogate(r) {
					if r < 0xdc00 && d.i+6 <= len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
						save := d.i
						d.i += 2
						r2, err := d.hex4()
						if err != nil {
							return nil, err
						}
						if p := utf16.DecodeRune(r, r2); p != utf8.RuneError {
							r = p
						} else {
							d.i = save
							r = utf8.RuneError
						}
					} else {
						r = utf8.RuneError
					}
				}
				out = utf8.AppendRune(out, r)
			default:
				d.i -= 2
				return nil, d.fail(fmt.Sprintf("invalid \\escape %q", rune(esc)))
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			d.i++
		default:
			r, size := utf8.DecodeRune(d.b[d.i:])
			if r == utf8.RuneError && size <= 1 {
				return nil, d.fail("invalid UTF-8")
			}
			out = append(out, d.b[d.i:d.i+size]...)
			d.i += size
		}
	}
}

func (d *jsonDecoder) hex4() (rune, error) {
	if d.i+4 > len(d.b) {
		return 0, d.fail("truncated \\u escape")
	}
	var r rune
	for k := 0; k < 4; k++ {
		h, ok := unhex(d.b[d.i+k])
		if !ok {
			return 0, d.fail("invalid \\u escape")
		}
		r = r<<4 | rune(h)
	}
	d.i += 4
	return r, nil
}
