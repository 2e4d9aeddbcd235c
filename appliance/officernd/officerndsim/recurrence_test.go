package officerndsim

import (
	"net/url"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/officernd"
)

// A weekly series is one record in GET /bookings (its first occurrence);
// GET /bookings/occurrences expands it over a window at the same local
// time, drops exdates, and a write that takes an occurrence away emits
// occupancyslot.removed.
func TestRecurringBookings(t *testing.T) {
	e := newEnv(t, Options{Seed: true})
	seed := e.sim.Seeded()
	tz, _ := time.LoadLocation(seedTimezone)
	first := time.Date(2026, 10, 20, 10, 0, 0, 0, tz) // before the DST change of Nov 1
	var b officernd.Booking
	e.call("POST", "bookings", map[string]any{
		"title": "Weekly", "resource": seed.IDs["resource:Boardroom"], "member": seed.IDs["member:hotdesk-downtown"],
		"start": first.UTC().Format(time.RFC3339), "end": first.Add(time.Hour).UTC().Format(time.RFC3339),
		"recurrence": map[string]any{"rrule": "FREQ=WEEKLY;COUNT=6"}}, &b)
	if b.ID == "" || b.Recurrence == nil {
		t.Fatalf("created %+v", b)
	}
	var all officernd.ListPage[officernd.Booking]
	e.call("GET", "bookings?resource="+seed.IDs["resource:Boardroom"]+"&$limit=50", nil, &all)
	n := 0
	for _, x := range all.Results {
		if x.ID == b.ID {
			n++
			if !x.Start.Equal(first) {
				t.Errorf("series start %v, want the first occurrence %v", x.Start, first)
			}
		}
	}
	if n != 1 {
		t.Errorf("series listed %d times, want once", n)
	}
	occ := func() []officernd.Occurrence {
		var p officernd.ListPage[officernd.Occurrence]
		q := url.Values{"start": {"2026-10-01T00:00:00Z"}, "end": {"2026-11-30T00:00:00Z"}, "booking": {b.ID}}
		e.call("GET", "bookings/occurrences?"+q.Encode(), nil, &p)
		return p.Results
	}
	got := occ()
	if len(got) != 6 {
		t.Fatalf("%d occurrences, want 6", len(got))
	}
	for i, o := range got {
		want := first.AddDate(0, 0, 7*i)
		if !o.Start.Equal(want) || o.Series != b.ID || o.End.Sub(o.Start) != time.Hour {
			t.Errorf("occurrence %d: %v – %v of %q, want %v (10:00 local)", i, o.Start, o.End, o.Series, want)
		}
	}
	// Window and parameter checks.
	e.wantError("GET", "bookings/occurrences?booking="+b.ID, nil, 400, "start should not be empty; end should not be empty")
	e.wantError("GET", "bookings/occurrences?start=2026-10-01&end=2026-11-01&nope=1", nil, 400, "property nope should not exist")

	// Drop the third occurrence.
	before := len(e.sim.Events())
	third := got[2].Start.UTC().Format(time.RFC3339)
	e.call("PATCH", "bookings/"+b.ID, map[string]any{"recurrence": map[string]any{"rrule": "FREQ=WEEKLY;COUNT=6", "exdates": []string{third}}}, nil)
	got2 := occ()
	if len(got2) != 5 || got2[2].Start.Equal(got[2].Start) {
		t.Errorf("after the exdate: %d occurrences, third %v", len(got2), got2[2].Start)
	}
	var types []string
	for _, ev := range e.sim.Events()[before:] {
		types = append(types, ev.Type)
	}
	if len(types) != 2 || types[0] != "booking.updated" || types[1] != "occupancyslot.removed" {
		t.Errorf("events %v", types)
	}
	ev := e.sim.Events()[before+1]
	o, err := officernd.DecodeObject[officernd.Occurrence](ev)
	if err != nil || o.Series != b.ID || !o.Start.Equal(got[2].Start) {
		t.Errorf("slot event %+v %v", o, err)
	}
	e.wantError("POST", "bookings", map[string]any{"resource": seed.IDs["resource:Boardroom"], "member": seed.IDs["member:hotdesk-downtown"],
		"start": "2026-12-01T10:00:00Z", "end": "2026-12-01T11:00:00Z", "recurrence": map[string]any{"rrule": "FREQ=YEARLY"}}, 400, "recurrence.rrule: FREQ YEARLY is not supported")
}
