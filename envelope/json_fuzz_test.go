package envelope

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/goslo/goslo/internal/vectors"
)

// FuzzDecodeJSON (fuzz_test.go) checks that what decodes encodes and
// decodes again to an equal value. The targets here add two oracles.

// FuzzJSONAgainstStdlib compares DecodeJSON with encoding/json, which reads
// the same RFC 8259 grammar Python's json does, less NaN/Infinity and plus
// invalid UTF-8: both must accept the same documents (up to the depth and
// integer-length limits Python has and encoding/json has not) and read the
// same values. Whatever DecodeJSON accepts must also encode, be pure ASCII,
// and encode to the same bytes again after a second decoding.
func FuzzJSONAgainstStdlib(f *testing.F) {
	for _, p := range vectors.Payloads(f) {
		if p.Serialization == "json" {
			f.Add(p.Bytes)
		}
	}
	for _, s := range []string{
		`NaN`, `[-0.0, 1e400, -1e-400]`, `"\ud83d\ude80 \ud800 \udc00\ud800"`, `{"a": 1, "a": 2, "b": {"a": []}}`,
		`123456789012345678901234567890`, `[9223372036854775808, -9223372036854775809, 18446744073709551616]`,
		`1` + strings.Repeat("0", 900) + `e-890`, ` [1 , {"\u00e9" : "\t"} ] `, `[1,]`, `01`, "\"\xff\"", `"\u12"`,
		strings.Repeat("[", 1001) + strings.Repeat("]", 1001),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeJSON(b)
		stdOK := json.Valid(b) && utf8.Valid(b)
		if err != nil {
			de, ok := err.(*DecodeError)
			if !ok {
				t.Fatalf("not a *DecodeError: %T %v", err, err)
			}
			if stdOK && !strings.Contains(de.Reason, "nesting deeper") && !strings.Contains(de.Reason, "digits") {
				t.Fatalf("encoding/json accepts %q, DecodeJSON refuses: %v", b, err)
			}
			return
		}
		out, err := AppendJSON(nil, v)
		if err != nil {
			t.Fatalf("decoded value does not encode: %v\n%q", err, b)
		}
		for _, c := range out {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("output not printable ASCII: %q", out)
			}
		}
		back, err := DecodeJSON(out)
		if err != nil {
			t.Fatalf("own output does not decode: %v\n%q", err, out)
		}
		if !Equal(v, back) {
			t.Fatalf("round trip changed the value: %s vs %s", Repr(v), Repr(back))
		}
		again, err := AppendJSON(nil, back)
		if err != nil || !bytes.Equal(out, again) {
			t.Fatalf("encoding is not a fixpoint: %q vs %q (%v)", out, again, err)
		}
		if !stdOK {
			if !hasNonFinite(v) {
				t.Fatalf("DecodeJSON accepts %q, which is not JSON and has no NaN/Infinity", b)
			}
			return
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var std any
		if err := dec.Decode(&std); err != nil {
			if strings.Contains(err.Error(), "nested too deeply") {
				return
			}
			t.Fatalf("encoding/json: %v", err)
		}
		if why := sameAsStdlib(v, std); why != "" {
			t.Fatalf("%s\ninput %q\nours %s", why, b, Repr(v))
		}
	})
}

func hasNonFinite(v any) bool {
	switch x := v.(type) {
	case float64:
		return math.IsNaN(x) || math.IsInf(x, 0)
	case []any:
		for _, e := range x {
			if hasNonFinite(e) {
				return true
			}
		}
	case *Map:
		for _, kv := range x.Items() {
			if hasNonFinite(kv.Value) {
				return true
			}
		}
	}
	return false
}

// sameAsStdlib compares a DecodeJSON value with an encoding/json one
// (UseNumber), returning why they differ.
func sameAsStdlib(ours, std any) string {
	switch s := std.(type) {
	case nil, bool, string:
		if ours != std {
			return fmt.Sprintf("%#v vs encoding/json %#v", ours, std)
		}
	case json.Number:
		text := string(s)
		if strings.ContainsAny(text, ".eE") {
			f, ok := ours.(float64)
			if !ok {
				return fmt.Sprintf("%s read as %T", text, ours)
			}
			if len(text) > 100 { // ParseFloat misreads some long texts
				return ""
			}
			want, _ := strconv.ParseFloat(text, 64)
			if f != want || math.Signbit(f) != math.Signbit(want) {
				return fmt.Sprintf("%s read as %v, want %v", text, f, want)
			}
			return ""
		}
		want, _ := new(big.Int).SetString(text, 10)
		got, ok := asBig(ours)
		if !ok || got.Cmp(want) != 0 {
			return fmt.Sprintf("%s read as %#v", text, ours)
		}
		switch ours.(type) {
		case int64:
		case uint64:
			if want.IsInt64() {
				return fmt.Sprintf("%s read as uint64, fits int64", text)
			}
		case *big.Int:
			if want.IsInt64() || want.IsUint64() {
				return fmt.Sprintf("%s read as *big.Int, fits 64 bits", text)
			}
		}
	case []any:
		o, ok := ours.([]any)
		if !ok || len(o) != len(s) {
			return fmt.Sprintf("array %s vs %d elements", Repr(ours), len(s))
		}
		for i := range s {
			if why := sameAsStdlib(o[i], s[i]); why != "" {
				return fmt.Sprintf("[%d]: %s", i, why)
			}
		}
	case map[string]any:
		o, ok := ours.(*Map)
		if !ok || o.Len() != len(s) {
			return fmt.Sprintf("object %s vs %d keys", Repr(ours), len(s))
		}
		for _, kv := range o.Items() {
			sv, ok := s[kv.Key]
			if !ok {
				return fmt.Sprintf("key %q missing in encoding/json's", kv.Key)
			}
			if why := sameAsStdlib(kv.Value, sv); why != "" {
				return fmt.Sprintf(".%s: %s", kv.Key, why)
			}
		}
	default:
		return fmt.Sprintf("unexpected encoding/json value %T", std)
	}
	return ""
}

// FuzzAppendJSONString checks string escaping against a plain statement of
// json.dumps(ensure_ascii=True) and against encoding/json reading it back.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "na\u00efve \U0001F680 \"q\" \\ \x7f\x01\n\r\t\b\f/", "\xff", "a\xc3", "\u2028\uffff\U0010ffff", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := AppendJSON(nil, s)
		if !utf8.ValidString(s) {
			if err == nil {
				t.Fatalf("invalid UTF-8 %q encoded as %q", s, out)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if want := referenceEnsureASCII(s); string(out) != want {
			t.Fatalf("%q: got %s, want %s", s, out, want)
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil || back != s {
			t.Fatalf("encoding/json reads %s as %q (%v), want %q", out, back, err, s)
		}
		v, err := DecodeJSON(out)
		if err != nil || v != s {
			t.Fatalf("DecodeJSON reads %s as %#v (%v)", out, v, err)
		}
	})
}

// referenceEnsureASCII is CPython's py_encode_basestring_ascii, rune by rune.
func referenceEnsureASCII(s string) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			sb.WriteString(`\"`)
		case r == '\\':
			sb.WriteString(`\\`)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r == '\b':
			sb.WriteString(`\b`)
		case r == '\f':
			sb.WriteString(`\f`)
		case r >= 0x20 && r < 0x7f:
			sb.WriteRune(r)
		case r >= 0x10000:
			hi, lo := utf16.EncodeRune(r)
			fmt.Fprintf(&sb, `\u%04x\u%04x`, hi, lo)
		default:
			fmt.Fprintf(&sb, `\u%04x`, r)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}
