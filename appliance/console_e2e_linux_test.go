package appliance

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
	"github.com/deskgate/deskgate/internal/cdp"
)

// TestConsoleBrowser is issue 13's acceptance test: headless Chromium (the
// repo's own cdp driver) logs in to the real daemon with the seeded demo
// space, finds the member whose membership ended yesterday and reads
// "denied: membership ended" with the date, creates an ad-hoc guest code
// and uses it on the captive portal, and disconnects a live RADIUS session
// (the test NAS receives the Disconnect-Request). Every page is
// screenshotted in English and German at phone (390 px) and desktop
// (1280 px) widths and checked not blank, into
// $DESKGATE_TEST_ARTIFACTS/console (or a temp dir).
func TestConsoleBrowser(t *testing.T) {
	bin := cdp.ChromiumPath()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but chromium is not installed (scripts/install-test-deps.sh)")
		}
		t.Skip("chromium not installed (apt-get install chromium)")
	}
	outDir := t.TempDir()
	if d := os.Getenv("DESKGATE_TEST_ARTIFACTS"); d != "" {
		outDir = filepath.Join(d, "console")
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	nas := startTestNAS(t)
	portalAddr := freePort(t)
	h := newHarness(t, harnessOpts{seed: true, extraYAML: radiusYAML(nas.port()) +
		fmt.Sprintf("portal: {enabled: true, listen: %q, public_url: \"http://%s\", default_location: Downtown}\nguests: {guest_network: downtown-guest}\n", portalAddr, portalAddr)})
	app := h.start()
	h.waitImport(30 * time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()

	// An admin login, made the way deskgate admin add makes it.
	sock := admin.Dial(app.Config().Admin.Socket)
	if err := sock.PostJSON(ctx, "/v1/operators", map[string]string{"name": "frontdesk", "role": "admin", "password": consolePassword}, nil); err != nil {
		t.Fatal(err)
	}

	// Ada is online: the access point reported her session.
	ada := h.sim.Seeded().IDs["member:hotdesk-downtown"]
	liveSession(t, app, "ada.lovelace@example.com", "AA-BB-CC-00-11-22")

	page := cdp.Start(ctx, t, cdp.Options{Bin: bin})
	page.Call("Page.enable", nil)
	page.Call("Network.enable", nil)
	setWidth := func(w int) {
		page.Call("Emulation.setDeviceMetricsOverride", map[string]any{"width": w, "height": 900, "deviceScaleFactor": 1, "mobile": w < 600})
	}
	setWidth(1280)
	page.Call("Network.setExtraHTTPHeaders", map[string]any{"headers": map[string]string{"Accept-Language": "en-US,en;q=0.9"}})
	base := "http://" + app.AdminAddr()
	t.Logf("daemon and chromium up after %v", time.Since(start).Round(time.Millisecond))

	// 1. Log in with the keyboard: the login form is the first stop.
	page.Navigate(base + "/console/")
	d := page.DOM()
	d.Check(t, "login", cdp.Want{Path: "/console/login", Text: "Operator console", Form: "login-form", Lang: "en"}, true)
	page.ClickNoWait("#name")
	page.InsertText("frontdesk")
	page.Key("Tab", "Tab", 9, "")
	page.InsertText(consolePassword)
	if err := page.MarkAndWait(func() error { page.Key("Enter", "Enter", 13, "\r"); return nil }); err != nil {
		t.Fatal(err)
	}
	page.DOM().Check(t, "dashboard", cdp.Want{Path: "/console/dashboard", Text: "RADIUS logins"}, true)

	// 2. The member whose membership ended yesterday.
	page.Navigate(base + "/console/members?q=dijkstra")
	page.DOM().Check(t, "search", cdp.Want{Text: "denied: membership ended"}, true)
	page.Click("#members a")
	d = page.DOM()
	// Yesterday in the membership's location's time zone, by the test clock.
	var end model.Date
	tz := time.UTC
	_ = app.Store().View(func(tx *store.Tx) error {
		ms, err := tx.MembershipsOfMember(h.sim.Seeded().IDs["member:expired"])
		if err != nil || len(ms) != 1 {
			return err
		}
		end = ms[0].EndDate
		if l, err := tx.GetLocation(ms[0].Location); err == nil && l.Timezone != "" {
			if z, err := time.LoadLocation(l.Timezone); err == nil {
				tz = z
			}
		}
		return nil
	})
	if yesterday := h.clock.Now().In(tz).AddDate(0, 0, -1).Format("2006-01-02"); string(end) != yesterday {
		t.Fatalf("seeded membership ends %q, not yesterday (%s in %s)", end, yesterday, tz)
	}
	d.Check(t, "member", cdp.Want{Text: "denied: membership ended"}, true)
	if !strings.Contains(d.Text, "ended "+string(end)) {
		t.Fatalf("member page lacks the end date %s:\n%s", end, d.Text)
	}

	// 3. An ad-hoc code for a walk-in, used on the captive portal.
	page.Navigate(base + "/console/guests")
	page.ClickNoWait("#name")
	page.InsertText("Walk In")
	page.Call("Runtime.evaluate", map[string]any{"expression": `document.getElementById("duration").value = ""; document.getElementById("devices").value = ""`})
	page.ClickNoWait("#duration")
	page.InsertText("3h")
	page.ClickNoWait("#devices")
	page.InsertText("1")
	page.Click("#code-form button[type=submit]")
	var code string
	if err := page.Eval(`document.getElementById("new-code").textContent.trim()`, &code); err != nil || !codeRE.MatchString(code) {
		t.Fatalf("no code on the result page (%v): %q", err, page.DOM().Text)
	}
	page.Screenshot(filepath.Join(outDir, "code-print-en-1280.png"))
	waitFor(t, 5*time.Second, "portal up", func() bool { _, err := http.Get("http://" + portalAddr + "/generate_204"); return err == nil })
	page.Navigate("http://" + portalAddr + "/")
	page.SubmitCode(code)
	page.DOM().Check(t, "portal status", cdp.Want{Path: "/status", Text: "Time left"}, true)

	// 4. Disconnect Ada's live session from her page.
	page.Navigate(base + "/console/members/" + ada)
	page.DOM().Check(t, "ada", cdp.Want{Text: "aa:bb:cc:00:11:22"}, true)
	sent := time.Now()
	page.Click(".disconnect-form button")
	waitFor(t, 3*time.Second, "Disconnect-Request at the NAS", func() bool { return nas.got.Load() != 0 })
	if u, _ := nas.user.Load().(string); u != "ada.lovelace@example.com" || !nas.signed.Load() {
		t.Fatalf("Disconnect-Request for %q (signed %v)", u, nas.signed.Load())
	}
	page.DOM().Check(t, "after disconnect", cdp.Want{Text: "Disconnect sent"}, true)
	t.Logf("disconnect: click → Disconnect-Request at the NAS in %v", time.Duration(nas.got.Load()-sent.UnixNano()).Round(time.Millisecond))
	es, _ := app.Store().AuditOf(ada, 20)
	var audited bool
	for _, e := range es {
		audited = audited || (e.Action == "console.disconnect" && e.Actor == "console:frontdesk")
	}
	if !audited {
		t.Errorf("disconnect not in Ada's audit trail with its actor: %+v", es)
	}

	// 5. Every page, both languages, phone and desktop.
	pages := map[string]string{
		"dashboard": "/console/dashboard", "members": "/console/members?q=a", "member": "/console/members/" + ada,
		"guests": "/console/guests", "network": "/console/network", "audit": "/console/audit",
		"portal-preview": "/console/network/portal?location=" + h.sim.Seeded().IDs["location:Downtown"],
	}
	shots := 0
	for _, lang := range []string{"en", "de"} {
		for _, w := range []int{390, 1280} {
			setWidth(w)
			for name, path := range pages {
				sep := "?"
				if strings.Contains(path, "?") {
					sep = "&"
				}
				page.Navigate(base + path + sep + "lang=" + lang)
				d := page.DOM()
				d.Check(t, name+" "+lang, cdp.Want{Lang: lang}, false)
				var wide []string
				if err := page.Eval(`[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1 && !e.closest(".scroll")).map(e => e.tagName + "#" + e.id + "." + e.className)
					.concat(document.documentElement.scrollWidth > document.documentElement.clientWidth + 1 ? ["page scrolls sideways"] : [])`, &wide); err != nil || len(wide) > 0 {
					t.Errorf("%s (%s, %d px) is wider than the screen (%v): %v", name, lang, w, err, wide)
				}
				page.Screenshot(filepath.Join(outDir, fmt.Sprintf("%s-%s-%d.png", name, lang, w)))
				shots++
			}
		}
	}
	// German really is German.
	page.Navigate(base + "/console/dashboard?lang=de")
	page.DOM().Check(t, "dashboard de", cdp.Want{Text: "RADIUS-Anmeldungen", Lang: "de"}, false)
	t.Logf("%d screenshots in %s; whole test %v", shots, outDir, time.Since(start).Round(time.Millisecond))
}

// liveSession reports an accounting Start for user from the downtown AP,
// echoing the Class of the Access-Accept as explain shows it.
func liveSession(t *testing.T, app *App, user, mac string) {
	t.Helper()
	waitFor(t, 5*time.Second, "radius listening", func() bool { a, b := app.radius.srv.Addrs(); return len(a) > 0 && len(b) > 0 })
	_, acct := app.radius.srv.Addrs()
	ex, err := app.Explain(user, "downtown-ap")
	if err != nil {
		t.Fatal(err)
	}
	var class string
	for _, l := range ex.Reply {
		if v, ok := strings.CutPrefix(l, "Class = "); ok {
			class = strings.Trim(v, `"`)
		}
	}
	if !strings.HasPrefix(class, "dg1;") {
		t.Fatalf("no Class in the reply: %v", ex.Reply)
	}
	req := radius.New(radius.CodeAccountingRequest, []byte(nasSecret))
	rfc2865.Class_Set(req, []byte(class))
	rfc2865.UserName_SetString(req, user)
	rfc2866.AcctStatusType_Set(req, rfc2866.AcctStatusType_Value_Start)
	rfc2866.AcctSessionID_SetString(req, "console-1")
	rfc2865.CallingStationID_SetString(req, mac)
	rfc2865.NASIdentifier_SetString(req, "downtown-ap")
	rfc2869.AcctInterimInterval_Set(req, 300)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if resp, err := radius.Exchange(ctx, req, acct[0].String()); err != nil || resp.Code != radius.CodeAccountingResponse {
		t.Fatalf("accounting start: %v %v", err, resp)
	}
	waitFor(t, 2*time.Second, "live session", func() bool { return len(app.radius.srv.Sessions("")) == 1 })
}
