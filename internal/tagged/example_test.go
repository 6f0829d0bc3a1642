package tagged_test

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/tagged"
)

// ExampleToTagged renders a message dict in the tagged form and reads it
// back as the Python side's JSON arrives: decoded with UseNumber, so that
// ints of any size stay exact.
func ExampleToTagged() {
	huge, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	v := envelope.NewMap(
		"int", 42,
		"big", huge,
		"float", 1.0,
		"bytes", []byte{0xca, 0xfe},
		"set", envelope.Set{"a"},
		"when", time.Date(2017, 3, 14, 15, 9, 26, 535897000, time.UTC),
	)
	t, err := tagged.ToTagged(v)
	if err != nil {
		panic(err)
	}
	b, _ := json.Marshal(t)
	fmt.Println(string(b))

	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		panic(err)
	}
	back, err := tagged.FromTagged(raw)
	fmt.Println(envelope.Repr(back), err)
	// Output:
	// {"$dict":[["int",42],["big",123456789012345678901234567890],["float",{"$float":"1.0"}],["bytes",{"$bytes":"cafe"}],["set",{"$set":["a"]}],["when",{"$datetime":[2017,3,14,15,9,26,535897,null]}]]}
	// {"int": 42, "big": 123456789012345678901234567890, "float": 1.0, "bytes": b"\xca\xfe", "set": Set["a"], "when": datetime(2017-03-14T15:09:26.535897 UTC)} <nil>
}

// ExampleFromTagged: a value the tagged form cannot carry is an error, in
// both directions.
func ExampleFromTagged() {
	_, err := tagged.FromTagged(map[string]any{"$nope": 1})
	fmt.Println(err)
	_, err = tagged.ToTagged(struct{}{})
	fmt.Println(err)
	// Output:
	// tagged: unknown tag "$nope"
	// tagged: no tagged form for struct {}
}
