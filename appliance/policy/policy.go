package policy

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
)

// Roaming modes for Rules.Roaming and PlanRule.Roaming.
const (
	RoamSingle = "single"
	RoamAll    = "all"
	RoamByPlan = "by_plan"
)

// DayPassMatch is the PlanRule.Match (case-insensitive) day passes map to.
const DayPassMatch = "Day Pass"

// DefaultPassDuration is how long a day pass lasts when its rule has no
// Duration.
const DefaultPassDuration = 24 * time.Hour

// Rules is the plan, group and location mapping policy applies. The caller
// builds it from config.
type Rules struct {
	// Plans are matched against an OfficeRnD plan by id first, then by
	// name (case-insensitive, trimmed).
	Plans     []PlanRule
	Groups    map[string]GroupRule // by name
	Locations []LocationRule
	Roaming   string // "single" | "all" | "by_plan"; "" = single
	// RequirePaidInvoice makes membership.FirstInvoicePaid == false deny
	// (nil counts as paid).
	RequirePaidInvoice bool
}

// PlanRule maps one OfficeRnD plan to access.
type PlanRule struct {
	Match      string          // plan id or name
	Group      string          // a key of Rules.Groups
	Duration   time.Duration   // 0 = as long as the membership; e.g. 24h for Day Pass
	Bandwidth  model.Bandwidth // zero fields inherit from the group
	Enabled    bool            // false = "no WiFi" (Virtual Office)
	StaticIP   bool
	MaxDevices int    // 0 = group's
	Roaming    string // for Rules.Roaming "by_plan": "single" | "all" ("" = single)
}

// GroupRule is a named class of access.
type GroupRule struct {
	Name           string
	Bandwidth      model.Bandwidth
	SessionTimeout time.Duration // 0 = none (only ValidUntil limits a session)
	MaxDevices     int
}

// LocationRule maps a resolved OfficeRnD location to a network.
type LocationRule struct {
	LocationID string // resolved OfficeRnD location id
	Name       string
	Network    string
	VLAN       int
	TZ         *time.Location // the location's timezone; nil = UTC
}

// Input is everything policy knows about one member at one instant.
type Input struct {
	Member *model.Member // nil = unknown user
	// Memberships are the member's personal memberships and those of
	// their company; ones that do not cover the member are ignored.
	Memberships []model.Membership
	Passes      []model.Pass          // the member's (and company's) day passes
	Plans       map[string]model.Plan // by id
	Now         time.Time
}

// Location returns the rule for OfficeRnD location id.
func (r *Rules) Location(id string) (LocationRule, bool) {
	if r == nil || id == "" {
		return LocationRule{}, false
	}
	for _, l := range r.Locations {
		if l.LocationID == id {
			return l, true
		}
	}
	return LocationRule{}, false
}

// PlanRuleFor returns the rule mapping plan p: one whose Match is p's id,
// else one whose Match equals p's name (case-insensitive, trimmed).
func (r *Rules) PlanRuleFor(p model.Plan) (PlanRule, bool) {
	if r == nil {
		return PlanRule{}, false
	}
	if id := strings.TrimSpace(p.ID); id != "" {
		for _, pr := range r.Plans {
			if strings.TrimSpace(pr.Match) == id {
				return pr, true
			}
		}
	}
	return r.ruleNamed(p.Name)
}

func (r *Rules) ruleNamed(name string) (PlanRule, bool) {
	name = strings.TrimSpace(name)
	if name == "" {
		return PlanRule{}, false
	}
	for _, pr := range r.Plans {
		if strings.EqualFold(strings.TrimSpace(pr.Match), name) {
			return pr, true
		}
	}
	return PlanRule{}, false
}

// Denial stages: when nothing grants, the candidate that got furthest
// explains the denial. stageCounts and above count as a live membership.
const (
	stageNotApproved = 1 + iota
	stageEnded
	stageNotStarted
	stageUnmapped
	stageUnpaid
	stageNoWiFi // counts
	stageWrongLocation
	stageGranted
)

// candidate is one membership or pass, evaluated.
type candidate struct {
	id       string
	planID   string
	planName string
	rule     PlanRule
	stage    int
	deny     string // "" when it grants
	why      string // the deny cause, for the verdict line
	line     string // the operator line describing it
	locs     []model.LocationAccess
	until    time.Time // zero = open-ended
	tz       *time.Location
	bw       model.Bandwidth
}

// Decide returns member in.Member's access at in.Now. A nil r is taken as
// empty rules. Reasons[0] is the verdict, one line per membership and pass
// follows. When a day pass wins, MembershipID is the pass id and PlanID is
// empty; a pass not used before (FirstUse zero) is the caller's to
// activate by recording FirstUse = in.Now. A denied decision names the
// membership (or pass) that explains it, and grants nothing.
func Decide(r *Rules, in Input) model.Decision {
	d, _ := decide(r, in, "")
	return d
}

// DecideAt is Decide for a request at OfficeRnD location locationID (the
// NAS's): the best membership or pass among those granting WiFi there
// wins, so a member with a Hot Desk here and a Dedicated Desk elsewhere
// gets the Hot Desk here rather than a denial. When something grants
// elsewhere only, it denies with DenyWrongLocation. An empty locationID is
// Decide.
func DecideAt(r *Rules, in Input, locationID string) model.Decision {
	d, _ := decide(r, in, locationID)
	return d
}

// DecideAtUntil is DecideAt that also says how long the decision holds by
// itself: the earliest instant after in.Now at which the same input could
// decide differently, because a membership starts or ends, a plan's
// duration or a day pass runs out, or a date changes at a location's
// midnight (whichever comes first of every membership and pass
// considered, not only the winner's). Zero means never: nothing in the
// decision depends on the time. in.Now itself means the decision changes
// continuously (an unused day pass is valid for its duration from the
// instant it is evaluated) and should not be kept.
//
// SessionTimeout is relative to in.Now; whoever keeps a decision cuts it
// to ValidUntil at its own instant, as the RADIUS replies do.
func DecideAtUntil(r *Rules, in Input, locationID string) (model.Decision, time.Time) {
	return decide(r, in, locationID)
}

// horizon collects the instants at which a decision's inputs change by
// themselves.
type horizon struct {
	now    time.Time
	next   time.Time // zero: none yet
	moving bool
}

// at records that the decision may change at t (ignored unless after now).
func (h *horizon) at(t time.Time) {
	if t.IsZero() || !t.After(h.now) {
		return
	}
	if h.next.IsZero() || t.Before(h.next) {
		h.next = t
	}
}

// dateChange records the next local midnight in tz: every comparison
// with a date (a start or end "today") can change only there. A calendar
// whose next day cannot be found (no such instant after now) keeps the
// decision a minute.
func (h *horizon) dateChange(tz *time.Location) {
	today := model.DateOf(h.now, tz)
	end := today.End(tz)
	if !end.After(h.now) || model.DateOf(end, tz) == today {
		h.at(h.now.Add(time.Minute))
		return
	}
	h.at(end)
}

func (h *horizon) until() time.Time {
	if h.moving {
		return h.now
	}
	return h.next
}

func decide(r *Rules, in Input, at string) (model.Decision, time.Time) {
	if r == nil {
		r = &Rules{}
	}
	m := in.Member
	if m == nil {
		return denied(model.DenyUnknownUser, "no OfficeRnD member has this identity", nil), time.Time{}
	}
	h := &horizon{now: in.Now}
	var cands []candidate
	var notes []string
	for i := range in.Memberships {
		ms := &in.Memberships[i]
		if !covers(m, ms.Member, ms.Company, ms.IsPersonal) {
			notes = append(notes, fmt.Sprintf("membership %s is not %s's (member %q, company %q); ignored", ms.ID, m.ID, ms.Member, ms.Company))
			continue
		}
		cands = append(cands, r.membership(m, ms, in, h))
	}
	for i := range in.Passes {
		p := &in.Passes[i]
		if !covers(m, p.Member, p.Company, p.IsPersonal) {
			notes = append(notes, fmt.Sprintf("day pass %s is not %s's (member %q, company %q); ignored", p.ID, m.ID, p.Member, p.Company))
			continue
		}
		cands = append(cands, r.pass(m, p, in.Now, h))
	}
	if at != "" {
		for i := range cands {
			if c := &cands[i]; c.stage == stageGranted && !grantsAt(c.locs, at) {
				c.stage, c.deny = stageWrongLocation, model.DenyWrongLocation
				c.why = fmt.Sprintf("%s grants WiFi at %s, not at %s", c.id, locNames(c.locs), r.locName(at))
				c.line += "; not at " + r.locName(at)
				c.locs = nil
			}
		}
	}
	lines := make([]string, 0, len(cands)+len(notes)+2)
	for _, c := range cands {
		lines = append(lines, c.line)
	}
	lines = append(lines, notes...)

	var best *candidate
	for i := range cands {
		c := &cands[i]
		if best == nil || c.stage > best.stage || c.stage == best.stage && better(c, best) {
			best = c
		}
	}
	if best != nil && best.stage == stageGranted {
		return r.grant(m, best, lines, in.Now), h.until()
	}
	// A membership-specific reason (ended, not approved, not started)
	// tells the operator more than the member's status, which OfficeRnD
	// derives from those memberships anyway; the status speaks only when
	// there is nothing else.
	if best == nil && inactive(m.Status) {
		why := fmt.Sprintf("member %s status is %q and no membership or day pass is live", m.ID, m.Status)
		return denied(model.DenyMemberInactive, why, lines), h.until()
	}
	if best == nil {
		return denied(model.DenyNoMembership, fmt.Sprintf("member %s has no membership or day pass", m.ID), lines), h.until()
	}
	d := denied(best.deny, best.why, lines)
	d.MembershipID, d.PlanID, d.PlanName = best.id, best.planID, best.planName
	return d, h.until()
}

// inactive reports whether an OfficeRnD member status means "not a member
// (any more)".
func inactive(status string) bool {
	switch status {
	case "former", "lead", "contact", "not_approved":
		return true
	}
	return false
}

// covers reports whether a membership or pass held by member/company
// applies to m.
func covers(m *model.Member, member, company string, personal bool) bool {
	if member != "" {
		return member == m.ID
	}
	return !personal && company != "" && company == m.Company
}

// better reports whether granting a beats granting b: higher download
// bandwidth (0 = unlimited is highest), static IP, later end, smaller id.
func better(a, b *candidate) bool {
	if a.rule.Enabled != b.rule.Enabled {
		return a.rule.Enabled
	}
	if c := cmpKbps(a.bw.DownKbps, b.bw.DownKbps); c != 0 {
		return c > 0
	}
	if a.rule.StaticIP != b.rule.StaticIP {
		return a.rule.StaticIP
	}
	if !a.until.Equal(b.until) {
		switch {
		case a.until.IsZero():
			return true
		case b.until.IsZero():
			return false
		}
		return a.until.After(b.until)
	}
	return a.id < b.id
}

func cmpKbps(a, b int) int {
	if a <= 0 {
		a = int(^uint(0) >> 1)
	}
	if b <= 0 {
		b = int(^uint(0) >> 1)
	}
	return cmp.Compare(a, b)
}

func denied(deny, why string, lines []string) model.Decision {
	reasons := make([]string, 0, len(lines)+1)
	reasons = append(reasons, fmt.Sprintf("denied (%s): %s", deny, why))
	reasons = append(reasons, lines...)
	return model.Decision{Deny: deny, Reasons: reasons}
}

// grant builds the allowed decision from the winning candidate c.
func (r *Rules) grant(m *model.Member, c *candidate, lines []string, now time.Time) model.Decision {
	g := r.Groups[c.rule.Group]
	d := model.Decision{
		Allowed:        true,
		MembershipID:   c.id,
		PlanID:         c.planID,
		PlanName:       c.planName,
		Group:          c.rule.Group,
		Bandwidth:      c.bw,
		Locations:      c.locs,
		ValidUntil:     c.until,
		SessionTimeout: g.SessionTimeout,
		StaticIP:       c.rule.StaticIP,
		MaxDevices:     cmp.Or(c.rule.MaxDevices, g.MaxDevices),
	}
	if !c.until.IsZero() {
		if left := c.until.Sub(now); d.SessionTimeout <= 0 || left < d.SessionTimeout {
			d.SessionTimeout = left
		}
	}
	verdict := fmt.Sprintf("allowed: %s (%s) via %s at %s, %s", c.planName, c.rule.Group, c.id,
		locNames(c.locs), untilText(c.until, c.tz))
	d.Reasons = make([]string, 0, len(lines)+3)
	d.Reasons = append(d.Reasons, verdict)
	d.Reasons = append(d.Reasons, lines...)
	d.Reasons = append(d.Reasons, fmt.Sprintf("best plan: %s (%s)", c.planName, c.rule.Group))
	if inactive(m.Status) {
		d.Reasons = append(d.Reasons, fmt.Sprintf("member status %q ignored: OfficeRnD updates it lazily and %s is live", m.Status, c.id))
	}
	if _, ok := r.Groups[c.rule.Group]; !ok {
		d.Reasons = append(d.Reasons, fmt.Sprintf("group %q is not in config groups; no group defaults apply", c.rule.Group))
	}
	return d
}

func grantsAt(locs []model.LocationAccess, id string) bool {
	for _, l := range locs {
		if l.LocationID == id {
			return true
		}
	}
	return false
}

func locNames(locs []model.LocationAccess) string {
	names := make([]string, len(locs))
	for i, l := range locs {
		names[i] = cmp.Or(l.Name, l.LocationID)
	}
	return strings.Join(names, ", ")
}

func untilText(t time.Time, tz *time.Location) string {
	if t.IsZero() {
		return "open-ended"
	}
	return "until " + stamp(t, tz)
}

func stamp(t time.Time, tz *time.Location) string {
	return t.In(tz).Format("2006-01-02 15:04 MST")
}

// tzOf returns the calendar of location id: its rule's TZ, else UTC.
func (r *Rules) tzOf(id string) *time.Location {
	if l, ok := r.Location(id); ok && l.TZ != nil {
		return l.TZ
	}
	return time.UTC
}

// locations returns where rule grants access for a membership or pass at
// location id, or why nowhere.
func (r *Rules) locations(rule PlanRule, id string) ([]model.LocationAccess, string) {
	mode := r.Roaming
	if mode == RoamByPlan {
		mode = rule.Roaming
	}
	if mode == RoamAll {
		if len(r.Locations) == 0 {
			return nil, "roaming all, but config locations is empty"
		}
		out := make([]model.LocationAccess, len(r.Locations))
		for i, l := range r.Locations {
			out[i] = access(l)
		}
		return out, ""
	}
	if id == "" {
		return nil, "no location: it names none and the member has no home location"
	}
	l, ok := r.Location(id)
	if !ok {
		return nil, fmt.Sprintf("location %s is not mapped in config locations", id)
	}
	return []model.LocationAccess{access(l)}, ""
}

func access(l LocationRule) model.LocationAccess {
	return model.LocationAccess{LocationID: l.LocationID, Name: l.Name, Network: l.Network, VLAN: l.VLAN}
}

func (r *Rules) locName(id string) string {
	if id == "" {
		return "no location"
	}
	if l, ok := r.Location(id); ok && l.Name != "" {
		return l.Name
	}
	return "location " + id
}

// bandwidth is the rule's, zero fields from its group.
func (r *Rules) bandwidth(rule PlanRule) model.Bandwidth {
	g := r.Groups[rule.Group].Bandwidth
	return model.Bandwidth{
		DownKbps: cmp.Or(rule.Bandwidth.DownKbps, g.DownKbps),
		UpKbps:   cmp.Or(rule.Bandwidth.UpKbps, g.UpKbps),
	}
}

// membership evaluates one membership that covers m.
func (r *Rules) membership(m *model.Member, ms *model.Membership, in Input, h *horizon) candidate {
	locID := cmp.Or(ms.Location, m.Location)
	tz := r.tzOf(locID)
	h.dateChange(tz) // "today" against the start and end dates
	plan, ok := in.Plans[ms.Plan]
	if !ok {
		plan = model.Plan{ID: ms.Plan}
	}
	c := candidate{id: ms.ID, planID: ms.Plan, planName: cmp.Or(plan.Name, "plan "+ms.Plan), tz: tz}
	label := fmt.Sprintf("membership %s (%s, %s)", ms.ID, c.planName, r.locName(locID))
	today := model.DateOf(in.Now, tz)
	span := fmt.Sprintf("%s → %s", cmp.Or(string(ms.StartDate), "(no start)"), cmp.Or(string(ms.EndDate), "open-ended"))
	fail := func(stage int, deny, why string) candidate {
		c.stage, c.deny, c.why = stage, deny, why
		c.line = label + " " + span + ": " + strings.TrimPrefix(why, "membership "+ms.ID+" ")
		return c
	}

	approved := (ms.Status == model.MembershipApproved || ms.Status == "") && ms.CalculatedStatus != model.CalcNotApproved
	if !approved {
		return fail(stageNotApproved, model.DenyNotApproved, fmt.Sprintf("membership %s is not approved (status %q, calculatedStatus %q)", ms.ID, ms.Status, ms.CalculatedStatus))
	}
	if !ms.StartDate.IsZero() && today < ms.StartDate {
		return fail(stageNotStarted, model.DenyNotStarted, fmt.Sprintf("membership %s starts %s (today is %s at %s)", ms.ID, ms.StartDate, today, r.locName(locID)))
	}
	if !ms.EndDate.IsZero() {
		end := ms.EndDate.End(tz)
		if end.IsZero() {
			return fail(stageEnded, model.DenyEnded, fmt.Sprintf("membership %s has an unreadable end date %q", ms.ID, ms.EndDate))
		}
		if today > ms.EndDate || !in.Now.Before(end) {
			return fail(stageEnded, model.DenyEnded, fmt.Sprintf("membership %s ended %s", ms.ID, ms.EndDate))
		}
		c.until = end
		h.at(end)
	}
	rule, ok := r.PlanRuleFor(plan)
	if !ok {
		return fail(stageUnmapped, model.DenyUnmappedPlan, fmt.Sprintf("plan %q (id %s) has no mapping in config plans", plan.Name, ms.Plan))
	}
	c.rule, c.bw = rule, r.bandwidth(rule)
	if rule.Duration > 0 {
		start := ms.StartDate.Start(tz)
		if start.IsZero() {
			return fail(stageEnded, model.DenyEnded, fmt.Sprintf("membership %s has no start date to count its %v plan from", ms.ID, rule.Duration))
		}
		if until := addSpan(start, rule.Duration, tz); c.until.IsZero() || until.Before(c.until) {
			c.until = until
		}
		h.at(c.until)
		if !in.Now.Before(c.until) {
			return fail(stageEnded, model.DenyEnded, fmt.Sprintf("membership %s (%v from %s) ended %s", ms.ID, rule.Duration, ms.StartDate, stamp(c.until, tz)))
		}
	}
	if r.RequirePaidInvoice && ms.FirstInvoicePaid != nil && !*ms.FirstInvoicePaid {
		return fail(stageUnpaid, model.DenyUnpaid, fmt.Sprintf("membership %s: first invoice not paid yet", ms.ID))
	}
	return r.place(c, label+" active "+span, locID)
}

// place finishes a counting candidate: WiFi included, and where.
func (r *Rules) place(c candidate, label, locID string) candidate {
	if !c.rule.Enabled {
		c.stage, c.deny, c.why = stageNoWiFi, model.DenyPlanNoWiFi, fmt.Sprintf("plan %s includes no WiFi", c.planName)
		c.line = label + ": " + c.why
		return c
	}
	locs, why := r.locations(c.rule, locID)
	if len(locs) == 0 {
		c.stage, c.deny, c.why = stageWrongLocation, model.DenyWrongLocation, why
		c.line = label + ": " + why
		return c
	}
	c.stage, c.locs = stageGranted, locs
	c.line = label
	if !c.until.IsZero() {
		c.line += ", " + untilText(c.until, c.tz)
	}
	c.line += ": grants " + c.rule.Group
	return c
}

// addSpan adds d to t; whole days are added on t's calendar in tz, so a
// day-long plan starting at local midnight ends at local midnight even
// across a DST change.
func addSpan(t time.Time, d time.Duration, tz *time.Location) time.Time {
	const day = 24 * time.Hour
	if d%day != 0 {
		return t.Add(d)
	}
	l := t.In(tz)
	return time.Date(l.Year(), l.Month(), l.Day()+int(d/day), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), tz)
}

// pass evaluates one day pass that covers m.
func (r *Rules) pass(m *model.Member, p *model.Pass, now time.Time, h *horizon) candidate {
	locID := cmp.Or(p.Location, m.Location)
	tz := r.tzOf(locID)
	h.dateChange(tz) // "today" against the start date
	c := candidate{id: p.ID, planName: DayPassMatch, tz: tz}
	label := fmt.Sprintf("day pass %s (%s, %d of %d used)", p.ID, r.locName(locID), p.UsedCount, p.Count)
	fail := func(stage int, deny, why string) candidate {
		c.stage, c.deny, c.why = stage, deny, why
		c.line = label + ": " + strings.TrimPrefix(why, "day pass "+p.ID+" ")
		return c
	}
	rule, mapped := r.ruleNamed(DayPassMatch)
	if mapped {
		c.planName = strings.TrimSpace(rule.Match)
	}
	dur := rule.Duration
	if dur <= 0 {
		dur = DefaultPassDuration
	}
	// limit is the pass's own validity end; zero = none.
	var limit time.Time
	if !p.ValidTo.IsZero() {
		limit = p.ValidTo
	}
	if !p.EndDate.IsZero() {
		if end := p.EndDate.End(tz); !end.IsZero() && (limit.IsZero() || end.Before(limit)) {
			limit = end
		}
	}
	var state string
	if !p.FirstUse.IsZero() {
		c.until = p.FirstUse.Add(dur)
		state = "first used " + stamp(p.FirstUse, tz)
	} else {
		switch p.Status {
		case "", "valid", "pending":
		default:
			return fail(stageEnded, model.DenyPassExpired, fmt.Sprintf("day pass %s is %s", p.ID, p.Status))
		}
		if p.Count <= p.UsedCount {
			return fail(stageEnded, model.DenyPassExpired, fmt.Sprintf("day pass %s: all %d used", p.ID, p.Count))
		}
		if !p.ValidFrom.IsZero() && now.Before(p.ValidFrom) {
			h.at(p.ValidFrom)
			return fail(stageNotStarted, model.DenyNotStarted, fmt.Sprintf("day pass %s is valid from %s", p.ID, stamp(p.ValidFrom, tz)))
		}
		if today := model.DateOf(now, tz); !p.StartDate.IsZero() && today < p.StartDate {
			return fail(stageNotStarted, model.DenyNotStarted, fmt.Sprintf("day pass %s starts %s", p.ID, p.StartDate))
		}
		c.until = now.Add(dur)
		state = "unused, activates now"
		// Its end moves with the clock until the pass is activated (a
		// store write), unless its own limit comes first.
		h.moving = h.moving || limit.IsZero() || !limit.Before(c.until)
	}
	if !limit.IsZero() && limit.Before(c.until) {
		c.until = limit
	}
	h.at(c.until)
	if !now.Before(c.until) {
		return fail(stageEnded, model.DenyPassExpired, fmt.Sprintf("day pass %s expired %s", p.ID, stamp(c.until, tz)))
	}
	if !mapped {
		return fail(stageUnmapped, model.DenyUnmappedPlan, fmt.Sprintf("day pass %s: no plan named %q in config plans", p.ID, DayPassMatch))
	}
	c.rule, c.bw = rule, r.bandwidth(rule)
	return r.place(c, label+" "+state, locID)
}
