package guests

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

// desired is what the store's bookings and passes call for at one source.
type desired struct {
	kind     string
	booking  model.Booking
	visitor  string
	member   string
	location string
	from     time.Time
	until    time.Time
	passes   []model.Pass
}

// Reconcile brings the codes in line with the stored bookings and passes:
// it creates and delivers missing codes, moves windows, extends day passes
// and revokes codes whose booking, visitor or pass is gone. It is
// idempotent; Run calls it at start and after every relevant change.
func (m *Manager) Reconcile(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := m.update(ctx, func(tx *store.Tx, fx *effects) error {
		return m.reconcileTx(tx, fx, m.now())
	})
	if err != nil {
		return fmt.Errorf("reconcile guests: %w", err)
	}
	return nil
}

func (m *Manager) reconcileTx(tx *store.Tx, fx *effects, now time.Time) error {
	want, err := m.desiredState(tx)
	if err != nil {
		return err
	}
	have := map[string]string{}
	if err := forEach(tx, bucketSources, func(src string, hash string) error {
		have[src] = hash
		return nil
	}); err != nil {
		return err
	}
	for _, src := range sortedKeys(have) {
		if strings.HasPrefix(src, adHocPrefix) {
			continue // an operator's code: nothing in OfficeRnD asks for it
		}
		rec, err := getCode(tx, have[src])
		if notFound(err) {
			if err := tx.DeleteKV(bucketSources, src); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		d, ok := want[src]
		delete(want, src)
		switch {
		case rec.Kind == KindGuest && !ok:
			err = m.revoke(tx, fx, rec, guestGoneCause(tx, rec))
		case rec.Kind == KindGuest:
			err = m.updateGuest(tx, fx, &rec, d, now)
		case !ok && rec.Until.IsZero():
			err = m.revoke(tx, fx, rec, fmt.Sprintf("pass %s no longer valid", short(last(rec.PassIDs))))
		case !ok:
			// used passes keep their code until it ends
		default:
			err = m.updateDayPass(tx, fx, &rec, d, now)
		}
		if err != nil {
			return err
		}
	}
	for _, src := range sortedKeys(want) {
		d := want[src]
		var err error
		if d.kind == KindGuest {
			err = m.createGuest(tx, fx, src, d, now)
		} else {
			err = m.createDayPass(tx, fx, src, d, now)
		}
		if err != nil {
			return err
		}
	}
	if err := m.syncFleet(tx, fx, now); err != nil {
		return err
	}
	return prunePassDone(tx)
}

func (m *Manager) desiredState(tx *store.Tx) (map[string]desired, error) {
	want := map[string]desired{}
	err := tx.ForEachBooking(func(b model.Booking) error {
		// A recurring series stands for its first occurrence only; each
		// occurrence is stored as a booking of its own (Series set) and
		// gets its codes there.
		if b.IsCancelled || len(b.Visitors) == 0 || b.Resource == "" || b.Recurring {
			return nil
		}
		res, err := tx.GetResource(b.Resource)
		if notFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if !slices.Contains(m.cfg.ResourceTypes, res.Type) {
			return nil
		}
		loc := cmp.Or(b.Location, res.Location)
		for _, v := range b.Visitors {
			want["b/"+b.ID+"/"+v] = desired{
				kind: KindGuest, booking: b, visitor: v, member: b.Member, location: loc,
				from: b.Start.Add(-m.cfg.BufferBefore), until: b.End.Add(m.cfg.BufferAfter),
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = tx.ForEachPass(func(p model.Pass) error {
		if p.Member == "" || (p.Status != "valid" && p.Status != "used") {
			return nil
		}
		loc := p.Location
		if loc == "" {
			mem, err := tx.GetMember(p.Member)
			if err != nil && !notFound(err) {
				return err
			}
			loc = mem.Location
		}
		if loc == "" {
			return nil
		}
		src := "p/" + p.Member + "/" + loc
		d := want[src]
		d.kind, d.member, d.location = KindDayPass, p.Member, loc
		d.passes = append(d.passes, p)
		want[src] = d
		return nil
	})
	if err != nil {
		return nil, err
	}
	for src, d := range want {
		slices.SortFunc(d.passes, func(a, b model.Pass) int {
			return cmp.Or(a.ValidFrom.Compare(b.ValidFrom), cmp.Compare(a.ID, b.ID))
		})
		want[src] = d
	}
	return want, nil
}

func guestGoneCause(tx *store.Tx, rec codeRecord) string {
	b, err := tx.GetBooking(rec.BookingID)
	switch {
	case err != nil:
		return fmt.Sprintf("booking %s deleted", short(rec.BookingID))
	case b.IsCancelled:
		return fmt.Sprintf("booking %s cancelled", short(rec.BookingID))
	case !slices.Contains(b.Visitors, rec.VisitorID):
		return fmt.Sprintf("visitor %s removed from booking %s", short(rec.VisitorID), short(rec.BookingID))
	default:
		return fmt.Sprintf("booking %s no longer for a meeting room", short(rec.BookingID))
	}
}

// newRecord allocates a unique code for a record and seals it.
func (m *Manager) newRecord(tx *store.Tx, rec *codeRecord) error {
	if key := m.fleetKey(); key != nil {
		return m.newFleetRecord(tx, rec, key)
	}
	for range 16 {
		code, err := newCode()
		if err != nil {
			return err
		}
		hash := m.codes.hash(code)
		taken := false
		for _, k := range []string{hash, legacyHash(code)} {
			var existing codeRecord
			if err := tx.GetKV(bucketCodes, k, &existing); err == nil {
				taken = true // by a live code (keyed or legacy)
			} else if !notFound(err) {
				return err
			}
		}
		if taken {
			continue
		}
		sealed, err := m.seal.seal(code, hash)
		if err != nil {
			return err
		}
		rec.Hash, rec.HashV, rec.Sealed = hash, hashKeyed, sealed
		return nil
	}
	return fmt.Errorf("no unique code after 16 tries")
}

func (m *Manager) createGuest(tx *store.Tx, fx *effects, src string, d desired, now time.Time) error {
	if !now.Before(d.until) {
		return nil // the meeting is over
	}
	rec := codeRecord{
		Kind: KindGuest, Source: src, BookingID: d.booking.ID, VisitorID: d.visitor,
		Member: d.member, LocationID: d.location, From: d.from, Until: d.until, CreatedAt: now,
	}
	m.fillVisitor(tx, &rec)
	if err := m.newRecord(tx, &rec); err != nil {
		return err
	}
	cause := fmt.Sprintf("booking %s for visitor %s", short(d.booking.ID), short(d.visitor))
	return m.save(tx, fx, &rec, "guest.code_created", cause, true)
}

func (m *Manager) fillVisitor(tx *store.Tx, rec *codeRecord) {
	if v, err := tx.GetVisitor(rec.VisitorID); err == nil {
		rec.Name, rec.Email, rec.Phone = v.Name, v.Email, v.Phone
	}
}

// save writes rec with its source index, audits action and delivers the
// code if asked (or if it never was).
func (m *Manager) save(tx *store.Tx, fx *effects, rec *codeRecord, action, cause string, send bool) error {
	if action != "" {
		if err := audit(tx, auditActor, action, rec.Member, "code "+rec.hint(), cause); err != nil {
			return err
		}
		m.log.Info("guest code", "action", action, "code", rec.hint(), "cause", cause)
	}
	if send || !rec.Delivered {
		if err := m.deliver(tx, fx, rec, cause); err != nil {
			return err
		}
	}
	if err := putCode(tx, *rec); err != nil {
		return err
	}
	return tx.PutKV(bucketSources, rec.Source, rec.Hash)
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func (m *Manager) updateGuest(tx *store.Tx, fx *effects, rec *codeRecord, d desired, now time.Time) error {
	old := *rec
	m.fillVisitor(tx, rec)
	contact := rec.Email != old.Email || rec.Phone != old.Phone
	if rec.From.Equal(d.from) && rec.Until.Equal(d.until) && rec.LocationID == d.location {
		if !contact && rec.Delivered {
			return nil
		}
		// New contact details get the code (again); so does a code that
		// never reached anyone (its visitor record arrived late).
		return m.save(tx, fx, rec, "", "visitor "+short(rec.VisitorID)+" contact details changed", contact)
	}
	// Re-send when an edge moved by more than its buffer or the place changed.
	far := absDur(d.from.Sub(rec.From)) > m.cfg.BufferBefore ||
		absDur(d.until.Sub(rec.Until)) > m.cfg.BufferAfter || rec.LocationID != d.location
	rec.From, rec.Until, rec.LocationID = d.from, d.until, d.location
	rec.ExpiredAudited = rec.ExpiredAudited && !now.Before(rec.Until)
	loc := m.location(tx, rec.LocationID)
	cause := fmt.Sprintf("booking %s moved to %s – %s", short(rec.BookingID), fmtTime(rec.From, loc.TZ), fmtTime(rec.Until, loc.TZ))
	if err := m.save(tx, fx, rec, "guest.window_moved", cause, far); err != nil {
		return err
	}
	return m.resyncSessions(tx, fx, *rec, old.LocationID != rec.LocationID, cause, now)
}

// resyncSessions gives the code's live sessions the code's new end, or
// revokes them when the code no longer covers now (or moved elsewhere).
func (m *Manager) resyncSessions(tx *store.Tx, fx *effects, rec codeRecord, moved bool, cause string, now time.Time) error {
	sessions, err := sessionsOf(tx, rec.Hash)
	if err != nil {
		return err
	}
	for _, s := range sessions {
		if moved || now.Before(rec.From) || rec.Until.IsZero() || !now.Before(rec.Until) {
			if err := m.endSession(tx, fx, s, "guest.session_revoked", cause); err != nil {
				return err
			}
			continue
		}
		if s.Until.Equal(rec.Until) {
			continue
		}
		s.Until = rec.Until
		if err := tx.PutKV(bucketSessions, s.Key, s); err != nil {
			return err
		}
		fx.allow = append(fx.allow, s)
	}
	return nil
}

func (m *Manager) endSession(tx *store.Tx, fx *effects, s sessionRecord, action, cause string) error {
	if err := tx.DeleteKV(bucketSessions, s.Key); err != nil {
		return err
	}
	fx.revoke = append(fx.revoke, s.client())
	subject := "client " + s.Key
	if s.CodeHash != "" {
		subject += " code " + hint(s.CodeHash)
	}
	return audit(tx, auditActor, action, s.MemberID, subject, cause)
}

// revoke deletes a code and ends its sessions.
func (m *Manager) revoke(tx *store.Tx, fx *effects, rec codeRecord, cause string) error {
	sessions, err := sessionsOf(tx, rec.Hash)
	if err != nil {
		return err
	}
	for _, s := range sessions {
		if err := m.endSession(tx, fx, s, "guest.session_revoked", cause); err != nil {
			return err
		}
	}
	if err := tx.DeleteKV(bucketCodes, rec.Hash); err != nil {
		return err
	}
	if err := tx.DeleteKV(bucketSources, rec.Source); err != nil {
		return err
	}
	m.log.Info("guest code revoked", "code", rec.hint(), "cause", cause, "sessions", len(sessions))
	return audit(tx, auditActor, "guest.code_revoked", rec.Member, "code "+rec.hint(), cause)
}

// passStart is when a pass may first be used.
func passStart(p model.Pass, tz *time.Location) time.Time {
	if !p.ValidFrom.IsZero() {
		return p.ValidFrom
	}
	return p.StartDate.Start(tz) // zero when unset
}

// passDeadline is the last moment a pass may be first used; zero: none.
func passDeadline(p model.Pass, tz *time.Location) time.Time {
	if !p.ValidTo.IsZero() {
		return p.ValidTo
	}
	return p.EndDate.End(tz)
}

// usable filters the passes that may still add access: not used up before
// and (unless already part of rec) still within their deadline.
func (m *Manager) usable(tx *store.Tx, passes []model.Pass, have []string, tz *time.Location, now time.Time) ([]model.Pass, error) {
	var out []model.Pass
	for _, p := range passes {
		if slices.Contains(have, p.ID) {
			continue
		}
		var t time.Time
		if err := tx.GetKV(bucketPassDone, p.ID, &t); err == nil {
			continue
		} else if !notFound(err) {
			return nil, err
		}
		if dl := passDeadline(p, tz); !dl.IsZero() && !now.Before(dl) {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

func (m *Manager) createDayPass(tx *store.Tx, fx *effects, src string, d desired, now time.Time) error {
	tz := m.location(tx, d.location).TZ
	passes, err := m.usable(tx, d.passes, nil, tz, now)
	if err != nil || len(passes) == 0 {
		return err
	}
	rec := codeRecord{Kind: KindDayPass, Source: src, Member: d.member, LocationID: d.location, CreatedAt: now}
	if mem, err := tx.GetMember(d.member); err == nil {
		rec.Name, rec.Email, rec.Phone = mem.Name, mem.Email, mem.Phone
	}
	rec.From = passStart(passes[0], tz)
	if rec.From.IsZero() {
		rec.From = now
	}
	for _, p := range passes {
		rec.PassIDs = append(rec.PassIDs, p.ID)
		rec.Granted += m.cfg.DayPassDuration
	}
	rec.ActivateBy = latestDeadline(passes, tz)
	if m.cfg.DayPassFrom == FromPurchase {
		rec.Until = rec.From.Add(rec.Granted)
		if !now.Before(rec.Until) {
			return nil
		}
	}
	if err := m.newRecord(tx, &rec); err != nil {
		return err
	}
	cause := fmt.Sprintf("pass %s bought", short(passes[0].ID))
	return m.save(tx, fx, &rec, "guest.code_created", cause, true)
}

func latestDeadline(passes []model.Pass, tz *time.Location) time.Time {
	var dl time.Time
	for _, p := range passes {
		t := passDeadline(p, tz)
		if t.IsZero() {
			return time.Time{}
		}
		if t.After(dl) {
			dl = t
		}
	}
	return dl
}

func (m *Manager) updateDayPass(tx *store.Tx, fx *effects, rec *codeRecord, d desired, now time.Time) error {
	tz := m.location(tx, rec.LocationID).TZ
	passes, err := m.usable(tx, d.passes, rec.PassIDs, tz, now)
	if err != nil {
		return err
	}
	if len(passes) == 0 {
		if rec.Delivered {
			return nil
		}
		return m.save(tx, fx, rec, "", "member "+short(rec.Member)+" contact details", false)
	}
	dur := m.cfg.DayPassDuration
	for _, p := range passes {
		rec.PassIDs = append(rec.PassIDs, p.ID)
		start := passStart(p, tz)
		switch {
		case rec.Until.IsZero():
			rec.Granted += dur
		case now.Before(rec.Until):
			rec.Until = rec.Until.Add(dur)
			rec.Granted += dur
		case m.cfg.DayPassFrom == FromFirstLogin:
			// Used up but not cleaned yet: the new pass starts afresh.
			rec.Until, rec.FirstLogin, rec.Granted = time.Time{}, time.Time{}, dur
			rec.From = cmp.Or(start, now)
			rec.Period = p.ID
		default:
			rec.From = maxTime(now, start)
			rec.Until, rec.Granted = rec.From.Add(dur), dur
		}
	}
	if rec.Until.IsZero() {
		if dl := latestDeadline(passes, tz); dl.IsZero() || rec.ActivateBy.IsZero() {
			rec.ActivateBy = time.Time{}
		} else if dl.After(rec.ActivateBy) {
			rec.ActivateBy = dl
		}
	}
	rec.ExpiredAudited = false
	cause := fmt.Sprintf("pass %s bought", short(passes[len(passes)-1].ID))
	if err := m.save(tx, fx, rec, "guest.code_extended", cause, true); err != nil {
		return err
	}
	return m.resyncSessions(tx, fx, *rec, false, cause, now)
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// prunePassDone forgets used-up passes that left the store.
func prunePassDone(tx *store.Tx) error {
	var gone []string
	if err := tx.ForEachKV(bucketPassDone, "", func(id string, _ []byte) error {
		if _, err := tx.GetPass(id); notFound(err) {
			gone = append(gone, id)
		} else if err != nil {
			return err
		}
		return nil
	}); err != nil {
		return err
	}
	for _, id := range gone {
		if err := tx.DeleteKV(bucketPassDone, id); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys[V any](mp map[string]V) []string {
	ks := make([]string, 0, len(mp))
	for k := range mp {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}
