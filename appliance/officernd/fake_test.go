package officernd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// leakTransport counts response bodies that were handed out and not yet
// closed; the test fails if any is left open at cleanup.
type leakTransport struct {
	rt   http.RoundTripper
	open atomic.Int64
}

type countedBody struct {
	io.ReadCloser
	lt   *leakTransport
	once sync.Once
}

func (b *countedBody) Close() error {
	b.once.Do(func() { b.lt.open.Add(-1) })
	return b.ReadCloser.Close()
}

func (lt *leakTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := lt.rt.RoundTrip(r)
	if resp != nil && resp.Body != nil {
		lt.open.Add(1)
		resp.Body = &countedBody{ReadCloser: resp.Body, lt: lt}
	}
	return resp, err
}

func newLeakClient(t *testing.T) *http.Client {
	t.Helper()
	lt := &leakTransport{rt: &http.Transport{}}
	t.Cleanup(func() {
		if n := lt.open.Load(); n != 0 {
			t.Errorf("%d response bodies left open", n)
		}
	})
	return &http.Client{Transport: lt}
}

const (
	testSlug   = "acme"
	testID     = "client-id-1"
	testSecret = "client-secret-xyz"
)

// fakeORD is a small httptest fake of OfficeRnD's identity and v2 API.
type fakeORD struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	expiresIn int
	tokenN    int
	valid     map[string]bool
	granted   map[string]bool // nil: every scope
	tokenHook func(w http.ResponseWriter, r *http.Request) bool
	tokenReqs []url.Values
	apiReqs   []*http.Request
	api       func(w http.ResponseWriter, r *http.Request, resource string)
}

func newFake(t *testing.T) *fakeORD {
	f := &fakeORD{t: t, expiresIn: 3599, valid: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", f.token)
	mux.HandleFunc("/api/v2/organizations/{slug}/{rest...}", f.serveAPI)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeORD) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	f.mu.Lock()
	f.tokenReqs = append(f.tokenReqs, r.PostForm)
	hook := f.tokenHook
	f.mu.Unlock()
	if hook != nil && hook(w, r) {
		return
	}
	if _, _, ok := r.BasicAuth(); ok {
		writeJSON(w, 400, Token{Error: "invalid_request", ErrorDescription: "credentials must be in the body"})
		return
	}
	if r.PostForm.Get("client_id") != testID || r.PostForm.Get("client_secret") != testSecret {
		writeJSON(w, 401, Token{Error: "invalid_client", ErrorDescription: "Invalid client credentials"})
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, 400, Token{Error: "unsupported_grant_type"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range strings.Fields(r.PostForm.Get("scope")) {
		if f.granted != nil && !f.granted[s] {
			writeJSON(w, 400, Token{Error: "invalid_scope", ErrorDescription: "scope " + s + " not granted"})
			return
		}
	}
	f.tokenN++
	tok := fmt.Sprintf("tok-%d", f.tokenN)
	f.valid[tok] = true
	writeJSON(w, 200, Token{AccessToken: tok, TokenType: "Bearer", ExpiresIn: f.expiresIn, Scope: r.PostForm.Get("scope")})
}

func (f *fakeORD) serveAPI(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.apiReqs = append(f.apiReqs, r)
	ok := f.valid[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	api := f.api
	f.mu.Unlock()
	if !ok {
		writeJSON(w, 401, ErrorBody{StatusCode: 401, Message: "Unauthorized access", Error: "Unauthorized"})
		return
	}
	if r.PathValue("slug") != testSlug {
		writeJSON(w, 500, ErrorBody{StatusCode: 500, Message: "Organization not found", Error: "Internal Server Error"})
		return
	}
	if api == nil {
		writeJSON(w, 404, ErrorBody{StatusCode: 404, Message: "Cannot GET " + r.URL.Path, Error: "Not Found"})
		return
	}
	api(w, r, r.PathValue("rest"))
}

func (f *fakeORD) revoke() {
	f.mu.Lock()
	f.valid = map[string]bool{}
	f.mu.Unlock()
}

func (f *fakeORD) tokens() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokenN
}

func (f *fakeORD) requests() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.apiReqs...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// testEnv is a client wired to a fake with a manual clock and recorded sleeps.
type testEnv struct {
	f      *fakeORD
	c      *Client
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (e *testEnv) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

func (e *testEnv) slept() []time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Duration(nil), e.sleeps...)
}

func newEnv(t *testing.T, mod func(*Config)) *testEnv {
	t.Helper()
	e := &testEnv{f: newFake(t), now: time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)}
	cfg := Config{
		APIBase:      e.f.srv.URL + "/api/v2",
		TokenURL:     e.f.srv.URL + "/oauth/token",
		OrgSlug:      testSlug,
		ClientID:     testID,
		ClientSecret: testSecret,
		Scopes:       []string{"flex.community.members.read", "flex.community.memberships.read"},
		HTTPClient:   newLeakClient(t),
		Now: func() time.Time {
			e.mu.Lock()
			defer e.mu.Unlock()
			return e.now
		},
		Sleep: func(ctx context.Context, d time.Duration) error {
			e.mu.Lock()
			e.sleeps = append(e.sleeps, d)
			e.now = e.now.Add(d)
			e.mu.Unlock()
			return ctx.Err()
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.c = c
	return e
}

// members returns n members with ids m000, m001, ...
func fakeMembers(n int) []Member {
	out := make([]Member, n)
	for i := range out {
		out[i] = Member{ID: fmt.Sprintf("m%03d", i), Name: fmt.Sprintf("Member %d", i), Status: "active"}
	}
	return out
}

// pager serves items in pages honouring $limit and an opaque $cursorNext.
func pager[T any](t *testing.T, items []T) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit := 50
		if s := q.Get("$limit"); s != "" {
			fmt.Sscan(s, &limit)
		}
		if limit > 50 {
			writeJSON(w, 400, ErrorBody{StatusCode: 400, Message: []string{"$limit must not be greater than 50"}, Error: "Bad Request"})
			return
		}
		start := 0
		if c := q.Get("$cursorNext"); c != "" {
			if _, err := fmt.Sscanf(c, "cur-%d", &start); err != nil {
				writeJSON(w, 500, ErrorBody{StatusCode: 500, Message: "bad cursor", Error: "Internal Server Error"})
				return
			}
		}
		end := min(start+limit, len(items))
		page := ListPage[T]{RangeStart: start + 1, RangeEnd: end, Results: items[start:end]}
		if end < len(items) {
			page.CursorNext = fmt.Sprintf("cur-%d", end)
		}
		if start > 0 {
			page.CursorPrev = fmt.Sprintf("cur-%d", start)
		}
		writeJSON(w, 200, page)
	}
}

func jsonDecode(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
