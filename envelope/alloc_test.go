package envelope

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"testing"
)

// allocBudget is what a decoder may allocate for an input of n bytes: a
// constant per input byte plus a fixed overhead. Honest documents stay far
// below it; a forged length header must not be able to buy more.
// (Under -race the scratch stacks are not pooled, so they regrow each time.)
func allocBudget(n int) uint64 { return 128*uint64(n) + 64<<10 }

// bytesAllocated is the heap allocated by one call of f (TotalAlloc counts
// every allocation, collected or not).
func bytesAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// forgedNesting is an array32 (or map32) header claiming as many entries as
// there are bytes left, repeated at every level down to depth, then padded
// to size: the layout of issue 14's 64 KiB message.
func forgedNesting(size int, array bool) []byte {
	var b bytes.Buffer
	for b.Len()+5 <= size-16 && b.Len()/5 < MaxDepth {
		left := size - b.Len() - 5
		if array {
			b.WriteByte(0xdd)
		} else {
			b.WriteByte(0xdf)
			left /= 2
		}
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(left))
		b.Write(n[:])
	}
	for b.Len() < size {
		b.WriteByte(0xc0) // nil
	}
	return b.Bytes()
}

func TestMsgpackForgedLengthsAllocateInProportion(t *testing.T) {
	for _, array := range []bool{true, false} {
		in := forgedNesting(64<<10, array)
		got := bytesAllocated(func() {
			if _, err := DecodeMsgpack(in); err == nil {
				t.Fatal("a forged document decoded")
			}
		})
		t.Logf("array=%v: %d input bytes, %d bytes allocated", array, len(in), got)
		if got > allocBudget(len(in)) {
			t.Errorf("array=%v: %d input bytes allocated %d bytes, over the budget of %d",
				array, len(in), got, allocBudget(len(in)))
		}
	}
}

// Small fixarrays nested to the limit: each byte of input opens a container
// that claims 15 entries.
func TestMsgpackNestedFixarraysAllocateInProportion(t *testing.T) {
	in := bytes.Repeat([]byte{0x9f}, MaxDepth)
	got := bytesAllocated(func() { _, _ = DecodeMsgpack(in) })
	t.Logf("%d input bytes, %d bytes allocated", len(in), got)
	if got > allocBudget(len(in)) {
		t.Errorf("%d input bytes allocated %d bytes", len(in), got)
	}
}

func TestJSONNestingAllocatesInProportion(t *testing.T) {
	for _, in := range [][]byte{
		bytes.Repeat([]byte("["), 64<<10),
		bytes.Repeat([]byte(`{"a":`), 64<<10/5),
		append(bytes.Repeat([]byte("[1,"), 20000), ']'),
		append(append([]byte("["), bytes.Repeat([]byte("0,"), 32<<10)...), '0', ']'),
	} {
		got := bytesAllocated(func() { _, _ = DecodeJSON(in) })
		t.Logf("%d input bytes, %d bytes allocated", len(in), got)
		if got > allocBudget(len(in)) {
			t.Errorf("%d input bytes allocated %d bytes", len(in), got)
		}
	}
}

// FuzzDecodeAllocation: whatever the input, either codec allocates no more
// than a constant times its size plus a constant. Its seeds run in every
// go test; under -fuzz it is slow (a few execs a second: reading the
// allocation counters is costly in a fuzzing worker), so give it minutes.
func FuzzDecodeAllocation(f *testing.F) {
	f.Add(true, forgedNesting(600, true))
	f.Add(true, forgedNesting(600, false))
	f.Add(true, bytes.Repeat([]byte{0x9f}, 600))
	f.Add(false, bytes.Repeat([]byte("["), 600))
	f.Add(true, []byte{0x92, 0xc0, 0xc0})
	f.Add(true, append([]byte{0xdd, 0, 0, 0x02, 0}, bytes.Repeat([]byte{0xc0}, 512)...))
	f.Fuzz(func(t *testing.T, mp bool, in []byte) {
		dec := DecodeJSON
		if mp {
			dec = DecodeMsgpack
		}
		got := bytesAllocated(func() { _, _ = dec(in) })
		if got > allocBudget(len(in)) {
			t.Fatalf("msgpack=%v: %d input bytes allocated %d bytes", mp, len(in), got)
		}
	})
}
