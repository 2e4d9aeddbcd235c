package portal

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/internal/cdp"
)

// TestBrowser drives Debian's headless Chromium over the DevTools protocol
// through the portal on a phone-sized viewport: it loads the login page,
// types a wrong code and then a good one into the form, ticks the terms box
// and clicks the submit button (real input events, real form posts), lands
// on the status page, and logs out — in English and in German (chosen by
// Accept-Language). Screenshots of the login, error and status pages go to
// $DESKGATE_TEST_ARTIFACTS/portal-browser or the test's temp dir.
func TestBrowser(t *testing.T) {
	bin := cdp.ChromiumPath()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium not found (apt-get install chromium); required when CI=true")
		}
		t.Skip("chromium not found; apt-get install chromium (required when CI=true)")
	}
	outDir := t.TempDir()
	if d := os.Getenv("DESKGATE_TEST_ARTIFACTS"); d != "" {
		outDir = filepath.Join(d, "portal-browser")
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	ts := httptest.NewUnstartedServer(nil)
	clock := &fakeClock{t: time.Now()}
	backend := newFakeBackend(clock)
	netw := &MemNetwork{}
	srv, err := New(Config{
		PublicURL: "http://portal.deskgate.lan",
		Locations: map[string]Branding{"loc-berlin": {Name: "Deskgate Berlin", PrimaryColor: "#0f766e", TermsVersion: "v3",
			VenueInfoURL: "https://deskgate.example/berlin"}},
		DefaultLocation: "loc-berlin",
		Now:             clock.Now,
		RateLimit:       100, RateBurst: 200,
		OnboardURL: func(id string) string { return "/onboard?member=" + id },
	}, backend, netw, &StaticResolver{Derive: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	defer ts.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	// Every host name resolves to the test server, as netcfg's DNAT makes
	// every port-80 request of a captive client reach the portal.
	page := cdp.Start(ctx, t, cdp.Options{Bin: bin, Flags: []string{"--host-resolver-rules=MAP * " + ts.Listener.Addr().String()}})
	defer page.Close()

	page.Call("Page.enable", nil)
	page.Call("Network.enable", nil)
	page.Call("Emulation.setDeviceMetricsOverride", map[string]any{"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true})

	for _, lc := range []struct {
		lang, accept                         string
		loginText, errorText, statusText, ok string
		keyboard                             bool   // fill and submit with the keyboard only
		probe, online                        string // the OS probe the sign-in sheet starts from, its answer once online
	}{
		{"en", "en-US,en;q=0.9", "Access code", "This code is not valid", "Time left", "You are online", false,
			"http://captive.apple.com/hotspot-detect.html", "Success"},
		{"de", "de-DE,de;q=0.9,en;q=0.5", "Zugangscode", "Dieser Code ist ungültig", "Verbleibende Zeit", "Sie sind online", true,
			"http://www.msftconnecttest.com/connecttest.txt", "Microsoft Connect Test"},
	} {
		t.Run(lc.lang, func(t *testing.T) {
			page.T = t
			page.Call("Network.setExtraHTTPHeaders", map[string]any{"headers": map[string]string{"Accept-Language": lc.accept}})
			// Like a CNA sheet: open the probe URL, follow the redirect.
			page.Navigate(lc.probe)
			d := page.DOM()
			if d.Host != "portal.deskgate.lan" {
				t.Errorf("probe %s before login ended on host %q, want the portal", lc.probe, d.Host)
			}
			d.Check(t, "login", cdp.Want{Path: "/", Lang: lc.lang, Text: lc.loginText, Form: "code-form"}, false)
			page.Screenshot(filepath.Join(outDir, "login-"+lc.lang+".png"))

			submit := page.SubmitCode
			if lc.keyboard {
				submit = func(code string) { submitCodeKeyboard(page, code) }
			}
			submit("WRONG-CODE")
			d = page.DOM()
			d.Check(t, "error", cdp.Want{Path: "/login/code", Lang: lc.lang, Text: lc.errorText, Form: "code-form"}, false)
			page.Screenshot(filepath.Join(outDir, "error-"+lc.lang+".png"))
			if _, ok := netw.Allowed(macOf("127.0.0.1")); ok {
				t.Fatal("network allowed after a wrong code")
			}

			submit("GOOD-CODE")
			d = page.DOM()
			d.Check(t, "status", cdp.Want{Path: "/status", Lang: lc.lang, Text: lc.statusText, Form: "logout-form"}, false)
			if !strings.Contains(d.Text, lc.ok) {
				t.Errorf("status page lacks %q", lc.ok)
			}
			page.Screenshot(filepath.Join(outDir, "status-"+lc.lang+".png"))
			if _, ok := netw.Allowed(macOf("127.0.0.1")); !ok {
				t.Fatal("the browser's client was not allowed on the network")
			}
			// The OS re-probes and now sees the internet.
			page.Navigate(lc.probe)
			if d := page.DOM(); d.Host == "portal.deskgate.lan" || strings.TrimSpace(d.Text) != lc.online {
				t.Errorf("probe after login: host %q text %q, want %q", d.Host, d.Text, lc.online)
			}
			page.Navigate("http://portal.deskgate.lan/status")

			page.Click("#logout-form button")
			d = page.DOM()
			d.Check(t, "logged out", cdp.Want{Path: "/", Lang: lc.lang, Text: lc.loginText, Form: "code-form"}, false)
			if _, ok := netw.Allowed(macOf("127.0.0.1")); ok {
				t.Error("logout in the browser did not revoke the client")
			}
			if lc.keyboard {
				return
			}
			// A member opens the <details> (no script), signs in, and is
			// offered the secure network.
			page.ClickNoWait("details.member summary")
			page.ClickNoWait("#email")
			page.InsertText("ada@example.com")
			page.ClickNoWait("#password")
			page.InsertText("correct horse battery")
			page.ClickNoWait("#terms-member")
			page.Click("#member-form button[type=submit]")
			d = page.DOM()
			d.Check(t, "member status", cdp.Want{Path: "/status", Lang: lc.lang, Text: "Set up the secure network", Form: "logout-form"}, false)
			page.Screenshot(filepath.Join(outDir, "status-member-"+lc.lang+".png"))
			page.Click("#logout-form button")
		})
	}
	t.Logf("screenshots in %s", outDir)
}

// submitCodeKeyboard does what SubmitCode does with the keyboard alone:
// Tab to the field, type, Tab to the terms box, Space, Tab to the button,
// Enter.
func submitCodeKeyboard(p *cdp.Page, code string) {
	p.T.Helper()
	tabTo(p, "#code")
	p.InsertText(code)
	tabTo(p, "#terms-code")
	p.Key(" ", "Space", 32, " ")
	var checked bool
	if err := p.Eval(`document.getElementById("terms-code").checked`, &checked); err != nil || !checked {
		p.T.Fatalf("Space did not tick the terms box (%v)", err)
	}
	tabTo(p, "#code-form button[type=submit]")
	if err := p.MarkAndWait(func() error { p.Key("Enter", "Enter", 13, "\r"); return nil }); err != nil {
		p.T.Fatalf("Enter on the submit button: %v", err)
	}
}

// tabTo presses Tab until the element matching selector has the focus, and
// checks that the focus is visible (an outline).
func tabTo(p *cdp.Page, selector string) {
	p.T.Helper()
	for range 12 {
		var st struct {
			On      bool
			Outline string
		}
		js := fmt.Sprintf(`(() => { const a = document.activeElement; return {On: !!a && a.matches(%q),
			Outline: a ? getComputedStyle(a).outlineStyle : ""}; })()`, selector)
		if err := p.Eval(js, &st); err != nil {
			p.T.Fatal(err)
		}
		if st.On {
			if st.Outline == "none" || st.Outline == "" {
				p.T.Errorf("%s has the keyboard focus but no visible outline", selector)
			}
			return
		}
		p.Key("Tab", "Tab", 9, "")
	}
	p.T.Fatalf("Tab never reached %s", selector)
}
