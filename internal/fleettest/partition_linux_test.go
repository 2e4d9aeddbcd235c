package fleettest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/creds"
	"github.com/deskgate/deskgate/appliance/peer"
)

// converged waits until every running box reports the same dump and
// returns it with the time it took; on timeout it fails with the first
// difference.
func (f *fleet) converged(limit time.Duration, what string) (peer.Dump, time.Duration) {
	f.t.Helper()
	start := time.Now()
	var dumps []peer.Dump
	for {
		dumps = dumps[:0]
		ok := true
		for _, b := range f.boxes {
			if !b.running() {
				continue
			}
			d, err := b.dump()
			if err != nil {
				ok = false
				break
			}
			dumps = append(dumps, d)
			if d.Digest != dumps[0].Digest {
				ok = false
			}
		}
		if ok && len(dumps) > 0 {
			return dumps[0], time.Since(start)
		}
		if time.Since(start) > limit {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.t.Fatalf("%s: the boxes' replicated state differs %s after healing:\n%s", what, limit, dumpDiff(dumps))
	return peer.Dump{}, 0
}

// dumpDiff describes how dumps differ (version vectors, registers,
// accounts).
func dumpDiff(dumps []peer.Dump) string {
	if len(dumps) < 2 {
		return "fewer than two dumps"
	}
	var out []string
	line := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	for _, d := range dumps {
		out = append(out, fmt.Sprintf("%s vv %v, %d registers, %d accounts", d.Box, d.VV, len(d.Registers), len(d.Accounts)))
	}
	index := func(d peer.Dump) map[string]string {
		m := map[string]string{}
		for _, r := range d.Registers {
			m["reg "+r.Kind+"/"+r.Key] = line(r)
		}
		for _, a := range d.Accounts {
			m["acct "+a.Member] = line(a)
		}
		return m
	}
	first := index(dumps[0])
	for _, d := range dumps[1:] {
		other := index(d)
		n := 0
		for k, v := range first {
			if other[k] != v && n < 10 {
				out = append(out, fmt.Sprintf("  %s: %s has %s, %s has %s", k, dumps[0].Box, v, d.Box, other[k]))
				n++
			}
		}
		for k, v := range other {
			if _, ok := first[k]; !ok && n < 10 {
				out = append(out, fmt.Sprintf("  %s: only %s has %s", k, d.Box, v))
				n++
			}
		}
	}
	return strings.Join(out, "\n")
}

// register finds kind/key in a dump.
func register(d peer.Dump, kind, key string) (peer.DumpRegister, bool) {
	for _, r := range d.Registers {
		if r.Kind == kind && r.Key == key {
			return r, true
		}
	}
	return peer.DumpRegister{}, false
}

func account(d peer.Dump, member string) (peer.DumpAccount, bool) {
	for _, a := range d.Accounts {
		if a.Member == member {
			return a, true
		}
	}
	return peer.DumpAccount{}, false
}

// sessionLive reads a session register's live flag.
func sessionLive(t *testing.T, d peer.Dump, key string) (bool, bool) {
	t.Helper()
	r, ok := register(d, peer.KindSession, key)
	if !ok {
		return false, false
	}
	var v peer.SessionValue
	if err := json.Unmarshal(r.Value, &v); err != nil {
		t.Fatal(err)
	}
	return v.Live, true
}

// waitSplit waits until no link crosses the partition.
func (f *fleet) waitSplit(sides []int) time.Duration {
	f.t.Helper()
	return waitFor(f.t, 20*time.Second, fmt.Sprintf("links across the partition %v down", sides), func() bool {
		for i, b := range f.boxes {
			if !b.running() {
				continue
			}
			st, err := b.fleetStatus()
			if err != nil {
				return false
			}
			for _, p := range st.Peers {
				j := int(p.Box[len(p.Box)-1] - 'a')
				if p.Link == "up" && sides[i] != sides[j] {
					return false
				}
			}
		}
		return true
	})
}

// TestFleetPartitionNetns (issue 11 acceptance, partition test): each box
// in its own network namespace, links between box-c and the others cut
// with iptables (TCP reset, the rest dropped; every box still reaches
// OfficeRnD). During the split, on both sides: members created and ended
// in the simulator, member-chosen passwords set on the member pages,
// sessions started and stopped with radclient accounting, an EAP-TLS
// certificate issued at box-a before the split revoked at box-c and one
// issued at box-c. After healing,
// every box's replicated state (deskgate fleet dump: version vector,
// registers, accounts) is identical within 5 s, and every acknowledged
// change is in it, with one welcome email per member.
func TestFleetPartitionNetns(t *testing.T) {
	needTools(t, "radclient")
	f := startFleet(t, fleetOpts{netns: true, policy: "member"})
	a, b, c := f.boxes[0], f.boxes[1], f.boxes[2]
	syncAll := func(bs ...*box) {
		t.Helper()
		for _, x := range bs {
			if err := x.sync(); err != nil {
				t.Fatalf("sync %s: %v", x.id, err)
			}
		}
	}
	linkOf := func(email string, owner *box) string {
		t.Helper()
		var mails []string
		waitFor(t, 10*time.Second, "welcome email to "+email, func() bool { mails = f.welcomes(email); return len(mails) > 0 })
		link := onboardLinkRe.FindString(mails[0])
		if !strings.HasPrefix(link, owner.members+"/") {
			t.Fatalf("welcome to %s links %q, want %s's member page", email, link, owner.id)
		}
		return link
	}

	// Before the split: two members everyone knows.
	m0, _ := f.createMember("Ann Before", "ann.before@example.net", "Downtown")
	m2, ms2 := f.createMember("Ben Ending", "ben.ending@example.net", "Uptown")
	syncAll(f.boxes...)
	link0 := linkOf("ann.before@example.net", a)

	_, annCert, err := a.clientCert("ann.before@example.net")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "box-c knows Ann's certificate", func() bool {
		d, err := c.dump()
		_, ok := register(d, peer.KindCert, annCert)
		return err == nil && ok
	})

	sides := []int{0, 0, 1}
	cutAt := time.Now()
	f.lab.cut(sides)
	t.Logf("split {box-a, box-b} | {box-c}: links down after %s", f.waitSplit(sides).Round(time.Millisecond))

	// Side {a, b}.
	m1, _ := f.createMember("Cora Left", "cora.left@example.net", "Downtown")
	syncAll(a, b)
	link1 := linkOf("cora.left@example.net", a)
	pw := map[string]string{m0: "Left-Side-Ann-0001", m1: "Left-Side-Cora-0002"}
	for m, link := range map[string]string{m0: link0, m1: link1} {
		if err := f.onboard(link, pw[m]); err != nil {
			t.Fatal(err)
		}
	}
	if !b.accounting("ann.before@example.net", "s-b1", "02-00-00-00-0b-01", "Start") {
		t.Fatal("box-b did not acknowledge an accounting start")
	}
	// Side {c}: a member of its own location, ended membership, sessions.
	m3, _ := f.createMember("Dan Right", "dan.right@example.net", "Uptown")
	f.endMembership(ms2)
	syncAll(c)
	link3 := linkOf("dan.right@example.net", c)
	pw[m3] = "Right-Side-Dan-0003"
	if err := f.onboard(link3, pw[m3]); err != nil {
		t.Fatal(err)
	}
	if !c.revokeCert(annCert) {
		t.Fatal("box-c did not acknowledge revoking Ann's certificate (issued at box-a before the split)")
	}
	_, danCert, err := c.clientCert("dan.right@example.net")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ sid, status string }{{"s-c1", "Start"}, {"s-c2", "Start"}, {"s-c2", "Stop"}} {
		if !c.accounting("ann.before@example.net", s.sid, "02-00-00-00-0c-"+s.sid[len(s.sid)-1:], s.status) {
			t.Fatalf("box-c did not acknowledge accounting %s %s", s.sid, s.status)
		}
	}
	// Each side synced OfficeRnD on its own; now everyone has.
	syncAll(f.boxes...)
	if c.pap("cora.left@example.net", pw[m1], "02-00-00-00-00-01") {
		t.Fatal("box-c accepts a password set across the partition: the cut leaks")
	}
	t.Logf("changes on both sides made %s after the cut", time.Since(cutAt).Round(time.Millisecond))

	// Hold the split long enough for the dialers' backoff to grow (a
	// cable out for a while, not a blip), then heal.
	time.Sleep(time.Until(cutAt.Add(16 * time.Second)))
	f.lab.cut(nil)
	d, took := f.converged(5*time.Second, "after healing")
	t.Logf("healed: every box holds the same replicated state %s after the cut was lifted (digest %.16s…, %d registers)", took.Round(time.Millisecond), d.Digest, len(d.Registers))

	// Nothing acknowledged was lost.
	for m, p := range pw {
		r, ok := register(d, peer.KindPassword, m)
		var v struct{ Password string }
		if ok {
			_ = json.Unmarshal(r.Value, &v)
		}
		want := peer.PasswordFingerprint(creds.NTHash(p))
		if v.Password != want {
			t.Errorf("member %s: password register %+v, want the chosen password (%s)", m, r, want)
		}
		if acct, ok := account(d, m); !ok || acct.Password != want {
			t.Errorf("member %s: account %+v, want the chosen password", m, acct)
		}
	}
	if _, ok := register(d, peer.KindCertRevoked, annCert); !ok {
		t.Errorf("the revocation of certificate %s at box-c during the split is lost", annCert)
	}
	if _, ok := register(d, peer.KindCert, danCert); !ok {
		t.Errorf("certificate %s issued at box-c during the split is unknown after healing", danCert)
	}
	for key, live := range map[string]bool{"box-b/ap/s-b1": true, "box-c/ap/s-c1": true, "box-c/ap/s-c2": false} {
		if got, ok := sessionLive(t, d, key); !ok || got != live {
			t.Errorf("session %s: present %t live %t, want live %t", key, ok, got, live)
		}
	}
	if acct, ok := account(d, m2); ok {
		t.Errorf("ended member %s still has an enabled account: %+v", m2, acct)
	}
	for _, e := range []string{"ann.before@example.net", "ben.ending@example.net", "cora.left@example.net", "dan.right@example.net"} {
		if n := len(f.welcomes(e)); n != 1 {
			t.Errorf("%s: %d welcome emails, want 1", e, n)
		}
	}
	if !a.pap("dan.right@example.net", pw[m3], "02-00-00-00-00-02") || !c.pap("cora.left@example.net", pw[m1], "02-00-00-00-00-03") {
		t.Error("after healing a password chosen on one side is rejected on the other")
	}
}
