package console

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/internal/testepoch"
)

// fakeBackend is an in-memory Backend recording the actions it was asked
// for. The daemon's real one is tested end to end in appliance.
type fakeBackend struct {
	mu      sync.Mutex
	now     time.Time
	ops     map[string]Operator
	audit   []model.AuditEntry
	actions []string
	// dash is what Dashboard reports besides the series.
	dash Dashboard
}

func (f *fakeBackend) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
func (f *fakeBackend) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}
func (f *fakeBackend) Operator(name string) (Operator, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	op, ok := f.ops[name]
	if !ok {
		return op, ErrNoOperator
	}
	return op, nil
}
func (f *fakeBackend) Audit(actor, action, member, subject, cause string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.audit = append(f.audit, model.AuditEntry{Actor: actor, Action: action, Member: member, Subject: subject, Cause: cause})
	return nil
}
func (f *fakeBackend) did(a string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actions = append(f.actions, a)
}
func (f *fakeBackend) Actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.actions)
}
func (f *fakeBackend) Dashboard(context.Context) (Dashboard, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.dash
	d.Accepts, d.Rejects, d.Online = make([]int, Minutes), make([]int, Minutes), make([]int, Minutes)
	return d, nil
}
func (f *fakeBackend) SearchMembers(_ context.Context, q string, _ int) ([]MemberRow, error) {
	return []MemberRow{{ID: "m1", Name: "Edsger Dijkstra", Deny: "membership_ended"}}, nil
}
func (f *fakeBackend) Member(_ context.Context, id string) (MemberPage, error) {
	if id != "m1" {
		return MemberPage{}, ErrNotFound
	}
	return MemberPage{ID: "m1", Name: "Edsger Dijkstra", Deny: "membership_ended", Reasons: []string{"membership x ended 2026-01-01"},
		Sessions: []LiveSession{{Key: "ap/s1", NAS: "ap"}}}, nil
}
func (f *fakeBackend) Disconnect(_ context.Context, actor, id, key string) error {
	f.did("disconnect " + id + " " + key + " by " + actor)
	return nil
}
func (f *fakeBackend) ResendWelcome(_ context.Context, actor, id string, reset bool) error {
	f.did("welcome " + id)
	return nil
}
func (f *fakeBackend) RevokeCert(_ context.Context, actor, id, serial string) error {
	f.did("revoke-cert " + serial)
	return nil
}
func (f *fakeBackend) Guests(context.Context) (GuestsPage, error) {
	return GuestsPage{Locations: []Location{{ID: "loc1", Name: "Downtown"}}}, nil
}
func (f *fakeBackend) CreateCode(_ context.Context, actor string, req CodeRequest) (NewCode, error) {
	f.did("code " + req.Location)
	return NewCode{Code: "K7M-QX3-VH9", Location: "Downtown", Until: f.Now().Add(req.Duration), Devices: req.Devices}, nil
}
func (f *fakeBackend) RevokeCode(_ context.Context, actor, hint string) error {
	f.did("revoke-code " + hint)
	return nil
}
func (f *fakeBackend) Network(context.Context) (NetworkPage, error) {
	return NetworkPage{Portal: true, Location: []Location{{ID: "loc1", Name: "Downtown"}}}, nil
}
func (f *fakeBackend) PortalPreview(context.Context, string, string) ([]byte, error) {
	return []byte("<p>portal</p>"), nil
}
func (f *fakeBackend) AuditTrail(context.Context, AuditFilter) ([]model.AuditEntry, error) {
	return []model.AuditEntry{{Seq: 1, Actor: "sync", Action: "account.disabled", Cause: "=cmd"}}, nil
}

const (
	adminPW = "correct horse battery"
	operPW  = "operator password 1"
)

type env struct {
	t   *testing.T
	b   *fakeBackend
	s   *Server
	srv *httptest.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	b := &fakeBackend{now: testepoch.Epoch(), ops: map[string]Operator{}}
	for name, x := range map[string][2]string{"alice": {RoleAdmin, adminPW}, "otto": {RoleOperator, operPW}} {
		h, err := HashPassword(x[1])
		if err != nil {
			t.Fatal(err)
		}
		b.ops[name] = Operator{Name: name, Role: x[0], Hash: h, Changed: b.now}
	}
	s, err := New(Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &env{t: t, b: b, s: s, srv: srv}
}

// browser is a cookie jar that does not follow redirects.
type browser struct {
	e    *env
	hc   *http.Client
	csrf string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) get(path string) (int, string) {
	b.e.t.Helper()
	resp, err := b.hc.Get(b.e.srv.URL + path)
	if err != nil {
		b.e.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if m := csrfRE.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	return resp.StatusCode, string(body)
}

func (b *browser) post(path string, form url.Values, hdr ...string) (int, string) {
	b.e.t.Helper()
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if m := csrfRE.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	return resp.StatusCode, string(body)
}

func (b *browser) login(name, pw string) int {
	b.e.t.Helper()
	b.get("/console/login")
	code, _ := b.post("/console/login", url.Values{"csrf": {b.csrf}, "name": {name}, "password": {pw}})
	if code == http.StatusSeeOther {
		b.get("/console/dashboard") // picks up the session's CSRF token
	}
	return code
}

func TestLoginAndLogout(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	if code, _ := b.get("/console/dashboard"); code != http.StatusSeeOther {
		t.Fatalf("dashboard without session: %d, want a redirect to login", code)
	}
	if code := b.login("alice", "wrong password!"); code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", code)
	}
	if code := b.login("alice", adminPW); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	u, _ := url.Parse(e.srv.URL + "/console/")
	var sc *http.Cookie
	for _, c := range b.hc.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			sc = c
		}
	}
	if sc == nil || len(sc.Value) < 40 {
		t.Fatalf("no random session cookie: %+v", sc)
	}
	if code, body := b.get("/console/dashboard"); code != 200 || !strings.Contains(body, "alice") {
		t.Fatalf("dashboard after login: %d", code)
	}
	checkUpdateCard(t, e, b)
	if code, _ := b.post("/console/logout", url.Values{"csrf": {b.csrf}}); code != http.StatusSeeOther {
		t.Fatalf("logout: %d", code)
	}
	if code, _ := b.get("/console/dashboard"); code != http.StatusSeeOther {
		t.Fatalf("dashboard after logout: %d", code)
	}
	// The cookie from before the logout is dead on the server too.
	req, _ := http.NewRequest("GET", e.srv.URL+"/console/dashboard", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: sc.Value})
	resp, err := (&http.Client{CheckRedirect: b.hc.CheckRedirect}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("old session cookie after logout: %d", resp.StatusCode)
	}
}

// checkUpdateCard: the dashboard says "did the update go through?" in
// both languages: that there was none, and a halted rollout with each
// box's phase, version and reason, peers' versions, and this box's last
// attempt.
func checkUpdateCard(t *testing.T, e *env, b *browser) {
	t.Helper()
	has := func(lang string, want ...string) {
		t.Helper()
		_, body := b.get("/console/dashboard?lang=" + lang)
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("dashboard (%s) lacks %q", lang, w)
			}
		}
	}
	has("en", "No fleet update has been started.", "This box has no update slots")
	has("de", "Es wurde noch kein Update für alle Boxen gestartet.", "Diese Box hat keine Update-Slots")
	at := e.b.Now()
	e.b.mu.Lock()
	e.b.dash = Dashboard{Version: "1.5.0",
		Peers: []Peer{{Box: "box-b", Version: "1.4.0", State: "up"}},
		Rollout: &Rollout{ID: "r7", Version: "1.5.0", State: "halted", Halted: "box box-b failed: health gate: radius down", Created: at,
			Boxes: []RolloutBox{{Box: "box-a", Phase: "good", Version: "1.5.0", At: at}, {Box: "box-b", Phase: "failed", Version: "1.4.0", Reason: "health gate: radius down", At: at}, {Box: "box-c", Phase: "halted"}}},
		Self: &SelfUpdate{Running: "1.5.0", Last: &UpdateAttempt{Version: "1.5.0", From: "A", To: "B", Result: "good", Started: at.Add(-5 * time.Minute), Finished: at}}}
	e.b.mu.Unlock()
	has("en", "<td>box-b</td><td>1.4.0</td><td>up</td>", "Update to 1.5.0 (r7,", `<strong class="bad">halted</strong> — box box-b failed: health gate: radius down`,
		"<td>box-a</td><td>good</td><td>1.5.0</td>", "<td>box-b</td><td>failed</td><td>1.4.0</td><td>health gate: radius down</td>",
		"<td>box-c</td><td>halted</td>", `1.5.0: slot A → B, <strong class="ok">good</strong>`)
	has("de", "Update auf 1.5.0 (r7,", `<strong class="bad">angehalten</strong>`, "<td>box-b</td><td>fehlgeschlagen</td>",
		`1.5.0: Slot A → B, <strong class="ok">gut</strong>`, "Läuft mit")
	e.b.mu.Lock()
	e.b.dash.Rollout.State, e.b.dash.Rollout.Halted = "in progress", ""
	e.b.dash.Self.Last = nil
	e.b.mu.Unlock()
	has("en", `<strong class="">in progress</strong>`, "No update was attempted on this box yet.")
	has("de", `<strong class="">läuft</strong>`, "Auf dieser Box wurde noch kein Update versucht.")
}

func TestSessionCookieFlags(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.get("/console/login")
	form := url.Values{"csrf": {b.csrf}, "name": {"alice"}, "password": {adminPW}}
	req, _ := http.NewRequest("POST", e.srv.URL+"/console/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var set string
	for _, v := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, sessionCookie+"=") {
			set = v
		}
	}
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/console/"} {
		if !strings.Contains(set, want) {
			t.Errorf("session cookie %q lacks %s", set, want)
		}
	}
	if strings.Contains(set, "Secure") {
		t.Errorf("Secure on plain HTTP: %q", set)
	}
}

// TestLockout: five wrong passwords lock the account (even the right
// password is refused) until the window has passed on the daemon's
// clock; other accounts from elsewhere are not affected.
func TestLockout(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for i := range 5 {
		if code := b.login("alice", "wrong password!"); code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, code)
		}
	}
	if code := b.login("alice", adminPW); code != http.StatusTooManyRequests {
		t.Fatalf("right password while locked: %d, want 429", code)
	}
	e.b.advance(14 * time.Minute)
	if code := b.login("alice", adminPW); code != http.StatusTooManyRequests {
		t.Fatalf("after 14 min: %d, want still locked", code)
	}
	e.b.advance(2 * time.Minute)
	if code := b.login("alice", adminPW); code != http.StatusSeeOther {
		t.Fatalf("after the window: %d", code)
	}
	// Per source: 20 failures over many names lock the address.
	e2 := newEnv(t)
	b2 := e2.browser()
	for i := range 20 {
		b2.login("nobody"+string(rune('a'+i)), "wrong password!")
	}
	if code := b2.login("otto", operPW); code != http.StatusTooManyRequests {
		t.Fatalf("source after 20 failures: %d, want 429", code)
	}
	var failed int
	for _, a := range e2.b.audit {
		if a.Action == "console.login_failed" {
			failed++
		}
	}
	if failed != 20 {
		t.Errorf("%d login failures audited, want 20", failed)
	}
}

// TestSessionExpiry: idle and absolute expiry on the injected clock, and a
// password change ends the session.
func TestSessionExpiry(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("otto", operPW)
	e.b.advance(29 * time.Minute)
	if code, _ := b.get("/console/dashboard"); code != 200 {
		t.Fatalf("after 29 idle minutes: %d", code)
	}
	e.b.advance(30 * time.Minute)
	if code, _ := b.get("/console/dashboard"); code != http.StatusSeeOther {
		t.Fatalf("after 30 idle minutes: %d, want logged out", code)
	}
	b.login("otto", operPW)
	for range 25 { // active every 29 minutes: the 12 h absolute limit ends it
		e.b.advance(29 * time.Minute)
		b.get("/console/dashboard")
	}
	if code, _ := b.get("/console/dashboard"); code != http.StatusSeeOther {
		t.Fatalf("after 12.1 h of use: %d, want logged out", code)
	}
	b.login("otto", operPW)
	e.b.mu.Lock()
	op := e.b.ops["otto"]
	op.Changed = e.b.now.Add(time.Second)
	e.b.ops["otto"] = op
	e.b.mu.Unlock()
	if code, _ := b.get("/console/dashboard"); code != http.StatusSeeOther {
		t.Fatalf("after a password change: %d, want logged out", code)
	}
}

// TestCSRFAndOrigin: a POST without the session's token, with a wrong one,
// or from another origin changes nothing.
func TestCSRFAndOrigin(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("alice", adminPW)
	form := func(tok string) url.Values {
		return url.Values{"csrf": {tok}, "location": {"loc1"}, "duration": {"2h"}, "devices": {"1"}}
	}
	for name, c := range map[string]struct {
		form url.Values
		hdr  []string
	}{
		"no token":      {form(""), nil},
		"wrong token":   {form(strings.Repeat("A", 43)), nil},
		"cross origin":  {form(b.csrf), []string{"Origin", "https://evil.example"}},
		"cross site":    {form(b.csrf), []string{"Sec-Fetch-Site", "cross-site"}},
		"null origin":   {form(b.csrf), []string{"Origin", "null"}},
		"other scheme":  {form(b.csrf), []string{"Origin", strings.Replace(e.srv.URL, "http:", "https:", 1)}},
		"login no csrf": {url.Values{"name": {"alice"}, "password": {adminPW}}, nil},
	} {
		path := "/console/guests/codes"
		if strings.HasPrefix(name, "login") {
			path = "/console/login"
		}
		tok := b.csrf
		if code, _ := b.post(path, c.form, c.hdr...); code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, code)
		}
		b.csrf = tok
	}
	if a := e.b.Actions(); len(a) != 0 {
		t.Fatalf("refused POSTs acted: %v", a)
	}
	if code, _ := b.post("/console/guests/codes", form(b.csrf), "Origin", e.srv.URL); code != 200 {
		t.Fatalf("same-origin POST with the token: %d", code)
	}
	if a := e.b.Actions(); len(a) != 1 {
		t.Fatalf("actions %v", a)
	}
}

// TestRouteTable walks every route: none but login and static answers
// without a session, and an operator gets 403 on each admin route (and
// the admin's action is not run).
func TestRouteTable(t *testing.T) {
	e := newEnv(t)
	anon := e.browser()
	oper := e.browser()
	oper.login("otto", operPW)
	path := func(p string) string {
		p = strings.NewReplacer("{id}", "m1", "{hint}", "0123abcd", "{$}", "").Replace(p)
		if strings.HasSuffix(p, "/static/") {
			p += "console.css"
		}
		return p
	}
	for _, rt := range e.s.Routes {
		var code int
		if rt.Method == "GET" {
			code, _ = anon.get(path(rt.Path))
		} else {
			code, _ = anon.post(path(rt.Path), url.Values{"csrf": {anon.csrf}})
		}
		open := rt.Role == ""
		if open && rt.Method == "GET" && code != http.StatusOK {
			t.Errorf("%s %s without session: %d", rt.Method, rt.Path, code)
		}
		if open && !strings.HasPrefix(rt.Path, "/console/login") && !strings.HasPrefix(rt.Path, "/console/static/") {
			t.Errorf("%s %s answers without a session", rt.Method, rt.Path)
		}
		if !open && code != http.StatusSeeOther && code != http.StatusUnauthorized {
			t.Errorf("%s %s answered %d without a session", rt.Method, rt.Path, code)
		}
		if rt.Role == RoleAdmin {
			if rt.Method != "POST" {
				t.Fatalf("admin route %s is not a POST: extend this test", rt.Path)
			}
			if code, _ := oper.post(path(rt.Path), url.Values{"csrf": {oper.csrf}, "serial": {"01"}}); code != http.StatusForbidden {
				t.Errorf("operator on %s: %d, want 403", rt.Path, code)
			}
		}
	}
	if a := e.b.Actions(); len(a) != 0 {
		t.Fatalf("refused requests acted: %v", a)
	}
	var admin int
	for _, rt := range e.s.Routes {
		if rt.Role == RoleAdmin {
			admin++
		}
	}
	if admin != 3 {
		t.Errorf("%d admin routes, want 3 (welcome, reset-password, revoke-cert)", admin)
	}
	// An operator may do the operator actions.
	if code, _ := oper.post("/console/members/m1/disconnect", url.Values{"csrf": {oper.csrf}, "session": {"ap/s1"}}); code != http.StatusSeeOther {
		t.Fatalf("operator disconnect: %d", code)
	}
	if a := e.b.Actions(); len(a) != 1 || a[0] != "disconnect m1 ap/s1 by console:otto" {
		t.Fatalf("actions %v", a)
	}
	var audited bool
	for _, a := range e.b.audit {
		audited = audited || (a.Action == "console.disconnect" && a.Actor == "console:otto" && a.Member == "m1")
	}
	if !audited {
		t.Errorf("disconnect not audited with its actor: %+v", e.b.audit)
	}
}

// TestBadCodeForm: every bad field gets its message next to it, and no
// code is created.
func TestBadCodeForm(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("otto", operPW)
	for field, v := range map[string]url.Values{
		"duration": {"location": {"loc1"}, "duration": {"forever"}, "devices": {"1"}},
		"devices":  {"location": {"loc1"}, "duration": {"2h"}, "devices": {"11"}},
		"location": {"location": {"mars"}, "duration": {"2h"}, "devices": {"1"}},
		"email":    {"location": {"loc1"}, "duration": {"2h"}, "devices": {"1"}, "email": {"x@"}},
		"name":     {"location": {"loc1"}, "duration": {"2h"}, "devices": {"1"}, "name": {strings.Repeat("n", 101)}},
	} {
		v.Set("csrf", b.csrf)
		code, body := b.post("/console/guests/codes", v)
		if code != http.StatusBadRequest || !strings.Contains(body, `id="`+field+`-err"`) || !strings.Contains(body, `aria-invalid="true"`) {
			t.Errorf("%s: %d, no message next to the field:\n%.300s", field, code, body)
		}
	}
	if a := e.b.Actions(); len(a) != 0 {
		t.Fatalf("bad forms acted: %v", a)
	}
	// German messages in German.
	v := url.Values{"csrf": {b.csrf}, "location": {"loc1"}, "duration": {"x"}, "devices": {"1"}}
	if _, body := b.post("/console/guests/codes?lang=de", v); !strings.Contains(body, "Eine Dauer zwischen") {
		t.Errorf("German form error missing")
	}
	// Audit filter.
	if code, body := b.get("/console/audit?from=yesterday"); code != http.StatusBadRequest || !strings.Contains(body, `id="from-err"`) {
		t.Errorf("audit from=yesterday: %d", code)
	}
	if code, _ := b.get("/console/audit.csv?kind=" + url.QueryEscape("a b")); code != http.StatusBadRequest {
		t.Errorf("csv with bad kind: %d", code)
	}
}

func TestAuditCSVEscapesFormulas(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("otto", operPW)
	code, body := b.get("/console/audit.csv")
	if code != 200 || !strings.Contains(body, "'=cmd") || !strings.HasPrefix(body, "seq,time,actor") {
		t.Fatalf("csv %d:\n%s", code, body)
	}
}

func TestLanguage(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	req, _ := http.NewRequest("GET", e.srv.URL+"/console/login", nil)
	req.Header.Set("Accept-Language", "fr-CH, de;q=0.8, en;q=0.5")
	resp, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `lang="de"`) || !strings.Contains(string(body), "Betreiber-Konsole") {
		t.Fatalf("Accept-Language de not honoured:\n%.300s", body)
	}
	// The switch link sets a cookie that wins over Accept-Language.
	b.get("/console/login?lang=de")
	if _, body := b.get("/console/login"); !strings.Contains(body, `lang="de"`) {
		t.Fatal("language cookie not kept")
	}
	if acceptLanguage("en-GB;q=0.4, de-AT") != "de" || acceptLanguage("") != "en" || acceptLanguage("fr") != "en" {
		t.Fatal("acceptLanguage")
	}
}

// TestCatalogue: both languages have the same keys, and every key the
// templates use exists.
func TestCatalogue(t *testing.T) {
	for k := range catalogue["en"] {
		if catalogue["de"][k] == "" {
			t.Errorf("de lacks %q", k)
		}
	}
	for k := range catalogue["de"] {
		if catalogue["en"][k] == "" {
			t.Errorf("en lacks %q", k)
		}
	}
	for k := range fieldMsgs["en"] {
		if fieldMsgs["de"][k] == "" {
			t.Errorf("de field message lacks %q", k)
		}
	}
	used := regexp.MustCompile(`\.T\.([a-z_0-9]+)`)
	field := regexp.MustCompile(`field \$ "([a-z]+)" "[a-z]+" \S+ "([a-z_]*)"`)
	entries, _ := templateFS.ReadDir("templates")
	for _, en := range entries {
		b, _ := templateFS.ReadFile("templates/" + en.Name())
		for _, m := range used.FindAllStringSubmatch(string(b), -1) {
			if catalogue["en"][m[1]] == "" {
				t.Errorf("%s uses unknown text %q", en.Name(), m[1])
			}
		}
		for _, m := range field.FindAllStringSubmatch(string(b), -1) {
			if catalogue["en"][m[1]] == "" || (m[2] != "" && catalogue["en"][m[2]] == "") {
				t.Errorf("%s: field %q or hint %q has no text", en.Name(), m[1], m[2])
			}
		}
	}
}

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("a long enough one")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(h, "a long enough one") {
		t.Fatalf("hash %q", h)
	}
	if !VerifyPassword(h, "a long enough one") || VerifyPassword(h, "a long enough one!") || VerifyPassword("", "") {
		t.Fatal("verify")
	}
	if _, err := HashPassword("short"); err == nil {
		t.Fatal("short password accepted")
	}
	h2, _ := HashPassword("a long enough one")
	if h == h2 {
		t.Fatal("no salt")
	}
}

func TestRingAndChart(t *testing.T) {
	var r Ring
	t0 := testepoch.Epoch().Truncate(time.Minute)
	r.Record(t0, 10, 1, 0, 3)
	r.Record(t0.Add(30*time.Second), 15, 1, 0, 4)
	r.Record(t0.Add(2*time.Minute), 17, 4, 2, 1)
	s := r.Series(SeriesAccepts, t0.Add(2*time.Minute))
	if len(s) != Minutes || s[Minutes-1] != 2 || s[Minutes-3] != 5 || s[Minutes-2] != 0 {
		t.Fatalf("accepts tail %v", s[Minutes-4:])
	}
	if o := r.Series(SeriesOnline, t0.Add(2*time.Minute)); o[Minutes-3] != 4 || o[Minutes-1] != 1 {
		t.Fatalf("online tail %v", o[Minutes-4:])
	}
	// A day later everything has aged out.
	if s := r.Series(SeriesAccepts, t0.Add(25*time.Hour)); slices.Max(s) != 0 {
		t.Fatal("old minutes still shown")
	}
	svg := string(chart("x<y", false, []string{"a"}, s))
	if !strings.HasPrefix(svg, `<svg class="chart"`) || !strings.Contains(svg, "x&lt;y") {
		t.Fatalf("chart %s", svg)
	}
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}
