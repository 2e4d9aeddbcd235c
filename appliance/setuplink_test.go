package appliance

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/officernd"
	"github.com/deskgate/deskgate/internal/keyfile"
)

// memberClient is a browser: a cookie jar, and the deskgate CA trusted
// for member pages served over TLS; its clock is the daemon's, as a
// device's on the box's network would be.
func memberClient(t *testing.T, app *App) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	roots := x509.NewCertPool()
	if b, err := os.ReadFile(filepath.Join(app.Config().DataDir, "eap", "ca.pem")); err == nil {
		roots.AppendCertsFromPEM(b)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Time: app.now}}}
}

type pageResp struct {
	code   int
	header http.Header
	body   string
}

func fetchPage(t *testing.T, c *http.Client, method, u string, form url.Values, hdr map[string]string) pageResp {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return pageResp{resp.StatusCode, resp.Header, string(b)}
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-z]+)" value="([^"]*)">`)

// certForm opens the setup page like a browser and returns the
// certificate form's fields (nil when the page offers no form).
func certForm(t *testing.T, c *http.Client, link string) url.Values {
	t.Helper()
	p := fetchPage(t, c, "GET", link, nil, nil)
	if p.code != 200 {
		t.Fatalf("setup page %d: %.300s", p.code, p.body)
	}
	return formFields(p.body, `action="/wifi/client-cert.pem"`)
}

// formFields returns the hidden fields of the form with the given action
// attribute in page (nil when there is none).
func formFields(page, action string) url.Values {
	i := strings.Index(page, action)
	if i < 0 {
		return nil
	}
	page = page[i:]
	if j := strings.Index(page, "</form>"); j >= 0 {
		page = page[:j]
	}
	f := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		f.Set(m[1], html.UnescapeString(m[2]))
	}
	return f
}

// postClientCert creates a certificate through the setup page's form.
func postClientCert(t *testing.T, c *http.Client, link string) pageResp {
	t.Helper()
	f := certForm(t, c, link)
	if f == nil {
		t.Fatal("setup page offers no certificate form")
	}
	u, _ := url.Parse(link)
	return fetchPage(t, c, "POST", u.Scheme+"://"+u.Host+"/wifi/client-cert.pem", f, map[string]string{"Origin": u.Scheme + "://" + u.Host})
}

func auditCount(t *testing.T, app *App, action, subject string) int {
	t.Helper()
	es, err := app.Store().AuditLog(0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range es {
		if e.Action == action && e.Subject == subject {
			n++
		}
	}
	return n
}

func checkMemberHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	for k, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %s = %q, want %q", what, k, got, want)
		}
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("%s: CSP %q", what, csp)
	}
}

// TestSetupLinkExpiry: a setup link carries its expiry (users.setup_link_ttl,
// default 7 days, signed with the username); it works until then on the
// injected clock and not after, a moved expiry breaks the signature, and
// explain and the welcome email carry fresh links that work.
func TestSetupLinkExpiry(t *testing.T) {
	nas := startTestNAS(t)
	h := newHarness(t, harnessOpts{seed: true, extraYAML: radiusYAML(nas.port())})
	app := h.start()
	h.waitImport(30 * time.Second)
	c := memberClient(t, app)
	ada := "ada.lovelace@example.com"
	if err := app.sender.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var mailed string
	files, _ := filepath.Glob(h.dir + "/mailbox/*.eml")
	for _, f := range files {
		if b := qpDecode(readFile(t, f)); strings.Contains(b, ada) {
			mailed = strings.ReplaceAll(regexp.MustCompile(`http://[^\s"<>]+/wifi\?[^\s"<>]+`).FindString(b), "&amp;", "&")
		}
	}
	if !strings.HasPrefix(mailed, h.memberURL+"/wifi?") {
		t.Fatalf("welcome email's setup link %q is not on the member listener %s", mailed, h.memberURL)
	}
	link := app.ProfileURL(ada)
	u, _ := url.Parse(link)
	exp, err := strconv.ParseInt(u.Query().Get("e"), 10, 64)
	if err != nil {
		t.Fatalf("link %s carries no expiry", link)
	}
	if want := h.clock.Now().Add(7 * 24 * time.Hour).Unix(); exp < want-60 || exp > want+60 {
		t.Fatalf("link expires at %d, want about now+7d = %d", exp, want)
	}
	for _, l := range []string{mailed, link} {
		if p := fetchPage(t, c, "GET", l, nil, nil); p.code != 200 || !strings.Contains(p.body, "downtown-secure") {
			t.Fatalf("fresh link %s: %d %.300s", l, p.code, p.body)
		}
	}
	// Moving the expiry without re-signing breaks the link.
	q := u.Query()
	q.Set("e", strconv.FormatInt(exp+30*24*3600, 10))
	if p := fetchPage(t, c, "GET", h.memberURL+"/wifi?"+q.Encode(), nil, nil); p.code != 404 {
		t.Fatalf("link with a moved expiry: %d", p.code)
	}
	h.clock.Jump(7*24*time.Hour + time.Minute)
	for _, l := range []string{link, mailed, h.memberURL + "/wifi/profile.mobileconfig?" + u.RawQuery} {
		p := fetchPage(t, c, "GET", l, nil, nil)
		if p.code != 404 || !strings.Contains(p.body, "expired") {
			t.Fatalf("link after 7 days %s: %d %.300s", l, p.code, p.body)
		}
		checkMemberHeaders(t, "expired link", p.header)
	}
	ex, err := app.Explain(ada, "")
	if err != nil {
		t.Fatal(err)
	}
	if ex.SetupURL == "" || ex.SetupURL == link {
		t.Fatalf("explain's setup URL %q is not a fresh link", ex.SetupURL)
	}
	if p := fetchPage(t, c, "GET", ex.SetupURL, nil, nil); p.code != 200 {
		t.Fatalf("explain's fresh link: %d", p.code)
	}
}

// TestClientCertIssuance: GETs mint nothing; a certificate is issued only
// by a same-origin POST of the setup page's form, up to the member's
// device limit of live certificates, each audited; beyond the limit the
// POST is refused with a clear message, no certificate and no audit
// entry; the operator lists and revokes them through the admin API, which
// frees a slot.
func TestClientCertIssuance(t *testing.T) {
	nas := startTestNAS(t)
	h := newHarness(t, harnessOpts{seed: true, webhooks: true, extraYAML: radiusYAML(nas.port())})
	app := h.start()
	h.waitImport(30 * time.Second)
	m, _ := createMember(t, h, "Cert Limit", "cert.limit@example.com", "Hot Desk", "Downtown") // standard: max_devices 3
	waitFor(t, 3*time.Second, "member allowed", func() bool { return h.allowed(m.Email) })
	c := memberClient(t, app)
	link := app.ProfileURL(m.Email)
	u, _ := url.Parse(link)
	certURL := h.memberURL + "/wifi/client-cert.pem"
	origin := map[string]string{"Origin": h.memberURL}

	start := time.Now()
	for i := 0; i < 100; i++ {
		fetchPage(t, c, "GET", link, nil, nil)
		if p := fetchPage(t, c, "GET", certURL+"?"+u.RawQuery, nil, nil); p.code == 200 {
			t.Fatalf("GET of the certificate URL answered 200")
		}
	}
	t.Logf("200 GETs in %s", time.Since(start).Round(time.Millisecond))
	if n := len(app.radius.ca.ListIssued(m.Email)); n != 0 {
		t.Fatalf("100 GETs minted %d certificates", n)
	}
	if n := auditCount(t, app, "cert.issued", m.Email); n != 0 {
		t.Fatalf("100 GETs wrote %d audit entries", n)
	}

	form := certForm(t, c, link)
	if form == nil || form.Get("csrf") == "" {
		t.Fatal("setup page has no certificate form with a token")
	}
	// Without the browser's cookie, with a wrong token, or cross-origin: refused.
	if p := fetchPage(t, &http.Client{}, "POST", certURL, form, origin); p.code != 403 {
		t.Fatalf("POST without the cookie: %d", p.code)
	}
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("csrf", strings.Repeat("A", len(form.Get("csrf"))))
	if p := fetchPage(t, c, "POST", certURL, bad, origin); p.code != 403 {
		t.Fatalf("POST with a wrong token: %d", p.code)
	}
	if p := fetchPage(t, c, "POST", certURL, form, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}); p.code != 403 {
		t.Fatalf("cross-origin POST: %d", p.code)
	}
	if n := len(app.radius.ca.ListIssued(m.Email)); n != 0 {
		t.Fatalf("refused POSTs minted %d certificates", n)
	}

	for i := 1; i <= 3; i++ {
		p := postClientCert(t, c, link)
		if p.code != 200 || !strings.Contains(p.body, "BEGIN CERTIFICATE") || !strings.Contains(p.body, "PRIVATE KEY") {
			t.Fatalf("certificate %d: %d %.300s", i, p.code, p.body)
		}
		if p.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("certificate response Cache-Control %q", p.header.Get("Cache-Control"))
		}
		if n := auditCount(t, app, "cert.issued", m.Email); n != i {
			t.Fatalf("after %d certificates: %d audit entries", i, n)
		}
	}
	if f := certForm(t, c, link); f != nil {
		t.Fatal("setup page still offers the form at the limit")
	}
	p := fetchPage(t, c, "POST", certURL, form, origin)
	if p.code != http.StatusConflict || !strings.Contains(p.body, "as many as your plan allows") {
		t.Fatalf("4th certificate: %d %.300s", p.code, p.body)
	}
	if n := len(app.radius.ca.ListIssued(m.Email)); n != 3 {
		t.Fatalf("after a refused 4th: %d certificates", n)
	}
	if n := auditCount(t, app, "cert.issued", m.Email); n != 3 {
		t.Fatalf("after a refused 4th: %d audit entries", n)
	}

	// The operator's view and revocation, through the local API socket.
	ac := admin.Dial(app.Config().Admin.Socket)
	ctx := context.Background()
	var list []admin.ClientCert
	if err := ac.Get(ctx, "/v1/certs", url.Values{"user": {m.Email}}, &list); err != nil || len(list) != 3 || !list[0].Live {
		t.Fatalf("GET /v1/certs: %v %+v", err, list)
	}
	var rev []admin.ClientCert
	if err := ac.Post(ctx, "/v1/certs/revoke", url.Values{"target": {list[1].Serial}}, &rev); err != nil || len(rev) != 1 || rev[0].Live || rev[0].Revoked.IsZero() {
		t.Fatalf("revoke by serial: %v %+v", err, rev)
	}
	if n := auditCount(t, app, "cert.revoked", m.Email); n != 1 {
		t.Fatalf("revocation by serial: %d audit entries", n)
	}
	if err := ac.Post(ctx, "/v1/certs/revoke", url.Values{"target": {"no-such-user-or-serial"}}, nil); err == nil {
		t.Fatal("revoking an unknown target succeeded")
	}
	if p := postClientCert(t, c, link); p.code != 200 {
		t.Fatalf("after a revocation: %d %.300s", p.code, p.body)
	}
	if err := ac.Post(ctx, "/v1/certs/revoke", url.Values{"target": {m.ID}}, &rev); err != nil || len(rev) != 4 {
		t.Fatalf("revoke by member: %v %+v", err, rev)
	}
	for _, r := range rev {
		if r.Live {
			t.Fatalf("certificate %s still live after revoking the member", r.Serial)
		}
	}
}

// TestSetupLinkKeyFailsClosed: with an unusable link key no link is valid
// (one computed with an empty key included), ProfileURL is empty, the
// pages answer 503 and doctor says which file and why.
func TestSetupLinkKeyFailsClosed(t *testing.T) {
	nas := startTestNAS(t)
	h := newHarness(t, harnessOpts{seed: true, extraYAML: radiusYAML(nas.port())})
	keyPath := filepath.Join(h.dir, "data", "profile.key")
	if err := os.MkdirAll(keyPath, 0o700); err != nil { // a directory where the key belongs
		t.Fatal(err)
	}
	app := h.start()
	h.waitImport(30 * time.Second)
	ada := "ada.lovelace@example.com"
	if u := app.ProfileURL(ada); u != "" {
		t.Fatalf("ProfileURL with an unusable key = %q", u)
	}
	c := memberClient(t, app)
	// Links an attacker computes with an empty key: today's format and the old one.
	exp := h.clock.Now().Add(time.Hour).Unix()
	old := hmac.New(sha256.New, nil)
	old.Write([]byte("wifi-profile:" + ada))
	emptyKey := hmac.New(sha256.New, nil) // onboard's setupSig with an empty key
	emptyKey.Write([]byte("deskgate setup link v2\x00" + ada + "\x00" + strconv.FormatInt(exp, 10)))
	for _, q := range []url.Values{
		{"u": {ada}, "e": {strconv.FormatInt(exp, 10)}, "s": {base64.RawURLEncoding.EncodeToString(emptyKey.Sum(nil)[:18])}},
		{"u": {ada}, "s": {base64.RawURLEncoding.EncodeToString(old.Sum(nil)[:18])}},
	} {
		p := fetchPage(t, c, "GET", h.memberURL+"/wifi?"+q.Encode(), nil, nil)
		if p.code == 200 || strings.Contains(p.body, "downtown-secure") {
			t.Fatalf("forged link %s accepted: %d", q.Encode(), p.code)
		}
		if p.code != http.StatusServiceUnavailable || !strings.Contains(p.body, "unavailable") {
			t.Fatalf("forged link: %d %.200s, want 503 with a clear message", p.code, p.body)
		}
	}
	var found bool
	for _, ch := range app.Doctor(context.Background()) {
		if ch.Name == "setup link key" {
			found = true
			if ch.OK || !strings.Contains(ch.Detail, keyPath) || !strings.Contains(ch.Fix, keyPath) {
				t.Fatalf("doctor check: %+v", ch)
			}
		}
	}
	if !found {
		t.Fatal("doctor has no setup link key check")
	}
	// A short key file is refused too, not silently replaced.
	short := filepath.Join(t.TempDir(), "profile.key")
	os.WriteFile(short, []byte("short"), 0o600)
	if _, err := keyfile.LoadOrCreate(short, "setup link key"); err == nil {
		t.Fatal("a 5-byte key was accepted")
	}
	if b, _ := os.ReadFile(short); string(b) != "short" {
		t.Fatal("the short key file was replaced")
	}
}

// TestMemberPagesListener: the member pages answer only on the member
// listener (TLS by default, with a certificate from the EAP CA for the
// member URL's host), never on the webhook listener nor the admin API.
func TestMemberPagesListener(t *testing.T) {
	nas := startTestNAS(t)
	h := newHarness(t, harnessOpts{seed: true, webhooks: true, memberTLS: true, extraYAML: radiusYAML(nas.port())})
	app := h.start()
	h.waitImport(30 * time.Second)
	c := memberClient(t, app)
	link := app.ProfileURL("ada.lovelace@example.com")
	if !strings.HasPrefix(link, h.memberURL+"/wifi?") || !strings.HasPrefix(link, "https://") {
		t.Fatalf("ProfileURL %q, want on %s", link, h.memberURL)
	}
	p := fetchPage(t, c, "GET", link, nil, nil)
	if p.code != 200 || !strings.Contains(p.body, "downtown-secure") {
		t.Fatalf("member listener (TLS, verified against the deskgate CA): %d %.300s", p.code, p.body)
	}
	checkMemberHeaders(t, "setup page", p.header)
	u, _ := url.Parse(link)
	hook, _ := url.Parse(h.hookURL)
	for name, base := range map[string]string{"webhook listener": "http://" + hook.Host} {
		for _, path := range []string{"/wifi?" + u.RawQuery, "/wifi/ca.pem", "/onboard?t=x"} {
			if p := fetchPage(t, c, "GET", base+path, nil, nil); p.code != 404 {
				t.Errorf("%s %s: %d, want 404", name, path, p.code)
			}
		}
	}
	// The admin API (over its unix socket, which needs no token) has no
	// member pages either.
	sock := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", app.Config().Admin.Socket)
	}}}
	for _, path := range []string{"/wifi?" + u.RawQuery, "/wifi/ca.pem", "/onboard?t=x"} {
		if p := fetchPage(t, sock, "GET", "http://deskgate"+path, nil, nil); p.code != 404 {
			t.Errorf("admin API %s: %d, want 404", path, p.code)
		}
	}
	// Plain HTTP to the TLS listener gets nothing.
	if p := fetchPage(t, c, "GET", strings.Replace(link, "https://", "http://", 1), nil, nil); p.code == 200 {
		t.Fatal("member listener answered plain http")
	}
}

// TestSetupPagesLostAccess: for a member whose access ended the setup page
// and the profile answer 403 with a friendly page (no empty SSID, no
// ERROR log), with the security headers.
func TestSetupPagesLostAccess(t *testing.T) {
	nas := startTestNAS(t)
	h := newHarness(t, harnessOpts{seed: true, webhooks: true, extraYAML: radiusYAML(nas.port())})
	app := h.start()
	h.waitImport(30 * time.Second)
	m, ms := createMember(t, h, "Lost Access", "lost.access@example.com", "Hot Desk", "Downtown")
	waitFor(t, 3*time.Second, "member allowed", func() bool { return h.allowed(m.Email) })
	link := app.ProfileURL(m.Email)
	u, _ := url.Parse(link)
	c := memberClient(t, app)
	if p := fetchPage(t, c, "GET", link, nil, nil); p.code != 200 {
		t.Fatalf("setup page while allowed: %d", p.code)
	}
	yesterday := h.clock.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02")
	if _, err := officernd.Update[officernd.Membership](context.Background(), h.admin, "memberships", ms.ID, map[string]any{"endDate": yesterday + "T00:00:00.000Z", "type": "fixed"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "member denied", func() bool { return !h.allowed(m.Email) })
	for _, path := range []string{"/wifi?", "/wifi/profile.mobileconfig?"} {
		p := fetchPage(t, c, "GET", h.memberURL+path+u.RawQuery, nil, nil)
		if p.code != 403 || !strings.Contains(p.body, "No WiFi access") || !strings.HasPrefix(p.header.Get("Content-Type"), "text/html") {
			t.Errorf("%s after access ended: %d %s %.300s", path, p.code, p.header.Get("Content-Type"), p.body)
		}
		checkMemberHeaders(t, path, p.header)
	}
	if strings.Contains(h.logs.String(), "level=ERROR") {
		t.Fatalf("member pages logged an ERROR:\n%s", h.logs.String())
	}
}
