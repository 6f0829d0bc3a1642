package tagged

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"strconv"
	"time"

	"github.com/goslo/goslo/envelope"
)

// ToTagged renders a model value in the tagged JSON form of tagged.py.
// Python tuples have no Go model type; lists are written as lists.
func ToTagged(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string:
		return x, nil
	case int:
		return json.Number(strconv.Itoa(x)), nil
	case int64:
		return json.Number(strconv.FormatInt(x, 10)), nil
	case uint64:
		return json.Number(strconv.FormatUint(x, 10)), nil
	case *big.Int:
		return json.Number(x.String()), nil
	case float64:
		return map[string]any{"$float": pyFloatRepr(x)}, nil
	case []byte:
		return map[string]any{"$bytes": hex.EncodeToString(x)}, nil
	case []any:
		return taggedList(x)
	case envelope.Set:
		l, err := taggedList(x)
		return map[string]any{"$set": l}, err
	case envelope.FrozenSet:
		l, err := taggedList(x)
		return map[string]any{"$frozenset": l}, err
	case *envelope.Map:
		pairs := make([]any, 0, x.Len())
		for _, kv := range x.Items() {
			tv, err := ToTagged(kv.Value)
			if err != nil {
				return nil, err
			}
			pairs = append(pairs, []any{kv.Key, tv})
		}
		return map[string]any{"$dict": pairs}, nil
	case time.Time:
		var tz any
		if x.Location() != time.UTC {
			tz = x.Location().String()
		}
		return map[string]any{"$datetime": []any{x.Year(), int(x.Month()), x.Day(), x.Hour(), x.Minute(), x.Second(), x.Nanosecond() / 1000, tz}}, nil
	case envelope.Date:
		return map[string]any{"$date": []any{x.Year, int(x.Month), x.Day}}, nil
	case envelope.UUID:
		return map[string]any{"$uuid": hex.EncodeToString(x[:])}, nil
	case envelope.Count:
		s, err := ToTagged(x.Start)
		if err != nil {
			return nil, err
		}
		st, err := ToTagged(x.Step)
		return map[string]any{"$count": []any{s, st}}, err
	case envelope.IPAddress:
		return map[string]any{"$ip": x.Addr.String()}, nil
	case envelope.XMLRPCDateTime:
		t := x.Time
		return map[string]any{"$xmlrpc": []any{t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second()}}, nil
	case envelope.Ext:
		return map[string]any{"$ext": []any{int(x.Code), hex.EncodeToString(x.Data)}}, nil
	}
	return nil, fmt.Errorf("tagged: no tagged form for %T", v)
}

func taggedList(x []any) ([]any, error) {
	out := make([]any, len(x))
	for i, e := range x {
		te, err := ToTagged(e)
		if err != nil {
			return nil, err
		}
		out[i] = te
	}
	return out, nil
}

func pyFloatRepr(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return string(envelope.AppendPythonFloat(nil, f))
}

// FromTagged reads the tagged form (as decoded by encoding/json with
// UseNumber) into a model value. Tuples become lists, as on the wire.
func FromTagged(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string:
		return x, nil
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u, nil
		}
		b, ok := new(big.Int).SetString(string(x), 10)
		if !ok {
			return nil, fmt.Errorf("tagged: bad int %q", x)
		}
		return b, nil
	case []any:
		return fromTaggedList(x)
	case map[string]any:
		if len(x) == 0 {
			return envelope.NewMap(), nil
		}
		if len(x) != 1 {
			return nil, fmt.Errorf("tagged: tagged object with %d keys", len(x))
		}
		for tag, body := range x {
			return fromTag(tag, body)
		}
	}
	return nil, fmt.Errorf("tagged: unexpected %T in tagged form", v)
}

func fromTaggedList(x []any) ([]any, error) {
	out := make([]any, len(x))
	for i, e := range x {
		v, err := FromTagged(e)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func ints(body any, n int) ([]int, error) {
	l, ok := body.([]any)
	if !ok || len(l) < n {
		return nil, fmt.Errorf("tagged: want %d ints, got %v", n, body)
	}
	out := make([]int, n)
	for i := 0; i < n; i++ {
		num, ok := l[i].(json.Number)
		if !ok {
			return nil, fmt.Errorf("tagged: want int, got %v", l[i])
		}
		v, err := strconv.Atoi(string(num))
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func fromTag(tag string, body any) (any, error) {
	switch tag {
	case "$float":
		s, _ := body.(string)
		switch s {
		case "nan":
			return math.NaN(), nil
		case "inf":
			return math.Inf(1), nil
		case "-inf":
			return math.Inf(-1), nil
		}
		return strconv.ParseFloat(s, 64)
	case "$dict":
		pairs, _ := body.([]any)
		m := envelope.MapWithCap(len(pairs))
		for _, p := range pairs {
			kv, ok := p.([]any)
			if !ok || len(kv) != 2 {
				return nil, fmt.Errorf("tagged: bad dict pair %v", p)
			}
			k, ok := kv[0].(string)
			if !ok {
				return nil, fmt.Errorf("tagged: non-string dict key %v", kv[0])
			}
			v, err := FromTagged(kv[1])
			if err != nil {
				return nil, err
			}
			m.Set(k, v)
		}
		return m, nil
	case "$tuple":
		l, _ := body.([]any)
		return fromTaggedList(l)
	case "$set", "$frozenset":
		l, _ := body.([]any)
		vs, err := fromTaggedList(l)
		if tag == "$set" {
			return envelope.Set(vs), err
		}
		return envelope.FrozenSet(vs), err
	case "$bytes":
		s, _ := body.(string)
		return hex.DecodeString(s)
	case "$datetime":
		n, err := ints(body, 7)
		if err != nil {
			return nil, err
		}
		loc := time.UTC
		if tz, ok := body.([]any)[7].(string); ok {
			if tz == "UTC" {
				loc = time.FixedZone("UTC", 0)
			} else if loc, err = time.LoadLocation(tz); err != nil {
				return nil, err
			}
		}
		return time.Date(n[0], time.Month(n[1]), n[2], n[3], n[4], n[5], n[6]*1000, loc), nil
	case "$date":
		n, err := ints(body, 3)
		if err != nil {
			return nil, err
		}
		return envelope.Date{Year: n[0], Month: time.Month(n[1]), Day: n[2]}, nil
	case "$uuid":
		s, _ := body.(string)
		return envelope.ParseUUID(s)
	case "$count":
		l, ok := body.([]any)
		if !ok || len(l) != 2 {
			return nil, fmt.Errorf("tagged: bad count %v", body)
		}
		s, err := FromTagged(l[0])
		if err != nil {
			return nil, err
		}
		st, err := FromTagged(l[1])
		return envelope.Count{Start: s, Step: st}, err
	case "$ip":
		s, _ := body.(string)
		a, err := netip.ParseAddr(s)
		return envelope.IPAddress{Addr: a}, err
	case "$xmlrpc":
		n, err := ints(body, 6)
		if err != nil {
			return nil, err
		}
		return envelope.XMLRPCDateTime{Time: time.Date(n[0], time.Month(n[1]), n[2], n[3], n[4], n[5], 0, time.UTC)}, nil
	case "$ext":
		l, ok := body.([]any)
		if !ok || len(l) != 2 {
			return nil, fmt.Errorf("tagged: bad ext %v", body)
		}
		c, err := strconv.Atoi(string(l[0].(json.Number)))
		if err != nil {
			return nil, err
		}
		d, err := hex.DecodeString(l[1].(string))
		return envelope.Ext{Code: int8(c), Data: d}, err
	}
	return nil, fmt.Errorf("tagged: unknown tag %q", tag)
}
