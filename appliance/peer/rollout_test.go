package peer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

// TestDecodeChunkFrames: chunk frames are checked like every frame: a
// chunk whose bytes do not match its hash, an oversized one, a want of
// too many or malformed hashes, or chunk fields on another type are
// refused; good ones decode.
func TestDecodeChunkFrames(t *testing.T) {
	data := []byte("some bundle bytes")
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	frame := func(m Message) []byte { b, _ := json.Marshal(m); return b }
	many := make([]string, MaxChunkWant+1)
	for i := range many {
		many[i] = h
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want string // "" = decodes
	}{
		{"chunk", frame(Message{Type: TypeChunk, Chunks: &ChunkFrame{Rollout: "r1", Hash: h, Data: data}}), ""},
		{"want", frame(Message{Type: TypeChunkWant, Chunks: &ChunkFrame{Rollout: "r1", Want: []string{h}}}), ""},
		{"damaged chunk", frame(Message{Type: TypeChunk, Chunks: &ChunkFrame{Rollout: "r1", Hash: h, Data: []byte("other bytes")}}), "do not match"},
		{"oversized chunk", frame(Message{Type: TypeChunk, Chunks: &ChunkFrame{Rollout: "r1", Hash: h, Data: make([]byte, ChunkSize+1)}}), "want a hash and 1.."},
		{"too many wanted", frame(Message{Type: TypeChunkWant, Chunks: &ChunkFrame{Rollout: "r1", Want: many}}), "want 1..16 hashes"},
		{"path in a hash", frame(Message{Type: TypeChunkWant, Chunks: &ChunkFrame{Rollout: "r1", Want: []string{"../../etc/passwd"}}}), "bad hash"},
		{"no frame", frame(Message{Type: TypeChunk}), "want a chunk frame"},
		{"chunks on a hello", frame(Message{Type: TypeHello, Box: "box-a", Chunks: &ChunkFrame{Rollout: "r1", Want: []string{h}}}), "carries chunks"},
	} {
		_, err := Decode(tc.b)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
