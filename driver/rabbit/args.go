package rabbit

import "fmt"

// Arg is one entry of an AMQP field table. Value is one of the Go types
// whose field type py-amqp would pick for the Python value: int32 ('I',
// any Python int that fits), int64 ('l'), string ('S'), bool ('t').
type Arg struct {
	Key   string
	Value any
}

// Args is an AMQP field table in the order Python builds it (rabbit-wire.md
// §5.2): the order is part of the bytes of a declare, and RabbitMQ's
// equivalence check compares the types. nil and empty both mean the empty
// table {}.
type Args []Arg

// Table returns the arguments as a map, which converts to amqp091-go's
// amqp.Table (amqp.Table(a.Table())); its int32 values encode as 'I' as
// py-amqp's do. amqp091-go writes a map in its own order, which RabbitMQ
// ignores; Args keeps Python's order for tests and logs. An empty Args
// gives nil (an empty table on the wire).
func (a Args) Table() map[string]any {
	if len(a) == 0 {
		return nil
	}
	t := make(map[string]any, len(a))
	for _, kv := range a {
		t[kv.Key] = tableValue(kv.Value)
	}
	return t
}

// Get returns the value under key.
func (a Args) Get(key string) (any, bool) {
	for _, kv := range a {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// FieldType is the AMQP 0-9-1 field type letter of an argument value as
// RabbitMQ names it: 'I' int32, 'l' int64, 'S' string, 't' bool, 'F' a
// nested table (Args). It panics on other types, which no function of this
// package produces.
func FieldType(v any) byte {
	switch v.(type) {
	case int32:
		return 'I'
	case int64:
		return 'l'
	case string:
		return 'S'
	case bool:
		return 't'
	case Args:
		return 'F'
	}
	panic(fmt.Sprintf("rabbit: no field type for %T", v))
}

// pyInt is a Python int as py-amqp encodes it: 'I' when it fits 32 bits,
// else 'l'.
func pyInt(n int64) any {
	if n >= -1<<31 && n < 1<<31 {
		return int32(n)
	}
	return n
}
