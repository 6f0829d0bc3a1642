package envelope_test

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goslo/goslo/envelope"
	"github.com/goslo/goslo/internal/tagged"
)

// TestGoldenCodecs checks both codecs against the bytes oslo.serialization
// 5.0.0 wrote for the corpus (testdata/corpus/codec-golden.json): equal
// bytes, or a refusal where Python raised; and decoding those bytes then
// encoding again gives them back.
func TestGoldenCodecs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "corpus", "codec-golden.json"))
	require.NoError(t, err)
	var doc struct {
		Values []map[string]any `json:"values"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&doc))
	counts := map[string]int{}
	for _, row := range doc.Values {
		name := row["name"].(string)
		v, err := tagged.FromTagged(row["value"])
		require.NoError(t, err, name)
		for _, c := range []envelope.Codec{envelope.JSON, envelope.Msgpack} {
			got, err := c.Append(nil, v)
			if _, pyFailed := row[c.Name()+"_error"]; pyFailed {
				require.ErrorIs(t, err, envelope.ErrEncode, "%s/%s", c.Name(), name)
				counts[c.Name()+" refused"]++
				continue
			}
			want, _ := hex.DecodeString(row[c.Name()].(string))
			require.NoError(t, err, "%s/%s", c.Name(), name)
			require.Equal(t, hex.EncodeToString(want), hex.EncodeToString(got), "%s/%s", c.Name(), name)
			back, err := c.Decode(want)
			require.NoError(t, err, "%s/%s", c.Name(), name)
			again, err := c.Append(nil, back)
			require.NoError(t, err, "%s/%s", c.Name(), name)
			require.Equal(t, want, again, "%s/%s", c.Name(), name)
			counts[c.Name()+" byte-identical"]++
		}
	}
	t.Logf("golden corpus: %v", counts)
}
