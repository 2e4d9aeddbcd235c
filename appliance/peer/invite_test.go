package peer

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestFleetInviteFromAnyBox: box-b (no CA key) invites; its token,
// signed with b's box key, points at the CA box, which honours it: the
// new box joins and links to every box. The token is single use; one
// whose inviter was changed (the signature no longer matches) and one
// from a box removed since are refused with a log line.
func TestFleetInviteFromAnyBox(t *testing.T) {
	a, b, c := fleet3(t)
	waitFor(t, 2*time.Second, "b knows the CA box", func() bool { _, _, err := b.Invite(time.Hour); return err == nil })
	tok, _, err := b.Invite(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pt, _ := ParseToken(tok)
	if pt.Inviter != "box-b" || pt.Addr != a.advertise() {
		t.Fatalf("token %+v: want signed by box-b, pointing at the CA box %s", pt, a.advertise())
	}
	d := startNode(t, a.now, "Uptown")
	if _, err := d.Join(context.Background(), tok, "box-d"); err != nil {
		t.Fatalf("join with box-b's invite: %v", err)
	}
	waitFor(t, 5*time.Second, "box-d linked to all", func() bool {
		return d.linkUp("box-a") && d.linkUp("box-b") && d.linkUp("box-c") && b.linkUp("box-d")
	})
	e := startNode(t, a.now)
	if _, err := e.Join(context.Background(), tok, "box-e"); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Errorf("replayed token: %v", err)
	}
	tok2, _, _ := b.Invite(time.Hour)
	pt2, _ := ParseToken(tok2)
	pt2.Inviter = "box-c"
	if _, err := e.Join(context.Background(), pt2.Encode(), "box-e"); err == nil || !strings.Contains(err.Error(), "invalid") {
		t.Errorf("token with a changed inviter: %v", err)
	}
	tok3, _, err := c.Invite(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Remove("box-c"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Join(context.Background(), tok3, "box-e"); err == nil || !strings.Contains(err.Error(), "removed") {
		t.Errorf("token of a removed box: %v", err)
	}
	waitFor(t, time.Second, "refusals logged", func() bool { return a.logs.has("fleet join refused") })
}

// FuzzParseToken: a join token (typed or pasted by an operator) never
// panics the parser; an accepted one survives a round trip.
func FuzzParseToken(f *testing.F) {
	f.Add(Token{CAFingerprint: strings.Repeat("ab", 32), Addr: "127.0.0.1:1", ID: "0123456789abcdef", Secret: make([]byte, 32)}.Encode())
	f.Add(Token{CAFingerprint: strings.Repeat("ab", 32), Addr: "127.0.0.1:1", ID: "0123456789abcdef", Secret: make([]byte, 32), Inviter: "box-b", Expires: 1, Sig: []byte{1, 2}}.Encode())
	f.Add("dgf1.e30")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			return
		}
		again, err := ParseToken(tok.Encode())
		if err != nil || again.ID != tok.ID || again.Inviter != tok.Inviter {
			t.Fatalf("round trip: %+v %v", again, err)
		}
	})
}
