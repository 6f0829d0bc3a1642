package envelope

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/internal/vectors"
)

// The expected bytes below were produced by the reference,
// oslo.serialization 5.0.0 on CPython 3.11 (.tox/zmq814):
// jsonutils.dump_as_bytes(<the Python value in the comment>).

func jsonBigPow(base, exp int64) *big.Int {
	return new(big.Int).Exp(big.NewInt(base), big.NewInt(exp), nil)
}

type jsonTestValuer struct{ v any }

func (o jsonTestValuer) OsloValue() (any, error) { return o.v, nil }

func TestAppendJSONMatchesPython(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	ip := func(s string) IPAddress { return IPAddress{netip.MustParseAddr(s)} }
	var controls strings.Builder
	for c := 0; c < 0x20; c++ {
		controls.WriteByte(byte(c))
	}
	controls.WriteByte(0x7f)

	for _, c := range []struct {
		name string
		in   any
		want string
	}{
		// "na\u00efve \U0001F680 \"q\" \\ \x7f\x01\n\r\t\b\f/ \u2028 \uffff \U0010ffff \u00e9\u65e5"
		{"ensure_ascii", "na\u00efve \U0001F680 \"q\" \\ \x7f\x01\n\r\t\b\f/ \u2028 \uffff \U0010ffff \u00e9\u65e5",
			`"na\u00efve \ud83d\ude80 \"q\" \\ \u007f\u0001\n\r\t\b\f/ \u2028 \uffff \udbff\udfff \u00e9\u65e5"`},
		// "".join(chr(i) for i in range(0x20)) + "\x7f"
		{"controls", controls.String(),
			`"\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f\u007f"`},
		{"empty string", "", `""`},
		// [0.1, 1e16, 1e15, 1e-5, 0.0001, -0.0, 1.5e300, 5e-324, nan, inf, -inf, 1e22,
		//  123456789.123456789, 1/3, 2.5e-05, 9007199254740993.0, 1.7976931348623157e308, 100.0, -2.5]
		{"floats", []any{0.1, 1e16, 1e15, 1e-5, 0.0001, math.Copysign(0, -1), 1.5e300, 5e-324, math.NaN(), math.Inf(1), math.Inf(-1), 1e22,
			123456789.123456789, 1.0 / 3, 2.5e-05, 9007199254740993.0, 1.7976931348623157e308, 100.0, -2.5},
			`[0.1, 1e+16, 1000000000000000.0, 1e-05, 0.0001, -0.0, 1.5e+300, 5e-324, NaN, Infinity, -Infinity, 1e+22, 123456789.12345679, 0.3333333333333333, 2.5e-05, 9007199254740992.0, 1.7976931348623157e+308, 100.0, -2.5]`},
		{"float32", float32(0.5), `0.5`},
		// [2**64, -2**70, 2**200, -2**63, 2**63-1, 2**64-1, -2**63-1]
		{"big ints", []any{jsonBigPow(2, 64), new(big.Int).Neg(jsonBigPow(2, 70)), jsonBigPow(2, 200), int64(math.MinInt64), int64(math.MaxInt64),
			uint64(math.MaxUint64), new(big.Int).Sub(big.NewInt(math.MinInt64), big.NewInt(1))},
			`[18446744073709551616, -1180591620717411303424, 1606938044258990275541962092341162602522202993782792835301376, -9223372036854775808, 9223372036854775807, 18446744073709551615, -9223372036854775809]`},
		{"go int kinds", []any{int(-1), int8(-128), int16(300), int32(-70000), uint(7), uint8(255), uint16(65535), uint32(4294967295)},
			`[-1, -128, 300, -70000, 7, 255, 65535, 4294967295]`},
		{"bools and null", []any{true, false, nil}, `[true, false, null]`},
		// {"b": 1, "a": [True, None, 2.5, {"z": {}, "y": []}], "\u00e9": {"k": "v"}}
		{"nested map", NewMap("b", int64(1), "a", []any{true, nil, 2.5, NewMap("z", NewMap(), "y", []any{})}, "\u00e9", NewMap("k", "v")),
			`{"b": 1, "a": [true, null, 2.5, {"z": {}, "y": []}], "\u00e9": {"k": "v"}}`},
		{"go map sorted", map[string]any{"z": int64(1), "a": "x", "m": map[string]string{"b": "2", "a": "1"}},
			`{"a": "x", "m": {"a": "1", "b": "2"}, "z": 1}`},
		{"map by value", *NewMap("k", "v"), `{"k": "v"}`},
		// [datetime(2017,3,14,15,9,26,535897), datetime(5,1,2,3,4,5,6), datetime(999,12,31),
		//  datetime(9999,12,31,23,59,59,999999), datetime(1,1,1)]
		{"datetimes", []any{
			time.Date(2017, 3, 14, 15, 9, 26, 535897000, time.UTC),
			time.Date(5, 1, 2, 3, 4, 5, 6000, time.UTC),
			time.Date(999, 12, 31, 0, 0, 0, 0, time.UTC),
			time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), // ns truncated to µs
			time.Time{},
		}, `["2017-03-14T15:09:26.535897", "5-01-02T03:04:05.000006", "999-12-31T00:00:00.000000", "9999-12-31T23:59:59.999999", "1-01-01T00:00:00.000000"]`},
		// an aware datetime: strftime writes the wall clock, the zone is dropped
		{"aware datetime", time.Date(2021, 7, 1, 12, 0, 0, 500, paris), `"2021-07-01T12:00:00.000000"`},
		// xmlrpc.client.DateTime("20180102T03:04:05")
		{"xmlrpc", XMLRPCDateTime{time.Date(2018, 1, 2, 3, 4, 5, 700000000, time.UTC)}, `"2018-01-02T03:04:05.000000"`},
		// uuid.UUID("d2be4a1e-0000-4c5a-9f00-00000000abcd")
		{"uuid", UUID{0xd2, 0xbe, 0x4a, 0x1e, 0, 0, 0x4c, 0x5a, 0x9f, 0, 0, 0, 0, 0, 0xab, 0xcd}, `"d2be4a1e-0000-4c5a-9f00-00000000abcd"`},
		// [{1, 2, 3}, frozenset([5, 7]), set()]
		{"sets", []any{Set{int64(1), int64(2), int64(3)}, FrozenSet{int64(5), int64(7)}, Set{}}, `[[1, 2, 3], [5, 7], []]`},
		// [b"abc", "café".encode(), b""]
		{"bytes", []any{[]byte("abc"), []byte("caf\u00e9"), []byte{}}, `["abc", "caf\u00e9", ""]`},
		// [netaddr.IPAddress(a) for a in ["1.2.3.4", "::ffff:1.2.3.4", "::1.2.3.4", "::0.1.0.0",
		//  "fe80::1", "1:0:0:1:0:0:0:1", "::1", "::"]]
		{"ip addresses", []any{ip("1.2.3.4"), ip("::ffff:1.2.3.4"), ip("::1.2.3.4"), ip("::0.1.0.0"), ip("fe80::1"), ip("1:0:0:1:0:0:0:1"), ip("::1"), ip("::")},
			`["1.2.3.4", "::ffff:1.2.3.4", "::1.2.3.4", "::0.1.0.0", "fe80::1", "1:0:0:1::1", "::1", "::"]`},
		// [count(5), count(5, 2), count(0, 1.0), count(1.5), count(True), count(True, 2), count(2**63-1),
		//  count(2**63-1, 2), count(-2**70), count(5, True), count(inf), count(1, False), count(0, -1)]
		{"itertools.count", []any{
			Count{int64(5), int64(1)}, Count{int64(5), int64(2)}, Count{int64(0), 1.0}, Count{1.5, int64(1)},
			Count{true, int64(1)}, Count{true, int64(2)}, Count{int64(math.MaxInt64), int64(1)},
			Count{int64(math.MaxInt64), int64(2)}, Count{new(big.Int).Neg(jsonBigPow(2, 70)), int64(1)},
			Count{int64(5), true}, Count{math.Inf(1), int64(1)}, Count{int64(1), false}, Count{int64(0), int64(-1)},
		}, `["count(5)", "count(5, 2)", "count(0, 1.0)", "count(1.5)", "count(1)", "count(True, 2)", "count(<NULL>)", "count(9223372036854775807, 2)", "count(-1180591620717411303424)", "count(5)", "count(inf)", "count(1, False)", "count(0, -1)"]`},
		// (1, "x")
		{"tuple", []any{int64(1), "x"}, `[1, "x"]`},
		{"string slice", []string{"a", "\u00e9"}, `["a", "\u00e9"]`},
		{"other slice kinds", []int{1, 2}, `[1, 2]`},
		{"array", [2]string{"a", "b"}, `["a", "b"]`},
		{"map slice", []map[string]any{{"a": int64(1)}}, `[{"a": 1}]`},
		{"valuer", jsonTestValuer{NewMap("a", []any{int64(1)})}, `{"a": [1]}`},
		{"nil valuer pointer", (*jsonNilValuer)(nil), `null`},
		{"nil map pointer", (*Map)(nil), `null`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := MarshalJSON(c.in)
			require.NoError(t, err)
			require.Equal(t, c.want, string(got))
			// AppendJSON appends.
			got, err = AppendJSON([]byte("x"), c.in)
			require.NoError(t, err)
			require.Equal(t, "x"+c.want, string(got))
		})
	}
}

type jsonNilValuer struct{}

func (*jsonNilValuer) OsloValue() (any, error) { return "unreachable", nil }

type jsonFailingValuer struct{}

func (jsonFailingValuer) OsloValue() (any, error) { return nil, errors.New("no wire form") }

type jsonSelfValuer struct{}

func (s jsonSelfValuer) OsloValue() (any, error) { return s, nil }

func TestAppendJSONRefusals(t *testing.T) {
	cyclic := NewMap("a", int64(1))
	cyclic.Set("self", cyclic)
	cyclicList := []any{nil}
	cyclicList[0] = cyclicList

	for _, c := range []struct {
		name, path, typ, reason string
		in                      any
	}{
		// Python: ValueError: Circular reference detected (to_primitive returns the date unchanged)
		{"date", "[0].when", "envelope.Date", "Circular reference", []any{NewMap("when", Date{2018, 1, 2})}},
		{"ext", "", "envelope.Ext", "no JSON form", Ext{Code: 42, Data: []byte{1}}},
		{"bad utf-8 string", ".k", "string", "not valid UTF-8", NewMap("k", "a\xffb")},
		{"bad utf-8 key", "", "string", "key is not valid UTF-8", NewMap("\xff", int64(1))},
		{"bad utf-8 []string", "[1]", "string", "not valid UTF-8", []string{"ok", "\xc3"}},
		// Python: UnicodeDecodeError in to_primitive
		{"bad utf-8 bytes", "[0]", "[]uint8", "bytes are not valid UTF-8", []any{[]byte{0xff}}},
		// Python: ValueError: Exceeds the limit (4300 digits) for integer string conversion
		{"int over 4300 digits", "", "*big.Int", "4301 digits", jsonBigPow(10, 4300)},
		{"year 0", "", "time.Time", "year 0", time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"year 10000", "", "envelope.XMLRPCDateTime", "year 10000", XMLRPCDateTime{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"zero IP", "", "envelope.IPAddress", "zero IPAddress", IPAddress{}},
		{"count of text", "", "envelope.Count", "not a number", Count{"a", int64(1)}},
		{"channel", "[0].args.when", "chan int", "unsupported type", []any{NewMap("args", NewMap("when", make(chan int)))}},
		{"func", "", "func()", "unsupported type", func() {}},
		{"struct field", ".C", "chan int", "unsupported type", struct{ C chan int }{}},
		{"int keys", "", "map[int]interface {}", "map keys must be strings", map[int]any{1: 2}},
		{"error", ".e", "*errors.errorString", "failures", map[string]any{"e": errors.New("x")}},
		{"failing valuer", "", "envelope.jsonFailingValuer", "no wire form", jsonFailingValuer{}},
		{"self valuer", "", "envelope.jsonSelfValuer", "nesting deeper than 1000", jsonSelfValuer{}},
		{"cyclic map", ".self.self.self", "*envelope.Map", "nesting deeper than 1000", cyclic},
		{"cyclic list", "[0][0][0]", "[]interface {}", "nesting deeper than 1000", cyclicList},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := []byte("prefix")
			out, err := AppendJSON(dst, c.in)
			require.ErrorIs(t, err, ErrEncode)
			require.Equal(t, "prefix", string(out), "dst comes back unchanged")
			var ee *EncodeError
			require.True(t, errors.As(err, &ee))
			require.Equal(t, "json", ee.Codec)
			require.True(t, strings.HasPrefix(ee.Path, c.path), "path %q, want prefix %q", ee.Path, c.path)
			require.Equal(t, c.typ, ee.Type)
			require.Contains(t, ee.Reason, c.reason)
			require.Contains(t, err.Error(), "as json")
		})
	}
	// The nesting bound is exact: MaxJSONDepth containers encode, one more does not.
	require.NoError(t, jsonEncodeNested(MaxJSONDepth))
	require.ErrorIs(t, jsonEncodeNested(MaxJSONDepth+1), ErrEncode)
	// 4300 digits are fine, in both signs.
	n := new(big.Int).Sub(jsonBigPow(10, 4300), big.NewInt(1))
	b, err := MarshalJSON(n)
	require.NoError(t, err)
	require.Len(t, b, 4300)
	b, err = MarshalJSON(new(big.Int).Neg(n))
	require.NoError(t, err)
	require.Len(t, b, 4301)
}

func jsonEncodeNested(depth int) error {
	var v any = int64(1)
	for i := 0; i < depth; i++ {
		v = []any{v}
	}
	_, err := MarshalJSON(v)
	return err
}

func TestDecodeJSONMatchesPython(t *testing.T) {
	for _, c := range []struct {
		name, in string
		check    func(t *testing.T, v any)
		// want is jsonutils.dump_as_bytes(jsonutils.loads(in)) from Python,
		// except where a comment says otherwise.
		want string
	}{
		{"int boundaries", `[9223372036854775807, -9223372036854775808, 9223372036854775808, 18446744073709551615, 18446744073709551616, -9223372036854775809, -0, 0, 255, -1]`,
			func(t *testing.T, v any) {
				l := v.([]any)
				require.Equal(t, int64(math.MaxInt64), l[0])
				require.Equal(t, int64(math.MinInt64), l[1])
				require.Equal(t, uint64(1<<63), l[2])
				require.Equal(t, uint64(math.MaxUint64), l[3])
				require.Equal(t, "18446744073709551616", l[4].(*big.Int).String())
				require.Equal(t, "-9223372036854775809", l[5].(*big.Int).String())
				require.Equal(t, int64(0), l[6])
				require.Equal(t, int64(-1), l[9])
			},
			`[9223372036854775807, -9223372036854775808, 9223372036854775808, 18446744073709551615, 18446744073709551616, -9223372036854775809, 0, 0, 255, -1]`},
		{"float forms", `[1e400, -1e400, 1e-400, -1e-400, 1E2, 1.5e+3, -0.0, 0.5e-1, 0.1]`,
			func(t *testing.T, v any) {
				l := v.([]any)
				require.True(t, math.IsInf(l[0].(float64), 1))
				require.True(t, math.IsInf(l[1].(float64), -1))
				require.True(t, math.Signbit(l[3].(float64)))
				require.Equal(t, 100.0, l[4])
				require.Equal(t, 0.1, l[8])
			},
			`[Infinity, -Infinity, 0.0, -0.0, 100.0, 1500.0, -0.0, 0.05, 0.1]`},
		// strconv.ParseFloat alone gives 0 for the first (over 800 integer
		// digits with a negative exponent); Python's float() gives inf.
		{"long float texts", `[1` + jsonRepeat("0", 4299) + `e-1216, 1` + jsonRepeat("0", 4299) + `e-4194, 0.` + jsonRepeat("0", 11000) + `1e11002, -1` + jsonRepeat("0", 900) + `.5e-800]`,
			nil, `[Infinity, 1e+105, 10.0, -1e+100]`},
		{"4300 digits", `[-` + jsonRepeat("9", 4300) + `, ` + jsonRepeat("9", 4300) + `]`,
			func(t *testing.T, v any) { require.Len(t, v.([]any)[0].(*big.Int).String(), 4301) },
			`[-` + jsonRepeat("9", 4300) + `, ` + jsonRepeat("9", 4300) + `]`},
		{"literals", `[NaN, Infinity, -Infinity, true, false, null]`,
			func(t *testing.T, v any) { require.True(t, math.IsNaN(v.([]any)[0].(float64))) },
			`[NaN, Infinity, -Infinity, true, false, null]`},
		{"whitespace and duplicate keys", " \t\n\r{\"a\" : 1 , \"b\":[ ] ,\"a\":\t3, \"c\" : {}}\r\n ",
			func(t *testing.T, v any) { require.Equal(t, []string{"a", "b", "c"}, v.(*Map).Keys()) },
			`{"a": 3, "b": [], "c": {}}`},
		// Python keeps the lone surrogates: ["\ud83d\ude80", ..., "\ud800", "\udc00\ud800x", "\ud800A", ...];
		// Go strings cannot, so they become U+FFFD (the one known difference).
		{"string escapes", `["\ud83d\ude80", "\u00E9\/\b\f\n\r\t\"\\", "\ud800", "\udc00\ud800x", "\ud800\u0041", "` + "\u00e9\U0001F680\x7f" + `"]`,
			func(t *testing.T, v any) {
				l := v.([]any)
				require.Equal(t, "\U0001F680", l[0])
				require.Equal(t, "\u00e9/\b\f\n\r\t\"\\", l[1])
				require.Equal(t, "\uFFFD", l[2])
				require.Equal(t, "\uFFFD\uFFFDx", l[3])
				require.Equal(t, "\uFFFDA", l[4])
			},
			`["\ud83d\ude80", "\u00e9/\b\f\n\r\t\"\\", "\ufffd", "\ufffd\ufffdx", "\ufffdA", "\u00e9\ud83d\ude80\u007f"]`},
		{"nesting at the bound", jsonRepeat("[", MaxJSONDepth) + jsonRepeat("]", MaxJSONDepth), nil, jsonRepeat("[", MaxJSONDepth) + jsonRepeat("]", MaxJSONDepth)},
		{"scalars at top level", ` "x" `, nil, `"x"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := DecodeJSON([]byte(c.in))
			require.NoError(t, err)
			if c.check != nil {
				c.check(t, v)
			}
			out, err := MarshalJSON(v)
			require.NoError(t, err)
			require.Equal(t, c.want, string(out))
		})
	}
}

func TestDecodeJSONLargeObjectDuplicates(t *testing.T) {
	// Over 16 entries the decoder indexes keys; order and replacement must
	// stay dict-like.
	var in, want strings.Builder
	in.WriteString("{")
	want.WriteString("{")
	for i := 0; i < 40; i++ {
		if i > 0 {
			in.WriteString(", ")
			want.WriteString(", ")
		}
		fmt.Fprintf(&in, `"k%d": %d`, i, i)
		v := i
		if i%7 == 0 {
			v = -i
		}
		fmt.Fprintf(&want, `"k%d": %d`, i, v)
	}
	for i := 0; i < 40; i += 7 {
		fmt.Fprintf(&in, `, "k%d": %d`, i, -i)
	}
	in.WriteString(`, "k3": {"k3": 1, "k3": 2}, "k3": 3}`)
	want.WriteString("}")
	v, err := DecodeJSON([]byte(in.String()))
	require.NoError(t, err)
	out, err := MarshalJSON(v)
	require.NoError(t, err)
	require.Equal(t, want.String(), string(out))
}

func TestDecodeJSONErrorsDetailed(t *testing.T) {
	for _, c := range []struct {
		in     string
		offset int
		frag   string
	}{
		{``, 0, "unexpected end of input, expecting a value"},
		{`   `, 3, "unexpected end of input"},
		{`[1, 2`, 5, "end of input inside an array"},
		{`[1,]`, 3, "unexpected character ']', expecting a value"},
		{`[1 2]`, 3, "expecting ',' or ']'"},
		{`{"a":1`, 6, "end of input inside an object"},
		{`{"a" 1}`, 5, "expecting ':'"},
		{`{"a": 1,}`, 8, "expecting a property name"},
		{`{1: 2}`, 1, "property name in double quotes"},
		{`{"a": 1 "b": 2}`, 8, "expecting ',' or '}'"},
		{`[1] x`, 4, "extra data"},
		{`1 2`, 2, "extra data"},
		{`"abc`, 0, "unterminated string"},
		{`"abc\`, 0, "unterminated string"},
		{"\"a\x01\"", 2, "invalid control character 0x01"},
		{"\"a\tb\"", 2, "control character 0x09"},
		{`"\x"`, 1, "invalid \\escape character 'x'"},
		{`"\u12"`, 1, "\\u escape"},
		{`"\u12G4"`, 1, "\\u escape"},
		{`"\ud800\uZZZZ"`, 7, "\\u escape"},
		{`01`, 1, "leading zeros"},
		{`-01`, 2, "leading zeros"},
		{`-`, 0, "'-' must be followed by a digit"},
		{`-x`, 0, "'-' must be followed by a digit"},
		{`1.`, 1, "extra data"},
		{`1.e5`, 1, "extra data"},
		{`1e`, 1, "extra data"},
		{`1e+`, 1, "extra data"},
		{`.5`, 0, "unexpected character '.'"},
		{`+1`, 0, "unexpected character '+'"},
		{`tru`, 0, "unexpected character 't'"},
		{`nan`, 0, "unexpected character 'n'"},
		{`-NaN`, 0, "'-' must be followed by a digit"},
		{`inf`, 0, "unexpected character 'i'"},
		{"\ufeff[]", 0, "unexpected character '\\ufeff'"},
		{"\xff", 0, "unexpected byte 0xff"},
		{"\"\xff\"", 1, "invalid UTF-8"},
		{"\"\xed\xa0\x80\"", 1, "invalid UTF-8"}, // a UTF-8 encoded surrogate
		{"\"\xc0\xaf\"", 1, "invalid UTF-8"},     // overlong
		{"\"\\n\xe9\"", 3, "invalid UTF-8"},      // on the slow path
		{"[1,\v2]", 3, "unexpected character '\\v'"},
		{"[1,\u00a02]", 3, "unexpected character '\\u00a0'"},
		{jsonRepeat("9", 4301), 0, "integer of 4301 digits"},
		{`[` + jsonRepeat("9", 4301) + `]`, 1, "integer of 4301 digits"},
		{jsonRepeat("[", MaxJSONDepth+1) + jsonRepeat("]", MaxJSONDepth+1), MaxJSONDepth, "nesting deeper than 1000"},
		{jsonRepeat(`{"a":`, MaxJSONDepth+1), 5 * MaxJSONDepth, "nesting deeper than 1000"},
		{jsonRepeat("[", 1<<20), MaxJSONDepth, "nesting deeper"},
	} {
		name := c.in
		if len(name) > 40 {
			name = name[:40] + "..."
		}
		_, err := DecodeJSON([]byte(c.in))
		require.ErrorIs(t, err, ErrDecode, name)
		var de *DecodeError
		require.True(t, errors.As(err, &de), name)
		require.Equal(t, "json", de.Codec, name)
		require.Equal(t, c.offset, de.Offset, "%s: %v", name, err)
		require.Contains(t, err.Error(), c.frag, name)
	}
}

func jsonRepeat(s string, n int) string { return strings.Repeat(s, n) }

// TestJSONVectorRoundTrip: every JSON payload frame the real Python driver
// sent decodes, and encodes back to the very same bytes.
func TestJSONVectorRoundTrip(t *testing.T) {
	n := 0
	for _, p := range vectors.Payloads(t) {
		if p.Serialization != "json" {
			continue
		}
		v, err := DecodeJSON(p.Bytes)
		require.NoError(t, err, "%s %s", p.File, p.Vector)
		out, err := AppendJSON(nil, v)
		require.NoError(t, err, "%s %s", p.File, p.Vector)
		require.Equal(t, string(p.Bytes), string(out), "%s %s", p.File, p.Vector)
		n++
	}
	t.Logf("%d captured JSON payload frames re-encoded byte for byte", n)
	require.Positive(t, n)
}

// TestJSONEncodeDoesNotAllocate: with room in dst, encoding a decoded
// request allocates nothing.
func TestJSONEncodeDoesNotAllocate(t *testing.T) {
	var payload []byte
	for _, p := range vectors.Payloads(t) {
		if p.Serialization == "json" && p.MessageType == "CALL" && p.File == "direct-json.json" {
			payload = p.Bytes
			break
		}
	}
	require.NotNil(t, payload)
	v, err := DecodeJSON(payload)
	require.NoError(t, err)
	buf := make([]byte, 0, 2*len(payload))
	allocs := testing.AllocsPerRun(100, func() {
		buf, err = AppendJSON(buf[:0], v)
	})
	require.NoError(t, err)
	require.Equal(t, string(payload), string(buf))
	require.Zero(t, allocs)
}

func BenchmarkDecodeJSON(b *testing.B) {
	p := callEcho(b, "json")
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeJSON(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	p := callEcho(b, "json")
	v, err := DecodeJSON(p)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 2*len(p))
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = AppendJSON(buf[:0], v); err != nil {
			b.Fatal(err)
		}
	}
}
