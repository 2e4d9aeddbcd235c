package guests

import (
	"context"
	"time"

	"github.com/deskgate/deskgate/internal/guestnet"
)

// The guest-network vocabulary shared with the portal (internal/guestnet).
type (
	Client  = guestnet.Client
	Session = guestnet.Session
	Network = guestnet.Network
)

// Session kinds.
const (
	KindGuest   = guestnet.KindGuest
	KindDayPass = guestnet.KindDayPass
	KindMember  = guestnet.KindMember
)

// Login errors.
var (
	ErrBadCode        = guestnet.ErrBadCode
	ErrNotYetValid    = guestnet.ErrNotYetValid
	ErrExpired        = guestnet.ErrExpired
	ErrWrongLocation  = guestnet.ErrWrongLocation
	ErrDeviceLimit    = guestnet.ErrDeviceLimit
	ErrBadCredentials = guestnet.ErrBadCredentials
	ErrNoWiFi         = guestnet.ErrNoWiFi
)

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
	if c.SMS.Timeout <= 0 {
		c.SMS.Timeout = 10 * time.Second
	}
	return c
}
