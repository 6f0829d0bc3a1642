package envelope

import (
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestJSONForms(t *testing.T) {
	for _, c := range []struct {
		in   any
		want string
	}{
		{NewMap("b", int64(1), "a", []any{true, nil, 2.5}), `{"b": 1, "a": [true, null, 2.5]}`},
		{"na\u00efve \U0001F680 \"q\" \\ \x7f\x01\n", `"na\u00efve \ud83d\ude80 \"q\" \\ \u007f\u0001\n"`},
		{[]any{0.1, 1e16, 1e15, 1e-5, 0.0001, math.Copysign(0, -1), math.NaN(), math.Inf(-1)}, `[0.1, 1e+16, 1000000000000000.0, 1e-05, 0.0001, -0.0, NaN, -Infinity]`},
		{new(big.Int).Lsh(big.NewInt(1), 64), `18446744073709551616`},
		{uint64(math.MaxUint64), `18446744073709551615`},
		{time.Date(2017, 3, 14, 15, 9, 26, 535897000, time.UTC), `"2017-03-14T15:09:26.535897"`},
		{UUID{0xd2, 0xbe}, `"d2be0000-0000-0000-0000-000000000000"`},
		{Set{int64(1), int64(2)}, `[1, 2]`},
		{map[string]any{"z": 1, "a": "x"}, `{"a": "x", "z": 1}`},
		{[]string{"a"}, `["a"]`},
		{Count{Start: int64(5), Step: int64(1)}, `"count(5)"`},
		{[]byte("abc"), `"abc"`},
	} {
		got, err := MarshalJSON(c.in)
		require.NoError(t, err)
		require.Equal(t, c.want, string(got))
	}
}

func TestEncodeRefusals(t *testing.T) {
	for _, c := range []Codec{JSON, Msgpack} {
		for _, bad := range []any{"\xff", struct{ C chan int }{}, make(chan int), errors.New("x"), map[int]any{1: 2}} {
			_, err := c.Append(nil, bad)
			require.ErrorIs(t, err, ErrEncode, "%s %T", c.Name(), bad)
		}
		_, err := c.Append(nil, []any{NewMap("args", NewMap("when", make(chan int)))})
		var ee *EncodeError
		require.True(t, errors.As(err, &ee))
		require.Equal(t, "[0].args.when", ee.Path)
	}
	_, err := MarshalJSON(Date{2018, 1, 2})
	require.ErrorIs(t, err, ErrEncode)
	_, err = MarshalMsgpack(new(big.Int).Lsh(big.NewInt(1), 64))
	require.ErrorIs(t, err, ErrEncode)
}

func TestJSONDecodeErrors(t *testing.T) {
	for in, frag := range map[string]string{
		``:                         "unexpected end",
		`[1, 2`:                    "end of input inside an array",
		`{"a" 1}`:                  "expecting ':'",
		`{"a": 1,}`:                "property name",
		`[1] x`:                    "extra data",
		`"abc`:                     "unterminated string",
		"\"a\x01\"":                "control character",
		`"\x"`:                     "invalid \\escape",
		`"\u12"`:                   "\\u escape",
		`01`:                       "leading zeros",
		`tru`:                      "unexpected character",
		"\"\xff\"":                 "invalid UTF-8",
		strings.Repeat("[", 10000): "nesting deeper",
	} {
		_, err := DecodeJSON([]byte(in))
		require.ErrorIs(t, err, ErrDecode, in)
		require.Contains(t, err.Error(), frag, in)
	}
	v, err := DecodeJSON([]byte(` {"a": 1, "b": 2, "a": 3} `))
	require.NoError(t, err)
	require.Equal(t, `{"a": 3, "b": 2}`, string(must(MarshalJSON(v))))
	v, err = DecodeJSON([]byte(`[1e400, -1e400, 123456789012345678901234567890, "\ud800x"]`))
	require.NoError(t, err)
	l := v.([]any)
	require.True(t, math.IsInf(l[0].(float64), 1))
	require.True(t, math.IsInf(l[1].(float64), -1))
	require.Equal(t, "123456789012345678901234567890", l[2].(*big.Int).String())
	require.Equal(t, "\uFFFDx", l[3])
}

func TestMsgpackForms(t *testing.T) {
	for _, c := range []struct {
		in   any
		want string
	}{
		{int64(127), "7f"}, {int64(128), "cc80"}, {int64(-33), "d0df"}, {int64(16384), "cd4000"},
		{int64(1) << 32, "cf0000000100000000"}, {int64(-7), "f9"}, {3.5, "cb400c000000000000"},
		{[]byte{1}, "c40101"}, {strings.Repeat("x", 32), "d920" + strings.Repeat("78", 32)},
		{Set{int64(1)}, "d5049101"},
		{UUID{15: 5}, "c72000" + strings.Repeat("30", 31) + "35"},
		{Date{2018, 1, 2}, "c71507" + "83a479656172cd07e2a56d6f6e746801a3646179" + "02"},
		{NewMap("c", int64(1)), "81a16301"},
	} {
		got, err := MarshalMsgpack(c.in)
		require.NoError(t, err)
		require.Equal(t, c.want, hexs(got), "%#v", c.in)
	}
}

func TestMsgpackDecodeErrors(t *testing.T) {
	for in, frag := range map[string]string{
		"":                     "truncated",
		"92c0":                 "exceeds",
		"dd7fffffff":           "exceeds",
		"df7fffffff":           "exceeds",
		"c6ffffffff00":         "exceeds",
		"c1":                   "unknown type byte",
		"8101c0":               "map key is an int",
		"a2ff00":               "not valid UTF-8",
		"c0c0":                 "extra data",
		"c70001":               "",
		"d7010000000000000000": "ext 1",
		"c70300" + "616263":    "UUID",
	} {
		_, err := DecodeMsgpack(unhexs(in))
		require.ErrorIs(t, err, ErrDecode, in)
		require.Contains(t, err.Error(), frag, in)
	}
	// Python 2 peers send text as bin: bin keys are read as text.
	v, err := DecodeMsgpack(unhexs("81c4066d6574686f64a465636866"))
	require.NoError(t, err)
	got, _ := v.(*Map).Get("method")
	require.Equal(t, "echf", got)
	// Unknown extension codes stay opaque and round-trip.
	v, err = DecodeMsgpack(unhexs("d42a07"))
	require.NoError(t, err)
	require.Equal(t, Ext{Code: 42, Data: []byte{7}}, v)
	require.Equal(t, "d42a07", hexs(must(MarshalMsgpack(v))))
	// Deep nesting is refused, not a stack overflow.
	_, err = DecodeMsgpack(unhexs(strings.Repeat("91", 10000) + "c0"))
	require.ErrorIs(t, err, ErrDecode)
}

func TestDatetimeZones(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	for _, tm := range []time.Time{
		time.Date(2018, 1, 2, 3, 4, 5, 6000, time.UTC),
		time.Date(2021, 7, 1, 12, 0, 0, 999999000, paris),
		time.Date(2020, 2, 29, 23, 59, 59, 1000, time.FixedZone("UTC", 0)),
	} {
		b := must(MarshalMsgpack(tm))
		back, err := DecodeMsgpack(b)
		require.NoError(t, err)
		require.True(t, Equal(tm, back), "%v vs %v", tm, back)
		require.Equal(t, b, must(MarshalMsgpack(back)))
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func hexs(b []byte) string {
	const h = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, h[c>>4], h[c&0xf])
	}
	return string(out)
}

func unhexs(s string) []byte {
	out := make([]byte, len(s)/2)
	for i := range out {
		hi, _ := unhex(s[2*i])
		lo, _ := unhex(s[2*i+1])
		out[i] = hi<<4 | lo
	}
	return out
}
