package peer

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

func auditAt(t testing.TB, n *testNode, action, member string) {
	t.Helper()
	if err := n.st.Update(func(tx *store.Tx) error {
		return tx.Audit(model.AuditEntry{Actor: "cli", Action: action, Member: member, Cause: "test at " + n.BoxID()})
	}); err != nil {
		t.Fatal(err)
	}
}

func trail(t testing.TB, n *testNode, member string) []string {
	t.Helper()
	es, ok, err := n.Audit(member, 0)
	if err != nil || !ok {
		t.Fatalf("%s audit: %v %v", n.BoxID(), ok, err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Box+" "+e.Action)
	}
	return out
}

// TestFleetAuditTrail: audit events made at B and then at C (after C saw
// B's) appear at every box with their origin box, in HLC order; the
// audit a box writes while applying a replicated password (a local
// consequence) is not replicated again; the member filter works.
func TestFleetAuditTrail(t *testing.T) {
	a, b, c := fleet3(t)
	auditAt(t, b, "account.disabled", "m1")
	waitFor(t, 2*time.Second, "b's event at c", func() bool { return slices.Contains(trail(t, c, ""), "box-b account.disabled") })
	auditAt(t, c, "account.created", "m2")
	// A member-chosen password at A: B and C apply it and audit that
	// locally ("replicated from box a").
	putAccount(t, b.st, model.Account{Username: "m3@example.com", MemberID: "m3", CreatedAt: a.now()})
	setPassword(t, a, "m3", "a chosen one 1")
	want := []string{"box-b account.disabled", "box-c account.created"}
	for _, n := range []*testNode{a, b, c} {
		waitFor(t, 2*time.Second, "the trail at "+n.BoxID(), func() bool { return slices.Equal(trail(t, n, ""), want) })
	}
	waitFor(t, 2*time.Second, "password applied at b", func() bool {
		got, err := b.st.AuditOf("m3", 0)
		return err == nil && len(got) == 1 && got[0].Actor == "fleet"
	})
	time.Sleep(200 * time.Millisecond) // would a consequence replicate, it would by now
	for _, n := range []*testNode{a, b, c} {
		if got := trail(t, n, ""); !slices.Equal(got, want) {
			t.Errorf("%s trail %v, want %v (a replicated password's local audit must stay local)", n.BoxID(), got, want)
		}
	}
	if got := trail(t, a, "m2"); !slices.Equal(got, []string{"box-c account.created"}) {
		t.Errorf("member filter: %v", got)
	}
	es, _, _ := a.Audit("", 0)
	if !es[0].Time.Before(es[1].Time) && !es[0].Time.Equal(es[1].Time) {
		t.Errorf("times out of order: %v", es)
	}
	if es[1].Cause != "test at box-c" || es[1].Member != "m2" {
		t.Errorf("event fields lost: %+v", es[1])
	}
	// limit keeps the newest.
	for i := range 5 {
		auditAt(t, a, fmt.Sprintf("x.%d", i), "")
	}
	got, _, _ := a.Audit("", 2)
	if len(got) != 2 || got[0].Action != "x.3" || got[1].Action != "x.4" {
		t.Errorf("limit 2: %+v", got)
	}
}
