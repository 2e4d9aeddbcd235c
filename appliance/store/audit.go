package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/deskgate/deskgate/appliance/model"
	"go.etcd.io/bbolt"
)

// Audit appends e to the audit log, assigning Seq (monotonic, also across
// restarts) and, if zero, Time.
func (tx *Tx) Audit(e model.AuditEntry) error {
	if err := tx.writable("audit"); err != nil {
		return err
	}
	b := tx.tx.Bucket(bucketAudit)
	b.FillPercent = appendFill
	seq, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	e.Seq = seq
	if e.Time.IsZero() {
		e.Time = tx.nowTime()
	}
	raw, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: encode: %w", err)
	}
	if err := b.Put(u64(seq), raw); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if h := tx.s.auditHook.Load(); h != nil && !tx.localAudit {
		if err := (*h)(tx, e); err != nil {
			return fmt.Errorf("audit hook: %w", err)
		}
	}
	return nil
}

// AuditHook sees every audit entry inside the transaction that writes it
// (the fleet replicates the trail this way); an error aborts the
// transaction.
type AuditHook func(tx *Tx, e model.AuditEntry) error

// SetAuditHook installs h (nil removes it).
func (s *Store) SetAuditHook(h AuditHook) {
	if h == nil {
		s.auditHook.Store(nil)
		return
	}
	s.auditHook.Store(&h)
}

// LocalAudit makes the audit entries of tx skip the audit hook: they are
// consequences of a change that was audited where it was made (a
// replicated change applied here).
func (tx *Tx) LocalAudit() { tx.localAudit = true }

// AuditLocal is Audit for one entry that skips the audit hook (see
// LocalAudit), leaving the rest of tx as it was.
func (tx *Tx) AuditLocal(e model.AuditEntry) error {
	prev := tx.localAudit
	tx.localAudit = true
	defer func() { tx.localAudit = prev }()
	return tx.Audit(e)
}

// AuditLog returns up to limit entries with Seq > afterSeq, oldest first.
// limit <= 0 means no limit.
func (s *Store) AuditLog(afterSeq uint64, limit int) ([]model.AuditEntry, error) {
	var out []model.AuditEntry
	err := s.db.View(func(btx *bbolt.Tx) error {
		c := btx.Bucket(bucketAudit).Cursor()
		for k, v := c.Seek(u64(afterSeq + 1)); k != nil; k, v = c.Next() {
			if afterSeq == ^uint64(0) {
				break
			}
			var e model.AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode %d: %w", be64(k), err)
			}
			out = append(out, e)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return out, nil
}

// AuditTail returns the newest limit entries, oldest first, reading only
// those (not the whole log).
func (s *Store) AuditTail(limit int) ([]model.AuditEntry, error) {
	var out []model.AuditEntry
	err := s.db.View(func(btx *bbolt.Tx) error {
		c := btx.Bucket(bucketAudit).Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var e model.AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode %d: %w", be64(k), err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit tail: %w", err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// AuditOf returns up to limit entries about member, newest first. It scans
// the log backwards. limit <= 0 means no limit.
func (s *Store) AuditOf(member string, limit int) ([]model.AuditEntry, error) {
	var out []model.AuditEntry
	err := s.db.View(func(btx *bbolt.Tx) error {
		c := btx.Bucket(bucketAudit).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			// Cheap pre-filter before decoding every entry.
			var head struct {
				Member string `json:"member"`
			}
			if err := json.Unmarshal(v, &head); err != nil {
				return fmt.Errorf("decode %d: %w", be64(k), err)
			}
			if head.Member != member {
				continue
			}
			var e model.AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode %d: %w", be64(k), err)
			}
			out = append(out, e)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit of %q: %w", member, err)
	}
	return out, nil
}

func be64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
