package mirror

import (
	"container/heap"
	"sync"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
)

// schedule remembers when members' decisions change by the clock alone (a
// membership ending at local midnight, a day pass running out, a
// membership starting), so accounts are disabled or enabled on time
// without OfficeRnD telling us. Decisions served to RADIUS are computed at
// request time anyway; the schedule keeps the stored accounts, the audit
// log and Disconnect messages in step.
type schedule struct {
	mu sync.Mutex
	h  schedHeap
	// at holds each member's pending time, so re-evaluations do not
	// pile up duplicate entries.
	at map[string]time.Time
}

type schedItem struct {
	at time.Time
	id string
}

type schedHeap []schedItem

func (h schedHeap) Len() int           { return len(h) }
func (h schedHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h schedHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *schedHeap) Push(x any)        { *h = append(*h, x.(schedItem)) }
func (h *schedHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

func newSchedule() *schedule { return &schedule{at: map[string]time.Time{}} }

func (s *schedule) add(at time.Time, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.at[id]; ok && prev.Equal(at) {
		return
	}
	s.at[id] = at
	heap.Push(&s.h, schedItem{at, id})
}

func (s *schedule) next() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.h) == 0 {
		return time.Time{}
	}
	return s.h[0].at
}

func (s *schedule) due(now time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for len(s.h) > 0 && !s.h[0].at.After(now) {
		it := heap.Pop(&s.h).(schedItem)
		if cur, ok := s.at[it.id]; !ok || !cur.Equal(it.at) {
			continue // superseded by a later add
		}
		delete(s.at, it.id)
		if !seen[it.id] {
			seen[it.id] = true
			out = append(out, it.id)
		}
	}
	return out
}

// schedule records when member id's decision next changes by itself.
func (s *Syncer) schedule(id string, dec model.Decision, now time.Time) {
	switch {
	case dec.Allowed && !dec.ValidUntil.IsZero():
		s.schedule_.add(dec.ValidUntil, id)
	case !dec.Allowed && dec.Deny == model.DenyNotStarted:
		// Memberships start on calendar dates: look again at the next
		// local midnight of any configured location.
		var next time.Time
		for _, l := range s.res.Rules().Locations {
			tz := l.TZ
			if tz == nil {
				tz = time.UTC
			}
			y, m, d := now.In(tz).Date()
			t := time.Date(y, m, d+1, 0, 0, 0, 0, tz)
			if next.IsZero() || t.Before(next) {
				next = t
			}
		}
		if next.IsZero() {
			next = now.Add(time.Hour)
		}
		s.schedule_.add(next, id)
	}
}

// dueTransitions reconciles members whose scheduled time has come.
func (s *Syncer) dueTransitions() {
	ids := s.schedule_.due(s.now())
	if len(ids) == 0 {
		return
	}
	if err := s.reconcileIDs(ids, "schedule", "time-based change (end date or pass expiry reached)"); err != nil {
		s.log.Error("time-based re-evaluation failed", "err", err)
	}
}
