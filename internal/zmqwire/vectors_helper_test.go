package zmqwire

import (
	"os"
	"path/filepath"

	"github.com/goslo/goslo/internal/vectors"
)

func readVectorFile(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(vectors.Dir(), name))
}
