package store

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/deskgate/deskgate/appliance/model"
)

func benchMember(i int) (model.Member, model.Membership) {
	id := fmt.Sprintf("%024x", i)
	m := model.Member{ID: id, Name: fmt.Sprintf("Member %d", i), Email: fmt.Sprintf("m%d@example.com", i),
		Company: fmt.Sprintf("c%d", i%500), Location: "loc1", Status: "active", StartDate: "2026-01-01"}
	ms := model.Membership{ID: "ms" + id, Member: id, Company: m.Company, IsPersonal: true, Plan: "plan1",
		Location: "loc1", Status: model.MembershipApproved, CalculatedStatus: model.CalcActive,
		StartDate: "2026-01-01"}
	return m, ms
}

func putMembers(b testing.TB, s *Store, from, n int) {
	const perTx = 500
	for start := from; start < from+n; start += perTx {
		err := s.Update(func(tx *Tx) error {
			for i := start; i < start+perTx && i < from+n; i++ {
				m, ms := benchMember(i)
				if err := tx.PutMember(m); err != nil {
					return err
				}
				if err := tx.PutMembership(ms); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutMembers writes members with one membership each, 500 per
// transaction; ns/op is per member.
func BenchmarkPutMembers(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "db"), Options{SealKey: testKey})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	putMembers(b, s, 0, b.N)
}

// BenchmarkLoad50k opens a store of 50,000 members and iterates them.
func BenchmarkLoad50k(b *testing.B) {
	path := filepath.Join(b.TempDir(), "db")
	s, err := Open(path, Options{SealKey: testKey, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	putMembers(b, s, 0, 50000)
	if err := s.db.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		s, err := Open(path, Options{SealKey: testKey})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		err = s.View(func(tx *Tx) error {
			return tx.ForEachMember(func(model.Member) error { n++; return nil })
		})
		if err != nil || n != 50000 {
			b.Fatalf("iterated %d members: %v", n, err)
		}
		s.Close()
	}
}
