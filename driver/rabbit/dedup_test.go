package rabbit

import (
	"fmt"
	"testing"
)

func TestDedupWindow(t *testing.T) {
	var d dedup
	if d.seen("a") || d.seen("") {
		t.Fatal("an empty window has seen nothing")
	}
	d.add("")
	d.add("first")
	d.add("first") // remembered once
	for i := 0; i < dedupWindow-1; i++ {
		d.add(fmt.Sprint(i))
	}
	if !d.seen("first") || !d.seen("0") || d.seen("") {
		t.Fatal("the window holds its last dedupWindow ids")
	}
	d.add("next")
	if d.seen("first") || !d.seen("0") || !d.seen("next") {
		t.Fatal("the oldest id leaves the window first")
	}
	if len(d.set) != dedupWindow {
		t.Fatalf("%d ids remembered, want %d", len(d.set), dedupWindow)
	}
}
