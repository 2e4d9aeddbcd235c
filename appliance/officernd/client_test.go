package officernd

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func memberHandler(w http.ResponseWriter, r *http.Request, rest string) {
	if strings.HasPrefix(rest, "members/") {
		writeJSON(w, 200, Member{ID: strings.TrimPrefix(rest, "members/"), Name: "Ada"})
		return
	}
	writeJSON(w, 404, ErrorBody{StatusCode: 404, Message: "Item with Id (" + rest + ") not found", Error: "Not Found"})
}

func TestTokenCachedAndSentInBody(t *testing.T) {
	e := newEnv(t, nil)
	e.f.api = memberHandler
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		m, err := e.c.Member(ctx, "m1")
		if err != nil {
			t.Fatal(err)
		}
		if m.ID != "m1" || m.Name != "Ada" {
			t.Fatalf("got %+v", m)
		}
	}
	if got := e.f.tokens(); got != 1 {
		t.Errorf("token fetches at fake = %d, want 1", got)
	}
	if got := e.c.Stats().TokenFetches; got != 1 {
		t.Errorf("Stats.TokenFetches = %d, want 1", got)
	}
	form := e.f.tokenReqs[0]
	if form.Get("client_secret") != testSecret || form.Get("client_id") != testID {
		t.Errorf("credentials not in body: %v", form)
	}
	if got, want := form.Get("scope"), "flex.community.members.read flex.community.memberships.read"; got != want {
		t.Errorf("scope = %q, want %q", got, want)
	}
	if r := e.f.requests()[0]; r.URL.Path != "/api/v2/organizations/acme/members/m1" || r.Header.Get("Authorization") != "Bearer tok-1" {
		t.Errorf("request %s auth %q", r.URL.Path, r.Header.Get("Authorization"))
	}
	if got := e.c.Stats().ByResource["members"]; got != 10 {
		t.Errorf("ByResource[members] = %d, want 10", got)
	}
}

func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	e := newEnv(t, nil)
	e.f.api = memberHandler
	ctx := context.Background()
	get := func() string {
		t.Helper()
		if _, err := e.c.Member(ctx, "m1"); err != nil {
			t.Fatal(err)
		}
		rs := e.f.requests()
		return rs[len(rs)-1].Header.Get("Authorization")
	}
	if got := get(); got != "Bearer tok-1" {
		t.Fatalf("first call used %q", got)
	}
	e.advance(3599*time.Second - 70*time.Second) // 70 s before expiry: still cached
	if got := get(); got != "Bearer tok-1" {
		t.Errorf("70s before expiry used %q, want cached tok-1", got)
	}
	e.advance(20 * time.Second) // 50 s before expiry: inside the 60 s margin
	if got := get(); got != "Bearer tok-2" {
		t.Errorf("50s before expiry used %q, want fresh tok-2", got)
	}
}

func TestRevokedTokenRefetchedOnce(t *testing.T) {
	e := newEnv(t, nil)
	e.f.api = memberHandler
	ctx := context.Background()
	if _, err := e.c.Member(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	e.f.revoke()
	if _, err := e.c.Member(ctx, "m1"); err != nil {
		t.Fatalf("after revoke: %v", err)
	}
	if got := e.f.tokens(); got != 2 {
		t.Errorf("tokens = %d, want 2", got)
	}
}

func TestListPaging(t *testing.T) {
	e := newEnv(t, nil)
	all := fakeMembers(120)
	serve := pager(t, all)
	e.f.api = func(w http.ResponseWriter, r *http.Request, rest string) { serve(w, r) }
	var got []Member
	var sizes []int
	res, err := ListWithResult(context.Background(), e.c, ResMembers, Query{Limit: 80}, func(p []Member) error {
		sizes = append(sizes, len(p))
		got = append(got, p...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{50, 50, 20}, sizes); diff != "" {
		t.Errorf("page sizes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(all, got); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	if res.Pages != 3 || res.Items != 120 || res.FullScan {
		t.Errorf("result = %+v", res)
	}
	var cursors []string
	for _, r := range e.f.requests() {
		q := r.URL.Query()
		if q.Get("$limit") != "50" {
			t.Errorf("$limit = %q, want 50", q.Get("$limit"))
		}
		if q.Has("$cursorPrev") {
			t.Errorf("sent $cursorPrev")
		}
		cursors = append(cursors, q.Get("$cursorNext"))
	}
	if diff := cmp.Diff([]string{"", "cur-50", "cur-100"}, cursors); diff != "" {
		t.Errorf("cursors (-want +got):\n%s", diff)
	}
}

func TestListStopsOnCallbackErrorAndRepeatedCursor(t *testing.T) {
	e := newEnv(t, nil)
	e.f.api = func(w http.ResponseWriter, r *http.Request, rest string) {
		writeJSON(w, 200, ListPage[Member]{RangeStart: 1, RangeEnd: 1, CursorNext: "same", Results: fakeMembers(1)})
	}
	stop := errors.New("stop")
	err := List(context.Background(), e.c, ResMembers, Query{}, func([]Member) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("callback error: got %v", err)
	}
	err = List(context.Background(), e.c, ResMembers, Query{}, func([]Member) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "repeated") {
		t.Errorf("repeated cursor: got %v", err)
	}
}

func TestRetryAfter429(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		want         time.Duration
	}{
		{"seconds", "7", 7 * time.Second},
		{"http-date", time.Date(2026, 11, 27, 4, 0, 12, 0, time.UTC).Format(http.TimeFormat), 12 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			var n atomic.Int32
			e.f.api = func(w http.ResponseWriter, r *http.Request, rest string) {
				if n.Add(1) == 1 {
					w.Header().Set("Retry-After", tc.header)
					writeJSON(w, 429, ErrorBody{StatusCode: 429, Message: "Too Many Requests"})
					return
				}
				memberHandler(w, r, rest)
			}
			if _, err := e.c.Member(context.Background(), "m1"); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]time.Duration{tc.want}, e.slept()); diff != "" {
				t.Errorf("sleeps (-want +got):\n%s", diff)
			}
			st := e.c.Stats()
			if st.Requests != 2 || st.Retries != 1 || st.RateLimitWaits != 1 || st.RateLimitWaitTime != tc.want {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

func TestRateLimitedExhausted(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxRetries = 2 })
	e.f.api = func(w http.ResponseWriter, r *http.Request, rest string) {
		writeJSON(w, 429, ErrorBody{StatusCode: 429, Message: "Too Many Requests"})
	}
	_, err := e.c.Member(context.Background(), "m1")
	if !errors.Is(err, ErrRateLimited) {
		t.Fatalf("got %v, want ErrRateLimited", err)
	}
	if got := len(e.f.requests()); got != 3 {
		t.Errorf("requests = %d, want 3", got)
	}
}

func TestRemainingZeroWaitsForReset(t *testing.T) {
	e := newEnv(t, nil)
	e.f.api = func(w http.ResponseWriter, r *http.Request, rest string) {
		w.Header().Set("x-ratelimit-remaining-read-minute", "0")
		w.Header().Set("x-ratelimit-reset-read-minute", "9")
		memberHandler(w, r, rest)
	}
	ctx := context.Background()
	if _, err := e.c.Member(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	if len(e.slept()) != 0 {
		t.Fatalf("slept before any limit: %v", e.slept())
	}
	if _, err := e.c.Member(ctx, "m2"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]time.Duration{9 * time.Second}, e.slept()); diff != "" {
		t.Errorf("sleeps (-want +got):\n%s", diff)
	}
	if st := e.c.Stats(); st.RateLimitWaits != 1 || st.RateLimitWaitTime != 9*time.Second {
		t.Errorf("stats = %+v", st)
	}
}

func TestServerErrorsRetriedThenSuccess(t *testing.T) {
	e := newEnv(t, nil)
	var n atomic.Int32
	e.f.api = func(w http.ResponseWriter, r *http.Request, rest string) {
		if n.Add(1) <= 2 {
			writeJSON(w, 500+int(n.Load()), ErrorBody{StatusCode: 500, Message: "Internal server error"})
			return
		}
		memberHandler(w, r, rest)
	}
	if _, err := e.c.Member(context.Background(), "m1"); err != nil {
		t.Fatal(err)
	}
	st := e.c.Stats()
	if st.Requests != 3 || st.Retries != 2 {
		t.Errorf("stats = %+v, want 3 requests 2 retries", st)
	}
	if s := e.slept(); len(s) != 2 || s[0] > 500*time.Millisecond || s[1] > time.Second {
		t.Errorf("backoff sleeps %v exceed full-jitter ceilings 0.5s, 1s", s)
	}
}

func TestNotRetried(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		msg     any
		want    error
		wantMsg string
	}{
		{"bad request", 400, []string{"property foo should not exist"}, ErrBadRequest, "property foo should not exist"},
		{"not found", 404, "Item with Id (x) not found", ErrNotFound, "not found"},
		{"conflict", 409, "conflict", nil, "409"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.f.api = func(w http.ResponseWriter, r *http.Request, rest string) {
				writeJSON(w, tc.status, ErrorBody{StatusCode: tc.status, Message: tc.msg})
			}
			_, err := e.c.Member(context.Background(), "m1")
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != tc.status {
				t.Fatalf("got %v, want *APIError %d", err, tc.status)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q lacks %q", err, tc.wantMsg)
			}
			if got := len(e.f.requests()); got != 1 {
				t.Errorf("requests = %d, want 1", got)
			}
		})
	}
}

func TestOrgNotFoundNotRetried(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.OrgSlug = "no-such-org" })
	_, err := e.c.Member(context.Background(), "m1")
	if !errors.Is(err, ErrOrgNotFound) {
		t.Fatalf("got %v, want ErrOrgNotFound", err)
	}
	if errors.Is(err, ErrServer) {
		t.Errorf("org-not-found also matches ErrServer")
	}
	if got := len(e.f.requests()); got != 1 {
		t.Errorf("requests = %d, want 1", got)
	}
}

func TestBadCredentials(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ClientSecret = "wrong" })
	e.f.api = memberHandler
	_, err := e.c.Member(context.Background(), "m1")
	if !errors.Is(err, ErrCredentials) {
		t.Fatalf("got %v, want ErrCredentials", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error leaks the secret: %v", err)
	}
	if len(e.f.requests()) != 0 {
		t.Errorf("API called without a token")
	}
	if got := len(e.f.tokenReqs); got != 1 {
		t.Errorf("token requests = %d, want 1 (401 is not retried)", got)
	}
}

func TestUngrantedScope(t *testing.T) {
	t.Run("token request", func(t *testing.T) {
		e := newEnv(t, nil)
		e.f.granted = map[string]bool{"flex.community.members.read": true}
		_, err := e.c.Member(context.Background(), "m1")
		if !errors.Is(err, ErrScope) {
			t.Fatalf("got %v, want ErrScope", err)
		}
	})
	t.Run("api 401 with fresh token", func(t *testing.T) {
		e := newEnv(t, nil)
		e.f.api = func(w http.ResponseWriter, r *http.Request, rest string) {
			writeJSON(w, 401, ErrorBody{StatusCode: 401, Message: "Unauthorized access", Error: "Unauthorized"})
		}
		_, err := e.c.Member(context.Background(), "m1")
		if !errors.Is(err, ErrScope) {
			t.Fatalf("got %v, want ErrScope", err)
		}
		if got := len(e.f.requests()); got != 1 {
			t.Errorf("requests = %d, want 1", got)
		}
	})
}

func TestMembershipsModifiedAtFallback(t *testing.T) {
	e := newEnv(t, nil)
	ms := []Membership{{ID: "ms1", Plan: "p1"}, {ID: "ms2", Plan: "p1"}}
	serveMS := pager(t, ms)
	serveM := pager(t, fakeMembers(3))
	e.f.api = func(w http.ResponseWriter, r *http.Request, rest string) {
		switch rest {
		case "memberships":
			if r.URL.Query().Has("modifiedAt[$gt]") {
				writeJSON(w, 400, ErrorBody{StatusCode: 400, Message: []string{"property modifiedAt should not exist"}, Error: "Bad Request"})
				return
			}
			serveMS(w, r)
		case "members":
			serveM(w, r)
		}
	}
	ctx := context.Background()
	since := time.Date(2026, 11, 1, 8, 30, 0, 0, time.FixedZone("x", 3600))
	for i := 0; i < 2; i++ {
		got, res, err := e.c.Memberships(ctx, Query{ModifiedSince: since})
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if len(got) != 2 || !res.FullScan {
			t.Errorf("call %d: %d items, result %+v", i, len(got), res)
		}
	}
	if got := len(e.f.requests()); got != 3 {
		t.Errorf("requests = %d, want 3 (one rejected probe, then two full scans)", got)
	}
	if diff := cmp.Diff([]string{"memberships"}, e.c.FullScanFallbacks()); diff != "" {
		t.Errorf("fallbacks (-want +got):\n%s", diff)
	}
	// Members accept the filter and keep getting it.
	if _, res, err := e.c.Members(ctx, Query{ModifiedSince: since}); err != nil || res.FullScan {
		t.Fatalf("members: %v %+v", err, res)
	}
	rs := e.f.requests()
	if got := rs[len(rs)-1].URL.Query().Get("modifiedAt[$gt]"); got != "2026-11-01T07:30:00.000Z" {
		t.Errorf("modifiedAt[$gt] = %q", got)
	}
}

func TestPerRequestTimeout(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.RequestTimeout = 100 * time.Millisecond
		c.MaxRetries = 1
	})
	e.f.api = func(w http.ResponseWriter, r *http.Request, rest string) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}
	start := time.Now()
	_, err := e.c.Member(context.Background(), "m1")
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("got %v, want ErrUnreachable", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("took %v; per-request timeout not applied", el)
	}
	if got := len(e.f.requests()); got != 2 {
		t.Errorf("requests = %d, want 2 (timeouts are retried)", got)
	}
}

func TestUnreachable(t *testing.T) {
	srv := newFake(t)
	e := newEnv(t, func(c *Config) {
		c.APIBase = srv.srv.URL + "/api/v2"
		c.MaxRetries = 2
	})
	srv.srv.Close() // the token URL still works; the API host is gone
	_, err := e.c.Member(context.Background(), "m1")
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("got %v, want ErrUnreachable", err)
	}
	if st := e.c.Stats(); st.Requests != 3 {
		t.Errorf("attempts = %d, want 3", st.Requests)
	}
}

func TestContextCancelStopsRetrying(t *testing.T) {
	e := newEnv(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	e.f.api = func(w http.ResponseWriter, r *http.Request, rest string) {
		cancel()
		writeJSON(w, 503, ErrorBody{StatusCode: 503, Message: "unavailable"})
	}
	_, err := e.c.Member(ctx, "m1")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if got := len(e.f.requests()); got != 1 {
		t.Errorf("requests = %d, want 1", got)
	}
}

func TestWritesAndWebhooks(t *testing.T) {
	e := newEnv(t, nil)
	var methods []string
	var hooks []Webhook
	e.f.api = func(w http.ResponseWriter, r *http.Request, rest string) {
		methods = append(methods, r.Method+" "+rest)
		switch {
		case rest == "webhooks" && r.Method == http.MethodPost:
			var wh Webhook
			if err := decodeBody(r, &wh); err != nil {
				writeJSON(w, 400, ErrorBody{StatusCode: 400, Message: err.Error()})
				return
			}
			wh.ID, wh.Secret, wh.IsEnabled = "wh1", "s3cr3t", true
			hooks = append(hooks, wh)
			writeJSON(w, 201, wh)
		case rest == "webhooks":
			writeJSON(w, 200, ListPage[Webhook]{RangeStart: 1, RangeEnd: len(hooks), Results: hooks})
		case strings.HasPrefix(rest, "webhooks/") && r.Method == http.MethodDelete:
			writeJSON(w, 200, hooks[0])
			hooks = nil
		default:
			writeJSON(w, 200, map[string]string{"_id": "x"})
		}
	}
	ctx := context.Background()
	wh, err := e.c.RegisterWebhook(ctx, "https://gw.example/hook", []string{"membership.updated"}, "deskgate")
	if err != nil {
		t.Fatal(err)
	}
	if wh.ID != "wh1" || wh.Secret != "s3cr3t" || wh.URL != "https://gw.example/hook" {
		t.Errorf("registered %+v", wh)
	}
	list, err := e.c.ListWebhooks(ctx)
	if err != nil || len(list) != 1 || list[0].EventTypes[0] != "membership.updated" {
		t.Fatalf("list: %v %+v", err, list)
	}
	if err := e.c.DeleteWebhook(ctx, "wh1"); err != nil {
		t.Fatal(err)
	}
	if _, err := Update[Membership](ctx, e.c, ResMemberships, "ms1", map[string]string{"endDate": "2026-12-01"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Update[Member](ctx, e.c, ResMembers, "m 1", map[string]string{"name": "x"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"POST webhooks", "GET webhooks", "DELETE webhooks/wh1", "PUT memberships/ms1", "PATCH members/m 1"}
	if diff := cmp.Diff(want, methods); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestNewValidates(t *testing.T) {
	ok := Config{OrgSlug: "a", ClientID: "i", ClientSecret: "s"}
	for name, mod := range map[string]func(*Config){
		"no slug":    func(c *Config) { c.OrgSlug = "" },
		"slash slug": func(c *Config) { c.OrgSlug = "a/b" },
		"no secret":  func(c *Config) { c.ClientSecret = "" },
		"bad base":   func(c *Config) { c.APIBase = "ftp://x" },
		"bad token":  func(c *Config) { c.TokenURL = "::" },
	} {
		cfg := ok
		mod(&cfg)
		if _, err := New(context.Background(), cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	if _, err := New(context.Background(), ok); err != nil {
		t.Errorf("minimal config: %v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":     0,
		"0":    0,
		"3":    3 * time.Second,
		"1.5":  1500 * time.Millisecond,
		"junk": 0,
		now.Add(time.Minute).Format(http.TimeFormat):  time.Minute,
		now.Add(-time.Minute).Format(http.TimeFormat): 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
	for in, want := range map[string]time.Duration{
		"30":            30 * time.Second,
		"1767225620":    20 * time.Second,
		"1767225620000": 20 * time.Second,
		"x":             0,
	} {
		if got := parseReset(in, now); got != want {
			t.Errorf("parseReset(%q) = %v, want %v", in, got, want)
		}
	}
}

func decodeBody(r *http.Request, v any) error {
	defer r.Body.Close()
	return jsonDecode(r.Body, v)
}

var _ = url.Values{}

func TestTokenEndpointErrors(t *testing.T) {
	t.Run("5xx retried", func(t *testing.T) {
		e := newEnv(t, nil)
		e.f.api = memberHandler
		var n atomic.Int32
		e.f.tokenHook = func(w http.ResponseWriter, r *http.Request) bool {
			if n.Add(1) == 1 {
				writeJSON(w, 503, Token{Error: "temporarily_unavailable"})
				return true
			}
			return false
		}
		if _, err := e.c.Member(context.Background(), "m1"); err != nil {
			t.Fatal(err)
		}
		if got := e.c.Stats().TokenFetches; got != 2 {
			t.Errorf("token fetches = %d, want 2", got)
		}
	})
	t.Run("unusable response not retried", func(t *testing.T) {
		e := newEnv(t, nil)
		e.f.tokenHook = func(w http.ResponseWriter, r *http.Request) bool {
			writeJSON(w, 200, map[string]string{"hello": "world"})
			return true
		}
		_, err := e.c.Member(context.Background(), "m1")
		if err == nil || !strings.Contains(err.Error(), "token_url") || errors.Is(err, ErrUnreachable) {
			t.Fatalf("got %v", err)
		}
		if got := e.c.Stats().TokenFetches; got != 1 {
			t.Errorf("token fetches = %d, want 1", got)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		dead := newFake(t)
		dead.srv.Close()
		e := newEnv(t, func(c *Config) { c.TokenURL = dead.srv.URL + "/oauth/token"; c.MaxRetries = 1 })
		_, err := e.c.Member(context.Background(), "m1")
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("got %v, want ErrUnreachable", err)
		}
		if got := e.c.Stats().TokenFetches; got != 2 {
			t.Errorf("token fetches = %d, want 2", got)
		}
	})
}

func TestConcurrentCallsShareOneToken(t *testing.T) {
	e := newEnv(t, nil)
	e.f.api = memberHandler
	errc := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			_, err := e.c.Member(context.Background(), "m1")
			errc <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
	if got := e.f.tokens(); got != 1 {
		t.Errorf("tokens = %d, want 1", got)
	}
	if st := e.c.Stats(); st.Requests != 8 || st.ByResource[ResMembers] != 8 {
		t.Errorf("stats %+v", st)
	}
}

func TestDailyQuotaFailsFast(t *testing.T) {
	e := newEnv(t, nil)
	e.f.api = func(w http.ResponseWriter, r *http.Request, rest string) {
		w.Header().Set("x-ratelimit-remaining-read-day", "0")
		w.Header().Set("x-ratelimit-reset-read-day", "3600")
		memberHandler(w, r, rest)
	}
	ctx := context.Background()
	if _, err := e.c.Member(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Member(ctx, "m1"); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("got %v, want ErrRateLimited", err)
	}
	if got := len(e.f.requests()); got != 1 {
		t.Errorf("requests = %d, want 1", got)
	}
	e.advance(time.Hour + time.Second)
	if _, err := e.c.Member(ctx, "m1"); err != nil {
		t.Errorf("after reset: %v", err)
	}
}
