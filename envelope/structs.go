package envelope

import (
	"cmp"
	"encoding"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// Go structs in the value model.
//
// A struct is the dict a Python endpoint would build for it, keys in field
// order, with encoding/json's rules for which fields exist and what they
// are called: the `json` tag's name ("-" skips the field), omitempty and
// omitzero, the ",string" option for numbers, bools and strings, the
// fields of embedded structs promoted (the shallowest, or the only tagged
// one, wins a name; a tie drops the name), unexported fields left out. A
// nil slice or map field is None, as encoding/json writes null. Values
// inside are the usual model values, so a time.Time field is what
// to_primitive writes for a datetime (JSON) or msgpackutils' datetime
// extension (msgpack).
//
// Where goslo differs from encoding/json: []byte is Python bytes (UTF-8
// text in JSON, bin in msgpack), never base64; a Valuer wins over
// json.Marshaler. json.Marshaler is honoured: its output is read back as
// Python's json.loads would and that value is sent, in either codec.
// encoding.TextMarshaler makes a str.

// structField is one field of a struct as a dict entry.
type structField struct {
	name      string
	index     []int
	typ       reflect.Type
	tagged    bool
	omitEmpty bool
	omitZero  bool
	quoted    bool
	ro        bool // behind an unexported embedded field
}

// structInfo is the dict shape of a struct type.
type structInfo struct {
	fields []structField
	byName map[string]int // exact name -> field
	byFold map[string]int // lower-cased name -> first such field
	// unsafeRead is set when some field lies behind an unexported
	// embedded struct: reflect refuses Interface on such fields, which
	// encoding/json reads all the same.
	unsafeRead bool
}

var structInfos sync.Map // reflect.Type -> *structInfo

func structInfoOf(t reflect.Type) *structInfo {
	if si, ok := structInfos.Load(t); ok {
		return si.(*structInfo)
	}
	si := buildStructInfo(t)
	actual, _ := structInfos.LoadOrStore(t, si)
	return actual.(*structInfo)
}

// buildStructInfo is encoding/json's typeFields: a breadth-first walk of
// the embedded structs, then the dominant field of each name.
func buildStructInfo(t reflect.Type) *structInfo {
	type queued struct {
		typ   reflect.Type
		index []int
		ro    bool // reached through an unexported embedded field
	}
	var fields []structField
	var current []queued
	next := []queued{{typ: t}}
	var count, nextCount map[reflect.Type]int
	visited := map[reflect.Type]bool{}
	for len(next) > 0 {
		current, next = next, current[:0]
		count, nextCount = nextCount, map[reflect.Type]int{}
		for _, q := range current {
			if visited[q.typ] {
				continue
			}
			visited[q.typ] = true
			for i := 0; i < q.typ.NumField(); i++ {
				sf := q.typ.Field(i)
				if sf.Anonymous {
					ft := sf.Type
					if ft.Kind() == reflect.Pointer {
						ft = ft.Elem()
					}
					if !sf.IsExported() && ft.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				if !validTagName(name) {
					name = ""
				}
				index := append(slices.Clip(q.index), i)
				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if name != "" || !sf.Anonymous || ft.Kind() != reflect.Struct {
					f := structField{name: name, index: index, typ: sf.Type, tagged: name != "", ro: q.ro}
					if f.name == "" {
						f.name = sf.Name
					}
					for _, o := range strings.Split(opts, ",") {
						switch o {
						case "omitempty":
							f.omitEmpty = true
						case "omitzero":
							f.omitZero = true
						case "string":
							switch ft.Kind() {
							case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
								reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
								reflect.Float32, reflect.Float64, reflect.String:
								f.quoted = true
							}
						}
					}
					fields = append(fields, f)
					if count[q.typ] > 1 {
						// Two embeddings of one type at one depth: the
						// duplicate annihilates the name below.
						fields = append(fields, fields[len(fields)-1])
					}
					continue
				}
				nextCount[ft]++
				if nextCount[ft] == 1 {
					next = append(next, queued{typ: ft, index: index, ro: q.ro || !sf.IsExported()})
				}
			}
		}
	}
	si := &structInfo{}
	slices.SortStableFunc(fields, func(a, b structField) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if c := cmp.Compare(len(a.index), len(b.index)); c != 0 {
			return c
		}
		if a.tagged != b.tagged {
			if a.tagged {
				return -1
			}
			return 1
		}
		return slices.Compare(a.index, b.index)
	})
	out := fields[:0]
	for i := 0; i < len(fields); {
		j := i + 1
		for j < len(fields) && fields[j].name == fields[i].name {
			j++
		}
		group := fields[i:j]
		if len(group) == 1 || len(group[0].index) < len(group[1].index) || group[0].tagged != group[1].tagged {
			out = append(out, group[0])
		}
		i = j
	}
	slices.SortFunc(out, func(a, b structField) int { return slices.Compare(a.index, b.index) })
	si.fields = out
	for _, f := range out {
		si.unsafeRead = si.unsafeRead || f.ro
	}
	si.byName = make(map[string]int, len(out))
	si.byFold = make(map[string]int, len(out))
	for i, f := range out {
		si.byName[f.name] = i
		if _, dup := si.byFold[strings.ToLower(f.name)]; !dup {
			si.byFold[strings.ToLower(f.name)] = i
		}
	}
	return si
}

// validTagName is encoding/json's isValidTag.
func validTagName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c > 0x7f):
			return false
		}
	}
	return true
}

// readable returns v as a value whose Interface works: fields behind an
// unexported embedded struct are read through their address.
func readable(v reflect.Value) reflect.Value {
	if v.CanInterface() {
		return v
	}
	if v.CanAddr() {
		return reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
	}
	return v
}

// structMap turns a struct value into its dict. The values in it are the
// fields' own values, which the encoders take in turn.
func structMap(rv reflect.Value) (*Map, string) {
	si := structInfoOf(rv.Type())
	if si.unsafeRead && !rv.CanAddr() {
		c := reflect.New(rv.Type()).Elem()
		c.Set(rv)
		rv = c
	}
	m := MapWithCap(len(si.fields))
fields:
	for i := range si.fields {
		f := &si.fields[i]
		fv := rv
		for _, x := range f.index {
			if fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					continue fields // an embedded nil pointer has no fields
				}
				fv = fv.Elem()
			}
			fv = fv.Field(x)
		}
		if f.omitEmpty && isEmptyValue(fv) || f.omitZero && isZeroValue(fv) {
			continue
		}
		fv = readable(fv)
		if !fv.CanInterface() {
			return nil, "field " + f.name + " cannot be read"
		}
		switch {
		case (fv.Kind() == reflect.Slice || fv.Kind() == reflect.Map) && fv.IsNil():
			m.Append(f.name, nil)
		case f.quoted:
			m.Append(f.name, quotedField(fv))
		default:
			m.Append(f.name, fv.Interface())
		}
	}
	return m, ""
}

// quotedField is a ",string" field: its JSON text as a str.
func quotedField(v reflect.Value) any {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, v.Type().Bits())
	case reflect.String:
		b, _ := json.Marshal(v.String())
		return string(b)
	}
	return v.Interface()
}

// isEmptyValue is encoding/json's omitempty test.
func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

// isZeroValue is encoding/json's omitzero test: an IsZero method when the
// type has one, the zero value otherwise.
func isZeroValue(v reflect.Value) bool {
	if z, ok := readable(v).Interface().(interface{ IsZero() bool }); ok {
		if v.Kind() == reflect.Pointer && v.IsNil() {
			return true
		}
		return z.IsZero()
	}
	return v.IsZero()
}

var (
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// marshaled is the model value of a json.Marshaler or an
// encoding.TextMarshaler (ok false when v is neither).
func marshaled(v any) (out any, ok bool, reason string) {
	switch m := v.(type) {
	case json.Marshaler:
		b, err := m.MarshalJSON()
		if err != nil {
			return nil, false, "MarshalJSON: " + err.Error()
		}
		w, err := DecodeJSON(b)
		if err != nil {
			return nil, false, "MarshalJSON wrote what json.loads refuses: " + err.Error()
		}
		return w, true, ""
	case encoding.TextMarshaler:
		b, err := m.MarshalText()
		if err != nil {
			return nil, false, "MarshalText: " + err.Error()
		}
		return string(b), true, ""
	}
	return nil, false, ""
}

// ToMap returns the dict v stands for: a *Map as it is, a Map, a
// string-keyed Go map in key order, a struct (or a pointer to one) by its
// fields, a json.Marshaler whose JSON is an object. Values inside are left
// for the encoders. Anything else, nil included, is an error.
func ToMap(v any) (*Map, error) {
	switch x := v.(type) {
	case *Map:
		if x != nil {
			return x, nil
		}
	case Map:
		return &x, nil
	case map[string]any:
		m := MapWithCap(len(x))
		m.items = sortedItems(x)
		return m, nil
	}
	w := v
	for depth := 0; depth < 8 && w != nil; depth++ {
		if _, isValuer := w.(Valuer); isValuer {
			var err error
			if w, err = w.(Valuer).OsloValue(); err != nil {
				return nil, &EncodeError{Codec: "dict", Type: goTypeName(v), Reason: "OsloValue: " + err.Error()}
			}
			continue
		}
		if m, ok := w.(*Map); ok && m != nil {
			return m, nil
		}
		if m, ok := w.(Map); ok {
			return &m, nil
		}
		next, ok, reason := fromReflect(w)
		if !ok {
			return nil, &EncodeError{Codec: "dict", Type: goTypeName(v), Reason: reason}
		}
		w = next
	}
	return nil, &EncodeError{Codec: "dict", Type: goTypeName(v), Reason: "not a dict (want a struct, a string-keyed map or a *Map)"}
}

func goTypeName(v any) string {
	if v == nil {
		return "nil"
	}
	return reflect.TypeOf(v).String()
}

func unsafeAddr(v reflect.Value) unsafe.Pointer { return unsafe.Pointer(v.UnsafeAddr()) }
