package guests

import (
	"context"
	"fmt"

	"github.com/deskgate/deskgate/appliance/store"
)

// lookupCode finds the record of a normalised code: under its keyed hash,
// else (a record written before codes were keyed) under its legacy
// SHA-256, which it then re-keys in tx. A legacy key holding a keyed
// record does not match.
func (m *Manager) lookupCode(tx *store.Tx, norm string) (codeRecord, error) {
	rec, err := getCode(tx, m.codes.hash(norm))
	if err == nil || !notFound(err) {
		return rec, err
	}
	if key := m.fleetKey(); key != nil {
		rec, err = getCode(tx, fleetHasher(key).hash(norm))
		if err == nil || !notFound(err) {
			return rec, err
		}
	}
	rec, err = getCode(tx, legacyHash(norm))
	if err != nil {
		return codeRecord{}, err
	}
	if rec.HashV != hashLegacy {
		return codeRecord{}, fmt.Errorf("code %s: %w", rec.hint(), store.ErrNotFound)
	}
	return m.rekey(tx, rec, norm, "first login since codes are keyed")
}

// rekey moves a legacy record to the keyed hash of its code norm: the
// record, its source index, its sessions and its queued SMS follow, and
// the plaintext is sealed again (it is bound to the hash).
func (m *Manager) rekey(tx *store.Tx, rec codeRecord, norm, why string) (codeRecord, error) {
	old := rec.Hash
	if legacyHash(norm) != old {
		return codeRecord{}, fmt.Errorf("re-key code %s: plaintext does not match", rec.hint())
	}
	hash := m.codes.hash(norm)
	if _, err := getCode(tx, hash); err == nil {
		return codeRecord{}, fmt.Errorf("re-key code %s: keyed hash %s taken", hint(old), hint(hash))
	} else if !notFound(err) {
		return codeRecord{}, err
	}
	sealed, err := m.seal.seal(norm, hash)
	if err != nil {
		return codeRecord{}, err
	}
	rec.Hash, rec.HashV, rec.Sealed = hash, hashKeyed, sealed
	if err := tx.DeleteKV(bucketCodes, old); err != nil {
		return codeRecord{}, err
	}
	if err := putCode(tx, rec); err != nil {
		return codeRecord{}, err
	}
	var src string
	if err := tx.GetKV(bucketSources, rec.Source, &src); err == nil && src == old {
		if err := tx.PutKV(bucketSources, rec.Source, hash); err != nil {
			return codeRecord{}, err
		}
	} else if err != nil && !notFound(err) {
		return codeRecord{}, err
	}
	sessions, err := sessionsOf(tx, old)
	if err != nil {
		return codeRecord{}, err
	}
	for _, s := range sessions {
		s.CodeHash = hash
		if err := tx.PutKV(bucketSessions, s.Key, s); err != nil {
			return codeRecord{}, err
		}
	}
	var jobs []smsJob
	if err := forEach(tx, bucketSMS, func(_ string, j smsJob) error {
		if j.CodeHash == old {
			jobs = append(jobs, j)
		}
		return nil
	}); err != nil {
		return codeRecord{}, err
	}
	for _, j := range jobs {
		j.CodeHash = hash
		if err := tx.PutKV(bucketSMS, j.ID, j); err != nil {
			return codeRecord{}, err
		}
	}
	m.log.Info("guest code re-keyed", "code", rec.hint(), "was", hint(old), "why", why)
	return rec, audit(tx, auditActor, "guest.code_rekeyed", rec.Member, "code "+rec.hint(),
		fmt.Sprintf("unkeyed hash %s replaced by a keyed one: %s", hint(old), why))
}

// RekeyLegacy re-keys every legacy (unkeyed SHA-256) code record whose
// sealed plaintext opens with Config.SealKey. The others stay as they are:
// they keep working until they end and are re-keyed at their first login.
// Run calls it at start. It returns how many records it re-keyed and how
// many legacy ones are left.
func (m *Manager) RekeyLegacy(ctx context.Context) (rekeyed, left int, err error) {
	err = m.update(ctx, func(tx *store.Tx, _ *effects) error {
		rekeyed, left = 0, 0
		var legacy []codeRecord
		if err := forEach(tx, bucketCodes, func(_ string, r codeRecord) error {
			if r.HashV == hashLegacy {
				legacy = append(legacy, r)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, r := range legacy {
			code, err := m.seal.open(r.Sealed, r.Hash)
			norm, ok := NormalizeCode(code)
			if err != nil || !ok || legacyHash(norm) != r.Hash {
				left++
				continue
			}
			if _, err := m.rekey(tx, r, norm, "at startup, from the sealed copy"); err != nil {
				return err
			}
			rekeyed++
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("re-key legacy guest codes: %w", err)
	}
	if rekeyed > 0 || left > 0 {
		m.log.Info("legacy guest codes", "rekeyed", rekeyed, "left_until_login_or_end", left)
	}
	return rekeyed, left, nil
}
