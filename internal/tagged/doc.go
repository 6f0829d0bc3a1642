// Package tagged converts goslo model values to and from the tagged JSON
// form that carries them across the Go/Python test channel
// (testdata/python/tagged.py).
//
// Plain JSON loses what the tests compare: a float that is a whole number
// against an int, a dict's key order, and bytes, sets, tuples, datetimes,
// UUIDs and the other types of oslo's serializers. The tagged form writes
// such a value as a one-key object naming its type ({"$float": "1.0"},
// {"$dict": [[key, value], ...]}, {"$bytes": hex}, {"$datetime": [...]},
// ...) and ints as bare JSON numbers of any size. ToTagged renders an
// envelope model value (ints, *big.Int, float64, []byte, []any,
// *envelope.Map, envelope.Set, time.Time, envelope.UUID, ...) in it;
// FromTagged reads it back from what encoding/json decodes with UseNumber.
// The interop suite exchanges values with Python peers this way, and
// envelope's golden tests read the Python side's values with it.
package tagged
