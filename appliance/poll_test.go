package appliance

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/officernd"
	"github.com/deskgate/deskgate/appliance/officernd/officerndsim"
	"github.com/deskgate/deskgate/appliance/store"
)

// TestPollRepairsLostWebhook: with deliveries dropped, a change appears
// after one poll, and only then.
func TestPollRepairsLostWebhook(t *testing.T) {
	h := newHarness(t, harnessOpts{seed: true, webhooks: true})
	h.start()
	h.waitImport(30 * time.Second)
	h.waitWebhookRegistered()
	h.sim.SetFaults(officerndsim.Faults{DropWebhooks: true})

	m, ms := createMember(t, h, "Lost Webhook", "lost.webhook@example.com", "Dedicated Desk", "Uptown")
	time.Sleep(300 * time.Millisecond)
	if h.allowed(m.Email) {
		t.Fatal("member known before any poll although webhooks were dropped")
	}
	if st := h.sim.Stats(); st.WebhooksDropped == 0 {
		t.Fatalf("simulator dropped no webhook: %+v", st)
	}
	rl, err := h.app.syncer.Poll(context.Background())
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	if !h.allowed(m.Email) {
		t.Fatalf("member not allowed after one poll (run %+v)", rl)
	}
	t.Logf("poll: %d API calls, fetched %d, changed %d, full scans %v", rl.APICalls, rl.Fetched, rl.Changed, rl.FullScans)

	// A deletion in OfficeRnD with the webhook lost: the next poll of a
	// resource that is listed whole, or the full pass, removes it.
	if err := officernd.Delete(context.Background(), h.admin, "memberships", ms.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.app.syncer.FullPass(context.Background(), "full"); err != nil {
		t.Fatal(err)
	}
	ex, _ := h.app.Explain(m.Email, "")
	if ex.Decision.Allowed || ex.Account == nil || !ex.Account.Disabled {
		t.Fatalf("after the membership was deleted: %+v %+v", ex.Decision, ex.Account)
	}
}

// TestImportUnderFaults: rate limiting and 500s slow the import down but do
// not fail it or duplicate anything.
func TestImportUnderFaults(t *testing.T) {
	clean := newHarness(t, harnessOpts{seed: true, extra: 300})
	clean.start()
	clean.waitImport(60 * time.Second)
	cleanCounts := counts(t, clean.app.Store())

	h := newHarness(t, harnessOpts{seed: true, extra: 300})
	h.sim.SetFaults(officerndsim.Faults{RateLimitPerMinute: 20, Fail500Every: 4})
	h.start()
	h.waitImport(120 * time.Second)
	st := h.sim.Stats()
	cs := h.app.api.Stats()
	if cs.RateLimitWaits == 0 || st.Failed == 0 || cs.Retries == 0 {
		t.Fatalf("faults not exercised: sim %+v client %+v", st, cs)
	}
	t.Logf("import under faults: %d requests, %d throttled (429), %d failed (500); client: %d retries, %d rate-limit waits, %s waited (simulated)",
		st.Requests, st.Throttled, st.Failed, cs.Retries, cs.RateLimitWaits, time.Duration(h.slept.Load()))
	got := counts(t, h.app.Store())
	for _, k := range []string{"member", "company", "membership", "plan", "location", "resource", "booking", "visitor", "pass", "account"} {
		if v := cleanCounts[k]; got[k] != v || v == 0 {
			t.Errorf("%s: %d after a faulty import, %d after a clean one", k, got[k], v)
		}
	}
	if err := h.app.Store().Check(); err != nil {
		t.Fatal(err)
	}
	// Exactly one welcome email per account: deliver everything to the
	// mailbox folder and count the files (one per outbox id).
	if err := h.app.sender.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(h.dir, "mailbox", "*.eml"))
	welcome := 0
	for _, f := range files {
		if strings.Contains(readFile(t, f), "Subject: Welcome") {
			welcome++
		}
	}
	if n, _ := h.app.Store().OutboxLen(); n != 0 || welcome != got["account"] {
		t.Errorf("%d welcome emails delivered, %d emails still queued, for %d accounts", welcome, n, got["account"])
	}
}

func counts(t *testing.T, st *store.Store) map[string]int {
	t.Helper()
	var c map[string]int
	if err := st.View(func(tx *store.Tx) error { var err error; c, err = tx.Counts(); return err }); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestOfflineRestart: with OfficeRnD down and the daemon restarted, cached
// decisions are unchanged, and a membership ending today still ends at
// local midnight.
func TestOfflineRestart(t *testing.T) {
	h := newHarness(t, harnessOpts{seed: true})
	h.start()
	h.waitImport(30 * time.Second)
	ids := h.sim.Seeded().IDs
	// Sophie's fixed-term membership: make it end today (local date).
	loc, _ := time.LoadLocation("America/New_York")
	today := h.clock.Now().In(loc).Format("2006-01-02")
	if _, err := officernd.Update[officernd.Membership](context.Background(), h.admin, "memberships", ids["membership:fixed-term"],
		map[string]any{"endDate": today + "T00:00:00.000Z"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.app.syncer.FullPass(context.Background(), "full"); err != nil {
		t.Fatal(err)
	}
	before := map[string]model.Decision{}
	for _, sm := range h.sim.Seeded().Members {
		ex, err := h.app.Explain(sm.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		before[sm.ID] = ex.Decision
	}
	if !before[ids["member:fixed-term"]].Allowed {
		t.Fatal("membership ending today should still be allowed today")
	}

	h.stop()
	h.sim.SetFaults(officerndsim.Faults{Down: true})
	h.start()
	time.Sleep(300 * time.Millisecond) // the import is done; a poll would fail, none is due
	for _, sm := range h.sim.Seeded().Members {
		ex, err := h.app.Explain(sm.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		b := before[sm.ID]
		if ex.Decision.Allowed != b.Allowed || ex.Decision.Group != b.Group || ex.Decision.Deny != b.Deny {
			t.Errorf("%s: offline decision %v/%s/%s differs from online %v/%s/%s", sm.Role, ex.Decision.Allowed, ex.Decision.Group, ex.Decision.Deny, b.Allowed, b.Group, b.Deny)
		}
	}
	// The sync notices OfficeRnD is down, and that changes nothing.
	if _, err := h.app.syncer.Poll(context.Background()); err == nil {
		t.Fatal("poll succeeded although OfficeRnD is down")
	}
	if !h.allowed(ids["member:fixed-term"]) {
		t.Fatal("a failed poll denied a member")
	}
	// Cross local midnight: the membership that ends today ends.
	midnight := time.Date(h.clock.Now().In(loc).Year(), h.clock.Now().In(loc).Month(), h.clock.Now().In(loc).Day()+1, 0, 0, 1, 0, loc)
	h.clock.Jump(midnight.Sub(h.clock.Now()))
	ex, _ := h.app.Explain(ids["member:fixed-term"], "")
	if ex.Decision.Allowed || ex.Decision.Deny != model.DenyEnded {
		t.Fatalf("after local midnight: %+v", ex.Decision)
	}
	// The account is disabled by the schedule once it looks (every minute
	// at most); force the look now instead of waiting.
	h.app.syncer.ReconcileAll("test", "clock moved")
	ex, _ = h.app.Explain(ids["member:fixed-term"], "")
	if ex.Account == nil || !ex.Account.Disabled {
		t.Fatalf("account not disabled after the end date: %+v", ex.Account)
	}
	// Everyone else allowed before is still allowed (their memberships are open-ended).
	for _, sm := range h.sim.Seeded().Members {
		if sm.Role == "fixed-term" || sm.Role == "daypass-valid" {
			continue
		}
		if b := before[sm.ID]; b.Allowed && !h.allowed(sm.ID) {
			t.Errorf("%s lost access offline", sm.Role)
		}
	}
}
