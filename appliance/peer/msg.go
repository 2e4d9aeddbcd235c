package peer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Limits of the wire format; Decode enforces them.
const (
	MaxMessageBytes = 1 << 20
	maxIDLen        = 64
	maxKeyLen       = 256
	maxValueLen     = 64 << 10
	maxBatch        = 512
	maxOrigins      = 4096
)

// Message types.
const (
	TypeHello   = "hello"   // first frame each way: box id and version vector
	TypeEntries = "entries" // a batch of log entries
	TypeVV      = "vv"      // the sender's version vector (after applying a batch)
	TypeHint    = "hint"    // a verified OfficeRnD webhook delivery, relayed (not logged)
)

// MaxHintBytes bounds a relayed webhook body; larger ones are left to the poll.
const MaxHintBytes = 256 << 10

// Entry is one replicated log entry.
type Entry struct {
	Origin string          `json:"o"`
	Seq    uint64          `json:"s"`
	Time   HLC             `json:"t"`
	Kind   string          `json:"k"`
	Key    string          `json:"key"`
	Value  json.RawMessage `json:"v,omitempty"`
	// Sig is the origin box's ECDSA signature (see sign.go).
	Sig []byte `json:"sig,omitempty"`
	// Skip (on the wire only, not signed) is how many sequence numbers
	// of this origin before Seq the sender compacted away (compact.go).
	Skip uint64 `json:"skip,omitempty"`
}

// Message is one frame on a link.
type Message struct {
	Type    string            `json:"type"`
	Box     string            `json:"box,omitempty"`
	VV      map[string]uint64 `json:"vv,omitempty"`
	Entries []Entry           `json:"entries,omitempty"`
	Hint    json.RawMessage   `json:"hint,omitempty"`
	Check   *ConfigCheck      `json:"check,omitempty"` // TypeConfigCheck
	Vote    *ConfigVote       `json:"vote,omitempty"`  // TypeConfigVote
	// Certs are box certificates (DER) of the origins of Entries the
	// receiver may not know yet.
	Certs  [][]byte    `json:"certs,omitempty"`
	Chunks *ChunkFrame `json:"chunks,omitempty"` // rollout.go
}

// known record kinds; an entry of another kind is malformed.
var knownKinds = map[string]bool{KindBox: true, KindRemoved: true, KindPassword: true, KindWelcome: true, KindSession: true, KindAudit: true, KindSent: true, KindConfig: true}

// Decode parses and checks one frame. Anything malformed, oversized or of
// an unknown type or kind is an error; nothing of it may be applied.
func Decode(b []byte) (Message, error) {
	var m Message
	if len(b) > MaxMessageBytes {
		return m, fmt.Errorf("message of %d bytes exceeds %d", len(b), MaxMessageBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Message{}, fmt.Errorf("malformed message: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Message{}, errors.New("malformed message: trailing data")
	}
	if err := m.check(); err != nil {
		return Message{}, err
	}
	return m, nil
}

func (m *Message) check() error {
	if err := checkChunkFrame(m); err != nil {
		return err
	}
	if len(m.VV) > maxOrigins {
		return fmt.Errorf("version vector with %d origins exceeds %d", len(m.VV), maxOrigins)
	}
	for o := range m.VV {
		if CheckBoxID(o) != nil {
			return fmt.Errorf("version vector: bad origin %.64q", o)
		}
	}
	if len(m.Certs) > 0 && m.Type != TypeEntries {
		return fmt.Errorf("%.32s: carries certificates", m.Type)
	}
	if len(m.Certs) > maxCerts {
		return fmt.Errorf("%d certificates exceed %d", len(m.Certs), maxCerts)
	}
	for _, c := range m.Certs {
		if len(c) == 0 || len(c) > maxCertBytes {
			return fmt.Errorf("certificate of %d bytes, want 1..%d", len(c), maxCertBytes)
		}
	}
	if (m.Check != nil || m.Vote != nil) && m.Type != TypeConfigCheck && m.Type != TypeConfigVote {
		return fmt.Errorf("%.32s: carries a configuration check or vote", m.Type)
	}
	switch m.Type {
	case TypeConfigCheck, TypeConfigVote:
		return checkConfigMsg(m)
	case TypeHello:
		if CheckBoxID(m.Box) != nil {
			return fmt.Errorf("hello: bad box id %.64q", m.Box)
		}
		if len(m.Entries) > 0 {
			return errors.New("hello: carries entries")
		}
	case TypeVV:
		if len(m.Entries) > 0 {
			return errors.New("vv: carries entries")
		}
	case TypeHint:
		if len(m.Entries) > 0 || len(m.VV) > 0 {
			return errors.New("hint: carries entries or a vector")
		}
		if len(m.Hint) == 0 || len(m.Hint) > MaxHintBytes || m.Hint[0] != '{' {
			return fmt.Errorf("hint: want a JSON object of 1..%d bytes", MaxHintBytes)
		}
	case TypeEntries:
		if len(m.Entries) == 0 || len(m.Entries) > maxBatch {
			return fmt.Errorf("entries: batch of %d, want 1..%d", len(m.Entries), maxBatch)
		}
		for i, e := range m.Entries {
			if err := e.check(); err != nil {
				return fmt.Errorf("entries[%d]: %w", i, err)
			}
			if err := checkValue(e.Kind, e.Value); err != nil {
				return fmt.Errorf("entries[%d]: %w", i, err)
			}
			if err := checkAuditKey(e); err != nil {
				return fmt.Errorf("entries[%d]: %w", i, err)
			}
		}
	case TypeChunkWant, TypeChunk: // checkChunkFrame
	default:
		return fmt.Errorf("unknown message type %.32q", m.Type)
	}
	return nil
}

func (e Entry) check() error {
	switch {
	case CheckBoxID(e.Origin) != nil:
		return fmt.Errorf("bad origin %.64q", e.Origin)
	case e.Seq == 0:
		return errors.New("seq 0")
	case e.Time.Wall <= 0:
		return errors.New("no timestamp")
	case !knownKinds[e.Kind]:
		return fmt.Errorf("unknown kind %.32q", e.Kind)
	case e.Key == "" || len(e.Key) > maxKeyLen:
		return fmt.Errorf("key of %d bytes, want 1..%d", len(e.Key), maxKeyLen)
	case len(e.Value) > maxValueLen:
		return fmt.Errorf("value of %d bytes exceeds %d", len(e.Value), maxValueLen)
	case e.Skip >= e.Seq:
		return fmt.Errorf("skip %d reaches before seq 1", e.Skip)
	case len(e.Sig) > maxSigLen:
		return fmt.Errorf("signature of %d bytes exceeds %d", len(e.Sig), maxSigLen)
	}
	return nil
}
