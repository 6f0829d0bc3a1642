package vectors

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// RabbitDir is the directory of the rabbit vectors: shared/vectors/rabbit
// in the nearest directory above the repository that has one (a git
// worktree may sit deeper than the main checkout), else beside Dir().
// GOSLO_RABBIT_VECTORS overrides it.
func RabbitDir() string {
	if d := os.Getenv("GOSLO_RABBIT_VECTORS"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	for d := filepath.Dir(file); ; {
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
		if st, err := os.Stat(filepath.Join(d, "shared", "vectors", "rabbit")); err == nil && st.IsDir() {
			return filepath.Join(d, "shared", "vectors", "rabbit")
		}
	}
	return filepath.Join(filepath.Dir(Dir()), "rabbit")
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
