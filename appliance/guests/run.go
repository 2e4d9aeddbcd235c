package guests

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/store"
)

// maxSleep bounds Run's sleep so clock jumps are noticed.
const maxSleep = time.Minute

// Run re-keys legacy code records (RekeyLegacy), restores the live
// sessions, reconciles, and then follows the store's
// change feed (bookings, visitors, passes, members, resources, locations,
// resyncs), ends sessions when their time is up (within a second), cleans up
// ended codes at local midnight and sends queued SMS, until ctx ends. It
// returns ctx.Err(), or an error if the store closes.
func (m *Manager) Run(ctx context.Context) error {
	feed, cancel := m.st.Subscribe(256)
	defer cancel()
	if _, _, err := m.RekeyLegacy(ctx); err != nil {
		m.log.Warn("guests re-key", "err", err)
	}
	if err := m.Restore(ctx); err != nil {
		m.log.Warn("guests restore", "err", err)
	}
	if err := m.Reconcile(ctx); err != nil {
		m.log.Warn("guests reconcile", "err", err)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case c, ok := <-feed:
			if !ok {
				return errors.New("guests: store closed")
			}
			if relevant(c) && m.drainFeed(feed) {
				if err := m.Reconcile(ctx); err != nil && ctx.Err() == nil {
					m.log.Warn("guests reconcile", "err", err)
				}
			}
		case <-m.refresh:
			// The fleet brought news (a delivery claimed elsewhere, a day
			// pass started elsewhere).
			if err := m.Reconcile(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("guests reconcile", "err", err)
			}
		case <-m.poke:
		case done := <-m.settle:
			// Everything committed before Settle was called is in the store
			// now: one reconcile covers it.
			if err := m.Reconcile(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("guests reconcile", "err", err)
			}
			close(done)
		case <-timer.C:
			// Deliveries waiting for a fleet box to claim them: ask again
			// (the owner may have come up, or a takeover may be due).
			if m.pendingClaims.Swap(false) {
				if err := m.Reconcile(ctx); err != nil && ctx.Err() == nil {
					m.log.Warn("guests reconcile", "err", err)
				}
			}
		}
		next := m.tick(ctx)
		if sms := m.flushSMS(ctx); !sms.IsZero() && (next.IsZero() || sms.Before(next)) {
			next = sms
		}
		d := maxSleep
		if !next.IsZero() {
			d = min(max(next.Sub(m.now()), 0), maxSleep)
		}
		if m.pendingClaims.Load() {
			d = min(d, m.cfg.ClaimRetry)
		}
		timer.Reset(d)
	}
}

// Settle returns once Run has reconciled every booking, visitor and pass
// committed before the call (the daemon's readiness waits for it after the
// initial import), or when ctx ends.
func (m *Manager) Settle(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case m.settle <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func relevant(c store.Change) bool {
	switch c.Kind {
	case store.KindBooking, store.KindVisitor, store.KindPass, store.KindMember,
		store.KindResource, store.KindLocation, store.KindResync:
		return true
	}
	return false
}

// drainFeed takes the changes already queued (one reconcile covers them);
// it reports false if the feed closed.
func (m *Manager) drainFeed(feed <-chan store.Change) bool {
	for {
		select {
		case _, ok := <-feed:
			if !ok {
				return false
			}
		default:
			return true
		}
	}
}

// tick ends the sessions and codes whose time is up, cleans up ended codes
// after local midnight, and returns when it next has work (zero: none).
func (m *Manager) tick(ctx context.Context) time.Time {
	var next time.Time
	soonest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	// Most wake-ups find nothing due: look before taking the write lock
	// (and an fsync).
	now := m.now()
	if err := m.st.View(func(tx *store.Tx) error {
		var err error
		next, err = m.due(tx, now)
		return err
	}); err == nil && (next.IsZero() || now.Before(next)) {
		return next
	}
	err := m.update(ctx, func(tx *store.Tx, fx *effects) error {
		next = time.Time{}
		now := m.now()
		var sessions []sessionRecord
		if err := forEach(tx, bucketSessions, func(_ string, s sessionRecord) error {
			sessions = append(sessions, s)
			return nil
		}); err != nil {
			return err
		}
		for _, s := range sessions {
			if now.Before(s.Until) {
				soonest(s.Until)
				continue
			}
			why := "session ended"
			if s.CodeHash != "" {
				why = "code " + hint(s.CodeHash) + " ended"
			}
			if err := m.endSession(tx, fx, s, "guest.session_expired", why); err != nil {
				return err
			}
		}
		var codes []codeRecord
		if err := forEach(tx, bucketCodes, func(_ string, r codeRecord) error {
			codes = append(codes, r)
			return nil
		}); err != nil {
			return err
		}
		for _, r := range codes {
			end := r.end()
			if end.IsZero() {
				continue
			}
			if now.Before(end) {
				soonest(end)
				continue
			}
			purge := nextMidnight(end, m.location(tx, r.LocationID).TZ)
			if now.Before(purge) {
				soonest(purge)
				if !r.ExpiredAudited {
					r.ExpiredAudited = true
					if err := putCode(tx, r); err != nil {
						return err
					}
					if err := audit(tx, auditActor, "guest.code_expired", r.Member, "code "+r.hint(), cause(r)+" ended"); err != nil {
						return err
					}
				}
				continue
			}
			if err := m.purge(tx, fx, r, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		m.log.Warn("guests expiry", "err", err)
		return m.now().Add(time.Second)
	}
	return next
}

// due returns the earliest instant at which tick has work: now or earlier
// when something is due already; zero when nothing is pending.
func (m *Manager) due(tx *store.Tx, now time.Time) (time.Time, error) {
	var next time.Time
	soonest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if err := forEach(tx, bucketSessions, func(_ string, s sessionRecord) error {
		soonest(s.Until)
		return nil
	}); err != nil {
		return time.Time{}, err
	}
	err := forEach(tx, bucketCodes, func(_ string, r codeRecord) error {
		end := r.end()
		switch {
		case end.IsZero():
		case now.Before(end) || !r.ExpiredAudited:
			soonest(end)
		default:
			soonest(nextMidnight(end, m.location(tx, r.LocationID).TZ))
		}
		return nil
	})
	return next, err
}

// purge removes an ended code after local midnight; its passes are marked
// used up so they never yield a code again.
func (m *Manager) purge(tx *store.Tx, fx *effects, r codeRecord, now time.Time) error {
	sessions, err := sessionsOf(tx, r.Hash)
	if err != nil {
		return err
	}
	for _, s := range sessions {
		if err := m.endSession(tx, fx, s, "guest.session_expired", "code "+r.hint()+" cleaned up"); err != nil {
			return err
		}
	}
	for _, id := range r.PassIDs {
		if err := tx.PutKV(bucketPassDone, id, now); err != nil {
			return err
		}
	}
	if err := tx.DeleteKV(bucketCodes, r.Hash); err != nil {
		return err
	}
	if err := tx.DeleteKV(bucketSources, r.Source); err != nil {
		return err
	}
	m.log.Info("guest code cleaned up", "code", r.hint())
	return audit(tx, auditActor, "guest.code_purged", r.Member, "code "+r.hint(), cause(r)+": cleaned up at local midnight")
}

// CodeInfo describes a live code for the operator (never the code itself).
type CodeInfo struct {
	Hint       string // first 8 hex digits of the code's stored (keyed) hash
	Kind       string // KindGuest or KindDayPass
	BookingID  string
	VisitorID  string
	PassIDs    []string
	Member     string
	Name       string
	LocationID string
	From       time.Time
	Until      time.Time // zero: a day pass not used yet
	ActivateBy time.Time
	Devices    int
	Sessions   int
	Expired    bool
	AdHoc      bool // created by an operator (CreateAdHoc)
}

// Codes lists the live codes (including ended ones awaiting cleanup),
// earliest first.
func (m *Manager) Codes(ctx context.Context) ([]CodeInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []CodeInfo
	now := m.now()
	err := m.st.View(func(tx *store.Tx) error {
		perCode := map[string]int{}
		if err := forEach(tx, bucketSessions, func(_ string, s sessionRecord) error {
			perCode[s.CodeHash]++
			return nil
		}); err != nil {
			return err
		}
		return forEach(tx, bucketCodes, func(_ string, r codeRecord) error {
			end := r.end()
			out = append(out, CodeInfo{
				Hint: r.hint(), Kind: r.Kind, BookingID: r.BookingID, VisitorID: r.VisitorID,
				PassIDs: slices.Clone(r.PassIDs), Member: r.Member, Name: r.Name, LocationID: r.LocationID,
				From: r.From, Until: r.Until, ActivateBy: r.ActivateBy, Devices: len(r.Devices),
				Sessions: perCode[r.Hash], Expired: !end.IsZero() && !now.Before(end),
				AdHoc: strings.HasPrefix(r.Source, adHocPrefix),
			})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b CodeInfo) int { return cmp.Or(a.From.Compare(b.From), cmp.Compare(a.Hint, b.Hint)) })
	return out, nil
}
