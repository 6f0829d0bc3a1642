package vectors

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
)

// Dir is the directory of the zmq vectors (see sharedVectors).
// GOSLO_VECTORS overrides it.
func Dir() string {
	if d := os.Getenv("GOSLO_VECTORS"); d != "" {
		return d
	}
	return sharedVectors("zmq")
}

// sharedVectors is shared/vectors/<kind> in the nearest directory above
// the repository that has one (a git worktree may sit deeper than the main
// checkout), else beside the repository.
func sharedVectors(kind string) string {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
	for d := root; ; {
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
		if st, err := os.Stat(filepath.Join(d, "shared", "vectors", kind)); err == nil && st.IsDir() {
			return filepath.Join(d, "shared", "vectors", kind)
		}
	}
	return filepath.Join(filepath.Dir(root), "shared", "vectors", kind)
}

// Frame is one captured zmq frame.
type Frame struct {
	Hex  string  `json:"hex"`
	Len  int     `json:"len"`
	UTF8 *string `json:"utf8"`
}

// Bytes decodes the frame's hex.
func (f Frame) Bytes() []byte {
	b, err := hex.DecodeString(f.Hex)
	if err != nil {
		panic("vectors: bad hex in capture: " + err.Error())
	}
	return b
}

// FrameRole is the harness's reading of one frame.
type FrameRole struct {
	Index         int             `json:"index"`
	Role          string          `json:"role"`
	Serialization string          `json:"serialization"`
	Value         json.RawMessage `json:"value"`
}

// Decoded is the harness's reading of a vector.
type Decoded struct {
	Layout         string          `json:"layout"`
	MessageVersion string          `json:"message_version"`
	MessageType    string          `json:"message_type"`
	MessageID      string          `json:"message_id"`
	Frames         []FrameRole     `json:"frames"`
	Context        json.RawMessage `json:"context"`
	Message        json.RawMessage `json:"message"`
	ReplyBody      json.RawMessage `json:"reply_body"`
	Failure        json.RawMessage `json:"failure"`
	FailureDecoded json.RawMessage `json:"failure_decoded"`
}

// Vector is one captured multipart message.
type Vector struct {
	Name                         string  `json:"name"`
	Action                       string  `json:"action"`
	Hop                          string  `json:"hop"`
	SenderSocket                 string  `json:"sender_socket"`
	ReceiverSocket               string  `json:"receiver_socket"`
	IdentityFrameAddedByReceiver bool    `json:"identity_frame_added_by_receiver"`
	MessageType                  string  `json:"message_type"`
	Serialization                string  `json:"serialization"`
	Frames                       []Frame `json:"frames"`
	Decoded                      Decoded `json:"decoded"`
}

// FrameBytes returns all frames as bytes.
func (v Vector) FrameBytes() [][]byte {
	out := make([][]byte, len(v.Frames))
	for i, f := range v.Frames {
		out[i] = f.Bytes()
	}
	return out
}

// Payload returns the payload frame and true, when the vector has one.
func (v Vector) Payload() ([]byte, bool) {
	for _, r := range v.Decoded.Frames {
		if r.Role == "payload" && r.Index < len(v.Frames) {
			return v.Frames[r.Index].Bytes(), true
		}
	}
	return nil, false
}

// File is one vector file.
type File struct {
	Name     string          `json:"-"`
	Source   json.RawMessage `json:"source"`
	Scenario json.RawMessage `json:"scenario"`
	Config   json.RawMessage `json:"config"`
	Inputs   json.RawMessage `json:"inputs"`
	Actions  json.RawMessage `json:"actions"`
	Vectors  []Vector        `json:"vectors"`
}

// Load reads one vector file by base name, failing the test if it cannot.
func Load(t testing.TB, name string) *File {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(), name))
	if err != nil {
		t.Fatalf("VECTORS MISSING: %v (the shared vectors must sit beside the repository)", err)
	}
	f := &File{Name: name}
	if err := json.Unmarshal(b, f); err != nil {
		t.Fatalf("vectors %s: %v", name, err)
	}
	return f
}

// Files lists the JSON vector files, sorted.
func Files(t testing.TB) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(Dir(), "*.json"))
	if err != nil || len(m) == 0 {
		t.Fatalf("VECTORS MISSING in %s: %v", Dir(), err)
	}
	var out []string
	for _, p := range m {
		if filepath.Base(p) == "redis-state.json" {
			continue
		}
		out = append(out, filepath.Base(p))
	}
	sort.Strings(out)
	return out
}

// Payload is one captured payload frame.
type Payload struct {
	File          string
	Vector        string
	Serialization string
	MessageType   string
	Bytes         []byte
}

// Payloads returns every payload frame of every vector file.
func Payloads(t testing.TB) []Payload {
	t.Helper()
	var out []Payload
	for _, name := range Files(t) {
		f := Load(t, name)
		for _, v := range f.Vectors {
			if p, ok := v.Payload(); ok {
				out = append(out, Payload{File: name, Vector: v.Name, Serialization: v.Serialization, MessageType: v.MessageType, Bytes: p})
			}
		}
	}
	return out
}
