package officerndsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/officernd"
)

// testClock is a settable simulated clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// 10:00 in New York.
var t0 = time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)

type env struct {
	t     *testing.T
	sim   *Sim
	srv   *httptest.Server
	clock *testClock
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	clk := &testClock{t: t0}
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	opts.RetryDelay = 10 * time.Millisecond
	sim := New(opts)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return &env{t: t, sim: sim, srv: srv, clock: clk}
}

// call sends a request with the env's token and decodes a JSON answer
// into out (when not nil).
func (e *env) call(method, path string, body any, out any) *http.Response {
	e.t.Helper()
	// A fresh token per call: tests move the clock past token expiry.
	return e.callTok(e.sim.IssueToken(), method, path, body, out)
}

func (e *env) callTok(tok, method, path string, body any, out any) *http.Response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	if !strings.HasPrefix(path, "/") {
		path = e.sim.BasePath() + "/" + path
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return resp
}

// wantError checks a NestJS error answer.
func (e *env) wantError(method, path string, body any, code int, msg string) {
	e.t.Helper()
	var eb officernd.ErrorBody
	resp := e.call(method, path, body, &eb)
	if resp.StatusCode != code || !strings.Contains(eb.Text(), msg) || eb.StatusCode != code {
		e.t.Errorf("%s %s: got %d %+v, want %d containing %q", method, path, resp.StatusCode, eb, code, msg)
	}
}

func (e *env) token(form url.Values) (int, officernd.Token) {
	e.t.Helper()
	resp, err := e.srv.Client().PostForm(e.srv.URL+"/oauth/token", form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok officernd.Token
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, tok
}

func creds(scope string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {DefaultClientID},
		"client_secret": {DefaultClientSecret}, "scope": {scope}}
}

func TestTokenAndScopes(t *testing.T) {
	e := newEnv(t, Options{Seed: true, Scopes: []string{"flex.community.members.read", "flex.billing.plans.read"}})

	code, tok := e.token(creds("flex.community.members.read"))
	if code != 200 || tok.TokenType != "Bearer" || tok.ExpiresIn != 3599 || tok.Scope != "flex.community.members.read" || len(tok.AccessToken) < 32 {
		t.Fatalf("token: %d %+v", code, tok)
	}
	bad := creds("flex.community.members.read")
	bad.Set("client_secret", "wrong")
	if code, tk := e.token(bad); code != 401 || tk.Error != "invalid_client" {
		t.Errorf("bad secret: %d %+v", code, tk)
	}
	if code, tk := e.token(creds("flex.community.members.read flex.community.memberships.read")); code != 400 || tk.Error != "invalid_scope" {
		t.Errorf("ungranted scope: %d %+v", code, tk)
	}

	var page officernd.ListPage[officernd.Member]
	if resp := e.callTok(tok.AccessToken, "GET", "members", nil, &page); resp.StatusCode != 200 || len(page.Results) == 0 {
		t.Fatalf("members with token: %d %+v", resp.StatusCode, page)
	}
	// A token without the resource's scope, no token, a bad token: 401.
	for _, tk := range []string{tok.AccessToken, "", "nope"} {
		var eb officernd.ErrorBody
		resp := e.callTok(tk, "GET", "plans", nil, &eb)
		if tk == tok.AccessToken {
			resp = e.callTok(tk, "GET", "memberships", nil, &eb)
		}
		if resp.StatusCode != 401 || eb.Text() != "Unauthorized access" || eb.Error != "Unauthorized" {
			t.Errorf("token %q: %d %+v", tk, resp.StatusCode, eb)
		}
	}
	// Unknown organization: the real 500.
	var eb officernd.ErrorBody
	if resp := e.callTok(tok.AccessToken, "GET", "/api/v2/organizations/nope/members", nil, &eb); resp.StatusCode != 500 || eb.Text() != "Organization not found" {
		t.Errorf("unknown org: %d %+v", resp.StatusCode, eb)
	}
	// Tokens expire on the simulated clock.
	e.clock.Advance(3600 * time.Second)
	if resp := e.callTok(tok.AccessToken, "GET", "members", nil, nil); resp.StatusCode != 401 {
		t.Errorf("expired token: %d", resp.StatusCode)
	}
	if st := e.sim.Stats(); st.TokenRequests != 3 || st.Paths["GET /members"] != 3 {
		t.Errorf("stats: %+v", st)
	}
}

func TestPaging(t *testing.T) {
	e := newEnv(t, Options{ExtraMembers: 120})
	var ids []string
	path := "members?$limit=50"
	var pages []officernd.ListPage[officernd.Member]
	for {
		var p officernd.ListPage[officernd.Member]
		if resp := e.call("GET", path, nil, &p); resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		pages = append(pages, p)
		for _, m := range p.Results {
			ids = append(ids, m.ID)
		}
		if p.CursorNext == "" {
			break
		}
		path = "members?$limit=50&$cursorNext=" + url.QueryEscape(p.CursorNext)
	}
	if len(pages) != 3 || len(ids) != 120 || !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != 120 {
		t.Fatalf("pages %d, ids %d (sorted %v)", len(pages), len(ids), slices.IsSorted(ids))
	}
	for i, want := range [][2]int{{1, 50}, {51, 100}, {101, 120}} {
		if pages[i].RangeStart != want[0] || pages[i].RangeEnd != want[1] {
			t.Errorf("page %d range %d-%d, want %v", i, pages[i].RangeStart, pages[i].RangeEnd, want)
		}
	}
	if pages[0].CursorPrev != "" || pages[1].CursorPrev == "" {
		t.Errorf("cursorPrev: first %q, second %q", pages[0].CursorPrev, pages[1].CursorPrev)
	}
	var back officernd.ListPage[officernd.Member]
	e.call("GET", "members?$cursorPrev="+url.QueryEscape(pages[1].CursorPrev), nil, &back)
	if len(back.Results) != 50 || back.Results[0].ID != ids[0] || back.RangeStart != 1 || back.CursorNext == "" {
		t.Errorf("prev page: %d items, range %d-%d", len(back.Results), back.RangeStart, back.RangeEnd)
	}
	var cnt officernd.CountResult
	if e.call("GET", "members/count", nil, &cnt); cnt.Total != 120 {
		t.Errorf("count %d", cnt.Total)
	}

	e.wantError("GET", "members?$limit=51", nil, 400, "$limit must not be greater than 50")
	if resp := e.call("GET", "members?$cursorNext="+url.QueryEscape(pages[0].CursorNext)+"&$cursorPrev="+url.QueryEscape(pages[1].CursorPrev), nil, nil); resp.StatusCode != 504 {
		t.Errorf("both cursors: %d", resp.StatusCode)
	}
	corrupt := []byte(pages[0].CursorNext)
	corrupt[len(corrupt)/2] ^= 0x01
	e.wantError("GET", "members?$cursorNext="+url.QueryEscape(string(corrupt)), nil, 500, "")

	// $select keeps _id and the named fields only.
	var sel struct{ Results []map[string]any }
	e.call("GET", "members?$limit=1&$select=name,email", nil, &sel)
	if len(sel.Results) != 1 || len(sel.Results[0]) != 3 {
		t.Errorf("$select: %v", sel.Results)
	}
	// $sort=-name with cursors visits everything once, in order.
	var names []string
	path = "members?$sort=-name"
	for path != "" {
		var p officernd.ListPage[officernd.Member]
		e.call("GET", path, nil, &p)
		for _, m := range p.Results {
			names = append(names, m.Name)
		}
		path = ""
		if p.CursorNext != "" {
			path = "members?$sort=-name&$cursorNext=" + url.QueryEscape(p.CursorNext)
		}
	}
	if len(names) != 120 || !slices.IsSortedFunc(names, func(a, b string) int { return strings.Compare(b, a) }) {
		t.Errorf("sorted listing: %d names, sorted desc %v", len(names), slices.IsSortedFunc(names, func(a, b string) int { return strings.Compare(b, a) }))
	}
	// Back from the second sorted page gives the first again.
	var p1, p2, p1again officernd.ListPage[officernd.Member]
	e.call("GET", "members?$sort=-name&$limit=30", nil, &p1)
	e.call("GET", "members?$sort=-name&$limit=30&$cursorNext="+url.QueryEscape(p1.CursorNext), nil, &p2)
	e.call("GET", "members?$sort=-name&$limit=30&$cursorPrev="+url.QueryEscape(p2.CursorPrev), nil, &p1again)
	if len(p1again.Results) != 30 || p1again.Results[0].ID != p1.Results[0].ID || p1again.Results[29].ID != p1.Results[29].ID || p2.RangeStart != 31 {
		t.Errorf("sorted prev page differs: range %d-%d", p1again.RangeStart, p1again.RangeEnd)
	}
	// A cursor only continues the sort it came from.
	e.wantError("GET", "members?$cursorNext="+url.QueryEscape(p1.CursorNext), nil, 500, "")
}

func TestQueryQuirks(t *testing.T) {
	e := newEnv(t, Options{Seed: true})
	e.wantError("GET", "memberships?modifiedAt[$gt]=2026-01-01T00:00:00.000Z", nil, 400, "property modifiedAt should not exist")
	e.wantError("GET", "memberships?$sort=name", nil, 400, "property $sort should not exist")
	e.wantError("GET", "members?foo=bar", nil, 400, "property foo should not exist")
	e.wantError("GET", "members?modifiedAt[$gt]=yesterday", nil, 400, "modifiedAt must be a valid ISO 8601 date string")
	e.wantError("GET", "members/"+strings.Repeat("0", 24), nil, 404, "Item with Id (000000000000000000000000) not found")
	e.wantError("PUT", "members/"+e.sim.Seeded().IDs["member:expired"], map[string]any{"name": "x"}, 404, "Cannot PUT")

	seed := e.sim.Seeded()
	var page officernd.ListPage[officernd.Member]
	e.call("GET", "members?status[$in]=drop-in,lead", nil, &page)
	if len(page.Results) != 3 {
		t.Errorf("status[$in]: %d results", len(page.Results))
	}
	var ms officernd.ListPage[officernd.Membership]
	e.call("GET", "memberships?member="+seed.IDs["member:two-memberships"], nil, &ms)
	if len(ms.Results) != 2 {
		t.Errorf("memberships by member: %d", len(ms.Results))
	}
	e.call("GET", "memberships?calculatedStatus=expired", nil, &ms)
	if len(ms.Results) != 2 {
		t.Errorf("expired memberships: %d", len(ms.Results))
	}

	// modifiedAt[$gt] returns only what changed since.
	e.clock.Advance(time.Hour)
	since := e.clock.Now().Add(-time.Minute).Format(time.RFC3339)
	id := seed.IDs["member:hotdesk-uptown"]
	var upd officernd.Member
	if resp := e.call("PATCH", "members/"+id, map[string]any{"phone": "+1 212 555 0199"}, &upd); resp.StatusCode != 200 || upd.Phone != "+1 212 555 0199" || !upd.ModifiedAt.Equal(e.clock.Now()) {
		t.Fatalf("patch: %d %+v", resp.StatusCode, upd)
	}
	e.call("GET", "members?modifiedAt[$gt]="+url.QueryEscape(since), nil, &page)
	if len(page.Results) != 1 || page.Results[0].ID != id {
		t.Errorf("modifiedAt[$gt]: %+v", page.Results)
	}
	var cnt officernd.CountResult
	if e.call("GET", "members/count?modifiedAt[$lte]="+url.QueryEscape(since), nil, &cnt); cnt.Total != len(seed.Members)-1 {
		t.Errorf("count modifiedAt[$lte]: %d", cnt.Total)
	}
}

func TestMembershipWrites(t *testing.T) {
	e := newEnv(t, Options{Seed: true})
	seed := e.sim.Seeded()
	e.wantError("POST", "memberships", map[string]any{"isPersonal": true}, 400, "name should not be empty")
	var eb officernd.ErrorBody
	e.call("POST", "memberships", map[string]any{"isPersonal": true}, &eb)
	if got := eb.Messages(); len(got) != 4 {
		t.Errorf("missing fields: %q", got)
	}
	base := map[string]any{"name": "Hot Desk", "isPersonal": true, "member": seed.IDs["member:lead"],
		"location": seed.IDs["location:Downtown"], "plan": seed.IDs["plan:Hot Desk"], "startDate": "2026-11-30"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		m[k] = v
		return m
	}
	e.wantError("POST", "memberships", with("status", "approved"), 400, "property status should not exist")
	e.wantError("POST", "memberships", with("calculatedStatus", "active"), 400, "property calculatedStatus should not exist")
	e.wantError("POST", "memberships", with("plan", seed.IDs["member:lead"]), 500, "Specified plan was not found")
	e.wantError("POST", "memberships", with("type", "fixed"), 400, "endDate should not be empty")
	e.wantError("POST", "memberships", with("isPersonal", false), 400, "company should not be empty")

	var ms officernd.Membership
	if resp := e.call("POST", "memberships", base, &ms); resp.StatusCode != 201 {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	if ms.Status != "approved" || ms.CalculatedStatus != "not_started" || ms.StartDate != "2026-11-30T00:00:00.000Z" || !ms.CreatedAt.Equal(t0) {
		t.Errorf("created: %+v", ms)
	}
	var m officernd.Member
	if e.call("GET", "members/"+seed.IDs["member:lead"], nil, &m); m.Status != "pending" {
		t.Errorf("member status after a future membership: %q", m.Status)
	}
	// The status moves with the clock: active from Nov 30 in New York.
	e.clock.Advance(3 * 24 * time.Hour) // Nov 30 10:00 New York
	e.call("GET", "memberships/"+ms.ID, nil, &ms)
	if ms.CalculatedStatus != "active" {
		t.Errorf("after start: %q", ms.CalculatedStatus)
	}
	var up officernd.Membership
	if resp := e.call("PUT", "memberships/"+ms.ID, map[string]any{"endDate": "2026-12-01"}, &up); resp.StatusCode != 200 || up.EndDate != "2026-12-01T00:00:00.000Z" {
		t.Fatalf("put: %d %+v", resp.StatusCode, up)
	}
	if e.call("GET", "members/"+seed.IDs["member:lead"], nil, &m); m.Status != "active" {
		t.Errorf("member status after the membership started and was written: %q", m.Status)
	}
	e.clock.Advance(24 * time.Hour) // Dec 1: the end date is still active
	if e.call("GET", "memberships/"+ms.ID, nil, &ms); ms.CalculatedStatus != "active" {
		t.Errorf("on end date: %q", ms.CalculatedStatus)
	}
	e.clock.Advance(14 * time.Hour) // Dec 2 04:00 New York
	if e.call("GET", "memberships/"+ms.ID, nil, &ms); ms.CalculatedStatus != "expired" {
		t.Errorf("after end date: %q", ms.CalculatedStatus)
	}
	if resp := e.call("PUT", "memberships/"+ms.ID, map[string]any{"status": "not_approved"}, &ms); resp.StatusCode != 200 || ms.CalculatedStatus != "not_approved" {
		t.Errorf("not approved: %d %+v", resp.StatusCode, ms)
	}
	var del officernd.Membership
	if resp := e.call("DELETE", "memberships/"+ms.ID, nil, &del); resp.StatusCode != 200 || del.ID != ms.ID {
		t.Errorf("delete: %d %+v", resp.StatusCode, del)
	}
	e.wantError("GET", "memberships/"+ms.ID, nil, 404, "not found")

	// Bookings: create, cancel.
	var bk officernd.Booking
	if resp := e.call("POST", "bookings", map[string]any{"resource": seed.IDs["resource:Studio"], "member": seed.IDs["member:lead"],
		"start": "2026-12-03T15:00:00Z", "end": "2026-12-03T16:00:00Z", "title": "Call"}, &bk); resp.StatusCode != 201 || bk.Location != seed.IDs["location:Uptown"] || bk.Timezone != "America/New_York" {
		t.Fatalf("booking: %d %+v", resp.StatusCode, bk)
	}
	if resp := e.call("POST", "bookings/"+bk.ID+"/cancel", nil, &bk); resp.StatusCode != 200 || !bk.IsCancelled {
		t.Errorf("cancel: %d %+v", resp.StatusCode, bk)
	}
}

func TestWebhookDelivery(t *testing.T) {
	type got struct {
		body []byte
		sig  string
	}
	ch := make(chan got, 16)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- got{b, r.Header.Get(officernd.SignatureHeader)}
	}))
	defer recv.Close()
	e := newEnv(t, Options{Seed: true})
	seed := e.sim.Seeded()

	var wh officernd.Webhook
	if resp := e.call("POST", "webhooks", map[string]any{"url": recv.URL, "eventTypes": []string{"member.updated", "membership.created"}, "description": "deskgate"}, &wh); resp.StatusCode != 201 || wh.Secret == "" || !wh.IsEnabled || len(wh.ID) != 24 {
		t.Fatalf("register: %d %+v", resp.StatusCode, wh)
	}
	var list officernd.ListPage[officernd.Webhook]
	if e.call("GET", "webhooks", nil, &list); len(list.Results) != 1 {
		t.Errorf("webhooks: %+v", list)
	}
	id := seed.IDs["member:desk-downtown"]
	e.call("PATCH", "members/"+id, map[string]any{"location": seed.IDs["location:Uptown"]}, nil)
	e.call("PATCH", "bookings/"+seed.IDs["booking:no-visitors"], map[string]any{"title": "x"}, nil) // not subscribed
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.sim.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(ch) != 1 {
		t.Fatalf("%d deliveries, want 1", len(ch))
	}
	d := <-ch
	if err := officernd.VerifySignature(d.sig, d.body, wh.Secret, e.clock.Now(), 0); err != nil {
		t.Fatalf("signature %q: %v", d.sig, err)
	}
	var raw struct {
		Event     string
		EventType string
		CreatedAt string
		Data      struct {
			Object             map[string]any
			PreviousAttributes map[string]any
		}
	}
	if err := json.Unmarshal(d.body, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.EventType != "member.updated" || len(raw.Event) != 24 || raw.Data.Object["office"] != seed.IDs["location:Uptown"] ||
		raw.Data.Object["location"] != nil || raw.Data.PreviousAttributes["office"] != seed.IDs["location:Downtown"] || len(raw.Data.PreviousAttributes) != 1 {
		t.Errorf("envelope: %s", d.body)
	}
	ev, err := officernd.ParseEvent(d.body)
	if err != nil {
		t.Fatal(err)
	}
	m, err := officernd.DecodeObject[officernd.Member](ev)
	if err != nil || m.ID != id || m.Location != seed.IDs["location:Uptown"] {
		t.Errorf("decoded: %+v %v", m, err)
	}
	if st := e.sim.Stats(); st.WebhooksDelivered != 1 || st.Events != 2 {
		t.Errorf("stats: %+v", st)
	}

	// Dropped webhooks are recorded, not delivered.
	e.sim.SetFaults(Faults{DropWebhooks: true})
	e.call("POST", "memberships", map[string]any{"name": "Hot Desk", "isPersonal": true, "member": id,
		"location": seed.IDs["location:Uptown"], "plan": seed.IDs["plan:Hot Desk"], "startDate": "2026-11-01"}, nil)
	if err := e.sim.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	evs := e.sim.Events()
	if st := e.sim.Stats(); len(ch) != 0 || st.WebhooksDropped != 1 || evs[len(evs)-1].Type != "membership.created" {
		t.Errorf("drop: %d delivered, stats %+v", len(ch), st)
	}

	// A failing receiver is retried once, then counted as failed.
	e.sim.SetFaults(Faults{})
	var tries int
	var mu sync.Mutex
	fail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		tries++
		mu.Unlock()
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer fail.Close()
	e.call("DELETE", "webhooks/"+wh.ID, nil, nil)
	e.call("POST", "webhooks", map[string]any{"url": fail.URL}, nil)
	e.call("PATCH", "members/"+id, map[string]any{"phone": "1"}, nil)
	if err := e.sim.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if st := e.sim.Stats(); tries != 2 || st.WebhooksFailed != 1 {
		t.Errorf("retry: %d tries, stats %+v", tries, st)
	}
}

func TestFaults(t *testing.T) {
	e := newEnv(t, Options{Seed: true})
	e.sim.SetFaults(Faults{RateLimitPerMinute: 3})
	for i := range 3 {
		resp := e.call("GET", "plans", nil, nil)
		if resp.StatusCode != 200 || resp.Header.Get("x-ratelimit-remaining-read-minute") != []string{"2", "1", "0"}[i] ||
			resp.Header.Get("x-ratelimit-limit-read-minute") != "3" || resp.Header.Get("x-ratelimit-reset-read-day") == "" ||
			resp.Header.Get("X-Powered-By") != "Express" {
			t.Errorf("read %d: %d %v", i, resp.StatusCode, resp.Header)
		}
	}
	e.clock.Advance(20 * time.Second)
	resp := e.call("GET", "plans", nil, nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "40" || resp.Header.Get("x-ratelimit-remaining-read-minute") != "0" {
		t.Errorf("throttled: %d %v", resp.StatusCode, resp.Header)
	}
	e.clock.Advance(41 * time.Second)
	if resp := e.call("GET", "plans", nil, nil); resp.StatusCode != 200 {
		t.Errorf("after reset: %d", resp.StatusCode)
	}

	e.sim.SetFaults(Faults{Fail500Every: 3})
	e.sim.ResetStats()
	var codes []int
	for range 6 {
		codes = append(codes, e.call("GET", "plans", nil, nil).StatusCode)
	}
	if !slices.Equal(codes, []int{200, 200, 500, 200, 200, 500}) || e.sim.Stats().Failed != 2 {
		t.Errorf("fail500: %v", codes)
	}

	e.sim.SetFaults(Faults{Down: true, Latency: 20 * time.Millisecond})
	start := time.Now()
	if resp := e.call("GET", "plans", nil, nil); resp.StatusCode != 503 {
		t.Errorf("down: %d", resp.StatusCode)
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Error("latency not applied")
	}
	if code, _ := e.tokenRaw(creds("")); code != 503 {
		t.Errorf("down token: %d", code)
	}

	e.sim.SetFaults(Faults{CloseConnections: true})
	if _, err := e.srv.Client().Get(e.srv.URL + e.sim.BasePath() + "/plans"); err == nil {
		t.Error("closed connection: no error")
	}
}

func (e *env) tokenRaw(form url.Values) (int, string) {
	resp, err := e.srv.Client().PostForm(e.srv.URL+"/oauth/token", form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSeedInvariants(t *testing.T) {
	e := newEnv(t, Options{Seed: true})
	seed := e.sim.Seeded()
	get := func(res string, out any) {
		t.Helper()
		var raw struct {
			Results json.RawMessage
		}
		if resp := e.call("GET", res+"?$limit=50", nil, &raw); resp.StatusCode != 200 {
			t.Fatalf("%s: %d", res, resp.StatusCode)
		}
		if err := json.Unmarshal(raw.Results, out); err != nil {
			t.Fatal(err)
		}
	}
	var members []officernd.Member
	var memberships []officernd.Membership
	var plans []officernd.Plan
	var locations []officernd.Location
	var resources []officernd.Resource
	var bookings []officernd.Booking
	var visitors []officernd.Visitor
	var passes []map[string]any
	var companies []officernd.Company
	get("members", &members)
	get("memberships", &memberships)
	get("plans", &plans)
	get("locations", &locations)
	get("resources", &resources)
	get("bookings", &bookings)
	get("visitors", &visitors)
	get("passes", &passes)
	get("companies", &companies)

	if len(members) < 20 || len(members) != len(seed.Members) || len(plans) != 5 || len(locations) != 2 || len(companies) != 2 {
		t.Fatalf("%d members, %d plans, %d locations, %d companies", len(members), len(plans), len(locations), len(companies))
	}
	planName := map[string]string{}
	for _, p := range plans {
		planName[p.ID] = p.Name
	}
	used := map[string]bool{}
	usedLoc := map[string]bool{}
	status := map[string]string{}
	for _, ms := range memberships {
		used[planName[ms.Plan]] = true
		usedLoc[ms.Location] = true
		if ms.Member != "" {
			status[ms.Member] = ms.CalculatedStatus
		}
	}
	for _, p := range passes {
		used[planName[p["plan"].(string)]] = true
	}
	if len(used) != 5 || len(usedLoc) != 2 {
		t.Errorf("plans used %v, locations used %v", used, usedLoc)
	}
	for role, want := range map[string]string{"expired": "expired", "not-started": "not_started", "not-approved": "not_approved", "hotdesk-downtown": "active", "starts-today": "active", "fixed-term": "active"} {
		if got := status[seed.IDs["member:"+role]]; got != want {
			t.Errorf("%s: calculatedStatus %q, want %q", role, got, want)
		}
	}
	team := 0
	for _, m := range members {
		if m.Company == seed.IDs["company:Acme"] {
			team++
			if m.Status != "active" {
				t.Errorf("team member %s status %q", m.Name, m.Status)
			}
		}
		if !strings.HasSuffix(m.Email, "@example.com") && !strings.HasSuffix(m.Email, "@example.org") {
			t.Errorf("email %q", m.Email)
		}
	}
	if team != 3 {
		t.Errorf("%d Acme team members", team)
	}
	var company officernd.Membership
	e.call("GET", "memberships/"+seed.IDs["membership:acme"], nil, &company)
	if company.IsPersonal || company.Company != seed.IDs["company:Acme"] || company.CalculatedStatus != "active" || planName[company.Plan] != "Private Office" {
		t.Errorf("company membership: %+v", company)
	}
	rooms := map[string]int{}
	for _, r := range resources {
		if r.Type == "meeting_room" {
			rooms[r.Location]++
		}
	}
	if len(rooms) != 2 || rooms[seed.IDs["location:Downtown"]] != 2 || rooms[seed.IDs["location:Uptown"]] != 2 {
		t.Errorf("meeting rooms: %v", rooms)
	}
	nv := map[int]int{}
	for _, b := range bookings {
		if !b.IsCancelled {
			nv[len(b.Visitors)]++
			if !b.Start.After(t0) || b.Start.After(t0.Add(48*time.Hour)) {
				t.Errorf("booking %q at %v is not upcoming today/tomorrow", b.Title, b.Start)
			}
		}
	}
	if nv[2] < 1 || nv[0] < 1 || len(visitors) < 3 {
		t.Errorf("bookings by visitor count %v, %d visitors", nv, len(visitors))
	}
	ps := map[string]bool{}
	for _, p := range passes {
		ps[p["status"].(string)] = true
	}
	if !ps["valid"] || !ps["used"] {
		t.Errorf("pass statuses %v", ps)
	}
	for _, sm := range seed.Members {
		if sm.Role == "" || sm.ID == "" || sm.Status == "" || sm.Location == "" {
			t.Errorf("seed member %+v", sm)
		}
	}
	if got := seed.IDs["member:hotdesk-downtown"]; got != New(Options{Seed: true, Now: e.clock.Now}).Seeded().IDs["member:hotdesk-downtown"] {
		t.Errorf("seed ids are not deterministic")
	}
}

// TestTypesRoundTrip checks that every seeded record decodes into the
// client's types without losing fields the types know.
func TestTypesRoundTrip(t *testing.T) {
	e := newEnv(t, Options{Seed: true})
	check := func(res string, decode func([]byte) (any, error), extra ...string) {
		var raw struct{ Results []json.RawMessage }
		e.call("GET", res, nil, &raw)
		for _, r := range raw.Results {
			v, err := decode(r)
			if err != nil {
				t.Fatalf("%s: %v", res, err)
			}
			back, _ := json.Marshal(v)
			var in, out map[string]any
			_ = json.Unmarshal(r, &in)
			_ = json.Unmarshal(back, &out)
			for k, val := range in {
				if _, ok := out[k]; !ok && !slices.Contains(extra, k) && val != false && !isZeroJSON(val) {
					t.Errorf("%s: field %s (%v) lost by the client type", res, k, val)
				}
			}
		}
	}
	dec := func(v any) func([]byte) (any, error) {
		return func(b []byte) (any, error) { err := json.Unmarshal(b, v); return v, err }
	}
	// Known fields the shared types do not carry (reported to the lead).
	check("members", dec(&officernd.Member{}), "portalPrivacy")
	check("companies", dec(&officernd.Company{}))
	check("memberships", dec(&officernd.Membership{}))
	check("plans", dec(&officernd.Plan{}))
	check("locations", dec(&officernd.Location{}))
	check("resources", dec(&officernd.Resource{}))
	check("bookings", dec(&officernd.Booking{}), "isAccounted", "createdBy", "modifiedBy")
	check("visitors", dec(&officernd.Visitor{}), "createdBy", "modifiedBy")
	check("passes", dec(&officernd.Pass{}), "plan", "createdBy", "modifiedBy")
}

func isZeroJSON(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case float64:
		return x == 0
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

func TestWithClient(t *testing.T) {
	e := newEnv(t, Options{Seed: true, ExtraMembers: 60})
	ctx := context.Background()
	cfg := e.sim.ClientConfig(e.srv.URL)
	cfg.HTTPClient, cfg.Now = e.srv.Client(), e.clock.Now
	cfg.Scopes = append(slices.Clone(officernd.DefaultScopes), officernd.WebhookScopes...)
	c, err := officernd.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	members, res, err := c.Members(ctx, officernd.Query{})
	if err != nil || len(members) != len(e.sim.Seeded().Members)+60 || res.Pages != 2 {
		t.Fatalf("members: %d, %+v, %v", len(members), res, err)
	}
	_, res, err = c.Memberships(ctx, officernd.Query{ModifiedSince: t0.Add(-time.Hour)})
	if err != nil || !res.FullScan {
		t.Errorf("memberships incremental: %+v %v", res, err)
	}
	e.clock.Advance(time.Minute)
	id := e.sim.Seeded().IDs["member:hotdesk-downtown"]
	if _, err := e.sim.Update("members", id, map[string]any{"phone": "+1 555"}); err != nil {
		t.Fatal(err)
	}
	changed, res, err := c.Members(ctx, officernd.Query{ModifiedSince: t0})
	if err != nil || res.FullScan || len(changed) != 1 || changed[0].ID != id {
		t.Errorf("members incremental: %+v %+v %v", changed, res, err)
	}

	wh, err := c.RegisterWebhook(ctx, "https://gw.example.org/hook", []string{"membership.updated"}, "deskgate")
	if err != nil || wh.Secret == "" {
		t.Fatalf("register: %+v %v", wh, err)
	}
	hooks, err := c.ListWebhooks(ctx)
	if err != nil || len(hooks) != 1 || hooks[0].EventTypes[0] != "membership.updated" {
		t.Fatalf("list: %+v %v", hooks, err)
	}
	if err := c.DeleteWebhook(ctx, wh.ID); err != nil {
		t.Fatal(err)
	}
	var plans []officernd.Plan
	plans, _, err = c.Plans(ctx, officernd.Query{})
	if err != nil || len(plans) != 5 {
		t.Errorf("plans: %d %v", len(plans), err)
	}
}

func TestEventsAndPayloads(t *testing.T) {
	for _, v2 := range []bool{false, true} {
		e := newEnv(t, Options{Seed: true, V2Payloads: v2})
		seed := e.sim.Seeded()
		e.call("PATCH", "companies/"+seed.IDs["company:Acme"], map[string]any{"url": "https://acme.example.org"}, nil)
		e.call("PUT", "passes/"+seed.IDs["pass:valid"], map[string]any{"usedCount": 1}, nil)
		e.call("PATCH", "bookings/"+seed.IDs["booking:one-visitor"], map[string]any{"title": "Moved"}, nil)
		e.call("DELETE", "members/"+seed.IDs["member:lead"], nil, nil)
		// Ending the company membership makes the team members former.
		e.call("PUT", "memberships/"+seed.IDs["membership:acme"], map[string]any{"endDate": "2026-11-01"}, nil)
		var types []string
		for _, ev := range e.sim.Events() {
			types = append(types, ev.Type)
		}
		want := []string{"company.updated", "pass.updated", "booking.updated", "member.removed", "membership.updated",
			"member.updated", "member.updated", "member.updated"}
		if !slices.Equal(types, want) {
			t.Errorf("v2=%v events %v, want %v", v2, types, want)
		}
		evs := e.sim.Events()
		var pass map[string]any
		_ = json.Unmarshal(evs[1].Data.Object, &pass)
		var prev map[string]any
		_ = json.Unmarshal(evs[1].Data.PreviousAttributes, &prev)
		if pass["status"] != "used" || prev["status"] != "valid" || prev["usedCount"] != 0.0 {
			t.Errorf("pass event: %s / %s", evs[1].Data.Object, evs[1].Data.PreviousAttributes)
		}
		var bk map[string]any
		_ = json.Unmarshal(evs[2].Data.Object, &bk)
		if _, hasOffice := bk["office"]; hasOffice == v2 {
			t.Errorf("v2=%v booking payload %s", v2, evs[2].Data.Object)
		}
		m, err := officernd.DecodeObject[officernd.Member](evs[5])
		if err != nil || m.Status != "former" || m.Company != seed.IDs["company:Acme"] {
			t.Errorf("member event: %+v %v", m, err)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	e := newEnv(t, Options{Seed: true, ExtraMembers: 10})
	e.call("POST", "webhooks", map[string]any{"url": "http://127.0.0.1:1/hook"}, nil)
	var buf bytes.Buffer
	if err := e.sim.SaveState(&buf); err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, Options{})
	if err := e2.sim.LoadState(&buf); err != nil {
		t.Fatal(err)
	}
	for _, res := range []string{"members", "memberships", "bookings", "webhooks", "passes"} {
		var a, b officernd.CountResult
		e.call("GET", res+"/count", nil, &a)
		e2.call("GET", res+"/count", nil, &b)
		if a.Total == 0 || a.Total != b.Total {
			t.Errorf("%s: %d before, %d after", res, a.Total, b.Total)
		}
	}
	if !reflect.DeepEqual(e.sim.Seeded(), e2.sim.Seeded()) {
		t.Error("seed info differs after load")
	}
	var created officernd.Member
	e2.call("POST", "members", map[string]any{"name": "New Person", "location": e2.sim.Seeded().IDs["location:Uptown"]}, &created)
	if created.ID == "" || created.ID <= e2.sim.Seeded().IDs["member:lead"] {
		t.Errorf("new id %q after load", created.ID)
	}
}

// TestPagingDuringWrites pages with cursors while members are created,
// updated and deleted, and checks no surviving record is skipped or
// repeated.
func TestPagingDuringWrites(t *testing.T) {
	e := newEnv(t, Options{ExtraMembers: 300})
	var orig []string
	e.sim.mu.Lock()
	orig = slices.Clone(e.sim.cols["members"].ids)
	e.sim.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 40 {
			_, _ = e.sim.Create("members", map[string]any{"name": fmt.Sprintf("Writer %d", i)})
			_, _ = e.sim.Update("members", orig[i*7], map[string]any{"phone": fmt.Sprint(i)})
			if i%5 == 0 {
				_ = e.sim.Delete("members", orig[i*7+1])
			}
		}
	}()
	seen := map[string]int{}
	path := "members"
	for path != "" {
		var p officernd.ListPage[officernd.Member]
		e.call("GET", path, nil, &p)
		for _, m := range p.Results {
			seen[m.ID]++
		}
		path = ""
		if p.CursorNext != "" {
			path = "members?$cursorNext=" + url.QueryEscape(p.CursorNext)
		}
	}
	<-done
	for i, id := range orig {
		deleted := i%7 == 1 && i/7 < 40 && (i/7)%5 == 0
		if seen[id] > 1 || (!deleted && seen[id] != 1) {
			t.Errorf("member %d (%s) seen %d times", i, id, seen[id])
		}
	}
}

func TestExtraMembersFast(t *testing.T) {
	start := time.Now()
	sim := New(Options{ExtraMembers: 10000, Now: func() time.Time { return t0 }})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("10000 extra members took %v", d)
	}
	sim.mu.Lock()
	n := len(sim.cols["members"].ids)
	active := 0
	for _, d := range sim.cols["memberships"].docs {
		if sim.calculatedStatus(d, t0) == "active" {
			active++
		}
	}
	sim.mu.Unlock()
	if n != 10000 || active != 10000 {
		t.Errorf("%d members, %d active memberships", n, active)
	}
}

func TestControlEndpoints(t *testing.T) {
	sim := New(Options{Seed: true})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	post := func(path, body string) int {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := post("/_sim/faults", `{"latency":"5ms","fail500Every":7}`); c != 200 || sim.Faults().Latency != 5*time.Millisecond || sim.Faults().Fail500Every != 7 {
		t.Errorf("faults: %d %+v", c, sim.Faults())
	}
	if c := post("/_sim/faults", `{"latency":"soon"}`); c != 400 {
		t.Errorf("bad faults: %d", c)
	}
	if c := post("/_sim/faults", `{"down":true}`); c != 200 || !sim.Faults().Down || sim.Faults().Fail500Every != 7 {
		t.Errorf("partial faults: %d %+v", c, sim.Faults())
	}
	if c := post("/_sim/faults", `{"down":false,"fail500Every":0,"latency":"0s"}`); c != 200 || sim.Faults() != (Faults{}) {
		t.Errorf("cleared faults: %d %+v", c, sim.Faults())
	}
	before := sim.Now()
	if c := post("/_sim/clock", `{"advance":"24h"}`); c != 200 || sim.Now().Sub(before) < 24*time.Hour {
		t.Errorf("clock advance: %d", c)
	}
	if c := post("/_sim/clock", `{"now":"2027-01-01T00:00:00Z"}`); c != 200 || sim.Now().Year() != 2027 {
		t.Errorf("clock now: %d %v", c, sim.Now())
	}
	resp, err := http.Get(srv.URL + "/_sim/seed")
	if err != nil {
		t.Fatal(err)
	}
	var si SeedInfo
	_ = json.NewDecoder(resp.Body).Decode(&si)
	resp.Body.Close()
	if si.IDs["company:Acme"] == "" || len(si.Members) < 20 {
		t.Errorf("seed: %+v", si)
	}
	fixed := New(Options{Now: func() time.Time { return t0 }})
	srv2 := httptest.NewServer(fixed)
	defer srv2.Close()
	resp, err = http.Post(srv2.URL+"/_sim/clock", "application/json", strings.NewReader(`{"advance":"1h"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 409 {
		t.Errorf("clock with Options.Now: %d", resp.StatusCode)
	}
}

func BenchmarkExtraMembers(b *testing.B) {
	for b.Loop() {
		New(Options{ExtraMembers: 50000, Now: func() time.Time { return t0 }})
	}
}
