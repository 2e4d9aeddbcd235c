package radius

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
)

// ErrUnknownUser is what a Directory returns when no account has the
// username.
var ErrUnknownUser = errors.New("unknown user")

// Subject is what the server needs to know about one account: the
// credentials and policy's decision for the member, computed by the caller
// at lookup time.
type Subject struct {
	Account  model.Account
	Decision model.Decision
	// Holds, when set, is the instant until which the Decision holds by
	// itself (policy.DecideAtUntil: until a membership starts or ends, a
	// day pass runs out, a local midnight): a cache may keep the Subject
	// until then (and no longer than its own cap), unless the data behind
	// it changes first. At or before the lookup's instant: do not keep it.
	// Zero: unknown, the cache's TTL applies.
	Holds time.Time
}

// Directory finds the account and current decision for a username.
// Lookup is on the authentication hot path: implementations should answer
// from memory or a single read transaction.
type Directory interface {
	Lookup(ctx context.Context, username string) (Subject, error)
}

// MemberFinder is implemented by a Directory that can name a username's
// member without deciding its access: accounting for a session the NAS
// sent without our Class needs only that.
type MemberFinder interface {
	MemberOf(ctx context.Context, username string) (string, error)
}

// Auditor records access-affecting events (rejects, disconnects). The
// server calls it from a background goroutine, never on the packet path.
type Auditor interface {
	Audit(ctx context.Context, e model.AuditEntry) error
}

// Vendor profiles select how bandwidth is expressed in replies.
const (
	VendorWISPr    = "wispr"
	VendorMikroTik = "mikrotik"
	VendorUbiquiti = "ubiquiti"
	VendorCisco    = "cisco"
)

// CoA capabilities of a NAS.
const (
	CoADisconnect = "disconnect"
	CoAChange     = "coa"
	CoANone       = "none"
)

// Client is one RADIUS client (NAS): an access point, switch or controller.
type Client struct {
	Name   string
	Prefix netip.Prefix // source addresses; a single IP is a /32 or /128
	Secret []byte
	// LocationID is the location requests from this NAS are for.
	LocationID string
	// Identifier, when set, selects this entry among clients sharing a
	// prefix: it is matched against NAS-Identifier and against the MAC and
	// SSID parts of Called-Station-Id.
	Identifier string
	Vendor     string // wispr (default) | mikrotik | ubiquiti | cisco | hostapd | aruba | ruckus | fortinet
	// Legacy accepts Access-Request without Message-Authenticator.
	Legacy  bool
	CoA     string // disconnect (default) | coa | none
	CoAPort int    // default 3799
}

// Config configures a Server.
type Config struct {
	AuthAddrs []string // default [":1812"]
	AcctAddrs []string // default [":1813"]
	Clients   []Client
	// InterimInterval is sent as Acct-Interim-Interval; sessions silent for
	// twice as long are closed as stale. Default 5m.
	InterimInterval time.Duration
	// DedupWindow is how long a reply is kept for retransmissions. Default 30s.
	DedupWindow time.Duration
	// StaticPools maps a location id to the prefix static IPs come from.
	StaticPools map[string]netip.Prefix
	// Workers is the number of reader goroutines per accounting socket
	// (and per authentication socket where batch reads are unavailable);
	// default GOMAXPROCS.
	Workers int
	// EAP runs EAP conversations (PEAP, EAP-TTLS, EAP-TLS); nil rejects
	// EAP as unsupported.
	EAP EAPHandler
	// PPSKUnknown is what a MAC-authentication request for a MAC no member
	// registered gets: PPSKReject (default) or PPSKGuest, an accept onto
	// PPSKGuestVLAN without a passphrase of its own.
	PPSKUnknown   string
	PPSKGuestVLAN int
	// RemoteDevices, when set, returns the MACs of a member's devices live
	// at the fleet's other boxes; they count toward the device limit.
	RemoteDevices func(memberID string) []string
}

// Session is one device's accounting session at one NAS.
type Session struct {
	Key           string     `json:"key"` // NAS name + "/" + Acct-Session-Id
	NAS           string     `json:"nas"`
	NASAddr       netip.Addr `json:"nasAddr"` // source of the accounting packets
	AcctSessionID string     `json:"acctSessionId"`
	MemberID      string     `json:"memberId,omitempty"`
	Username      string     `json:"username"`
	MAC           string     `json:"mac,omitempty"` // aa:bb:cc:dd:ee:ff
	IP            netip.Addr `json:"ip,omitzero"`
	Location      string     `json:"location,omitempty"`
	Class         string     `json:"class,omitempty"`
	Start         time.Time  `json:"start"`
	LastUpdate    time.Time  `json:"lastUpdate"`
	InputOctets   uint64     `json:"inputOctets"`
	OutputOctets  uint64     `json:"outputOctets"`
	SessionTime   uint32     `json:"sessionTime,omitempty"` // seconds, from the NAS
	// Stopped is when the session ended; zero while it is live.
	Stopped   time.Time `json:"stopped,omitzero"`
	StopCause string    `json:"stopCause,omitempty"`
	// Seq orders writes: a store keeps the record with the highest Seq, so
	// a late Interim never resurrects a stopped session.
	Seq uint64 `json:"seq"`
}

// Live reports whether the session has not ended.
func (s Session) Live() bool { return s.Stopped.IsZero() }

// SessionStore persists sessions. SaveSessions must be durable when it
// returns and must keep, per key, the record with the highest Seq.
type SessionStore interface {
	// LoadSessions returns the live sessions (at startup).
	LoadSessions(ctx context.Context) ([]Session, error)
	// SaveSessions durably writes the latest state of each session; a
	// stopped session is no longer live.
	SaveSessions(ctx context.Context, ss []Session) error
	// PruneSessions forgets sessions stopped before t.
	PruneSessions(ctx context.Context, before time.Time) (int, error)
}

// IPPool hands out static addresses: one per member per location, the same
// one every time, persisted.
type IPPool interface {
	// Lookup returns the member's address at the location, if assigned.
	Lookup(locationID, memberID string) (netip.Addr, bool)
	// Assign returns the member's address at the location, assigning a free
	// one from pool on first use.
	Assign(ctx context.Context, locationID, memberID string, pool netip.Prefix) (netip.Addr, error)
	// Release frees the member's address at the location.
	Release(ctx context.Context, locationID, memberID string) error
}

// NASReport is one NAS that sent Access-Requests without
// Message-Authenticator, for `deskgate nas check`.
type NASReport struct {
	Name       string    `json:"name"`
	Prefix     string    `json:"prefix"`
	Legacy     bool      `json:"legacy"`
	Count      uint64    `json:"count"` // requests without Message-Authenticator
	Dropped    uint64    `json:"dropped"`
	LastSource string    `json:"lastSource"`
	Last       time.Time `json:"last"`
}

// ExplainAttr is one reply attribute as radclient would print it.
type ExplainAttr struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ExplainResult is what the server would answer for a user at a NAS.
type ExplainResult struct {
	Username   string        `json:"username"`
	NAS        string        `json:"nas"`
	Location   string        `json:"location"`
	Vendor     string        `json:"vendor"`
	Code       string        `json:"code"` // Access-Accept | Access-Reject
	Deny       string        `json:"deny,omitempty"`
	Reasons    []string      `json:"reasons,omitempty"`
	Attributes []ExplainAttr `json:"attributes"`
	// Notes explain values that depend on the request (device limit, a
	// static IP not yet assigned).
	Notes []string `json:"notes,omitempty"`
}
