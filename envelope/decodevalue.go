package envelope

import (
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// FieldError says why a decoded value does not fit the Go value it was
// decoded into, and where. It matches ErrDecode with errors.Is.
type FieldError struct {
	// Path is where in the value, e.g. "spec.hosts[2].name" ("" for the
	// value itself). Keys are the dict's keys, as the peer sent them.
	Path string
	// Type is the Go type that did not fit.
	Type string
	// Got names the Python value found: "a string", "an int", "a dict", ...
	Got    string
	Reason string
}

func (e *FieldError) Error() string {
	where := e.Path
	if where == "" {
		where = "value"
	}
	s := fmt.Sprintf("envelope: cannot decode %s (%s) into Go %s", where, e.Got, e.Type)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Is makes errors.Is(err, ErrDecode) hold.
func (e *FieldError) Is(target error) bool { return target == ErrDecode }

// DecodeValue stores the model value v (what the decoders produce: a
// result, an argument, a payload) into the Go value dst points to, as
// encoding/json's Unmarshal would store the same JSON:
//
//   - a dict fills a struct by field names (see ToMap for the naming
//     rules; an exact match first, then a case-insensitive one; keys
//     with no field are ignored), or a map with string (or integer) keys;
//   - a list (or set) fills a slice or an array; an int fills any Go int
//     or float type it fits, a float any float type; str fills a string,
//     []byte (and bytes a string, when UTF-8); a datetime, or a str in
//     to_primitive's "%Y-%m-%dT%H:%M:%S.%f" (naive: UTC) or RFC 3339,
//     fills a time.Time;
//   - None sets a pointer, slice, map or interface to nil and leaves
//     other values unchanged;
//   - an interface{} takes the model value as it is; a value whose type
//     is assignable to dst's is stored as it is;
//   - a json.Unmarshaler is given the value's JSON, an
//     encoding.TextUnmarshaler a str.
//
// Anything that does not fit is a *FieldError naming the path.
func DecodeValue(v any, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return &FieldError{Type: goTypeName(dst), Got: typeName(v), Reason: "the destination must be a non-nil pointer"}
	}
	if err := assign(rv.Elem(), v); err != nil {
		return err
	}
	return nil
}

var (
	timeType            = reflect.TypeFor[time.Time]()
	mapPtrType          = reflect.TypeFor[*Map]()
	uuidType            = reflect.TypeFor[UUID]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func misfit(dst reflect.Value, v any, reason string) *FieldError {
	return &FieldError{Type: dst.Type().String(), Got: pyTypeName(v), Reason: reason}
}

func fieldKey(err *FieldError, k string) *FieldError {
	if err.Path == "" || err.Path[0] == '[' {
		err.Path = k + err.Path
	} else {
		err.Path = k + "." + err.Path
	}
	return err
}

func fieldIndex(err *FieldError, i int) *FieldError {
	if err.Path == "" || err.Path[0] == '[' {
		err.Path = "[" + strconv.Itoa(i) + "]" + err.Path
	} else {
		err.Path = "[" + strconv.Itoa(i) + "]." + err.Path
	}
	return err
}

// pyTypeName is typeName for the other model types too.
func pyTypeName(v any) string {
	switch v.(type) {
	case *big.Int:
		return "an int"
	case time.Time:
		return "a datetime"
	case Set, FrozenSet:
		return "a set"
	case UUID:
		return "a UUID"
	case Date:
		return "a date"
	}
	return typeName(v)
}

// assign stores v into dst, which is settable.
func assign(dst reflect.Value, v any) *FieldError {
	t := dst.Type()
	if v == nil {
		switch dst.Kind() {
		case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice:
			dst.SetZero()
		}
		return nil
	}
	switch t {
	case timeType:
		tm, err := timeOf(v)
		if err != nil {
			return misfit(dst, v, err.Error())
		}
		dst.Set(reflect.ValueOf(tm))
		return nil
	case uuidType:
		if s, ok := v.(string); ok {
			u, err := ParseUUID(s)
			if err != nil {
				return misfit(dst, v, err.Error())
			}
			dst.Set(reflect.ValueOf(u))
			return nil
		}
	case mapPtrType:
		switch m := v.(type) {
		case *Map:
			dst.Set(reflect.ValueOf(m))
			return nil
		case Map:
			dst.Set(reflect.ValueOf(&m))
			return nil
		}
		return misfit(dst, v, "")
	}
	if dst.Kind() == reflect.Pointer {
		if dst.IsNil() {
			dst.Set(reflect.New(t.Elem()))
		}
		return assign(dst.Elem(), v)
	}
	if dst.Kind() == reflect.Interface {
		vv := reflect.ValueOf(v)
		if !vv.Type().AssignableTo(t) {
			return misfit(dst, v, "the value does not implement it")
		}
		dst.Set(vv)
		return nil
	}
	if vt := reflect.TypeOf(v); vt.AssignableTo(t) && vt.Kind() != reflect.Slice && vt.Kind() != reflect.Map {
		dst.Set(reflect.ValueOf(v))
		return nil
	}
	if dst.CanAddr() {
		switch u := dst.Addr().Interface().(type) {
		case json.Unmarshaler:
			b, err := AppendJSON(nil, v)
			if err != nil {
				return misfit(dst, v, err.Error())
			}
			if err := u.UnmarshalJSON(b); err != nil {
				return misfit(dst, v, "UnmarshalJSON: "+err.Error())
			}
			return nil
		case encoding.TextUnmarshaler:
			s, ok := v.(string)
			if !ok {
				return misfit(dst, v, "it reads text")
			}
			if err := u.UnmarshalText([]byte(s)); err != nil {
				return misfit(dst, v, "UnmarshalText: "+err.Error())
			}
			return nil
		}
	}
	switch dst.Kind() {
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return misfit(dst, v, "")
		}
		dst.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := asBig(v)
		if !ok {
			return misfit(dst, v, "")
		}
		if !n.IsInt64() || dst.OverflowInt(n.Int64()) {
			return misfit(dst, v, n.String()+" overflows it")
		}
		dst.SetInt(n.Int64())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, ok := asBig(v)
		if !ok {
			return misfit(dst, v, "")
		}
		if !n.IsUint64() || dst.OverflowUint(n.Uint64()) {
			return misfit(dst, v, n.String()+" does not fit")
		}
		dst.SetUint(n.Uint64())
	case reflect.Float32, reflect.Float64:
		var f float64
		if x, ok := v.(float64); ok {
			f = x
		} else if n, ok := asBig(v); ok {
			f, _ = new(big.Float).SetInt(n).Float64()
		} else {
			return misfit(dst, v, "")
		}
		if dst.Kind() == reflect.Float32 && !math.IsInf(f, 0) && math.Abs(f) > math.MaxFloat32 {
			return misfit(dst, v, "it overflows float32")
		}
		dst.SetFloat(f)
	case reflect.String:
		switch s := v.(type) {
		case string:
			dst.SetString(s)
		case []byte:
			if !utf8.Valid(s) {
				return misfit(dst, v, "the bytes are not UTF-8")
			}
			dst.SetString(string(s))
		case UUID:
			dst.SetString(s.String())
		default:
			return misfit(dst, v, "")
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			switch b := v.(type) {
			case []byte:
				dst.SetBytes(append([]byte(nil), b...))
				return nil
			case string:
				dst.SetBytes([]byte(b))
				return nil
			}
		}
		l, ok := listOf(v)
		if !ok {
			return misfit(dst, v, "")
		}
		s := reflect.MakeSlice(t, len(l), len(l))
		for i, e := range l {
			if err := assign(s.Index(i), e); err != nil {
				return fieldIndex(err, i)
			}
		}
		dst.Set(s)
	case reflect.Array:
		l, ok := listOf(v)
		if !ok {
			return misfit(dst, v, "")
		}
		if len(l) > dst.Len() {
			return misfit(dst, v, fmt.Sprintf("%d items for %d places", len(l), dst.Len()))
		}
		for i := 0; i < dst.Len(); i++ {
			if i >= len(l) {
				dst.Index(i).SetZero()
				continue
			}
			if err := assign(dst.Index(i), l[i]); err != nil {
				return fieldIndex(err, i)
			}
		}
	case reflect.Map:
		items, ok := itemsOf(v)
		if !ok {
			return misfit(dst, v, "")
		}
		kt := t.Key()
		m := dst
		if m.IsNil() {
			m = reflect.MakeMapWithSize(t, len(items))
		}
		for _, kv := range items {
			k := reflect.New(kt).Elem()
			switch {
			case kt.Kind() == reflect.String:
				k.SetString(kv.Key)
			case reflect.PointerTo(kt).Implements(textUnmarshalerType):
				if err := k.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(kv.Key)); err != nil {
					return fieldKey(misfit(k, kv.Key, "key: "+err.Error()), kv.Key)
				}
			case k.CanInt():
				n, err := strconv.ParseInt(kv.Key, 10, 64)
				if err != nil || k.OverflowInt(n) {
					return fieldKey(misfit(k, kv.Key, "the key is no int of that size"), kv.Key)
				}
				k.SetInt(n)
			case k.CanUint():
				n, err := strconv.ParseUint(kv.Key, 10, 64)
				if err != nil || k.OverflowUint(n) {
					return fieldKey(misfit(k, kv.Key, "the key is no uint of that size"), kv.Key)
				}
				k.SetUint(n)
			default:
				return misfit(dst, v, "map keys must be strings, ints or TextUnmarshalers")
			}
			e := reflect.New(t.Elem()).Elem()
			if err := assign(e, kv.Value); err != nil {
				return fieldKey(err, kv.Key)
			}
			m.SetMapIndex(k, e)
		}
		dst.Set(m)
	case reflect.Struct:
		items, ok := itemsOf(v)
		if !ok {
			return misfit(dst, v, "")
		}
		si := structInfoOf(t)
		for _, kv := range items {
			i, ok := si.byName[kv.Key]
			if !ok {
				if i, ok = si.byFold[strings.ToLower(kv.Key)]; !ok {
					continue
				}
			}
			f := &si.fields[i]
			fv, err := fieldFor(dst, f)
			if err != nil {
				return fieldKey(misfit(dst, kv.Value, err.Error()), kv.Key)
			}
			val := kv.Value
			if f.quoted {
				if val, err = unquoteField(fv, val); err != nil {
					return fieldKey(misfit(fv, kv.Value, err.Error()), kv.Key)
				}
			}
			if err := assign(fv, val); err != nil {
				return fieldKey(err, kv.Key)
			}
		}
	default:
		return misfit(dst, v, "goslo cannot decode into this kind")
	}
	return nil
}

// fieldFor walks to a struct field, allocating embedded nil pointers.
func fieldFor(v reflect.Value, f *structField) (reflect.Value, error) {
	for n, x := range f.index {
		if n > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				if !v.CanSet() {
					return v, fmt.Errorf("the embedded pointer %s is unexported and nil", v.Type())
				}
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	if !v.CanSet() {
		if !v.CanAddr() {
			return v, fmt.Errorf("the field %s cannot be set", f.name)
		}
		v = reflect.NewAt(v.Type(), unsafeAddr(v)).Elem()
	}
	return v, nil
}

// unquoteField reads a ",string" field's str as its JSON text.
func unquoteField(fv reflect.Value, v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("a \",string\" field wants a str")
	}
	for fv.Kind() == reflect.Pointer {
		fv = reflect.New(fv.Type().Elem()).Elem()
	}
	if fv.Kind() == reflect.String {
		var out string
		if err := json.Unmarshal([]byte(s), &out); err != nil {
			return nil, fmt.Errorf("bad quoted string: %w", err)
		}
		return out, nil
	}
	if fv.Kind() == reflect.Bool {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	w, err := DecodeJSON([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("bad quoted number %q", s)
	}
	return w, nil
}

func listOf(v any) ([]any, bool) {
	switch l := v.(type) {
	case []any:
		return l, true
	case Set:
		return l, true
	case FrozenSet:
		return l, true
	}
	return nil, false
}

func itemsOf(v any) ([]KV, bool) {
	switch m := v.(type) {
	case *Map:
		return m.Items(), true
	case Map:
		return m.items, true
	case map[string]any:
		return sortedItems(m), true
	}
	return nil, false
}

// naiveLayout is to_primitive's datetime format, Go spelling.
const naiveLayout = "2006-01-02T15:04:05.999999999"

// timeOf reads a datetime: the model's time.Time, or a str as
// to_primitive writes it (naive, read as UTC) or in RFC 3339.
func timeOf(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case XMLRPCDateTime:
		return x.Time, nil
	case string:
		if t, err := time.ParseInLocation(naiveLayout, x, time.UTC); err == nil {
			return t, nil
		}
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return t, nil
		}
		return time.Time{}, fmt.Errorf("%q is no datetime (want %%Y-%%m-%%dT%%H:%%M:%%S.%%f or RFC 3339)", x)
	}
	return time.Time{}, fmt.Errorf("want a datetime or its text")
}
