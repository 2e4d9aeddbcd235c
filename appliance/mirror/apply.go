package mirror

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

// batch collects what one transaction changed so the affected members can
// be reconciled in the same transaction.
type batch struct {
	affected   map[string]string // member id -> cause
	rulesDirty bool              // a plan or location changed
	log        *RunLog
}

func newBatch(rl *RunLog) *batch { return &batch{affected: map[string]string{}, log: rl} }

func (b *batch) touch(member, cause string) {
	if member == "" {
		return
	}
	if _, ok := b.affected[member]; !ok {
		b.affected[member] = cause
	}
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8] + "…"
	}
	return id
}

// put stores v unless the stored copy is identical, and records which
// members' access it may affect. v is one of the model entity types.
func (s *Syncer) put(tx *store.Tx, b *batch, v any, how string) error {
	var changed bool
	var err error
	switch x := v.(type) {
	case model.Member:
		old, gerr := tx.GetMember(x.ID)
		if changed, err = putIf(gerr, old, x, tx.PutMember); err == nil && changed {
			b.touch(x.ID, fmt.Sprintf("member %s %s", short(x.ID), how))
		}
	case model.Company:
		old, gerr := tx.GetCompany(x.ID)
		if changed, err = putIf(gerr, old, x, tx.PutCompany); err == nil && changed {
			err = s.touchCompany(tx, b, x.ID, fmt.Sprintf("company %s %s", x.Name, how))
		}
	case model.Membership:
		old, gerr := tx.GetMembership(x.ID)
		if changed, err = putIf(gerr, old, x, tx.PutMembership); err == nil && changed {
			cause := fmt.Sprintf("membership %s (%s) %s", short(x.ID), s.planName(x.Plan), how)
			err = s.touchMembership(tx, b, x, cause)
			if err == nil && gerr == nil {
				err = s.touchMembership(tx, b, old, cause)
			}
		}
	case model.Plan:
		old, gerr := tx.GetPlan(x.ID)
		if changed, err = putIf(gerr, old, x, tx.PutPlan); changed {
			b.rulesDirty = true
		}
	case model.Location:
		old, gerr := tx.GetLocation(x.ID)
		if changed, err = putIf(gerr, old, x, tx.PutLocation); changed {
			b.rulesDirty = true
		}
	case model.Resource:
		old, gerr := tx.GetResource(x.ID)
		changed, err = putIf(gerr, old, x, tx.PutResource)
	case model.Booking:
		old, gerr := tx.GetBooking(x.ID)
		changed, err = putIf(gerr, old, x, tx.PutBooking)
	case model.Visitor:
		old, gerr := tx.GetVisitor(x.ID)
		changed, err = putIf(gerr, old, x, tx.PutVisitor)
	case model.Pass:
		old, gerr := tx.GetPass(x.ID)
		if gerr == nil && !old.FirstUse.IsZero() && x.FirstUse.IsZero() {
			x.FirstUse = old.FirstUse // first use is ours, not OfficeRnD's
		}
		if changed, err = putIf(gerr, old, x, tx.PutPass); err == nil && changed {
			cause := fmt.Sprintf("day pass %s %s", short(x.ID), how)
			err = s.touchPass(tx, b, x, cause)
		}
	default:
		return fmt.Errorf("put: unsupported type %T", v)
	}
	if err != nil {
		return err
	}
	if changed && b.log != nil {
		b.log.Changed++
	}
	return nil
}

func putIf[T any](getErr error, old, v T, put func(T) error) (bool, error) {
	if getErr != nil && !errors.Is(getErr, store.ErrNotFound) {
		return false, getErr
	}
	if getErr == nil && reflect.DeepEqual(old, v) {
		return false, nil
	}
	return true, put(v)
}

// remove deletes the entity of kind with id (absent: nothing happens).
func (s *Syncer) remove(tx *store.Tx, b *batch, kind, id, how string) error {
	var err error
	found := true
	switch kind {
	case store.KindMember:
		if _, err = tx.GetMember(id); err == nil {
			b.touch(id, fmt.Sprintf("member %s %s", short(id), how))
			err = tx.DeleteMember(id)
		}
	case store.KindCompany:
		var c model.Company
		if c, err = tx.GetCompany(id); err == nil {
			if err = s.touchCompany(tx, b, id, fmt.Sprintf("company %s %s", c.Name, how)); err == nil {
				err = tx.DeleteCompany(id)
			}
		}
	case store.KindMembership:
		var m model.Membership
		if m, err = tx.GetMembership(id); err == nil {
			if err = tx.DeleteMembership(id); err == nil {
				err = s.touchMembership(tx, b, m, fmt.Sprintf("membership %s (%s) %s", short(id), s.planName(m.Plan), how))
			}
		}
	case store.KindPlan:
		if _, err = tx.GetPlan(id); err == nil {
			b.rulesDirty = true
			err = tx.DeletePlan(id)
		}
	case store.KindLocation:
		if _, err = tx.GetLocation(id); err == nil {
			b.rulesDirty = true
			err = tx.DeleteLocation(id)
		}
	case store.KindResource:
		if _, err = tx.GetResource(id); err == nil {
			err = tx.DeleteResource(id)
		}
	case store.KindBooking:
		if _, err = tx.GetBooking(id); err == nil {
			err = tx.DeleteBooking(id)
		}
	case store.KindVisitor:
		if _, err = tx.GetVisitor(id); err == nil {
			err = tx.DeleteVisitor(id)
		}
	case store.KindPass:
		var p model.Pass
		if p, err = tx.GetPass(id); err == nil {
			if err = tx.DeletePass(id); err == nil {
				err = s.touchPass(tx, b, p, fmt.Sprintf("day pass %s %s", short(id), how))
			}
		}
	default:
		return fmt.Errorf("remove: unknown kind %q", kind)
	}
	if errors.Is(err, store.ErrNotFound) {
		found, err = false, nil
	}
	if err != nil {
		return fmt.Errorf("remove %s %s: %w", kind, id, err)
	}
	if found && b.log != nil {
		b.log.Deleted++
	}
	return nil
}

func (s *Syncer) touchCompany(tx *store.Tx, b *batch, company, cause string) error {
	ms, err := tx.MembersOfCompany(company)
	if err != nil {
		return fmt.Errorf("members of company %s: %w", company, err)
	}
	for _, m := range ms {
		b.touch(m.ID, cause)
	}
	return nil
}

func (s *Syncer) touchMembership(tx *store.Tx, b *batch, m model.Membership, cause string) error {
	if m.Member != "" {
		b.touch(m.Member, cause)
	}
	if m.Company != "" && !(m.IsPersonal && m.Member != "") {
		return s.touchCompany(tx, b, m.Company, cause)
	}
	return nil
}

func (s *Syncer) touchPass(tx *store.Tx, b *batch, p model.Pass, cause string) error {
	if p.Member != "" {
		b.touch(p.Member, cause)
		return nil
	}
	if p.Company != "" {
		return s.touchCompany(tx, b, p.Company, cause)
	}
	return nil
}

func (s *Syncer) planName(id string) string {
	if p, ok := s.res.Plan(id); ok {
		return p.Name
	}
	return "plan " + short(id)
}

// finish reconciles every member the batch touched, inside tx.
func (s *Syncer) finish(tx *store.Tx, b *batch, actor string, now time.Time) error {
	if b.rulesDirty {
		if err := s.res.Rebuild(tx); err != nil {
			return err
		}
	}
	ids := make([]string, 0, len(b.affected))
	for id := range b.affected {
		ids = append(ids, id)
	}
	sort.Strings(ids) // deterministic username collision resolution
	for _, id := range ids {
		out, err := s.reconcileMember(tx, id, actor, b.affected[id], now)
		if err != nil {
			return fmt.Errorf("reconcile member %s: %w", id, err)
		}
		if b.log != nil {
			b.log.count(out)
		}
	}
	return nil
}

// apply runs fn and the reconciliation it implies in one transaction.
func (s *Syncer) apply(rl *RunLog, actor string, fn func(tx *store.Tx, b *batch) error) error {
	now := s.now()
	var dirty bool
	err := s.st.Update(func(tx *store.Tx) error {
		b := newBatch(rl)
		if err := fn(tx, b); err != nil {
			return err
		}
		dirty = b.rulesDirty
		return s.finish(tx, b, actor, now)
	})
	if err != nil {
		return err
	}
	if s.mailQueued.Swap(false) && s.opts.KickMail != nil {
		s.opts.KickMail()
	}
	if dirty {
		// Plans or locations changed: every member's decision may differ.
		return s.ReconcileAll(actor, "plan or location mapping changed")
	}
	return nil
}
