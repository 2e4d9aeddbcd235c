package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/google/go-cmp/cmp"
	"go.etcd.io/bbolt"
)

var testKey = bytes.Repeat([]byte{7}, 32)

// open returns a store under t.TempDir() that is checked for consistency
// and closed when the test ends.
func open(t testing.TB) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "deskgate.db"), Options{SealKey: testKey})
}

func openAt(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil {
			t.Errorf("Check: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func update(t testing.TB, s *Store, fn func(tx *Tx) error) {
	t.Helper()
	if err := s.Update(fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func view(t testing.TB, s *Store, fn func(tx *Tx) error) {
	t.Helper()
	if err := s.View(fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// crud exercises Put, Get, replace, ForEach and Delete of one entity type.
func crud[T any](t *testing.T, s *Store, a, a2, b T, id func(T) string,
	get func(*Tx, string) (T, error), put func(*Tx, T) error, del func(*Tx, string) error,
	each func(*Tx, func(T) error) error) {
	t.Helper()
	update(t, s, func(tx *Tx) error {
		if err := put(tx, a); err != nil {
			return err
		}
		return put(tx, b)
	})
	view(t, s, func(tx *Tx) error {
		got, err := get(tx, id(a))
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if diff := cmp.Diff(a, got); diff != "" {
			t.Errorf("get (-want +got):\n%s", diff)
		}
		if _, err := get(tx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("get missing: got %v, want ErrNotFound", err)
		}
		return nil
	})
	update(t, s, func(tx *Tx) error { return put(tx, a2) })
	var all []T
	view(t, s, func(tx *Tx) error {
		return each(tx, func(v T) error { all = append(all, v); return nil })
	})
	if diff := cmp.Diff([]T{a2, b}, all); diff != "" {
		t.Errorf("for each after replace (-want +got):\n%s", diff)
	}
	update(t, s, func(tx *Tx) error {
		if err := del(tx, id(a)); err != nil {
			return err
		}
		return del(tx, "never-existed")
	})
	view(t, s, func(tx *Tx) error {
		if _, err := get(tx, id(a)); !errors.Is(err, ErrNotFound) {
			t.Errorf("get deleted: got %v, want ErrNotFound", err)
		}
		if _, err := get(tx, id(b)); err != nil {
			t.Errorf("get other: %v", err)
		}
		return nil
	})
}

func TestCRUD(t *testing.T) {
	ts := time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)
	paid := true
	t.Run("member", func(t *testing.T) {
		crud(t, open(t),
			model.Member{ID: "m1", Name: "Ada", Email: "ada@x.io", Company: "c1", Status: "active",
				StartDate: "2026-01-01", Properties: map[string]string{"wifi": "x"}, CreatedAt: ts, ModifiedAt: ts},
			model.Member{ID: "m1", Name: "Ada L", Email: "ada@y.io"},
			model.Member{ID: "m2", Name: "Bob"},
			func(v model.Member) string { return v.ID }, (*Tx).GetMember, (*Tx).PutMember, (*Tx).DeleteMember, (*Tx).ForEachMember)
	})
	t.Run("company", func(t *testing.T) {
		crud(t, open(t), model.Company{ID: "c1", Name: "Acme", ModifiedAt: ts}, model.Company{ID: "c1", Name: "Acme2"},
			model.Company{ID: "c2", Name: "Beta"},
			func(v model.Company) string { return v.ID }, (*Tx).GetCompany, (*Tx).PutCompany, (*Tx).DeleteCompany, (*Tx).ForEachCompany)
	})
	t.Run("membership", func(t *testing.T) {
		crud(t, open(t),
			model.Membership{ID: "ms1", Member: "m1", Company: "c1", IsPersonal: true, Plan: "p1", Status: model.MembershipApproved,
				StartDate: "2026-01-01", EndDate: "2026-12-31", FirstInvoicePaid: &paid, ModifiedAt: ts},
			model.Membership{ID: "ms1", Member: "m2", Plan: "p2"},
			model.Membership{ID: "ms2", Company: "c1", Plan: "p1"},
			func(v model.Membership) string { return v.ID }, (*Tx).GetMembership, (*Tx).PutMembership, (*Tx).DeleteMembership, (*Tx).ForEachMembership)
	})
	t.Run("plan", func(t *testing.T) {
		crud(t, open(t), model.Plan{ID: "p1", Name: "Hot desk", Locations: []string{"l1", "l2"}}, model.Plan{ID: "p1", Name: "Desk"},
			model.Plan{ID: "p2", Name: "Office"},
			func(v model.Plan) string { return v.ID }, (*Tx).GetPlan, (*Tx).PutPlan, (*Tx).DeletePlan, (*Tx).ForEachPlan)
	})
	t.Run("location", func(t *testing.T) {
		crud(t, open(t), model.Location{ID: "l1", Name: "Berlin", Timezone: "Europe/Berlin"}, model.Location{ID: "l1", Name: "Berlin Mitte"},
			model.Location{ID: "l2", Name: "Paris"},
			func(v model.Location) string { return v.ID }, (*Tx).GetLocation, (*Tx).PutLocation, (*Tx).DeleteLocation, (*Tx).ForEachLocation)
	})
	t.Run("resource", func(t *testing.T) {
		crud(t, open(t), model.Resource{ID: "r1", Name: "Room A", Size: 8}, model.Resource{ID: "r1", Name: "Room A'"},
			model.Resource{ID: "r2", Name: "Desk 4"},
			func(v model.Resource) string { return v.ID }, (*Tx).GetResource, (*Tx).PutResource, (*Tx).DeleteResource, (*Tx).ForEachResource)
	})
	t.Run("booking", func(t *testing.T) {
		crud(t, open(t), model.Booking{ID: "b1", Resource: "r1", Start: ts, End: ts.Add(time.Hour), Visitors: []string{"v1"}},
			model.Booking{ID: "b1", Resource: "r1", Start: ts, End: ts.Add(2 * time.Hour), IsCancelled: true},
			model.Booking{ID: "b2", Start: ts, End: ts},
			func(v model.Booking) string { return v.ID }, (*Tx).GetBooking, (*Tx).PutBooking, (*Tx).DeleteBooking, (*Tx).ForEachBooking)
	})
	t.Run("visitor", func(t *testing.T) {
		crud(t, open(t), model.Visitor{ID: "v1", Name: "Guest", Member: "m1"}, model.Visitor{ID: "v1", Name: "Guest 2"},
			model.Visitor{ID: "v2"},
			func(v model.Visitor) string { return v.ID }, (*Tx).GetVisitor, (*Tx).PutVisitor, (*Tx).DeleteVisitor, (*Tx).ForEachVisitor)
	})
	t.Run("pass", func(t *testing.T) {
		crud(t, open(t), model.Pass{ID: "ps1", Member: "m1", Company: "c1", Count: 5, FirstUse: ts}, model.Pass{ID: "ps1", Company: "c2", UsedCount: 1},
			model.Pass{ID: "ps2", Member: "m2"},
			func(v model.Pass) string { return v.ID }, (*Tx).GetPass, (*Tx).PutPass, (*Tx).DeletePass, (*Tx).ForEachPass)
	})
}

func TestPutRejectsBadIDs(t *testing.T) {
	s := open(t)
	for _, id := range []string{"", "a\x00b"} {
		if err := s.Update(func(tx *Tx) error { return tx.PutMember(model.Member{ID: id}) }); err == nil {
			t.Errorf("PutMember(%q): no error", id)
		}
	}
}

func TestWriteInViewFails(t *testing.T) {
	s := open(t)
	writes := map[string]func(tx *Tx) error{
		"PutMember":     func(tx *Tx) error { return tx.PutMember(model.Member{ID: "m"}) },
		"DeleteMember":  func(tx *Tx) error { return tx.DeleteMember("m") },
		"PutAccount":    func(tx *Tx) error { return tx.PutAccount(model.Account{Username: "u", MemberID: "m"}) },
		"DeleteAccount": func(tx *Tx) error { return tx.DeleteAccount("u") },
		"Audit":         func(tx *Tx) error { return tx.Audit(model.AuditEntry{Action: "x"}) },
		"EnqueueEmail":  func(tx *Tx) error { _, err := tx.EnqueueEmail(model.Email{To: "a@b"}); return err },
		"PutState":      func(tx *Tx) error { return tx.PutState("k", 1) },
		"MarkEvent":     func(tx *Tx) error { return tx.MarkEvent("e", time.Now()) },
		"PruneEvents":   func(tx *Tx) error { _, err := tx.PruneEvents(time.Now()); return err },
		"PutKV":         func(tx *Tx) error { return tx.PutKV("b", "k", 1) },
		"DeleteKV":      func(tx *Tx) error { return tx.DeleteKV("b", "k") },
	}
	for name, fn := range writes {
		err := s.View(fn)
		if err == nil || !strings.Contains(err.Error(), "not writable") {
			t.Errorf("%s in View: got %v, want a not-writable error", name, err)
		}
	}
}

func ids[T any](vs []T, id func(T) string) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, id(v))
	}
	slices.Sort(out)
	return out
}

func msIDs(vs []model.Membership) []string {
	return ids(vs, func(v model.Membership) string { return v.ID })
}

func TestMembershipIndexes(t *testing.T) {
	s := open(t)
	update(t, s, func(tx *Tx) error {
		for _, m := range []model.Membership{
			{ID: "ms1", Member: "m1", IsPersonal: true, Plan: "p"},
			{ID: "ms2", Member: "m1", Company: "c1", Plan: "p"},
			{ID: "ms3", Company: "c1", Plan: "p"},
		} {
			if err := tx.PutMembership(m); err != nil {
				return err
			}
		}
		return nil
	})
	check := func(member1, member2, company1, company2 []string) {
		t.Helper()
		view(t, s, func(tx *Tx) error {
			for _, c := range []struct {
				fn   func(string) ([]model.Membership, error)
				arg  string
				want []string
			}{
				{tx.MembershipsOfMember, "m1", member1},
				{tx.MembershipsOfMember, "m2", member2},
				{tx.MembershipsOfCompany, "c1", company1},
				{tx.MembershipsOfCompany, "c2", company2},
			} {
				got, err := c.fn(c.arg)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(c.want, msIDs(got)); diff != "" {
					t.Errorf("memberships of %s (-want +got):\n%s", c.arg, diff)
				}
			}
			return nil
		})
		if err := s.Check(); err != nil {
			t.Errorf("Check: %v", err)
		}
	}
	check([]string{"ms1", "ms2"}, []string{}, []string{"ms2", "ms3"}, []string{})

	// ms2 moves to another member and company; ms3 gains a member.
	update(t, s, func(tx *Tx) error {
		if err := tx.PutMembership(model.Membership{ID: "ms2", Member: "m2", Company: "c2", Plan: "p"}); err != nil {
			return err
		}
		return tx.PutMembership(model.Membership{ID: "ms3", Member: "m2", Company: "c1", Plan: "p"})
	})
	check([]string{"ms1"}, []string{"ms2", "ms3"}, []string{"ms3"}, []string{"ms2"})

	update(t, s, func(tx *Tx) error { return tx.DeleteMembership("ms3") })
	check([]string{"ms1"}, []string{"ms2"}, []string{}, []string{"ms2"})
	// A prefix of another id is not a match.
	view(t, s, func(tx *Tx) error {
		got, _ := tx.MembershipsOfMember("m")
		if len(got) != 0 {
			t.Errorf("memberships of m: %v", msIDs(got))
		}
		return nil
	})
}

func TestMemberIndexes(t *testing.T) {
	s := open(t)
	update(t, s, func(tx *Tx) error {
		for _, m := range []model.Member{
			{ID: "m1", Email: "Ada@Example.COM", Company: "c1"},
			{ID: "m2", Email: "bob@example.com", Company: "c1"},
			{ID: "m3", Company: "c2"},
		} {
			if err := tx.PutMember(m); err != nil {
				return err
			}
		}
		return nil
	})
	memberIDs := func(vs []model.Member) []string { return ids(vs, func(v model.Member) string { return v.ID }) }
	view(t, s, func(tx *Tx) error {
		m, err := tx.MemberByEmail(" ada@example.com")
		if err != nil || m.ID != "m1" {
			t.Errorf("MemberByEmail: %v, %v", m.ID, err)
		}
		if _, err := tx.MemberByEmail("nobody@example.com"); !errors.Is(err, ErrNotFound) {
			t.Errorf("MemberByEmail unknown: %v", err)
		}
		got, _ := tx.MembersOfCompany("c1")
		if diff := cmp.Diff([]string{"m1", "m2"}, memberIDs(got)); diff != "" {
			t.Errorf("members of c1 (-want +got):\n%s", diff)
		}
		return nil
	})
	update(t, s, func(tx *Tx) error {
		if err := tx.PutMember(model.Member{ID: "m1", Email: "ada@new.io", Company: "c2"}); err != nil {
			return err
		}
		return tx.DeleteMember("m2")
	})
	view(t, s, func(tx *Tx) error {
		if _, err := tx.MemberByEmail("ada@example.com"); !errors.Is(err, ErrNotFound) {
			t.Errorf("old email still found: %v", err)
		}
		if _, err := tx.MemberByEmail("bob@example.com"); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted member's email still found: %v", err)
		}
		if m, err := tx.MemberByEmail("ADA@new.io"); err != nil || m.ID != "m1" {
			t.Errorf("new email: %v %v", m.ID, err)
		}
		got, _ := tx.MembersOfCompany("c1")
		if len(got) != 0 {
			t.Errorf("members of c1: %v", memberIDs(got))
		}
		got, _ = tx.MembersOfCompany("c2")
		if diff := cmp.Diff([]string{"m1", "m3"}, memberIDs(got)); diff != "" {
			t.Errorf("members of c2 (-want +got):\n%s", diff)
		}
		return nil
	})
}

func TestPassIndexes(t *testing.T) {
	s := open(t)
	passIDs := func(vs []model.Pass) []string { return ids(vs, func(v model.Pass) string { return v.ID }) }
	update(t, s, func(tx *Tx) error {
		if err := tx.PutPass(model.Pass{ID: "p1", Member: "m1", IsPersonal: true}); err != nil {
			return err
		}
		return tx.PutPass(model.Pass{ID: "p2", Company: "c1"})
	})
	update(t, s, func(tx *Tx) error { return tx.PutPass(model.Pass{ID: "p1", Member: "m2", Company: "c1"}) })
	view(t, s, func(tx *Tx) error {
		a, _ := tx.PassesOfMember("m1")
		b, _ := tx.PassesOfMember("m2")
		c, _ := tx.PassesOfCompany("c1")
		got := [][]string{passIDs(a), passIDs(b), passIDs(c)}
		if diff := cmp.Diff([][]string{{}, {"p1"}, {"p1", "p2"}}, got); diff != "" {
			t.Errorf("passes (-want +got):\n%s", diff)
		}
		return nil
	})
	update(t, s, func(tx *Tx) error { return tx.DeletePass("p1") })
	view(t, s, func(tx *Tx) error {
		c, _ := tx.PassesOfCompany("c1")
		if diff := cmp.Diff([]string{"p2"}, passIDs(c)); diff != "" {
			t.Errorf("passes of c1 after delete (-want +got):\n%s", diff)
		}
		return nil
	})
}

func TestAccounts(t *testing.T) {
	s := open(t)
	ts := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	ada := model.Account{Username: "Ada.Lovelace", MemberID: "m1", NTHash: bytes.Repeat([]byte{1}, 16),
		PasswordSource: model.PasswordGenerated, Group: "staff", CreatedAt: ts, UpdatedAt: ts}
	update(t, s, func(tx *Tx) error { return tx.PutAccount(ada) })

	view(t, s, func(tx *Tx) error {
		for _, name := range []string{"Ada.Lovelace", "ada.lovelace", "ADA.LOVELACE"} {
			got, err := tx.GetAccount(name)
			if err != nil {
				t.Fatalf("GetAccount(%q): %v", name, err)
			}
			if diff := cmp.Diff(ada, got); diff != "" {
				t.Errorf("GetAccount(%q) (-want +got):\n%s", name, diff)
			}
		}
		got, err := tx.AccountOfMember("m1")
		if err != nil || got.Username != "Ada.Lovelace" {
			t.Errorf("AccountOfMember: %+v, %v", got, err)
		}
		if _, err := tx.AccountOfMember("m2"); !errors.Is(err, ErrNotFound) {
			t.Errorf("AccountOfMember(m2): %v", err)
		}
		return nil
	})

	// Another member cannot take the username in any case.
	err := s.Update(func(tx *Tx) error {
		return tx.PutAccount(model.Account{Username: "ADA.lovelace", MemberID: "m2"})
	})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("PutAccount taken username: got %v, want ErrConflict", err)
	}

	// The same member may change the case; it is still one account.
	update(t, s, func(tx *Tx) error {
		a := ada
		a.Username = "ada.lovelace"
		return tx.PutAccount(a)
	})
	// Rename: the member's old username goes away.
	token := bytes.Repeat([]byte{9}, 32)
	update(t, s, func(tx *Tx) error {
		a := ada
		a.Username = "ada"
		a.OnboardTokenHash = token
		return tx.PutAccount(a)
	})
	view(t, s, func(tx *Tx) error {
		if _, err := tx.GetAccount("ada.lovelace"); !errors.Is(err, ErrNotFound) {
			t.Errorf("old username after rename: %v", err)
		}
		if a, err := tx.AccountOfMember("m1"); err != nil || a.Username != "ada" {
			t.Errorf("AccountOfMember after rename: %+v, %v", a, err)
		}
		if a, err := tx.AccountByOnboardToken(token); err != nil || a.Username != "ada" {
			t.Errorf("AccountByOnboardToken: %+v, %v", a, err)
		}
		n := 0
		if err := tx.ForEachAccount(func(model.Account) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		c, _ := tx.Counts()
		if n != 1 || c[KindAccount] != 1 {
			t.Errorf("accounts: %d by scan, %d by count, want 1", n, c[KindAccount])
		}
		return nil
	})
	// The old username is free for someone else now.
	update(t, s, func(tx *Tx) error {
		return tx.PutAccount(model.Account{Username: "Ada.Lovelace", MemberID: "m2"})
	})
	// Clearing the token unindexes it.
	update(t, s, func(tx *Tx) error {
		a := ada
		a.Username = "ada"
		return tx.PutAccount(a)
	})
	view(t, s, func(tx *Tx) error {
		if _, err := tx.AccountByOnboardToken(token); !errors.Is(err, ErrNotFound) {
			t.Errorf("cleared token still found: %v", err)
		}
		return nil
	})
	// Deleting the member keeps the account; deleting the account frees
	// the member.
	update(t, s, func(tx *Tx) error {
		if err := tx.PutMember(model.Member{ID: "m1"}); err != nil {
			return err
		}
		return tx.DeleteMember("m1")
	})
	update(t, s, func(tx *Tx) error {
		if _, err := tx.AccountOfMember("m1"); err != nil {
			t.Errorf("account gone with its member: %v", err)
		}
		if err := tx.DeleteAccount("ADA"); err != nil {
			return err
		}
		return tx.DeleteAccount("ghost")
	})
	view(t, s, func(tx *Tx) error {
		if _, err := tx.AccountOfMember("m1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("AccountOfMember after delete: %v", err)
		}
		if _, err := tx.GetAccount("ada"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetAccount after delete: %v", err)
		}
		return nil
	})
	if err := s.Update(func(tx *Tx) error { return tx.PutAccount(model.Account{Username: "x"}) }); err == nil {
		t.Error("PutAccount without member: no error")
	}
}

func TestChangesPublishedAfterCommit(t *testing.T) {
	s := open(t)
	ch, cancel := s.Subscribe(16)
	defer cancel()

	failed := errors.New("boom")
	err := s.Update(func(tx *Tx) error {
		if err := tx.PutMember(model.Member{ID: "m1"}); err != nil {
			return err
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("Update: %v", err)
	}
	select {
	case c := <-ch:
		t.Fatalf("failed Update published %+v", c)
	default:
	}
	view(t, s, func(tx *Tx) error {
		if _, err := tx.GetMember("m1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("failed Update wrote: %v", err)
		}
		return nil
	})

	update(t, s, func(tx *Tx) error {
		for _, err := range []error{
			tx.PutMember(model.Member{ID: "m1"}),
			tx.PutCompany(model.Company{ID: "c1"}),
			tx.PutMembership(model.Membership{ID: "ms1", Member: "m1", IsPersonal: true}),
			tx.PutMembership(model.Membership{ID: "ms2", Company: "c1"}),
			tx.PutPass(model.Pass{ID: "p1", Member: "m1"}),
			tx.PutBooking(model.Booking{ID: "b1", Member: "m1"}),
			tx.PutAccount(model.Account{Username: "u1", MemberID: "m1"}),
			tx.DeleteMember("nobody"), // absent: no change
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	update(t, s, func(tx *Tx) error {
		if err := tx.PutMembership(model.Membership{ID: "ms1", Member: "m2"}); err != nil {
			return err
		}
		if err := tx.DeleteMembership("ms1"); err != nil {
			return err
		}
		return tx.DeleteAccount("U1")
	})
	want := []Change{
		{Kind: KindMember, ID: "m1", Member: "m1"},
		{Kind: KindCompany, ID: "c1"},
		{Kind: KindMembership, ID: "ms1", Member: "m1"},
		{Kind: KindMembership, ID: "ms2"},
		{Kind: KindPass, ID: "p1", Member: "m1"},
		{Kind: KindBooking, ID: "b1"},
		{Kind: KindAccount, ID: "u1", Member: "m1"},
		// moving ms1 from m1 to m2 affects both
		{Kind: KindMembership, ID: "ms1", Member: "m1"},
		{Kind: KindMembership, ID: "ms1", Member: "m2"},
		{Kind: KindMembership, ID: "ms1", Deleted: true, Member: "m2"},
		{Kind: KindAccount, ID: "u1", Deleted: true, Member: "m1"},
	}
	var got []Change
	for range want {
		select {
		case c := <-ch:
			got = append(got, c)
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out; got %+v", got)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	select {
	case c := <-ch:
		t.Errorf("extra change %+v", c)
	default:
	}

	cancel()
	if _, ok := <-ch; ok {
		t.Error("channel open after cancel")
	}
	cancel() // idempotent
	update(t, s, func(tx *Tx) error { return tx.PutMember(model.Member{ID: "m9"}) })
}

func TestSubscriberLagGetsResync(t *testing.T) {
	s := open(t)
	slow, cancelSlow := s.Subscribe(3)
	defer cancelSlow()
	fast, cancelFast := s.Subscribe(100)
	defer cancelFast()
	for i := range 10 {
		update(t, s, func(tx *Tx) error { return tx.PutPlan(model.Plan{ID: string(rune('a' + i))}) })
	}
	// The slow subscriber holds at most its buffer, and the newest thing in
	// it tells it to rescan.
	var got []Change
	for len(slow) > 0 {
		got = append(got, <-slow)
	}
	if len(got) == 0 || len(got) > 3 || got[0].Kind != KindResync {
		t.Fatalf("slow subscriber got %+v, want a resync marker first, then at most 2 changes", got)
	}
	resyncs := 0
	for _, c := range got {
		if c.Kind == KindResync {
			resyncs++
		}
	}
	if resyncs != 1 {
		t.Errorf("slow subscriber got %d resync markers in %+v, want 1", resyncs, got)
	}
	if len(fast) != 10 {
		t.Errorf("fast subscriber has %d changes, want 10", len(fast))
	}
	// After draining, the slow subscriber gets ordinary changes again.
	update(t, s, func(tx *Tx) error { return tx.PutPlan(model.Plan{ID: "z"}) })
	if c := <-slow; c.Kind != KindPlan || c.ID != "z" {
		t.Errorf("after resync: %+v", c)
	}
}

func TestBatchPublishesCommitted(t *testing.T) {
	s := open(t)
	ch, cancel := s.Subscribe(100)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			err := s.Batch(func(tx *Tx) error {
				if i == 7 {
					_ = tx.PutPlan(model.Plan{ID: "bad"})
					return errors.New("rejected")
				}
				return tx.PutPlan(model.Plan{ID: string(rune('a' + i))})
			})
			if (err != nil) != (i == 7) {
				t.Errorf("Batch %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if len(ch) != 19 {
		t.Errorf("got %d changes, want 19", len(ch))
	}
	for len(ch) > 0 {
		if c := <-ch; c.ID == "bad" {
			t.Errorf("failed Batch published %+v", c)
		}
	}
	view(t, s, func(tx *Tx) error {
		c, _ := tx.Counts()
		if c[KindPlan] != 19 {
			t.Errorf("plans: %d, want 19", c[KindPlan])
		}
		return nil
	})
}

func TestCloseClosesSubscriptions(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "db"), Options{SealKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	ch, cancel := s.Subscribe(1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-ch; ok {
		t.Error("subscription open after Close")
	}
	cancel()
}

func TestCounts(t *testing.T) {
	s := open(t)
	update(t, s, func(tx *Tx) error {
		for _, id := range []string{"a", "b", "c"} {
			if err := tx.PutMember(model.Member{ID: id}); err != nil {
				return err
			}
		}
		if err := tx.PutMember(model.Member{ID: "a", Name: "again"}); err != nil {
			return err
		}
		if err := tx.DeleteMember("b"); err != nil {
			return err
		}
		if err := tx.DeleteMember("b"); err != nil {
			return err
		}
		if err := tx.PutLocation(model.Location{ID: "l"}); err != nil {
			return err
		}
		_, err := tx.EnqueueEmail(model.Email{To: "x@y"})
		return err
	})
	view(t, s, func(tx *Tx) error {
		got, err := tx.Counts()
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{KindMember: 2, KindLocation: 1, kindOutbox: 1, KindCompany: 0, KindMembership: 0,
			KindPlan: 0, KindResource: 0, KindBooking: 0, KindVisitor: 0, KindPass: 0, KindAccount: 0}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Counts (-want +got):\n%s", diff)
		}
		return nil
	})
}

func TestAudit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	opts := Options{SealKey: testKey, Now: func() time.Time { return now }}
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	explicit := now.Add(-time.Hour)
	update(t, s, func(tx *Tx) error {
		for _, e := range []model.AuditEntry{
			{Actor: "sync", Action: "account.created", Member: "m1", Subject: "ada", Cause: "membership ms1 started"},
			{Actor: "sync", Action: "account.created", Member: "m2", Time: explicit},
		} {
			if err := tx.Audit(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path, opts)
	update(t, s, func(tx *Tx) error {
		return tx.Audit(model.AuditEntry{Actor: "radius", Action: "account.disabled", Member: "m1"})
	})
	all, err := s.AuditLog(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, e := range all {
		seqs = append(seqs, e.Seq)
	}
	if diff := cmp.Diff([]uint64{1, 2, 3}, seqs); diff != "" {
		t.Errorf("seqs across reopen (-want +got):\n%s", diff)
	}
	if !all[0].Time.Equal(now) || !all[1].Time.Equal(explicit) {
		t.Errorf("times: %v, %v", all[0].Time, all[1].Time)
	}
	if all[0].Cause != "membership ms1 started" || all[0].Subject != "ada" {
		t.Errorf("entry 1: %+v", all[0])
	}
	page, _ := s.AuditLog(1, 1)
	if len(page) != 1 || page[0].Seq != 2 {
		t.Errorf("AuditLog(1, 1): %+v", page)
	}
	if rest, _ := s.AuditLog(3, 10); len(rest) != 0 {
		t.Errorf("AuditLog(3): %+v", rest)
	}
	if rest, _ := s.AuditLog(^uint64(0), 10); len(rest) != 0 {
		t.Errorf("AuditLog(max): %+v", rest)
	}
	of, _ := s.AuditOf("m1", 0)
	if len(of) != 2 || of[0].Seq != 3 || of[1].Seq != 1 {
		t.Errorf("AuditOf(m1): %+v", of)
	}
	if of, _ := s.AuditOf("m1", 1); len(of) != 1 || of[0].Seq != 3 {
		t.Errorf("AuditOf(m1, 1): %+v", of)
	}
}

func TestEvents(t *testing.T) {
	s := open(t)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	update(t, s, func(tx *Tx) error {
		for i, id := range []string{"e1", "e2", "e3"} {
			if err := tx.MarkEvent(id, t0.Add(time.Duration(i)*24*time.Hour)); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, s, func(tx *Tx) error {
		n, err := tx.PruneEvents(t0.Add(36 * time.Hour))
		if err != nil || n != 2 {
			t.Errorf("PruneEvents: %d, %v; want 2", n, err)
		}
		return nil
	})
	view(t, s, func(tx *Tx) error {
		for id, want := range map[string]bool{"e1": false, "e2": false, "e3": true, "e4": false} {
			if seen, err := tx.SeenEvent(id); err != nil || seen != want {
				t.Errorf("SeenEvent(%s): %v, %v; want %v", id, seen, err, want)
			}
		}
		return nil
	})
}

func TestState(t *testing.T) {
	s := open(t)
	type cursor struct {
		Since time.Time `json:"since"`
		Page  string    `json:"page"`
	}
	want := cursor{Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Page: "abc"}
	update(t, s, func(tx *Tx) error { return tx.PutState("sync.members", want) })
	view(t, s, func(tx *Tx) error {
		var got cursor
		if err := tx.GetState("sync.members", &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("state (-want +got):\n%s", diff)
		}
		if err := tx.GetState("other", &got); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetState missing: %v", err)
		}
		return nil
	})
}

func TestKV(t *testing.T) {
	s := open(t)
	type session struct {
		MAC   string `json:"mac"`
		Bytes int64  `json:"bytes"`
	}
	view(t, s, func(tx *Tx) error {
		var v session
		if err := tx.GetKV("sessions", "x", &v); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetKV before bucket exists: %v", err)
		}
		return tx.ForEachKV("sessions", "", func(string, []byte) error {
			t.Error("ForEachKV on missing bucket called fn")
			return nil
		})
	})
	update(t, s, func(tx *Tx) error {
		if err := tx.DeleteKV("sessions", "x"); err != nil {
			return err
		}
		for _, k := range []string{"m1/a", "m1/b", "m2/a", "m10/a"} {
			if err := tx.PutKV("sessions", k, session{MAC: k, Bytes: 1}); err != nil {
				return err
			}
		}
		return tx.PutKV("ippool", "10.0.0.5", "m1")
	})
	update(t, s, func(tx *Tx) error { return tx.DeleteKV("sessions", "m1/b") })
	view(t, s, func(tx *Tx) error {
		var got session
		if err := tx.GetKV("sessions", "m2/a", &got); err != nil || got.MAC != "m2/a" {
			t.Errorf("GetKV: %+v, %v", got, err)
		}
		var keys []string
		if err := tx.ForEachKV("sessions", "m1/", func(k string, raw []byte) error {
			keys = append(keys, k+"="+string(raw))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{`m1/a={"mac":"m1/a","bytes":1}`}, keys); diff != "" {
			t.Errorf("ForEachKV (-want +got):\n%s", diff)
		}
		var owner string
		if err := tx.GetKV("ippool", "10.0.0.5", &owner); err != nil || owner != "m1" {
			t.Errorf("ippool: %q %v", owner, err)
		}
		stop := errors.New("stop")
		n := 0
		err := tx.ForEachKV("sessions", "", func(string, []byte) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("ForEachKV stop: %v after %d", err, n)
		}
		return nil
	})
}

func TestSecondOpenTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	openAt(t, path, Options{SealKey: testKey})
	start := time.Now()
	_, err := Open(path, Options{SealKey: testKey, Timeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("second Open: got %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second Open took %v", d)
	}
}

func TestDBFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	openAt(t, path, Options{SealKey: testKey})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("db mode %04o, want 0600", fi.Mode().Perm())
	}
}

func TestSchemaVersionPersisted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path, Options{SealKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	var v int
	db.View(func(tx *bbolt.Tx) error { v = readSchema(tx); return nil })
	db.Close()
	if v != currentSchema {
		t.Errorf("raw schema version %d, want %d", v, currentSchema)
	}
	s = openAt(t, path, Options{SealKey: testKey})
	if got, err := s.SchemaVersion(); err != nil || got != currentSchema {
		t.Errorf("SchemaVersion: %d, %v", got, err)
	}
	if s.Size() <= 0 {
		t.Errorf("Size: %d", s.Size())
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, _ := tx.CreateBucket(bucketMeta)
		return b.Put(schemaKey, u64(uint64(currentSchema+1)))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s, err := Open(path, Options{SealKey: testKey}); err == nil {
		s.Close()
		t.Fatal("Open of a newer schema succeeded")
	}
}

// TestMigrateFromV0 builds a prototype (version 0) database by hand: no
// meta bucket, no indexes, accounts keyed by the username as typed.
func TestMigrateFromV0(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw := map[string]map[string]string{
		"members": {
			"m1": `{"id":"m1","name":"Ada","email":"Ada@X.io","company":"c1","status":"active"}`,
			"m2": `{"id":"m2","name":"Bob"}`,
		},
		"memberships": {
			"ms1": `{"id":"ms1","member":"m1","company":"c1","isPersonal":true,"plan":"p1"}`,
		},
		"passes":   {"ps1": `{"id":"ps1","member":"m2","count":3}`},
		"plans":    {"p1": `{"id":"p1","name":"Hot desk"}`},
		"accounts": {"Ada": `{"username":"Ada","memberId":"m1","onboardTokenHash":"CQkJ"}`},
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for bucket, kvs := range raw {
			b, err := tx.CreateBucket([]byte(bucket))
			if err != nil {
				return err
			}
			for k, v := range kvs {
				if err := b.Put([]byte(k), []byte(v)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s := openAt(t, path, Options{SealKey: testKey}) // Check runs in cleanup
	if v, _ := s.SchemaVersion(); v != currentSchema {
		t.Errorf("schema after migration: %d, want %d", v, currentSchema)
	}
	view(t, s, func(tx *Tx) error {
		if ms, _ := tx.MembershipsOfMember("m1"); len(ms) != 1 || ms[0].ID != "ms1" {
			t.Errorf("MembershipsOfMember after migration: %+v", ms)
		}
		if ms, _ := tx.MembersOfCompany("c1"); len(ms) != 1 {
			t.Errorf("MembersOfCompany after migration: %+v", ms)
		}
		if m, err := tx.MemberByEmail("ada@x.io"); err != nil || m.ID != "m1" {
			t.Errorf("MemberByEmail after migration: %v", err)
		}
		if ps, _ := tx.PassesOfMember("m2"); len(ps) != 1 {
			t.Errorf("PassesOfMember after migration: %+v", ps)
		}
		if a, err := tx.GetAccount("ada"); err != nil || a.MemberID != "m1" {
			t.Errorf("GetAccount after migration: %+v %v", a, err)
		}
		if a, err := tx.AccountOfMember("m1"); err != nil || a.Username != "Ada" {
			t.Errorf("AccountOfMember after migration: %+v %v", a, err)
		}
		if _, err := tx.AccountByOnboardToken([]byte{9, 9, 9}); err != nil {
			t.Errorf("AccountByOnboardToken after migration: %v", err)
		}
		c, _ := tx.Counts()
		if c[KindMember] != 2 || c[KindAccount] != 1 || c[KindPlan] != 1 {
			t.Errorf("Counts after migration: %v", c)
		}
		return nil
	})
	// The migrated store takes writes normally.
	update(t, s, func(tx *Tx) error { return tx.PutMembership(model.Membership{ID: "ms1", Member: "m2"}) })
}

func TestCheckDetectsCorruption(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func(tx *bbolt.Tx) error
		want    string
	}{
		{"dangling index entry", func(tx *bbolt.Tx) error {
			return tx.Bucket(idxMembershipMember).Put(compositeKey("m1", "ghost"), nil)
		}, `idx_membership_member: dangling entry "m1\x00ghost"`},
		{"missing index entry", func(tx *bbolt.Tx) error {
			return tx.Bucket(idxMemberCompany).Delete(compositeKey("c1", "m1"))
		}, "idx_member_company: missing entries"},
		{"account member index points elsewhere", func(tx *bbolt.Tx) error {
			return tx.Bucket(idxAccountMember).Put([]byte("m1"), []byte("other"))
		}, `idx_account_member: entry "m1" is "other", want "ada"`},
		{"account under the wrong key", func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketAccounts).Put([]byte("ADA2"), []byte(`{"username":"ada2","memberId":"m9"}`))
		}, `account "ADA2": username "ada2" does not match its key`},
		{"two accounts for one member", func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketAccounts).Put([]byte("zed"), []byte(`{"username":"zed","memberId":"m1"}`))
		}, `member "m1" has two accounts`},
		{"counter drift", func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketCounts).Put([]byte(KindMember), u64(7))
		}, `counts: entry "member"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db")
			s, err := Open(path, Options{SealKey: testKey})
			if err != nil {
				t.Fatal(err)
			}
			update(t, s, func(tx *Tx) error {
				if err := tx.PutMember(model.Member{ID: "m1", Company: "c1"}); err != nil {
					return err
				}
				if err := tx.PutMembership(model.Membership{ID: "ms1", Member: "m1"}); err != nil {
					return err
				}
				return tx.PutAccount(model.Account{Username: "Ada", MemberID: "m1"})
			})
			if err := s.Check(); err != nil {
				t.Fatalf("Check before corruption: %v", err)
			}
			if err := s.db.Update(tc.corrupt); err != nil {
				t.Fatal(err)
			}
			err = s.Check()
			s.Close()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Check: got %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestReadsSkipDanglingIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path, Options{SealKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(idxMembershipMember).Put(compositeKey("m1", "ghost"), nil)
	})
	view(t, s, func(tx *Tx) error {
		if ms, err := tx.MembershipsOfMember("m1"); err != nil || len(ms) != 0 {
			t.Errorf("MembershipsOfMember: %+v, %v", ms, err)
		}
		return nil
	})
}

func TestReturnedValuesDoNotAliasDB(t *testing.T) {
	s := open(t)
	update(t, s, func(tx *Tx) error {
		return tx.PutAccount(model.Account{Username: "u", MemberID: "m", NTHash: bytes.Repeat([]byte{1}, 16)})
	})
	var a model.Account
	view(t, s, func(tx *Tx) error {
		var err error
		a, err = tx.GetAccount("u")
		return err
	})
	// Force remaps and page reuse, then read the copy.
	update(t, s, func(tx *Tx) error {
		for i := range 2000 {
			if err := tx.PutKV("fill", string(rune(i)), strings.Repeat("x", 512)); err != nil {
				return err
			}
		}
		return tx.DeleteAccount("u")
	})
	if !bytes.Equal(a.NTHash, bytes.Repeat([]byte{1}, 16)) {
		t.Errorf("NTHash changed after the tx: %x", a.NTHash)
	}
}

func TestUnchangedPutRecordsNoChange(t *testing.T) {
	s := open(t)
	m := model.Member{ID: "m1", Name: "Ada", Properties: map[string]string{"b": "2", "a": "1"}}
	update(t, s, func(tx *Tx) error { return tx.PutMember(m) })
	ch, cancel := s.Subscribe(4)
	defer cancel()
	update(t, s, func(tx *Tx) error { return tx.PutMember(m) })
	if len(ch) != 0 {
		t.Errorf("identical Put published %+v", <-ch)
	}
	m.Name = "Ada L"
	update(t, s, func(tx *Tx) error { return tx.PutMember(m) })
	if c := <-ch; c != (Change{Kind: KindMember, ID: "m1", Member: "m1"}) {
		t.Errorf("changed Put published %+v", c)
	}
}

func TestAccountEdgeCases(t *testing.T) {
	s := open(t)
	token := []byte("hash-of-token")
	update(t, s, func(tx *Tx) error {
		return tx.PutAccount(model.Account{Username: "a", MemberID: "m1", OnboardTokenHash: token})
	})
	// Another account cannot reuse the token hash.
	err := s.Update(func(tx *Tx) error {
		return tx.PutAccount(model.Account{Username: "b", MemberID: "m2", OnboardTokenHash: token})
	})
	if !errors.Is(err, ErrConflict) {
		t.Errorf("shared token: got %v, want ErrConflict", err)
	}
	// An identical Put publishes nothing.
	ch, cancel := s.Subscribe(4)
	defer cancel()
	update(t, s, func(tx *Tx) error {
		return tx.PutAccount(model.Account{Username: "a", MemberID: "m1", OnboardTokenHash: token})
	})
	if len(ch) != 0 {
		t.Errorf("identical PutAccount published %+v", <-ch)
	}
	// A rename publishes the removal of the old name and the new one.
	update(t, s, func(tx *Tx) error { return tx.PutAccount(model.Account{Username: "A2", MemberID: "m1"}) })
	want := []Change{
		{Kind: KindAccount, ID: "a", Deleted: true, Member: "m1"},
		{Kind: KindAccount, ID: "A2", Member: "m1"},
	}
	got := []Change{<-ch, <-ch}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rename changes (-want +got):\n%s", diff)
	}
	view(t, s, func(tx *Tx) error {
		if _, err := tx.AccountByOnboardToken(token); !errors.Is(err, ErrNotFound) {
			t.Errorf("token of renamed-away account: %v", err)
		}
		if _, err := tx.AccountByOnboardToken(nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("empty token: %v", err)
		}
		return nil
	})
}

func TestMigrateFromV0RefusesCaseDuplicates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, _ := tx.CreateBucket([]byte("accounts"))
		b.Put([]byte("Ada"), []byte(`{"username":"Ada","memberId":"m1"}`))
		return b.Put([]byte("ada"), []byte(`{"username":"ada","memberId":"m2"}`))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{SealKey: testKey})
	if err == nil {
		s.Close()
		t.Fatal("migration merged two accounts differing only in case")
	}
	if !errors.Is(err, ErrConflict) {
		t.Errorf("got %v, want ErrConflict", err)
	}
	// The failed migration changed nothing: the file is still version 0.
	db, err = bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketMeta) != nil || readSchema(tx) != 0 {
			t.Error("failed migration left changes behind")
		}
		return nil
	})
}

func TestConcurrentWritersAndReaders(t *testing.T) {
	s := open(t)
	ch, cancel := s.Subscribe(1000)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 25 {
				id := string(rune('a'+w)) + string(rune('a'+i))
				err := s.Update(func(tx *Tx) error {
					if err := tx.PutMember(model.Member{ID: id, Company: "c"}); err != nil {
						return err
					}
					return tx.Audit(model.AuditEntry{Action: "x", Member: id})
				})
				if err != nil {
					t.Error(err)
				}
			}
		})
		wg.Go(func() {
			for range 25 {
				_ = s.View(func(tx *Tx) error {
					ms, err := tx.MembersOfCompany("c")
					for _, m := range ms {
						if m.Company != "c" {
							t.Errorf("member %s in wrong company", m.ID)
						}
					}
					return err
				})
			}
		})
	}
	wg.Wait()
	if len(ch) != 100 {
		t.Errorf("got %d changes, want 100", len(ch))
	}
	log, _ := s.AuditLog(0, 0)
	for i, e := range log {
		if e.Seq != uint64(i+1) {
			t.Fatalf("audit seq %d at %d", e.Seq, i)
		}
	}
}

func TestPutOverwritesUndecodableRecord(t *testing.T) {
	s := open(t)
	update(t, s, func(tx *Tx) error {
		if err := tx.PutMembership(model.Membership{ID: "ms1", Member: "m1"}); err != nil {
			return err
		}
		// Damage the record: the member survives, a field has the wrong type.
		return tx.tx.Bucket(bucketMemberships).Put([]byte("ms1"), []byte(`{"id":"ms1","member":"m1","plan":7}`))
	})
	view(t, s, func(tx *Tx) error {
		if _, err := tx.GetMembership("ms1"); err == nil {
			t.Error("GetMembership of a damaged record: no error")
		}
		return nil
	})
	update(t, s, func(tx *Tx) error { return tx.PutMembership(model.Membership{ID: "ms1", Member: "m2"}) })
	update(t, s, func(tx *Tx) error {
		if err := tx.tx.Bucket(bucketMemberships).Put([]byte("ms1"), []byte(`{"id":"ms1","member":"m2","plan":7}`)); err != nil {
			return err
		}
		return tx.DeleteMembership("ms1")
	})
	// Check (in cleanup) proves no index entry was left behind.
}

func TestAuditTail(t *testing.T) {
	s := open(t)
	for i := 0; i < 7; i++ {
		if err := s.Update(func(tx *Tx) error { return tx.Audit(model.AuditEntry{Action: "a", Cause: fmt.Sprint(i)}) }); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.AuditTail(3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Cause != "4" || got[2].Cause != "6" || got[0].Seq >= got[2].Seq {
		t.Fatalf("tail %+v", got)
	}
	if all, _ := s.AuditTail(100); len(all) != 7 {
		t.Fatalf("tail(100) = %d entries, want 7", len(all))
	}
}

// A json.RawMessage goes into the bucket as it is (the caller encoded
// it); any other value is encoded, a RawMessage-typed empty one included.
func TestPutKVRawMessage(t *testing.T) {
	s := open(t)
	raw := json.RawMessage(`{"mac": "aa",  "bytes": 7}`) // not compact: stored unchanged
	err := s.Update(func(tx *Tx) error {
		if err := tx.PutKV("sessions", "raw", raw); err != nil {
			return err
		}
		return tx.PutKV("sessions", "val", map[string]int{"bytes": 7})
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	err = s.View(func(tx *Tx) error {
		return tx.ForEachKV("sessions", "", func(k string, v []byte) error { got[k] = string(v); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	if got["raw"] != string(raw) || got["val"] != `{"bytes":7}` {
		t.Errorf("stored %q", got)
	}
}
