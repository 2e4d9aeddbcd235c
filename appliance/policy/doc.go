// Package policy decides a member's WiFi access: a pure function from the
// member, their memberships and day passes, the plan and location mapping,
// and the current instant to a model.Decision with operator-readable reasons.
// RADIUS, the portal and netcfg all ask policy; none re-derives access.
//
// It does no I/O, reads no clock and logs nothing: the time comes in the
// Input. It imports only the standard library and appliance/model; config
// is translated into Rules by the caller.
//
// # When a membership counts
//
// A membership counts when it is approved and live on the calendar of its
// location's timezone: startDate ≤ today ≤ endDate, where an empty endDate
// is open-ended and an endDate of today lasts until the local midnight that
// ends today. OfficeRnD sends the dates as midnight UTC; they are read as
// calendar dates (model.Date), never as instants.
//
// calculatedStatus is deliberately not trusted for liveness: it is what the
// API computed when the record was fetched and goes stale while the
// appliance is offline, and time-based starts and ends must still take
// effect then. Only calculatedStatus "not_approved" is honoured (as not
// approved). An empty status (older data) is taken as approved; any other
// status than "approved" is not.
//
// A membership also needs its plan mapped by a PlanRule (by plan id first,
// then by name, case-insensitive and trimmed); an unmapped plan does not
// count. With RequirePaidInvoice, firstInvoicePaid=false does not count
// (nil counts as paid). A plan rule with a Duration (e.g. 24h) ends access
// Duration after the start of startDate in the location's timezone; whole
// days are added on the calendar, so a DST change does not shift midnight.
//
// Personal memberships cover their member. Company memberships (isPersonal
// false, company = the member's company) cover every team member, unless
// the membership names a member, in which case it covers only that member
// (OfficeRnD's "assigned to" a team member).
//
// # Day passes
//
// A model.Pass maps to the PlanRule whose Match is "Day Pass" (case-
// insensitive). Once used (FirstUse set) it lasts the rule's Duration
// (default 24h) from FirstUse; unused, it needs status valid or pending (or
// empty), count > usedCount and to be inside its validity, and is allowed
// for Duration from now. Both are capped by validTo and by the end of
// endDate. A pass counts at its Location, else at the member's home
// location.
//
// # Choosing among several
//
// Every membership and pass is evaluated; the best granting one wins: a
// higher download bandwidth (0 = unlimited counts as highest), then static
// IP, then the later ValidUntil (open-ended is latest), then the smaller id.
// DecideAt first drops what does not grant at the asking location, so a
// better plan elsewhere never hides a lesser one here.
// When nothing grants, the denial is the one that got furthest: a counting
// membership at an unmapped location (DenyWrongLocation), a counting plan
// without WiFi (DenyPlanNoWiFi), then — only when nothing counts — an
// inactive member status (former, lead, contact, not_approved:
// DenyMemberInactive), then first-invoice unpaid, unmapped plan, not
// started, ended or pass expired, not approved, and finally no membership
// at all. Member status alone never denies a member whose membership
// counts: OfficeRnD updates member status lazily, the membership is
// authoritative.
//
// # Locations, limits and time
//
// Roaming "single" (and "" or unknown) allows only the membership's
// location (or the member's home location); "all" allows every configured
// location; "by_plan" uses the PlanRule's Roaming ("" = single). A location
// without a LocationRule grants nothing: DenyWrongLocation. The calendar of
// an unmapped location is read in UTC.
//
// Bandwidth and MaxDevices come from the PlanRule, zero fields from its
// group. ValidUntil is zero for open-ended access; SessionTimeout is the
// group's, shortened to ValidUntil-Now, so it never outlasts the access.
package policy
