package vectors

import (
	"os"
	"path/filepath"
	"testing"
)

// RabbitDir is the directory of the rabbit vectors (see sharedVectors).
// GOSLO_RABBIT_VECTORS overrides it.
func RabbitDir() string {
	if d := os.Getenv("GOSLO_RABBIT_VECTORS"); d != "" {
		return d
	}
	return sharedVectors("rabbit")
}

// LoadRabbit reads one rabbit vector file by base name, failing the test if
// it cannot. The JSON is returned as is: callers decode it with an
// order-keeping decoder (envelope.DecodeJSON), since the order of field
// tables and message keys is part of what the vectors pin.
func LoadRabbit(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(RabbitDir(), name))
	if err != nil {
		t.Fatalf("VECTORS MISSING: %v (the shared vectors must sit beside the repository)", err)
	}
	return b
}
