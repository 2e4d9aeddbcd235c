package peer

import (
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
)

// TestFleetSentMarks: a message claimed (about to be sent) at A is
// refused at B and C once the mark arrives, and stays A's to retry; two
// claims made while split both go out (the documented partition case),
// and after healing every box names the same, first, sender.
func TestFleetSentMarks(t *testing.T) {
	a, b, c := fleet3(t)
	e := model.Email{Kind: "guest_code", Once: "guest_code/0123"}
	if ok, by, err := a.ClaimSend(e); !ok || by != "box-a" || err != nil {
		t.Fatalf("claim at a: %v %q %v", ok, by, err)
	}
	for _, n := range []*testNode{b, c} {
		waitFor(t, time.Second, "the mark at "+n.BoxID(), func() bool { by, _ := n.SentBy(e.Once); return by == "box-a" })
		if ok, by, err := n.ClaimSend(e); ok || by != "box-a" || err != nil {
			t.Errorf("claim at %s after a's: %v %q %v, want refused (sent by box-a)", n.BoxID(), ok, by, err)
		}
	}
	if ok, _, _ := a.ClaimSend(e); !ok {
		t.Errorf("a's own retry refused")
	}

	// Split c off; c and b claim the same new message on their sides.
	b.setCut("box-c")
	c.setCut("box-a", "box-b")
	waitFor(t, 2*time.Second, "split", func() bool { return !b.linkUp("box-c") && !a.linkUp("box-c") })
	e2 := model.Email{Kind: "welcome", Once: "welcome/m9"}
	if ok, _, _ := c.ClaimSend(e2); !ok {
		t.Fatal("c's claim while split refused")
	}
	if ok, _, _ := b.ClaimSend(e2); !ok {
		t.Fatal("b's claim while split refused (c's mark cannot be there)")
	}
	b.setCut()
	c.setCut()
	for _, n := range []*testNode{a, b, c} {
		waitFor(t, 5*time.Second, "healed mark at "+n.BoxID(), func() bool { by, _ := n.SentBy(e2.Once); return by == "box-c" })
	}
	if ok, _, _ := b.ClaimSend(e2); ok {
		t.Errorf("b may still send after healing: the first claim (c) must win")
	}
	// A mark with a bad box id is malformed.
	if err := checkValue(KindSent, []byte(`{"box":"Not A Box","kind":"welcome"}`)); err == nil {
		t.Error("bad sent mark accepted")
	}
}
