package officerndsim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // the seed's America/New_York must load anywhere
)

// SeedInfo describes the seeded records so tests can assert on them.
type SeedInfo struct {
	Org string `json:"org"`
	// IDs maps a readable role to a record id: "location:Downtown",
	// "location:Uptown", "plan:Hot Desk" (one per plan name),
	// "resource:Boardroom", "company:Acme", "company:Initech",
	// "member:<role>", "membership:<role>" (a member with two has
	// "membership:<role>:hotdesk" and ":desk"; the company one is
	// "membership:acme"), "booking:two-visitors", "booking:one-visitor",
	// "booking:no-visitors", "booking:cancelled", "visitor:<first name>",
	// "pass:valid", "pass:used", and "user:api" (createdBy of API writes).
	IDs map[string]string `json:"ids"`
	// Members lists every seeded member (not the extra ones).
	Members []SeedMember `json:"members"`
	// ExtraMembers is how many bulk members were added.
	ExtraMembers int `json:"extraMembers"`
}

// SeedMember is one seeded member and what an import should conclude.
type SeedMember struct {
	Role     string `json:"role"` // e.g. "hotdesk-downtown", "expired"
	ID       string `json:"id"`
	Name     string `json:"name"`
	Email    string `json:"email"`
	Location string `json:"location"`          // home location name
	Company  string `json:"company,omitempty"` // company name
	Status   string `json:"status"`            // member status as seeded
	// Plans are the plan names of every membership covering the member
	// (personal or their company's) and "Day Pass" for a pass holder.
	Plans []string `json:"plans"`
	// ActivePlans are those live at seed time (calculatedStatus active,
	// or a valid unused pass).
	ActivePlans []string `json:"activePlans"`
}

// Seeded returns the ids of the seeded records.
func (s *Sim) Seeded() SeedInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.seed
	out.IDs = make(map[string]string, len(s.seed.IDs))
	for k, v := range s.seed.IDs {
		out.IDs[k] = v
	}
	out.Members = append([]SeedMember(nil), s.seed.Members...)
	return out
}

// Plan names of the seed.
const (
	PlanHotDesk        = "Hot Desk"
	PlanDedicatedDesk  = "Dedicated Desk"
	PlanPrivateOffice  = "Private Office"
	PlanVirtualOffice  = "Virtual Office"
	PlanDayPass        = "Day Pass"
	seedTimezone       = "America/New_York"
	seedLocationDown   = "Downtown"
	seedLocationUptown = "Uptown"
)

// seeder builds the seed under s.mu.
type seeder struct {
	s     *Sim
	now   time.Time
	loc   *time.Location
	today time.Time // local midnight
	stamp string
}

func (b *seeder) put(name, role string, d doc) doc {
	id := b.s.ids.seedID()
	d["_id"] = id
	if _, ok := d["createdAt"]; !ok {
		d["createdAt"] = b.stamp
	}
	d["modifiedAt"] = d["createdAt"]
	if name != "locations" && name != "plans" && name != "resources" {
		d["createdBy"] = b.s.seed.IDs["user:admin"]
		d["modifiedBy"] = b.s.seed.IDs["user:admin"]
	}
	if _, ok := d["properties"]; !ok && name != "webhooks" {
		d["properties"] = map[string]any{}
	}
	b.s.store(name, d)
	if role != "" {
		b.s.seed.IDs[role] = id
	}
	return d
}

// day is the API form of the calendar date n days from today.
func (b *seeder) day(n int) string {
	y, m, d := b.today.AddDate(0, 0, n).Date()
	return isoDate(y, m, d)
}

// at is an instant n days from today at local hh:mm.
func (b *seeder) at(n, hh, mm int) string {
	y, m, d := b.today.AddDate(0, 0, n).Date()
	return iso(time.Date(y, m, d, hh, mm, 0, 0, b.loc))
}

func (s *Sim) newSeeder() *seeder {
	loc, err := time.LoadLocation(seedTimezone)
	if err != nil {
		loc = time.UTC
	}
	now := s.nowLocked()
	y, m, d := now.In(loc).Date()
	return &seeder{s: s, now: now, loc: loc, today: time.Date(y, m, d, 0, 0, 0, 0, loc), stamp: iso(now.Add(-400 * 24 * time.Hour).Truncate(time.Hour))}
}

// loadBase seeds the locations, their resources and the five plans.
func (s *Sim) loadBase(b *seeder) {
	if s.seed.IDs["location:"+seedLocationDown] != "" {
		return
	}
	s.seed.IDs["user:admin"] = s.ids.seedID()
	s.seed.IDs["user:api"] = s.ids.seedID()
	for _, l := range []struct{ name, code, street, zip string }{
		{seedLocationDown, "DT", "100 Main Street", "10001"},
		{seedLocationUptown, "UT", "2300 Broadway", "10024"},
	} {
		b.put("locations", "location:"+l.name, doc{
			"name": l.name, "code": l.code, "timezone": seedTimezone, "isOpen": true, "isPublic": true,
			"address": map[string]any{"country": "US", "state": "NY", "city": "New York", "street": l.street, "zip": l.zip},
		})
	}
	dt, ut := s.seed.IDs["location:"+seedLocationDown], s.seed.IDs["location:"+seedLocationUptown]
	for _, r := range []struct {
		name, typ, loc string
		size, desks    int
	}{
		{"Boardroom", "meeting_room", dt, 12, 0},
		{"Focus Room", "meeting_room", dt, 4, 0},
		{"Downtown Hot Desk Area", "hotdesk", dt, 30, 30},
		{"Studio", "meeting_room", ut, 8, 0},
		{"Library", "meeting_room", ut, 6, 0},
		{"Uptown Hot Desk Area", "hotdesk", ut, 24, 24},
	} {
		d := doc{"name": r.name, "type": r.typ, "location": r.loc, "size": r.size, "privacy": "active_members",
			"childrenCount": 0, "amenities": []any{}, "parents": []any{}}
		if r.desks > 0 {
			d["desksCount"] = r.desks
		}
		b.put("resources", "resource:"+r.name, d)
	}
	for _, p := range []struct {
		name, typ, code, interval string
		price                     float64
		approval                  bool
	}{
		{PlanHotDesk, "hotdesk", "HD", "month", 250, false},
		{PlanDedicatedDesk, "desk", "DD", "month", 450, false},
		{PlanPrivateOffice, "office", "PO", "month", 1800, true},
		{PlanVirtualOffice, "service", "VO", "month", 99, false},
		{PlanDayPass, "day_pass", "DP", "once", 35, false},
	} {
		b.put("plans", "plan:"+p.name, doc{
			"name": p.name, "code": p.code, "type": p.typ, "price": p.price, "deposit": 0,
			"locations": []any{dt, ut}, "intervalLength": p.interval, "intervalCount": 1,
			"requiresApproval": p.approval, "allowsCancellation": true,
			"forMembers": true, "forTeamMembers": true, "forNonMembers": p.name == PlanDayPass,
			"description": p.name + " plan",
		})
	}
}

// loadSeed builds the demo space (see SeedInfo). Deterministic apart from
// dates, which are relative to the simulated clock.
func (s *Sim) loadSeed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.newSeeder()
	s.loadBase(b)
	ids := s.seed.IDs
	loc := map[string]string{"D": ids["location:"+seedLocationDown], "U": ids["location:"+seedLocationUptown]}
	locName := map[string]string{"D": seedLocationDown, "U": seedLocationUptown}

	for _, c := range []struct{ key, name, email, url, loc string }{
		{"Acme", "Acme Robotics", "office@acme.example.com", "https://acme.example.com", "D"},
		{"Initech", "Initech Labs", "hello@initech.example.org", "https://initech.example.org", "U"},
	} {
		b.put("companies", "company:"+c.key, doc{
			"name": c.name, "email": c.email, "url": c.url, "location": loc[c.loc], "status": "active",
			"startDate": b.day(-365), "hasActiveMembersAllowance": false, "tags": []any{},
			"address": map[string]any{"country": "US", "state": "NY", "city": "New York"},
		})
	}
	companyName := map[string]string{"Acme": "Acme Robotics", "Initech": "Initech Labs"}

	// ms is a personal membership: plan, location, start and end day
	// offsets (end 0 = open-ended unless fixed), approval.
	type ms struct {
		plan, loc   string
		start, end  int
		fixed       bool
		notApproved bool
		suffix      string // role suffix when a member has two
	}
	type member struct {
		role, first, last, domain, loc, company, status string
		memberships                                     []ms
		pass                                            string // "valid" or "used"
		contact                                         bool
	}
	members := []member{
		{role: "hotdesk-downtown", first: "Ada", last: "Lovelace", domain: "example.com", loc: "D", memberships: []ms{{plan: PlanHotDesk, loc: "D", start: -120}}},
		{role: "hotdesk-uptown", first: "Grace", last: "Hopper", domain: "example.com", loc: "U", memberships: []ms{{plan: PlanHotDesk, loc: "U", start: -95}}},
		{role: "desk-downtown", first: "Alan", last: "Turing", domain: "example.com", loc: "D", memberships: []ms{{plan: PlanDedicatedDesk, loc: "D", start: -300}}},
		{role: "desk-uptown", first: "Katherine", last: "Johnson", domain: "example.org", loc: "U", memberships: []ms{{plan: PlanDedicatedDesk, loc: "U", start: -45}}},
		{role: "two-memberships", first: "Margaret", last: "Hamilton", domain: "example.com", loc: "D", memberships: []ms{
			{plan: PlanHotDesk, loc: "U", start: -100, suffix: "hotdesk"},
			{plan: PlanDedicatedDesk, loc: "D", start: -30, suffix: "desk"},
		}},
		{role: "virtual-office", first: "Claude", last: "Shannon", domain: "example.org", loc: "D", memberships: []ms{{plan: PlanVirtualOffice, loc: "D", start: -200}}},
		{role: "virtual-office-uptown", first: "Lynn", last: "Conway", domain: "example.org", loc: "U", memberships: []ms{{plan: PlanVirtualOffice, loc: "U", start: -20}}},
		{role: "expired", first: "Edsger", last: "Dijkstra", domain: "example.org", loc: "U", memberships: []ms{{plan: PlanHotDesk, loc: "U", start: -200, end: -1, fixed: true}}},
		{role: "former", first: "Joan", last: "Clarke", domain: "example.com", loc: "D", memberships: []ms{{plan: PlanDedicatedDesk, loc: "D", start: -400, end: -60, fixed: true}}},
		{role: "not-started", first: "Barbara", last: "Liskov", domain: "example.com", loc: "D", memberships: []ms{{plan: PlanDedicatedDesk, loc: "D", start: 7}}},
		{role: "not-approved", first: "Dennis", last: "Ritchie", domain: "example.org", loc: "U", memberships: []ms{{plan: PlanHotDesk, loc: "U", start: -2, notApproved: true}}},
		{role: "fixed-term", first: "Sophie", last: "Wilson", domain: "example.com", loc: "D", memberships: []ms{{plan: PlanDedicatedDesk, loc: "D", start: -60, end: 30, fixed: true}}},
		{role: "hotdesk-downtown-2", first: "Annie", last: "Easley", domain: "example.com", loc: "D", memberships: []ms{{plan: PlanHotDesk, loc: "D", start: -10}}},
		{role: "hotdesk-uptown-2", first: "Niklaus", last: "Wirth", domain: "example.org", loc: "U", memberships: []ms{{plan: PlanHotDesk, loc: "U", start: -400}}},
		{role: "desk-uptown-2", first: "Bjarne", last: "Stroustrup", domain: "example.org", loc: "U", memberships: []ms{{plan: PlanDedicatedDesk, loc: "U", start: -150}}},
		{role: "starts-today", first: "Frances", last: "Spence", domain: "example.com", loc: "U", memberships: []ms{{plan: PlanHotDesk, loc: "U", start: 0}}},
		{role: "acme-1", first: "Hedy", last: "Lamarr", domain: "example.com", loc: "D", company: "Acme", contact: true},
		{role: "acme-2", first: "Radia", last: "Perlman", domain: "example.com", loc: "D", company: "Acme"},
		{role: "acme-3", first: "Ken", last: "Thompson", domain: "example.com", loc: "D", company: "Acme"},
		{role: "initech-1", first: "Donald", last: "Knuth", domain: "example.org", loc: "U", company: "Initech", memberships: []ms{{plan: PlanDedicatedDesk, loc: "U", start: -80}}},
		{role: "initech-2", first: "Jean", last: "Sammet", domain: "example.org", loc: "U", company: "Initech", memberships: []ms{{plan: PlanHotDesk, loc: "U", start: -70}}},
		{role: "daypass-valid", first: "Frances", last: "Allen", domain: "example.org", loc: "D", status: "drop-in", pass: "valid"},
		{role: "daypass-used", first: "Tim", last: "Berners-Lee", domain: "example.org", loc: "U", status: "drop-in", pass: "used"},
		{role: "lead", first: "Guido", last: "van Rossum", domain: "example.org", loc: "D", status: "lead"},
	}

	planOf := func(name string) doc { return s.cols["plans"].docs[ids["plan:"+name]] }
	var seeded []SeedMember
	for _, m := range members {
		status := m.status
		if status == "" {
			status = "active"
		}
		email := strings.ToLower(strings.ReplaceAll(m.first+"."+m.last, " ", "")) + "@" + m.domain
		d := doc{
			"name": m.first + " " + m.last, "email": email, "phone": fmt.Sprintf("+1 212 555 %04d", 100+len(seeded)),
			"location": loc[m.loc], "status": status, "startDate": b.day(-400 + 10*len(seeded)),
			"isBillingPerson": m.contact, "isContactPerson": m.contact, "tags": []any{},
			"portalPrivacy": map[string]any{"isVisible": true, "showContactDetails": false, "showSocialProfiles": false},
		}
		if m.company != "" {
			d["company"] = ids["company:"+m.company]
		}
		md := b.put("members", "member:"+m.role, d)
		sm := SeedMember{Role: m.role, ID: md["_id"].(string), Name: str(md["name"]), Email: email,
			Location: locName[m.loc], Company: companyName[m.company], Plans: []string{}, ActivePlans: []string{}}
		for _, x := range m.memberships {
			p := planOf(x.plan)
			msd := doc{
				"name": x.plan, "isPersonal": true, "member": md["_id"], "location": loc[x.loc], "plan": p["_id"],
				"status": "approved", "type": "month_to_month", "startDate": b.day(x.start),
				"intervalLength": "month", "intervalCount": 1, "isLocked": false,
				"price": p["price"], "deposit": 0, "discountedPrice": p["price"], "source": "admin",
				"createdAt": iso(b.today.AddDate(0, 0, min(x.start, 0)-3).Add(10 * time.Hour)),
			}
			if m.company != "" {
				msd["company"] = ids["company:"+m.company]
			}
			if x.fixed {
				msd["type"] = "fixed"
			}
			if x.end != 0 {
				msd["endDate"] = b.day(x.end)
			}
			if x.notApproved {
				msd["status"] = "not_approved"
			}
			role := "membership:" + m.role
			if x.suffix != "" {
				role += ":" + x.suffix
			}
			b.put("memberships", role, msd)
			sm.Plans = append(sm.Plans, x.plan)
			if s.calculatedStatus(msd, b.now) == "active" {
				sm.ActivePlans = append(sm.ActivePlans, x.plan)
			}
		}
		if m.pass != "" {
			used := 0
			if m.pass == "used" {
				used = 1
			}
			b.put("passes", "pass:"+m.pass, doc{
				"member": md["_id"], "isPersonal": true, "plan": ids["plan:"+PlanDayPass],
				"count": 1, "usedCount": used, "intervalLength": "once", "resourceType": "hotdesk",
				"startDate": b.day(-used), "validFrom": b.at(-used, 0, 0), "validTo": b.at(29, 23, 59),
				"shouldGrantActiveStatus": false, "properties": map[string]any{"location": loc[m.loc]},
			})
			sm.Plans = append(sm.Plans, PlanDayPass)
			if m.pass == "valid" {
				sm.ActivePlans = append(sm.ActivePlans, PlanDayPass)
			}
		}
		seeded = append(seeded, sm)
	}

	// The company's Private Office covers its three team members.
	b.put("memberships", "membership:acme", doc{
		"name": PlanPrivateOffice + " 2.04", "isPersonal": false, "company": ids["company:Acme"],
		"location": loc["D"], "plan": ids["plan:"+PlanPrivateOffice], "status": "approved", "type": "month_to_month",
		"startDate": b.day(-365), "intervalLength": "month", "intervalCount": 1, "isLocked": false,
		"price": 1800.0, "deposit": 1800.0, "discountedPrice": 1800.0, "source": "admin",
	})
	for i := range seeded {
		if seeded[i].Company == "Acme Robotics" {
			seeded[i].Plans = append(seeded[i].Plans, PlanPrivateOffice)
			seeded[i].ActivePlans = append(seeded[i].ActivePlans, PlanPrivateOffice)
		}
	}
	// Member status follows the memberships, as OfficeRnD keeps it.
	for i := range seeded {
		md := s.cols["members"].docs[seeded[i].ID]
		if st, ok := s.derivedStatus(md); ok {
			md["status"] = st
		}
		seeded[i].Status = str(md["status"])
	}
	s.seed.Members = seeded

	// Visitors and meeting-room bookings for today and tomorrow.
	visitor := func(first, last, host, company, typ string) string {
		d := doc{"name": first + " " + last, "email": strings.ToLower(first+"."+last) + "@example.org",
			"member": ids["member:"+host], "type": typ}
		if company != "" {
			d["company"] = ids["company:"+company]
		}
		return b.put("visitors", "visitor:"+strings.ToLower(first), d)["_id"].(string)
	}
	charles := visitor("Charles", "Babbage", "hotdesk-downtown", "", "preregistration")
	mary := visitor("Mary", "Somerville", "hotdesk-downtown", "", "preregistration")
	emmy := visitor("Emmy", "Noether", "acme-1", "Acme", "preregistration")
	visitor("Carl", "Gauss", "hotdesk-uptown", "", "reception")

	// The first booking starts at the next full hour (plus one), so it is
	// upcoming whenever the seed is loaded.
	next := b.now.In(b.loc).Truncate(time.Hour).Add(2 * time.Hour)
	booking := func(role, title, host, room string, start time.Time, dur time.Duration, visitors []any, company string, cancelled bool) {
		rsc := s.cols["resources"].docs[ids["resource:"+room]]
		d := doc{
			"title": title, "timezone": seedTimezone, "start": iso(start), "end": iso(start.Add(dur)),
			"location": rsc["location"], "resource": rsc["_id"], "member": ids["member:"+host],
			"isCancelled": cancelled, "isTentative": false, "isFree": false, "isAccounted": false,
			"visitors": visitors, "members": []any{}, "source": "admin", "reference": strings.ToUpper(role[:3]) + "-1001",
		}
		if company != "" {
			d["company"] = ids["company:"+company]
		}
		b.put("bookings", "booking:"+role, d)
	}
	tomorrow := func(hh, mm int) time.Time {
		t, _ := time.Parse(isoMillis, b.at(1, hh, mm))
		return t
	}
	booking("two-visitors", "Investor demo", "hotdesk-downtown", "Boardroom", next, time.Hour, []any{charles, mary}, "", false)
	booking("no-visitors", "Sprint planning", "hotdesk-uptown", "Studio", tomorrow(10, 0), time.Hour, []any{}, "", false)
	booking("one-visitor", "Acme design review", "acme-1", "Focus Room", tomorrow(14, 0), 90*time.Minute, []any{emmy}, "Acme", false)
	booking("cancelled", "1:1", "desk-downtown", "Focus Room", next.Add(time.Hour), 30*time.Minute, []any{}, "", true)
}

// addExtraMembers adds n bulk members with active personal Hot Desk or
// Dedicated Desk memberships, deterministically.
func (s *Sim) addExtraMembers(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.newSeeder()
	s.loadBase(b)
	ids := s.seed.IDs
	locs := []string{ids["location:"+seedLocationDown], ids["location:"+seedLocationUptown]}
	plans := []doc{s.cols["plans"].docs[ids["plan:"+PlanHotDesk]], s.cols["plans"].docs[ids["plan:"+PlanDedicatedDesk]]}
	rng := rand.New(rand.NewPCG(20261127, uint64(n)))
	members, memberships := s.cols["members"], s.cols["memberships"]
	for _, c := range []*collection{members, memberships} {
		c.ids = slices.Grow(c.ids, n)
		if len(c.docs) == 0 {
			c.docs = make(map[string]doc, n)
		}
	}
	props := map[string]any{} // shared: records are replaced, never mutated in place
	tags := []any{}
	admin := ids["user:admin"]
	for i := range n {
		first := firstNames[rng.IntN(len(firstNames))]
		last := lastNames[rng.IntN(len(lastNames))]
		loc := locs[rng.IntN(2)]
		plan := plans[rng.IntN(2)]
		start := b.day(-1 - rng.IntN(365))
		mid := s.ids.seedID()
		email, mprops := fmt.Sprintf("%s.%s.%d@example.org", strings.ToLower(first), strings.ToLower(last), i+1), props
		if s.opts.BenchAccounts {
			email = fmt.Sprintf("user%05d@bench.example", i)
			mprops = map[string]any{"wifiPassword": fmt.Sprintf("pass%05d", i)}
		}
		members.put(doc{
			"_id": mid, "name": first + " " + last, "email": email,
			"location": loc, "status": "active", "startDate": start, "isBillingPerson": false, "isContactPerson": false,
			"tags": tags, "properties": mprops,
			"createdAt": b.stamp, "modifiedAt": b.stamp, "createdBy": admin, "modifiedBy": admin,
		})
		msd := doc{
			"_id": s.ids.seedID(), "name": plan["name"], "isPersonal": true, "member": mid, "location": loc,
			"plan": plan["_id"], "status": "approved", "type": "month_to_month", "startDate": start,
			"intervalLength": "month", "intervalCount": 1, "isLocked": false, "price": plan["price"],
			"deposit": 0, "discountedPrice": plan["price"], "source": "import", "properties": props,
			"createdAt": b.stamp, "modifiedAt": b.stamp, "createdBy": admin, "modifiedBy": admin,
		}
		memberships.put(msd)
		s.index(msd)
	}
	s.seed.ExtraMembers += n
}

var firstNames = []string{"Alex", "Blake", "Casey", "Dana", "Eli", "Farah", "Gabriel", "Hana", "Ines", "Jonas",
	"Kai", "Lena", "Milo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tariq", "Uma", "Vera", "Wen", "Yara", "Zoe"}

var lastNames = []string{"Anders", "Brooks", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Haddad", "Ito", "Jensen",
	"Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Patel", "Quist", "Rossi", "Silva", "Tanaka", "Usman",
	"Varga", "Weber", "Xu", "Yilmaz", "Zhang"}
