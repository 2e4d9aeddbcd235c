package officernd

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Defaults used when the Config leaves a field zero.
const (
	DefaultAPIBase        = "https://app.officernd.com/api/v2"
	DefaultTokenURL       = "https://identity.officernd.com/oauth/token"
	DefaultRequestTimeout = 30 * time.Second
	DefaultMaxRetries     = 6
	// MaxLimit is the largest $limit v2 accepts.
	MaxLimit = 50

	tokenExpiryDelta = 60 * time.Second
	userAgent        = "deskgate-officernd/1"

	maxBodyBytes     = 32 << 20
	maxRateLimitWait = 2 * time.Minute
	defaultRetryBase = 500 * time.Millisecond
	defaultRetryMax  = 30 * time.Second
)

// Resource names (path segments) of the v2 API.
const (
	ResMembers     = "members"
	ResCompanies   = "companies"
	ResMemberships = "memberships"
	ResPlans       = "plans"
	ResLocations   = "locations"
	ResResources   = "resources"
	ResBookings    = "bookings"
	ResVisitors    = "visitors"
	ResPasses      = "passes"
	ResWebhooks    = "webhooks"
)

// DefaultScopes are requested when Config.Scopes is nil: read access to
// everything the sync reads, and nothing more. OfficeRnD refuses a token
// request that asks for any scope the application was not granted, so the
// default must work for a read-only application; add WebhookScopes only
// when deskgate registers its own webhook.
var DefaultScopes = []string{
	"flex.community.members.read",
	"flex.community.companies.read",
	"flex.community.memberships.read",
	"flex.billing.plans.read",
	"flex.space.locations.read",
	"flex.space.resources.read",
	"flex.space.bookings.read",
	"flex.space.passes.read",
	"flex.community.visitors.read",
}

// WebhookScopes are what automatic webhook registration needs: list the
// webhooks, create one, and delete the one whose secret was lost before
// creating its replacement.
var WebhookScopes = []string{
	"flex.settings.webhooks.read",
	"flex.settings.webhooks.create",
	"flex.settings.webhooks.delete",
}

// ReadOnlyScopes returns the scopes of list that a read-only application
// can hold and the sync needs: the .read scopes, without the webhook ones
// (only registration uses those).
func ReadOnlyScopes(list []string) []string {
	var out []string
	for _, sc := range list {
		if strings.HasSuffix(sc, ".read") && !strings.HasPrefix(sc, "flex.settings.webhooks.") {
			out = append(out, sc)
		}
	}
	return out
}

// Doer sends an HTTP request; *http.Client is one.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Config configures a Client. Only OrgSlug, ClientID and ClientSecret are
// required.
type Config struct {
	APIBase      string // default DefaultAPIBase (…/api/v2, no trailing slash needed)
	TokenURL     string // default DefaultTokenURL
	OrgSlug      string
	ClientID     string
	ClientSecret string   // never logged
	Scopes       []string // nil: DefaultScopes
	// ReadScopes, when set, is asked for once when the token endpoint
	// refuses Scopes with invalid_scope (an application without the write
	// grants); the client then keeps using it and ScopesReduced reports
	// true. Empty: no fallback.
	ReadScopes []string
	// OnScopesReduced, if set, is called once (in its own goroutine) when
	// the client fell back to ReadScopes; refused is the token endpoint's
	// error.
	OnScopesReduced func(refused error)

	RequestTimeout time.Duration // per attempt; 0: DefaultRequestTimeout
	MaxRetries     int           // retries after the first attempt; 0: DefaultMaxRetries; <0: none
	RetryBase      time.Duration // first backoff ceiling; 0: 500ms
	RetryMax       time.Duration // backoff ceiling; 0: 30s

	HTTPClient *http.Client // nil: a default client
	Doer       Doer         // optional; overrides HTTPClient for API and token calls
	Logger     *slog.Logger // nil: discard
	Now        func() time.Time
	// Sleep waits for d or until ctx is done; nil: a real timer. Tests
	// replace it to run retries without waiting.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Stats are cumulative counters, for metrics and benchmarks.
type Stats struct {
	Requests          int64 // HTTP attempts to the API (not the token endpoint)
	Retries           int64
	RateLimitWaits    int64 // waits caused by 429 or remaining=0 headers
	RateLimitWaitTime time.Duration
	TokenFetches      int64
	Errors            int64 // calls that returned an error
	ByResource        map[string]int64
}

// Client talks to one OfficeRnD organization. It is safe for concurrent use.
type Client struct {
	cfg    Config
	base   string // {APIBase}/organizations/{slug}
	doer   Doer
	hc     *http.Client // for the oauth2 package
	cc     *clientcredentials.Config
	log    *slog.Logger
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error
	retryN int

	tokMu     sync.Mutex
	tok       string
	tokExpiry time.Time // already minus tokenExpiryDelta
	reduced   bool      // fell back to cfg.ReadScopes

	mu          sync.Mutex
	stats       Stats
	noModified  map[string]bool      // resources that rejected modifiedAt[$gt]
	blockedTill map[string]time.Time // "read"/"write" -> rate-limit reset
}

// New validates cfg and returns a Client. It does not contact OfficeRnD
// (the appliance must start offline); call Check to verify credentials.
func New(ctx context.Context, cfg Config) (*Client, error) {
	_ = ctx
	if cfg.OrgSlug == "" || strings.ContainsAny(cfg.OrgSlug, "/?#") {
		return nil, fmt.Errorf("officernd: new client: invalid org slug %q", cfg.OrgSlug)
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("officernd: new client: client_id and client_secret are required")
	}
	if cfg.APIBase == "" {
		cfg.APIBase = DefaultAPIBase
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = DefaultTokenURL
	}
	for _, u := range []string{cfg.APIBase, cfg.TokenURL} {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return nil, fmt.Errorf("officernd: new client: invalid URL %q", u)
		}
	}
	if cfg.Scopes == nil {
		cfg.Scopes = DefaultScopes
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = defaultRetryBase
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = defaultRetryMax
	}
	c := &Client{
		cfg:         cfg,
		base:        strings.TrimRight(cfg.APIBase, "/") + "/organizations/" + url.PathEscape(cfg.OrgSlug),
		log:         cfg.Logger,
		now:         cfg.Now,
		sleep:       cfg.Sleep,
		noModified:  map[string]bool{},
		blockedTill: map[string]time.Time{},
	}
	c.stats.ByResource = map[string]int64{}
	switch {
	case cfg.MaxRetries < 0:
		c.retryN = 0
	case cfg.MaxRetries == 0:
		c.retryN = DefaultMaxRetries
	default:
		c.retryN = cfg.MaxRetries
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	switch {
	case cfg.Doer != nil:
		c.doer = cfg.Doer
		c.hc = &http.Client{Transport: doerTransport{cfg.Doer}}
	case cfg.HTTPClient != nil:
		c.doer = cfg.HTTPClient
		c.hc = cfg.HTTPClient
	default:
		c.hc = &http.Client{Transport: clockTransport(c.now)}
		c.doer = c.hc
	}
	c.cc = &clientcredentials.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		TokenURL:     cfg.TokenURL,
		Scopes:       cfg.Scopes,
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	return c, nil
}

// doerTransport adapts a Doer to http.RoundTripper for the oauth2 package.
type doerTransport struct{ d Doer }

func (t doerTransport) RoundTrip(r *http.Request) (*http.Response, error) { return t.d.Do(r) }

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Check fetches a token (if none is cached) and reads one location, which
// proves the credentials, the scopes and the org slug.
func (c *Client) Check(ctx context.Context) error {
	var page ListPage[Location]
	q := url.Values{"$limit": {"1"}}
	if err := c.do(ctx, http.MethodGet, ResLocations, ResLocations+"?"+q.Encode(), nil, &page); err != nil {
		return fmt.Errorf("check officernd access: %w", err)
	}
	return nil
}

// Stats returns a snapshot of the counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.ByResource = make(map[string]int64, len(c.stats.ByResource))
	for k, v := range c.stats.ByResource {
		s.ByResource[k] = v
	}
	return s
}

// FullScanFallbacks lists the resources whose list endpoint rejected the
// modifiedAt filter, so incremental listing falls back to full scans.
func (c *Client) FullScanFallbacks() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for r := range c.noModified {
		out = append(out, r)
	}
	return out
}

func (c *Client) count(f func(*Stats)) {
	c.mu.Lock()
	f(&c.stats)
	c.mu.Unlock()
}

// ---- token ----

// token returns a cached access token, fetching one when none is cached
// or the cached one is within a minute of expiry. fresh reports whether
// it was fetched by this call.
func (c *Client) token(ctx context.Context) (tok string, fresh bool, err error) {
	c.tokMu.Lock()
	defer c.tokMu.Unlock()
	if c.tok != "" && c.now().Before(c.tokExpiry) {
		return c.tok, false, nil
	}
	var last error
	for attempt := 0; ; attempt++ {
		t, err := c.fetchToken(ctx)
		if err == nil {
			c.tok = t.AccessToken
			exp := c.now().Add(tokenLifetime(t))
			c.tokExpiry = exp.Add(-tokenExpiryDelta)
			return c.tok, true, nil
		}
		last = err
		if !retryableTokenErr(err) || ctx.Err() != nil || attempt >= c.retryN {
			break
		}
		c.count(func(s *Stats) { s.Retries++ })
		d := c.backoff(attempt)
		c.log.Debug("officernd token fetch failed, retrying", "attempt", attempt+1, "wait", d, "err", err)
		if err := c.sleep(ctx, d); err != nil {
			return "", false, fmt.Errorf("fetch officernd token: %w", err)
		}
	}
	if c.reduced || len(c.cfg.ReadScopes) == 0 || !scopeRefused(last) || slices.Equal(c.cc.Scopes, c.cfg.ReadScopes) {
		return "", false, classifyTokenErr(ctx, last)
	}
	// The application lacks a write grant: OfficeRnD refuses the whole
	// token. Ask once more with the read scopes, which is all the sync
	// needs; only automatic webhook registration is lost.
	refused := classifyTokenErr(ctx, last)
	c.cc.Scopes = c.cfg.ReadScopes
	t, err := c.fetchToken(ctx)
	if err != nil {
		c.cc.Scopes = c.cfg.Scopes
		return "", false, classifyTokenErr(ctx, err)
	}
	c.reduced = true
	c.log.Warn("officernd token endpoint refused the requested scopes; using read scopes only",
		"refused", refused, "scopes", strings.Join(c.cfg.ReadScopes, " "))
	if f := c.cfg.OnScopesReduced; f != nil {
		go f(refused)
	}
	c.tok = t.AccessToken
	c.tokExpiry = c.now().Add(tokenLifetime(t)).Add(-tokenExpiryDelta)
	return c.tok, true, nil
}

// scopeRefused reports a token error that is OfficeRnD refusing a scope.
func scopeRefused(err error) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && strings.EqualFold(re.ErrorCode, "invalid_scope")
}

// ScopesReduced reports whether the token endpoint refused Config.Scopes
// and the client now holds Config.ReadScopes only.
func (c *Client) ScopesReduced() bool {
	c.tokMu.Lock()
	defer c.tokMu.Unlock()
	return c.reduced
}

// Scopes returns the scopes the client asks for now.
func (c *Client) Scopes() []string {
	c.tokMu.Lock()
	defer c.tokMu.Unlock()
	return slices.Clone(c.cc.Scopes)
}

// tokenLifetime reads expires_in from the token response (on our clock),
// falling back to the oauth2 package's Expiry, then to one hour.
func tokenLifetime(t *oauth2.Token) time.Duration {
	switch v := t.Extra("expires_in").(type) {
	case float64:
		if v > 0 {
			return time.Duration(v * float64(time.Second))
		}
	case string:
		if n, err := strconv.ParseFloat(v, 64); err == nil && n > 0 {
			return time.Duration(n * float64(time.Second))
		}
	}
	if !t.Expiry.IsZero() {
		return time.Until(t.Expiry)
	}
	return time.Hour
}

func (c *Client) fetchToken(ctx context.Context) (*oauth2.Token, error) {
	c.count(func(s *Stats) { s.TokenFetches++ })
	actx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	actx = context.WithValue(actx, oauth2.HTTPClient, c.hc)
	return c.cc.Token(actx)
}

func retryableTokenErr(err error) bool {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.Response == nil {
			return false
		}
		s := re.Response.StatusCode
		return s == http.StatusTooManyRequests || s >= 500
	}
	var ue *url.Error
	return errors.As(err, &ue) // transport error; anything else is a protocol error
}

func classifyTokenErr(ctx context.Context, err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		if ctx.Err() != nil {
			return fmt.Errorf("fetch officernd token: %w", ctx.Err())
		}
		var ue *url.Error
		if !errors.As(err, &ue) {
			return fmt.Errorf("fetch officernd token: unusable token response (check token_url): %w", err)
		}
		return fmt.Errorf("fetch officernd token: %w: %v", ErrUnreachable, err)
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	code := strings.ToLower(re.ErrorCode)
	desc := strings.ToLower(re.ErrorDescription + " " + string(re.Body))
	detail := fmt.Sprintf("token endpoint answered %d", status)
	if re.ErrorCode != "" {
		detail += " " + re.ErrorCode
	}
	if re.ErrorDescription != "" {
		detail += ": " + re.ErrorDescription
	}
	switch {
	case code == "invalid_scope" || strings.Contains(desc, "scope") || code == "access_denied" || code == "unauthorized_client" || status == http.StatusForbidden:
		return fmt.Errorf("fetch officernd token: %w (%s)", ErrScope, detail)
	case code == "invalid_client" || code == "invalid_grant" || status == http.StatusUnauthorized:
		return fmt.Errorf("fetch officernd token: %w (%s)", ErrCredentials, detail)
	case status == http.StatusTooManyRequests:
		return fmt.Errorf("fetch officernd token: %w (%s)", ErrRateLimited, detail)
	case status >= 500:
		return fmt.Errorf("fetch officernd token: %w (%s)", ErrServer, detail)
	default:
		return fmt.Errorf("fetch officernd token: %w (%s)", ErrCredentials, detail)
	}
}

// invalidateToken drops tok if it is still the cached one.
func (c *Client) invalidateToken(tok string) {
	c.tokMu.Lock()
	if c.tok == tok {
		c.tok = ""
	}
	c.tokMu.Unlock()
}

// ---- requests ----

// backoff returns a full-jitter delay for the given retry attempt (0-based).
func (c *Client) backoff(attempt int) time.Duration {
	ceil := c.cfg.RetryBase
	for i := 0; i < attempt && ceil < c.cfg.RetryMax; i++ {
		ceil *= 2
	}
	ceil = min(ceil, c.cfg.RetryMax)
	return rand.N(ceil + 1)
}

// idempotent methods are retried on 5xx and transport errors; POST and
// PATCH only on 429 and connection failures before a response.
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// do performs one API call with retries. pathQuery is relative to the org
// base ("members?$limit=50"); resource names the counter; body (if non-nil)
// is JSON-encoded; out (if non-nil) receives the decoded 2xx body.
func (c *Client) do(ctx context.Context, method, resource, pathQuery string, body, out any) error {
	err := c.doRetry(ctx, method, resource, pathQuery, body, out)
	if err != nil {
		c.count(func(s *Stats) { s.Errors++ })
	}
	return err
}

func (c *Client) doRetry(ctx context.Context, method, resource, pathQuery string, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("officernd: %s %s: encode body: %w", method, pathQuery, err)
		}
	}
	kind := "read"
	if method != http.MethodGet && method != http.MethodHead {
		kind = "write"
	}
	refreshed := false
	for attempt := 0; ; attempt++ {
		if err := c.waitRateLimit(ctx, kind); err != nil {
			return fmt.Errorf("officernd: %s %s: %w", method, pathQuery, err)
		}
		tok, fresh, err := c.token(ctx)
		if err != nil {
			return err
		}
		st, hdr, data, err := c.attempt(ctx, method, resource, pathQuery, payload, tok)
		var retryAfter time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return fmt.Errorf("officernd: %s %s: %w", method, pathQuery, ctx.Err())
			}
			if !idempotent(method) && !isDialErr(err) {
				return fmt.Errorf("officernd: %s %s: %w: %v", method, pathQuery, ErrUnreachable, err)
			}
			if attempt >= c.retryN {
				return fmt.Errorf("officernd: %s %s: %w after %d attempts: %v", method, pathQuery, ErrUnreachable, attempt+1, err)
			}
		case st >= 200 && st < 300:
			if out == nil || len(bytes.TrimSpace(data)) == 0 {
				return nil
			}
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("officernd: %s %s: decode response: %w", method, pathQuery, err)
			}
			return nil
		case st == http.StatusUnauthorized && !fresh && !refreshed:
			// The cached token may have been revoked or expired early:
			// fetch a fresh one once before calling it a scope problem.
			c.invalidateToken(tok)
			refreshed = true
			c.count(func(s *Stats) { s.Retries++ })
			attempt--
			continue
		case st == http.StatusTooManyRequests:
			apiErr := newAPIError(st, method, pathQuery, data)
			if attempt >= c.retryN {
				return apiErr
			}
			retryAfter = parseRetryAfter(hdr.Get("Retry-After"), c.now())
			if retryAfter == 0 {
				retryAfter = c.resetWait(hdr, kind)
			}
		case st >= 500:
			apiErr := newAPIError(st, method, pathQuery, data)
			if isOrgNotFound(st, apiErr.Message) || !idempotent(method) || attempt >= c.retryN {
				return apiErr
			}
		default:
			return newAPIError(st, method, pathQuery, data)
		}
		d := c.backoff(attempt)
		if retryAfter > 0 {
			d = min(retryAfter, maxRateLimitWait)
		}
		if st == http.StatusTooManyRequests {
			c.count(func(s *Stats) { s.RateLimitWaits++; s.RateLimitWaitTime += d })
		}
		c.count(func(s *Stats) { s.Retries++ })
		c.log.Debug("officernd request failed, retrying", "method", method, "path", pathQuery,
			"status", st, "attempt", attempt+1, "wait", d, "err", err)
		if err := c.sleep(ctx, d); err != nil {
			return fmt.Errorf("officernd: %s %s: %w", method, pathQuery, err)
		}
	}
}

// attempt sends one request with the per-request timeout and reads the
// whole body (closing it) before the timeout is released.
func (c *Client) attempt(ctx context.Context, method, resource, pathQuery string, payload []byte, tok string) (int, http.Header, []byte, error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	var rb io.Reader
	if payload != nil {
		rb = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(actx, method, c.base+"/"+pathQuery, rb)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.count(func(s *Stats) { s.Requests++; s.ByResource[resource]++ })
	resp, err := c.doer.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err == nil && len(data) > maxBodyBytes {
		err = fmt.Errorf("response body larger than %d bytes", maxBodyBytes)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	c.noteRateLimit(resp.Header)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read response: %w", err)
	}
	return resp.StatusCode, resp.Header, data, nil
}

// isDialErr reports errors that happen before the request could reach
// the server, so even a POST is safe to retry.
func isDialErr(err error) bool {
	s := err.Error()
	return strings.Contains(s, "dial tcp") || strings.Contains(s, "no such host") || strings.Contains(s, "connection refused")
}

func newAPIError(status int, method, pathQuery string, data []byte) *APIError {
	e := &APIError{Status: status, Method: method, Path: pathQuery}
	var eb ErrorBody
	if json.Unmarshal(data, &eb) == nil && eb.Message != nil {
		e.Message = eb.Text()
	} else {
		s := strings.TrimSpace(string(data))
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		e.Message = s
	}
	return e
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(n * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// parseReset reads an x-ratelimit-reset-* value: seconds until reset, or a
// unix time in seconds or milliseconds (the format is not documented).
func parseReset(v string, now time.Time) time.Duration {
	n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || n <= 0 {
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), 0)
		}
		return 0
	}
	switch {
	case n > 1e12: // unix ms
		return max(time.UnixMilli(int64(n)).Sub(now), 0)
	case n > 1e9: // unix s
		return max(time.Unix(int64(n), 0).Sub(now), 0)
	}
	return time.Duration(n * float64(time.Second))
}

// noteRateLimit remembers, per read/write bucket, when a bucket with no
// remaining calls resets: the per-minute bucket makes the next call wait,
// the per-day bucket makes calls fail fast with ErrRateLimited.
func (c *Client) noteRateLimit(h http.Header) {
	for _, kind := range []string{"read", "write"} {
		for _, win := range []string{"minute", "day"} {
			rem := h.Get("x-ratelimit-remaining-" + kind + "-" + win)
			if rem == "" {
				continue
			}
			n, err := strconv.Atoi(strings.TrimSpace(rem))
			if err != nil || n > 0 {
				continue
			}
			d := parseReset(h.Get("x-ratelimit-reset-"+kind+"-"+win), c.now())
			if d <= 0 {
				d = time.Second
			}
			if win == "minute" {
				d = min(d, maxRateLimitWait)
			} else {
				d = min(d, 24*time.Hour)
			}
			c.mu.Lock()
			c.blockedTill[kind+"-"+win] = c.now().Add(d)
			c.mu.Unlock()
		}
	}
}

func (c *Client) resetWait(h http.Header, kind string) time.Duration {
	if v := h.Get("x-ratelimit-reset-" + kind + "-minute"); v != "" {
		return min(parseReset(v, c.now()), maxRateLimitWait)
	}
	return 0
}

// waitRateLimit sleeps until the minute bucket's reset when a previous
// response said no calls remain, and fails fast while the day bucket is
// exhausted.
func (c *Client) waitRateLimit(ctx context.Context, kind string) error {
	c.mu.Lock()
	till := c.blockedTill[kind+"-minute"]
	dayTill := c.blockedTill[kind+"-day"]
	c.mu.Unlock()
	now := c.now()
	if now.Before(dayTill) {
		return fmt.Errorf("%w: daily %s quota exhausted until %s", ErrRateLimited, kind, dayTill.UTC().Format(time.RFC3339))
	}
	d := till.Sub(now)
	if till.IsZero() || d <= 0 {
		return nil
	}
	c.count(func(s *Stats) { s.RateLimitWaits++; s.RateLimitWaitTime += d })
	c.log.Debug("officernd rate limit reached, waiting for reset", "bucket", kind, "wait", d)
	return c.sleep(ctx, d)
}

// clockTransport is http.DefaultTransport with server certificates checked
// against the client's clock (the daemon's one clock) instead of the wall
// clock crypto/tls reads by default.
func clockTransport(now func() time.Time) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{Time: now, MinVersion: tls.VersionTLS12}
	return t
}
