package console

import (
	"sync"
	"time"
)

// Minutes is how many per-minute buckets a Ring keeps: 24 h.
const Minutes = 24 * 60

// Series of a Ring.
const (
	SeriesAccepts = iota
	SeriesRejects
	SeriesWebhooks
	SeriesOnline
	numSeries
)

// Ring keeps per-minute counters of the last 24 h in memory (a restart
// starts empty). Record takes cumulative counters (as the daemon's
// statistics keep them) and stores the increase per minute; gauges (live
// sessions) are stored as the latest value of their minute. Minutes are
// of the daemon's clock.
type Ring struct {
	mu     sync.Mutex
	last   time.Time // minute of the latest Record
	slots  [numSeries][Minutes]int
	prev   [numSeries]uint64 // last cumulative values seen
	primed bool
}

// Record notes the cumulative accepts, rejects and webhooks and the
// current number of online sessions at now.
func (r *Ring) Record(now time.Time, accepts, rejects, webhooks uint64, online int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	min := now.Truncate(time.Minute)
	if r.last.IsZero() || min.Before(r.last) {
		r.clear()
		r.last = min
	}
	// Zero the minutes skipped since the latest Record.
	gap := int(min.Sub(r.last) / time.Minute)
	if gap >= Minutes {
		r.clear()
	} else {
		for i := 1; i <= gap; i++ {
			idx := r.index(r.last.Add(time.Duration(i) * time.Minute))
			for s := range r.slots {
				r.slots[s][idx] = 0
			}
		}
	}
	r.last = min
	idx := r.index(min)
	cum := [3]uint64{accepts, rejects, webhooks}
	for s, v := range cum {
		if r.primed && v >= r.prev[s] {
			r.slots[s][idx] += int(v - r.prev[s])
		}
		r.prev[s] = v
	}
	r.primed = true
	r.slots[SeriesOnline][idx] = online
}

func (r *Ring) clear() {
	r.slots = [numSeries][Minutes]int{}
}

func (r *Ring) index(t time.Time) int {
	m := t.Unix() / 60 % Minutes
	if m < 0 {
		m += Minutes
	}
	return int(m)
}

// Series returns series s for the 24 h up to now, oldest minute first.
func (r *Ring) Series(s int, now time.Time) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]int, Minutes)
	min := now.Truncate(time.Minute)
	for i := range Minutes {
		t := min.Add(-time.Duration(Minutes-1-i) * time.Minute)
		if r.last.IsZero() || t.After(r.last) || r.last.Sub(t) >= Minutes*time.Minute {
			continue
		}
		out[i] = r.slots[s][r.index(t)]
	}
	return out
}
