package appliance

import (
	"context"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/officernd"
	"github.com/deskgate/deskgate/appliance/officernd/officerndsim"
)

// TestQuietPollAndLostMembershipWebhooks: GET /memberships rejects
// modifiedAt (the simulator's default, as the real service), so the poll
// must not list every membership. A quiet poll of a 1,000-member space
// makes at most 10 calls; with webhooks dropped, a membership that ends or
// is deleted (OfficeRnD re-stamps the member) is picked up by the next
// poll, and a membership change that leaves the member alone by the next
// full pass (sync.full_every).
func TestQuietPollAndLostMembershipWebhooks(t *testing.T) {
	h := newHarness(t, harnessOpts{seed: true, extra: 1000, webhooks: true, noWelcome: true})
	h.start()
	h.waitImport(60 * time.Second)
	h.waitWebhookRegistered()
	ctx := context.Background()
	// poll runs one poll and checks it made at most max API calls.
	poll := func(what string, max int) {
		t.Helper()
		h.clock.Jump(time.Minute)
		h.sim.ResetStats()
		rl, err := h.app.syncer.Poll(ctx)
		if err != nil {
			t.Fatalf("%s: poll: %v", what, err)
		}
		st := h.sim.Stats()
		t.Logf("%s: %d API calls %v, fetched %d, changed %d, scans %v", what, st.Requests, st.Paths, rl.Fetched, rl.Changed, rl.FullScans)
		if st.Requests > max {
			t.Errorf("%s: %d API calls, want <= %d", what, st.Requests, max)
		}
	}
	poll("settle", 12) // learns that /memberships rejects modifiedAt
	poll("quiet", 10)
	if n := h.sim.Stats().Paths["GET /memberships"]; n != 0 {
		t.Errorf("quiet poll listed memberships (%d calls)", n)
	}

	h.sim.SetFaults(officerndsim.Faults{DropWebhooks: true})
	m, ms := createMember(t, h, "Lost Hooks", "lost.hooks@example.com", "Hot Desk", "Downtown")
	poll("new member and membership", 10)
	if !h.allowed(m.Email) {
		t.Fatal("new member not allowed after the poll")
	}

	// A plan change leaves the member record alone: the poll cannot see
	// it without its webhook; the full pass does.
	ids := h.sim.Seeded().IDs
	if _, err := h.sim.Update("memberships", ms.ID, map[string]any{"plan": ids["plan:"+officerndsim.PlanDedicatedDesk]}); err != nil {
		t.Fatal(err)
	}
	poll("plan change", 10)
	ex, _ := h.app.Explain(m.Email, "")
	t.Logf("after the poll the plan change is %v (group %q)", map[bool]string{true: "seen", false: "not yet seen"}[ex.Decision.Group == "premium"], ex.Decision.Group)
	if _, err := h.app.syncer.FullPass(ctx, "full"); err != nil {
		t.Fatal(err)
	}
	if ex, _ := h.app.Explain(m.Email, ""); ex.Decision.Group != "premium" {
		t.Fatalf("plan change not picked up by the full pass: group %q", ex.Decision.Group)
	}

	// Ending the membership re-stamps the member (status former): the
	// next poll re-reads that member's memberships.
	yesterday := h.clock.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02")
	if _, err := h.sim.Update("memberships", ms.ID, map[string]any{"endDate": yesterday + "T00:00:00.000Z", "type": "fixed"}); err != nil {
		t.Fatal(err)
	}
	if !h.allowed(m.Email) {
		t.Fatal("member denied before any poll although webhooks were dropped")
	}
	poll("membership ended", 10)
	if h.allowed(m.Email) {
		t.Fatal("ended membership not picked up by the next poll")
	}

	// A second member whose membership is deleted: the poll removes it.
	m2, ms2 := createMember(t, h, "Lost Delete", "lost.delete@example.com", "Hot Desk", "Uptown")
	poll("second member", 10)
	if !h.allowed(m2.Email) {
		t.Fatal("second member not allowed")
	}
	if err := officernd.Delete(ctx, h.admin, "memberships", ms2.ID); err != nil {
		t.Fatal(err)
	}
	// Deleting re-stamps no member here; the total drops, so the poll
	// lists memberships whole (21 pages) once and sweeps.
	poll("membership deleted", 40)
	if h.allowed(m2.Email) {
		t.Fatal("deleted membership not removed by the next poll")
	}
}
