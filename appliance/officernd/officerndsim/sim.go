// Package officerndsim is an in-process simulator of the OfficeRnD v2
// ("Flex") API, faithful to what the project's OfficeRnD API notes
// (officernd-api.md) record of the real service: the OAuth2 client-credentials token endpoint with
// granular scopes, cursor-paged lists with their filters and quirks (the
// $limit cap, the memberships modifiedAt rejection, 400 on unknown query
// parameters, 504 on both cursors, 500 on an unknown organization or a
// corrupted cursor), NestJS error bodies, rate-limit headers, writes that
// stamp modifiedAt and recompute calculatedStatus, and signed, asynchronous
// webhook deliveries with v1 field names in the payload.
//
// A *Sim is an http.Handler: tests serve it with httptest.NewServer and
// point the officernd client at it; cmd/officernd-sim serves it on a port
// for demos. The seed (Options.Seed) is a small, deterministic coworking
// space whose records are described by Seeded, so tests can assert on
// them; Options.ExtraMembers adds bulk members for benchmarks.
//
// Faults (rate limiting, periodic 500s, latency, dropped webhooks, a down
// service) are set with SetFaults or POST /_sim/faults. The simulated clock
// is Options.Now, or the sim's own clock that POST /_sim/clock moves.
//
// It is test and demo tooling: nothing in the firmware imports it.
package officerndsim

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/deskgate/deskgate/appliance/officernd"
)

// Defaults used when Options leave them empty.
const (
	DefaultOrgSlug      = "demo-space"
	DefaultClientID     = "deskgate-demo"
	DefaultClientSecret = "deskgate-demo-secret"
)

// tokenLifetime is the real expires_in.
const tokenLifetime = 3599 * time.Second

// AllScopes lists every scope the simulator knows; Options.Scopes nil
// grants all of them.
var AllScopes = func() []string {
	var out []string
	for _, p := range []string{
		"flex.community.members", "flex.community.companies", "flex.community.memberships",
		"flex.community.visitors", "flex.space.bookings", "flex.space.passes",
		"flex.settings.webhooks",
	} {
		out = append(out, p+".read", p+".create", p+".update", p+".delete")
	}
	return append(out, "flex.billing.plans.read", "flex.space.locations.read", "flex.space.resources.read")
}()

// ReadScopes are the read scopes of AllScopes: the grants of a read-only
// application (Options.Scopes = ReadScopes), whose token requests for any
// write scope fail with invalid_scope like the real token endpoint.
var ReadScopes = func() []string {
	var out []string
	for _, sc := range AllScopes {
		if strings.HasSuffix(sc, ".read") {
			out = append(out, sc)
		}
	}
	return out
}()

// Options configure a Sim. The zero value is usable: org "demo-space",
// the default demo credentials, all scopes, no seed.
type Options struct {
	OrgSlug      string
	ClientID     string
	ClientSecret string
	// Scopes the app is granted; a token request for any other scope
	// fails with invalid_scope. nil grants AllScopes.
	Scopes []string
	// Seed loads the demo space (see SeedInfo).
	Seed bool
	// ExtraMembers adds that many bulk members (deterministic names, ids
	// and choices), each with an active personal Hot Desk or Dedicated
	// Desk membership at Downtown or Uptown. It loads the seed's locations,
	// resources and plans even when Seed is false.
	ExtraMembers int
	// BenchAccounts gives the extra members known WiFi credentials for
	// benchmarks: member i (from 0) has the e-mail user%05d@bench.example
	// and the custom property wifiPassword = pass%05d, the accounts
	// cmd/radload and FreeRADIUS are provisioned with.
	BenchAccounts bool
	// Now is the simulated clock. nil: the sim owns a clock (wall time
	// plus an offset that POST /_sim/clock can move).
	Now    func() time.Time
	Logger *slog.Logger
	// WebhookClient delivers webhooks; nil uses a client with a 5s timeout.
	WebhookClient *http.Client
	// V2Payloads makes webhook payloads use v2 field names. By default
	// data.object uses the v1 names the real service sends: office for
	// location, team for company.
	V2Payloads bool
	// MembershipsModifiedFilter makes GET /memberships accept
	// modifiedAt/createdAt filters. Off by default: testers of the real
	// API saw "property modifiedAt should not exist" (a 400); a third-party
	// reference uses the filter. Benchmarks measure both.
	MembershipsModifiedFilter bool
	// RetryDelay is the pause before the one retry of a failed webhook
	// delivery; 0 means 200ms.
	RetryDelay time.Duration
}

// Faults are injected failures. The zero value injects none.
type Faults struct {
	// RateLimitPerMinute > 0 limits reads (GETs) to that many in a rolling
	// minute; beyond it the sim answers 429 with Retry-After.
	RateLimitPerMinute int
	// Fail500Every > 0 makes every Nth API request (not token) fail with 500.
	Fail500Every int
	// Latency is added to every request.
	Latency time.Duration
	// DropWebhooks records events but does not deliver them.
	DropWebhooks bool
	// Down makes every request, token included, fail with 503.
	Down bool
	// CloseConnections makes every request, token included, end with the
	// connection closed and no response (an uplink that drops), where the
	// server allows it; it wins over Down.
	CloseConnections bool
}

// Stats count what the sim served since New or the last ResetStats.
type Stats struct {
	// Requests counts API requests (not token, not /_sim).
	Requests int `json:"requests"`
	// Paths counts API requests by route, e.g. "GET /members",
	// "GET /members/{id}", "GET /members/count", "PUT /memberships/{id}".
	Paths             map[string]int `json:"paths"`
	TokenRequests     int            `json:"tokenRequests"`
	Throttled         int            `json:"throttled"` // 429s
	Failed            int            `json:"failed"`    // injected 500s
	Events            int            `json:"events"`    // webhook events emitted
	WebhooksDelivered int            `json:"webhooksDelivered"`
	WebhooksDropped   int            `json:"webhooksDropped"`
	WebhooksFailed    int            `json:"webhooksFailed"` // failed after the retry
}

// Sim is a simulated OfficeRnD organization. It implements http.Handler.
// All methods are safe for concurrent use.
type Sim struct {
	opts     Options
	log      *slog.Logger
	hc       *http.Client
	ownClock bool
	v1       bool

	mu       sync.Mutex
	offset   time.Duration // own clock: wall time + offset
	cols     map[string]*collection
	ids      *idGen
	tokens   map[string]tokenInfo
	faults   Faults
	stats    Stats
	apiCount int
	reads    window
	writes   window
	seed     SeedInfo
	tzCache  map[string]*time.Location
	// memberships by member and by company, for member status.
	byMember  map[string][]string
	byCompany map[string][]string

	events  []officernd.Event // recent events, newest last
	queue   []delivery
	working bool
	idle    chan struct{} // closed when the delivery worker stops
}

type tokenInfo struct {
	scopes  map[string]bool
	expires time.Time
}

// New builds a Sim. It panics only on a programming error in the seed.
func New(opts Options) *Sim {
	if opts.OrgSlug == "" {
		opts.OrgSlug = DefaultOrgSlug
	}
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultClientSecret
	}
	if opts.Scopes == nil {
		opts.Scopes = AllScopes
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = 200 * time.Millisecond
	}
	s := &Sim{
		opts:      opts,
		log:       opts.Logger,
		hc:        opts.WebhookClient,
		ownClock:  opts.Now == nil,
		v1:        !opts.V2Payloads,
		cols:      map[string]*collection{},
		ids:       newIDGen(),
		tokens:    map[string]tokenInfo{},
		tzCache:   map[string]*time.Location{},
		byMember:  map[string][]string{},
		byCompany: map[string][]string{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.hc == nil {
		s.hc = &http.Client{Timeout: 5 * time.Second}
	}
	for name := range resources {
		s.cols[name] = newCollection()
	}
	s.resetStatsLocked()
	s.seed = SeedInfo{Org: opts.OrgSlug, IDs: map[string]string{}}
	if opts.Seed {
		s.loadSeed()
	}
	if opts.ExtraMembers > 0 {
		s.addExtraMembers(opts.ExtraMembers)
	}
	return s
}

// now is the simulated clock.
func (s *Sim) now() time.Time {
	if !s.ownClock {
		return s.opts.Now()
	}
	s.mu.Lock()
	off := s.offset
	s.mu.Unlock()
	return time.Now().Add(off)
}

// nowLocked is now for callers holding s.mu.
func (s *Sim) nowLocked() time.Time {
	if !s.ownClock {
		return s.opts.Now()
	}
	return time.Now().Add(s.offset)
}

// Now returns the simulated time.
func (s *Sim) Now() time.Time { return s.now() }

// OrgSlug returns the organization slug the sim serves.
func (s *Sim) OrgSlug() string { return s.opts.OrgSlug }

// BasePath returns the API base path, "/api/v2/organizations/<slug>".
func (s *Sim) BasePath() string { return "/api/v2/organizations/" + s.opts.OrgSlug }

// ClientConfig returns an officernd.Config for a client of this sim served
// at baseURL (e.g. an httptest.Server's URL): API base, token URL, org and
// credentials. Scopes are left nil (the client's defaults).
func (s *Sim) ClientConfig(baseURL string) officernd.Config {
	baseURL = strings.TrimRight(baseURL, "/")
	return officernd.Config{
		APIBase:      baseURL + "/api/v2",
		TokenURL:     baseURL + "/oauth/token",
		OrgSlug:      s.opts.OrgSlug,
		ClientID:     s.opts.ClientID,
		ClientSecret: s.opts.ClientSecret,
	}
}

// SetFaults replaces the injected faults.
func (s *Sim) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// Faults returns the injected faults.
func (s *Sim) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// Stats returns a copy of the counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Paths = maps.Clone(s.stats.Paths)
	return st
}

// ResetStats zeroes the counters (and the Fail500Every request count).
func (s *Sim) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetStatsLocked()
}

func (s *Sim) resetStatsLocked() {
	s.stats = Stats{Paths: map[string]int{}}
	s.apiCount = 0
}

// Advance moves the sim's own clock forward by d (backward if negative).
// It returns false, and does nothing, when Options.Now drives the clock.
func (s *Sim) Advance(d time.Duration) bool {
	if !s.ownClock {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += d
	return true
}

// SetNow sets the sim's own clock to t; false when Options.Now drives it.
func (s *Sim) SetNow(t time.Time) bool {
	if !s.ownClock {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset = time.Until(t)
	return true
}

// ServeHTTP serves the token endpoint, the v2 API and the /_sim control
// endpoints.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.serveControl(w, r)
		return
	}
	f := s.Faults()
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if f.CloseConnections {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // HTTP/2: reset the stream
	}
	w.Header().Set("X-Powered-By", "Express")
	if f.Down {
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("<html><head><title>503 Service Temporarily Unavailable</title></head><body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>\n"))
		return
	}
	switch {
	case r.URL.Path == "/oauth/token":
		s.serveToken(w, r)
	case strings.HasPrefix(r.URL.Path, "/api/v2/organizations/"):
		s.serveAPI(w, r)
	default:
		writeNest(w, http.StatusNotFound, "Cannot "+r.Method+" "+r.URL.Path, "Not Found")
	}
}

// ---- responses ----

// writeJSON writes v as JSON with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(`{"statusCode":500,"message":"Internal server error"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// nestError is the NestJS error body.
type nestError struct {
	StatusCode int    `json:"statusCode"`
	Message    any    `json:"message"`
	Error      string `json:"error,omitempty"`
	Timestamp  string `json:"timestamp,omitempty"`
	Path       string `json:"path,omitempty"`
}

func writeNest(w http.ResponseWriter, code int, msg any, errText string) {
	writeJSON(w, code, nestError{StatusCode: code, Message: msg, Error: errText})
}

// apiError is an error a handler answers with.
type apiError struct {
	code int
	msg  any // string or []string
}

func badRequest(msgs ...string) *apiError { return &apiError{http.StatusBadRequest, msgs} }

func notFound(id string) *apiError {
	return &apiError{http.StatusNotFound, "Item with Id (" + id + ") not found"}
}

func serverError(msg string) *apiError { return &apiError{http.StatusInternalServerError, msg} }

func (e *apiError) write(w http.ResponseWriter) {
	writeNest(w, e.code, e.msg, http.StatusText(e.code))
}

// ---- token endpoint ----

func (s *Sim) serveToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.TokenRequests++
	s.mu.Unlock()
	if r.Method != http.MethodPost {
		writeNest(w, http.StatusNotFound, "Cannot "+r.Method+" /oauth/token", "Not Found")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, officernd.Token{Error: "invalid_request", ErrorDescription: err.Error()})
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, officernd.Token{Error: "unsupported_grant_type", ErrorDescription: "Unsupported grant type: " + gt})
		return
	}
	if id != s.opts.ClientID || secret != s.opts.ClientSecret {
		writeJSON(w, http.StatusUnauthorized, officernd.Token{Error: "invalid_client", ErrorDescription: "Client authentication failed"})
		return
	}
	granted := map[string]bool{}
	for _, sc := range s.opts.Scopes {
		granted[sc] = true
	}
	requested := strings.Fields(r.PostForm.Get("scope"))
	if len(requested) == 0 {
		requested = s.opts.Scopes
	}
	scopes := map[string]bool{}
	for _, sc := range requested {
		if !granted[sc] {
			writeJSON(w, http.StatusBadRequest, officernd.Token{Error: "invalid_scope", ErrorDescription: "The requested scope is invalid, unknown, or malformed: " + sc})
			return
		}
		scopes[sc] = true
	}
	tok := randomHex(32)
	s.mu.Lock()
	now := s.nowLocked()
	for k, t := range s.tokens { // forget expired tokens
		if !now.Before(t.expires) {
			delete(s.tokens, k)
		}
	}
	s.tokens[tok] = tokenInfo{scopes: scopes, expires: now.Add(tokenLifetime)}
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, officernd.Token{
		AccessToken: tok,
		TokenType:   "Bearer",
		ExpiresIn:   int(tokenLifetime / time.Second),
		Scope:       strings.Join(requested, " "),
	})
}

// IssueToken returns a valid bearer token with the given scopes (nil: all
// granted scopes), for tests that call the API directly.
func (s *Sim) IssueToken(scopes ...string) string {
	if scopes == nil {
		scopes = s.opts.Scopes
	}
	m := map[string]bool{}
	for _, sc := range scopes {
		m[sc] = true
	}
	tok := randomHex(32)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[tok] = tokenInfo{scopes: m, expires: s.nowLocked().Add(tokenLifetime)}
	return tok
}

// Flush waits until every queued webhook delivery has finished (delivered,
// failed after its retry, or dropped), or ctx is done.
func (s *Sim) Flush(ctx context.Context) error {
	for {
		s.mu.Lock()
		if !s.working && len(s.queue) == 0 {
			s.mu.Unlock()
			return nil
		}
		ch := s.idle
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
