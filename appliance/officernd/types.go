package officernd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// This file holds the OfficeRnD v2 ("Flex") resource shapes shared by the
// client, the sync and the simulator. JSON names are the v2 names; decoding
// is tolerant of the v1/internal names that webhook payloads still carry
// (office, team, calculatedStatus, {dateTime} booking times, populated
// references), and marshalling always emits v2 names.

// Member is an OfficeRnD member (a person).
type Member struct {
	ID              string          `json:"_id"`
	Name            string          `json:"name,omitempty"`
	Email           string          `json:"email,omitempty"`
	Phone           string          `json:"phone,omitempty"`
	Image           string          `json:"image,omitempty"`
	Description     string          `json:"description,omitempty"`
	Location        string          `json:"location,omitempty"`
	Company         string          `json:"company,omitempty"`
	Status          string          `json:"status,omitempty"` // active, former, pending, contact, not_approved, drop-in, lead
	StartDate       string          `json:"startDate,omitempty"`
	IsBillingPerson bool            `json:"isBillingPerson,omitempty"`
	IsContactPerson bool            `json:"isContactPerson,omitempty"`
	Tags            []string        `json:"tags,omitempty"`
	Address         *Address        `json:"address,omitempty"`
	BillingDetails  *BillingDetails `json:"billingDetails,omitempty"`
	Properties      map[string]any  `json:"properties,omitempty"`
	CreatedAt       time.Time       `json:"createdAt,omitzero"`
	CreatedBy       string          `json:"createdBy,omitempty"`
	ModifiedAt      time.Time       `json:"modifiedAt,omitzero"`
	ModifiedBy      string          `json:"modifiedBy,omitempty"`
}

// Company is an OfficeRnD company (v1: team).
type Company struct {
	ID                          string          `json:"_id"`
	Name                        string          `json:"name,omitempty"`
	Description                 string          `json:"description,omitempty"`
	Email                       string          `json:"email,omitempty"`
	Image                       string          `json:"image,omitempty"`
	URL                         string          `json:"url,omitempty"`
	Location                    string          `json:"location,omitempty"`
	StartDate                   string          `json:"startDate,omitempty"`
	Status                      string          `json:"status,omitempty"` // active, former, pending, inactive, not_approved, drop-in, lead
	Address                     *Address        `json:"address,omitempty"`
	BillingDetails              *BillingDetails `json:"billingDetails,omitempty"`
	HasActiveMembersAllowance   bool            `json:"hasActiveMembersAllowance,omitempty"`
	ActiveMembersAllowanceLimit int             `json:"activeMembersAllowanceLimit,omitempty"`
	Tags                        []string        `json:"tags,omitempty"`
	Properties                  map[string]any  `json:"properties,omitempty"`
	CreatedAt                   time.Time       `json:"createdAt,omitzero"`
	CreatedBy                   string          `json:"createdBy,omitempty"`
	ModifiedAt                  time.Time       `json:"modifiedAt,omitzero"`
	ModifiedBy                  string          `json:"modifiedBy,omitempty"`
}

// Membership binds a member (IsPersonal) or a company to a plan at a
// location. StartDate and EndDate are ISO strings as sent (midnight UTC);
// read only their date part. EndDate is empty for open-ended memberships.
type Membership struct {
	ID               string          `json:"_id"`
	Name             string          `json:"name,omitempty"`
	IsPersonal       bool            `json:"isPersonal,omitempty"`
	Status           string          `json:"status,omitempty"`           // approved | not_approved
	CalculatedStatus string          `json:"calculatedStatus,omitempty"` // not_started | active | expired | not_approved
	Type             string          `json:"type,omitempty"`             // month_to_month | fixed
	Location         string          `json:"location,omitempty"`
	Plan             string          `json:"plan,omitempty"`
	Company          string          `json:"company,omitempty"`
	Member           string          `json:"member,omitempty"`
	StartDate        string          `json:"startDate,omitempty"`
	EndDate          string          `json:"endDate,omitempty"`
	IntervalLength   string          `json:"intervalLength,omitempty"` // once | hour | day | month
	IntervalCount    int             `json:"intervalCount,omitempty"`
	IsLocked         bool            `json:"isLocked,omitempty"`
	Price            float64         `json:"price,omitempty"`
	Deposit          float64         `json:"deposit,omitempty"`
	Discount         json.RawMessage `json:"discount,omitempty"` // shape not pinned down; kept raw
	DiscountAmount   float64         `json:"discountAmount,omitempty"`
	DiscountedPrice  float64         `json:"discountedPrice,omitempty"`
	Contract         string          `json:"contract,omitempty"`
	Source           string          `json:"source,omitempty"`
	Properties       map[string]any  `json:"properties,omitempty"`
	CreatedAt        time.Time       `json:"createdAt,omitzero"`
	CreatedBy        string          `json:"createdBy,omitempty"`
	ModifiedAt       time.Time       `json:"modifiedAt,omitzero"`
	ModifiedBy       string          `json:"modifiedBy,omitempty"`
}

// Plan is an OfficeRnD plan (read-only through the API).
type Plan struct {
	ID                 string         `json:"_id"`
	Name               string         `json:"name,omitempty"`
	Description        string         `json:"description,omitempty"`
	Code               string         `json:"code,omitempty"`
	Type               string         `json:"type,omitempty"` // office, desk, hotdesk, service or custom
	Price              float64        `json:"price,omitempty"`
	Deposit            float64        `json:"deposit,omitempty"`
	Locations          []string       `json:"locations,omitempty"`
	IntervalLength     string         `json:"intervalLength,omitempty"` // once | month
	IntervalCount      int            `json:"intervalCount,omitempty"`
	RequiresApproval   bool           `json:"requiresApproval,omitempty"`
	AllowsCancellation bool           `json:"allowsCancellation,omitempty"`
	ForMembers         bool           `json:"forMembers,omitempty"`
	ForTeamMembers     bool           `json:"forTeamMembers,omitempty"`
	ForNonMembers      bool           `json:"forNonMembers,omitempty"`
	Amenities          []string       `json:"amenities,omitempty"`
	Properties         map[string]any `json:"properties,omitempty"`
	CreatedAt          time.Time      `json:"createdAt,omitzero"`
	ModifiedAt         time.Time      `json:"modifiedAt,omitzero"`
}

// Location is an OfficeRnD location (v1: office).
type Location struct {
	ID         string         `json:"_id"`
	Name       string         `json:"name,omitempty"`
	Address    *Address       `json:"address,omitempty"`
	Timezone   string         `json:"timezone,omitempty"` // IANA name
	IsOpen     bool           `json:"isOpen,omitempty"`
	IsPublic   bool           `json:"isPublic,omitempty"`
	Image      string         `json:"image,omitempty"`
	Code       string         `json:"code,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
	CreatedAt  time.Time      `json:"createdAt,omitzero"`
	ModifiedAt time.Time      `json:"modifiedAt,omitzero"`
}

// Resource is a bookable thing: a meeting room, a desk.
type Resource struct {
	ID            string         `json:"_id"`
	Name          string         `json:"name,omitempty"`
	Description   string         `json:"description,omitempty"`
	Type          string         `json:"type,omitempty"` // meeting_room, team_room, desk, desk_tr, hotdesk, desk_na or custom
	Rate          string         `json:"rate,omitempty"`
	Location      string         `json:"location,omitempty"`
	Floor         string         `json:"floor,omitempty"`
	Price         float64        `json:"price,omitempty"`
	Deposit       float64        `json:"deposit,omitempty"`
	Size          int            `json:"size,omitempty"` // capacity
	Area          float64        `json:"area,omitempty"` // mm²
	ChildrenCount int            `json:"childrenCount,omitempty"`
	DesksCount    int            `json:"desksCount,omitempty"`
	Parents       []string       `json:"parents,omitempty"`
	Amenities     []string       `json:"amenities,omitempty"`
	Privacy       string         `json:"privacy,omitempty"` // full, active_members, limited
	Properties    map[string]any `json:"properties,omitempty"`
	CreatedAt     time.Time      `json:"createdAt,omitzero"`
	ModifiedAt    time.Time      `json:"modifiedAt,omitzero"`
}

// Booking is a reservation of a resource. Start and End are instants;
// Timezone is the location's IANA zone.
type Booking struct {
	ID          string         `json:"_id"`
	Title       string         `json:"title,omitempty"`
	Description string         `json:"description,omitempty"`
	Timezone    string         `json:"timezone,omitempty"`
	Start       time.Time      `json:"start,omitzero"`
	End         time.Time      `json:"end,omitzero"`
	Recurrence  *Recurrence    `json:"recurrence,omitempty"`
	Location    string         `json:"location,omitempty"`
	Company     string         `json:"company,omitempty"`
	Member      string         `json:"member,omitempty"`
	Resource    string         `json:"resource,omitempty"`
	Reference   string         `json:"reference,omitempty"`
	IsCancelled bool           `json:"isCancelled,omitempty"`
	IsTentative bool           `json:"isTentative,omitempty"`
	IsFree      bool           `json:"isFree,omitempty"`
	Visitors    []string       `json:"visitors,omitempty"` // external guest (visitor) ids
	Members     []string       `json:"members,omitempty"`  // teammate (member) ids
	Source      string         `json:"source,omitempty"`
	Properties  map[string]any `json:"properties,omitempty"`
	CreatedAt   time.Time      `json:"createdAt,omitzero"`
	ModifiedAt  time.Time      `json:"modifiedAt,omitzero"`
}

// Occurrence is one slot of a booking as GET /bookings/occurrences serves
// it: the booking's fields with this occurrence's Start and End, and
// Booking naming the booking (the series) it belongs to. The shape is not
// documented; fields are decoded as tolerantly as a booking's.
type Occurrence struct {
	Booking
	// Series is the id of the booking this occurrence belongs to.
	Series string `json:"booking,omitempty"`
}

// UnmarshalJSON decodes an occurrence: a booking plus its "booking"
// reference (an id or a populated object).
func (o *Occurrence) UnmarshalJSON(b []byte) error {
	var bk Booking
	if err := json.Unmarshal(b, &bk); err != nil {
		return fmt.Errorf("decode occurrence: %w", err)
	}
	var ref struct {
		Series Ref `json:"booking"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		return fmt.Errorf("decode occurrence: %w", err)
	}
	*o = Occurrence{Booking: bk, Series: string(ref.Series)}
	return nil
}

// Recurrence is a booking's repeat rule.
type Recurrence struct {
	RRule   string   `json:"rrule,omitempty"`
	ExDates []string `json:"exdates,omitempty"`
}

// Visitor is an external guest hosted by a member or company.
type Visitor struct {
	ID          string         `json:"_id"`
	Name        string         `json:"name,omitempty"`
	Email       string         `json:"email,omitempty"`
	Phone       string         `json:"phone,omitempty"`
	Description string         `json:"description,omitempty"`
	Member      string         `json:"member,omitempty"`
	Company     string         `json:"company,omitempty"`
	Type        string         `json:"type,omitempty"` // preregistration | reception
	Properties  map[string]any `json:"properties,omitempty"`
	CreatedAt   time.Time      `json:"createdAt,omitzero"`
	ModifiedAt  time.Time      `json:"modifiedAt,omitzero"`
}

// Pass is a set of day passes owned by a member (IsPersonal) or company.
// The dates are ISO strings as sent.
type Pass struct {
	ID                      string         `json:"_id"`
	Member                  string         `json:"member,omitempty"`
	Company                 string         `json:"company,omitempty"`
	IsPersonal              bool           `json:"isPersonal,omitempty"`
	Membership              string         `json:"membership,omitempty"`
	Count                   int            `json:"count,omitempty"`
	UsedCount               int            `json:"usedCount,omitempty"`
	IntervalLength          string         `json:"intervalLength,omitempty"` // month | once
	Status                  string         `json:"status,omitempty"`         // used, valid, expired, pending
	StartDate               string         `json:"startDate,omitempty"`
	EndDate                 string         `json:"endDate,omitempty"`
	RenewDate               string         `json:"renewDate,omitempty"`
	ValidFrom               string         `json:"validFrom,omitempty"`
	ValidTo                 string         `json:"validTo,omitempty"`
	Fee                     string         `json:"fee,omitempty"`
	ShouldGrantActiveStatus bool           `json:"shouldGrantActiveStatus,omitempty"`
	ResourceType            string         `json:"resourceType,omitempty"`
	Properties              map[string]any `json:"properties,omitempty"`
	CreatedAt               time.Time      `json:"createdAt,omitzero"`
	ModifiedAt              time.Time      `json:"modifiedAt,omitzero"`
}

// Webhook is a registered webhook endpoint. Secret is returned on create and
// verifies deliveries; never log it.
type Webhook struct {
	ID          string    `json:"_id"`
	URL         string    `json:"url"`
	Description string    `json:"description,omitempty"`
	EventTypes  []string  `json:"eventTypes"`
	Secret      string    `json:"secret,omitempty"`
	IsEnabled   bool      `json:"isEnabled"`
	CreatedAt   time.Time `json:"createdAt,omitzero"`
	ModifiedAt  time.Time `json:"modifiedAt,omitzero"`
}

// Address is a postal address. The API documents an object but has been
// seen sending a plain string; a string lands in Text.
type Address struct {
	Country string `json:"country,omitempty"`
	State   string `json:"state,omitempty"`
	City    string `json:"city,omitempty"`
	Street  string `json:"street,omitempty"`
	Zip     string `json:"zip,omitempty"`
	// Text is the whole address when it arrived as a string.
	Text string `json:"-"`
}

// BillingDetails are a member's or company's invoicing details.
type BillingDetails struct {
	BillingName        string   `json:"billingName,omitempty"`
	VATNumber          string   `json:"vatNumber,omitempty"`
	RegistrationNumber string   `json:"registrationNumber,omitempty"`
	PaymentMethod      string   `json:"paymentMethod,omitempty"`
	BillingAddress     *Address `json:"billingAddress,omitempty"`
}

// ListPage is one page of a v2 list response.
type ListPage[T any] struct {
	RangeStart int    `json:"rangeStart"`
	RangeEnd   int    `json:"rangeEnd"`
	CursorNext string `json:"cursorNext,omitempty"`
	CursorPrev string `json:"cursorPrev,omitempty"`
	Results    []T    `json:"results"`
}

// CountResult is the body of GET /{resource}/count.
type CountResult struct {
	Total  int          `json:"total"`
	Groups []CountGroup `json:"groups,omitempty"`
}

// CountGroup is one group of a grouped count.
type CountGroup struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
}

// ErrorBody is the NestJS error body v2 sends. Message is a string or a
// []string of validation messages (after decoding: string or []any).
type ErrorBody struct {
	StatusCode int    `json:"statusCode"`
	Message    any    `json:"message"`
	Error      string `json:"error,omitempty"`
	Timestamp  string `json:"timestamp,omitempty"`
	Path       string `json:"path,omitempty"`
}

// Messages returns Message as a list of strings.
func (e ErrorBody) Messages() []string {
	switch m := e.Message.(type) {
	case nil:
		return nil
	case string:
		return []string{m}
	case []string:
		return m
	case []any:
		out := make([]string, 0, len(m))
		for _, v := range m {
			out = append(out, fmt.Sprint(v))
		}
		return out
	default:
		return []string{fmt.Sprint(m)}
	}
}

// Text returns the messages joined with "; ".
func (e ErrorBody) Text() string { return strings.Join(e.Messages(), "; ") }

// Token is the token endpoint's response (and, for the simulator, what it
// serves). An error response instead carries Error and ErrorDescription.
type Token struct {
	AccessToken      string `json:"access_token,omitempty"`
	TokenType        string `json:"token_type,omitempty"`
	ExpiresIn        int    `json:"expires_in,omitempty"`
	Scope            string `json:"scope,omitempty"`
	Error            string `json:"error,omitempty"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// Event is a webhook delivery envelope. ID ("event") is the idempotency key.
type Event struct {
	ID        string    `json:"event"`
	Type      string    `json:"eventType"`
	Data      EventData `json:"data"`
	CreatedAt time.Time `json:"createdAt,omitzero"`
}

// EventData carries the entity and, on updates, the old values of the
// changed fields. Some events add Member or Company ids.
type EventData struct {
	Object             json.RawMessage `json:"object"`
	PreviousAttributes json.RawMessage `json:"previousAttributes,omitempty"`
	Member             Ref             `json:"member,omitempty"`
	Company            Ref             `json:"company,omitempty"`
}

// Ref is a reference to another record: its id. The docs show a plain id
// string, but populated references ({"_id": ..., "name": ...}) arrive too;
// both decode to the id. null decodes to "".
type Ref string

// UnmarshalJSON accepts an id string, a populated object with _id (or id),
// or null.
func (r *Ref) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case isNull(b):
		*r = ""
		return nil
	case isObject(b):
		raw, err := refID(b)
		if err != nil {
			return fmt.Errorf("decode reference: %w", err)
		}
		if isNull(raw) {
			*r = ""
			return nil
		}
		b = raw
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("decode reference: want an id string or an object with _id: %w", err)
	}
	*r = Ref(s)
	return nil
}

// ---- tolerant decoding ----

// shape describes how one resource's v1/internal names map to v2.
type shape struct {
	renames map[string]string // v1 key -> v2 key, applied when the v2 key is absent
	// overrides are v1 keys that win over the v2 key when both are
	// present (a v1 member's live calculatedStatus over its stale status).
	overrides map[string]string
	refs      []string // reference fields that may arrive populated ({_id, ...})
	refArr    []string // arrays of references that may be populated
	times     []string // instants that may arrive as {"dateTime": ...}
}

var (
	memberShape = shape{
		renames: map[string]string{"office": "location", "team": "company",
			"contactPerson": "isContactPerson", "billingPerson": "isBillingPerson"},
		// v1 members carry both: status is the stored one, calculatedStatus
		// the live one OfficeRnD derives from memberships.
		overrides: map[string]string{"calculatedStatus": "status"},
		refs:      []string{"location", "company"},
	}
	companyShape = shape{
		renames: map[string]string{"office": "location", "calculatedStatus": "status"},
		refs:    []string{"location"},
	}
	membershipShape = shape{
		renames: map[string]string{"office": "location", "team": "company", "locked": "isLocked"},
		refs:    []string{"location", "company", "member", "plan", "contract"},
	}
	planShape = shape{
		renames: map[string]string{"offices": "locations"},
		refArr:  []string{"locations"},
	}
	locationShape = shape{}
	resourceShape = shape{
		renames: map[string]string{"office": "location"},
		refs:    []string{"location", "floor", "rate"},
	}
	bookingShape = shape{
		renames: map[string]string{"office": "location", "team": "company", "resourceId": "resource",
			"canceled": "isCancelled", "summary": "title", "tentative": "isTentative", "free": "isFree"},
		refs:   []string{"location", "company", "member", "resource"},
		refArr: []string{"visitors", "members"},
		times:  []string{"start", "end"},
	}
	visitorShape = shape{
		renames: map[string]string{"team": "company"},
		refs:    []string{"member", "company"},
	}
	passShape = shape{
		renames: map[string]string{"team": "company"},
		refs:    []string{"member", "company", "membership", "fee"},
	}
)

// normalize rewrites a JSON object from v1/internal names to v2 names.
func (s shape) normalize(b []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if m == nil { // JSON null
		return b, nil
	}
	changed := false
	for from, to := range s.renames {
		v, ok := m[from]
		if !ok {
			continue
		}
		if cur, has := m[to]; !has || isNull(cur) {
			m[to] = v
		}
		delete(m, from)
		changed = true
	}
	for from, to := range s.overrides {
		v, ok := m[from]
		if !ok {
			continue
		}
		if !isNull(v) {
			m[to] = v
		}
		delete(m, from)
		changed = true
	}
	for _, k := range s.refs {
		if v, ok := m[k]; ok && isObject(v) {
			id, err := refID(v)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", k, err)
			}
			m[k] = id
			changed = true
		}
	}
	for _, k := range s.refArr {
		v, ok := m[k]
		if !ok || !bytes.Contains(v, []byte("{")) {
			continue
		}
		var items []json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil {
			return nil, fmt.Errorf("field %s: %w", k, err)
		}
		for i, it := range items {
			if isObject(it) {
				id, err := refID(it)
				if err != nil {
					return nil, fmt.Errorf("field %s: %w", k, err)
				}
				items[i] = id
			}
		}
		nv, err := json.Marshal(items)
		if err != nil {
			return nil, err
		}
		m[k] = nv
		changed = true
	}
	for _, k := range s.times {
		if v, ok := m[k]; ok && isObject(v) {
			var dt struct {
				DateTime json.RawMessage `json:"dateTime"`
			}
			if err := json.Unmarshal(v, &dt); err != nil {
				return nil, fmt.Errorf("field %s: %w", k, err)
			}
			if len(dt.DateTime) == 0 {
				dt.DateTime = json.RawMessage("null")
			}
			m[k] = dt.DateTime
			changed = true
		}
	}
	if !changed {
		return b, nil
	}
	return json.Marshal(m)
}

func isObject(v json.RawMessage) bool {
	v = bytes.TrimLeft(v, " \t\r\n")
	return len(v) > 0 && v[0] == '{'
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

// refID extracts "_id" (or "id") from a populated reference.
func refID(v json.RawMessage) (json.RawMessage, error) {
	var r struct {
		ID  json.RawMessage `json:"_id"`
		Alt json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, err
	}
	if len(r.ID) > 0 {
		return r.ID, nil
	}
	if len(r.Alt) > 0 {
		return r.Alt, nil
	}
	return json.RawMessage("null"), nil
}

// UnmarshalJSON decodes v2 or v1 member JSON.
func (m *Member) UnmarshalJSON(b []byte) error {
	type plain Member
	nb, err := memberShape.normalize(b)
	if err != nil {
		return fmt.Errorf("decode member: %w", err)
	}
	return json.Unmarshal(nb, (*plain)(m))
}

// UnmarshalJSON decodes v2 or v1 (team) company JSON.
func (c *Company) UnmarshalJSON(b []byte) error {
	type plain Company
	nb, err := companyShape.normalize(b)
	if err != nil {
		return fmt.Errorf("decode company: %w", err)
	}
	return json.Unmarshal(nb, (*plain)(c))
}

// UnmarshalJSON decodes v2 or v1 membership JSON.
func (ms *Membership) UnmarshalJSON(b []byte) error {
	type plain Membership
	nb, err := membershipShape.normalize(b)
	if err != nil {
		return fmt.Errorf("decode membership: %w", err)
	}
	return json.Unmarshal(nb, (*plain)(ms))
}

// UnmarshalJSON decodes v2 or v1 plan JSON.
func (p *Plan) UnmarshalJSON(b []byte) error {
	type plain Plan
	nb, err := planShape.normalize(b)
	if err != nil {
		return fmt.Errorf("decode plan: %w", err)
	}
	return json.Unmarshal(nb, (*plain)(p))
}

// UnmarshalJSON decodes v2 or v1 (office) location JSON.
func (l *Location) UnmarshalJSON(b []byte) error {
	type plain Location
	nb, err := locationShape.normalize(b)
	if err != nil {
		return fmt.Errorf("decode location: %w", err)
	}
	return json.Unmarshal(nb, (*plain)(l))
}

// UnmarshalJSON decodes v2 or v1 resource JSON.
func (r *Resource) UnmarshalJSON(b []byte) error {
	type plain Resource
	nb, err := resourceShape.normalize(b)
	if err != nil {
		return fmt.Errorf("decode resource: %w", err)
	}
	return json.Unmarshal(nb, (*plain)(r))
}

// UnmarshalJSON decodes v2 booking JSON, or v1 JSON whose start and end
// are {"dateTime": ...} objects.
func (bk *Booking) UnmarshalJSON(b []byte) error {
	type plain Booking
	nb, err := bookingShape.normalize(b)
	if err != nil {
		return fmt.Errorf("decode booking: %w", err)
	}
	return json.Unmarshal(nb, (*plain)(bk))
}

// UnmarshalJSON decodes v2 or v1 visitor JSON.
func (v *Visitor) UnmarshalJSON(b []byte) error {
	type plain Visitor
	nb, err := visitorShape.normalize(b)
	if err != nil {
		return fmt.Errorf("decode visitor: %w", err)
	}
	return json.Unmarshal(nb, (*plain)(v))
}

// UnmarshalJSON decodes v2 or v1 pass JSON.
func (p *Pass) UnmarshalJSON(b []byte) error {
	type plain Pass
	nb, err := passShape.normalize(b)
	if err != nil {
		return fmt.Errorf("decode pass: %w", err)
	}
	return json.Unmarshal(nb, (*plain)(p))
}

// UnmarshalJSON accepts an address object (v1 "address" key means street)
// or a plain string.
func (a *Address) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		*a = Address{}
		return json.Unmarshal(b, &a.Text)
	}
	if isNull(b) {
		return nil
	}
	type plain Address
	var aux struct {
		plain
		V1Street string `json:"address"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return fmt.Errorf("decode address: %w", err)
	}
	*a = Address(aux.plain)
	if a.Street == "" {
		a.Street = aux.V1Street
	}
	return nil
}

// MarshalJSON emits an object, or the string when the address arrived as
// one and has no structured parts.
func (a Address) MarshalJSON() ([]byte, error) {
	type plain Address
	if a.Text != "" && a.Country == "" && a.State == "" && a.City == "" && a.Street == "" && a.Zip == "" {
		return json.Marshal(a.Text)
	}
	return json.Marshal(plain(a))
}

// UnmarshalJSON accepts the v2 page object, or a bare JSON array (a v1
// list, or an endpoint that does not page), which becomes one final page.
func (p *ListPage[T]) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		*p = ListPage[T]{}
		if err := json.Unmarshal(b, &p.Results); err != nil {
			return err
		}
		p.RangeStart, p.RangeEnd = 1, len(p.Results)
		if len(p.Results) == 0 {
			p.RangeStart = 0
		}
		return nil
	}
	type plain ListPage[T]
	return json.Unmarshal(b, (*plain)(p))
}

// UnmarshalJSON decodes an envelope; createdAt may be an ISO string or a
// unix time in milliseconds, and an unreadable createdAt is left zero
// rather than failing the delivery.
func (e *Event) UnmarshalJSON(b []byte) error {
	type plain Event
	var aux struct {
		plain
		CreatedAt json.RawMessage `json:"createdAt"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*e = Event(aux.plain)
	e.CreatedAt = time.Time{}
	raw := bytes.TrimSpace(aux.CreatedAt)
	switch {
	case len(raw) == 0 || isNull(raw):
	case raw[0] == '"':
		var t time.Time
		if json.Unmarshal(raw, &t) == nil {
			e.CreatedAt = t
		}
	default:
		var ms float64
		if json.Unmarshal(raw, &ms) == nil && ms > 0 && ms < 1e15 {
			e.CreatedAt = time.UnixMilli(int64(ms)).UTC()
		}
	}
	return nil
}
