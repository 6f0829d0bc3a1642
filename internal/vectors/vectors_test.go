package vectors

import "testing"

func TestPayloadsPresent(t *testing.T) {
	ps := Payloads(t)
	n := map[string]int{}
	for _, p := range ps {
		n[p.Serialization]++
	}
	t.Logf("payload frames: %v", n)
	if n["json"] == 0 || n["msgpack"] == 0 {
		t.Fatalf("expected json and msgpack payloads, got %v", n)
	}
}
