package officernd

import (
	"errors"
	"os"
	"testing"
	"time"
)

func readEvent(t *testing.T, name string) Event {
	t.Helper()
	body, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseEvent(body)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return e
}

// A v1 booking payload names its fields resourceId, canceled, summary,
// tentative and free; all of them must reach the v2 fields, or a
// cancellation applied from the payload is missed.
func TestV1BookingPayloadFields(t *testing.T) {
	e := readEvent(t, "webhook_v1_booking_cancelled.json")
	b, err := DecodeObject[Booking](e)
	if err != nil {
		t.Fatal(err)
	}
	if !b.IsCancelled {
		t.Error("canceled: true did not set IsCancelled")
	}
	if b.Resource != "5f8d6a2b1c9e4a0012340400" {
		t.Errorf("resource %q, want the resourceId", b.Resource)
	}
	if b.Title != "Board meeting" {
		t.Errorf("title %q, want the summary", b.Title)
	}
	if !b.IsTentative || !b.IsFree {
		t.Errorf("tentative/free lost: %+v", b)
	}
	if b.Company != "5f8d6a2b1c9e4a0012340200" || b.Location != "5f8d6a2b1c9e4a0012340100" {
		t.Errorf("team/office: %+v", b)
	}
	if want := time.Date(2020, 10, 20, 14, 0, 0, 0, time.UTC); !b.Start.Equal(want) {
		t.Errorf("start %v, want %v", b.Start, want)
	}
	// A v2 payload keeps its own names when both are present.
	var both Booking
	if err := both.UnmarshalJSON([]byte(`{"_id":"b","title":"v2","summary":"v1","isCancelled":false,"canceled":true}`)); err != nil {
		t.Fatal(err)
	}
	if both.Title != "v2" || both.IsCancelled {
		t.Errorf("v2 names must win over v1 renames: %+v", both)
	}
}

// A v1 member carries both its stored status and the live
// calculatedStatus; the live one decides.
func TestV1MemberCalculatedStatusWins(t *testing.T) {
	e := readEvent(t, "webhook_v1_member_status.json")
	m, err := DecodeObject[Member](e)
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != "former" {
		t.Errorf("status %q, want calculatedStatus former", m.Status)
	}
	var only Member
	if err := only.UnmarshalJSON([]byte(`{"_id":"m","status":"active"}`)); err != nil || only.Status != "active" {
		t.Errorf("plain status: %q %v", only.Status, err)
	}
}

// data.member and data.company may be populated objects rather than id
// strings; the envelope is accepted and the ids read.
func TestEventPopulatedDataRefs(t *testing.T) {
	e := readEvent(t, "webhook_populated_refs.json")
	if e.Data.Member != "5f8d6a2b1c9e4a0012340001" || e.Data.Company != "5f8d6a2b1c9e4a0012340200" {
		t.Errorf("refs: member %q company %q", e.Data.Member, e.Data.Company)
	}
	for _, body := range []string{
		`{"event":"e","eventType":"x.created","data":{"object":{"_id":"o"},"member":"m1","company":null}}`,
		`{"event":"e","eventType":"x.created","data":{"object":{"_id":"o"},"member":{"id":"m1"}}}`,
	} {
		e, err := ParseEvent([]byte(body))
		if err != nil || e.Data.Member != "m1" || e.Data.Company != "" {
			t.Errorf("%s: %+v %v", body, e.Data, err)
		}
	}
	_, err := ParseEvent([]byte(`{"event":"e","eventType":"x.created","data":{"object":{"_id":"o"},"member":[1]}}`))
	if !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("array member: %v, want ErrInvalidEvent", err)
	}
}
