package officerndsim

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/deskgate/deskgate/appliance/officernd"
)

// In v1 mode (the default) booking payloads carry the v1 names, and the
// client's tolerant decoder maps every one of them back.
func TestV1BookingAndMemberPayloads(t *testing.T) {
	e := newEnv(t, Options{Seed: true})
	seed := e.sim.Seeded()
	id := seed.IDs["booking:one-visitor"]
	e.call("POST", "bookings/"+id+"/cancel", nil, nil)
	evs := e.sim.Events()
	if len(evs) != 1 || evs[0].Type != "booking.updated" {
		t.Fatalf("events %+v", evs)
	}
	var raw map[string]any
	_ = json.Unmarshal(evs[0].Data.Object, &raw)
	for _, k := range []string{"canceled", "resourceId", "summary", "tentative", "free", "office"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("v1 booking payload lacks %q: %s", k, evs[0].Data.Object)
		}
	}
	for _, k := range []string{"isCancelled", "resource", "title", "location"} {
		if _, ok := raw[k]; ok {
			t.Errorf("v1 booking payload has v2 key %q", k)
		}
	}
	b, err := officernd.DecodeObject[officernd.Booking](evs[0])
	if err != nil || !b.IsCancelled || b.Resource != seed.IDs["resource:Focus Room"] || b.Title == "" {
		t.Errorf("decoded booking %+v %v", b, err)
	}

	// Ending the company membership makes the team members former: the v1
	// member payload keeps the stale status next to the live
	// calculatedStatus, and the decoder takes the live one.
	e.call("PUT", "memberships/"+seed.IDs["membership:acme"], map[string]any{"endDate": "2026-11-01"}, nil)
	var found bool
	for _, ev := range e.sim.Events() {
		if ev.Type != "member.updated" {
			continue
		}
		found = true
		var obj map[string]any
		_ = json.Unmarshal(ev.Data.Object, &obj)
		if obj["calculatedStatus"] != "former" || obj["status"] != "active" {
			t.Errorf("v1 member payload status pair: %s", ev.Data.Object)
		}
		m, err := officernd.DecodeObject[officernd.Member](ev)
		if err != nil || m.Status != "former" {
			t.Errorf("decoded member %+v %v", m, err)
		}
	}
	if !found {
		t.Error("no member.updated event")
	}
}

// A read-only application gets tokens for read scopes only; asking for a
// write scope fails the whole token request with invalid_scope (400).
func TestReadOnlyApplication(t *testing.T) {
	e := newEnv(t, Options{Seed: true, Scopes: ReadScopes})
	if code, tok := e.token(creds("flex.community.members.read flex.settings.webhooks.create")); code != 400 || tok.Error != "invalid_scope" {
		t.Errorf("write scope: %d %+v", code, tok)
	}
	if code, tok := e.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {DefaultClientID},
		"client_secret": {DefaultClientSecret}}); code != 200 || tok.AccessToken == "" {
		t.Errorf("no scope (all granted): %d %+v", code, tok)
	}
	if code, tok := e.token(creds("flex.community.members.read flex.settings.webhooks.read")); code != 200 || tok.AccessToken == "" {
		t.Errorf("read scopes: %d %+v", code, tok)
	}
}
