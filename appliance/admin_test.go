package appliance

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/creds"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

// TestLocalAPI exercises the CLI's endpoints over the daemon's real unix
// socket and the metrics endpoint.
func TestLocalAPI(t *testing.T) {
	h := newHarness(t, harnessOpts{seed: true})
	h.start()
	h.waitImport(30 * time.Second)
	c := admin.Dial(h.app.Config().Admin.Socket)
	ctx := context.Background()
	waitFor(t, 5*time.Second, "admin socket", func() bool { return c.Get(ctx, "/v1/status", nil, &admin.Status{}) == nil })

	var st admin.Status
	if err := c.Get(ctx, "/v1/status", nil, &st); err != nil {
		t.Fatal(err)
	}
	if !st.Sync.ImportDone || st.Counts["member"] != len(h.sim.Seeded().Members) || st.Groups["premium"] == 0 {
		t.Fatalf("status: %+v", st)
	}
	var ex admin.Explanation
	if err := c.Get(ctx, "/v1/explain", url.Values{"user": {"edsger.dijkstra@example.org"}}, &ex); err != nil {
		t.Fatal(err)
	}
	if ex.Decision.Allowed || ex.Decision.Deny != model.DenyEnded || len(ex.Decision.Reasons) == 0 {
		t.Fatalf("explain: %+v", ex.Decision)
	}
	if err := c.Get(ctx, "/v1/explain", url.Values{"user": {"nobody@example.com"}}, &ex); err == nil || !strings.Contains(err.Error(), "no member") {
		t.Fatalf("unknown user: %v", err)
	}
	var rows []admin.MemberRow
	if err := c.Get(ctx, "/v1/members", url.Values{"q": {"lovelace"}}, &rows); err != nil || len(rows) != 1 || !rows[0].Allowed {
		t.Fatalf("members: %v %+v", err, rows)
	}
	var checks []admin.Check
	if err := c.Get(ctx, "/v1/doctor", nil, &checks); err != nil {
		t.Fatal(err)
	}
	names := map[string]admin.Check{}
	for _, ch := range checks {
		names[ch.Name] = ch
	}
	for _, n := range []string{"officernd credentials", "officernd scopes", "officernd organization", "sync", "store", "member decision"} {
		if ch, ok := names[n]; !ok || !ch.OK {
			t.Errorf("doctor %q: %+v", n, ch)
		}
	}
	var rl map[string]any
	if err := c.Post(ctx, "/v1/sync", nil, &rl); err != nil || rl["kind"] != "poll" {
		t.Fatalf("sync now: %v %v", err, rl)
	}

	var plan map[string]string
	if err := c.Get(ctx, "/v1/net/plan", nil, &plan); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan["mode"], "plan only") || !strings.Contains(plan["plan"], "downtown-secure") || !strings.Contains(plan["plan"], "10.100.0.1/22") {
		t.Fatalf("net plan: %v", plan)
	}

	// /metrics over the daemon's TCP listener (open without the token).
	resp, err := http.Get("http://" + h.app.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"deskgate_sync_lag_seconds", `deskgate_accounts{group="premium"}`, "deskgate_sync_runs_total", "deskgate_officernd_api_requests"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("metrics lack %s", m)
		}
	}
}

// TestDoctorReportsOfficeRnDDown: with OfficeRnD unreachable, doctor names
// the failing check and the fix.
func TestDoctorReportsOfficeRnDDown(t *testing.T) {
	h := newHarness(t, harnessOpts{seed: true})
	h.start()
	h.waitImport(30 * time.Second)
	h.sim.SetFaults(simDown())
	checks := h.app.Doctor(context.Background())
	var found bool
	for _, c := range checks {
		if c.Name == "officernd reachable" && !c.OK && c.Fix != "" {
			found = true
		}
	}
	if !found {
		t.Fatalf("doctor did not report OfficeRnD down: %+v", checks)
	}
}

// TestOnboardingPage: password policy "member" emails a single-use link;
// the page sets the password (stored only as an NT hash) and the link then
// stops working.
func TestOnboardingPage(t *testing.T) {
	h := newHarness(t, harnessOpts{seed: true, passwordPol: "member"})
	h.start()
	h.waitImport(30 * time.Second)
	if err := h.app.sender.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The welcome email in the mailbox carries the link.
	files, _ := filepath.Glob(h.dir + "/mailbox/*.eml")
	var link string
	for _, f := range files {
		b := readFile(t, f)
		if strings.Contains(b, "ada.lovelace@example.com") {
			link = regexp.MustCompile(`http://[^\s"<>]+/onboard\?t=[A-Za-z0-9_=\-]+`).FindString(qpDecode(b))
		}
	}
	if link == "" {
		t.Fatal("no onboarding link in Ada's welcome email")
	}
	link = strings.NewReplacer("\r", "", "\n", "").Replace(link)
	ex, _ := h.app.Explain("ada.lovelace@example.com", "")
	if ex.Account == nil || ex.Account.PasswordSet {
		t.Fatalf("account before onboarding: %+v", ex.Account)
	}
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `name="password"`) {
		t.Fatalf("onboarding page: %d %s", resp.StatusCode, page)
	}
	u, _ := url.Parse(link)
	tok := u.Query().Get("t")
	post := func(pw, pw2 string) (int, string) {
		resp, err := http.PostForm("http://"+u.Host+"/onboard", url.Values{"t": {tok}, "password": {pw}, "password2": {pw2}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	if code, body := post("short", "short"); code != 422 || !strings.Contains(body, "at least 10") {
		t.Fatalf("weak password: %d", code)
	}
	if code, _ := post("Blue-Harbour-42", "Blue-Harbour-43"); code != 422 {
		t.Fatalf("mismatch accepted: %d", code)
	}
	if code, body := post("Blue-Harbour-42", "Blue-Harbour-42"); code != 200 || !strings.Contains(body, "password is set") {
		t.Fatalf("set password: %d %s", code, body)
	}
	var acct model.Account
	_ = h.app.Store().View(func(tx *store.Tx) error { var e error; acct, e = tx.GetAccount("ada.lovelace@example.com"); return e })
	if !creds.VerifyPassword(acct.NTHash, "Blue-Harbour-42") || len(acct.OnboardTokenHash) != 0 {
		t.Fatalf("account after onboarding: %+v", acct)
	}
	if code, _ := post("Other-Harbour-42", "Other-Harbour-42"); code != 404 {
		t.Fatalf("link reused: %d", code)
	}
}
