package appliance

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/officernd"
)

var mppeOKRE = regexp.MustCompile(`MPPE keys OK: (\d+)\s+mismatch: (\d+)`)

// eapol runs eapol_test (the real wpa_supplicant EAP code) against the
// daemon's RADIUS server as the Downtown access point.
func eapol(t *testing.T, h *harness, addr, network string) (bool, string) {
	t.Helper()
	bin, err := exec.LookPath("eapol_test")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("eapol_test missing (apt-get install eapoltest)")
		}
		t.Skip("eapol_test not installed")
	}
	conf := filepath.Join(t.TempDir(), "eapol.conf")
	if err := os.WriteFile(conf, []byte("network={\n"+network+"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-c", conf, "-a", host, "-p", port, "-s", nasSecret, "-t", "10",
		"-N32:s:downtown-ap", "-N31:s:02-00-00-00-00-01")
	cmd.Env = h.peerEnv(t)
	out, _ := cmd.CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1]) == "SUCCESS", string(out)
}

// TestEAPThroughDaemon: PEAP-MSCHAPv2 and EAP-TTLS/PAP logins through the
// daemon's RADIUS server, with the server certificate checked against
// deskgate's CA and name and the MPPE keys checked by eapol_test; an ended
// membership fails.
func TestEAPThroughDaemon(t *testing.T) {
	nas := startTestNAS(t)
	h := newHarness(t, harnessOpts{seed: true, webhooks: true, extraYAML: radiusYAML(nas.port())})
	app := h.start()
	h.waitImport(30 * time.Second)
	waitFor(t, 5*time.Second, "radius listening", func() bool { a, _ := app.radius.srv.Addrs(); return len(a) > 0 })
	auth, _ := app.radius.srv.Addrs()
	ca := filepath.Join(app.Config().DataDir, "eap", "ca.pem")
	name := app.Config().RADIUS.EAP.ServerName
	ada := "ada.lovelace@example.com"
	pw := passwordFromMailbox(t, h, ada)
	peap := func(user, pass string) string {
		return fmt.Sprintf("key_mgmt=IEEE8021X\neap=PEAP\nidentity=%q\nanonymous_identity=\"anonymous\"\npassword=%q\nca_cert=%q\ndomain_match=%q\nphase1=\"peaplabel=0\"\nphase2=\"auth=MSCHAPV2\"", user, pass, ca, name)
	}
	ttls := fmt.Sprintf("key_mgmt=IEEE8021X\neap=TTLS\nidentity=%q\nanonymous_identity=\"anonymous\"\npassword=%q\nca_cert=%q\ndomain_match=%q\nphase2=\"auth=PAP\"", ada, pw, ca, name)
	for name, network := range map[string]string{"PEAP-MSCHAPv2": peap(ada, pw), "EAP-TTLS/PAP": ttls} {
		ok, out := eapol(t, h, auth[0].String(), network)
		if !ok {
			t.Fatalf("%s failed:\n%s", name, tailLines(out, 40))
		}
		m := mppeOKRE.FindStringSubmatch(out)
		if m == nil || m[1] != "1" || m[2] != "0" {
			t.Fatalf("%s: MPPE keys not confirmed by eapol_test: %v\n%s", name, m, tailLines(out, 20))
		}
	}
	if ok, _ := eapol(t, h, auth[0].String(), peap(ada, pw+"x")); ok {
		t.Fatal("PEAP with a wrong password succeeded")
	}
	// TTLS/CHAP cannot be verified from the NT hash: refused as
	// unsupported_method, not as a wrong password, in the member's audit
	// trail that explain shows (under the inner identity).
	chap := strings.Replace(ttls, "auth=PAP", "auth=CHAP", 1)
	if ok, out := eapol(t, h, auth[0].String(), chap); ok || !strings.Contains(out, "Reply-Message") {
		t.Fatalf("EAP-TTLS/CHAP: success %v, want a refusal with a Reply-Message:\n%s", ok, tailLines(out, 20))
	}
	waitFor(t, 3*time.Second, "unsupported_method in explain's audit trail", func() bool {
		ex, _ := app.Explain(ada, "")
		for _, e := range ex.Audit {
			if e.Action == "radius.reject" && strings.HasPrefix(e.Cause, "unsupported_method at ") && strings.Contains(e.Cause, "inner CHAP") {
				return true
			}
		}
		return false
	})
	// A member whose membership ended: created and ended through the API.
	m, ms := createMember(t, h, "Ended Eap", "ended.eap@example.com", "Hot Desk", "Downtown")
	waitFor(t, 3*time.Second, "member allowed", func() bool { return h.allowed(m.Email) })
	mpw := passwordFromMailbox(t, h, m.Email)
	if ok, out := eapol(t, h, auth[0].String(), peap(m.Email, mpw)); !ok {
		t.Fatalf("new member's PEAP login failed:\n%s", tailLines(out, 30))
	}
	yesterday := h.clock.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02")
	if _, err := officernd.Update[officernd.Membership](context.Background(), h.admin, "memberships", ms.ID, map[string]any{"endDate": yesterday + "T00:00:00.000Z", "type": "fixed"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "member denied", func() bool { return !h.allowed(m.Email) })
	if ok, _ := eapol(t, h, auth[0].String(), peap(m.Email, mpw)); ok {
		t.Fatal("PEAP login succeeded after the membership ended")
	}
}

func tailLines(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// TestWiFiSetupLinks: the welcome email links a per-member setup page with
// an Apple profile and the CA; the link cannot be forged for another member.
func TestWiFiSetupLinks(t *testing.T) {
	nas := startTestNAS(t)
	h := newHarness(t, harnessOpts{seed: true, webhooks: true, extraYAML: radiusYAML(nas.port())})
	app := h.start()
	h.waitImport(30 * time.Second)
	if err := app.sender.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var link string
	files, _ := filepath.Glob(h.dir + "/mailbox/*.eml")
	for _, f := range files {
		if b := qpDecode(readFile(t, f)); strings.Contains(b, "ada.lovelace@example.com") {
			link = regexp.MustCompile(`http://[^\s"<>]+/wifi\?[^\s"<>]+`).FindString(b)
		}
	}
	if link == "" {
		t.Fatal("no setup link in Ada's welcome email")
	}
	link = strings.ReplaceAll(link, "&amp;", "&")
	get := func(u string) (int, string, string) {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	code, _, page := get(link)
	if code != 200 || !strings.Contains(page, "downtown-secure") || !strings.Contains(page, app.Config().RADIUS.EAP.ServerName) {
		t.Fatalf("setup page %d:\n%.500s", code, page)
	}
	u, _ := url.Parse(link)
	code, ctype, prof := get(u.Scheme + "://" + u.Host + "/wifi/profile.mobileconfig?" + u.RawQuery)
	if code != 200 || ctype != "application/x-apple-aspen-config" || !strings.Contains(prof, "<string>downtown-secure</string>") ||
		!strings.Contains(prof, "ada.lovelace@example.com") || !strings.Contains(prof, "TLSTrustedServerNames") {
		t.Fatalf("profile %d %s:\n%.600s", code, ctype, prof)
	}
	if code, _, _ := get(u.Scheme + "://" + u.Host + "/wifi?u=grace.hopper@example.com&s=" + u.Query().Get("s")); code != 404 {
		t.Fatalf("forged link for another member: %d", code)
	}
	if code, _, ca := get(u.Scheme + "://" + u.Host + "/wifi/ca.pem"); code != 200 || !strings.Contains(ca, "BEGIN CERTIFICATE") {
		t.Fatalf("ca.pem %d", code)
	}
}

// TestEAPTLSCertificateLifecycle: a member downloads an EAP-TLS
// certificate from their setup page and logs in with it; when their
// membership ends the certificate is revoked and the login fails.
func TestEAPTLSCertificateLifecycle(t *testing.T) {
	nas := startTestNAS(t)
	h := newHarness(t, harnessOpts{seed: true, webhooks: true, extraYAML: radiusYAML(nas.port())})
	app := h.start()
	h.waitImport(30 * time.Second)
	h.waitWebhookRegistered()
	auth, _ := app.radius.srv.Addrs()
	m, ms := createMember(t, h, "Cert Holder", "cert.holder@example.com", "Dedicated Desk", "Downtown")
	waitFor(t, 3*time.Second, "member allowed", func() bool { return h.allowed(m.Email) })
	// The setup page's form, as a browser would POST it.
	p := postClientCert(t, memberClient(t, app), app.ProfileURL(m.Email))
	bundle := []byte(p.body)
	if p.code != 200 || !strings.Contains(p.body, "PRIVATE KEY") {
		t.Fatalf("client certificate download: %d", p.code)
	}
	pemFile := filepath.Join(t.TempDir(), "client.pem")
	os.WriteFile(pemFile, bundle, 0o600)
	network := fmt.Sprintf("key_mgmt=IEEE8021X\neap=TLS\nidentity=%q\nca_cert=%q\ndomain_match=%q\nclient_cert=%q\nprivate_key=%q",
		m.Email, filepath.Join(app.Config().DataDir, "eap", "ca.pem"), app.Config().RADIUS.EAP.ServerName, pemFile, pemFile)
	if ok, out := eapol(t, h, auth[0].String(), network); !ok {
		t.Fatalf("EAP-TLS with the downloaded certificate failed:\n%s", tailLines(out, 40))
	}
	yesterday := h.clock.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02")
	if _, err := officernd.Update[officernd.Membership](context.Background(), h.admin, "memberships", ms.ID, map[string]any{"endDate": yesterday + "T00:00:00.000Z", "type": "fixed"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "certificate revoked", func() bool {
		es, _ := app.Store().AuditLog(0, 1<<30)
		for _, e := range es {
			if e.Action == "cert.revoked" && e.Subject == m.Email {
				return true
			}
		}
		return false
	})
	if ok, _ := eapol(t, h, auth[0].String(), network); ok {
		t.Fatal("EAP-TLS succeeded with a certificate of a member whose access ended")
	}
}
