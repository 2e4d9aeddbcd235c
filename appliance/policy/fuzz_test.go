package policy

import (
	"fmt"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
)

// picker turns fuzz bytes into choices; it yields zeros once exhausted.
type picker struct{ b []byte }

func (p *picker) n(k int) int {
	if len(p.b) == 0 || k <= 0 {
		return 0
	}
	v := int(p.b[0]) % k
	p.b = p.b[1:]
	return v
}

func pick[T any](p *picker, xs ...T) T { return xs[p.n(len(xs))] }

// randomInput builds rules and an input from data, reaching every branch
// of Decide: any status, dates around now (also unreadable), any roaming,
// unmapped plans and locations, nil member, passes in every state.
func randomInput(data []byte) (*Rules, Input) {
	p := &picker{b: data}
	r := seedRules()
	r.Roaming = pick(p, "", RoamSingle, RoamAll, RoamByPlan, "bogus")
	r.RequirePaidInvoice = p.n(2) == 1
	for i := range r.Plans {
		r.Plans[i].Roaming = pick(p, "", RoamSingle, RoamAll)
		r.Plans[i].Duration = pick(p, 0, time.Hour, 24*time.Hour, 48*time.Hour)
		r.Plans[i].Enabled = p.n(4) != 0
	}
	if p.n(4) == 0 {
		r.Groups["standard"] = GroupRule{}
	}
	if p.n(8) == 0 {
		r.Locations = nil
	}
	now := time.Date(2026, time.Month(1+p.n(12)), 1+p.n(28), p.n(24), p.n(60), 0, 0, time.UTC)
	date := func() model.Date {
		switch p.n(8) {
		case 0:
			return ""
		case 1:
			return "2026-13-45" // unreadable
		}
		return model.DateOf(now.AddDate(0, 0, p.n(7)-3), time.UTC)
	}
	var in Input
	in.Now = now
	in.Plans = seedPlans
	if p.n(10) != 0 {
		in.Member = &model.Member{ID: "mem-1", Company: "co-1",
			Location: pick(p, "loc-dt", "loc-tk", "loc-x", ""),
			Status:   pick(p, "active", "former", "lead", "contact", "not_approved", "pending", "drop-in", "")}
	}
	for i := range p.n(5) {
		in.Memberships = append(in.Memberships, model.Membership{
			ID:               fmt.Sprintf("ms-%d", i),
			Member:           pick(p, "mem-1", "", "mem-2"),
			Company:          pick(p, "co-1", "", "co-2"),
			IsPersonal:       p.n(2) == 1,
			Plan:             pick(p, "p-hot", "p-ded", "p-po", "p-vo", "p-dp", "p-gold", "p-zzz"),
			Location:         pick(p, "loc-dt", "loc-up", "loc-tk", "loc-x", ""),
			Status:           pick(p, model.MembershipApproved, model.MembershipNotApproved, "", "weird"),
			CalculatedStatus: pick(p, model.CalcActive, model.CalcExpired, model.CalcNotStarted, model.CalcNotApproved, ""),
			StartDate:        date(),
			EndDate:          date(),
			FirstInvoicePaid: pick(p, nil, ptr(true), ptr(false)),
		})
	}
	for i := range p.n(3) {
		ps := model.Pass{
			ID:         fmt.Sprintf("pass-%d", i),
			Member:     pick(p, "mem-1", ""),
			Company:    pick(p, "co-1", ""),
			IsPersonal: p.n(2) == 1,
			Location:   pick(p, "", "loc-dt", "loc-tk", "loc-x"),
			Count:      p.n(3),
			UsedCount:  p.n(3),
			Status:     pick(p, "valid", "pending", "used", "expired", ""),
			StartDate:  date(),
			EndDate:    date(),
		}
		if p.n(2) == 1 {
			ps.FirstUse = now.Add(time.Duration(p.n(60)-30) * time.Hour)
		}
		if p.n(2) == 1 {
			ps.ValidTo = now.Add(time.Duration(p.n(60)-30) * time.Hour)
		}
		if p.n(2) == 1 {
			ps.ValidFrom = now.Add(time.Duration(p.n(60)-30) * time.Hour)
		}
		in.Passes = append(in.Passes, ps)
	}
	return r, in
}

// FuzzDecide checks that Decide never panics, that Allowed ⇔ Deny == "",
// that a denial grants nothing, and that SessionTimeout never outlasts
// ValidUntil.
func FuzzDecide(f *testing.F) {
	for _, s := range []string{"", "\x00", "\x01\x02\x03\x04\x05\x06\x07\x08\x09", "hello, world: a longer seed", "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4\xf3\xf2\xf1\xf0"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, in := randomInput(data)
		d := Decide(r, in)
		checkInvariants(t, d, in.Now)
		if in.Member == nil && d.Deny != model.DenyUnknownUser {
			t.Errorf("nil member: Deny = %q", d.Deny)
		}
		if d2 := Decide(r, in); fmt.Sprint(d2) != fmt.Sprint(d) {
			t.Errorf("Decide is not deterministic:\n%v\n%v", d, d2)
		}
		for _, loc := range []string{"loc-dt", "loc-tk", "loc-x"} {
			da := DecideAt(r, in, loc)
			checkInvariants(t, da, in.Now)
			if _, ok := da.At(loc); da.Allowed != ok {
				t.Errorf("DecideAt(%s): Allowed = %v but At = %v", loc, da.Allowed, ok)
			}
			if da.Allowed && !d.Allowed {
				t.Errorf("DecideAt(%s) allows what Decide denies", loc)
			}
		}
	})
}

// TestDecideProperties runs the fuzz properties over many pseudo-random
// inputs in the ordinary test run.
func TestDecideProperties(t *testing.T) {
	seed := uint64(1)
	data := make([]byte, 96)
	for range 20000 {
		for i := range data {
			seed = seed*6364136223846793005 + 1442695040888963407
			data[i] = byte(seed >> 56)
		}
		r, in := randomInput(data)
		d := Decide(r, in)
		checkInvariants(t, d, in.Now)
		if da := DecideAt(r, in, "loc-tk"); da.Allowed {
			if _, ok := da.At("loc-tk"); !ok {
				t.Errorf("DecideAt(loc-tk) allowed without loc-tk")
			}
		}
		if t.Failed() {
			t.Fatalf("input %x\nreasons: %q", data, d.Reasons)
		}
	}
}

func BenchmarkDecide(b *testing.B) {
	r := seedRules()
	r.Roaming = RoamAll
	in := Input{
		Member: member(),
		Memberships: []model.Membership{
			ms("ms-hot", "p-hot", "2026-01-01", ""),
			ms("ms-ded", "p-ded", "2026-01-01", "2026-12-31"),
			ms("ms-old", "p-po", "2025-01-01", "2025-12-31"),
			ms("ms-vo", "p-vo", "2026-01-01", ""),
			ms("ms-gold", "p-gold", "2026-01-01", ""),
		},
		Passes: []model.Pass{{ID: "pass-1", Member: "mem-1", IsPersonal: true, Count: 5, UsedCount: 1, Status: "valid"}},
		Plans:  seedPlans,
		Now:    noon,
	}
	b.ReportAllocs()
	for b.Loop() {
		if d := Decide(r, in); !d.Allowed {
			b.Fatal(d.Reasons)
		}
	}
}
