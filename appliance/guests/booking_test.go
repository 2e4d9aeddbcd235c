package guests

import (
	"context"
	"errors"
	"github.com/deskgate/deskgate/internal/testepoch"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/notify/notifytest"
	"github.com/deskgate/deskgate/appliance/store"
)

// t0 is the tests' start: DESKGATE_TEST_EPOCH, so the suite is rerun on other dates.
var t0 = testepoch.Epoch()

// meeting stores a 10:00-11:00 UTC booking of room r1 at loc1 with visitors.
func meeting(e *env, visitors ...string) model.Booking {
	e.t.Helper()
	b := model.Booking{
		ID: "b1", Title: "Board meeting", Resource: "r1", Location: "loc1", Member: "m1",
		Start: t0.Add(2 * time.Hour), End: t0.Add(3 * time.Hour), Visitors: visitors,
	}
	e.put(func(tx *store.Tx) error {
		if err := seedRoom(tx, "loc1", "Europe/Berlin", "r1", "meeting_room"); err != nil {
			return err
		}
		if err := seedRoom(tx, "loc2", "Europe/Berlin", "r2", "meeting_room"); err != nil {
			return err
		}
		for _, v := range visitors {
			if err := tx.PutVisitor(model.Visitor{ID: v, Name: "Visitor " + v, Email: v + "@guest.test", Member: "m1"}); err != nil {
				return err
			}
		}
		return tx.PutBooking(b)
	})
	return b
}

// codesFromMail runs the outbox through a real SMTP server and returns the
// code each recipient got.
func codesFromMail(t *testing.T, e *env, srv *notifytest.Server) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, msg := range smtpDeliver(t, e.st, srv) {
		code := codeRE.FindString(string(msg.Data))
		if code == "" {
			t.Fatalf("message to %v has no code:\n%s", msg.To, msg.Data)
		}
		got[msg.To[0]] = code
	}
	return got
}

func TestBookingTwoVisitorsTwoCodesByEmail(t *testing.T) {
	e := newEnv(t, t0, Config{Locations: map[string]Location{"loc1": {Network: "Space-Guest"}}})
	meeting(e, "v1", "v2")
	e.reconcile()
	e.reconcile() // idempotent: no second code, no second email

	cs := e.codes()
	if len(cs) != 2 {
		t.Fatalf("codes = %d, want 2: %+v", len(cs), cs)
	}
	for _, c := range cs {
		if !c.From.Equal(t0.Add(105*time.Minute)) || !c.Until.Equal(t0.Add(195*time.Minute)) {
			t.Errorf("window %v–%v, want 09:45–11:15", c.From, c.Until)
		}
	}
	srv := notifytest.Start(t)
	mail := codesFromMail(t, e, srv)
	if len(mail) != 2 || mail["v1@guest.test"] == "" || mail["v2@guest.test"] == "" || mail["v1@guest.test"] == mail["v2@guest.test"] {
		t.Fatalf("emails: %v, want two different codes to v1 and v2", mail)
	}
	for _, msg := range srv.Messages() {
		if !strings.Contains(string(msg.Data), "Space-Guest") {
			t.Errorf("email lacks the network name")
		}
	}
	if n := len(e.audit("guest.code_created")); n != 2 {
		t.Errorf("audit code_created = %d, want 2", n)
	}
	if n := len(e.audit("guest.email_queued")); n != 2 {
		t.Errorf("audit email_queued = %d, want 2", n)
	}
	// The plaintext code is nowhere in the store's guest buckets.
	e.put(func(tx *store.Tx) error {
		return tx.ForEachKV(bucketCodes, "", func(_ string, raw []byte) error {
			for _, c := range mail {
				if n, _ := NormalizeCode(c); strings.Contains(string(raw), n) || strings.Contains(string(raw), c) {
					t.Errorf("code record holds the plaintext code")
				}
			}
			return nil
		})
	})

	ctx := context.Background()
	code := mail["v1@guest.test"]
	// Before the window.
	e.clk.Set(t0.Add(104 * time.Minute))
	if _, err := e.m.LoginCode(ctx, code, client(1), "loc1"); !errors.Is(err, ErrNotYetValid) {
		t.Fatalf("before window: %v, want ErrNotYetValid", err)
	}
	// Inside the window, lower case and spaces instead of dashes.
	e.clk.Set(t0.Add(106 * time.Minute))
	if _, err := e.m.LoginCode(ctx, code, client(1), "loc2"); !errors.Is(err, ErrWrongLocation) {
		t.Fatalf("other location: %v, want ErrWrongLocation", err)
	}
	typed := strings.ToLower(strings.ReplaceAll(code, "-", " "))
	s, err := e.m.LoginCode(ctx, typed, client(1), "loc1")
	if err != nil {
		t.Fatalf("inside window: %v", err)
	}
	if s.Kind != KindGuest || !s.Until.Equal(t0.Add(195*time.Minute)) || s.Name != "Visitor v1" || s.ID == "" {
		t.Errorf("session = %+v", s)
	}
	if until, ok := e.net.Until(mac(1)); !ok || !until.Equal(s.Until) {
		t.Errorf("Allow: %v %v, want until %v", until, ok, s.Until)
	}
	if got, ok, err := e.m.SessionFor(ctx, client(1)); err != nil || !ok || got.ID != s.ID {
		t.Errorf("SessionFor = %+v %v %v", got, ok, err)
	}
	if _, err := e.m.LoginCode(ctx, "AAA-AAA-AAA", client(2), "loc1"); !errors.Is(err, ErrBadCode) {
		t.Errorf("unknown code: %v", err)
	}
	if _, err := e.m.LoginCode(ctx, "0OI-1L0-OIL", client(2), "loc1"); !errors.Is(err, ErrBadCode) {
		t.Errorf("malformed code: %v", err)
	}
	// After the window.
	e.clk.Set(t0.Add(195 * time.Minute))
	if _, err := e.m.LoginCode(ctx, code, client(2), "loc1"); !errors.Is(err, ErrExpired) {
		t.Fatalf("after window: %v, want ErrExpired", err)
	}
	if _, ok, _ := e.m.SessionFor(ctx, client(1)); ok {
		t.Errorf("session still live after its end")
	}
	e.m.tick(ctx)
	if !slices.Contains(e.net.Revokes(), mac(1)) {
		t.Errorf("expiry did not revoke the client: %v", e.net.Revokes())
	}
	if len(e.audit("guest.session_expired")) != 1 || len(e.audit("guest.code_expired")) != 2 {
		t.Errorf("expiry not audited")
	}
}

func TestBookingMovedMovesWindow(t *testing.T) {
	e := newEnv(t, t0, Config{})
	b := meeting(e, "v1")
	e.reconcile()
	srv := notifytest.Start(t)
	code := codesFromMail(t, e, srv)["v1@guest.test"]
	ctx := context.Background()

	e.clk.Set(t0.Add(110 * time.Minute))
	if _, err := e.m.LoginCode(ctx, code, client(1), "loc1"); err != nil {
		t.Fatal(err)
	}
	// A small move (5 min later end): new window, no new email.
	b.End = b.End.Add(5 * time.Minute)
	e.put(func(tx *store.Tx) error { return tx.PutBooking(b) })
	e.reconcile()
	if cs := e.codes(); len(cs) != 1 || !cs[0].Until.Equal(t0.Add(200*time.Minute)) {
		t.Fatalf("after small move: %+v", cs)
	}
	if until, _ := e.net.Until(mac(1)); !until.Equal(t0.Add(200 * time.Minute)) {
		t.Errorf("live session not extended to the new end: %v", until)
	}
	if n := len(e.outbox()); n != 0 {
		t.Errorf("small move queued %d emails, want 0", n)
	}
	// A big move: two hours later. Same code, new window, email again,
	// and the live session (now outside the window) is revoked.
	b.Start, b.End = b.Start.Add(2*time.Hour), b.End.Add(2*time.Hour)
	e.put(func(tx *store.Tx) error { return tx.PutBooking(b) })
	e.reconcile()
	if !slices.Contains(e.net.Revokes(), mac(1)) {
		t.Errorf("session outside the moved window not revoked")
	}
	again := codesFromMail(t, e, srv)
	if len(srv.Messages()) != 2 || again["v1@guest.test"] != code {
		t.Fatalf("after big move: %d messages, code %q, want 2 and the same code %q", len(srv.Messages()), again["v1@guest.test"], code)
	}
	if _, err := e.m.LoginCode(ctx, code, client(1), "loc1"); !errors.Is(err, ErrNotYetValid) {
		t.Fatalf("old window after move: %v, want ErrNotYetValid", err)
	}
	e.clk.Set(b.Start.Add(-10 * time.Minute))
	if _, err := e.m.LoginCode(ctx, code, client(1), "loc1"); err != nil {
		t.Fatalf("new window after move: %v", err)
	}
	moved := e.audit("guest.window_moved")
	if len(moved) != 2 || !strings.Contains(moved[1].Cause, "booking b1 moved") {
		t.Errorf("audit window_moved = %+v", moved)
	}
}

func TestBookingCancelRevokes(t *testing.T) {
	e := newEnv(t, t0, Config{})
	b := meeting(e, "v1", "v2")
	e.reconcile()
	mail := codesFromMail(t, e, notifytest.Start(t))
	ctx := context.Background()
	e.clk.Set(b.Start)
	for i, v := range []string{"v1", "v1", "v2"} {
		if _, err := e.m.LoginCode(ctx, mail[v+"@guest.test"], client(i+1), "loc1"); err != nil {
			t.Fatal(err)
		}
	}
	// Removing v2 from the booking revokes only v2's code.
	b.Visitors = []string{"v1"}
	e.put(func(tx *store.Tx) error { return tx.PutBooking(b) })
	e.reconcile()
	if got := e.net.Revokes(); !slices.Equal(got, []string{mac(3)}) {
		t.Fatalf("after removing v2: revokes %v, want [%s]", got, mac(3))
	}
	if _, err := e.m.LoginCode(ctx, mail["v2@guest.test"], client(4), "loc1"); !errors.Is(err, ErrBadCode) {
		t.Errorf("removed visitor's code: %v", err)
	}
	// Cancelling revokes the rest and their live clients.
	b.IsCancelled = true
	e.put(func(tx *store.Tx) error { return tx.PutBooking(b) })
	e.reconcile()
	got := e.net.Revokes()
	slices.Sort(got)
	if !slices.Equal(got, []string{mac(1), mac(2), mac(3)}) {
		t.Fatalf("revokes %v, want clients 1, 2, 3", got)
	}
	if _, err := e.m.LoginCode(ctx, mail["v1@guest.test"], client(1), "loc1"); !errors.Is(err, ErrBadCode) {
		t.Errorf("cancelled code: %v", err)
	}
	if _, ok, _ := e.m.SessionFor(ctx, client(1)); ok {
		t.Errorf("session survives cancellation")
	}
	if len(e.codes()) != 0 {
		t.Errorf("codes left: %+v", e.codes())
	}
	var causes []string
	for _, a := range e.audit("guest.code_revoked") {
		causes = append(causes, a.Cause)
	}
	if !slices.Equal(causes, []string{"visitor v2 removed from booking b1", "booking b1 cancelled"}) {
		t.Errorf("revocation causes %q", causes)
	}
}

func TestBookingWithoutVisitorsOrNotARoom(t *testing.T) {
	e := newEnv(t, t0, Config{})
	meeting(e) // no visitors
	e.put(func(tx *store.Tx) error {
		if err := seedRoom(tx, "loc1", "UTC", "d1", "hotdesk"); err != nil {
			return err
		}
		if err := tx.PutVisitor(model.Visitor{ID: "v9", Email: "v9@guest.test"}); err != nil {
			return err
		}
		return tx.PutBooking(model.Booking{ID: "b2", Resource: "d1", Location: "loc1", Start: t0.Add(time.Hour), End: t0.Add(2 * time.Hour), Visitors: []string{"v9"}})
	})
	e.reconcile()
	if cs := e.codes(); len(cs) != 0 {
		t.Fatalf("codes = %+v, want none", cs)
	}
	if n := len(e.outbox()); n != 0 {
		t.Fatalf("emails = %d, want none", n)
	}
	// Deleting the room booking with a code revokes it.
	e.put(func(tx *store.Tx) error {
		b, _ := tx.GetBooking("b1")
		b.Visitors = []string{"v9"}
		return tx.PutBooking(b)
	})
	e.reconcile()
	if len(e.codes()) != 1 {
		t.Fatalf("visitor added: codes = %d, want 1", len(e.codes()))
	}
	e.put(func(tx *store.Tx) error { return tx.DeleteBooking("b1") })
	e.reconcile()
	if a := e.audit("guest.code_revoked"); len(e.codes()) != 0 || len(a) != 1 || a[0].Cause != "booking b1 deleted" {
		t.Fatalf("after delete: codes %d, audit %+v", len(e.codes()), a)
	}
}

func TestDeviceLimit(t *testing.T) {
	e := newEnv(t, t0, Config{})
	meeting(e, "v1")
	e.reconcile()
	code := codesFromMail(t, e, notifytest.Start(t))["v1@guest.test"]
	ctx := context.Background()
	e.clk.Set(t0.Add(2 * time.Hour))
	for _, n := range []int{1, 2, 1, 2} { // a second MAC (randomisation) is fine; repeats are the same device
		if _, err := e.m.LoginCode(ctx, code, client(n), "loc1"); err != nil {
			t.Fatalf("device %d: %v", n, err)
		}
	}
	if _, err := e.m.LoginCode(ctx, code, client(3), "loc1"); !errors.Is(err, ErrDeviceLimit) {
		t.Fatalf("third device: %v, want ErrDeviceLimit", err)
	}
	if _, ok, _ := e.m.SessionFor(ctx, client(3)); ok {
		t.Errorf("refused device has a session")
	}
	if n := len(e.audit("guest.device_added")); n != 2 {
		t.Errorf("audit device_added = %d, want 2", n)
	}
	if n := len(e.audit("guest.login")); n != 4 {
		t.Errorf("audit login = %d, want 4", n)
	}
	if cs := e.codes(); cs[0].Devices != 2 || cs[0].Sessions != 2 {
		t.Errorf("codes = %+v", cs)
	}
}

func TestLogoutAndTerms(t *testing.T) {
	e := newEnv(t, t0, Config{})
	meeting(e, "v1")
	e.reconcile()
	code := codesFromMail(t, e, notifytest.Start(t))["v1@guest.test"]
	ctx := context.Background()
	e.clk.Set(t0.Add(2 * time.Hour))
	if err := e.m.RecordTerms(ctx, client(1), "loc1", "2026-01"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.LoginCode(ctx, code, client(1), "loc1"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Logout(ctx, client(1)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := e.m.SessionFor(ctx, client(1)); ok || !slices.Equal(e.net.Revokes(), []string{mac(1)}) {
		t.Fatalf("after logout: session %v, revokes %v", ok, e.net.Revokes())
	}
	if len(e.audit("guest.terms_accepted")) != 1 || len(e.audit("guest.logout")) != 1 {
		t.Errorf("terms/logout not audited")
	}
}

// A visitor record that arrives after its booking still gets the code.
func TestVisitorRecordArrivesLate(t *testing.T) {
	e := newEnv(t, t0, Config{})
	b := meeting(e, "v1")
	b.Visitors = append(b.Visitors, "v2")
	e.put(func(tx *store.Tx) error { return tx.PutBooking(b) })
	e.reconcile()
	if len(e.codes()) != 2 || len(e.outbox()) != 1 {
		t.Fatalf("codes %d, emails %d; want 2 codes, 1 email", len(e.codes()), len(e.outbox()))
	}
	e.put(func(tx *store.Tx) error {
		return tx.PutVisitor(model.Visitor{ID: "v2", Name: "Late", Email: "late@guest.test"})
	})
	e.reconcile()
	e.reconcile()
	mail := codesFromMail(t, e, notifytest.Start(t))
	if len(mail) != 2 || mail["late@guest.test"] == "" {
		t.Fatalf("emails: %v", mail)
	}
	e.clk.Set(b.Start)
	if s, err := e.m.LoginCode(context.Background(), mail["late@guest.test"], client(1), "loc1"); err != nil || s.Name != "Late" {
		t.Fatalf("late visitor's code: %+v %v", s, err)
	}
}
