package policy

import (
	"fmt"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
)

// sameAt reports whether a decision made earlier (d) says at t what a
// decision made at t says (fresh): every field equal, SessionTimeout
// compared as a RADIUS reply uses it (cut to what is left of ValidUntil
// at t).
func sameAt(d, fresh model.Decision, t time.Time) (bool, string) {
	eff := func(x model.Decision) time.Duration {
		st := x.SessionTimeout
		if !x.ValidUntil.IsZero() {
			if left := x.ValidUntil.Sub(t); st <= 0 || left < st {
				st = left
			}
		}
		return st
	}
	a, b := d, fresh
	ea, eb := eff(a), eff(b)
	a.SessionTimeout, b.SessionTimeout = 0, 0
	sa, sb := fmt.Sprintf("%+v st=%v", a, ea), fmt.Sprintf("%+v st=%v", b, eb)
	return sa == sb, sa + "\n" + sb
}

// TestDecideAtUntilHolds checks DecideAtUntil's promise over many
// pseudo-random inputs (every membership and pass state, dates around
// now, New York's and Tokyo's calendars, DST days included): the decision
// made at Now is the decision at every later instant before the returned
// one, probed just after Now, half-way, and one nanosecond before it. A
// horizon that outlives a boundary (a membership starting or ending, a
// plan's duration or a day pass running out, a local midnight) fails here.
func TestDecideAtUntilHolds(t *testing.T) {
	seed := uint64(7)
	data := make([]byte, 96)
	var bounded, open, moving int
	for range 6000 {
		for i := range data {
			seed = seed*6364136223846793005 + 1442695040888963407
			data[i] = byte(seed >> 56)
		}
		r, in := randomInput(data)
		for _, loc := range []string{"", "loc-dt", "loc-tk"} {
			d, until := DecideAtUntil(r, in, loc)
			if want := DecideAt(r, in, loc); fmt.Sprint(want) != fmt.Sprint(d) {
				t.Fatalf("DecideAtUntil and DecideAt differ:\n%v\n%v", d, want)
			}
			var probes []time.Time
			switch {
			case until.Equal(in.Now):
				moving++
				continue
			case until.IsZero():
				open++
				probes = []time.Time{in.Now.Add(time.Nanosecond), in.Now.Add(36 * time.Hour), in.Now.AddDate(1, 0, 0)}
			case !until.After(in.Now):
				t.Fatalf("until %v is before now %v", until, in.Now)
			default:
				bounded++
				probes = []time.Time{in.Now.Add(time.Nanosecond), in.Now.Add(until.Sub(in.Now) / 2), until.Add(-time.Nanosecond)}
			}
			for _, at := range probes {
				in2 := in
				in2.Now = at
				if ok, diff := sameAt(d, DecideAt(r, in2, loc), at); !ok {
					t.Fatalf("input %x at %q: decided at %v, said to hold until %v, but at %v it is:\n%s", data, loc, in.Now, until, at, diff)
				}
			}
		}
	}
	t.Logf("%d bounded, %d open-ended, %d moving", bounded, open, moving)
	if bounded < 1000 || open < 100 || moving < 50 {
		t.Errorf("too few cases of a kind: %d bounded, %d open-ended, %d moving", bounded, open, moving)
	}
}

// TestDecideAtUntilBoundaries pins the instants themselves: a membership
// starting tomorrow in New York is seen at New York's midnight, one ending
// today stops there, a day pass expires 24 h after its first use, and an
// unused pass makes the decision move with the clock.
func TestDecideAtUntilBoundaries(t *testing.T) {
	r := seedRules()
	nyc := r.tzOf("loc-dt")
	now := time.Date(2026, 3, 7, 22, 30, 0, 0, nyc) // the eve of a DST change
	midnight := time.Date(2026, 3, 8, 0, 0, 0, 0, nyc)
	in := Input{Member: member(), Plans: seedPlans, Now: now,
		Memberships: []model.Membership{ms("ms-hot", "p-hot", "2026-03-08", "")}}
	d, until := DecideAtUntil(r, in, "loc-dt")
	if d.Allowed || !until.Equal(midnight) {
		t.Fatalf("not started: allowed %v until %v, want denied until %v", d.Allowed, until, midnight)
	}
	in.Now = midnight
	if d, _ := DecideAtUntil(r, in, "loc-dt"); !d.Allowed {
		t.Fatalf("at midnight still denied: %q", d.Reasons)
	}

	in.Now = now
	in.Memberships = []model.Membership{ms("ms-hot", "p-hot", "2026-01-01", "2026-03-07")}
	if d, until := DecideAtUntil(r, in, "loc-dt"); !d.Allowed || !until.Equal(midnight) {
		t.Fatalf("ending today: allowed %v until %v, want allowed until %v", d.Allowed, until, midnight)
	}

	first := now.Add(-23 * time.Hour)
	in.Memberships = nil
	in.Passes = []model.Pass{{ID: "pass-1", Member: "mem-1", IsPersonal: true, Count: 1, Status: "valid", FirstUse: first}}
	d, until = DecideAtUntil(r, in, "loc-dt")
	if !d.Allowed || !until.Equal(first.Add(24*time.Hour)) {
		t.Fatalf("day pass: allowed %v until %v, want allowed until %v (%q)", d.Allowed, until, first.Add(24*time.Hour), d.Reasons)
	}
	in.Now = until
	if d, _ := DecideAtUntil(r, in, "loc-dt"); d.Allowed {
		t.Fatalf("day pass still allowed at its end")
	}

	in.Now = now
	in.Passes[0].FirstUse = time.Time{}
	if _, until := DecideAtUntil(r, in, "loc-dt"); !until.Equal(now) {
		t.Fatalf("unused pass: until %v, want now (moving)", until)
	}
}
