package envelope

import (
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// MarshalJSON encodes v as oslo.serialization's jsonutils.dump_as_bytes does.
func MarshalJSON(v any) ([]byte, error) { return AppendJSON(make([]byte, 0, 256), v) }

// AppendJSON appends v as jsonutils.dump_as_bytes writes it: Python's
// json.dumps(v, default=to_primitive) encoded as UTF-8.
//
//   - separators ", " and ": "; ensure_ascii: every character outside
//     0x20..0x7e is escaped, \" \\ \n \r \t \b \f in short form, the others
//     as \uXXXX in lower case, astral characters as surrogate pairs;
//   - *Map in insertion order, map[string]any (and other string-keyed Go
//     maps) in sorted key order;
//   - every Go int kind, uint64 and *big.Int in decimal (integers of more
//     than 4300 digits are refused, as CPython's int-to-str limit does);
//     float64 as repr(float), with the literals NaN, Infinity, -Infinity;
//   - to_primitive's fallbacks: time.Time as "%Y-%m-%dT%H:%M:%S.%f" (zone
//     dropped, microseconds truncated, the year not zero-padded below 1000
//     as glibc's strftime writes it; years outside 1..9999 are refused),
//     XMLRPCDateTime likewise at second precision, UUID hyphenated,
//     IPAddress as netaddr's str, []byte as its UTF-8 text (refused when not
//     UTF-8, as to_primitive's decode fails), Set, FrozenSet and any other
//     slice or array as an array, Count as the text of its repr;
//   - a Valuer is written as the value it returns; a json.Marshaler as
//     what its JSON reads as, an encoding.TextMarshaler as a str;
//   - a struct as the dict of its fields, by encoding/json's rules (see
//     ToMap).
//
// datetime.date (Date) makes Python fail with "Circular reference
// detected", and msgpack extension values (Ext) have no JSON form: both are
// refused, as are strings that are not valid UTF-8 (a Python str cannot
// hold them), errors, channels, funcs and other Go types. Refusals
// are *EncodeError naming the path of the value, e.g. "[1].args.when". On
// error dst is returned unchanged.
func AppendJSON(dst []byte, v any) ([]byte, error) {
	e := jsonEncoder{buf: dst}
	if err := e.value(v, 0); err != nil {
		return dst, err
	}
	return e.buf, nil
}

type jsonEncoder struct {
	buf []byte
}

// jsonRefuse builds the error for v; the path is filled in while the error
// unwinds (see inKey, inIndex), so the happy path tracks nothing.
func jsonRefuse(v any, reason string) *EncodeError {
	return &EncodeError{Codec: "json", Type: fmt.Sprintf("%T", v), Reason: reason}
}

func inKey(err *EncodeError, k string) *EncodeError {
	err.Path = "." + k + err.Path
	return err
}

func inIndex(err *EncodeError, i int) *EncodeError {
	err.Path = "[" + strconv.Itoa(i) + "]" + err.Path
	return err
}

// value returns a *EncodeError, never a non-nil error interface holding a
// nil pointer: callers compare with nil before converting.
func (e *jsonEncoder) value(v any, depth int) *EncodeError {
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case string:
		if !e.str(x) {
			return jsonRefuse(v, "string is not valid UTF-8 (a Python str cannot hold it)")
		}
	case *Map:
		if x == nil {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		return e.object(v, x.items, depth)
	case []any:
		return e.array(x, depth)
	case int64:
		e.buf = strconv.AppendInt(e.buf, x, 10)
	case bool:
		if x {
			e.buf = append(e.buf, "true"...)
		} else {
			e.buf = append(e.buf, "false"...)
		}
	case float64:
		e.buf = AppendPythonFloat(e.buf, x)
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
			return nil
		}
		return e.bigInt(x)
	case float32:
		e.buf = AppendPythonFloat(e.buf, float64(x))
	case []byte:
		if !e.str(unsafe.String(unsafe.SliceData(x), len(x))) {
			return jsonRefuse(v, "bytes are not valid UTF-8 (to_primitive decodes them as UTF-8)")
		}
	case Map:
		return e.object(v, x.items, depth)
	case map[string]any:
		return e.object(v, sortedItems(x), depth)
	case Set:
		return e.array(x, depth)
	case FrozenSet:
		return e.array(x, depth)
	case []string:
		if depth >= MaxJSONDepth {
			return jsonRefuse(v, fmt.Sprintf("nesting deeper than %d (a cycle?)", MaxJSONDepth))
		}
		e.buf = append(e.buf, '[')
		for i, s := range x {
			if i > 0 {
				e.buf = append(e.buf, ", "...)
			}
			if !e.str(s) {
				return inIndex(jsonRefuse(s, "string is not valid UTF-8 (a Python str cannot hold it)"), i)
			}
		}
		e.buf = append(e.buf, ']')
	case time.Time:
		return e.datetime(v, x)
	case XMLRPCDateTime:
		return e.datetime(v, x.Time.Truncate(time.Second))
	case UUID:
		e.buf = append(e.buf, '"')
		e.buf = appendUUID(e.buf, x)
		e.buf = append(e.buf, '"')
	case IPAddress:
		if !x.IsValid() {
			return jsonRefuse(v, "the zero IPAddress is no address")
		}
		e.buf = append(e.buf, '"')
		e.buf = appendNetaddr(e.buf, x.Addr)
		e.buf = append(e.buf, '"')
	case Date:
		return jsonRefuse(v, "datetime.date has no JSON form in oslo (to_primitive fails: Circular reference detected)")
	case Count:
		// to_primitive's fallback for itertools.count: str(count).
		r, err := countRepr(x)
		if err != nil {
			return jsonRefuse(v, err.Error())
		}
		e.str(r)
	case Ext:
		return jsonRefuse(v, "msgpack extension values have no JSON form")
	case Valuer:
		if rv := reflect.ValueOf(x); rv.Kind() == reflect.Pointer && rv.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		if depth >= MaxJSONDepth {
			return jsonRefuse(v, fmt.Sprintf("nesting deeper than %d (a cycle?)", MaxJSONDepth))
		}
		w, err := x.OsloValue()
		if err != nil {
			return jsonRefuse(v, "OsloValue: "+err.Error())
		}
		return e.value(w, depth+1)
	case error:
		return jsonRefuse(v, "errors travel as failures, not as values")
	default:
		// The less common Go spellings: other slices and arrays, string-keyed
		// maps, pointers, named basic types.
		if depth >= MaxJSONDepth {
			return jsonRefuse(v, fmt.Sprintf("nesting deeper than %d (a cycle?)", MaxJSONDepth))
		}
		w, ok, reason := fromReflect(v)
		if !ok {
			return jsonRefuse(v, reason)
		}
		return e.value(w, depth+1)
	}
	return nil
}

func (e *jsonEncoder) object(v any, items []KV, depth int) *EncodeError {
	if depth >= MaxJSONDepth {
		return jsonRefuse(v, fmt.Sprintf("nesting deeper than %d (a cycle?)", MaxJSONDepth))
	}
	e.buf = append(e.buf, '{')
	for i := range items {
		if i > 0 {
			e.buf = append(e.buf, ", "...)
		}
		if !e.str(items[i].Key) {
			return jsonRefuse(items[i].Key, "key is not valid UTF-8 (a Python str cannot hold it)")
		}
		e.buf = append(e.buf, ": "...)
		if err := e.value(items[i].Value, depth+1); err != nil {
			return inKey(err, items[i].Key)
		}
	}
	e.buf = append(e.buf, '}')
	return nil
}

func (e *jsonEncoder) array(l []any, depth int) *EncodeError {
	if depth >= MaxJSONDepth {
		return jsonRefuse(l, fmt.Sprintf("nesting deeper than %d (a cycle?)", MaxJSONDepth))
	}
	e.buf = append(e.buf, '[')
	for i := range l {
		if i > 0 {
			e.buf = append(e.buf, ", "...)
		}
		if err := e.value(l[i], depth+1); err != nil {
			return inIndex(err, i)
		}
	}
	e.buf = append(e.buf, ']')
	return nil
}

// bigInt writes x in decimal, refusing what CPython's str(int) refuses.
func (e *jsonEncoder) bigInt(x *big.Int) *EncodeError {
	start := len(e.buf)
	e.buf = x.Append(e.buf, 10)
	// 2**14284 < 10**4300: shorter numbers need no counting.
	if x.BitLen() > 14284 {
		n := len(e.buf) - start
		if x.Sign() < 0 {
			n--
		}
		if n > maxIntDigits {
			e.buf = e.buf[:start]
			return jsonRefuse(x, fmt.Sprintf("integer of %d digits: Python refuses to write ints over %d digits (sys.int_info.default_max_str_digits)", n, maxIntDigits))
		}
	}
	return nil
}

func (e *jsonEncoder) datetime(v any, t time.Time) *EncodeError {
	if y := t.Year(); y < 1 || y > 9999 {
		return jsonRefuse(v, fmt.Sprintf("year %d is outside Python's datetime range 1..9999", y))
	}
	e.buf = append(e.buf, '"')
	e.buf = appendISODatetime(e.buf, t)
	e.buf = append(e.buf, '"')
	return nil
}

const lowerHex = "0123456789abcdef"

// jsonPlain marks the bytes json.dumps(ensure_ascii=True) copies unchanged.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str writes s with ensure_ascii escaping. It reports false, having written
// part of s, when s is not valid UTF-8.
func (e *jsonEncoder) str(s string) bool {
	e.buf = append(e.buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonPlain[c] {
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
			default: // other controls and DEL
				e.u4(rune(c))
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return false
		}
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
	return true
}

func (e *jsonEncoder) u4(r rune) {
	e.buf = append(e.buf, '\\', 'u', lowerHex[r>>12&0xf], lowerHex[r>>8&0xf], lowerHex[r>>4&0xf], lowerHex[r&0xf])
}
