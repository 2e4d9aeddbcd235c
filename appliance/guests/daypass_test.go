package guests

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/notify/notifytest"
	"github.com/deskgate/deskgate/appliance/store"
)

func newYork(t *testing.T) *time.Location {
	t.Helper()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	return ny
}

// dropIn stores a drop-in member at loc "nyc" (New York) and a pass.
func dropIn(e *env, p model.Pass) {
	e.t.Helper()
	e.put(func(tx *store.Tx) error {
		if err := tx.PutLocation(model.Location{ID: "nyc", Name: "Space NYC", Timezone: "America/New_York"}); err != nil {
			return err
		}
		if err := tx.PutMember(model.Member{ID: "m7", Name: "Dee Drop", Email: "dee@visitor.test", Location: "nyc", Status: "drop-in"}); err != nil {
			return err
		}
		return tx.PutPass(p)
	})
}

func TestDayPassFirstLoginAcrossDST(t *testing.T) {
	ny := newYork(t)
	bought := time.Date(2026, 10, 31, 8, 0, 0, 0, ny)
	e := newEnv(t, bought, Config{})
	// The pass names no location: the member's home location applies.
	dropIn(e, model.Pass{ID: "p1", Member: "m7", IsPersonal: true, Count: 1, Status: "valid", ValidFrom: bought})
	e.reconcile()
	code := codesFromMail(t, e, notifytest.Start(t))["dee@visitor.test"]
	if code == "" {
		t.Fatal("no day-pass email")
	}
	ctx := context.Background()
	if _, err := e.m.LoginCode(ctx, code, client(1), "loc1"); !errors.Is(err, ErrWrongLocation) {
		t.Fatalf("other location: %v", err)
	}
	// First login at 10:00 EDT on Oct 31; the clocks go back on Nov 1 at
	// 02:00, so 24 h later is 09:00 EST.
	first := time.Date(2026, 10, 31, 10, 0, 0, 0, ny)
	e.clk.Set(first)
	s, err := e.m.LoginCode(ctx, code, client(1), "nyc")
	if err != nil {
		t.Fatal(err)
	}
	wantEnd := time.Date(2026, 11, 1, 9, 0, 0, 0, ny)
	if !s.Until.Equal(wantEnd) || s.Kind != KindDayPass || s.MemberID != "m7" {
		t.Fatalf("session = %+v, want daypass until %v", s, wantEnd)
	}
	if wantEnd.Sub(first) != 24*time.Hour {
		t.Fatalf("test setup: %v", wantEnd.Sub(first))
	}
	e.clk.Set(wantEnd.Add(-time.Second))
	if _, err := e.m.LoginCode(ctx, code, client(2), "nyc"); err != nil {
		t.Fatalf("just before the end: %v", err)
	}
	if next := e.m.tick(ctx); !next.Equal(wantEnd) {
		t.Errorf("next wake %v, want the session end %v", next, wantEnd)
	}
	e.clk.Set(wantEnd)
	if _, err := e.m.LoginCode(ctx, code, client(1), "nyc"); !errors.Is(err, ErrExpired) {
		t.Fatalf("at the end: %v, want ErrExpired", err)
	}
	next := e.m.tick(ctx)
	if got := e.net.Revokes(); len(got) != 2 {
		t.Fatalf("revokes at the end = %v, want both clients", got)
	}
	midnight := time.Date(2026, 11, 2, 0, 0, 0, 0, ny) // 05:00 UTC (EST)
	if !next.Equal(midnight) || midnight.UTC().Hour() != 5 {
		t.Fatalf("cleanup scheduled for %v, want local midnight %v", next, midnight)
	}
	e.clk.Set(midnight.Add(-time.Second))
	e.m.tick(ctx)
	if _, err := e.m.LoginCode(ctx, code, client(1), "nyc"); !errors.Is(err, ErrExpired) {
		t.Fatalf("before midnight: %v, want ErrExpired (record kept)", err)
	}
	e.clk.Set(midnight)
	e.m.tick(ctx)
	if _, err := e.m.LoginCode(ctx, code, client(1), "nyc"); !errors.Is(err, ErrBadCode) {
		t.Fatalf("after midnight: %v, want ErrBadCode (cleaned up)", err)
	}
	if len(e.codes()) != 0 || len(e.audit("guest.code_purged")) != 1 {
		t.Fatalf("not cleaned up: %+v", e.codes())
	}
	// The used pass does not come back on the next reconcile.
	e.reconcile()
	if len(e.codes()) != 0 || len(e.outbox()) != 0 {
		t.Fatalf("used pass yielded a new code")
	}
}

func TestDayPassSecondPassExtends(t *testing.T) {
	ny := newYork(t)
	bought := time.Date(2026, 11, 3, 8, 0, 0, 0, ny)
	e := newEnv(t, bought, Config{})
	dropIn(e, model.Pass{ID: "p1", Member: "m7", Location: "nyc", Status: "valid", ValidFrom: bought})
	e.reconcile()
	srv := notifytest.Start(t)
	code := codesFromMail(t, e, srv)["dee@visitor.test"]
	ctx := context.Background()
	e.clk.Set(bought.Add(time.Hour))
	s, err := e.m.LoginCode(ctx, code, client(1), "nyc")
	if err != nil {
		t.Fatal(err)
	}
	// A second pass bought during the day extends the same code by 24 h.
	e.clk.Set(bought.Add(5 * time.Hour))
	e.put(func(tx *store.Tx) error {
		return tx.PutPass(model.Pass{ID: "p2", Member: "m7", Location: "nyc", Status: "valid", ValidFrom: e.clk.Now()})
	})
	e.reconcile()
	cs := e.codes()
	if len(cs) != 1 || !slices.Equal(cs[0].PassIDs, []string{"p1", "p2"}) || !cs[0].Until.Equal(s.Until.Add(24*time.Hour)) {
		t.Fatalf("codes after second pass = %+v", cs)
	}
	if again := codesFromMail(t, e, srv)["dee@visitor.test"]; again != code || len(srv.Messages()) != 2 {
		t.Fatalf("extension email: code %q (want %q), %d messages", again, code, len(srv.Messages()))
	}
	if until, _ := e.net.Until(mac(1)); !until.Equal(s.Until.Add(24 * time.Hour)) {
		t.Errorf("live session not extended: %v", until)
	}
	if got, _, _ := e.m.SessionFor(ctx, client(1)); !got.Until.Equal(s.Until.Add(24 * time.Hour)) {
		t.Errorf("SessionFor until %v", got.Until)
	}
	if a := e.audit("guest.code_extended"); len(a) != 1 || a[0].Cause != "pass p2 bought" {
		t.Errorf("audit extended = %+v", a)
	}
	e.reconcile()
	if cs := e.codes(); len(cs) != 1 || !cs[0].Until.Equal(s.Until.Add(24*time.Hour)) {
		t.Errorf("reconcile is not idempotent: %+v", cs)
	}
}

func TestDayPassFromPurchase(t *testing.T) {
	bought := time.Date(2026, 11, 3, 13, 0, 0, 0, time.UTC)
	e := newEnv(t, bought.Add(time.Hour), Config{DayPassFrom: FromPurchase})
	dropIn(e, model.Pass{ID: "p1", Member: "m7", Location: "nyc", Status: "used", ValidFrom: bought})
	e.reconcile()
	cs := e.codes()
	if len(cs) != 1 || !cs[0].Until.Equal(bought.Add(24*time.Hour)) {
		t.Fatalf("codes = %+v, want until purchase+24h", cs)
	}
	// Expired, cancelled or company passes make nothing; a pass that
	// disappears before use revokes its code.
	e.put(func(tx *store.Tx) error {
		_ = tx.PutPass(model.Pass{ID: "p2", Member: "m7", Location: "other", Status: "expired"})
		return tx.PutPass(model.Pass{ID: "p3", Company: "c1", Location: "nyc", Status: "valid"})
	})
	e.reconcile()
	if len(e.codes()) != 1 {
		t.Fatalf("codes = %+v", e.codes())
	}
}

func TestDayPassUnusedPassRemoved(t *testing.T) {
	e := newEnv(t, t0, Config{})
	dropIn(e, model.Pass{ID: "p1", Member: "m7", Location: "nyc", Status: "valid", ValidFrom: t0})
	e.reconcile()
	if len(e.codes()) != 1 || !e.codes()[0].Until.IsZero() {
		t.Fatalf("codes = %+v", e.codes())
	}
	e.put(func(tx *store.Tx) error { return tx.DeletePass("p1") })
	e.reconcile()
	if a := e.audit("guest.code_revoked"); len(e.codes()) != 0 || len(a) != 1 {
		t.Fatalf("unused pass removed: codes %+v audit %+v", e.codes(), a)
	}
}
