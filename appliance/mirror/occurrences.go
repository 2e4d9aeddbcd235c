package mirror

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/officernd"
	"github.com/deskgate/deskgate/appliance/store"
)

// Recurring bookings: GET /bookings returns one record per series (its
// first occurrence), so a visitor of a later occurrence would get no code
// from it. The occurrences come from GET /bookings/occurrences over a
// rolling window, from a day back (a meeting running now, its buffer) to
// two weeks ahead (codes are mailed ahead of the meeting); each is stored
// as a booking of its own (model.Booking.Series set) and the guest codes
// follow them. The window moves with every poll and full pass; webhooks
// for a series (booking.*, occupancyslot.*) refresh that series at once.
const (
	occurrencesBack  = 24 * time.Hour
	occurrencesAhead = 14 * 24 * time.Hour
)

// syncOccurrences fetches the occurrences of recurring bookings in the
// window (of one series when series is set), stores them and removes the
// stored occurrences (of that series) the API no longer returns.
func (s *Syncer) syncOccurrences(ctx context.Context, rl *RunLog, series, actor string) error {
	now := s.now()
	var filters url.Values
	if series != "" {
		filters = url.Values{"booking": {series}}
	}
	occ, err := s.api.Occurrences(ctx, now.Add(-occurrencesBack), now.Add(occurrencesAhead), filters)
	if err != nil {
		return fmt.Errorf("booking occurrences: %w", err)
	}
	seen := map[string]bool{}
	var items []model.Booking
	for _, o := range occ {
		if rl != nil {
			rl.Fetched++
		}
		m, ok, err := mapOccurrence(o)
		if err != nil {
			if rl != nil {
				rl.Invalid++
			}
			s.log.Warn("skipping invalid OfficeRnD booking occurrence", "err", err)
			continue
		}
		if !ok || (series != "" && m.Series != series) {
			continue
		}
		seen[m.ID] = true
		items = append(items, m)
	}
	var gone []string
	if err := s.st.View(func(tx *store.Tx) error {
		return tx.ForEachBooking(func(b model.Booking) error {
			if b.Series != "" && (series == "" || b.Series == series) && !seen[b.ID] {
				gone = append(gone, b.ID)
			}
			return nil
		})
	}); err != nil {
		return fmt.Errorf("booking occurrences: %w", err)
	}
	if len(items) == 0 && len(gone) == 0 {
		return nil
	}
	return s.apply(rl, actor, func(tx *store.Tx, b *batch) error {
		for _, m := range items {
			if err := s.put(tx, b, m, "synced ("+actor+")"); err != nil {
				return err
			}
		}
		for _, id := range gone {
			if err := s.remove(tx, b, store.KindBooking, id, "occurrence gone in OfficeRnD ("+actor+")"); err != nil {
				return err
			}
		}
		return nil
	})
}

var errStopIter = errors.New("stop iteration")

// occurrenceSeries returns the series an occupancyslot event names.
func occurrenceSeries(ev officernd.Event) string {
	o, err := officernd.DecodeObject[officernd.Occurrence](ev)
	if err != nil {
		return ""
	}
	return o.Series
}
