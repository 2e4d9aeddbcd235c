package appliance

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/officernd"
)

// createMember creates a member and an active personal membership through
// the simulator's API, as an OfficeRnD admin would.
func createMember(t *testing.T, h *harness, name, email, plan, location string) (officernd.Member, officernd.Membership) {
	t.Helper()
	ctx := context.Background()
	ids := h.sim.Seeded().IDs
	m, err := officernd.Create[officernd.Member](ctx, h.admin, "members", map[string]any{
		"name": name, "email": email, "location": ids["location:"+location],
	})
	if err != nil {
		t.Fatalf("create member: %v", err)
	}
	start := h.clock.Now().UTC().AddDate(0, 0, -10).Format("2006-01-02")
	ms, err := officernd.Create[officernd.Membership](ctx, h.admin, "memberships", map[string]any{
		"name": plan, "isPersonal": true, "member": m.ID, "plan": ids["plan:"+plan],
		"location": ids["location:"+location], "startDate": start + "T00:00:00.000Z",
	})
	if err != nil {
		t.Fatalf("create membership: %v", err)
	}
	return m, ms
}

func (h *harness) allowed(q string) bool {
	ex, err := h.app.Explain(q, "")
	return err == nil && ex.Decision.Allowed
}

func (h *harness) auditLen(t *testing.T) int {
	t.Helper()
	es, err := h.app.Store().AuditLog(0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func (h *harness) waitWebhookRegistered() {
	h.t.Helper()
	waitFor(h.t, 10*time.Second, "webhook registration", func() bool { return h.app.hooks.Registration().State == "registered" })
}

// TestWebhookPath drives changes through the simulator's API and checks
// that the webhook alone (the poll interval is an hour) brings them in.
func TestWebhookPath(t *testing.T) {
	h := newHarness(t, harnessOpts{seed: true, webhooks: true})
	h.start()
	h.waitImport(30 * time.Second)
	h.waitWebhookRegistered()
	pollsBefore := h.app.syncer.Status().LastRun

	m, ms := createMember(t, h, "Hedwig Kiesler", "hedwig.kiesler@example.com", "Hot Desk", "Downtown")
	took := waitFor(t, 3*time.Second, "new member allowed", func() bool { return h.allowed(m.Email) })
	t.Logf("member + Hot Desk membership created → explain allowed after %s", took)
	if took > time.Second {
		t.Errorf("allowed after %s, want within 1s", took)
	}
	ex, _ := h.app.Explain(m.Email, "")
	if ex.Decision.Group != "standard" || ex.Account == nil || ex.Account.Username != m.Email {
		t.Fatalf("decision %+v account %+v", ex.Decision, ex.Account)
	}

	// End the membership: yesterday was its last day.
	yesterday := h.clock.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02")
	if _, err := officernd.Update[officernd.Membership](context.Background(), h.admin, "memberships", ms.ID, map[string]any{
		"endDate": yesterday + "T00:00:00.000Z", "type": "fixed",
	}); err != nil {
		t.Fatalf("end membership: %v", err)
	}
	took = waitFor(t, 3*time.Second, "ended member denied", func() bool { return !h.allowed(m.Email) })
	t.Logf("membership ended → explain denied after %s", took)
	if took > time.Second {
		t.Errorf("denied after %s, want within 1s", took)
	}
	ex, _ = h.app.Explain(m.Email, "")
	if ex.Decision.Deny != model.DenyEnded || ex.Account == nil || !ex.Account.Disabled {
		t.Fatalf("after end: deny %q account %+v", ex.Decision.Deny, ex.Account)
	}
	if last := h.app.syncer.Status().LastRun; last != nil && pollsBefore != nil && last.Start != pollsBefore.Start {
		t.Fatalf("a poll ran during the test (%s); the webhook path was not tested alone", last.Kind)
	}
}

// post delivers body to the daemon's webhook endpoint signed with secret.
func post(t *testing.T, h *harness, body []byte, secret string, at time.Time) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.hookURL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("officernd-signature", officernd.Sign(secret, body, at))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// stamp is an event's createdAt, s seconds after the harness clock's now.
func stamp(h *harness, s int) string {
	return h.clock.Now().UTC().Add(time.Duration(s) * time.Second).Format("2006-01-02T15:04:05.000Z")
}

func TestWebhookForgedReplayedOutOfOrder(t *testing.T) {
	h := newHarness(t, harnessOpts{seed: true, webhooks: true})
	h.start()
	h.waitImport(30 * time.Second)
	h.waitWebhookRegistered()
	secret := h.app.hooks.Secret()
	ids := h.sim.Seeded().IDs
	ada := ids["member:hotdesk-downtown"]
	adaMS := ids["membership:hotdesk-downtown"]
	if !h.allowed(ada) {
		t.Fatal("seeded Hot Desk member should be allowed")
	}

	// A forged delivery claiming Ada's membership was removed.
	forged := []byte(fmt.Sprintf(`{"event":"aaaaaaaaaaaaaaaaaaaaaaa1","eventType":"membership.removed","data":{"object":{"_id":%q,"member":%q}},"createdAt":%q}`, adaMS, ada, stamp(h, 0)))
	before := h.auditLen(t)
	if resp := post(t, h, forged, "not-the-secret", h.clock.Now()); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged signature: status %d, want 401", resp.StatusCode)
	}
	// A correctly signed but stale delivery (outside the tolerance).
	if resp := post(t, h, forged, secret, h.clock.Now().Add(-time.Hour)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("stale signature: status %d, want 401", resp.StatusCode)
	}
	time.Sleep(200 * time.Millisecond)
	if !h.allowed(ada) || h.auditLen(t) != before {
		t.Fatal("a rejected delivery changed state")
	}

	// Replay: a genuine event delivered twice is applied once; the second
	// answer says duplicate and nothing changes.
	ctx := context.Background()
	m, ms := createMember(t, h, "Replay Person", "replay.person@example.com", "Hot Desk", "Uptown")
	waitFor(t, 3*time.Second, "member allowed", func() bool { return h.allowed(m.Email) })
	ev := []byte(fmt.Sprintf(`{"event":"bbbbbbbbbbbbbbbbbbbbbbb2","eventType":"membership.updated","data":{"object":{"_id":%q,"member":%q}},"createdAt":%q}`, ms.ID, m.ID, stamp(h, 0)))
	if resp := post(t, h, ev, secret, h.clock.Now()); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first delivery: %d, want 202", resp.StatusCode)
	}
	waitFor(t, 2*time.Second, "event applied", func() bool { return h.app.syncer.Status().WebhookStats.Applied > 0 })
	before = h.auditLen(t)
	if resp := post(t, h, ev, secret, h.clock.Now()); resp.StatusCode != http.StatusOK {
		t.Fatalf("replayed delivery: %d, want 200 (duplicate)", resp.StatusCode)
	}
	if st := h.app.syncer.Status().WebhookStats; st.Duplicate < 1 {
		t.Fatalf("duplicate not counted: %+v", st)
	}
	if h.auditLen(t) != before || !h.allowed(m.Email) {
		t.Fatal("replayed event changed state")
	}

	// Out of order: the membership ends in OfficeRnD, then the deliveries
	// arrive newest first with an old "created" last. Events are hints and
	// the entity is re-read, so the end state is OfficeRnD's: denied.
	h.sim.SetFaults(simDrop())
	yesterday := h.clock.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02")
	if _, err := officernd.Update[officernd.Membership](ctx, h.admin, "memberships", ms.ID, map[string]any{"endDate": yesterday + "T00:00:00.000Z", "type": "fixed"}); err != nil {
		t.Fatal(err)
	}
	updated := []byte(fmt.Sprintf(`{"event":"ccccccccccccccccccccccc3","eventType":"membership.updated","data":{"object":{"_id":%q,"member":%q,"endDate":"%sT00:00:00.000Z"},"previousAttributes":{}},"createdAt":%q}`, ms.ID, m.ID, yesterday, stamp(h, 2)))
	created := []byte(fmt.Sprintf(`{"event":"ddddddddddddddddddddddd4","eventType":"membership.created","data":{"object":{"_id":%q,"member":%q,"calculatedStatus":"active"}},"createdAt":%q}`, ms.ID, m.ID, stamp(h, 1)))
	for _, b := range [][]byte{updated, created} {
		if resp := post(t, h, b, secret, h.clock.Now()); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("delivery: %d", resp.StatusCode)
		}
	}
	waitFor(t, 3*time.Second, "out-of-order events settle on denied", func() bool { return !h.allowed(m.Email) })
	time.Sleep(300 * time.Millisecond) // let the late "created" finish too
	if h.allowed(m.Email) {
		t.Fatal("the older event re-enabled an ended membership")
	}
}
