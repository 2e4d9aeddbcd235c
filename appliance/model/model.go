// Package model holds deskgate's domain types: the OfficeRnD entities as the
// appliance stores them (already mapped from the API's v1/v2 shapes), the
// WiFi accounts derived from them, and the access decision policy produces.
//
// It owns no behaviour beyond small value helpers (calendar dates). Every
// other package may import it; it imports only the standard library.
package model

import (
	"fmt"
	"time"
)

// Date is a calendar date ("2026-11-27") with no time of day and no zone.
// OfficeRnD sends membership start and end dates as midnight UTC and asks
// integrators to read only the date part; a Date is that date part.
type Date string

// ParseDate accepts "YYYY-MM-DD" or an ISO-8601 timestamp and keeps only
// the date as written (the time and zone are ignored on purpose).
func ParseDate(s string) (Date, error) {
	if s == "" {
		return "", nil
	}
	if len(s) < 10 {
		return "", fmt.Errorf("parse date %q: want YYYY-MM-DD", s)
	}
	if _, err := time.Parse("2006-01-02", s[:10]); err != nil {
		return "", fmt.Errorf("parse date %q: %w", s, err)
	}
	return Date(s[:10]), nil
}

// DateOf returns the calendar date of t as seen in loc.
func DateOf(t time.Time, loc *time.Location) Date {
	return Date(t.In(loc).Format("2006-01-02"))
}

// IsZero reports whether the date is unset (open-ended).
func (d Date) IsZero() bool { return d == "" }

// Start returns the first instant of the date in loc (local midnight).
func (d Date) Start(loc *time.Location) time.Time {
	t, err := time.ParseInLocation("2006-01-02", string(d), loc)
	if err != nil {
		return time.Time{}
	}
	return t
}

// End returns the first instant after the date in loc (the next local
// midnight), which is when access that ends "on" the date stops.
func (d Date) End(loc *time.Location) time.Time {
	s := d.Start(loc)
	if s.IsZero() {
		return s
	}
	y, m, day := s.Date()
	return time.Date(y, m, day+1, 0, 0, 0, 0, loc)
}

// Member is an OfficeRnD member (a person).
type Member struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Email      string            `json:"email,omitempty"`
	Phone      string            `json:"phone,omitempty"`
	Location   string            `json:"location,omitempty"` // home location id
	Company    string            `json:"company,omitempty"`
	Status     string            `json:"status,omitempty"` // active, former, pending, contact, not_approved, drop-in, lead
	StartDate  Date              `json:"startDate,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
	CreatedAt  time.Time         `json:"createdAt,omitzero"`
	ModifiedAt time.Time         `json:"modifiedAt,omitzero"`
}

// Company is an OfficeRnD company (v1: team).
type Company struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Email      string    `json:"email,omitempty"`
	Location   string    `json:"location,omitempty"`
	Status     string    `json:"status,omitempty"`
	ModifiedAt time.Time `json:"modifiedAt,omitzero"`
}

// Membership statuses as OfficeRnD reports them.
const (
	MembershipApproved    = "approved"
	MembershipNotApproved = "not_approved"

	CalcNotStarted  = "not_started"
	CalcActive      = "active"
	CalcExpired     = "expired"
	CalcNotApproved = "not_approved"
)

// Membership binds a member (isPersonal) or a company to a plan at a
// location for a range of calendar dates.
type Membership struct {
	ID               string `json:"id"`
	Name             string `json:"name,omitempty"`
	Member           string `json:"member,omitempty"`
	Company          string `json:"company,omitempty"`
	IsPersonal       bool   `json:"isPersonal,omitempty"`
	Plan             string `json:"plan"`
	Location         string `json:"location,omitempty"`
	Status           string `json:"status,omitempty"`           // approved | not_approved
	CalculatedStatus string `json:"calculatedStatus,omitempty"` // not_started | active | expired | not_approved
	StartDate        Date   `json:"startDate,omitempty"`
	EndDate          Date   `json:"endDate,omitempty"` // empty: open-ended
	// FirstInvoicePaid is nil when the API does not say; the stricter
	// "wait for payment" gate treats nil as paid.
	FirstInvoicePaid *bool     `json:"firstInvoicePaid,omitempty"`
	ModifiedAt       time.Time `json:"modifiedAt,omitzero"`
}

// Plan is an OfficeRnD plan.
type Plan struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Code       string    `json:"code,omitempty"`
	Type       string    `json:"type,omitempty"`
	Locations  []string  `json:"locations,omitempty"`
	ModifiedAt time.Time `json:"modifiedAt,omitzero"`
}

// Location is an OfficeRnD location (v1: office).
type Location struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Code     string `json:"code,omitempty"`
	Timezone string `json:"timezone,omitempty"` // IANA name
}

// Resource is a bookable thing: a meeting room, a desk.
type Resource struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Type     string `json:"type,omitempty"` // meeting_room, team_room, desk, hotdesk, ...
	Location string `json:"location,omitempty"`
	Size     int    `json:"size,omitempty"`
}

// Booking is a reservation of a resource, possibly with external visitors.
type Booking struct {
	ID          string    `json:"id"`
	Title       string    `json:"title,omitempty"`
	Resource    string    `json:"resource,omitempty"`
	Location    string    `json:"location,omitempty"`
	Member      string    `json:"member,omitempty"`
	Company     string    `json:"company,omitempty"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Timezone    string    `json:"timezone,omitempty"`
	Visitors    []string  `json:"visitors,omitempty"`
	Members     []string  `json:"members,omitempty"`
	IsCancelled bool      `json:"isCancelled,omitempty"`
	ModifiedAt  time.Time `json:"modifiedAt,omitzero"`
	// Recurring marks a recurring series as GET /bookings returns it (one
	// record, with its first occurrence's start and end); its occurrences
	// are stored as bookings of their own with Series set.
	Recurring bool `json:"recurring,omitempty"`
	// Series is, for one occurrence of a recurring booking, the series'
	// booking id ("" for ordinary bookings and for series records).
	Series string `json:"series,omitempty"`
}

// Visitor is an external guest, hosted by a member or company.
type Visitor struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Email   string `json:"email,omitempty"`
	Phone   string `json:"phone,omitempty"`
	Member  string `json:"member,omitempty"`
	Company string `json:"company,omitempty"`
}

// Pass is a set of day passes owned by a member or company.
type Pass struct {
	ID         string    `json:"id"`
	Member     string    `json:"member,omitempty"`
	Company    string    `json:"company,omitempty"`
	IsPersonal bool      `json:"isPersonal,omitempty"`
	Membership string    `json:"membership,omitempty"`
	Location   string    `json:"location,omitempty"` // where the pass is valid; empty: the member's location
	Count      int       `json:"count,omitempty"`
	UsedCount  int       `json:"usedCount,omitempty"`
	Status     string    `json:"status,omitempty"` // used, valid, expired, pending
	StartDate  Date      `json:"startDate,omitempty"`
	EndDate    Date      `json:"endDate,omitempty"`
	ValidFrom  time.Time `json:"validFrom,omitzero"`
	ValidTo    time.Time `json:"validTo,omitzero"`
	// FirstUse is when the visitor first logged in with this pass (set by
	// the RADIUS/portal side); zero until then.
	FirstUse   time.Time `json:"firstUse,omitzero"`
	ModifiedAt time.Time `json:"modifiedAt,omitzero"`
}

// Password sources for an account.
const (
	PasswordGenerated = "generate"
	PasswordProperty  = "property"
	PasswordMember    = "member"
)

// Account is the WiFi identity derived from a member. It holds only what
// authentication needs: the NT hash (MD4 of the UTF-16LE password) serves
// MS-CHAPv2 and verifies PAP. No plaintext password is ever stored.
type Account struct {
	Username       string `json:"username"`
	MemberID       string `json:"memberId"`
	NTHash         []byte `json:"ntHash,omitempty"` // 16 bytes; empty until a password is set
	PasswordSource string `json:"passwordSource,omitempty"`
	// PropertyDigest fingerprints the member property the password came from
	// (HMAC, not the value) so a change is noticed without storing it.
	PropertyDigest []byte `json:"propertyDigest,omitempty"`
	Disabled       bool   `json:"disabled,omitempty"`
	DisabledReason string `json:"disabledReason,omitempty"`
	Group          string `json:"group,omitempty"`
	// OnboardTokenHash is the SHA-256 of the single-use onboarding link
	// token (member-defined passwords); the token itself is only emailed.
	OnboardTokenHash []byte    `json:"onboardTokenHash,omitempty"`
	OnboardExpires   time.Time `json:"onboardExpires,omitzero"`
	CreatedAt        time.Time `json:"createdAt"`
	UpdatedAt        time.Time `json:"updatedAt"`
}

// Bandwidth is a rate limit in kilobits per second; 0 means unlimited.
type Bandwidth struct {
	DownKbps int `json:"downKbps,omitempty"`
	UpKbps   int `json:"upKbps,omitempty"`
}

// Deny reasons, stable strings used in logs, the audit trail and RADIUS
// Reply-Message lookups.
const (
	DenyNone            = ""
	DenyUnknownUser     = "unknown_user"
	DenyMemberInactive  = "member_inactive"
	DenyNoMembership    = "no_membership"
	DenyNotStarted      = "membership_not_started"
	DenyEnded           = "membership_ended"
	DenyNotApproved     = "membership_not_approved"
	DenyUnpaid          = "first_invoice_unpaid"
	DenyUnmappedPlan    = "plan_unmapped"
	DenyPlanNoWiFi      = "plan_no_wifi"
	DenyWrongLocation   = "wrong_location"
	DenyAccountDisabled = "account_disabled"
	DenyPassExpired     = "pass_expired"
	DenyWrongPassword   = "wrong_password"
	DenyDeviceLimit     = "device_limit"
)

// LocationAccess is what a decision grants at one location.
type LocationAccess struct {
	LocationID string `json:"locationId"`
	Name       string `json:"name,omitempty"`
	Network    string `json:"network,omitempty"`
	VLAN       int    `json:"vlan,omitempty"`
}

// Decision is policy's verdict for one member at one instant.
type Decision struct {
	Allowed bool   `json:"allowed"`
	Deny    string `json:"deny,omitempty"` // one of the Deny* constants when !Allowed
	// Reasons explain the verdict in operator language, most important first.
	Reasons      []string         `json:"reasons"`
	MembershipID string           `json:"membershipId,omitempty"`
	PlanID       string           `json:"planId,omitempty"`
	PlanName     string           `json:"planName,omitempty"`
	Group        string           `json:"group,omitempty"`
	Bandwidth    Bandwidth        `json:"bandwidth"`
	Locations    []LocationAccess `json:"locations,omitempty"`
	// ValidUntil is when access ends; zero means open-ended.
	ValidUntil     time.Time     `json:"validUntil,omitzero"`
	SessionTimeout time.Duration `json:"sessionTimeout,omitempty"`
	StaticIP       bool          `json:"staticIp,omitempty"`
	MaxDevices     int           `json:"maxDevices,omitempty"`
}

// At returns the access granted at location id, if any.
func (d Decision) At(locationID string) (LocationAccess, bool) {
	for _, l := range d.Locations {
		if l.LocationID == locationID {
			return l, true
		}
	}
	return LocationAccess{}, false
}

// AuditEntry records one access-affecting change with its cause.
type AuditEntry struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`  // sync, webhook, poll, radius, portal, cli
	Action  string    `json:"action"` // account.created, account.disabled, ...
	Member  string    `json:"member,omitempty"`
	Subject string    `json:"subject,omitempty"` // e.g. username
	Cause   string    `json:"cause"`             // "membership 603d… ended"
	// Box is the fleet box the change was made at (the fleet's trail,
	// see docs/fleet.md); empty outside a fleet.
	Box string `json:"box,omitempty"`
}

// Email is an outbox entry. Secret holds material that must not sit in
// plaintext at rest (a generated password, an onboarding link token); the
// store seals it and the sender opens it.
type Email struct {
	ID   string `json:"id"`
	Kind string `json:"kind"` // welcome, guest_code, ...
	// Once names the message fleet-wide ("welcome/<member>"): in a fleet
	// the sender claims it before sending, and a message another box
	// claimed is dropped, not sent again (docs/fleet.md). Empty: no claim.
	Once      string            `json:"once,omitempty"`
	To        string            `json:"to"`
	Member    string            `json:"member,omitempty"`
	Username  string            `json:"username,omitempty"`
	Data      map[string]string `json:"data,omitempty"`   // template fields, not secret
	Secret    map[string]string `json:"secret,omitempty"` // template fields, sealed at rest
	CreatedAt time.Time         `json:"createdAt"`
	Attempts  int               `json:"attempts,omitempty"`
	NextTry   time.Time         `json:"nextTry,omitzero"`
	LastError string            `json:"lastError,omitempty"`
}

// Device is a device without 802.1X (a printer, a TV) a member registered
// for PPSK: the access point's MAC authentication gets the member's (or
// their Private Office's) WPA passphrase for it.
type Device struct {
	MAC       string    `json:"mac"` // aa:bb:cc:dd:ee:ff
	Name      string    `json:"name"`
	MemberID  string    `json:"memberId"`
	AddedBy   string    `json:"addedBy"` // member (setup page) | cli
	CreatedAt time.Time `json:"createdAt"`
}
