package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
)

var (
	nyc   = mustTZ("America/New_York")
	tokyo = mustTZ("Asia/Tokyo")
)

func mustTZ(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// at returns the wall time "2006-01-02 15:04" in loc.
func at(s string, loc *time.Location) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		panic(err)
	}
	return t
}

// seedRules mirrors the seed config: the five plans, three groups, three
// locations (two in New York, one in Tokyo).
func seedRules() *Rules {
	return &Rules{
		Plans: []PlanRule{
			{Match: "Hot Desk", Group: "standard", Enabled: true},
			{Match: "  dedicated DESK ", Group: "premium", Enabled: true, Bandwidth: model.Bandwidth{DownKbps: 100_000}, MaxDevices: 4},
			{Match: "p-po", Group: "premium", Enabled: true, StaticIP: true},
			{Match: "Virtual Office", Group: "standard", Enabled: false},
			{Match: "Day Pass", Group: "daypass", Enabled: true, Duration: 24 * time.Hour},
		},
		Groups: map[string]GroupRule{
			"standard": {Name: "standard", Bandwidth: model.Bandwidth{DownKbps: 10_000, UpKbps: 5_000}, SessionTimeout: 12 * time.Hour, MaxDevices: 3},
			"premium":  {Name: "premium", Bandwidth: model.Bandwidth{DownKbps: 50_000, UpKbps: 20_000}, SessionTimeout: 24 * time.Hour, MaxDevices: 5},
			"daypass":  {Name: "daypass", Bandwidth: model.Bandwidth{DownKbps: 5_000, UpKbps: 2_000}, SessionTimeout: 24 * time.Hour, MaxDevices: 2},
		},
		Locations: []LocationRule{
			{LocationID: "loc-dt", Name: "Downtown", Network: "members", VLAN: 10, TZ: nyc},
			{LocationID: "loc-up", Name: "Uptown", Network: "members", VLAN: 20, TZ: nyc},
			{LocationID: "loc-tk", Name: "Tokyo", Network: "members-tk", VLAN: 30, TZ: tokyo},
		},
	}
}

var seedPlans = map[string]model.Plan{
	"p-hot":  {ID: "p-hot", Name: "Hot Desk"},
	"p-ded":  {ID: "p-ded", Name: "Dedicated Desk"},
	"p-po":   {ID: "p-po", Name: "Private Office"},
	"p-vo":   {ID: "p-vo", Name: "Virtual Office"},
	"p-dp":   {ID: "p-dp", Name: "Day Pass"},
	"p-gold": {ID: "p-gold", Name: "Gold"},
}

func member() *model.Member {
	return &model.Member{ID: "mem-1", Name: "Ada", Location: "loc-dt", Company: "co-1", Status: "active"}
}

// ms is an approved personal membership of mem-1 at Downtown.
func ms(id, plan, start, end string) model.Membership {
	return model.Membership{
		ID: id, Member: "mem-1", IsPersonal: true, Plan: plan, Location: "loc-dt",
		Status: model.MembershipApproved, CalculatedStatus: model.CalcActive,
		StartDate: model.Date(start), EndDate: model.Date(end),
	}
}

func with(m model.Membership, f func(*model.Membership)) model.Membership {
	f(&m)
	return m
}

func ptr[T any](v T) *T { return &v }

// noon is the default "now": 2026-11-27 12:00 in New York.
var noon = at("2026-11-27 12:00", nyc)

type want struct {
	allowed    bool
	deny       string
	membership string
	group      string
	bw         model.Bandwidth
	locs       []string
	until      time.Time
	untilOpen  bool // ValidUntil must be zero
	timeout    time.Duration
	staticIP   bool
	maxDevices int
	reasons    []string // substrings that must appear in some reason
	verdict    string   // substring of Reasons[0]
}

func TestDecide(t *testing.T) {
	hot := ms("ms-hot", "p-hot", "2026-01-01", "")
	tests := []struct {
		name  string
		rules func(*Rules)
		in    Input // Plans and Now default to seedPlans and noon; Member to member()
		nilM  bool
		want  want
	}{
		// Each seed plan.
		{name: "hot desk", in: Input{Memberships: []model.Membership{hot}}, want: want{
			allowed: true, membership: "ms-hot", group: "standard", bw: model.Bandwidth{DownKbps: 10_000, UpKbps: 5_000},
			locs: []string{"loc-dt"}, untilOpen: true, timeout: 12 * time.Hour, maxDevices: 3,
			reasons: []string{"membership ms-hot (Hot Desk, Downtown) active 2026-01-01 → open-ended", "best plan: Hot Desk (standard)"},
			verdict: "allowed: Hot Desk (standard)",
		}},
		{name: "dedicated desk by trimmed case-insensitive name", in: Input{Memberships: []model.Membership{ms("ms-ded", "p-ded", "2026-01-01", "")}}, want: want{
			allowed: true, membership: "ms-ded", group: "premium", bw: model.Bandwidth{DownKbps: 100_000, UpKbps: 20_000},
			locs: []string{"loc-dt"}, untilOpen: true, timeout: 24 * time.Hour, maxDevices: 4,
		}},
		{name: "private office by id, static IP", in: Input{Memberships: []model.Membership{ms("ms-po", "p-po", "2026-01-01", "")}}, want: want{
			allowed: true, membership: "ms-po", group: "premium", bw: model.Bandwidth{DownKbps: 50_000, UpKbps: 20_000},
			locs: []string{"loc-dt"}, staticIP: true, maxDevices: 5,
		}},
		{name: "virtual office has no wifi", in: Input{Memberships: []model.Membership{ms("ms-vo", "p-vo", "2026-01-01", "")}}, want: want{
			deny: model.DenyPlanNoWiFi, membership: "ms-vo", reasons: []string{"plan Virtual Office includes no WiFi"},
		}},
		{name: "day pass plan membership ends at local midnight", in: Input{Memberships: []model.Membership{ms("ms-dp", "p-dp", "2026-11-27", "2026-11-27")}}, want: want{
			allowed: true, group: "daypass", bw: model.Bandwidth{DownKbps: 5_000, UpKbps: 2_000},
			until: at("2026-11-28 00:00", nyc), timeout: 12 * time.Hour, maxDevices: 2,
		}},
		{name: "day pass plan open-ended lasts 24h from start of startDate", in: Input{Memberships: []model.Membership{ms("ms-dp", "p-dp", "2026-11-27", "")}}, want: want{
			allowed: true, group: "daypass", until: at("2026-11-28 00:00", nyc), timeout: 12 * time.Hour,
		}},
		{name: "day pass plan from yesterday is over", in: Input{Memberships: []model.Membership{ms("ms-dp", "p-dp", "2026-11-26", "")}}, want: want{
			deny: model.DenyEnded, reasons: []string{"ended 2026-11-27 00:00 EST"},
		}},

		// Several memberships.
		{name: "best plan wins: dedicated over hot desk", in: Input{Memberships: []model.Membership{hot, ms("ms-ded", "p-ded", "2026-01-01", "")}}, want: want{
			allowed: true, membership: "ms-ded", group: "premium", reasons: []string{"best plan: Dedicated Desk (premium)", "ms-hot"},
		}},
		{name: "enabled beats disabled", in: Input{Memberships: []model.Membership{ms("ms-vo", "p-vo", "2026-01-01", ""), hot}}, want: want{
			allowed: true, membership: "ms-hot",
		}},
		{name: "unlimited bandwidth beats any limit", rules: func(r *Rules) {
			r.Plans[0].Bandwidth.DownKbps = 0
			r.Groups["standard"] = GroupRule{SessionTimeout: time.Hour}
		},
			in: Input{Memberships: []model.Membership{ms("ms-ded", "p-ded", "2026-01-01", ""), hot}}, want: want{allowed: true, membership: "ms-hot", timeout: time.Hour}},
		{name: "static IP breaks a bandwidth tie", rules: func(r *Rules) { r.Plans[1].Bandwidth = model.Bandwidth{} },
			in: Input{Memberships: []model.Membership{ms("ms-ded", "p-ded", "2026-01-01", ""), ms("ms-po", "p-po", "2026-01-01", "")}}, want: want{allowed: true, membership: "ms-po", staticIP: true}},
		{name: "longer validity wins", in: Input{Memberships: []model.Membership{ms("ms-a", "p-hot", "2026-01-01", "2026-12-31"), ms("ms-b", "p-hot", "2026-01-01", "")}}, want: want{
			allowed: true, membership: "ms-b", untilOpen: true,
		}},
		{name: "tie broken by smaller id (a first)", in: Input{Memberships: []model.Membership{ms("ms-a", "p-hot", "2026-01-01", ""), ms("ms-b", "p-hot", "2026-01-01", "")}}, want: want{allowed: true, membership: "ms-a"}},
		{name: "tie broken by smaller id (b first)", in: Input{Memberships: []model.Membership{ms("ms-b", "p-hot", "2026-01-01", ""), ms("ms-a", "p-hot", "2026-01-01", "")}}, want: want{allowed: true, membership: "ms-a"}},
		{name: "unmapped plan does not block a mapped one", in: Input{Memberships: []model.Membership{ms("ms-gold", "p-gold", "2026-01-01", ""), hot}}, want: want{allowed: true, membership: "ms-hot"}},
		{name: "ended membership and live one", in: Input{Memberships: []model.Membership{ms("ms-old", "p-ded", "2025-01-01", "2025-12-31"), hot}}, want: want{
			allowed: true, membership: "ms-hot", reasons: []string{"membership ms-old (Dedicated Desk, Downtown) 2025-01-01 → 2025-12-31: ended 2025-12-31"},
		}},

		// Company memberships.
		{name: "company membership covers a team member", in: Input{Memberships: []model.Membership{with(ms("ms-co", "p-po", "2026-01-01", ""), func(m *model.Membership) {
			m.IsPersonal, m.Member, m.Company = false, "", "co-1"
		})}}, want: want{allowed: true, membership: "ms-co", staticIP: true}},
		{name: "company membership assigned to another member does not", in: Input{Memberships: []model.Membership{with(ms("ms-co", "p-po", "2026-01-01", ""), func(m *model.Membership) {
			m.IsPersonal, m.Member, m.Company = false, "mem-2", "co-1"
		})}}, want: want{deny: model.DenyNoMembership, reasons: []string{"membership ms-co is not mem-1's"}}},
		{name: "other company's membership is ignored", in: Input{Memberships: []model.Membership{with(ms("ms-co", "p-po", "2026-01-01", ""), func(m *model.Membership) {
			m.IsPersonal, m.Member, m.Company = false, "", "co-2"
		})}}, want: want{deny: model.DenyNoMembership}},
		{name: "another member's personal membership is ignored", in: Input{Memberships: []model.Membership{with(hot, func(m *model.Membership) { m.Member = "mem-2" })}},
			want: want{deny: model.DenyNoMembership}},

		// Statuses and calendar.
		{name: "not started", in: Input{Memberships: []model.Membership{with(ms("ms-1", "p-hot", "2026-11-28", ""), func(m *model.Membership) { m.CalculatedStatus = model.CalcNotStarted })}},
			want: want{deny: model.DenyNotStarted, membership: "ms-1", reasons: []string{"starts 2026-11-28"}}},
		{name: "start date tomorrow even if calculatedStatus says active", in: Input{Memberships: []model.Membership{ms("ms-1", "p-hot", "2026-11-28", "")}},
			want: want{deny: model.DenyNotStarted}},
		{name: "stale not_started with start today is live", in: Input{Memberships: []model.Membership{with(ms("ms-1", "p-hot", "2026-11-27", ""), func(m *model.Membership) { m.CalculatedStatus = model.CalcNotStarted })}},
			want: want{allowed: true}},
		{name: "expired", in: Input{Memberships: []model.Membership{with(ms("ms-1", "p-hot", "2026-01-01", "2026-11-26"), func(m *model.Membership) { m.CalculatedStatus = model.CalcExpired })}},
			want: want{deny: model.DenyEnded, verdict: "denied (membership_ended): membership ms-1 ended 2026-11-26"}},
		{name: "stale calculatedStatus active with end date past", in: Input{Memberships: []model.Membership{ms("ms-1", "p-hot", "2026-01-01", "2026-11-20")}},
			want: want{deny: model.DenyEnded}},
		{name: "not approved", in: Input{Memberships: []model.Membership{with(hot, func(m *model.Membership) {
			m.Status, m.CalculatedStatus = model.MembershipNotApproved, model.CalcNotApproved
		})}}, want: want{deny: model.DenyNotApproved}},
		{name: "calculatedStatus not_approved wins over status", in: Input{Memberships: []model.Membership{with(hot, func(m *model.Membership) { m.CalculatedStatus = model.CalcNotApproved })}},
			want: want{deny: model.DenyNotApproved}},
		{name: "empty status is approved", in: Input{Memberships: []model.Membership{with(hot, func(m *model.Membership) { m.Status, m.CalculatedStatus = "", "" })}},
			want: want{allowed: true}},
		{name: "end date today, New York, one minute before midnight", in: Input{Now: at("2026-11-27 23:59", nyc), Memberships: []model.Membership{ms("ms-1", "p-hot", "2026-01-01", "2026-11-27")}},
			want: want{allowed: true, until: at("2026-11-28 00:00", nyc), timeout: time.Minute}},
		{name: "end date today, New York, one minute after midnight", in: Input{Now: at("2026-11-28 00:01", nyc), Memberships: []model.Membership{ms("ms-1", "p-hot", "2026-01-01", "2026-11-27")}},
			want: want{deny: model.DenyEnded}},
		{name: "end date today, Tokyo, one minute before midnight", in: Input{Now: at("2026-11-27 23:59", tokyo), Memberships: []model.Membership{
			with(ms("ms-1", "p-hot", "2026-01-01", "2026-11-27"), func(m *model.Membership) { m.Location = "loc-tk" })}},
			want: want{allowed: true, locs: []string{"loc-tk"}, until: at("2026-11-28 00:00", tokyo), timeout: time.Minute}},
		{name: "end date today, Tokyo, one minute after midnight", in: Input{Now: at("2026-11-28 00:01", tokyo), Memberships: []model.Membership{
			with(ms("ms-1", "p-hot", "2026-01-01", "2026-11-27"), func(m *model.Membership) { m.Location = "loc-tk" })}},
			want: want{deny: model.DenyEnded}},
		{name: "start date in Tokyo begins before the UTC date turns", in: Input{Now: at("2026-11-28 00:01", tokyo), Memberships: []model.Membership{
			with(ms("ms-1", "p-hot", "2026-11-28", ""), func(m *model.Membership) { m.Location = "loc-tk" })}},
			want: want{allowed: true}},
		{name: "DST end day: allowed until local midnight", in: Input{Now: at("2026-11-01 23:30", nyc), Memberships: []model.Membership{ms("ms-1", "p-hot", "2026-01-01", "2026-11-01")}},
			want: want{allowed: true, until: time.Date(2026, 11, 2, 5, 0, 0, 0, time.UTC), timeout: 30 * time.Minute}},
		{name: "DST end day: denied at local midnight", in: Input{Now: time.Date(2026, 11, 2, 5, 0, 0, 0, time.UTC), Memberships: []model.Membership{ms("ms-1", "p-hot", "2026-01-01", "2026-11-01")}},
			want: want{deny: model.DenyEnded}},
		{name: "DST end day: 24h plan lasts the whole 25h day", in: Input{Now: at("2026-11-01 23:30", nyc), Memberships: []model.Membership{ms("ms-dp", "p-dp", "2026-11-01", "")}},
			want: want{allowed: true, until: time.Date(2026, 11, 2, 5, 0, 0, 0, time.UTC)}},

		// First invoice.
		{name: "unpaid first invoice denies when required", rules: func(r *Rules) { r.RequirePaidInvoice = true },
			in: Input{Memberships: []model.Membership{with(hot, func(m *model.Membership) { m.FirstInvoicePaid = ptr(false) })}}, want: want{deny: model.DenyUnpaid}},
		{name: "paid first invoice", rules: func(r *Rules) { r.RequirePaidInvoice = true },
			in: Input{Memberships: []model.Membership{with(hot, func(m *model.Membership) { m.FirstInvoicePaid = ptr(true) })}}, want: want{allowed: true}},
		{name: "unknown first invoice counts as paid", rules: func(r *Rules) { r.RequirePaidInvoice = true },
			in: Input{Memberships: []model.Membership{hot}}, want: want{allowed: true}},
		{name: "unpaid ignored when not required",
			in: Input{Memberships: []model.Membership{with(hot, func(m *model.Membership) { m.FirstInvoicePaid = ptr(false) })}}, want: want{allowed: true}},

		// Roaming.
		{name: "roaming single", rules: func(r *Rules) { r.Roaming = RoamSingle }, in: Input{Memberships: []model.Membership{hot}},
			want: want{allowed: true, locs: []string{"loc-dt"}}},
		{name: "roaming all", rules: func(r *Rules) { r.Roaming = RoamAll }, in: Input{Memberships: []model.Membership{hot}},
			want: want{allowed: true, locs: []string{"loc-dt", "loc-up", "loc-tk"}}},
		{name: "roaming by_plan, plan single by default", rules: func(r *Rules) { r.Roaming = RoamByPlan; r.Plans[1].Roaming = RoamAll },
			in: Input{Memberships: []model.Membership{hot}}, want: want{allowed: true, locs: []string{"loc-dt"}}},
		{name: "roaming by_plan, plan all", rules: func(r *Rules) { r.Roaming = RoamByPlan; r.Plans[1].Roaming = RoamAll },
			in: Input{Memberships: []model.Membership{ms("ms-ded", "p-ded", "2026-01-01", "")}}, want: want{allowed: true, locs: []string{"loc-dt", "loc-up", "loc-tk"}}},
		{name: "roaming all ignores plan roaming", rules: func(r *Rules) { r.Roaming = RoamAll; r.Plans[0].Roaming = RoamSingle },
			in: Input{Memberships: []model.Membership{hot}}, want: want{allowed: true, locs: []string{"loc-dt", "loc-up", "loc-tk"}}},
		{name: "membership without location uses home location", in: Input{Memberships: []model.Membership{with(hot, func(m *model.Membership) { m.Location = "" })}},
			want: want{allowed: true, locs: []string{"loc-dt"}}},
		{name: "unmapped location", in: Input{Memberships: []model.Membership{with(hot, func(m *model.Membership) { m.Location = "loc-x" })}},
			want: want{deny: model.DenyWrongLocation, reasons: []string{"location loc-x is not mapped in config locations"}}},
		{name: "unmapped location, roaming all", rules: func(r *Rules) { r.Roaming = RoamAll }, in: Input{Memberships: []model.Membership{with(hot, func(m *model.Membership) { m.Location = "loc-x" })}},
			want: want{allowed: true, locs: []string{"loc-dt", "loc-up", "loc-tk"}}},
		{name: "unmapped location beats plan without wifi", in: Input{Memberships: []model.Membership{ms("ms-vo", "p-vo", "2026-01-01", ""), with(hot, func(m *model.Membership) { m.Location = "loc-x" })}},
			want: want{deny: model.DenyWrongLocation, membership: "ms-hot"}},

		// Mapping.
		{name: "unmapped plan is named", in: Input{Memberships: []model.Membership{ms("ms-gold", "p-gold", "2026-01-01", "")}}, want: want{
			deny: model.DenyUnmappedPlan, membership: "ms-gold",
			verdict: `denied (plan_unmapped): plan "Gold" (id p-gold) has no mapping in config plans`,
		}},
		{name: "plan unknown to the store", in: Input{Memberships: []model.Membership{ms("ms-z", "p-zzz", "2026-01-01", "")}}, want: want{
			deny: model.DenyUnmappedPlan, reasons: []string{"(id p-zzz) has no mapping"},
		}},
		{name: "plan id match beats name match", rules: func(r *Rules) { r.Plans = append(r.Plans, PlanRule{Match: "p-hot", Group: "premium", Enabled: true}) },
			in: Input{Memberships: []model.Membership{hot}}, want: want{allowed: true, group: "premium"}},
		{name: "unmapped plan outranks ended membership", in: Input{Memberships: []model.Membership{ms("ms-old", "p-hot", "2025-01-01", "2025-02-01"), ms("ms-gold", "p-gold", "2026-01-01", "")}},
			want: want{deny: model.DenyUnmappedPlan}},

		{name: "plan in a group missing from config", rules: func(r *Rules) { r.Plans[0].Group = "nope" },
			in: Input{Memberships: []model.Membership{hot}}, want: want{allowed: true, group: "nope", reasons: []string{`group "nope" is not in config groups`}}},

		// Member.
		{name: "unknown user", nilM: true, in: Input{Memberships: []model.Membership{hot}}, want: want{deny: model.DenyUnknownUser}},
		{name: "no membership", want: want{deny: model.DenyNoMembership}},
		{name: "former member without membership", in: Input{Member: &model.Member{ID: "mem-1", Status: "former", Location: "loc-dt"}},
			want: want{deny: model.DenyMemberInactive, verdict: `status is "former"`}},
		{name: "lead with ended membership", in: Input{Member: &model.Member{ID: "mem-1", Status: "lead", Location: "loc-dt"}, Memberships: []model.Membership{ms("ms-1", "p-hot", "2025-01-01", "2025-12-31")}},
			want: want{deny: model.DenyEnded, reasons: []string{"ended 2025-12-31"}}},
		{name: "former member with live membership is allowed (status is lazy)", in: Input{Member: &model.Member{ID: "mem-1", Status: "former", Location: "loc-dt"}, Memberships: []model.Membership{hot}},
			want: want{allowed: true, reasons: []string{`member status "former" ignored`}}},
		{name: "contact with virtual office: no wifi, not inactive", in: Input{Member: &model.Member{ID: "mem-1", Status: "contact", Location: "loc-dt"}, Memberships: []model.Membership{ms("ms-vo", "p-vo", "2026-01-01", "")}},
			want: want{deny: model.DenyPlanNoWiFi}},

		// Day passes.
		{name: "day pass unused", in: Input{Passes: []model.Pass{{ID: "pass-1", Member: "mem-1", IsPersonal: true, Count: 1, Status: "valid"}}}, want: want{
			allowed: true, membership: "pass-1", group: "daypass", locs: []string{"loc-dt"}, until: noon.Add(24 * time.Hour), timeout: 24 * time.Hour, maxDevices: 2,
			reasons: []string{"unused, activates now"},
		}},
		{name: "day pass used 3h ago", in: Input{Passes: []model.Pass{{ID: "pass-1", Member: "mem-1", IsPersonal: true, Count: 1, UsedCount: 1, Status: "used", FirstUse: noon.Add(-3 * time.Hour)}}}, want: want{
			allowed: true, until: noon.Add(21 * time.Hour), timeout: 21 * time.Hour,
		}},
		{name: "day pass used 25h ago", in: Input{Passes: []model.Pass{{ID: "pass-1", Member: "mem-1", IsPersonal: true, Count: 1, UsedCount: 1, Status: "used", FirstUse: noon.Add(-25 * time.Hour)}}},
			want: want{deny: model.DenyPassExpired, membership: "pass-1"}},
		{name: "day pass all used", in: Input{Passes: []model.Pass{{ID: "pass-1", Member: "mem-1", IsPersonal: true, Count: 2, UsedCount: 2, Status: "valid"}}},
			want: want{deny: model.DenyPassExpired}},
		{name: "day pass expired status", in: Input{Passes: []model.Pass{{ID: "pass-1", Member: "mem-1", IsPersonal: true, Count: 2, Status: "expired"}}},
			want: want{deny: model.DenyPassExpired}},
		{name: "day pass pending is usable", in: Input{Passes: []model.Pass{{ID: "pass-1", Member: "mem-1", IsPersonal: true, Count: 1, Status: "pending"}}},
			want: want{allowed: true}},
		{name: "day pass capped by validTo", in: Input{Passes: []model.Pass{{ID: "pass-1", Member: "mem-1", IsPersonal: true, Count: 1, Status: "valid", ValidTo: noon.Add(3 * time.Hour)}}},
			want: want{allowed: true, until: noon.Add(3 * time.Hour), timeout: 3 * time.Hour}},
		{name: "day pass capped by endDate", in: Input{Passes: []model.Pass{{ID: "pass-1", Member: "mem-1", IsPersonal: true, Count: 1, Status: "valid", EndDate: "2026-11-27"}}},
			want: want{allowed: true, until: at("2026-11-28 00:00", nyc), timeout: 12 * time.Hour}},
		{name: "day pass past its validTo", in: Input{Passes: []model.Pass{{ID: "pass-1", Member: "mem-1", IsPersonal: true, Count: 1, Status: "valid", ValidTo: noon.Add(-time.Hour)}}},
			want: want{deny: model.DenyPassExpired}},
		{name: "day pass not yet valid", in: Input{Passes: []model.Pass{{ID: "pass-1", Member: "mem-1", IsPersonal: true, Count: 1, Status: "valid", StartDate: "2026-11-28"}}},
			want: want{deny: model.DenyNotStarted}},
		{name: "day pass at its own location", in: Input{Passes: []model.Pass{{ID: "pass-1", Member: "mem-1", IsPersonal: true, Count: 1, Status: "valid", Location: "loc-tk"}}},
			want: want{allowed: true, locs: []string{"loc-tk"}}},
		{name: "company day pass", in: Input{Passes: []model.Pass{{ID: "pass-1", Company: "co-1", Count: 1, Status: "valid"}}},
			want: want{allowed: true, membership: "pass-1"}},
		{name: "day pass without a Day Pass rule", rules: func(r *Rules) { r.Plans = r.Plans[:4] }, in: Input{Passes: []model.Pass{{ID: "pass-1", Member: "mem-1", IsPersonal: true, Count: 1, Status: "valid"}}},
			want: want{deny: model.DenyUnmappedPlan, reasons: []string{`no plan named "Day Pass"`}}},
		{name: "contact with a day pass is allowed", in: Input{Member: &model.Member{ID: "mem-1", Status: "contact", Location: "loc-dt"}, Passes: []model.Pass{{ID: "pass-1", Member: "mem-1", IsPersonal: true, Count: 1}}},
			want: want{allowed: true}},
		{name: "hot desk beats a day pass (open-ended)", rules: func(r *Rules) { r.Plans[4].Bandwidth.DownKbps = 10_000 },
			in:   Input{Memberships: []model.Membership{hot}, Passes: []model.Pass{{ID: "pass-1", Member: "mem-1", IsPersonal: true, Count: 1}}},
			want: want{allowed: true, membership: "ms-hot"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := seedRules()
			if tt.rules != nil {
				tt.rules(r)
			}
			in := tt.in
			if in.Member == nil && !tt.nilM {
				in.Member = member()
			}
			if in.Plans == nil {
				in.Plans = seedPlans
			}
			if in.Now.IsZero() {
				in.Now = noon
			}
			d := Decide(r, in)
			check(t, d, in.Now, tt.want)
		})
	}
}

func check(t *testing.T, d model.Decision, now time.Time, w want) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("reasons:\n  %s", strings.Join(d.Reasons, "\n  "))
		}
	}()
	if d.Allowed != w.allowed || d.Deny != w.deny {
		t.Fatalf("Allowed, Deny = %v, %q; want %v, %q", d.Allowed, d.Deny, w.allowed, w.deny)
	}
	checkInvariants(t, d, now)
	if w.membership != "" && d.MembershipID != w.membership {
		t.Errorf("MembershipID = %q, want %q", d.MembershipID, w.membership)
	}
	if w.group != "" && d.Group != w.group {
		t.Errorf("Group = %q, want %q", d.Group, w.group)
	}
	if w.bw != (model.Bandwidth{}) && d.Bandwidth != w.bw {
		t.Errorf("Bandwidth = %+v, want %+v", d.Bandwidth, w.bw)
	}
	if w.locs != nil {
		var got []string
		for _, l := range d.Locations {
			got = append(got, l.LocationID)
		}
		if strings.Join(got, ",") != strings.Join(w.locs, ",") {
			t.Errorf("Locations = %v, want %v", got, w.locs)
		}
	}
	if w.untilOpen && !d.ValidUntil.IsZero() {
		t.Errorf("ValidUntil = %v, want open-ended", d.ValidUntil)
	}
	if !w.until.IsZero() && !d.ValidUntil.Equal(w.until) {
		t.Errorf("ValidUntil = %v, want %v", d.ValidUntil, w.until)
	}
	if w.timeout != 0 && d.SessionTimeout != w.timeout {
		t.Errorf("SessionTimeout = %v, want %v", d.SessionTimeout, w.timeout)
	}
	if d.StaticIP != w.staticIP {
		t.Errorf("StaticIP = %v, want %v", d.StaticIP, w.staticIP)
	}
	if w.maxDevices != 0 && d.MaxDevices != w.maxDevices {
		t.Errorf("MaxDevices = %d, want %d", d.MaxDevices, w.maxDevices)
	}
	if w.verdict != "" && !strings.Contains(d.Reasons[0], w.verdict) {
		t.Errorf("verdict %q does not contain %q", d.Reasons[0], w.verdict)
	}
	for _, s := range w.reasons {
		found := false
		for _, r := range d.Reasons {
			found = found || strings.Contains(r, s)
		}
		if !found {
			t.Errorf("no reason contains %q", s)
		}
	}
}

// checkInvariants holds for every decision.
func checkInvariants(t *testing.T, d model.Decision, now time.Time) {
	t.Helper()
	if d.Allowed != (d.Deny == model.DenyNone) {
		t.Errorf("Allowed = %v but Deny = %q", d.Allowed, d.Deny)
	}
	if len(d.Reasons) == 0 || d.Reasons[0] == "" {
		t.Errorf("no verdict reason")
	}
	if d.SessionTimeout < 0 {
		t.Errorf("SessionTimeout = %v < 0", d.SessionTimeout)
	}
	if !d.Allowed {
		if len(d.Locations) != 0 || d.SessionTimeout != 0 || !d.ValidUntil.IsZero() {
			t.Errorf("denied decision grants something: %+v", d)
		}
		return
	}
	if len(d.Locations) == 0 {
		t.Errorf("allowed with no locations")
	}
	if !d.ValidUntil.IsZero() {
		if !d.ValidUntil.After(now) {
			t.Errorf("allowed but ValidUntil %v is not after now %v", d.ValidUntil, now)
		}
		if d.SessionTimeout <= 0 || d.SessionTimeout > d.ValidUntil.Sub(now) {
			t.Errorf("SessionTimeout %v outside (0, ValidUntil-Now = %v]", d.SessionTimeout, d.ValidUntil.Sub(now))
		}
	}
}

func TestDecideNilRules(t *testing.T) {
	d := Decide(nil, Input{Member: member(), Memberships: []model.Membership{ms("ms-1", "p-hot", "2026-01-01", "")}, Plans: seedPlans, Now: noon})
	if d.Allowed || d.Deny != model.DenyUnmappedPlan {
		t.Errorf("Decide(nil) = %v %q, want denied %q", d.Allowed, d.Deny, model.DenyUnmappedPlan)
	}
}

func TestPlanRuleFor(t *testing.T) {
	r := seedRules()
	for _, tt := range []struct {
		plan  model.Plan
		match string
		ok    bool
	}{
		{model.Plan{ID: "p-hot", Name: "Hot Desk"}, "Hot Desk", true},
		{model.Plan{ID: "x", Name: "  hot desk\t"}, "Hot Desk", true},
		{model.Plan{ID: "p-po", Name: "Renamed Office"}, "p-po", true},
		{model.Plan{ID: "p-ded", Name: "Dedicated Desk"}, "  dedicated DESK ", true},
		{model.Plan{ID: "p-gold", Name: "Gold"}, "", false},
		{model.Plan{}, "", false},
	} {
		got, ok := r.PlanRuleFor(tt.plan)
		if ok != tt.ok || got.Match != tt.match {
			t.Errorf("PlanRuleFor(%+v) = %q, %v; want %q, %v", tt.plan, got.Match, ok, tt.match, tt.ok)
		}
	}
	var nilRules *Rules
	if _, ok := nilRules.PlanRuleFor(model.Plan{Name: "Hot Desk"}); ok {
		t.Error("nil Rules matched a plan")
	}
}

func TestLocation(t *testing.T) {
	r := seedRules()
	if l, ok := r.Location("loc-tk"); !ok || l.Name != "Tokyo" || l.TZ != tokyo {
		t.Errorf("Location(loc-tk) = %+v, %v", l, ok)
	}
	if _, ok := r.Location("loc-x"); ok {
		t.Error("Location(loc-x) found")
	}
	if _, ok := r.Location(""); ok {
		t.Error("Location(\"\") found")
	}
}

func TestDenyMessage(t *testing.T) {
	if got := DenyMessage(model.DenyNone); got != "" {
		t.Errorf("DenyMessage(none) = %q", got)
	}
	generic := DenyMessage("no_such_reason")
	if generic == "" {
		t.Error("generic message is empty")
	}
	for _, d := range []string{
		model.DenyUnknownUser, model.DenyMemberInactive, model.DenyNoMembership, model.DenyNotStarted,
		model.DenyEnded, model.DenyNotApproved, model.DenyUnpaid, model.DenyUnmappedPlan, model.DenyPlanNoWiFi,
		model.DenyWrongLocation, model.DenyAccountDisabled, model.DenyPassExpired, model.DenyWrongPassword,
		model.DenyDeviceLimit,
	} {
		m := DenyMessage(d)
		if m == "" || m == generic || len(m) > 80 {
			t.Errorf("DenyMessage(%q) = %q", d, m)
		}
	}
	if DenyMessage(model.DenyUnknownUser) != DenyMessage(model.DenyWrongPassword) {
		t.Error("unknown user and wrong password must read the same (no username probing)")
	}
}

func TestDecideAt(t *testing.T) {
	two := []model.Membership{
		ms("ms-hot", "p-hot", "2026-01-01", ""),
		with(ms("ms-ded", "p-ded", "2026-01-01", ""), func(m *model.Membership) { m.Location = "loc-up" }),
	}
	tests := []struct {
		name    string
		roaming string
		member  *model.Member
		at      string
		want    want
	}{
		{name: "here: the hot desk", at: "loc-dt", want: want{allowed: true, membership: "ms-hot", group: "standard", locs: []string{"loc-dt"}}},
		{name: "there: the dedicated desk", at: "loc-up", want: want{allowed: true, membership: "ms-ded", group: "premium", locs: []string{"loc-up"}}},
		{name: "nowhere else", at: "loc-tk", want: want{deny: model.DenyWrongLocation, membership: "ms-ded",
			verdict: "ms-ded grants WiFi at Uptown, not at Tokyo"}},
		{name: "unconfigured location", at: "loc-x", want: want{deny: model.DenyWrongLocation, verdict: "not at location loc-x"}},
		{name: "no location: same as Decide", want: want{allowed: true, membership: "ms-ded", locs: []string{"loc-up"}}},
		{name: "roaming all: best everywhere", roaming: RoamAll, at: "loc-tk", want: want{allowed: true, membership: "ms-ded", locs: []string{"loc-dt", "loc-up", "loc-tk"}}},
		{name: "former member live elsewhere is wrong location, not inactive", member: &model.Member{ID: "mem-1", Status: "former"}, at: "loc-tk",
			want: want{deny: model.DenyWrongLocation}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := seedRules()
			r.Roaming = tt.roaming
			m := tt.member
			if m == nil {
				m = member()
			}
			in := Input{Member: m, Memberships: two, Plans: seedPlans, Now: noon}
			check(t, DecideAt(r, in, tt.at), noon, tt.want)
		})
	}
}
