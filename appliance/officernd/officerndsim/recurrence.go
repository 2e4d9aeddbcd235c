package officerndsim

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Recurring bookings. GET /bookings returns one record per series, whose
// start and end are the first occurrence's; GET /bookings/occurrences
// expands the series over a time window. The occurrence shape is not
// documented (officernd-api.md lists only the route and the
// occupancyslot.created|removed events): the simulator serves each
// occurrence as the booking's fields with that occurrence's start and end,
// "booking" naming the series (every booking has at least one occurrence,
// a one-off booking exactly one), and "_id" the occurrence's own id.

// rrule is the subset of RFC 5545 rules the simulator expands.
type rrule struct {
	freq     string // DAILY | WEEKLY
	interval int
	count    int       // 0: none
	until    time.Time // zero: none
}

func parseRRule(s string) (rrule, error) {
	r := rrule{interval: 1}
	s = strings.TrimPrefix(strings.TrimSpace(s), "RRULE:")
	for _, part := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return r, fmt.Errorf("recurrence.rrule: malformed part %q", part)
		}
		switch strings.ToUpper(k) {
		case "FREQ":
			r.freq = strings.ToUpper(v)
			if r.freq != "DAILY" && r.freq != "WEEKLY" {
				return r, fmt.Errorf("recurrence.rrule: FREQ %s is not supported", v)
			}
		case "INTERVAL":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return r, fmt.Errorf("recurrence.rrule: bad INTERVAL %q", v)
			}
			r.interval = n
		case "COUNT":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return r, fmt.Errorf("recurrence.rrule: bad COUNT %q", v)
			}
			r.count = n
		case "UNTIL":
			t, err := time.Parse("20060102T150405Z", v)
			if err != nil {
				t2, ok := parseInstant(v)
				if !ok {
					return r, fmt.Errorf("recurrence.rrule: bad UNTIL %q", v)
				}
				t = t2
			}
			r.until = t
		default:
			return r, fmt.Errorf("recurrence.rrule: %s is not supported", k)
		}
	}
	if r.freq == "" {
		return r, fmt.Errorf("recurrence.rrule: FREQ is required")
	}
	return r, nil
}

// maxOccurrences bounds an open-ended series.
const maxOccurrences = 1000

// occurrence is one expanded slot of a booking.
type occurrence struct {
	start, end time.Time
}

// occurrences expands booking d (a one-off booking has one) in its
// location's time zone, so a weekly meeting keeps its local time across
// DST. Excluded dates (recurrence.exdates, matched by instant) are left
// out. Callers hold s.mu.
func (s *Sim) occurrences(d doc) []occurrence {
	start, ok1 := parseInstant(str(d["start"]))
	end, ok2 := parseInstant(str(d["end"]))
	if !ok1 || !ok2 {
		return nil
	}
	rec, _ := d["recurrence"].(map[string]any)
	rule, err := parseRRule(str(rec["rrule"]))
	if rec == nil || err != nil {
		return []occurrence{{start, end}}
	}
	ex := map[string]bool{}
	for _, x := range values(rec["exdates"]) {
		if t, ok := parseInstant(x); ok {
			ex[iso(t)] = true
		}
	}
	loc := s.tz(d["location"])
	ls := start.In(loc)
	dur := end.Sub(start)
	step := rule.interval
	if rule.freq == "WEEKLY" {
		step *= 7
	}
	var out []occurrence
	for i := 0; i < maxOccurrences; i++ {
		if rule.count > 0 && i >= rule.count {
			break
		}
		st := time.Date(ls.Year(), ls.Month(), ls.Day()+i*step, ls.Hour(), ls.Minute(), ls.Second(), 0, loc).UTC()
		if !rule.until.IsZero() && st.After(rule.until) {
			break
		}
		if !ex[iso(st)] {
			out = append(out, occurrence{st, st.Add(dur)})
		}
	}
	return out
}

// occurrenceDoc renders occurrence o of booking d as the route serves it.
func (s *Sim) occurrenceDoc(d doc, o occurrence) doc {
	out := maps.Clone(d)
	out["_id"] = occurrenceID(str(d["_id"]), o.start)
	out["booking"] = d["_id"]
	out["start"], out["end"] = iso(o.start), iso(o.end)
	return out
}

// occurrenceID is an occurrence's id: the series id and the start.
func occurrenceID(booking string, start time.Time) string {
	return booking + "_" + start.UTC().Format("20060102T150405Z")
}

// occurrenceFilters are what GET /bookings/occurrences accepts besides
// the required window.
var occurrenceFilters = []string{"booking", "member", "company", "location", "resource"}

// listOccurrences serves GET /bookings/occurrences?start=&end=[&booking=...]:
// every occurrence overlapping [start, end), ordered by start, in one page.
func (s *Sim) listOccurrences(raw string) (any, *apiError) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, badRequest("malformed query string")
	}
	var msgs []string
	var from, to time.Time
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		v := vals[k][len(vals[k])-1]
		switch {
		case k == "start" || k == "end":
			t, ok := parseInstant(v)
			if !ok {
				msgs = append(msgs, k+" must be a valid ISO 8601 date string")
				continue
			}
			if k == "start" {
				from = t
			} else {
				to = t
			}
		case k == "$limit" || slices.Contains(occurrenceFilters, k):
		default:
			msgs = append(msgs, "property "+k+" should not exist")
		}
	}
	if from.IsZero() {
		msgs = append(msgs, "start should not be empty")
	}
	if to.IsZero() {
		msgs = append(msgs, "end should not be empty")
	}
	if len(msgs) == 0 && !to.After(from) {
		msgs = append(msgs, "end must be after start")
	}
	if len(msgs) == 0 && to.Sub(from) > 62*24*time.Hour {
		msgs = append(msgs, "the range must not be longer than 62 days")
	}
	if len(msgs) > 0 {
		return nil, badRequest(msgs...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	res := []doc{}
	c := s.cols["bookings"]
	for _, id := range c.ids {
		d := c.docs[id]
		match := true
		for _, f := range occurrenceFilters {
			if want := vals.Get(f); want != "" {
				got := str(d[f])
				if f == "booking" {
					got = id
				}
				if got != want {
					match = false
				}
			}
		}
		if !match {
			continue
		}
		for _, o := range s.occurrences(d) {
			if o.start.Before(to) && o.end.After(from) {
				res = append(res, s.occurrenceDoc(d, o))
			}
		}
	}
	slices.SortStableFunc(res, func(a, b doc) int { return strings.Compare(str(a["start"]), str(b["start"])) })
	return page{RangeStart: min(1, len(res)), RangeEnd: len(res), Results: res}, nil
}

// emitSlots emits occupancyslot.created/removed for the occurrences of a
// booking that a write added or took away (within maxOccurrences).
// Callers hold s.mu.
func (s *Sim) emitSlots(old, d doc) {
	key := func(x doc) map[string]doc {
		out := map[string]doc{}
		if x == nil {
			return out
		}
		for _, o := range s.occurrences(x) {
			od := s.occurrenceDoc(x, o)
			out[str(od["_id"])] = od
		}
		return out
	}
	before, after := key(old), key(d)
	for _, id := range slices.Sorted(maps.Keys(before)) {
		if _, ok := after[id]; !ok {
			s.emitEvent("occupancyslot.removed", slotPayload(before[id]), nil)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(after)) {
		if _, ok := before[id]; !ok {
			s.emitEvent("occupancyslot.created", slotPayload(after[id]), nil)
		}
	}
}

// slotPayload is an occupancy slot as its events carry it.
func slotPayload(od doc) doc {
	return doc{"_id": od["_id"], "booking": od["booking"], "start": od["start"], "end": od["end"],
		"resource": od["resource"], "member": od["member"]}
}
