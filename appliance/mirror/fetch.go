package mirror

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/officernd"
	"github.com/deskgate/deskgate/appliance/store"
)

// pollOverlap is how far before a poll's start the next poll asks from, so
// records written while the poll ran, or stamped by a clock slightly behind
// ours, are not missed. Re-reading an unchanged record changes nothing.
const pollOverlap = 2 * time.Minute

// kindSpec ties an API resource to its store kind and mapping.
type kindSpec struct {
	kind     string
	resource string
	poll     bool // fetched by incremental polls (others only on full passes)
	fetch    func(ctx context.Context, s *Syncer, rl *RunLog, resource string, q officernd.Query, seen map[string]bool, actor string) (officernd.ListResult, time.Time, error)
}

// order matters: rules (locations, plans) before the members they decide,
// companies before memberships that cover their team.
var kinds = []kindSpec{
	{store.KindLocation, "locations", true, fetcher(mapLocation, func(a officernd.Location) time.Time { return a.ModifiedAt }, func(m model.Location) string { return m.ID })},
	{store.KindPlan, "plans", true, fetcher(mapPlan, func(a officernd.Plan) time.Time { return a.ModifiedAt }, func(m model.Plan) string { return m.ID })},
	{store.KindResource, "resources", false, fetcher(mapResource, func(a officernd.Resource) time.Time { return a.ModifiedAt }, func(m model.Resource) string { return m.ID })},
	{store.KindCompany, "companies", true, fetcher(mapCompany, func(a officernd.Company) time.Time { return a.ModifiedAt }, func(m model.Company) string { return m.ID })},
	{store.KindMember, "members", true, fetcher(mapMember, func(a officernd.Member) time.Time { return a.ModifiedAt }, func(m model.Member) string { return m.ID })},
	{store.KindMembership, "memberships", true, fetcher(mapMembership, func(a officernd.Membership) time.Time { return a.ModifiedAt }, func(m model.Membership) string { return m.ID })},
	{store.KindPass, "passes", true, fetcher(mapPass, func(a officernd.Pass) time.Time { return a.ModifiedAt }, func(m model.Pass) string { return m.ID })},
	{store.KindVisitor, "visitors", true, fetcher(mapVisitor, func(a officernd.Visitor) time.Time { return a.ModifiedAt }, func(m model.Visitor) string { return m.ID })},
	{store.KindBooking, "bookings", true, fetcher(mapBooking, func(a officernd.Booking) time.Time { return a.ModifiedAt }, func(m model.Booking) string { return m.ID })},
}

// fetcher builds the list-map-apply loop for one resource type.
func fetcher[A, M any](mapf func(A) (M, error), modOf func(A) time.Time, idOf func(M) string) func(context.Context, *Syncer, *RunLog, string, officernd.Query, map[string]bool, string) (officernd.ListResult, time.Time, error) {
	return func(ctx context.Context, s *Syncer, rl *RunLog, resource string, q officernd.Query, seen map[string]bool, actor string) (officernd.ListResult, time.Time, error) {
		var maxMod time.Time
		res, err := officernd.ListWithResult(ctx, s.api, resource, q, func(page []A) error {
			items := make([]M, 0, len(page))
			for _, a := range page {
				rl.Fetched++
				if t := modOf(a); t.After(maxMod) {
					maxMod = t
				}
				m, err := mapf(a)
				if err != nil {
					rl.Invalid++
					if len(rl.Errors) < 20 {
						rl.Errors = append(rl.Errors, "skipped invalid record: "+err.Error())
					}
					s.log.Warn("skipping invalid OfficeRnD record", "err", err)
					continue
				}
				if seen != nil {
					seen[idOf(m)] = true
				}
				items = append(items, m)
			}
			return s.apply(rl, actor, func(tx *store.Tx, b *batch) error {
				for _, m := range items {
					if err := s.put(tx, b, m, "synced ("+actor+")"); err != nil {
						return err
					}
				}
				return nil
			})
		})
		return res, maxMod, err
	}
}

// FullPass lists every resource completely, applies what changed, and
// deletes what OfficeRnD no longer has. kind is "import" or "full".
func (s *Syncer) FullPass(ctx context.Context, kind string) (*RunLog, error) {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	rl := s.begin(kind)
	err := s.fullPass(ctx, rl, kind)
	if err == nil {
		err = s.st.Update(func(tx *store.Tx) error { return tx.PutState(stateLastFull, rl.Start) })
	}
	s.end(rl, err)
	return rl, err
}

func (s *Syncer) fullPass(ctx context.Context, rl *RunLog, actor string) error {
	for _, k := range kinds {
		seen := map[string]bool{}
		_, maxMod, err := s.listKind(ctx, k, rl, officernd.Query{}, seen, actor)
		if err != nil {
			return fmt.Errorf("%s %s: %w", actor, k.resource, err)
		}
		if err := s.sweep(rl, k.kind, seen, actor); err != nil {
			return err
		}
		if err := s.saveCursor(k.resource, laterOf(maxMod, rl.Start.Add(-pollOverlap)), time.Time{}); err != nil {
			return err
		}
	}
	return s.syncOccurrences(ctx, rl, "", actor)
}

// Poll fetches what changed since the last cursor of each polled resource.
// Resources whose endpoint rejects modifiedAt are listed whole, and then
// their deletions are noticed too.
func (s *Syncer) Poll(ctx context.Context) (*RunLog, error) {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	rl := s.begin("poll")
	err := s.poll(ctx, rl)
	s.end(rl, err)
	return rl, err
}

func (s *Syncer) poll(ctx context.Context, rl *RunLog) error {
	if err := s.st.Update(func(tx *store.Tx) error {
		_, err := tx.PruneEvents(s.now().Add(-seenRetention))
		return err
	}); err != nil {
		return fmt.Errorf("prune webhook event ids: %w", err)
	}
	changed := map[string]map[string]bool{} // resource -> ids this poll listed
	for _, k := range kinds {
		if !k.poll {
			continue
		}
		var cursor time.Time
		if err := s.st.View(func(tx *store.Tx) error { return tx.GetState(stateCursor+k.resource, &cursor) }); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("read cursor %s: %w", k.resource, err)
		}
		q := officernd.Query{ModifiedSince: cursor}
		seen := map[string]bool{}
		changed[k.resource] = seen
		if k.resource == "memberships" && !cursor.IsZero() {
			q.NoFullScan = true
		}
		res, maxMod, err := s.listKind(ctx, k, rl, q, seen, "poll")
		if errors.Is(err, officernd.ErrModifiedUnsupported) {
			err = s.pollMembershipsOf(ctx, k, rl, changed["members"], changed["companies"])
			res, maxMod = officernd.ListResult{}, time.Time{}
		}
		if err != nil {
			return fmt.Errorf("poll %s: %w", k.resource, err)
		}
		if res.FullScan || q.ModifiedSince.IsZero() {
			rl.FullScans = append(rl.FullScans, k.resource)
			if err := s.sweep(rl, k.kind, seen, "poll"); err != nil {
				return err
			}
		}
		// Next time, ask from the newest change seen or from a little
		// before this poll began, whichever is later: records written
		// while this poll ran, or stamped by a clock slightly behind
		// ours, are re-read; records already seen long ago are not.
		if err := s.saveCursor(k.resource, laterOf(maxMod, rl.Start.Add(-pollOverlap)), time.Time{}); err != nil {
			return err
		}
	}
	return s.syncOccurrences(ctx, rl, "", "poll")
}

// pollMembershipsOf finds membership changes without listing every
// membership. The real GET /memberships answers 400 to a modifiedAt filter,
// so an incremental listing is impossible, and listing all of them costs
// one call per 50 memberships (208 calls at 10,000 members) every poll.
// Instead the poll re-reads the memberships of the members and companies
// whose records changed since the last poll (members accept modifiedAt,
// and OfficeRnD re-stamps a member whose status its memberships change:
// a membership starting, ending or being removed), one call per member or
// company with the member= or company= filter, and removes stored ones of
// that member or company that OfficeRnD no longer returns. Membership
// changes that leave the member's record alone (a new plan, a later end
// date) come by webhook; when a webhook is lost, the next full pass
// (sync.full_every, default 6h) lists every membership and repairs it.
// GET /memberships/count (one call) catches creations and deletions that
// re-stamp no member: when the total differs from the stored count, or
// when more members changed than a complete listing has pages, the
// complete listing (with its sweep) is done instead. Left to the webhook
// or the next full pass: a change that re-stamps no member and leaves the
// total alone (a plan change, an end date moved, one membership deleted
// and another created between two polls).
func (s *Syncer) pollMembershipsOf(ctx context.Context, k kindSpec, rl *RunLog, members, companies map[string]bool) error {
	stored := 0
	// A changed member of a company may have changed because of the
	// company's membership (which names no member): read those too.
	companies = maps.Clone(companies)
	if companies == nil {
		companies = map[string]bool{}
	}
	if err := s.st.View(func(tx *store.Tx) error {
		for id := range members {
			if m, err := tx.GetMember(id); err == nil && m.Company != "" {
				companies[m.Company] = true
			}
		}
		return tx.ForEachMembership(func(model.Membership) error { stored++; return nil })
	}); err != nil {
		return fmt.Errorf("count stored memberships: %w", err)
	}
	full := func() error {
		seen := map[string]bool{}
		if _, _, err := s.listKind(ctx, k, rl, officernd.Query{}, seen, "poll"); err != nil {
			return err
		}
		rl.FullScans = append(rl.FullScans, k.resource)
		return s.sweep(rl, k.kind, seen, "poll")
	}
	if len(members)+len(companies) > stored/officernd.MaxLimit+1 {
		return full()
	}
	if len(members)+len(companies) > 0 {
		rl.FullScans = append(rl.FullScans, fmt.Sprintf("%s(of %d changed members, %d companies)", k.resource, len(members), len(companies)))
	}
	for _, by := range []struct {
		field string
		ids   map[string]bool
	}{{"member", members}, {"company", companies}} {
		for _, id := range slices.Sorted(maps.Keys(by.ids)) {
			seen := map[string]bool{}
			q := officernd.Query{Filters: url.Values{by.field: {id}}}
			if _, _, err := s.listKind(ctx, k, rl, q, seen, "poll"); err != nil {
				return fmt.Errorf("memberships of %s %s: %w", by.field, id, err)
			}
			if err := s.sweepOf(rl, by.field, id, seen); err != nil {
				return err
			}
		}
	}
	// One more call catches what re-stamps no member: a membership created
	// or deleted elsewhere leaves the totals apart, and then the complete
	// listing (with its sweep) is done.
	total, err := officernd.Count(ctx, s.api, k.resource, nil)
	if err != nil {
		return err
	}
	stored = 0
	if err := s.st.View(func(tx *store.Tx) error {
		return tx.ForEachMembership(func(model.Membership) error { stored++; return nil })
	}); err != nil {
		return fmt.Errorf("count stored memberships: %w", err)
	}
	if total != stored {
		return full()
	}
	return nil
}

// sweepOf removes the stored memberships of one member or company (field
// "member" or "company", matched as the API's filter matches) that a
// filtered listing did not return.
func (s *Syncer) sweepOf(rl *RunLog, field, id string, seen map[string]bool) error {
	var gone []string
	if err := s.st.View(func(tx *store.Tx) error {
		return tx.ForEachMembership(func(m model.Membership) error {
			ref := m.Member
			if field == "company" {
				ref = m.Company
			}
			if ref == id && !seen[m.ID] {
				gone = append(gone, m.ID)
			}
			return nil
		})
	}); err != nil {
		return fmt.Errorf("sweep memberships of %s %s: %w", field, id, err)
	}
	if len(gone) == 0 {
		return nil
	}
	return s.apply(rl, "poll", func(tx *store.Tx, b *batch) error {
		for _, mid := range gone {
			if err := s.remove(tx, b, store.KindMembership, mid, "removed in OfficeRnD"); err != nil {
				return err
			}
		}
		return nil
	})
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (s *Syncer) listKind(ctx context.Context, k kindSpec, rl *RunLog, q officernd.Query, seen map[string]bool, actor string) (officernd.ListResult, time.Time, error) {
	return k.fetch(ctx, s, rl, k.resource, q, seen, actor)
}

// saveCursor advances a resource's poll cursor to the newest modifiedAt
// seen (never backwards). fallback is used when nothing carried a
// modifiedAt (e.g. an empty first import).
func (s *Syncer) saveCursor(resource string, maxMod, fallback time.Time) error {
	return s.st.Update(func(tx *store.Tx) error {
		var cur time.Time
		if err := tx.GetState(stateCursor+resource, &cur); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		next := maxMod
		if next.IsZero() {
			next = fallback
		}
		if next.After(cur) {
			return tx.PutState(stateCursor+resource, next)
		}
		return nil
	})
}

// sweep deletes stored entities of kind that a complete listing did not
// return.
func (s *Syncer) sweep(rl *RunLog, kind string, seen map[string]bool, actor string) error {
	var gone []string
	err := s.st.View(func(tx *store.Tx) error {
		return forEachID(tx, kind, func(id string) {
			if !seen[id] {
				gone = append(gone, id)
			}
		})
	})
	if err != nil {
		return fmt.Errorf("sweep %s: %w", kind, err)
	}
	for len(gone) > 0 {
		n := min(len(gone), 200)
		chunk := gone[:n]
		gone = gone[n:]
		err := s.apply(rl, actor, func(tx *store.Tx, b *batch) error {
			for _, id := range chunk {
				if err := s.remove(tx, b, kind, id, "removed in OfficeRnD"); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func forEachID(tx *store.Tx, kind string, fn func(string)) error {
	switch kind {
	case store.KindMember:
		return tx.ForEachMember(func(v model.Member) error { fn(v.ID); return nil })
	case store.KindCompany:
		return tx.ForEachCompany(func(v model.Company) error { fn(v.ID); return nil })
	case store.KindMembership:
		return tx.ForEachMembership(func(v model.Membership) error { fn(v.ID); return nil })
	case store.KindPlan:
		return tx.ForEachPlan(func(v model.Plan) error { fn(v.ID); return nil })
	case store.KindLocation:
		return tx.ForEachLocation(func(v model.Location) error { fn(v.ID); return nil })
	case store.KindResource:
		return tx.ForEachResource(func(v model.Resource) error { fn(v.ID); return nil })
	case store.KindBooking:
		// Occurrences are not listed by GET /bookings; syncOccurrences
		// sweeps them.
		return tx.ForEachBooking(func(v model.Booking) error {
			if v.Series == "" {
				fn(v.ID)
			}
			return nil
		})
	case store.KindVisitor:
		return tx.ForEachVisitor(func(v model.Visitor) error { fn(v.ID); return nil })
	case store.KindPass:
		return tx.ForEachPass(func(v model.Pass) error { fn(v.ID); return nil })
	}
	return fmt.Errorf("unknown kind %q", kind)
}

// ReconcileAll re-evaluates every member's account (after a rules change,
// at startup, and when the schedule says a decision changes).
func (s *Syncer) ReconcileAll(actor, cause string) error {
	var ids []string
	if err := s.st.View(func(tx *store.Tx) error {
		return tx.ForEachMember(func(m model.Member) error { ids = append(ids, m.ID); return nil })
	}); err != nil {
		return fmt.Errorf("reconcile all: %w", err)
	}
	// Accounts whose member vanished are reconciled too (deleted).
	if err := s.st.View(func(tx *store.Tx) error {
		return tx.ForEachAccount(func(a model.Account) error {
			if _, err := tx.GetMember(a.MemberID); errors.Is(err, store.ErrNotFound) {
				ids = append(ids, a.MemberID)
			}
			return nil
		})
	}); err != nil {
		return fmt.Errorf("reconcile all: %w", err)
	}
	return s.reconcileIDs(ids, actor, cause)
}

func (s *Syncer) reconcileIDs(ids []string, actor, cause string) error {
	for len(ids) > 0 {
		n := min(len(ids), 500)
		chunk := ids[:n]
		ids = ids[n:]
		err := s.apply(nil, actor, func(tx *store.Tx, b *batch) error {
			for _, id := range chunk {
				b.touch(id, cause)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
