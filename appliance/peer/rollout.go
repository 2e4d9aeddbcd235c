package peer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/store"
)

// The fleet's transport for software rollouts (docs/fleet.md, "Updates
// across the fleet"): two replicated register kinds, so that every box can
// show a rollout's state, and two link message types that carry a bundle
// as content-addressed chunks. The rollout itself (when a box fetches,
// verifies, installs, reports) is appliance/rollout.
const (
	// KindRollout is an LWW register per rollout id: the manifest the
	// originating box published.
	KindRollout = "rollout"
	// KindRolloutBox is an LWW register per rollout id/box: that box's
	// progress, originated only by that box.
	KindRolloutBox = "rollout-box"
)

// Message types of the chunk transfer.
const (
	TypeChunkWant = "chunk-want" // ask a peer for chunks by SHA-256
	TypeChunk     = "chunk"      // one chunk's bytes
)

const (
	// ChunkSize is the size of a bundle chunk (the last one is shorter);
	// base64 in a JSON frame it stays well under MaxMessageBytes.
	ChunkSize = 256 << 10
	// MaxRolloutChunks bounds a manifest (200 MiB bundles), so that it
	// fits one register value.
	MaxRolloutChunks = 800
	// MaxChunkWant bounds the hashes of one chunk-want frame.
	MaxChunkWant = 16
)

// Phases of a box in a rollout (RolloutBoxValue.Phase).
const (
	PhaseFetching   = "fetching"   // collecting chunks (also before its turn)
	PhaseInstalling = "installing" // verified against its keyring; writing the other slot
	PhaseRebooting  = "rebooting"  // written; rebooting into it, the health gate decides
	PhaseGood       = "good"       // the gate passed; running the new version
	PhaseFailed     = "failed"     // refused, install failed, or rolled back: see Reason
	PhaseHalted     = "halted"     // not installed because another box failed
)

func init() {
	knownKinds[KindRollout] = true
	knownKinds[KindRolloutBox] = true
}

// RolloutValue is a KindRollout register: what to install where, in
// which order.
type RolloutValue struct {
	ID         string `json:"id"`
	Version    string `json:"version"`
	Compatible string `json:"compatible,omitempty"`
	Size       int64  `json:"size"`
	SHA256     string `json:"sha256"` // of the whole bundle
	ChunkSize  int    `json:"chunkSize"`
	// Chunks are the SHA-256 of each chunk, in order.
	Chunks []string `json:"chunks"`
	Origin string   `json:"origin"` // the box where `fleet update` ran
	Canary string   `json:"canary"`
	// CanaryWhy says how the canary was chosen.
	CanaryWhy string   `json:"canaryWhy,omitempty"`
	Boxes     []string `json:"boxes"` // every box of the rollout, the canary first
	// Verified is the signer check at the origin ("signature verified
	// against box-a's keyring"); every box verifies again against its own.
	Verified string    `json:"verified"`
	Created  time.Time `json:"created"`
}

// RolloutBoxValue is a KindRolloutBox register: one box's progress.
type RolloutBoxValue struct {
	Phase   string `json:"phase"`
	Have    int    `json:"have,omitempty"`    // chunks held
	Version string `json:"version,omitempty"` // the version it runs (when good or failed)
	Reason  string `json:"reason,omitempty"`
	// ChunkBytes counts chunk bytes this box received from peers in this
	// rollout (0 on the origin).
	ChunkBytes int64     `json:"chunkBytes,omitempty"`
	At         time.Time `json:"at"`
}

// Terminal reports whether the box is done with the rollout.
func (v RolloutBoxValue) Terminal() bool {
	return v.Phase == PhaseGood || v.Phase == PhaseFailed || v.Phase == PhaseHalted
}

// ChunkFrame is the payload of TypeChunkWant and TypeChunk.
type ChunkFrame struct {
	Rollout string   `json:"rollout"`
	Want    []string `json:"want,omitempty"`
	Hash    string   `json:"hash,omitempty"`
	Data    []byte   `json:"data,omitempty"`
}

// ChunkHandler serves and receives chunks for a node (appliance/rollout).
type ChunkHandler interface {
	// Chunk returns a held chunk; nil when not held.
	Chunk(hash string) []byte
	// ChunkReceived is called with a chunk whose bytes match hash
	// (checked by Decode) from box.
	ChunkReceived(box, rollout, hash string, data []byte)
}

// RolloutState is a rollout with every box's progress.
type RolloutState struct {
	RolloutValue
	Progress map[string]RolloutBoxValue `json:"progress"`
}

func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// checkChunkFrame checks the chunk fields of m (any type).
func checkChunkFrame(m *Message) error {
	switch m.Type {
	case TypeChunkWant, TypeChunk:
	default:
		if m.Chunks != nil {
			return fmt.Errorf("%.32s: carries chunks", m.Type)
		}
		return nil
	}
	c := m.Chunks
	if c == nil || len(m.Entries) > 0 || len(m.VV) > 0 || len(m.Hint) > 0 || m.Box != "" {
		return fmt.Errorf("%s: want a chunk frame and nothing else", m.Type)
	}
	if c.Rollout == "" || len(c.Rollout) > maxIDLen {
		return fmt.Errorf("%s: bad rollout id", m.Type)
	}
	if m.Type == TypeChunkWant {
		if len(c.Want) == 0 || len(c.Want) > MaxChunkWant || c.Hash != "" || len(c.Data) > 0 {
			return fmt.Errorf("chunk-want: want 1..%d hashes and no data", MaxChunkWant)
		}
		for _, h := range c.Want {
			if !isHash(h) {
				return fmt.Errorf("chunk-want: bad hash %.70q", h)
			}
		}
		return nil
	}
	if len(c.Want) > 0 || !isHash(c.Hash) || len(c.Data) == 0 || len(c.Data) > ChunkSize {
		return fmt.Errorf("chunk: want a hash and 1..%d bytes", ChunkSize)
	}
	if sum := sha256.Sum256(c.Data); hex.EncodeToString(sum[:]) != c.Hash {
		return fmt.Errorf("chunk: bytes do not match hash %s", c.Hash)
	}
	return nil
}

// checkRolloutValue is checkValue for the rollout kinds.
func checkRolloutValue(kind string, raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	switch kind {
	case KindRollout:
		var v RolloutValue
		if err := dec.Decode(&v); err != nil {
			return err
		}
		return v.check()
	case KindRolloutBox:
		var v RolloutBoxValue
		if err := dec.Decode(&v); err != nil {
			return err
		}
		switch v.Phase {
		case PhaseFetching, PhaseInstalling, PhaseRebooting, PhaseGood, PhaseFailed, PhaseHalted:
		default:
			return fmt.Errorf("unknown phase %.32q", v.Phase)
		}
		if len(v.Reason) > 2048 || len(v.Version) > 128 {
			return errors.New("oversized reason or version")
		}
		return nil
	}
	return fmt.Errorf("unknown kind %q", kind)
}

func (v RolloutValue) check() error {
	switch {
	case v.ID == "" || len(v.ID) > maxIDLen || strings.Contains(v.ID, "/"):
		return errors.New("bad rollout id")
	case v.Version == "" || len(v.Version) > 128:
		return errors.New("bad version")
	case !isHash(v.SHA256):
		return errors.New("bad bundle hash")
	case v.ChunkSize <= 0 || v.ChunkSize > ChunkSize:
		return fmt.Errorf("chunk size %d, want 1..%d", v.ChunkSize, ChunkSize)
	case len(v.Chunks) == 0 || len(v.Chunks) > MaxRolloutChunks:
		return fmt.Errorf("%d chunks, want 1..%d", len(v.Chunks), MaxRolloutChunks)
	case v.Size <= int64(len(v.Chunks)-1)*int64(v.ChunkSize) || v.Size > int64(len(v.Chunks))*int64(v.ChunkSize):
		return fmt.Errorf("size %d does not fit %d chunks of %d", v.Size, len(v.Chunks), v.ChunkSize)
	case CheckBoxID(v.Origin) != nil || CheckBoxID(v.Canary) != nil:
		return errors.New("bad origin or canary")
	case len(v.Boxes) == 0 || len(v.Boxes) > maxOrigins || v.Boxes[0] != v.Canary:
		return errors.New("boxes must list the canary first")
	case len(v.Verified) > 1024 || len(v.CanaryWhy) > 1024 || len(v.Compatible) > 128:
		return errors.New("oversized fields")
	}
	for _, h := range v.Chunks {
		if !isHash(h) {
			return fmt.Errorf("bad chunk hash %.70q", h)
		}
	}
	for _, b := range v.Boxes {
		if CheckBoxID(b) != nil {
			return fmt.Errorf("bad box %.64q", b)
		}
	}
	return nil
}

// SetChunkHandler makes h serve and receive this node's chunks.
func (n *Node) SetChunkHandler(h ChunkHandler) {
	n.chunks.Store(&h)
}

func (n *Node) chunkHandler() ChunkHandler {
	if p := n.chunks.Load(); p != nil {
		return *p
	}
	return nil
}

// handleChunks answers a chunk-want with the chunks held and hands a
// received chunk to the handler.
func (l *link) handleChunks(m Message) error {
	h := l.n.chunkHandler()
	if h == nil {
		return nil // no rollout here: the asker times out and asks another box
	}
	c := m.Chunks
	if m.Type == TypeChunk {
		h.ChunkReceived(l.peer, c.Rollout, c.Hash, c.Data)
		return nil
	}
	for _, hash := range c.Want {
		data := h.Chunk(hash)
		if data == nil {
			continue
		}
		if !l.send(Message{Type: TypeChunk, Chunks: &ChunkFrame{Rollout: c.Rollout, Hash: hash, Data: data}}) {
			return nil
		}
	}
	return nil
}

// WantChunks asks box for chunks of rollout; false when no link to it is
// up.
func (n *Node) WantChunks(box, rollout string, hashes []string) bool {
	n.mu.Lock()
	l := n.links[box]
	n.mu.Unlock()
	if l == nil || !l.up() {
		return false
	}
	return l.send(Message{Type: TypeChunkWant, Chunks: &ChunkFrame{Rollout: rollout, Want: hashes}})
}

// LinkedPeers returns the boxes with a link up, sorted.
func (n *Node) LinkedPeers() []string {
	out := n.livePeers()
	slices.Sort(out)
	return out
}

// FleetBoxes returns the ids of the boxes in the fleet (not removed),
// this one included, sorted.
func (n *Node) FleetBoxes() ([]string, error) {
	k, _ := n.current()
	if k == nil {
		return nil, ErrNotInFleet
	}
	var all map[string]BoxValue
	if err := n.st.View(func(tx *store.Tx) error { var err error; all, _, err = boxes(tx); return err }); err != nil {
		return nil, fmt.Errorf("fleet boxes: %w", err)
	}
	all[k.id.BoxID] = BoxValue{}
	return sortedKeys(all), nil
}

// LiveSessions counts the live, unexpired session registers per box.
func (n *Node) LiveSessions() (map[string]int, error) {
	now := n.now()
	out := map[string]int{}
	err := n.st.View(func(tx *store.Tx) error {
		regs, err := registers(tx, KindSession)
		if err != nil {
			return err
		}
		for _, e := range regs {
			var v SessionValue
			if json.Unmarshal(e.Value, &v) == nil && v.Live && v.Until.After(now) {
				out[e.Origin]++
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fleet sessions: %w", err)
	}
	return out, nil
}

// PublishRollout originates a rollout's manifest.
func (n *Node) PublishRollout(v RolloutValue) error {
	k, rep := n.current()
	if k == nil {
		return ErrNotInFleet
	}
	if err := v.check(); err != nil {
		return fmt.Errorf("rollout %s: %w", v.ID, err)
	}
	err := n.st.Update(func(tx *store.Tx) error {
		if _, ok, err := register(tx, KindRollout, v.ID); err != nil || ok {
			if ok {
				return fmt.Errorf("rollout %s exists", v.ID)
			}
			return err
		}
		_, err := rep.originate(tx, KindRollout, v.ID, v)
		return err
	})
	if err != nil {
		return fmt.Errorf("publish rollout %s: %w", v.ID, err)
	}
	n.nudgeAll()
	return nil
}

// ReportRollout originates this box's progress in rollout id.
func (n *Node) ReportRollout(id string, v RolloutBoxValue) error {
	k, rep := n.current()
	if k == nil {
		return ErrNotInFleet
	}
	if v.At.IsZero() {
		v.At = n.now()
	}
	err := n.st.Update(func(tx *store.Tx) error {
		_, err := rep.originate(tx, KindRolloutBox, id+"/"+k.id.BoxID, v)
		return err
	})
	if err != nil {
		return fmt.Errorf("report rollout %s: %w", id, err)
	}
	n.nudgeAll()
	return nil
}

// Rollouts returns every rollout this box knows of, oldest first, with
// the progress of each box.
func (n *Node) Rollouts() ([]RolloutState, error) {
	var out []RolloutState
	err := n.st.View(func(tx *store.Tx) error {
		rs, err := registers(tx, KindRollout)
		if err != nil {
			return err
		}
		prog, err := registers(tx, KindRolloutBox)
		if err != nil {
			return err
		}
		_, removed, err := boxes(tx)
		if err != nil {
			return err
		}
		byID := map[string]*RolloutState{}
		for _, e := range rs {
			var v RolloutValue
			if err := json.Unmarshal(e.Value, &v); err != nil {
				return fmt.Errorf("decode rollout %s: %w", e.Key, err)
			}
			// A box removed from the fleet is no longer waited for (the
			// canary stays: the others wait for it).
			v.Boxes = slices.DeleteFunc(v.Boxes, func(b string) bool { return removed[b] && b != v.Canary })
			out = append(out, RolloutState{RolloutValue: v, Progress: map[string]RolloutBoxValue{}})
		}
		for i := range out {
			byID[out[i].ID] = &out[i]
		}
		for key, e := range prog {
			id, box, ok := strings.Cut(key, "/")
			r := byID[id]
			if !ok || r == nil || box != e.Origin {
				continue // a box reports only for itself
			}
			var v RolloutBoxValue
			if err := json.Unmarshal(e.Value, &v); err != nil {
				return fmt.Errorf("decode rollout progress %s: %w", key, err)
			}
			r.Progress[box] = v
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fleet rollouts: %w", err)
	}
	slices.SortFunc(out, func(a, b RolloutState) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}
