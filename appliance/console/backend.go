package console

import (
	"context"
	"errors"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
)

// Backend is what the console needs from the daemon; the composition root
// implements it (appliance/console.go). Actions take the acting operator
// as actor ("console:alice"); the console audits each action itself too.
type Backend interface {
	// Now is the daemon's clock: sessions, lockouts and the charts use it.
	Now() time.Time

	// Operator accounts (see the store's console_operators bucket).
	Operator(name string) (Operator, error) // ErrNoOperator when unknown
	// Audit records one entry of the audit trail.
	Audit(actor, action, member, subject, cause string) error

	Dashboard(ctx context.Context) (Dashboard, error)
	SearchMembers(ctx context.Context, query string, limit int) ([]MemberRow, error)
	Member(ctx context.Context, id string) (MemberPage, error) // ErrNotFound
	Disconnect(ctx context.Context, actor, memberID, sessionKey string) error
	ResendWelcome(ctx context.Context, actor, memberID string, reset bool) error
	RevokeCert(ctx context.Context, actor, memberID, serial string) error

	Guests(ctx context.Context) (GuestsPage, error)
	CreateCode(ctx context.Context, actor string, req CodeRequest) (NewCode, error)
	RevokeCode(ctx context.Context, actor, hint string) error

	Network(ctx context.Context) (NetworkPage, error)
	// PortalPreview renders the captive portal's start page as a guest at
	// location would see it in lang ("en", "de").
	PortalPreview(ctx context.Context, location, lang string) ([]byte, error)

	AuditTrail(ctx context.Context, f AuditFilter) ([]model.AuditEntry, error)
}

// Errors a Backend returns.
var (
	ErrNoOperator = errors.New("no such operator")
	ErrNotFound   = errors.New("not found")
)

// FieldError is bad form input: the message is shown next to the field.
type FieldError struct{ Field, Msg string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Roles.
const (
	RoleOperator = "operator" // read, guest codes, disconnect
	RoleAdmin    = "admin"    // everything
)

// Operator is a console login as the Backend keeps it.
type Operator struct {
	Name string
	Role string
	// Hash is the argon2id PHC string (HashPassword).
	Hash string
	// Changed moves whenever the password or role changes: sessions
	// opened before are ended.
	Changed time.Time
}

// Dashboard is the first page's data.
type Dashboard struct {
	Version        string
	SyncLast       time.Time // last successful sync
	SyncLag        time.Duration
	SyncError      string
	OfficeRnDUp    bool
	WebhookState   string // registration state
	WebhookLast    time.Time
	WebhooksRecent int // webhooks applied in the last 24 h (from the ring)
	Outbox         int
	GuestsOnline   int
	Sessions       []GroupCount // live RADIUS sessions per group and location
	Peers          []Peer
	// Series are per-minute counters of the last 24 h, oldest first.
	Accepts, Rejects, Webhooks, Online []int
	// Rollout is the newest fleet rollout this box knows; nil when none
	// was started (or the box is in no fleet).
	Rollout *Rollout
	// Self is this box's own update state; nil when it has no update
	// slots (not an installed image).
	Self *SelfUpdate
}

// Rollout is a fleet rollout as `deskgate fleet update status` shows it.
type Rollout struct {
	ID, Version string
	State       string // in progress, done, halted
	Halted      string // which box failed and why
	Created     time.Time
	Boxes       []RolloutBox // in rollout order, the canary first
}

// RolloutBox is one box's progress in a rollout.
type RolloutBox struct {
	Box, Phase, Version, Reason string
	At                          time.Time
}

// SelfUpdate is this box's slot and its last update attempt.
type SelfUpdate struct {
	Running string // the version running now
	// Pending is the attempt not decided yet, Last the latest decided
	// one; nil when none.
	Pending, Last *UpdateAttempt
}

// UpdateAttempt is one single-box update.
type UpdateAttempt struct {
	Version, From, To, Result, Reason string
	Started, Finished                 time.Time
}

// GroupCount is a number of live sessions.
type GroupCount struct {
	Group, Location string
	N               int
}

// Peer is another box of the fleet.
type Peer struct {
	Box, Version, State string
}

// MemberRow is a search result.
type MemberRow struct {
	ID, Name, Email, Username string
	Allowed                   bool
	Deny                      string
	Plan, Group               string
}

// MemberPage is one member's page.
type MemberPage struct {
	ID, Name, Email string
	Username        string
	Allowed         bool
	Deny            string
	Reasons         []string // the same words as deskgate explain
	ValidUntil      time.Time
	Memberships     []Membership
	Devices         []Device
	Sessions        []LiveSession
	Certs           []Cert
	Audit           []model.AuditEntry
}

// Membership is one of the member's memberships.
type Membership struct {
	Plan, Location, Status string
	Start, End             string
}

// Device is a registered device (PPSK) or one seen in a session.
type Device struct {
	MAC, Name string
}

// LiveSession is a live RADIUS session.
type LiveSession struct {
	Key, NAS, MAC, IP, Username string
	Start                       time.Time
}

// Cert is an EAP-TLS client certificate.
type Cert struct {
	Serial   string
	NotAfter time.Time
	Revoked  bool
}

// GuestsPage is the Guests page's data.
type GuestsPage struct {
	Codes     []Code
	Locations []Location
}

// Code is a live guest or day-pass code (never the code itself).
type Code struct {
	Hint, Kind, Name, Location string
	From, Until                time.Time
	Sessions                   int
	AdHoc, Expired             bool
	Booking                    string
}

// Location is a location a code can be for.
type Location struct{ ID, Name string }

// CodeRequest asks for an ad-hoc guest code.
type CodeRequest struct {
	Name, Email, Location string
	Duration              time.Duration
	Devices               int
}

// NewCode is a code just created: the only time the console sees it.
type NewCode struct {
	Code, Hint, Location, Name, Email string
	Until                             time.Time
	Devices                           int
}

// NetworkPage is the Network page's data.
type NetworkPage struct {
	NAS      []NAS
	Clients  []GuestClient
	Shaping  []Shaping
	Portal   bool
	Location []Location
}

// NAS is a configured access point or controller with its check result.
type NAS struct {
	Name, Address, Location, CoA string
	MissingMsgAuth               int
	OK                           bool
	Detail                       string
}

// GuestClient is a client the gateway lets through.
type GuestClient struct {
	MAC, IP string
	Until   time.Time
}

// Shaping is a group's bandwidth.
type Shaping struct {
	Group    string
	Down, Up string
}

// AuditFilter selects audit entries.
type AuditFilter struct {
	Member   string // member id, email or username
	Kind     string // action prefix, e.g. "account." or "guest.code_created"
	From, To time.Time
	Limit    int
}
