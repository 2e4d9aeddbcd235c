package store

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"go.etcd.io/bbolt"
)

// sentRetention is how long MarkEmailSent remembers a sent id.
const sentRetention = 30 * 24 * time.Hour

// storedEmail is an outbox record: the email without its secret fields,
// which are JSON-encoded, sealed with AES-256-GCM (bound to the id) and
// kept in Sealed.
type storedEmail struct {
	Email  model.Email `json:"email"`
	Sealed []byte      `json:"sealed,omitempty"`
}

// timeKey encodes t for byte-ordered keys; zero and pre-1970 times sort
// first.
func timeKey(t time.Time) []byte {
	if t.IsZero() || t.Before(time.Unix(0, 0)) {
		return u64(0)
	}
	return u64(uint64(t.UnixNano()))
}

// dueKey orders the outbox by next try, then creation, then id.
func dueKey(e model.Email) []byte {
	k := make([]byte, 0, 16+len(e.ID))
	k = append(k, timeKey(e.NextTry)...)
	k = append(k, timeKey(e.CreatedAt)...)
	return append(k, e.ID...)
}

// EnqueueEmail adds e to the outbox and returns its id, assigning a random
// hex id if e.ID is empty and CreatedAt if zero. Re-enqueueing an id that is
// pending replaces it.
func (tx *Tx) EnqueueEmail(e model.Email) (string, error) {
	if err := tx.writable("enqueue email"); err != nil {
		return "", err
	}
	if e.ID == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("enqueue email: %w", err)
		}
		e.ID = hex.EncodeToString(b[:])
	}
	if err := validID(e.ID); err != nil {
		return "", fmt.Errorf("enqueue email: %w", err)
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = tx.nowTime()
	}
	if err := tx.putEmail(e); err != nil {
		return "", fmt.Errorf("enqueue email %s: %w", e.ID, err)
	}
	return e.ID, nil
}

func (tx *Tx) putEmail(e model.Email) error {
	b := tx.tx.Bucket(bucketOutbox)
	old, existed, err := tx.getEmail(e.ID)
	if err != nil {
		return err
	}
	rec := storedEmail{Email: e}
	rec.Email.Secret = nil
	if len(e.Secret) > 0 {
		plain, err := json.Marshal(e.Secret)
		if err != nil {
			return fmt.Errorf("encode secret: %w", err)
		}
		if rec.Sealed, err = tx.s.sealBytes(plain, []byte(e.ID)); err != nil {
			return fmt.Errorf("seal secret: %w", err)
		}
		clear(plain)
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	due := tx.tx.Bucket(idxOutboxDue)
	if existed {
		if err := due.Delete(dueKey(old.Email)); err != nil {
			return err
		}
	}
	if err := due.Put(dueKey(e), nil); err != nil {
		return err
	}
	if err := b.Put([]byte(e.ID), raw); err != nil {
		return err
	}
	if !existed {
		return tx.addCount(kindOutbox, 1)
	}
	return nil
}

// getEmail returns the stored record, secret still sealed.
func (tx *Tx) getEmail(id string) (storedEmail, bool, error) {
	var rec storedEmail
	raw := tx.tx.Bucket(bucketOutbox).Get([]byte(id))
	if raw == nil {
		return rec, false, nil
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		return rec, true, fmt.Errorf("decode email %q: %w", id, err)
	}
	return rec, true, nil
}

func (s *Store) unseal(rec storedEmail) (model.Email, error) {
	e := rec.Email
	if len(rec.Sealed) == 0 {
		return e, nil
	}
	plain, err := s.openSealed(rec.Sealed, []byte(e.ID))
	if err != nil {
		return e, fmt.Errorf("unseal email %s: %w", e.ID, err)
	}
	if err := json.Unmarshal(plain, &e.Secret); err != nil {
		return e, fmt.Errorf("unseal email %s: %w", e.ID, err)
	}
	clear(plain)
	return e, nil
}

// PendingEmails returns up to limit (<= 0: all) outbox emails whose NextTry
// is at or before now (a zero NextTry is due at once), oldest (CreatedAt,
// then ID) first, with Secret unsealed. An email whose secret cannot
// be unsealed (the seal key changed) is skipped; Check reports it.
func (s *Store) PendingEmails(now time.Time, limit int) ([]model.Email, error) {
	var recs []storedEmail
	err := s.db.View(func(btx *bbolt.Tx) error {
		tx := &Tx{tx: btx, s: s}
		// The due index is ordered by next try; collect every due key
		// (no decoding), order those by creation, then load the first
		// limit records.
		limitKey := timeKey(now)
		var due [][]byte
		c := btx.Bucket(idxOutboxDue).Cursor()
		for k, _ := c.First(); len(k) >= 16 && bytes.Compare(k[:8], limitKey) <= 0; k, _ = c.Next() {
			due = append(due, k[8:]) // created(8) id; valid until the tx ends
		}
		slices.SortFunc(due, bytes.Compare)
		if limit > 0 && len(due) > limit {
			due = due[:limit]
		}
		for _, k := range due {
			rec, ok, err := tx.getEmail(string(k[8:]))
			if err != nil {
				return err
			}
			if ok { // else dangling; Check reports it
				recs = append(recs, rec)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pending emails: %w", err)
	}
	out := make([]model.Email, 0, len(recs))
	for _, r := range recs {
		e, err := s.unseal(r)
		if err != nil {
			// Sealed under another key (seal.key lost or replaced): the
			// secret is gone for good. Skip it rather than block the
			// outbox; Check reports it.
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// MarkEmailSent removes email id from the outbox and remembers that it was
// sent (see EmailSent) for 30 days; older sent records are pruned here.
// Marking an email already marked sent is a no-op; an unknown id is
// ErrNotFound.
func (s *Store) MarkEmailSent(id string) error {
	err := s.Update(func(t *Tx) error {
		tx := t.tx
		now := s.now()
		rec, ok, err := t.getEmail(id)
		if err != nil {
			return err
		}
		if !ok {
			if tx.Bucket(bucketSent).Get([]byte(id)) != nil {
				return nil
			}
			return ErrNotFound
		}
		if err := tx.Bucket(idxOutboxDue).Delete(dueKey(rec.Email)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketOutbox).Delete([]byte(id)); err != nil {
			return err
		}
		if err := t.addCount(kindOutbox, -1); err != nil {
			return err
		}
		at := timeKey(now)
		if err := tx.Bucket(bucketSent).Put([]byte(id), at); err != nil {
			return err
		}
		if err := tx.Bucket(idxSentTime).Put(append(bytes.Clone(at), id...), nil); err != nil {
			return err
		}
		return t.pruneSent(now.Add(-sentRetention))
	})
	if err != nil {
		return fmt.Errorf("mark email %s sent: %w", id, err)
	}
	return nil
}

func (tx *Tx) pruneSent(before time.Time) error {
	limit := timeKey(before)
	var keys [][]byte
	c := tx.tx.Bucket(idxSentTime).Cursor()
	for k, _ := c.First(); len(k) >= 8 && bytes.Compare(k[:8], limit) < 0; k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := tx.tx.Bucket(idxSentTime).Delete(k); err != nil {
			return err
		}
		if err := tx.tx.Bucket(bucketSent).Delete(k[8:]); err != nil {
			return err
		}
	}
	return nil
}

// MarkEmailFailed records a failed attempt: Attempts++, LastError and the
// next try time. ErrNotFound if id is not in the outbox.
func (s *Store) MarkEmailFailed(id, errText string, next time.Time) error {
	err := s.Update(func(tx *Tx) error {
		rec, ok, err := tx.getEmail(id)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		e, err := s.unseal(rec)
		if err != nil {
			return err
		}
		e.Attempts++
		e.LastError = errText
		e.NextTry = next
		return tx.putEmail(e)
	})
	if err != nil {
		return fmt.Errorf("mark email %s failed: %w", id, err)
	}
	return nil
}

// EmailSent reports whether id was marked sent within the last 30 days.
func (s *Store) EmailSent(id string) (bool, error) {
	var sent bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		sent = tx.Bucket(bucketSent).Get([]byte(id)) != nil
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("email sent %s: %w", id, err)
	}
	return sent, nil
}

// OutboxLen returns the number of emails waiting in the outbox.
func (s *Store) OutboxLen() (int, error) {
	var n int
	err := s.View(func(tx *Tx) error {
		counts, err := tx.Counts()
		n = counts[kindOutbox]
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("outbox length: %w", err)
	}
	return n, nil
}
