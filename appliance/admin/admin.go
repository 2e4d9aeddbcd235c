// Package admin owns the daemon's operator-facing HTTP surface, server and
// client together: the JSON shapes the deskgate CLI and the daemon
// exchange; the Server with its routes, its guard (the bearer token over
// TCP, Host and Origin checks, the token handed out on the unix socket
// only) and its listeners (loopback TCP, optionally TLS, and the 0600 unix
// socket); and the Client the CLI uses. The daemon's state reaches the
// server through the Backend interface, which the composition root
// implements; further operator handlers (a web console) are added with
// Server.Mount behind the same guard.
package admin

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
)

// Status is GET /v1/status.
type Status struct {
	Version string    `json:"version"`
	Started time.Time `json:"started"`
	Now     time.Time `json:"now"`
	// Ready: the initial import is done and the guest lifecycle settled.
	Ready      bool           `json:"ready"`
	Sync       SyncStatus     `json:"sync"`
	Counts     map[string]int `json:"counts"`
	Groups     map[string]int `json:"accountsByGroup"`
	Disabled   int            `json:"accountsDisabled"`
	Outbox     int            `json:"outbox"`
	Webhook    Webhook        `json:"webhook"`
	Unmapped   []string       `json:"unmappedPlans,omitempty"`
	Unresolved []string       `json:"unresolvedLocations,omitempty"`
	RADIUS     *RADIUSStatus  `json:"radius,omitempty"`
}

// SyncStatus is the sync part of Status.
type SyncStatus struct {
	LastSuccess time.Time       `json:"lastSuccess,omitzero"`
	LastAttempt time.Time       `json:"lastAttempt,omitzero"`
	LagSeconds  float64         `json:"lagSeconds"`
	Failures    int             `json:"consecutiveFailures"`
	LastError   string          `json:"lastError,omitempty"`
	ImportDone  bool            `json:"importDone"`
	LastRun     json.RawMessage `json:"lastRun,omitempty"`
	APICalls    int64           `json:"apiCalls"`
	RateWaits   int64           `json:"rateLimitWaits"`
}

// Webhook is the webhook part of Status.
type Webhook struct {
	Registration string `json:"registration"` // registered | manual | failed | configured | none
	// AutoRegister: deskgate registers its own webhook (webhook_public_url
	// set and OfficeRnD granted the webhook scopes).
	AutoRegister bool `json:"autoRegister"`
	// ReadOnlyScopes: OfficeRnD refused the webhook scopes and the sync runs
	// with read scopes only.
	ReadOnlyScopes bool            `json:"readOnlyScopes,omitempty"`
	URL            string          `json:"url,omitempty"`
	Detail         string          `json:"detail,omitempty"`
	SecretSet      bool            `json:"secretSet"`
	Stats          json.RawMessage `json:"stats"`
}

// RADIUSStatus is the RADIUS part of Status.
type RADIUSStatus struct {
	AuthAddrs    []string `json:"authAddrs"`
	AcctAddrs    []string `json:"acctAddrs"`
	NAS          int      `json:"nas"`
	LiveSessions int      `json:"liveSessions"`
	// Requests are the well-formed requests since start by port ("auth",
	// "acct") and code; Responses the replies sent by code.
	Requests  []RADIUSCount `json:"requests,omitempty"`
	Responses []RADIUSCount `json:"responses,omitempty"`
	// Drops are the datagrams dropped unanswered since start, by reason
	// (malformed, unexpected_code, unknown_client, bad_authenticator,
	// missing_message_authenticator, overloaded, error), zeros included.
	Drops map[string]uint64 `json:"drops,omitempty"`
	// Duplicates are retransmissions answered from the duplicate cache.
	Duplicates uint64 `json:"duplicates"`
}

// RADIUSCount is one RADIUS counter by packet code.
type RADIUSCount struct {
	Port  string `json:"port,omitempty"`
	Code  string `json:"code"`
	Count uint64 `json:"count"`
}

// MemberRow is one line of GET /v1/members.
type MemberRow struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Email    string `json:"email,omitempty"`
	Username string `json:"username,omitempty"`
	Allowed  bool   `json:"allowed"`
	Group    string `json:"group,omitempty"`
	Plan     string `json:"plan,omitempty"`
	Deny     string `json:"deny,omitempty"`
	Disabled bool   `json:"disabled,omitempty"`
}

// Explanation is GET /v1/explain.
type Explanation struct {
	Query    string         `json:"query"`
	Member   *model.Member  `json:"member,omitempty"`
	Account  *AccountView   `json:"account,omitempty"`
	Decision model.Decision `json:"decision"`
	At       time.Time      `json:"at"`
	// Reply is the RADIUS reply a NAS would get (when --nas is given or
	// the member has one location): attribute lines in radclient's style.
	NAS   string             `json:"nas,omitempty"`
	Reply []string           `json:"reply,omitempty"`
	Audit []model.AuditEntry `json:"audit,omitempty"`
	// SetupURL is the member's device-setup page (WPA-Enterprise profile,
	// CA, EAP-TLS certificate).
	SetupURL string `json:"setupUrl,omitempty"`
}

// AccountView is an account without its hash.
type AccountView struct {
	Username       string    `json:"username"`
	Group          string    `json:"group,omitempty"`
	Disabled       bool      `json:"disabled,omitempty"`
	DisabledReason string    `json:"disabledReason,omitempty"`
	PasswordSource string    `json:"passwordSource,omitempty"`
	PasswordSet    bool      `json:"passwordSet"`
	CreatedAt      time.Time `json:"createdAt"`
	UpdatedAt      time.Time `json:"updatedAt"`
}

// Check is one line of GET /v1/doctor.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Warn   bool   `json:"warn,omitempty"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Client calls the daemon's local API.
type Client struct {
	base  string
	hc    *http.Client
	token string
}

// Dial returns a client for addr: a unix socket path, host:port (plain
// HTTP, for loopback) or https://host:port. Over TCP the daemon wants the
// admin token: see WithToken.
func Dial(addr string) *Client {
	if strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, ".") {
		sock := addr
		return &Client{base: "http://deskgate", hc: &http.Client{
			Timeout: 10 * time.Minute,
			Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			}},
		}}
	}
	base := "http://" + addr
	if strings.HasPrefix(addr, "https://") || strings.HasPrefix(addr, "http://") {
		base = strings.TrimSuffix(addr, "/")
	}
	return &Client{base: base, hc: &http.Client{Timeout: 10 * time.Minute}}
}

// SetTLSConfig sets the TLS settings (e.g. RootCAs for the daemon's own
// certificate) used for an https:// address.
func (c *Client) SetTLSConfig(tc *tls.Config) {
	c.hc.Transport = &http.Transport{TLSClientConfig: tc}
}

// WithToken makes c send Authorization: Bearer token (the TCP admin API
// requires it; the unix socket ignores it).
func (c *Client) WithToken(token string) *Client {
	c.token = strings.TrimSpace(token)
	return c
}

// Get decodes GET path?q into out.
func (c *Client) Get(ctx context.Context, path string, q url.Values, out any) error {
	return c.do(ctx, http.MethodGet, path, q, out)
}

// Post decodes POST path?q into out.
func (c *Client) Post(ctx context.Context, path string, q url.Values, out any) error {
	return c.do(ctx, http.MethodPost, path, q, out)
}

// PostJSON posts in as a JSON body (for secrets that must not go in a
// URL, e.g. a fleet join token) and decodes the answer into out.
func (c *Client) PostJSON(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("POST %s: encode: %w", path, err)
	}
	return c.doBody(ctx, http.MethodPost, path, nil, bytes.NewReader(b), out)
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, out any) error {
	return c.doBody(ctx, method, path, q, nil, out)
}

func (c *Client) doBody(ctx context.Context, method, path string, q url.Values, body io.Reader, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("reach deskgated: %w (is the daemon running? see `systemctl status deskgated` or the -socket flag)", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s", e.Error)
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(raw)))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decode: %w", method, path, err)
	}
	return nil
}

// Device is a device registered for PPSK (GET/POST /v1/devices). The
// passphrase is the member's (or their Private Office's): the operator
// reads it to the member; it is stored sealed.
type Device struct {
	MAC        string    `json:"mac"`
	Name       string    `json:"name"`
	Member     string    `json:"member"`
	Username   string    `json:"username,omitempty"`
	AddedBy    string    `json:"addedBy"`
	CreatedAt  time.Time `json:"createdAt"`
	Scope      string    `json:"scope"` // member | office:<company>
	VLAN       int       `json:"vlan,omitempty"`
	Passphrase string    `json:"passphrase,omitempty"`
}
