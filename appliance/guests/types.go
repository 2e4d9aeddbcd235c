package guests

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"
)

// Client is a device on the guest network (mirrors portal.Client).
type Client struct {
	MAC net.HardwareAddr
	IP  netip.Addr
}

// Session is a logged-in client's access (mirrors portal.Session).
type Session struct {
	ID         string
	Kind       string // KindGuest, KindDayPass or KindMember
	Name       string
	Until      time.Time
	CanExtend  bool
	MemberID   string
	LocationID string
}

// Session kinds.
const (
	KindGuest   = "guest"
	KindDayPass = "daypass"
	KindMember  = "member"
)

// Login errors (mirror the portal's; the adapter maps them one to one).
var (
	ErrBadCode        = errors.New("unknown code")
	ErrNotYetValid    = errors.New("code not valid yet")
	ErrExpired        = errors.New("code expired")
	ErrWrongLocation  = errors.New("code not valid at this location")
	ErrDeviceLimit    = errors.New("device limit reached for this code")
	ErrBadCredentials = errors.New("wrong email or password")
	ErrNoWiFi         = errors.New("no WiFi access for this member")
)

// Network opens and closes the guest network for one client (mirrors
// portal.Network). Allow is idempotent and moves the end of an existing
// allowance.
type Network interface {
	Allow(ctx context.Context, c Client, until time.Time) error
	Revoke(ctx context.Context, c Client) error
}

// Members checks a member's email and WiFi password for a guest-network
// login at a location. It returns ErrBadCredentials, ErrNoWiFi or
// ErrWrongLocation (possibly wrapped) when the member may not log in; a
// zero until means open-ended (the session then lasts MemberSession).
type Members interface {
	CheckMember(ctx context.Context, email, password string, locationID string) (memberID, name string, until time.Time, err error)
}

// Day-pass start modes (Config.DayPassFrom).
const (
	FromFirstLogin = "first_login"
	FromPurchase   = "purchase"
)

// Config configures a Manager. The zero value of each field means its
// default.
type Config struct {
	BufferBefore time.Duration // default 15m
	BufferAfter  time.Duration // default 15m
	// DevicesPerCode limits the distinct MACs per code; default 2.
	DevicesPerCode int
	// DayPassFrom is FromFirstLogin (default) or FromPurchase.
	DayPassFrom string
	// DayPassDuration is what one pass grants; default 24h.
	DayPassDuration time.Duration
	// MemberSession is a member's guest-network session length when
	// Members reports no end; default 12h.
	MemberSession time.Duration
	// ResourceTypes are the bookable resource types whose visitors get
	// codes; default meeting_room and team_room.
	ResourceTypes []string
	SMS           SMSConfig
	// Locations names each location's guest network and timezone for the
	// emails and the midnight cleanup. A location missing here uses the
	// store's location name and timezone, else UTC.
	Locations map[string]Location
	// SealKey (32 bytes, AES-256-GCM) seals the code plaintexts kept for
	// re-delivery. When nil or malformed a random key is used and codes
	// created before a restart can no longer be re-sent (the guest keeps
	// the code they already have).
	SealKey []byte
	// CodeKey (32 bytes) keys the HMAC-SHA256 under which codes are
	// stored. Keep it outside the database (the daemon keeps it in
	// data_dir/guest-codes.key): a copy of the database without it cannot
	// check a single guess. When nil or malformed a random key is used and
	// every code stops working at a restart.
	CodeKey []byte
	// KickMail, if set, is called after emails were queued.
	KickMail func()
	// Fleet, when set, shares codes with the other boxes of a fleet.
	Fleet Fleet
	// ClaimRetry is how often a delivery no fleet box has claimed yet is
	// asked for again (the owner may be back, a takeover due); default 15s.
	ClaimRetry time.Duration
}

// SMSConfig configures the SMS hook: a POST of JSON {"to","text","from"}
// with "Authorization: Bearer <token>". An empty URL disables SMS.
type SMSConfig struct {
	URL       string
	TokenFile string // read at every send; trailing whitespace trimmed
	From      string
	// Timeout bounds one request; default 10s.
	Timeout time.Duration
}

// Location is what guests needs to know about a location.
type Location struct {
	Name    string
	Network string // guest SSID, for the emails
	TZ      *time.Location
}

func (c Config) withDefaults() Config {
	if c.BufferBefore <= 0 {
		c.BufferBefore = 15 * time.Minute
	}
	if c.BufferAfter <= 0 {
		c.BufferAfter = 15 * time.Minute
	}
	if c.DevicesPerCode <= 0 {
		c.DevicesPerCode = 2
	}
	if c.DayPassFrom == "" {
		c.DayPassFrom = FromFirstLogin
	}
	if c.DayPassDuration <= 0 {
		c.DayPassDuration = 24 * time.Hour
	}
	if c.MemberSession <= 0 {
		c.MemberSession = 12 * time.Hour
	}
	if len(c.ResourceTypes) == 0 {
		c.ResourceTypes = []string{"meeting_room", "team_room"}
	}
	if c.ClaimRetry <= 0 {
		c.ClaimRetry = 15 * time.Second
	}
	if c.SMS.Timeout <= 0 {
		c.SMS.Timeout = 10 * time.Second
	}
	return c
}
