package appliance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/notify/notifytest"
	"github.com/deskgate/deskgate/appliance/officernd"
)

// portalClient is a phone on the guest network: a cookie jar and the
// portal's forms.
type portalClient struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newPortalClient(t *testing.T, base string) *portalClient {
	jar, _ := cookiejar.New(nil)
	return &portalClient{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var (
	csrfRE  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	termsRE = regexp.MustCompile(`name="terms" value="([^"]*)"`)
)

// loginCode submits the code form the way a browser would and returns the
// status code and the page (following one redirect).
func (p *portalClient) loginCode(code string) (int, string) {
	p.t.Helper()
	resp, err := p.hc.Get(p.base + "/")
	if err != nil {
		p.t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRE.FindSubmatch(page)
	if m == nil {
		p.t.Fatalf("portal page has no CSRF token:\n%s", page)
	}
	form := url.Values{"csrf": {string(m[1])}, "code": {code}}
	if tm := termsRE.FindSubmatch(page); tm != nil {
		form.Set("terms", string(tm[1]))
	}
	resp, err = p.hc.PostForm(p.base+"/login/code", form)
	if err != nil {
		p.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusSeeOther {
		loc := resp.Header.Get("Location")
		r2, err := p.hc.Get(p.base + strings.TrimPrefix(loc, p.base))
		if err != nil {
			p.t.Fatal(err)
		}
		body, _ = io.ReadAll(r2.Body)
		r2.Body.Close()
	}
	return resp.StatusCode, string(body)
}

var codeRE = regexp.MustCompile(`\b[A-HJKMNP-Z2-9]{3}-[A-HJKMNP-Z2-9]{3}-[A-HJKMNP-Z2-9]{3}\b`)

// TestGuestCodesThroughDaemon: a booking with two visitors created through
// the simulator's API yields two codes delivered to a real SMTP server;
// a code works only inside its window; moving the booking moves the window;
// cancelling revokes the code and the live client.
func TestGuestCodesThroughDaemon(t *testing.T) {
	smtp := notifytest.Start(t)
	portalAddr := freePort(t)
	h := newHarness(t, harnessOpts{seed: true, webhooks: true, smtp: smtp.Addr,
		extraYAML: fmt.Sprintf("portal: {enabled: true, listen: %q, public_url: \"http://%s\", default_location: Downtown}\nguests: {guest_network: downtown-guest}\n", portalAddr, portalAddr)})
	app := h.start()
	h.waitImport(30 * time.Second)
	h.waitWebhookRegistered()
	ctx := context.Background()
	ids := h.sim.Seeded().IDs

	var visitors []string
	for _, n := range []string{"Lise Meitner", "Chien-Shiung Wu"} {
		v, err := officernd.Create[officernd.Visitor](ctx, h.admin, "visitors", map[string]any{
			"name": n, "email": strings.ToLower(strings.ReplaceAll(n, " ", ".")) + "@example.net", "member": ids["member:hotdesk-downtown"], "type": "preregistration"})
		if err != nil {
			t.Fatal(err)
		}
		visitors = append(visitors, v.ID)
	}
	start := h.clock.Now().Add(2 * time.Hour).Truncate(time.Minute)
	b, err := officernd.Create[officernd.Booking](ctx, h.admin, "bookings", map[string]any{
		"title": "Physics review", "resource": ids["resource:Boardroom"], "member": ids["member:hotdesk-downtown"],
		"start": start.UTC().Format(time.RFC3339), "end": start.Add(time.Hour).UTC().Format(time.RFC3339), "visitors": visitors})
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]string{} // recipient -> code
	waitFor(t, 10*time.Second, "two guest code emails", func() bool {
		for _, m := range smtp.Messages() {
			if strings.Contains(m.Subject, "guest code") && strings.HasSuffix(m.To[0], "@example.net") {
				if c := codeRE.FindString(qpDecode(string(m.Data))); c != "" {
					codes[m.To[0]] = c
				}
			}
		}
		return len(codes) == 2
	})
	if codes["lise.meitner@example.net"] == codes["chien-shiung.wu@example.net"] {
		t.Fatal("both visitors got the same code")
	}
	code := codes["lise.meitner@example.net"]
	waitFor(t, 5*time.Second, "portal up", func() bool { _, err := http.Get("http://" + portalAddr + "/generate_204"); return err == nil })
	phone := newPortalClient(t, "http://"+portalAddr)

	// Two hours before the meeting: not yet.
	if st, body := phone.loginCode(code); st == http.StatusSeeOther || !strings.Contains(strings.ToLower(body), "not valid yet") && !strings.Contains(strings.ToLower(body), "not yet") {
		t.Fatalf("code accepted two hours early (%d):\n%.400s", st, body)
	}
	// 10 minutes before: inside the 15-minute buffer.
	h.clock.Jump(start.Add(-10 * time.Minute).Sub(h.clock.Now()))
	st, body := phone.loginCode(code)
	if st != http.StatusSeeOther {
		t.Fatalf("code refused inside its window (%d):\n%.600s", st, body)
	}
	if len(app.guests.net.clients(h.clock.Now())) != 1 {
		t.Fatalf("client not on the allow-list after login")
	}

	// A daemon restart keeps the guest logged in: the allow-list is
	// restored and the portal still shows the session.
	h.stop()
	app = h.start()
	waitFor(t, 10*time.Second, "guest restored on the allow-list after restart", func() bool {
		return app.guests.net != nil && len(app.guests.net.clients(h.clock.Now())) == 1
	})
	waitFor(t, 5*time.Second, "portal up again", func() bool { _, err := http.Get("http://" + portalAddr + "/generate_204"); return err == nil })
	resp, err := http.Get("http://" + portalAddr + "/captive-portal/api")
	if err != nil {
		t.Fatal(err)
	}
	api, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(api), `"captive":false`) {
		t.Fatalf("after restart the guest is captive again: %s", api)
	}

	// The code is stored under a keyed hash whose key lives in its own
	// 0600 file in data_dir, kept the same across the restart: neither the
	// key nor the code's unkeyed SHA-256 is in the database.
	keyPath := filepath.Join(h.dir, "data", codeKeyFile)
	fi, err := os.Stat(keyPath)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 32 {
		t.Fatalf("guest code key file: %v %v", fi, err)
	}
	key := []byte(readFile(t, keyPath))
	norm := strings.ReplaceAll(code, "-", "")
	sum := sha256.Sum256([]byte(norm))
	dbs, _ := filepath.Glob(filepath.Join(h.dir, "data", "*.db"))
	if len(dbs) == 0 {
		t.Fatal("no database in data_dir")
	}
	for _, p := range dbs {
		db := []byte(readFile(t, p))
		if bytes.Contains(db, key) || bytes.Contains(db, []byte(hex.EncodeToString(sum[:]))) {
			t.Errorf("%s holds the guest code key or a code's unkeyed SHA-256", filepath.Base(p))
		}
	}

	// Move the meeting three hours later: the window moves and the live
	// client, now outside it, is revoked.
	newStart := start.Add(3 * time.Hour)
	if _, err := officernd.Update[officernd.Booking](ctx, h.admin, "bookings", b.ID, map[string]any{
		"start": newStart.UTC().Format(time.RFC3339), "end": newStart.Add(time.Hour).UTC().Format(time.RFC3339)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "moved booking revokes the client", func() bool { return len(app.guests.net.clients(h.clock.Now())) == 0 })
	other := newPortalClient(t, "http://"+portalAddr)
	if st, _ := other.loginCode(codes["chien-shiung.wu@example.net"]); st == http.StatusSeeOther {
		t.Fatal("code works outside its moved window")
	}
	h.clock.Jump(newStart.Add(-5 * time.Minute).Sub(h.clock.Now()))
	if st, body := other.loginCode(codes["chien-shiung.wu@example.net"]); st != http.StatusSeeOther {
		t.Fatalf("code refused inside its moved window (%d):\n%.600s", st, body)
	}

	// Cancel: the codes stop working and the live client is revoked.
	if _, err := officernd.Create[officernd.Booking](ctx, h.admin, "bookings/"+b.ID+"/cancel", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "cancelled booking revokes the client", func() bool { return len(app.guests.net.clients(h.clock.Now())) == 0 })
	if st, _ := newPortalClient(t, "http://"+portalAddr).loginCode(code); st == http.StatusSeeOther {
		t.Fatal("code of a cancelled booking still works")
	}
}

// TestGuestCodeKeyFile: the guest code key is created once (0600, 32
// random bytes) and read back unchanged; a malformed or world-readable key
// file is refused and left as it is.
func TestGuestCodeKeyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, codeKeyFile)
	k1, err := loadCodeKey(p)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 || len(k1) != 32 || bytes.Equal(k1, make([]byte, 32)) {
		t.Fatalf("created key: mode %v, %d bytes, err %v", fi.Mode(), len(k1), err)
	}
	if k2, err := loadCodeKey(p); err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second load: %v, same key %v", err, bytes.Equal(k1, k2))
	}
	if other, _ := loadCodeKey(filepath.Join(t.TempDir(), codeKeyFile)); bytes.Equal(other, k1) {
		t.Fatal("two boxes got the same key")
	}
	short := filepath.Join(dir, "short.key")
	if err := os.WriteFile(short, []byte("too short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadCodeKey(short); err == nil || !strings.Contains(err.Error(), "want 32") {
		t.Errorf("short key file: %v, want a clear error", err)
	}
	if got := readFile(t, short); got != "too short" {
		t.Errorf("short key file was replaced: %q", got)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadCodeKey(p); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Errorf("world-readable key file: %v, want a clear error", err)
	}
}

// TestDoctorPortalAPIOverHTTP: the RFC 8908 API announced over plain http
// is a warning with the fix; with TLS configured it is OK.
func TestDoctorPortalAPIOverHTTP(t *testing.T) {
	c, ok := portalAPICheck(true, "", "", "http://portal.guest.lan:8080")
	if !ok || c.OK || !c.Warn || !strings.Contains(c.Detail, "http://portal.guest.lan:8080/captive-portal/api") || !strings.Contains(c.Fix, "portal.listen_tls") {
		t.Fatalf("plain http portal: %+v", c)
	}
	if c, ok := portalAPICheck(true, ":8443", "/etc/deskgate/portal.pem", "http://portal.guest.lan:8080"); !ok || !c.OK {
		t.Fatalf("portal with TLS: %+v", c)
	}
	if _, ok := portalAPICheck(false, "", "", ""); ok {
		t.Fatal("a check for a disabled portal")
	}
	// Through the daemon: the demo-like config warns.
	portalAddr := freePort(t)
	h := newHarness(t, harnessOpts{seed: true,
		extraYAML: fmt.Sprintf("portal: {enabled: true, listen: %q, public_url: \"http://%s\", default_location: Downtown}\nguests: {guest_network: downtown-guest}\n", portalAddr, portalAddr)})
	h.start()
	h.waitImport(30 * time.Second)
	for _, c := range h.app.Doctor(context.Background()) {
		if c.Name == "captive portal api" {
			if !c.Warn {
				t.Fatalf("doctor: %+v", c)
			}
			return
		}
	}
	t.Fatal("doctor has no captive portal api check")
}
