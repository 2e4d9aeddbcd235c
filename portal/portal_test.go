package portal

import (
	"encoding/json"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func macOf(ip string) net.HardwareAddr {
	b := netip.MustParseAddr(ip).As4()
	return net.HardwareAddr{0x02, 0, b[0], b[1], b[2], b[3]}
}

// TestProbes checks each OS's captive-network probes against the documented
// expectations: before login a redirect to the portal (so the OS opens its
// sign-in sheet), after login exactly the answer the OS wants. Probes arrive
// for foreign hosts (netcfg DNATs them), so the Host is the vendor's.
func TestProbes(t *testing.T) {
	redirect := publicURL + "/"
	cases := []struct {
		os, url    string
		postStatus int
		postBody   string // exact; "" = empty body
		postType   string
	}{
		{"apple", "http://captive.apple.com/hotspot-detect.html", 200, appleSuccess, "text/html"},
		{"apple", "http://captive.apple.com/library/test/success.html", 200, appleSuccess, "text/html"},
		{"apple", "http://www.apple.com/library/test/success.html", 200, appleSuccess, "text/html"},
		{"android", "http://connectivitycheck.gstatic.com/generate_204", 204, "", ""},
		{"android", "http://clients3.google.com/generate_204", 204, "", ""},
		{"android", "http://www.google.com/gen_204", 204, "", ""},
		{"windows", "http://www.msftconnecttest.com/connecttest.txt", 200, "Microsoft Connect Test", "text/plain"},
		{"windows", "http://www.msftncsi.com/ncsi.txt", 200, "Microsoft NCSI", "text/plain"},
		{"firefox", "http://detectportal.firefox.com/success.txt", 200, "success\n", "text/plain"},
		{"firefox", "http://detectportal.firefox.com/canonical.html", 200, firefoxCanonical, "text/html"},
		{"gnome", "http://nmcheck.gnome.org/check_network_status.txt", 200, "NetworkManager is online\n", "text/plain"},
		{"arch", "http://ping.archlinux.org/nm-check.txt", 200, "NetworkManager is online\n", "text/plain"},
	}
	e := newEnv(t, nil)
	b := e.browser("10.30.0.20")
	for _, c := range cases {
		t.Run("pre/"+c.os+"/"+c.url, func(t *testing.T) {
			res, body := b.get(c.url)
			if res.StatusCode != http.StatusFound || res.Header.Get("Location") != redirect {
				t.Fatalf("before login: got %d Location %q, want 302 to %s", res.StatusCode, res.Header.Get("Location"), redirect)
			}
			if body == c.postBody && c.postBody != "" {
				t.Errorf("before login the probe got the success body %q", body)
			}
			if !strings.Contains(res.Header.Get("Cache-Control"), "no-store") {
				t.Errorf("probe answers must not be cached, Cache-Control %q", res.Header.Get("Cache-Control"))
			}
		})
	}
	if res, _ := b.loginCode("GOOD-CODE"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", res.StatusCode)
	}
	// Simulate a restart that lost the allow-list: the probe must re-allow.
	e.net.Revoke(t.Context(), Client{MAC: macOf("10.30.0.20")})
	for _, c := range cases {
		t.Run("post/"+c.os+"/"+c.url, func(t *testing.T) {
			res, body := b.get(c.url)
			if res.StatusCode != c.postStatus || body != c.postBody {
				t.Fatalf("after login: got %d %q, want %d %q", res.StatusCode, body, c.postStatus, c.postBody)
			}
			if ct := res.Header.Get("Content-Type"); c.postType != "" && !strings.HasPrefix(ct, c.postType) {
				t.Errorf("Content-Type %q, want %s", ct, c.postType)
			}
		})
	}
	if _, ok := e.net.Allowed(macOf("10.30.0.20")); !ok {
		t.Error("a probe from a logged-in client did not re-allow it")
	}
	// Windows opens /redirect in the browser: always the portal.
	if res, _ := b.get("http://www.msftconnecttest.com/redirect"); res.StatusCode != http.StatusFound {
		t.Errorf("/redirect: %d", res.StatusCode)
	}
	// Another client is still captive.
	if res, _ := e.browser("10.30.0.21").get("http://connectivitycheck.gstatic.com/generate_204"); res.StatusCode != http.StatusFound {
		t.Errorf("other client's generate_204: %d, want 302", res.StatusCode)
	}
	// Expired sessions are captive again.
	e.clock.Add(2 * time.Hour)
	if res, _ := b.get("http://connectivitycheck.gstatic.com/generate_204"); res.StatusCode != http.StatusFound {
		t.Errorf("generate_204 after the session ended: %d, want 302", res.StatusCode)
	}
}

func TestForeignHostRedirect(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser("10.30.0.20")
	res, _ := b.get("http://example.com/some/page?x=1")
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != publicURL+"/" {
		t.Fatalf("foreign host: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, body := b.get("/")
	if res.StatusCode != 200 || !strings.Contains(body, `id="code-form"`) {
		t.Fatalf("portal host: %d", res.StatusCode)
	}
}

func TestCaptiveAPI(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser("10.30.0.20")
	get := func() map[string]any {
		t.Helper()
		res, body := b.get("http://portal.deskgate.lan/captive-portal/api")
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/captive+json" {
			t.Fatalf("API: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("API body %q: %v", body, err)
		}
		return m
	}
	m := get()
	if m["captive"] != true || m["user-portal-url"] != publicURL+"/" || m["venue-info-url"] != "https://deskgate.example/berlin" {
		t.Errorf("before login: %v", m)
	}
	if _, ok := m["seconds-remaining"]; ok {
		t.Errorf("seconds-remaining before login: %v", m)
	}
	b.loginCode("GOOD-CODE")
	e.clock.Add(30*time.Minute + 10*time.Second)
	m = get()
	// The fake session lasts 90 minutes from login.
	if m["captive"] != false || m["seconds-remaining"] != float64(3590) || m["can-extend-session"] != false {
		t.Errorf("after login: %v", m)
	}
	if e.srv.APIURL() != publicURL+"/captive-portal/api" {
		t.Errorf("APIURL %q", e.srv.APIURL())
	}
	tls := newEnv(t, func(c *Config) { c.CertFile, c.KeyFile, c.ListenTLS = "c.pem", "k.pem", ":8443" })
	if got := tls.srv.APIURL(); got != "https://portal.deskgate.lan:8443/captive-portal/api" {
		t.Errorf("APIURL with TLS %q", got)
	}
}

func TestLoginStatusLogout(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser("10.30.0.20")
	res, html := b.get("/")
	for _, want := range []string{`<html lang="en">`, `id="code-form"`, `action="/login/code"`, `<label for="code">`,
		`Welcome to Deskgate Berlin`, `<p>No scanning.</p>`, `name="terms" value="v3"`, `id="member-form"`} {
		if !strings.Contains(html, want) {
			t.Errorf("login page lacks %q", want)
		}
	}
	for _, bad := range []string{"target=", "<script", "window.open"} {
		if strings.Contains(html, bad) {
			t.Errorf("login page contains %q", bad)
		}
	}
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
		if res.Header.Get(h) != want {
			t.Errorf("%s: %q, want %q", h, res.Header.Get(h), want)
		}
	}
	if !strings.Contains(res.Header.Get("Content-Security-Policy"), "form-action 'self'") {
		t.Errorf("CSP %q", res.Header.Get("Content-Security-Policy"))
	}
	res, _ = b.loginCode("GOOD-CODE")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/status" {
		t.Fatalf("login: %d %q, want 303 /status", res.StatusCode, res.Header.Get("Location"))
	}
	until, ok := e.net.Allowed(macOf("10.30.0.20"))
	if !ok || !until.Equal(t0.Add(90*time.Minute)) {
		t.Errorf("network: allowed=%v until %v", ok, until)
	}
	if len(e.backend.terms) != 1 || e.backend.terms[0] != "02:00:0a:1e:00:14 loc-berlin v3" {
		t.Errorf("terms recorded: %q", e.backend.terms)
	}
	e.clock.Add(25 * time.Minute)
	res, html = b.get("/status")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status page: %d", res.StatusCode)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	ends := ">" + t0.Add(90*time.Minute).In(berlin).Format("15:04") + "</time>"
	for _, want := range []string{"You are online", "Hello Grace", "1 h 5 min", ends, `id="logout-form"`} {
		if !strings.Contains(html, want) {
			t.Errorf("status page lacks %q:\n%s", want, html)
		}
	}
	if strings.Contains(html, "offer-link") {
		t.Error("a guest got the members' secure-network offer")
	}
	if res, _ := b.get("/"); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/status" {
		t.Errorf("GET / when logged in: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, _ = b.post("/status", "/logout", url.Values{})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/?out=1" {
		t.Fatalf("logout: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if _, ok := e.net.Allowed(macOf("10.30.0.20")); ok {
		t.Error("logout did not revoke the network")
	}
	if _, ok, _ := e.backend.SessionFor(t.Context(), Client{MAC: macOf("10.30.0.20")}); ok {
		t.Error("logout did not end the backend session")
	}
	if _, html := b.get("/?out=1"); !strings.Contains(html, "You are disconnected") {
		t.Error("no logout notice")
	}
	if res, _ := b.get("/status"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("status without a session: %d, want 303 to /", res.StatusCode)
	}
}

func TestMemberLogin(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser("10.30.0.30")
	res, html := b.post("/", "/login/member", url.Values{"email": {"ada@example.com"}, "password": {"wrong"}, "terms": {"v3"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(html, "The email address or the WiFi password is wrong.") ||
		!strings.Contains(html, `<details class="card member" open>`) || !strings.Contains(html, `value="ada@example.com"`) {
		t.Fatalf("bad password: %d\n%s", res.StatusCode, html)
	}
	if strings.Contains(html, "wrong\"") {
		t.Error("the password was echoed back")
	}
	res, html = b.post("/", "/login/member", url.Values{"email": {"nowifi@example.com"}, "password": {"x"}, "terms": {"v3"}})
	if res.StatusCode != http.StatusForbidden || !strings.Contains(html, "does not include WiFi") {
		t.Errorf("no WiFi: %d", res.StatusCode)
	}
	res, _ = b.post("/", "/login/member", url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery"}, "terms": {"v3"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("member login: %d", res.StatusCode)
	}
	_, html = b.get("/status")
	if !strings.Contains(html, `href="/onboard?member=mem1"`) || !strings.Contains(html, "Set up the secure network") {
		t.Errorf("member status page lacks the onboarding offer:\n%s", html)
	}
}

func TestTermsRequired(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser("10.30.0.20")
	for _, terms := range []string{"", "v2"} { // missing, or an old version
		res, html := b.post("/", "/login/code", url.Values{"code": {"GOOD-CODE"}, "terms": {terms}})
		if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(html, "Please accept the terms of use") {
			t.Errorf("terms %q: %d", terms, res.StatusCode)
		}
	}
	if calls := e.backend.Calls(); len(calls) != 0 {
		t.Errorf("backend called without terms: %q", calls)
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser("10.30.0.20")
	b.get("/") // sets the cookie
	other := e.browser("10.30.0.21")
	_, otherHTML := other.get("/")
	otherTok := csrfRE.FindStringSubmatch(otherHTML)[1]
	cases := map[string]func() *http.Response{
		"no token": func() *http.Response { return b.do("POST", "/login/code", codeForm("GOOD-CODE")) },
		"another browser's token": func() *http.Response {
			f := codeForm("GOOD-CODE")
			f.Set("csrf", otherTok)
			return b.do("POST", "/login/code", f)
		},
		"no cookie": func() *http.Response {
			f := codeForm("GOOD-CODE")
			f.Set("csrf", otherTok)
			return e.browser("10.30.0.22").do("POST", "/login/code", f)
		},
		"logout without token": func() *http.Response { return b.do("POST", "/logout", url.Values{}) },
	}
	for name, do := range cases {
		res := do()
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, res.StatusCode)
		}
	}
	if calls := e.backend.Calls(); len(calls) != 0 {
		t.Errorf("backend called on forged forms: %q", calls)
	}
	// The rejection page carries a fresh form that works.
	res, html := b.do("POST", "/login/code", codeForm("GOOD-CODE")), ""
	if res.StatusCode != http.StatusForbidden {
		t.Fatal(res.StatusCode)
	}
	raw, _ := io.ReadAll(res.Body)
	html = string(raw)
	if !strings.Contains(html, "This form has expired") {
		t.Error("no CSRF message")
	}
	f := codeForm("GOOD-CODE")
	f.Set("csrf", csrfRE.FindStringSubmatch(html)[1])
	if res := b.do("POST", "/login/code", f); res.StatusCode != http.StatusSeeOther {
		t.Errorf("retry with the fresh token: %d", res.StatusCode)
	}
}

func TestCSRFKeyFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "csrf.key")
	mk := func() *env { return newEnv(t, func(c *Config) { c.CSRFKey, c.CSRFKeyFile = nil, file }) }
	e1 := mk()
	b := e1.browser("10.30.0.20")
	_, html := b.get("/")
	tok := csrfRE.FindStringSubmatch(html)[1]
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 || st.Size() != 32 {
		t.Fatalf("key file: %v %v", st, err)
	}
	e2 := mk() // a restarted daemon
	b.e = e2
	f := codeForm("GOOD-CODE")
	f.Set("csrf", tok)
	if res := b.do("POST", "/login/code", f); res.StatusCode != http.StatusSeeOther {
		t.Errorf("form from before the restart: %d, want 303", res.StatusCode)
	}
}

func TestOpenRedirect(t *testing.T) {
	for p, want := range map[string]string{
		"/wiki/Page?x=1": "/wiki/Page?x=1", "/": "/",
		"//evil.example/": "", "/\\evil.example": "", "https://evil.example/": "", "evil.example": "",
		"/%0d%0aSet-Cookie:x": "/%0d%0aSet-Cookie:x", "/\r\nx": "", "javascript:alert(1)": "", "": "",
		"/\\/evil": "", "///evil": "",
	} {
		if got := safeNext(p); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", p, got, want)
		}
	}
	e := newEnv(t, nil)
	for i, next := range []string{"//evil.example/", "https://evil.example/x", "/\\evil.example"} {
		b := e.browser("10.30.0." + string(rune('a'+i)))
		b.ip = netip.AddrFrom4([4]byte{10, 30, 1, byte(i)}).String()
		f := codeForm("GOOD-CODE")
		f.Set("next", next)
		res, _ := b.post("/?next="+url.QueryEscape(next), "/login/code", f)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/status" {
			t.Errorf("next=%q: %d Location %q, want /status", next, res.StatusCode, res.Header.Get("Location"))
		}
		_, html := b.get("/status?next=" + url.QueryEscape(next))
		if strings.Contains(html, "evil.example") {
			t.Errorf("status page links to %q", next)
		}
	}
	b := e.browser("10.30.2.1")
	f := codeForm("GOOD-CODE")
	f.Set("next", "/wiki")
	res, _ := b.post("/", "/login/code", f)
	if loc := res.Header.Get("Location"); loc != "/status?next=%2Fwiki" {
		t.Errorf("same-origin next: Location %q", loc)
	}
	if _, html := b.get("/status?next=%2Fwiki"); !strings.Contains(html, `href="/wiki"`) {
		t.Error("status page lacks the continue link")
	}
}

func TestLockout(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxAttempts, c.Lockout = 3, 10*time.Minute })
	b := e.browser("10.30.0.20")
	// Errors other than a wrong code do not count.
	for range 5 {
		if res, html := b.loginCode("EXPIRED"); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(html, "This code has expired") {
			t.Fatalf("expired: %d", res.StatusCode)
		}
	}
	for i, want := range []string{"(2 attempts left)", "(last attempt before a pause)"} {
		res, html := b.loginCode("WRONG")
		if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(html, want) {
			t.Fatalf("wrong code %d: %d, want %q", i+1, res.StatusCode, want)
		}
	}
	res, html := b.loginCode("WRONG")
	if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(html, "Too many wrong attempts. Please wait 10 minutes") {
		t.Fatalf("third wrong code: %d\n%s", res.StatusCode, html)
	}
	n := len(e.backend.Calls())
	res, html = b.loginCode("GOOD-CODE")
	if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(html, "Too many wrong attempts") || res.Header.Get("Retry-After") == "" {
		t.Fatalf("locked client with a good code: %d", res.StatusCode)
	}
	if len(e.backend.Calls()) != n {
		t.Error("backend was asked while the client was locked out")
	}
	// A new IP with the same MAC is still locked (and vice versa).
	e.res.Set(netip.MustParseAddr("10.30.0.99"), macOf("10.30.0.20"))
	if res, _ := e.browser("10.30.0.99").loginCode("GOOD-CODE"); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("same MAC, new IP: %d", res.StatusCode)
	}
	// Other clients are not affected.
	if res, _ := e.browser("10.30.0.21").loginCode("GOOD-CODE"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("other client: %d", res.StatusCode)
	}
	e.clock.Add(10*time.Minute + time.Second)
	if res, _ := b.loginCode("GOOD-CODE"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("after the lockout: %d", res.StatusCode)
	}
}

func TestLoginErrors(t *testing.T) {
	cases := []struct {
		code   string
		status int
		msg    string
	}{
		{"FULL", http.StatusForbidden, "already in use on the maximum number of devices"},
		{"EARLY", http.StatusUnprocessableEntity, "not valid yet"},
		{"ELSEWHERE", http.StatusUnprocessableEntity, "for another location"},
		{"EXPIRED", http.StatusUnprocessableEntity, "has expired"},
		{"WRONG", http.StatusUnprocessableEntity, "This code is not valid. Check it"},
		{"   ", http.StatusUnprocessableEntity, "Please enter your access code."},
		{strings.Repeat("X", 65), http.StatusUnprocessableEntity, "This code is not valid. Check it"},
	}
	e := newEnv(t, nil)
	b := e.browser("10.30.0.20")
	for _, c := range cases {
		res, html := b.loginCode(c.code)
		if res.StatusCode != c.status || !strings.Contains(html, c.msg) || !strings.Contains(html, `role="alert"`) {
			t.Errorf("code %q: %d, want %d with %q", c.code, res.StatusCode, c.status, c.msg)
		}
		if !strings.Contains(html, `id="code-form"`) {
			t.Errorf("code %q: the error page lacks the form", c.code)
		}
	}
	if _, ok := e.net.Allowed(macOf("10.30.0.20")); ok {
		t.Error("network allowed after failed logins")
	}
	e.backend.fail = os.ErrDeadlineExceeded
	if res, html := b.loginCode("GOOD-CODE"); res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(html, "Something went wrong on our side") {
		t.Errorf("backend failure: %d", res.StatusCode)
	}
	e.backend.fail = nil
	e.net.Err = os.ErrPermission
	if res, _ := b.loginCode("GOOD-CODE"); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("network failure: %d", res.StatusCode)
	}
}

func TestLanguage(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		accept, query, cookie string
		want                  string
	}{
		{"", "", "", "en"},
		{"de-DE,de;q=0.9,en;q=0.8", "", "", "de"},
		{"fr-FR, de;q=0.5, en;q=0.4", "", "", "de"},
		{"en;q=0.3, de-CH;q=0.7", "", "", "de"},
		{"fr", "", "", "en"},
		{"de", "en", "", "en"},
		{"en", "", "de", "de"},
		{"en", "xx", "de", "de"},
	}
	for i, c := range cases {
		b := e.browser("10.30.0.20")
		b.lang = c.accept
		if c.cookie != "" {
			b.cookies[langCookie] = &http.Cookie{Name: langCookie, Value: c.cookie}
		}
		target := "/"
		if c.query != "" {
			target += "?lang=" + c.query
		}
		_, html := b.get(target)
		if !strings.Contains(html, `<html lang="`+c.want+`">`) {
			t.Errorf("case %d %+v: page not in %s", i, c, c.want)
		}
	}
	b := e.browser("10.30.0.20")
	b.lang = "en"
	_, html := b.get("/?lang=de")
	if !strings.Contains(html, "Willkommen bei Deskgate Berlin") || !strings.Contains(html, `<label for="code">Zugangscode</label>`) {
		t.Errorf("German page:\n%s", html)
	}
	if _, html := b.get("/"); !strings.Contains(html, `<html lang="de">`) {
		t.Error("?lang=de was not remembered")
	}
	if res, html := b.loginCode("FULL"); res.StatusCode != http.StatusForbidden || !strings.Contains(html, "höchstzulässigen Zahl von Geräten") {
		t.Errorf("German device-limit message missing: %d", res.StatusCode)
	}
}

func TestTemplateOverride(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("login.html", `{{define "content"}}<h1 class="custom">{{.T.welcome_custom}}</h1><form id="code-form" method="post" action="/login/code"><input type="hidden" name="csrf" value="{{.CSRF}}"></form>{{end}}`)
	write("messages.en.json", `{"welcome_custom": "Hello from the operator", "connect": "Go"}`)
	write("static/portal.css", `body{background:pink}`)
	write("static/logo.svg", `<svg xmlns="http://www.w3.org/2000/svg"/>`)
	e := newEnv(t, func(c *Config) { c.TemplatesDir = dir })
	b := e.browser("10.30.0.20")
	_, html := b.get("/")
	if !strings.Contains(html, `<h1 class="custom">Hello from the operator</h1>`) || !strings.Contains(html, `<html lang="en">`) {
		t.Errorf("override not used:\n%s", html)
	}
	if _, css := b.get("/static/portal.css"); css != "body{background:pink}" {
		t.Errorf("css override: %q", css)
	}
	if res, _ := b.get("/static/logo.svg"); res.StatusCode != 200 {
		t.Errorf("operator static file: %d", res.StatusCode)
	}
	// Templates the operator did not override stay the defaults.
	b.loginCode("GOOD-CODE")
	if _, html := b.get("/status"); !strings.Contains(html, `id="logout-form"`) {
		t.Error("default status template not used")
	}
	// A broken override fails at New, not on the first guest.
	write("status.html", `{{define "content"}}{{.Nope`)
	if _, err := New(Config{TemplatesDir: dir}, e.backend, e.net, e.res, nil); err == nil || !strings.Contains(err.Error(), "template status") {
		t.Errorf("broken override: err %v", err)
	}
}

func TestStaticAndBrand(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser("10.30.0.20")
	_, html := b.get("/")
	m := regexpFind(`href="(/brand/[0-9a-f]+\.css)"`, html)
	res, css := b.get(m)
	if res.StatusCode != 200 || css != ":root{--brand:#0f766e;--on-brand:#fff}\n" {
		t.Errorf("brand css %s: %d %q", m, res.StatusCode, css)
	}
	if res, _ := b.get("/static/"); res.StatusCode != 404 {
		t.Errorf("directory listing: %d", res.StatusCode)
	}
	if res, body := b.get("/static/portal.css"); res.StatusCode != 200 || !strings.Contains(body, ":focus-visible") {
		t.Errorf("portal.css: %d", res.StatusCode)
	}
	if res, _ := b.get("/nope"); res.StatusCode != 404 {
		t.Errorf("unknown path: %d", res.StatusCode)
	}
	for color, want := range map[string]string{"#ffffff": "#000", "#000": "#fff", "#1d4ed8": "#fff", "#fde047": "#000", "#0f766e": "#fff"} {
		if got := contrastText(color); got != want {
			t.Errorf("contrastText(%s) = %s, want %s", color, got, want)
		}
	}
}

func regexpFind(re, s string) string {
	m := regexpMust(re).FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RateLimit, c.RateBurst = 1, 5 })
	b := e.browser("10.30.0.20")
	for i := range 5 {
		if res, _ := b.get("/static/portal.css"); res.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, res.StatusCode)
		}
	}
	res, _ := b.get("/")
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "1" {
		t.Fatalf("6th request: %d Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if res, _ := e.browser("10.30.0.21").get("/"); res.StatusCode != 200 {
		t.Errorf("other client: %d", res.StatusCode)
	}
	e.clock.Add(2 * time.Second)
	for range 2 {
		if res, _ := b.get("/"); res.StatusCode != 200 {
			t.Errorf("after refill: %d", res.StatusCode)
		}
	}
	if res, _ := b.get("/"); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("3rd after 2 s refill: %d", res.StatusCode)
	}
}

func TestRenderPage(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.Handle("/onboard", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && !e.srv.CheckCSRF(r) {
			e.srv.RenderPage(w, r, http.StatusForbidden, "Forbidden", "")
			return
		}
		e.srv.RenderPage(w, r, http.StatusOK, "Set your WiFi password", template.HTML(`<form id="onboard" method="post"><input type="hidden" name="csrf" value="`+e.srv.CSRFToken(w, r)+`"></form>`))
	}))
	b := e.browser("10.30.0.20")
	res, html := b.get("/onboard?lang=de")
	if res.StatusCode != 200 {
		t.Fatal(res.StatusCode)
	}
	for _, want := range []string{`<html lang="de">`, "<title>Set your WiFi password · Deskgate Berlin</title>", `<form id="onboard"`, `/static/portal.css`, `Deskgate Berlin`} {
		if !strings.Contains(html, want) {
			t.Errorf("RenderPage output lacks %q", want)
		}
	}
	if res.Header.Get("X-Frame-Options") != "DENY" {
		t.Error("RenderPage without security headers")
	}
	if res, _ := b.post("/onboard", "/onboard", url.Values{}); res.StatusCode != 200 {
		t.Errorf("mounted page's CSRF round trip: %d", res.StatusCode)
	}
	if res := b.do("POST", "/onboard", url.Values{"csrf": {"forged"}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("mounted page with a forged token: %d", res.StatusCode)
	}
}

func TestNewValidates(t *testing.T) {
	e := newEnv(t, nil)
	for name, cfg := range map[string]Config{
		"bad color":        {Locations: map[string]Branding{"a": {PrimaryColor: "red"}}},
		"bad default":      {DefaultLocation: "x", Locations: map[string]Branding{"a": {}, "b": {}}},
		"bad public url":   {PublicURL: "portal.lan"},
		"cert without key": {CertFile: "c.pem"},
		"tls without cert": {ListenTLS: ":8443"},
		"short key":        {CSRFKey: []byte("short")},
		"unknown language": {Languages: []string{"fr"}},
		"bad tz":           {Locations: map[string]Branding{"a": {TimeZone: "Mars/Olympus"}}},
		"bad logo":         {Locations: map[string]Branding{"a": {LogoURL: "javascript:alert(1)"}}},
	} {
		if _, err := New(cfg, e.backend, e.net, e.res, nil); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// TestRestartKeepsSession: a new Server on the same Backend (a restarted
// daemon whose network allow-list was rebuilt empty) still knows the client
// and re-allows it when its OS probes.
func TestRestartKeepsSession(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser("10.30.0.20")
	if res, _ := b.loginCode("GOOD-CODE"); res.StatusCode != http.StatusSeeOther {
		t.Fatal(res.StatusCode)
	}
	restarted := newEnv(t, nil)
	restarted.backend = e.backend
	srv, err := New(restarted.srv.cfg, e.backend, restarted.net, restarted.res, nil)
	if err != nil {
		t.Fatal(err)
	}
	restarted.srv = srv
	b.e = restarted
	if res, body := b.get("http://captive.apple.com/hotspot-detect.html"); res.StatusCode != 200 || body != appleSuccess {
		t.Errorf("probe after restart: %d %q", res.StatusCode, body)
	}
	if until, ok := restarted.net.Allowed(macOf("10.30.0.20")); !ok || !until.Equal(t0.Add(90*time.Minute)) {
		t.Errorf("not re-allowed after restart: %v %v", ok, until)
	}
	if res, html := b.get("/status"); res.StatusCode != 200 || !strings.Contains(html, "You are online") {
		t.Errorf("status after restart: %d", res.StatusCode)
	}
}

func TestMemberLockout(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxAttempts = 2 })
	b := e.browser("10.30.0.40")
	f := url.Values{"email": {"ada@example.com"}, "password": {"guess"}, "terms": {"v3"}}
	b.post("/", "/login/member", f)
	res, html := b.post("/", "/login/member", f)
	if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(html, "Too many wrong attempts") {
		t.Fatalf("second wrong password: %d", res.StatusCode)
	}
	f.Set("password", "correct horse battery")
	if res, _ := b.post("/", "/login/member", f); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("locked member login: %d", res.StatusCode)
	}
}

// TestNoSecretsInLogs: codes, passwords and CSRF material never reach the log.
func TestNoSecretsInLogs(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	e := newEnv(t, nil)
	srv, err := New(e.srv.cfg, e.backend, e.net, e.res, slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	b := e.browser("10.30.0.20")
	b.loginCode("SECRET-WRONG-1")
	b.do("POST", "/login/code", codeForm("SECRET-NOCSRF-2"))
	b.post("/", "/login/member", url.Values{"email": {"ada@example.com"}, "password": {"hunter2-secret"}, "terms": {"v3"}})
	b.loginCode("GOOD-CODE")
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if !strings.Contains(out, "portal: login refused") || !strings.Contains(out, "portal: login ") {
		t.Fatalf("expected login log lines, got:\n%s", out)
	}
	for _, secret := range []string{"SECRET-WRONG-1", "SECRET-NOCSRF-2", "hunter2-secret", "GOOD-CODE", string(e.srv.cfg.CSRFKey), b.cookies[csrfCookie].Value} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains secret %q:\n%s", secret, out)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestLocations: the client's location picks the branding and is what the
// Backend is asked about.
func TestLocations(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Locations["loc-munich"] = Branding{Name: "Deskgate München", PrimaryColor: "#fde047", Terms: map[string]string{"de": "Bitte leise.", "en": "Please be quiet."}}
		c.LocationFor = func(cl Client) string {
			if cl.IP.As4()[2] == 1 {
				return "loc-munich"
			}
			return "loc-berlin"
		}
	})
	mu := e.browser("10.30.1.5")
	_, html := mu.get("/")
	if !strings.Contains(html, "Welcome to Deskgate München") || !strings.Contains(html, "Please be quiet.") || strings.Contains(html, "No scanning") {
		t.Errorf("munich page:\n%s", html)
	}
	css := regexpFind(`href="(/brand/[0-9a-f]+\.css)"`, html)
	if _, body := mu.get(css); body != ":root{--brand:#fde047;--on-brand:#000}\n" {
		t.Errorf("munich css %q", body)
	}
	mu.post("/", "/login/code", url.Values{"code": {"GOOD-CODE"}, "terms": {"default"}})
	sess, ok, _ := e.backend.SessionFor(t.Context(), Client{MAC: macOf("10.30.1.5")})
	if !ok || sess.LocationID != "loc-munich" {
		t.Errorf("backend asked for location %q (ok %v), want loc-munich", sess.LocationID, ok)
	}
	if _, html := e.browser("10.30.0.5").get("/"); !strings.Contains(html, "Welcome to Deskgate Berlin") {
		t.Error("berlin client did not get berlin branding")
	}
}

// TestAccessibleMarkup: every visible input has a label, pages declare
// their language and viewport, and nothing opens new windows or runs script.
func TestAccessibleMarkup(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser("10.30.0.20")
	_, login := b.get("/")
	_, errPage := b.loginCode("WRONG")
	b.loginCode("GOOD-CODE")
	_, status := b.get("/status")
	inputRE := regexpMust(`<input ([^>]*)>`)
	for name, html := range map[string]string{"login": login, "error": errPage, "status": status} {
		for _, m := range inputRE.FindAllStringSubmatch(html, -1) {
			if strings.Contains(m[1], `type="hidden"`) {
				continue
			}
			id := regexpFind(`id="([^"]+)"`, m[1])
			if id == "" || !strings.Contains(html, `<label for="`+id+`">`) {
				t.Errorf("%s: input without a label: %s", name, m[0])
			}
		}
		for _, want := range []string{`<html lang="en">`, `name="viewport"`, `<main id="main"`, `class="skip" href="#main"`} {
			if !strings.Contains(html, want) {
				t.Errorf("%s lacks %q", name, want)
			}
		}
		for _, bad := range []string{"target=", "<script", "onclick", "window.open"} {
			if strings.Contains(html, bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
}

func TestDuration(t *testing.T) {
	e := newEnv(t, nil)
	for d, want := range map[time.Duration]string{
		30 * time.Second: "less than a minute", 59 * time.Minute: "59 min", 2 * time.Hour: "2 h",
		25*time.Hour + 5*time.Minute + 59*time.Second: "25 h 5 min",
	} {
		if got := e.srv.duration("en", d); got != want {
			t.Errorf("duration(%v) = %q, want %q", d, got, want)
		}
	}
	if got := e.srv.duration("de", 90*time.Minute); got != "1 Std. 30 Min." {
		t.Errorf("German: %q", got)
	}
}
