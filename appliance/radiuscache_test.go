package appliance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/access"
	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/radius"
	"github.com/deskgate/deskgate/appliance/store"
	"github.com/deskgate/deskgate/internal/testepoch"
)

// frozenClock stands still until set.
type frozenClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *frozenClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *frozenClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// countingDirectory counts the lookups that reach the store.
type countingDirectory struct {
	directory
	mu sync.Mutex
	n  int
}

func (d *countingDirectory) Lookup(ctx context.Context, u string) (radius.Subject, error) {
	d.mu.Lock()
	d.n++
	d.mu.Unlock()
	return d.directory.Lookup(ctx, u)
}

func (d *countingDirectory) count() int { d.mu.Lock(); defer d.mu.Unlock(); return d.n }

// TestRadiusDecisionCacheBoundaries runs the RADIUS directory as the
// daemon wires it (the store, the resolver, the caching directory with the
// store's change count) on a frozen injected clock and checks that a
// cached decision is served until, and not past, the instant it changes:
// a membership starting at the location's midnight (New York), the same
// membership ending at a later midnight, a day pass expiring 24 h after
// its first use, and a store change (the membership no longer approved)
// seen by the very next lookup. Between the boundaries the decision comes
// from the cache (no store read).
func TestRadiusDecisionCacheBoundaries(t *testing.T) {
	t.Parallel()
	const yaml = `officernd:
  client_id: cid
  client_secret: {file: %s}
  org_slug: acme
sync: {webhooks: false}
groups:
  - {name: standard}
  - {name: daypass}
plans:
  - {plan: Hot Desk, group: standard}
  - {plan: Day Pass, group: daypass}
locations:
  - {location: Downtown, network: downtown-secure, vlan: 100, subnet: 10.100.0.0/22}
smtp: {mailbox_dir: /nonexistent, from: wifi@example.com}
`
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(fmt.Sprintf(yaml, secret)), filepath.Join(t.TempDir(), "deskgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	nyc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	// 18:00 in New York on the epoch's day: the next midnight is 6 h away.
	e := testepoch.Epoch().In(nyc)
	t0 := time.Date(e.Year(), e.Month(), e.Day(), 18, 0, 0, 0, nyc)
	clk := &frozenClock{t: t0}
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{Now: clk.Now, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tomorrow := model.DateOf(t0, nyc).End(nyc) // the next midnight in New York
	dayAfter := model.DateOf(tomorrow, nyc).End(nyc)
	first := t0.Add(-20 * time.Hour) // the day pass's first use: it ends at t0+4h
	hot := model.Membership{ID: "ms-1", Member: "m-1", IsPersonal: true, Plan: "p-hot", Location: "loc-1",
		Status: model.MembershipApproved, StartDate: model.DateOf(tomorrow, nyc)}
	write := func(fn func(tx *store.Tx) error) {
		t.Helper()
		if err := st.Update(fn); err != nil {
			t.Fatal(err)
		}
	}
	write(func(tx *store.Tx) error {
		for _, err := range []error{
			tx.PutLocation(model.Location{ID: "loc-1", Name: "Downtown", Timezone: "America/New_York"}),
			tx.PutPlan(model.Plan{ID: "p-hot", Name: "Hot Desk"}),
			tx.PutMember(model.Member{ID: "m-1", Name: "Ada", Location: "loc-1", Status: "active"}),
			tx.PutMember(model.Member{ID: "m-2", Name: "Bo", Location: "loc-1", Status: "drop-in"}),
			tx.PutMembership(hot),
			tx.PutPass(model.Pass{ID: "pass-1", Member: "m-2", IsPersonal: true, Location: "loc-1", Count: 1, Status: "valid", FirstUse: first}),
			tx.PutAccount(model.Account{Username: "ada", MemberID: "m-1"}),
			tx.PutAccount(model.Account{Username: "bo", MemberID: "m-2"}),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	a := &App{store: st, res: access.New(cfg), now: clk.Now}
	a.cfg.Store(cfg)
	if err := st.View(func(tx *store.Tx) error { return a.res.Rebuild(tx) }); err != nil {
		t.Fatal(err)
	}
	inner := &countingDirectory{directory: directory{a}}
	dir := radius.NewCachingDirectory(inner, decisionCacheCap, clk.Now)
	dir.SetVersion(st.ChangeSeq)
	ctx := radius.WithLocation(context.Background(), "loc-1")

	// check looks user up at instant at and wants the verdict and the
	// number of store lookups so far (-1: any).
	check := func(what, user string, at time.Time, allowed bool, lookups int) {
		t.Helper()
		clk.Set(at)
		subj, err := dir.Lookup(ctx, user)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if subj.Decision.Allowed != allowed {
			t.Errorf("%s (%v): allowed = %v, want %v: %q", what, at, subj.Decision.Allowed, allowed, subj.Decision.Reasons)
		}
		if n := inner.count(); lookups >= 0 && n != lookups {
			t.Errorf("%s: %d store lookups so far, want %d", what, n, lookups)
		}
	}
	step := decisionCacheCap / 2
	check("before the start", "ada", t0, false, 1)
	check("still before the start", "ada", t0.Add(step), false, 1)
	check("just before the start", "ada", tomorrow.Add(-time.Nanosecond), false, 2) // the cap ran out
	check("at the start (midnight in New York)", "ada", tomorrow, true, 3)
	check("cached after the start", "ada", tomorrow.Add(step), true, 3)

	// A store change is seen by the next lookup, before the feed has
	// delivered anything.
	ended := hot
	ended.EndDate = model.DateOf(tomorrow, nyc) // ends at the next midnight
	write(func(tx *store.Tx) error { return tx.PutMembership(ended) })
	check("after the end date was set", "ada", tomorrow.Add(step), true, 4)
	for at := tomorrow.Add(step); at.Before(dayAfter); at = at.Add(step) {
		check("before the end", "ada", at, true, -1)
	}
	// Filled once per cap (10 min) over the day, never per request.
	if n, most := inner.count(), 4+int(dayAfter.Sub(tomorrow)/decisionCacheCap)+1; n > most {
		t.Errorf("%d store lookups over the day, want at most %d", n, most)
	}
	check("a millisecond before the end", "ada", dayAfter.Add(-time.Millisecond), true, -1)
	n := inner.count()
	check("just before the end", "ada", dayAfter.Add(-time.Nanosecond), true, n)
	check("at the end (midnight in New York)", "ada", dayAfter, false, n+1)

	unapproved := hot
	unapproved.Status = model.MembershipNotApproved
	check("back on the last day (a clock set back)", "ada", tomorrow.Add(time.Hour), true, n+2)
	write(func(tx *store.Tx) error { return tx.PutMembership(unapproved) })
	check("right after the membership was unapproved", "ada", tomorrow.Add(time.Hour), false, n+3)

	passEnd := first.Add(24 * time.Hour)
	n = inner.count()
	check("day pass", "bo", passEnd.Add(-time.Minute), true, n+1)
	check("day pass just before its end", "bo", passEnd.Add(-time.Nanosecond), true, n+1)
	check("day pass at its end", "bo", passEnd, false, n+2)
}
