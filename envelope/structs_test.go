package envelope

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type testFlavor struct {
	ID     int    `json:"id"`
	Name   string `json:"name"`
	DiskGB int    `json:"disk_gb"`
}

type testBase struct {
	UUID string `json:"uuid"`
}

// testZone marshals as text.
type testZone struct{ name string }

func (z testZone) MarshalText() ([]byte, error) { return []byte(z.name), nil }
func (z *testZone) UnmarshalText(b []byte) error {
	z.name = string(b)
	return nil
}

type testInstance struct {
	testBase                     // unexported embedded: its fields are promoted
	Name      string             `json:"name"`
	VCPUs     int                `json:"vcpus"`
	RAM       uint32             `json:"ram_mb"`
	Host      *string            `json:"host"`
	CreatedAt time.Time          `json:"created_at"`
	Tags      []string           `json:"tags"`
	Metadata  map[string]string  `json:"metadata"`
	Flavor    *testFlavor        `json:"flavor"`
	Zone      testZone           `json:"zone"`
	Count     int                `json:"count,string"`
	Deleted   bool               `json:"deleted"`
	Secret    string             `json:"-"`
	Note      string             `json:"note,omitempty"`
	UpdatedAt time.Time          `json:"updated_at,omitzero"`
	Extra     map[string]float64 `json:"extra,omitempty"`
	hidden    int
}

func testInstanceValue() testInstance {
	return testInstance{
		testBase: testBase{UUID: "a0e1"}, Name: "vm-1", VCPUs: 4, RAM: 2048,
		CreatedAt: time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC),
		Tags:      []string{"a", "b"}, Metadata: map[string]string{"k": "v"},
		Flavor: &testFlavor{ID: 7, Name: "m1.small", DiskGB: 20}, Zone: testZone{"nova"}, Count: 3,
	}
}

// The expected bytes are oslo.serialization's (.tox/zmq814) for the dict a
// Python endpoint would return:
//
//	d = {"uuid": "a0e1", "name": "vm-1", "vcpus": 4, "ram_mb": 2048, "host": None,
//	     "created_at": datetime.datetime(2024, 5, 6, 7, 8, 9, 123456),
//	     "tags": ["a", "b"], "metadata": {"k": "v"}, "flavor": {"id": 7, "name": "m1.small", "disk_gb": 20},
//	     "zone": "nova", "count": "3", "deleted": False}
//	jsonutils.dump_as_bytes(d); msgpackutils.dumps(d).hex()
const (
	pyInstanceJSON    = `{"uuid": "a0e1", "name": "vm-1", "vcpus": 4, "ram_mb": 2048, "host": null, "created_at": "2024-05-06T07:08:09.123456", "tags": ["a", "b"], "metadata": {"k": "v"}, "flavor": {"id": 7, "name": "m1.small", "disk_gb": 20}, "zone": "nova", "count": "3", "deleted": false}`
	pyInstanceMsgpack = "8ca475756964a461306531a46e616d65a4766d2d31a5766370757304a672616d5f6d62cd0800a4686f7374c0aa637265617465645f6174c73c0187a364617906a56d6f6e746805a479656172cd07e8a4686f757207a66d696e75746508a67365636f6e6409ab6d6963726f7365636f6e64ce0001e240a47461677392a161a162a86d6574616461746181a16ba176a6666c61766f7283a2696407a46e616d65a86d312e736d616c6ca76469736b5f676214a47a6f6e65a46e6f7661a5636f756e74a133a764656c65746564c2"
)

func TestStructEncodesAsPythonDict(t *testing.T) {
	in := testInstanceValue()
	in.Secret, in.hidden = "never sent", 9
	for _, v := range []any{in, &in} {
		b, err := AppendJSON(nil, v)
		require.NoError(t, err)
		require.Equal(t, pyInstanceJSON, string(b))
		m, err := AppendMsgpack(nil, v)
		require.NoError(t, err)
		require.Equal(t, pyInstanceMsgpack, hex.EncodeToString(m))
	}
	// Inside the usual containers too.
	b, err := AppendJSON(nil, NewMap("result", []testInstance{in}))
	require.NoError(t, err)
	require.Equal(t, `{"result": [`+pyInstanceJSON+`]}`, string(b))
}

func TestStructDecodesFromPythonDict(t *testing.T) {
	want := testInstanceValue()
	fromJSON, err := DecodeJSON([]byte(pyInstanceJSON))
	require.NoError(t, err)
	raw, err := hex.DecodeString(pyInstanceMsgpack)
	require.NoError(t, err)
	fromMsgpack, err := DecodeMsgpack(raw)
	require.NoError(t, err)
	for name, v := range map[string]any{"json": fromJSON, "msgpack": fromMsgpack} {
		var got testInstance
		require.NoError(t, DecodeValue(v, &got), name)
		require.True(t, want.CreatedAt.Equal(got.CreatedAt), name)
		got.CreatedAt = want.CreatedAt
		require.Equal(t, want, got, name)

		var p *testInstance
		require.NoError(t, DecodeValue(v, &p), name)
		require.Equal(t, "m1.small", p.Flavor.Name)

		var m map[string]any
		require.NoError(t, DecodeValue(v, &m), name)
		require.Equal(t, "vm-1", m["name"])
	}
}

func TestDecodeValueNamesTheField(t *testing.T) {
	for _, c := range []struct {
		in   any
		path string
		msg  string
	}{
		{NewMap("flavor", NewMap("id", "seven")), "flavor.id", "cannot decode flavor.id (a string) into Go int"},
		{NewMap("tags", []any{"a", int64(2)}), "tags[1]", "cannot decode tags[1] (an int) into Go string"},
		{NewMap("vcpus", jsonBigPow(2, 70)), "vcpus", "1180591620717411303424 overflows it"},
		{NewMap("ram_mb", int64(-1)), "ram_mb", "does not fit"},
		{NewMap("created_at", "yesterday"), "created_at", `"yesterday" is no datetime`},
		{NewMap("count", "three"), "count", "quoted"},
		{NewMap("metadata", []any{}), "metadata", "(a list) into Go map[string]string"},
		{[]any{}, "", "cannot decode value (a list) into Go envelope.testInstance"},
	} {
		var got testInstance
		err := DecodeValue(c.in, &got)
		var fe *FieldError
		require.ErrorAs(t, err, &fe, "%v", c.in)
		require.True(t, errors.Is(err, ErrDecode))
		require.Equal(t, c.path, fe.Path, err.Error())
		require.Contains(t, err.Error(), c.msg)
	}
	require.Error(t, DecodeValue(int64(1), nil))
	var n int
	require.Error(t, DecodeValue(int64(1), n))
}

func TestDecodeValueLenient(t *testing.T) {
	// Unknown keys are ignored, names match case-insensitively after an
	// exact miss, None leaves values unchanged and clears pointers.
	got := testInstance{VCPUs: 2, Flavor: &testFlavor{}}
	require.NoError(t, DecodeValue(NewMap("NAME", "x", "unknown", int64(1), "vcpus", nil, "flavor", nil), &got))
	require.Equal(t, "x", got.Name)
	require.Equal(t, 2, got.VCPUs)
	require.Nil(t, got.Flavor)

	var ints map[int]string
	require.NoError(t, DecodeValue(NewMap("1", "a", "20", "b"), &ints))
	require.Equal(t, map[int]string{1: "a", 20: "b"}, ints)
	var arr [3]int
	require.NoError(t, DecodeValue([]any{int64(1), int64(2)}, &arr))
	require.Equal(t, [3]int{1, 2, 0}, arr)
	var f float32
	require.NoError(t, DecodeValue(int64(3), &f))
	require.Equal(t, float32(3), f)
	var u UUID
	require.NoError(t, DecodeValue("6f0b5f6a-8a5e-4bb8-9b63-0b1f6b7f2b11", &u))
	require.Equal(t, "6f0b5f6a-8a5e-4bb8-9b63-0b1f6b7f2b11", u.String())
	var b []byte
	require.NoError(t, DecodeValue("text", &b))
	require.Equal(t, []byte("text"), b)
}

type testMarshaler struct{ n int }

func (m testMarshaler) MarshalJSON() ([]byte, error) {
	if m.n < 0 {
		return nil, errors.New("negative")
	}
	return json.Marshal(map[string]int{"n": m.n})
}

func (m *testMarshaler) UnmarshalJSON(b []byte) error {
	var x struct{ N int }
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	m.n = x.N
	return nil
}

type testRaw struct {
	M   testMarshaler   `json:"m"`
	Raw json.RawMessage `json:"raw"`
	At  *time.Time      `json:"at"`
}

func TestJSONMarshalerHonoured(t *testing.T) {
	at := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	v := testRaw{M: testMarshaler{5}, Raw: json.RawMessage(`[1, "x"]`), At: &at}
	b, err := AppendJSON(nil, v)
	require.NoError(t, err)
	// *time.Time stays a datetime: its pointer's MarshalJSON is not used.
	require.Equal(t, `{"m": {"n": 5}, "raw": [1, "x"], "at": "2020-01-02T03:04:05.000000"}`, string(b))
	m, err := AppendMsgpack(nil, v)
	require.NoError(t, err)
	back, err := DecodeMsgpack(m)
	require.NoError(t, err)
	var got testRaw
	require.NoError(t, DecodeValue(back, &got))
	require.Equal(t, 5, got.M.n)
	require.JSONEq(t, `[1, "x"]`, string(got.Raw))
	require.True(t, at.Equal(*got.At))

	_, err = AppendJSON(nil, testRaw{M: testMarshaler{-1}})
	require.ErrorIs(t, err, ErrEncode)
	require.Contains(t, err.Error(), ".m")
	require.Contains(t, err.Error(), "MarshalJSON: negative")
	_, err = AppendMsgpack(nil, testRaw{M: testMarshaler{-1}})
	require.ErrorIs(t, err, ErrEncode)
}

// The field rules are encoding/json's: for structs without datetimes or
// bytes, the dict is what json.Marshal writes.
type (
	embA struct {
		X int
		Y int `json:"y"`
	}
	embB struct {
		X int
		Z int
	}
	embTagged struct {
		Y int `json:"Y"`
	}
	fieldRules struct {
		embA
		*embB
		Tagged embTagged `json:"tagged"`
		Z      int       // shallower than embB.Z: wins
		Opt    *int      `json:",omitempty"`
		Empty  []int     `json:"empty,omitempty"`
		Nil    []int     `json:"nil"`
		Weird  int       `json:"we ird"`
		F      float64   `json:"f,string"`
		B      bool      `json:"b,string"`
		S      string    `json:"s,string"`
		I      any       `json:"i"` // ints in it would differ: goslo keeps Python's int, encoding/json makes float64
		Arr    [2]uint8  `json:"arr"`
	}
)

func TestStructFieldRulesAreEncodingJSONs(t *testing.T) {
	for _, v := range []any{
		fieldRules{},
		fieldRules{embA: embA{X: 1, Y: 2}, embB: &embB{X: 3, Z: 4}, Z: 5, Weird: 7, F: 1.5, B: true, S: `q"`, I: []string{"1"}, Arr: [2]uint8{1, 2}},
		struct {
			embA
			embB // X collides at one depth: dropped
		}{embA{1, 2}, embB{3, 4}},
	} {
		want, err := json.Marshal(v)
		require.NoError(t, err)
		wantV, err := DecodeJSON(want)
		require.NoError(t, err)
		got, err := AppendJSON(nil, v)
		require.NoError(t, err)
		gotV, err := DecodeJSON(got)
		require.NoError(t, err)
		require.True(t, Equal(wantV, gotV), "encoding/json: %s\ngoslo:         %s", want, got)

		// And back, as encoding/json reads it.
		p := newLike(v)
		require.NoError(t, DecodeValue(gotV, p))
		q := newLike(v)
		require.NoError(t, json.Unmarshal(want, q))
		require.Equal(t, q, p)
	}
}

func TestToMap(t *testing.T) {
	m, err := ToMap(testFlavor{ID: 1, Name: "n"})
	require.NoError(t, err)
	require.Equal(t, []string{"id", "name", "disk_gb"}, m.Keys())
	m, err = ToMap(map[string]int{"b": 1, "a": 2})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, m.Keys())
	m, err = ToMap(testMarshaler{2})
	require.NoError(t, err)
	require.Equal(t, "{\"n\": 2}", m.String())
	for _, bad := range []any{nil, 1, []int{1}, (*testFlavor)(nil), "x"} {
		_, err := ToMap(bad)
		require.ErrorIs(t, err, ErrEncode, "%#v", bad)
		require.True(t, strings.Contains(err.Error(), "dict"), err.Error())
	}
}

func newLike(v any) any { return reflect.New(reflect.TypeOf(v)).Interface() }

// FuzzDecodeValue decodes any JSON a peer could send into a struct: a
// *FieldError or success, never a panic; what decodes encodes again.
func FuzzDecodeValue(f *testing.F) {
	f.Add([]byte(pyInstanceJSON))
	f.Add([]byte(`{"flavor": {"id": "x"}, "tags": [1], "metadata": null, "count": "1e400", "zone": 5}`))
	f.Add([]byte(`{"Tagged": {"Y": 1}, "arr": [1, 2, 3], "f": "NaN", "b": "maybe", "s": "\"", "x": 1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeJSON(b)
		if err != nil {
			return
		}
		var inst testInstance
		if err := DecodeValue(v, &inst); err != nil {
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
		} else if inst.CreatedAt.Year() >= 1 && inst.CreatedAt.Year() <= 9999 {
			_, err := AppendJSON(nil, inst)
			require.NoError(t, err)
		}
		var rules fieldRules
		if err := DecodeValue(v, &rules); err != nil {
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
		}
	})
}
