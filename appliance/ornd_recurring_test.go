package appliance

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/guests"
	"github.com/deskgate/deskgate/appliance/officernd"
)

// TestRecurringBookingOccurrences: a weekly meeting whose first two
// occurrences are past. GET /bookings returns the series once (its first,
// past occurrence), so without the occurrences the visitor of today's third
// meeting would get no code. The daemon fetches the occurrences in its
// window (a day back, two weeks ahead): the visitor gets one code per
// occurrence in the window, each valid for that occurrence's window only;
// taking one occurrence out of the series (an exdate) revokes only its
// code.
func TestRecurringBookingOccurrences(t *testing.T) {
	portalAddr := freePort(t)
	h := newHarness(t, harnessOpts{seed: true, webhooks: true,
		extraYAML: fmt.Sprintf("portal: {enabled: true, listen: %q, public_url: \"http://%s\", default_location: Downtown}\nguests: {guest_network: downtown-guest}\n", portalAddr, portalAddr)})
	app := h.start()
	h.waitImport(30 * time.Second)
	h.waitWebhookRegistered()
	ctx := context.Background()
	ids := h.sim.Seeded().IDs
	cfg := app.Config()

	v, err := officernd.Create[officernd.Visitor](ctx, h.admin, "visitors", map[string]any{
		"name": "Rosalind Franklin", "email": "rosalind.franklin@example.net", "member": ids["member:hotdesk-downtown"], "type": "preregistration"})
	if err != nil {
		t.Fatal(err)
	}
	// Weekly at the same local time, four times; the third is in two hours.
	tz, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	third := h.clock.Now().Add(2 * time.Hour).Truncate(time.Minute).In(tz)
	var starts []time.Time
	for i := -2; i < 2; i++ {
		starts = append(starts, third.AddDate(0, 0, 7*i).UTC())
	}
	b, err := officernd.Create[officernd.Booking](ctx, h.admin, "bookings", map[string]any{
		"title": "Weekly review", "resource": ids["resource:Boardroom"], "member": ids["member:hotdesk-downtown"],
		"start": starts[0].Format(time.RFC3339), "end": starts[0].Add(time.Hour).Format(time.RFC3339),
		"recurrence": map[string]any{"rrule": "FREQ=WEEKLY;COUNT=4"}, "visitors": []string{v.ID}})
	if err != nil {
		t.Fatal(err)
	}
	codesOf := func() []guests.CodeInfo {
		app.guests.mu.Lock()
		mgr := app.guests.mgr
		app.guests.mu.Unlock()
		if mgr == nil {
			return nil
		}
		all, err := mgr.Codes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []guests.CodeInfo
		for _, c := range all {
			if c.VisitorID == v.ID {
				out = append(out, c)
			}
		}
		return out
	}
	waitFor(t, 10*time.Second, "codes for the occurrences in the window", func() bool { return len(codesOf()) == 2 })
	got := codesOf()
	for i, c := range got {
		st := starts[2+i]
		wantFrom, wantUntil := st.Add(-cfg.Guests.BufferBefore), st.Add(time.Hour+cfg.Guests.BufferAfter)
		if !c.From.Equal(wantFrom) || !c.Until.Equal(wantUntil) {
			t.Errorf("code %d: window %s – %s, want %s – %s (occurrence %d)", i, c.From, c.Until, wantFrom, wantUntil, 3+i)
		}
		if !strings.HasPrefix(c.BookingID, b.ID) || c.BookingID == b.ID {
			t.Errorf("code %d belongs to %q, want an occurrence of %s", i, c.BookingID, b.ID)
		}
	}
	if len(got) == 2 && got[0].Hint == got[1].Hint {
		t.Error("both occurrences share one code")
	}

	// Take the third occurrence out of the series: only its code goes.
	keep := got[1]
	if _, err := officernd.Update[officernd.Booking](ctx, h.admin, "bookings", b.ID, map[string]any{
		"recurrence": map[string]any{"rrule": "FREQ=WEEKLY;COUNT=4", "exdates": []string{starts[2].Format(time.RFC3339)}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the third occurrence's code revoked", func() bool { return len(codesOf()) == 1 })
	left := codesOf()
	if left[0].Hint != keep.Hint || !left[0].From.Equal(keep.From) {
		t.Errorf("the wrong code was revoked: left %+v, want %+v", left[0], keep)
	}
	var audit []string
	es, _ := app.Store().AuditLog(0, 1<<30)
	for _, e := range es {
		if strings.Contains(fmt.Sprint(e), "guest.code_revoked") {
			audit = append(audit, fmt.Sprint(e))
		}
	}
	if len(audit) != 1 {
		t.Errorf("revocations audited: %v", audit)
	}
}
