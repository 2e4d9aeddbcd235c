package store

import (
	"errors"
	"testing"

	"github.com/deskgate/deskgate/appliance/model"
)

// TestAuditHook: the hook sees every audit entry in its transaction (an
// error aborts it: the entry is not written); LocalAudit and AuditLocal
// keep entries from it.
func TestAuditHook(t *testing.T) {
	s := open(t)
	var seen []string
	s.SetAuditHook(func(tx *Tx, e model.AuditEntry) error {
		if e.Action == "fail" {
			return errors.New("no")
		}
		seen = append(seen, e.Action)
		return nil
	})
	err := s.Update(func(tx *Tx) error {
		if err := tx.Audit(model.AuditEntry{Action: "a"}); err != nil {
			return err
		}
		if err := tx.AuditLocal(model.AuditEntry{Action: "local-one"}); err != nil {
			return err
		}
		return tx.Audit(model.AuditEntry{Action: "b"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error {
		tx.LocalAudit()
		return tx.Audit(model.AuditEntry{Action: "local-tx"})
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.Audit(model.AuditEntry{Action: "fail"}) }); err == nil {
		t.Error("a hook error did not abort the transaction")
	}
	if len(seen) != 2 || seen[0] != "a" || seen[1] != "b" {
		t.Errorf("hook saw %v, want [a b]", seen)
	}
	all, _ := s.AuditLog(0, 0)
	if len(all) != 4 {
		t.Errorf("%d entries written, want 4 (the failed one not)", len(all))
	}
	s.SetAuditHook(nil)
	if err := s.Update(func(tx *Tx) error { return tx.Audit(model.AuditEntry{Action: "fail"}) }); err != nil {
		t.Errorf("without a hook: %v", err)
	}
}
