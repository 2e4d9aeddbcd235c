package mirror

import (
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/officernd"
)

func TestMappingRejectsBadRecords(t *testing.T) {
	bad := []struct {
		name string
		fn   func() error
	}{
		{"member without id", func() error { _, err := mapMember(officernd.Member{Name: "x"}); return err }},
		{"member bad start date", func() error { _, err := mapMember(officernd.Member{ID: "a", StartDate: "yesterday"}); return err }},
		{"membership without plan", func() error {
			_, err := mapMembership(officernd.Membership{ID: "a", StartDate: "2026-01-01"})
			return err
		}},
		{"membership bad end date", func() error {
			_, err := mapMembership(officernd.Membership{ID: "a", Plan: "p", StartDate: "2026-01-01", EndDate: "2026-13-45"})
			return err
		}},
		{"location bad timezone", func() error { _, err := mapLocation(officernd.Location{ID: "l", Timezone: "Mars/Olympus"}); return err }},
		{"booking ending before it starts", func() error {
			now := time.Now()
			_, err := mapBooking(officernd.Booking{ID: "b", Start: now, End: now.Add(-time.Hour)})
			return err
		}},
		{"pass bad validTo", func() error { _, err := mapPass(officernd.Pass{ID: "p", ValidTo: "soon"}); return err }},
	}
	for _, c := range bad {
		if c.fn() == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

func TestMappingCalendarDates(t *testing.T) {
	m, err := mapMembership(officernd.Membership{ID: "a", Member: "m", Plan: "p", StartDate: "2026-11-01T00:00:00.000Z", EndDate: "2026-11-30T00:00:00.000Z",
		Properties: map[string]any{"firstInvoicePaid": false}})
	if err != nil {
		t.Fatal(err)
	}
	if m.StartDate != "2026-11-01" || m.EndDate != "2026-11-30" || !m.IsPersonal || m.FirstInvoicePaid == nil || *m.FirstInvoicePaid {
		t.Fatalf("%+v", m)
	}
	mem, _ := mapMember(officernd.Member{ID: "x", Properties: map[string]any{"wifiPassword": "s3cret-pass", "n": 3.0, "obj": map[string]any{}}})
	if mem.Properties["wifiPassword"] != "s3cret-pass" || mem.Properties["n"] != "3" || len(mem.Properties) != 2 {
		t.Fatalf("properties %+v", mem.Properties)
	}
}

func TestScheduleDedupAndOrder(t *testing.T) {
	s := newSchedule()
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	s.add(t0.Add(2*time.Hour), "b")
	s.add(t0.Add(time.Hour), "a")
	s.add(t0.Add(time.Hour), "a") // duplicate
	s.add(t0.Add(3*time.Hour), "c")
	s.add(t0.Add(4*time.Hour), "c") // superseded: c moves later
	if got := s.next(); !got.Equal(t0.Add(time.Hour)) {
		t.Fatalf("next %s", got)
	}
	if due := s.due(t0.Add(150 * time.Minute)); len(due) != 2 || due[0] != "a" || due[1] != "b" {
		t.Fatalf("due %v", due)
	}
	if due := s.due(t0.Add(210 * time.Minute)); len(due) != 0 {
		t.Fatalf("superseded entry fired: %v", due)
	}
	if due := s.due(t0.Add(5 * time.Hour)); len(due) != 1 || due[0] != "c" {
		t.Fatalf("due %v", due)
	}
}
