package envelope

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// DecodeJSON reads one JSON document as jsonutils.loads(bytes) does, that
// is Python's json.loads(b.decode("utf-8")):
//
//   - objects become *Map: a repeated key keeps its first position and
//     takes the last value, as a dict does;
//   - arrays []any; strings string; true, false, null;
//   - integers (no fraction, no exponent) int64, else uint64 when they fit,
//     else *big.Int; more than 4300 digits are refused as CPython does;
//   - other numbers float64, out-of-range ones ±Inf or ±0 as float() gives;
//     the literals NaN, Infinity and -Infinity are accepted;
//   - whitespace is space, \t, \n and \r only.
//
// Refused, with a *DecodeError giving the byte offset (Python counts
// characters): input that is not UTF-8, a leading BOM, control characters
// inside strings, bad escapes, truncated documents, trailing data, nesting
// deeper than MaxJSONDepth.
//
// One accepted input cannot be kept as Python keeps it: a \ud800-\udfff
// escape that is not half of a surrogate pair. Python's str holds the lone
// surrogate; a Go string cannot, so it becomes U+FFFD.
func DecodeJSON(b []byte) (any, error) {
	d := jsonDecoderPool.Get().(*jsonDecoder)
	d.b, d.i = b, 0
	v, err := d.document()
	d.release()
	return v, err
}

var jsonDecoderPool = sync.Pool{New: func() any { return new(jsonDecoder) }}

type jsonDecoder struct {
	b []byte
	i int
	scratch
}

func (d *jsonDecoder) release() {
	d.b = nil
	if d.reset() {
		jsonDecoderPool.Put(d)
	}
}

// scratch holds the stacks of entries of the containers a decoder is
// reading: each container is copied out at its end into a slice of exact
// size, so what a decoder allocates follows the input it has read, not the
// lengths its headers claim.
type scratch struct {
	kvs  []KV
	vals []any
}

// reset empties the stacks; false when they grew unusually large and
// should not go back to a pool.
func (s *scratch) reset() bool {
	clear(s.kvs)
	clear(s.vals)
	s.kvs, s.vals = s.kvs[:0], s.vals[:0]
	return cap(s.kvs) <= 4096 && cap(s.vals) <= 4096
}

func (d *jsonDecoder) document() (any, error) {
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

func (d *jsonDecoder) fail(reason string) error { return d.failAt(d.i, reason) }

func (d *jsonDecoder) failAt(off int, reason string) error {
	return &DecodeError{Codec: "json", Offset: off, Reason: reason}
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
	if d.i >= len(d.b) {
		return nil, d.fail("unexpected end of input, expecting a value")
	}
	switch c := d.b[d.i]; c {
	case '"':
		s, err := d.str()
		if err != nil {
			return nil, err
		}
		return s, nil
	case '{':
		return d.object(depth + 1)
	case '[':
		return d.array(depth + 1)
	case 'n':
		if d.lit("null") {
			return nil, nil
		}
	case 't':
		if d.lit("true") {
			return true, nil
		}
	case 'f':
		if d.lit("false") {
			return false, nil
		}
	case 'N':
		if d.lit("NaN") {
			return math.NaN(), nil
		}
	case 'I':
		if d.lit("Infinity") {
			return math.Inf(1), nil
		}
	case '-':
		if d.lit("-Infinity") {
			return math.Inf(-1), nil
		}
		return d.number()
	default:
		if c >= '0' && c <= '9' {
			return d.number()
		}
	}
	return nil, d.fail(fmt.Sprintf("unexpected %s, expecting a value", describeByte(d.b, d.i)))
}

// describeByte names the character at b[i] for an error message.
func describeByte(b []byte, i int) string {
	r, size := utf8.DecodeRune(b[i:])
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf("byte 0x%02x", b[i])
	}
	return fmt.Sprintf("character %q", r)
}

func (d *jsonDecoder) tooDeep() error {
	return d.fail(fmt.Sprintf("nesting deeper than %d", MaxJSONDepth))
}

func (d *jsonDecoder) object(depth int) (any, error) {
	if depth > MaxJSONDepth {
		return nil, d.tooDeep()
	}
	d.i++ // {
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return &Map{}, nil
	}
	base := len(d.kvs)
	var idx map[string]int // key -> entry, for objects too large to scan
	for {
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			if d.i >= len(d.b) {
				return nil, d.fail("unexpected end of input, expecting a property name")
			}
			return nil, d.fail(fmt.Sprintf("unexpected %s, expecting a property name in double quotes", describeByte(d.b, d.i)))
		}
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		d.ws()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, d.fail("expecting ':' after a property name")
		}
		d.i++
		d.ws()
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		// A repeated key replaces the value where the key first stood.
		entries := d.kvs[base:]
		dup := -1
		switch {
		case idx != nil:
			if j, ok := idx[k]; ok {
				dup = j
			}
		case len(entries) < 16:
			for j := range entries {
				if entries[j].Key == k {
					dup = j
					break
				}
			}
		default:
			idx = make(map[string]int, 2*len(entries))
			for j := range entries {
				idx[entries[j].Key] = j
			}
			if j, ok := idx[k]; ok {
				dup = j
			}
		}
		if dup >= 0 {
			entries[dup].Value = v
		} else {
			if idx != nil {
				idx[k] = len(entries)
			}
			d.kvs = append(d.kvs, KV{k, v})
		}
		d.ws()
		if d.i >= len(d.b) {
			return nil, d.fail("unexpected end of input inside an object, expecting ',' or '}'")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
			d.ws()
		case '}':
			d.i++
			items := make([]KV, len(d.kvs)-base)
			copy(items, d.kvs[base:])
			clear(d.kvs[base:])
			d.kvs = d.kvs[:base]
			return &Map{items: items}, nil
		default:
			return nil, d.fail(fmt.Sprintf("unexpected %s in an object, expecting ',' or '}'", describeByte(d.b, d.i)))
		}
	}
}

func (d *jsonDecoder) array(depth int) (any, error) {
	if depth > MaxJSONDepth {
		return nil, d.tooDeep()
	}
	d.i++ // [
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return []any{}, nil
	}
	base := len(d.vals)
	for {
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		d.vals = append(d.vals, v)
		d.ws()
		if d.i >= len(d.b) {
			return nil, d.fail("unexpected end of input inside an array, expecting ',' or ']'")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
			d.ws()
		case ']':
			d.i++
			l := make([]any, len(d.vals)-base)
			copy(l, d.vals[base:])
			clear(d.vals[base:])
			d.vals = d.vals[:base]
			return l, nil
		default:
			return nil, d.fail(fmt.Sprintf("unexpected %s in an array, expecting ',' or ']'", describeByte(d.b, d.i)))
		}
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number reads what Python's NUMBER_RE matches,
// (-?(?:0|[1-9]\d*))(\.\d+)?([eE][-+]?\d+)?, at d.i.
func (d *jsonDecoder) number() (any, error) {
	start := d.i
	neg := d.b[d.i] == '-'
	if neg {
		d.i++
	}
	intStart := d.i
	var u uint64
	for d.i < len(d.b) && isDigit(d.b[d.i]) {
		if d.i-intStart < 19 {
			u = u*10 + uint64(d.b[d.i]-'0')
		}
		d.i++
	}
	nd := d.i - intStart
	if nd == 0 {
		return nil, d.failAt(start, "expecting a value: '-' must be followed by a digit or Infinity")
	}
	if d.b[intStart] == '0' && nd > 1 {
		// Python's scanner reads "0" and then stumbles on the next digit.
		return nil, d.failAt(intStart+1, "leading zeros are not allowed in numbers")
	}
	isFloat := false
	if d.i+1 < len(d.b) && d.b[d.i] == '.' && isDigit(d.b[d.i+1]) {
		d.i += 2
		for d.i < len(d.b) && isDigit(d.b[d.i]) {
			d.i++
		}
		isFloat = true
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		j := d.i + 1
		if j < len(d.b) && (d.b[j] == '+' || d.b[j] == '-') {
			j++
		}
		if j < len(d.b) && isDigit(d.b[j]) {
			for j < len(d.b) && isDigit(d.b[j]) {
				j++
			}
			d.i = j
			isFloat = true
		} // else Python's regex stops before the 'e' and the next token fails
	}
	text := d.b[start:d.i]
	if isFloat {
		return parsePyFloat(text), nil
	}
	switch {
	case nd <= 19: // u holds the value exactly (19 nines < 2**64)
		if !neg {
			if u <= math.MaxInt64 {
				return int64(u), nil
			}
			return u, nil
		}
		if u <= 1<<63 {
			return -int64(u), nil // -int64(1<<63) wraps to MinInt64, as wanted
		}
	case nd == 20 && !neg:
		if n, err := strconv.ParseUint(unsafe.String(unsafe.SliceData(text), len(text)), 10, 64); err == nil {
			return n, nil
		}
	case nd > maxIntDigits:
		return nil, d.failAt(start, fmt.Sprintf("integer of %d digits: Python refuses ints over %d digits (sys.int_info.default_max_str_digits)", nd, maxIntDigits))
	}
	n, ok := new(big.Int).SetString(string(text), 10)
	if !ok { // cannot happen: text is a valid decimal
		return nil, d.failAt(start, "bad number "+strconv.Quote(string(text)))
	}
	return n, nil
}

// parsePyFloat converts text matching the JSON number grammar as Python's
// float() does: correctly rounded, overflowing to ±Inf and underflowing to
// ±0.
func parsePyFloat(text []byte) float64 {
	if len(text) > 100 {
		return parseLongFloat(text)
	}
	f, _ := strconv.ParseFloat(unsafe.String(unsafe.SliceData(text), len(text)), 64)
	return f // on ErrRange f is ±Inf or ±0, as Python's float() gives
}

// parseLongFloat handles long number texts, which strconv.ParseFloat gets
// wrong in two cases (Go 1.26): over 800 digits before the point with a
// negative exponent ("1" + 4299 zeros + "e-1216" gives 0, not +Inf), and
// exponents with more than 5 digits against thousands of leading zeros. The
// text is rewritten as sign "0." digits "e" exponent, a form ParseFloat
// reads exactly whatever the number of digits, with the exponent computed
// here.
func parseLongFloat(text []byte) float64 {
	neg := text[0] == '-'
	i := 0
	if neg {
		i++
	}
	var digits []byte
	pointPos := 0 // the value is 0.DIGITS * 10**pointPos
	leading := true
	for ; i < len(text) && isDigit(text[i]); i++ {
		if leading && text[i] == '0' {
			continue
		}
		leading = false
		digits = append(digits, text[i])
		pointPos++
	}
	if i < len(text) && text[i] == '.' {
		for i++; i < len(text) && isDigit(text[i]); i++ {
			if leading && text[i] == '0' {
				pointPos--
				continue
			}
			leading = false
			digits = append(digits, text[i])
		}
	}
	if i < len(text) { // exponent
		i++
		eneg := false
		if text[i] == '+' || text[i] == '-' {
			eneg = text[i] == '-'
			i++
		}
		var e int64
		for ; i < len(text); i++ {
			if e < 1e12 { // saturate: far beyond any float's range
				e = e*10 + int64(text[i]-'0')
			}
		}
		if eneg {
			e = -e
		}
		pointPos64 := int64(pointPos) + e
		switch {
		case pointPos64 > 1e6:
			pointPos = 1e6
		case pointPos64 < -1e6:
			pointPos = -1e6
		default:
			pointPos = int(pointPos64)
		}
	}
	var f float64
	switch {
	case len(digits) == 0:
		f = 0
	case pointPos > 400:
		f = math.Inf(1)
	case pointPos < -400:
		f = 0
	default:
		s := make([]byte, 0, len(digits)+16)
		s = append(s, "0."...)
		s = append(s, digits...)
		s = append(s, 'e')
		s = strconv.AppendInt(s, int64(pointPos), 10)
		f, _ = strconv.ParseFloat(string(s), 64)
	}
	if neg {
		f = -f
	}
	return f
}

// jsonStrStop marks the bytes that end the plain run of a string: the
// quote, the backslash, control characters and the start of non-ASCII.
var jsonStrStop = func() (t [256]bool) {
	for c := range t {
		t[c] = c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf
	}
	return t
}()

// key reads a property name, sharing the string of common oslo keys.
func (d *jsonDecoder) key() (string, error) {
	start := d.i + 1
	j := start
	for j < len(d.b) && !jsonStrStop[d.b[j]] {
		j++
	}
	if j < len(d.b) && d.b[j] == '"' {
		if s, ok := commonKey(d.b[start:j]); ok {
			d.i = j + 1
			return s, nil
		}
	}
	return d.str()
}

// commonKey returns the interned string for keys every message carries.
func commonKey(b []byte) (string, bool) {
	switch string(b) { // no allocation: the compiler compares in place
	case "method":
		return "method", true
	case "args":
		return "args", true
	case "version":
		return "version", true
	case "namespace":
		return "namespace", true
	case "message_id":
		return "message_id", true
	case "publisher_id":
		return "publisher_id", true
	case "event_type":
		return "event_type", true
	case "priority":
		return "priority", true
	case "payload":
		return "payload", true
	case "timestamp":
		return "timestamp", true
	case "class":
		return "class", true
	case "module":
		return "module", true
	case "message":
		return "message", true
	case "tb":
		return "tb", true
	case "kwargs":
		return "kwargs", true
	case "user":
		return "user", true
	case "tenant":
		return "tenant", true
	case "request_id":
		return "request_id", true
	case "global_request_id":
		return "global_request_id", true
	case "user_id":
		return "user_id", true
	case "project_id":
		return "project_id", true
	case "user_name":
		return "user_name", true
	case "project_name":
		return "project_name", true
	case "roles":
		return "roles", true
	case "is_admin":
		return "is_admin", true
	case "read_only":
		return "read_only", true
	case "auth_token":
		return "auth_token", true
	}
	return "", false
}

// str reads a string at d.i (which is '"').
func (d *jsonDecoder) str() (string, error) {
	open := d.i
	d.i++
	start := d.i
	// Fast path: no escapes; non-ASCII only checked for being UTF-8.
	for d.i < len(d.b) {
		c := d.b[d.i]
		if !jsonStrStop[c] {
			d.i++
			continue
		}
		if c == '"' {
			s := string(d.b[start:d.i])
			d.i++
			return s, nil
		}
		if c < utf8.RuneSelf {
			break // escape or control character
		}
		r, size := utf8.DecodeRune(d.b[d.i:])
		if r == utf8.RuneError && size == 1 {
			return "", d.fail("invalid UTF-8 in a string")
		}
		d.i += size
	}
	out := make([]byte, 0, d.i-start+16)
	out = append(out, d.b[start:d.i]...)
	for {
		if d.i >= len(d.b) {
			return "", d.failAt(open, "unterminated string")
		}
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return string(out), nil
		case c < 0x20:
			return "", d.fail(fmt.Sprintf("invalid control character 0x%02x in a string", c))
		case c == '\\':
			if d.i+1 >= len(d.b) {
				return "", d.failAt(open, "unterminated string")
			}
			esc := d.b[d.i+1]
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
				r, ok := d.hex4(d.i + 2)
				if !ok {
					return "", d.fail("invalid \\u escape: want 4 hex digits")
				}
				d.i += 6
				if utf16.IsSurrogate(r) {
					// Python joins a high surrogate with a following \u low
					// surrogate (failing on bad hex there); anything else
					// leaves a lone surrogate, which Go strings cannot hold.
					r2 := rune(-1)
					if r < 0xdc00 && d.i+6 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
						var ok bool
						if r2, ok = d.hex4(d.i + 2); !ok {
							return "", d.fail("invalid \\u escape: want 4 hex digits")
						}
					}
					if p := utf16.DecodeRune(r, r2); p != utf8.RuneError {
						r = p
						d.i += 6
					} else {
						r = utf8.RuneError
					}
				}
				out = utf8.AppendRune(out, r)
				continue
			default:
				return "", d.fail(fmt.Sprintf("invalid \\escape %s", describeByte(d.b, d.i+1)))
			}
			d.i += 2
		case c < utf8.RuneSelf:
			out = append(out, c)
			d.i++
		default:
			r, size := utf8.DecodeRune(d.b[d.i:])
			if r == utf8.RuneError && size == 1 {
				return "", d.fail("invalid UTF-8 in a string")
			}
			out = append(out, d.b[d.i:d.i+size]...)
			d.i += size
		}
	}
}

// hex4 reads the four hex digits at b[at:].
func (d *jsonDecoder) hex4(at int) (rune, bool) {
	if at+4 > len(d.b) {
		return 0, false
	}
	var r rune
	for k := 0; k < 4; k++ {
		h, ok := unhex(d.b[at+k])
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(h)
	}
	return r, true
}
