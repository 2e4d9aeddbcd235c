package peer

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/store"
)

// TestCertAndGuestMergeRules: revocations and guest device bindings are
// sets, a day pass's start keeps the earliest first login (not the latest
// write), and every arrival order gives the same registers.
func TestCertAndGuestMergeRules(t *testing.T) {
	now := testClock()
	t0 := now().UnixNano()
	first := now().UTC()
	later := first.Add(time.Hour)
	dp := func(at time.Time, box string) json.RawMessage {
		b, _ := json.Marshal(DayPassValue{At: at, Box: box})
		return b
	}
	es := []Entry{
		// box-b logs the later first use with the later HLC: LWW would keep it.
		{Origin: "box-a", Seq: 1, Time: HLC{t0, 0}, Kind: KindDayPass, Key: "p/m/l/p1/p1", Value: dp(first, "box-a")},
		{Origin: "box-b", Seq: 1, Time: HLC{t0 + 10, 0}, Kind: KindDayPass, Key: "p/m/l/p1/p1", Value: dp(later, "box-b")},
		{Origin: "box-c", Seq: 1, Time: HLC{t0 + 20, 0}, Kind: KindCertRevoked, Key: "1f", Value: json.RawMessage(`{"by":"box-c","at":"2026-01-01T00:00:00Z"}`)},
		{Origin: "box-a", Seq: 2, Time: HLC{t0 + 30, 0}, Kind: KindCertRevoked, Key: "1f", Value: json.RawMessage(`{"by":"box-a","at":"2026-01-02T00:00:00Z"}`)},
		{Origin: "box-b", Seq: 2, Time: HLC{t0 + 5, 0}, Kind: KindGuestDevice, Key: "b/x/y/02:00:00:00:00:01", Value: json.RawMessage(`{"box":"box-b"}`)},
		{Origin: "box-c", Seq: 2, Time: HLC{t0 + 1, 0}, Kind: KindGuestDevice, Key: "b/x/y/02:00:00:00:00:01", Value: json.RawMessage(`{"box":"box-c"}`)},
	}
	orders := [][]int{{0, 1, 2, 3, 4, 5}, {1, 0, 3, 2, 5, 4}, {3, 5, 1, 4, 2, 0}}
	var got []string
	for _, ord := range orders {
		st, err := store.Open(filepath.Join(t.TempDir(), "d.db"), store.Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		r := &replica{self: "box-z", clk: &clock{now: now}, now: now}
		seq := map[string]uint64{}
		if err := st.Update(func(tx *store.Tx) error {
			// Per origin in seq order (apply skips gaps), origins interleaved by ord.
			for len(seq) < 3 || seq["box-a"]+seq["box-b"]+seq["box-c"] < 6 {
				for _, i := range ord {
					e := es[i]
					if e.Seq != seq[e.Origin]+1 {
						continue
					}
					if ok, err := r.apply(tx, e); err != nil || !ok {
						return fmt.Errorf("apply %s/%d: %v %v", e.Origin, e.Seq, ok, err)
					}
					seq[e.Origin]++
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var dump strings.Builder
		_ = st.View(func(tx *store.Tx) error {
			return tx.ForEachKV(bucketReg, "", func(k string, raw []byte) error { fmt.Fprintf(&dump, "%s=%s\n", k, raw); return nil })
		})
		st.Close()
		got = append(got, dump.String())
	}
	for i := range got {
		if got[i] != got[0] {
			t.Errorf("order %v gives\n%s\nwant\n%s", orders[i], got[i], got[0])
		}
	}
	for _, want := range []string{
		`daypass/p/m/l/p1/p1={"o":"box-a"`,              // the earliest first use, not the latest write
		`certrevoked/1f={"o":"box-c"`,                   // a set keeps its earliest element
		`guestdev/b/x/y/02:00:00:00:00:01={"o":"box-c"`, // likewise
	} {
		if !strings.Contains(got[0], want) {
			t.Errorf("registers lack %s:\n%s", want, got[0])
		}
	}
}

// TestCertAndGuestValuesChecked: malformed values of the new kinds are
// refused by the decoder (and so close the link, applying nothing).
func TestCertAndGuestValuesChecked(t *testing.T) {
	t0 := testClock()().UnixNano()
	bad := map[string]string{
		KindIssuer:      `{"cert":"AAAA"}`,
		KindCert:        `{"box":"box-a","identity":"x@example.net","issuedAt":"2026-01-01T00:00:00Z","notAfter":"2027-01-01T00:00:00Z","fp":"short"}`,
		KindCertRevoked: `{"by":"BOX A","at":"2026-01-01T00:00:00Z"}`,
		KindGuestMail:   `{"box":"box-a","extra":1}`,
		KindGuestDevice: `{"box":""}`,
		KindDayPass:     `{"box":"box-a"}`,
	}
	for kind, v := range bad {
		m := Message{Type: TypeEntries, Entries: []Entry{{Origin: "box-a", Seq: 1, Time: HLC{t0, 0}, Kind: kind, Key: "k", Value: json.RawMessage(v)}}}
		b, _ := json.Marshal(m)
		if _, err := Decode(b); err == nil || !strings.Contains(err.Error(), kind+" value") {
			t.Errorf("%s %s: %v, want refused", kind, v, err)
		}
	}
	good := Message{Type: TypeEntries, Entries: []Entry{{Origin: "box-a", Seq: 1, Time: HLC{t0, 0}, Kind: KindDayPass, Key: "k",
		Value: json.RawMessage(`{"at":"2026-01-01T00:00:00Z","box":"box-a"}`)}}}
	b, _ := json.Marshal(good)
	if _, err := Decode(b); err != nil {
		t.Errorf("a good day pass entry: %v", err)
	}
}

// TestGuestDeliveryClaim: the lowest box serving the location claims a
// code's delivery; the others wait and, once the claim reached them, know
// it is settled; a box whose owner is not linked takes over only after
// TakeoverAfter and only as the lowest live box.
func TestGuestDeliveryClaim(t *testing.T) {
	a, b, c := fleet3(t)
	claim := func(n *testNode, seed, loc string, created time.Time) (bool, bool) {
		t.Helper()
		var send, settled bool
		if err := n.st.Update(func(tx *store.Tx) error {
			var err error
			send, settled, err = n.ClaimGuestDelivery(tx, seed, loc, created)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		n.Nudge()
		return send, settled
	}
	now := a.now()
	if send, settled := claim(b, "b/1/v", "Downtown", now); send || settled {
		t.Fatalf("box-b (not the owner) claimed: %v %v", send, settled)
	}
	if send, _ := claim(a, "b/1/v", "Downtown", now); !send {
		t.Fatal("box-a, the lowest box serving Downtown, did not claim")
	}
	waitFor(t, time.Second, "box-b hears of the claim", func() bool { s, settled := claim(b, "b/1/v", "Downtown", now); return !s && settled })
	if send, _ := claim(a, "b/1/v", "Downtown", now); !send {
		t.Fatal("the owner's second delivery (a moved booking) was refused")
	}
	// The owner is cut off: box-b waits TakeoverAfter, then takes over;
	// box-c (not the lowest live box) never does.
	a.setCut("box-b", "box-c")
	b.setCut("box-a")
	c.setCut("box-a")
	waitFor(t, 5*time.Second, "box-a unlinked", func() bool { return !b.linkUp("box-a") && !c.linkUp("box-a") })
	if send, settled := claim(b, "b/2/v", "Downtown", now); send || settled {
		t.Fatal("box-b took over at once")
	}
	old := now.Add(-b.opts.TakeoverAfter)
	if send, _ := claim(c, "b/2/v", "Downtown", old); send {
		t.Fatal("box-c took over though box-b is live and lower")
	}
	if send, settled := claim(b, "b/2/v", "Downtown", old); !send || !settled {
		t.Fatal("box-b did not take over an old unclaimed delivery")
	}
	if send, settled := claim(b, "b/2/v", "Downtown", old); !send || !settled {
		t.Fatal("box-b's own claim is not its to deliver again")
	}
}

// TestFleetRandomizedCertsGuests is TestFleetRandomized for the kinds of
// certs.go and guests.go: 600 random operations (certificates revoked,
// day passes first used, devices bound to guest codes, at random boxes)
// with random partitions, heals and restarts, then a heal. Afterwards
// every box holds the same registers; every acknowledged revocation and
// binding is there; each day pass starts at the earliest first use
// recorded anywhere. The seed is printed; DESKGATE_FLEET_SEED replays it.
func TestFleetRandomizedCertsGuests(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("DESKGATE_FLEET_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("DESKGATE_FLEET_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with DESKGATE_FLEET_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0xce27))
	a, b, c := fleet3(t)
	nodes := []*testNode{a, b, c}
	ids := []string{"box-a", "box-b", "box-c"}
	locs := []string{"Downtown", "Downtown", "Uptown"}
	cut := map[[2]int]bool{}
	applyCuts := func() {
		for i, n := range nodes {
			var off []string
			for j := range nodes {
				if cut[[2]int{min(i, j), max(i, j)}] {
					off = append(off, ids[j])
				}
			}
			n.setCut(off...)
		}
	}
	revoked := map[string]bool{}
	bound := map[string]bool{} // seed/device
	earliest := map[string]time.Time{}
	base := a.now().UTC().Truncate(time.Second)
	var ops, parts, heals, restarts int
	for range 600 {
		k := rng.IntN(3)
		n := nodes[k]
		switch r := rng.IntN(100); {
		case r < 30:
			sn := fmt.Sprintf("%x", 0x1000+rng.IntN(80))
			if err := n.RevokeCert(sn, "u@example.com"); err != nil {
				t.Fatal(err)
			}
			revoked[sn] = true
			ops++
		case r < 60:
			key := fmt.Sprintf("p/m%d/l/p/p", rng.IntN(30))
			at := base.Add(time.Duration(rng.IntN(600)) * time.Minute)
			if err := n.st.Update(func(tx *store.Tx) error { return n.RecordDayPassStart(tx, key, at) }); err != nil {
				t.Fatal(err)
			}
			n.Nudge()
			if e, ok := earliest[key]; !ok || at.Before(e) {
				earliest[key] = at
			}
			ops++
		case r < 88:
			s, dev := fmt.Sprintf("b/bk%d/v", rng.IntN(20)), fmt.Sprintf("02:00:00:00:00:%02x", rng.IntN(8))
			if err := n.st.Update(func(tx *store.Tx) error { return n.AddGuestDevice(tx, s, dev) }); err != nil {
				t.Fatal(err)
			}
			n.Nudge()
			bound[s+"/"+dev] = true
			ops++
		case r < 94:
			x, y := rng.IntN(3), rng.IntN(3)
			if x != y {
				cut[[2]int{min(x, y), max(x, y)}] = true
				applyCuts()
				parts++
			}
		case r < 98:
			clear(cut)
			applyCuts()
			heals++
		default:
			addr := n.advertise()
			n.stop()
			nodes[k] = startNodeIn(t, n.dir, addr, a.now, locs[k])
			applyCuts()
			restarts++
		}
	}
	clear(cut)
	applyCuts()
	took := waitFor(t, 10*time.Second, "convergence after healing", func() bool {
		d := regDump(t, nodes[0].st)
		return d == regDump(t, nodes[1].st) && d == regDump(t, nodes[2].st)
	})
	t.Logf("%d operations, %d partitions, %d heals, %d restarts; identical %s after the last heal", ops, parts, heals, restarts, took)
	for _, n := range nodes {
		for sn := range revoked {
			if _, ok := n.CertRevoked(sn); !ok {
				t.Errorf("%s: revocation of %s lost", n.BoxID(), sn)
			}
		}
		err := n.st.View(func(tx *store.Tx) error {
			for key, want := range earliest {
				at, ok, err := n.DayPassStart(tx, key)
				if err != nil || !ok || !at.Equal(want) {
					t.Errorf("%s: day pass %s starts %s (%v %v), want the earliest %s", n.BoxID(), key, at, ok, err, want)
				}
			}
			for sd := range bound {
				i := strings.LastIndex(sd, "/")
				devs, err := n.GuestDevices(tx, sd[:i])
				if err != nil || !slices.Contains(devs, sd[i+1:]) {
					t.Errorf("%s: binding %s lost", n.BoxID(), sd)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestIssuingCAs: init and join give every box an issuing CA signed by the
// fleet CA (the joiner's key never leaves it: it sent a CSR), announced to
// every box; a removed box's issuing CA is no longer offered.
func TestIssuingCAs(t *testing.T) {
	a, b, c := fleet3(t)
	waitFor(t, 2*time.Second, "three issuing CAs at every box", func() bool {
		return len(a.Issuers()) == 3 && len(b.Issuers()) == 3 && len(c.Issuers()) == 3
	})
	k, _ := b.current()
	for _, iss := range b.Issuers() {
		if !iss.IsCA || !iss.MaxPathLenZero || iss.CheckSignatureFrom(k.ca) != nil {
			t.Fatalf("issuing CA %s: CA %v, path length 0 %v, signed by the fleet CA: %v", iss.Subject.CommonName, iss.IsCA, iss.MaxPathLenZero, iss.CheckSignatureFrom(k.ca))
		}
	}
	for _, n := range []*testNode{a, b, c} {
		cert, key, root, ok := IssuingFiles(n.dir)
		if !ok {
			t.Fatalf("%s has no issuing CA files", n.BoxID())
		}
		if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s issuing key: %v %v", n.BoxID(), st.Mode(), err)
		}
		if cert == "" || root == "" {
			t.Errorf("%s: paths %q %q", n.BoxID(), cert, root)
		}
	}
	if err := a.Remove("box-c"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "box-c's issuing CA dropped at box-b", func() bool { return len(b.Issuers()) == 2 })
	for _, iss := range b.Issuers() {
		if strings.HasSuffix(iss.Subject.CommonName, "box-c") {
			t.Fatal("box-b still offers box-c's issuing CA")
		}
	}
}
