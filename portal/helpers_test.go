package portal

import (
	"context"
	"fmt"
	"github.com/deskgate/deskgate/internal/testepoch"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain fails the package when a test leaves portal goroutines behind
// (servers not shut down, handlers stuck).
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines(); leaked != "" {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func leakedGoroutines() string {
	var leaked []string
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		leaked = leaked[:0]
		for _, g := range strings.Split(string(buf), "\n\n")[1:] { // [0] is this goroutine
			if strings.Contains(g, "deskgate/portal.") || strings.Contains(g, "net/http.(*conn).serve") ||
				strings.Contains(g, "net/http/httptest.(*Server)") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeBackend knows a few codes and members; sessions are by MAC.
type fakeBackend struct {
	mu       sync.Mutex
	clock    *fakeClock
	codes    map[string]error // code -> error to return (nil = valid)
	members  map[string]string
	sessions map[string]Session
	terms    []string // "mac location version"
	calls    []string
	fail     error // returned by every call when set
}

func newFakeBackend(clock *fakeClock) *fakeBackend {
	return &fakeBackend{
		clock: clock,
		codes: map[string]error{
			"GOOD-CODE": nil, "EXPIRED": ErrExpired, "EARLY": ErrNotYetValid, "ELSEWHERE": ErrWrongLocation,
			"FULL": ErrDeviceLimit,
		},
		members:  map[string]string{"ada@example.com": "correct horse battery"},
		sessions: make(map[string]Session),
	}
}

func (b *fakeBackend) called(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, s)
}

func (b *fakeBackend) Calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.calls...)
}

func (b *fakeBackend) LoginCode(ctx context.Context, code string, c Client, loc string) (Session, error) {
	b.called("LoginCode " + code)
	if b.fail != nil {
		return Session{}, b.fail
	}
	err, ok := b.codes[code]
	if !ok {
		return Session{}, fmt.Errorf("lookup %q: %w", "<code>", ErrBadCode)
	}
	if err != nil {
		return Session{}, err
	}
	s := Session{ID: "s-" + c.MAC.String(), Kind: KindGuest, Name: "Grace", Until: b.clock.Now().Add(90 * time.Minute), LocationID: loc}
	b.mu.Lock()
	b.sessions[c.MAC.String()] = s
	b.mu.Unlock()
	return s, nil
}

func (b *fakeBackend) LoginMember(ctx context.Context, email, pw string, c Client, loc string) (Session, error) {
	b.called("LoginMember " + email)
	if email == "nowifi@example.com" {
		return Session{}, ErrNoWiFi
	}
	if want, ok := b.members[email]; !ok || want != pw {
		return Session{}, ErrBadCredentials
	}
	s := Session{ID: "m-" + c.MAC.String(), Kind: KindMember, Name: "Ada", MemberID: "mem1", Until: b.clock.Now().Add(8 * time.Hour), LocationID: loc}
	b.mu.Lock()
	b.sessions[c.MAC.String()] = s
	b.mu.Unlock()
	return s, nil
}

func (b *fakeBackend) SessionFor(ctx context.Context, c Client) (Session, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.sessions[c.MAC.String()]
	return s, ok, nil
}

func (b *fakeBackend) Logout(ctx context.Context, c Client) error {
	b.called("Logout " + c.MAC.String())
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.sessions, c.MAC.String())
	return nil
}

func (b *fakeBackend) RecordTerms(ctx context.Context, c Client, loc, version string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.terms = append(b.terms, c.MAC.String()+" "+loc+" "+version)
	return nil
}

type env struct {
	t       *testing.T
	srv     *Server
	backend *fakeBackend
	net     *MemNetwork
	clock   *fakeClock
	res     *StaticResolver
}

// t0 is the tests' start: DESKGATE_TEST_EPOCH, so the suite is rerun on other dates.
var t0 = testepoch.Epoch()

const publicURL = "http://portal.deskgate.lan"

func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	e := &env{t: t, clock: &fakeClock{t: t0}, net: &MemNetwork{}, res: &StaticResolver{Derive: true}}
	e.backend = newFakeBackend(e.clock)
	cfg := Config{
		PublicURL: publicURL,
		Locations: map[string]Branding{
			"loc-berlin": {Name: "Deskgate Berlin", PrimaryColor: "#0f766e", TermsText: "Be nice.\n\nNo scanning.", TermsVersion: "v3",
				VenueInfoURL: "https://deskgate.example/berlin", TimeZone: "Europe/Berlin"},
		},
		DefaultLocation: "loc-berlin",
		CSRFKey:         []byte("0123456789abcdef0123456789abcdef"),
		Now:             e.clock.Now,
		RateLimit:       1000,
		RateBurst:       1000,
		OnboardURL:      func(id string) string { return "/onboard?member=" + url.QueryEscape(id) },
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg, e.backend, e.net, e.res, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	return e
}

// browser is one client device: an IP, a cookie jar, a language.
type browser struct {
	e       *env
	ip      string
	host    string
	lang    string
	cookies map[string]*http.Cookie
}

func (e *env) browser(ip string) *browser {
	return &browser{e: e, ip: ip, host: "portal.deskgate.lan", cookies: make(map[string]*http.Cookie)}
}

func (b *browser) do(method, target string, form url.Values) *http.Response {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	if !strings.HasPrefix(target, "http") {
		r.Host = b.host
	}
	r.RemoteAddr = b.ip + ":40000"
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.lang != "" {
		r.Header.Set("Accept-Language", b.lang)
	}
	for _, c := range b.cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	b.e.srv.Handler().ServeHTTP(w, r)
	res := w.Result()
	for _, c := range res.Cookies() {
		b.cookies[c.Name] = c
	}
	return res
}

func (b *browser) get(target string) (*http.Response, string) {
	b.e.t.Helper()
	res := b.do("GET", target, nil)
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// post submits a form the way a browser would: first GET the page holding
// it to pick up the CSRF token, then POST with it.
func (b *browser) post(page, action string, form url.Values) (*http.Response, string) {
	b.e.t.Helper()
	_, html := b.get(page)
	m := csrfRE.FindStringSubmatch(html)
	if m == nil {
		b.e.t.Fatalf("GET %s: no CSRF token in page:\n%s", page, html)
	}
	form.Set("csrf", m[1])
	res := b.do("POST", action, form)
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func codeForm(code string) url.Values {
	return url.Values{"code": {code}, "terms": {"v3"}}
}

func (b *browser) loginCode(code string) (*http.Response, string) {
	b.e.t.Helper()
	return b.post("/", "/login/code", codeForm(code))
}

func regexpMust(s string) *regexp.Regexp { return regexp.MustCompile(s) }
