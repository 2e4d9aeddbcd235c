package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.etcd.io/bbolt"
)

// maxProblems bounds the problems Check reports.
const maxProblems = 20

type derived map[string]map[string]string // bucket -> key -> value

func (d derived) add(bucket, key []byte, value []byte) {
	m := d[string(bucket)]
	if m == nil {
		m = make(map[string]string)
		d[string(bucket)] = m
	}
	m[string(key)] = string(value)
}

// expectedIndexes adds the index entries of every record of e.
func expectedIndexes[T any](tx *Tx, e *entity[T], want derived, problems *[]string) error {
	return tx.tx.Bucket(e.bucket).ForEach(func(k, raw []byte) error {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			*problems = append(*problems, fmt.Sprintf("%s %q: undecodable: %v", e.kind, k, err))
			return nil
		}
		if id := e.id(v); id != string(k) {
			*problems = append(*problems, fmt.Sprintf("%s %q: record id is %q", e.kind, k, id))
		}
		if e.indexes != nil {
			for _, ie := range e.indexes(v) {
				want.add(ie.bucket, ie.key, nil)
			}
		}
		return nil
	})
}

// expectedDerived computes every derived bucket (indexes and counters)
// from the primary records, and lists inconsistencies among the primary
// records themselves.
func (tx *Tx) expectedDerived() (derived, []string, error) {
	want := make(derived)
	for _, b := range derivedBuckets {
		want[string(b)] = map[string]string{}
	}
	var problems []string
	for _, err := range []error{
		expectedIndexes(tx, memberEntity, want, &problems),
		expectedIndexes(tx, companyEntity, want, &problems),
		expectedIndexes(tx, membershipEntity, want, &problems),
		expectedIndexes(tx, planEntity, want, &problems),
		expectedIndexes(tx, locationEntity, want, &problems),
		expectedIndexes(tx, resourceEntity, want, &problems),
		expectedIndexes(tx, bookingEntity, want, &problems),
		expectedIndexes(tx, visitorEntity, want, &problems),
		expectedIndexes(tx, passEntity, want, &problems),
	} {
		if err != nil {
			return nil, nil, err
		}
	}

	err := tx.tx.Bucket(bucketAccounts).ForEach(func(k, raw []byte) error {
		var a struct {
			Username         string `json:"username"`
			MemberID         string `json:"memberId"`
			OnboardTokenHash []byte `json:"onboardTokenHash"`
		}
		if err := json.Unmarshal(raw, &a); err != nil {
			problems = append(problems, fmt.Sprintf("account %q: undecodable: %v", k, err))
			return nil
		}
		if !bytes.Equal(accountKey(a.Username), k) {
			problems = append(problems, fmt.Sprintf("account %q: username %q does not match its key", k, a.Username))
		}
		if a.MemberID == "" {
			problems = append(problems, fmt.Sprintf("account %q: no member", k))
		} else if other, dup := want[string(idxAccountMember)][a.MemberID]; dup {
			problems = append(problems, fmt.Sprintf("member %q has two accounts: %q and %q", a.MemberID, other, k))
		} else {
			want.add(idxAccountMember, []byte(a.MemberID), k)
		}
		if len(a.OnboardTokenHash) > 0 {
			if other, dup := want[string(idxAccountToken)][string(a.OnboardTokenHash)]; dup {
				problems = append(problems, fmt.Sprintf("accounts %q and %q share an onboard token", other, k))
			} else {
				want.add(idxAccountToken, a.OnboardTokenHash, k)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}

	err = tx.tx.Bucket(bucketOutbox).ForEach(func(k, raw []byte) error {
		var rec storedEmail
		if err := json.Unmarshal(raw, &rec); err != nil {
			problems = append(problems, fmt.Sprintf("email %q: undecodable: %v", k, err))
			return nil
		}
		if rec.Email.ID != string(k) {
			problems = append(problems, fmt.Sprintf("email %q: record id is %q", k, rec.Email.ID))
		}
		want.add(idxOutboxDue, dueKey(rec.Email), nil)
		if tx.s != nil && tx.s.aead != nil {
			if _, err := tx.s.unseal(rec); err != nil {
				problems = append(problems, fmt.Sprintf("email %q: secret sealed with another key", k))
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	err = tx.tx.Bucket(bucketSent).ForEach(func(k, v []byte) error {
		want.add(idxSentTime, append(bytes.Clone(v), k...), nil)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}

	for kind, name := range countedBuckets {
		want.add(bucketCounts, []byte(kind), u64(uint64(tx.tx.Bucket(name).Stats().KeyN)))
	}
	return want, problems, nil
}

// Check verifies the database's internal consistency: every index entry
// points at a live record and every record is indexed; account keys match
// their usernames; no member has two accounts; the counters match the
// records; every outbox secret unseals with the current key. It reads the whole database. It returns nil or an error listing
// up to 20 problems. Used by tests and `deskgate doctor`.
func (s *Store) Check() error {
	var problems []string
	err := s.db.View(func(btx *bbolt.Tx) error {
		tx := &Tx{tx: btx, s: s}
		want, p, err := tx.expectedDerived()
		if err != nil {
			return err
		}
		problems = p
		for _, name := range derivedBuckets {
			w := want[string(name)]
			seen := 0
			err := btx.Bucket(name).ForEach(func(k, v []byte) error {
				exp, ok := w[string(k)]
				switch {
				case !ok:
					problems = append(problems, fmt.Sprintf("%s: dangling entry %q", name, k))
				case exp != string(v) && (len(exp) > 0 || len(v) > 0):
					problems = append(problems, fmt.Sprintf("%s: entry %q is %q, want %q", name, k, v, exp))
					seen++
				default:
					seen++
				}
				return nil
			})
			if err != nil {
				return err
			}
			if seen < len(w) {
				var missing []string
				for k := range w {
					if btx.Bucket(name).Get([]byte(k)) == nil {
						missing = append(missing, fmt.Sprintf("%q", k))
					}
				}
				sort.Strings(missing)
				problems = append(problems, fmt.Sprintf("%s: missing entries %s", name, strings.Join(missing, ", ")))
			}
		}
		if v := readSchema(btx); v != currentSchema {
			problems = append(problems, fmt.Sprintf("schema version %d, want %d", v, currentSchema))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check store: %w", err)
	}
	if len(problems) == 0 {
		return nil
	}
	if len(problems) > maxProblems {
		problems = append(problems[:maxProblems], fmt.Sprintf("and %d more", len(problems)-maxProblems))
	}
	return fmt.Errorf("check store: %w", errors.New(strings.Join(problems, "; ")))
}
