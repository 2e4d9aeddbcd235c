package appliance

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	"github.com/deskgate/deskgate/appliance/model"
	dgradius "github.com/deskgate/deskgate/appliance/radius"
	"github.com/deskgate/deskgate/appliance/store"
)

// writeSyscalls is this process's count of write system calls (write,
// pwrite, ...: every bbolt commit makes some), from /proc/self/io.
func writeSyscalls(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "syscw: "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Fatal("no syscw in /proc/self/io")
	return 0
}

// TestDayPassActivation: a day pass starts at its holder's first login
// (a live accounting session), once. The pass over every live session
// (every 15 s) reads; it writes only when a pass is due: with 30 members
// online and no pass due it commits nothing (it used to commit once per
// member, each commit an fdatasync).
func TestDayPassActivation(t *testing.T) {
	nas := startTestNAS(t)
	h := newHarness(t, harnessOpts{seed: true, extra: 40, extraYAML: radiusYAML(nas.port())})
	app := h.start()
	h.waitImport(30 * time.Second)
	waitFor(t, 5*time.Second, "radius listening", func() bool { a, b := app.radius.srv.Addrs(); return len(a) > 0 && len(b) > 0 })
	_, acctAddrs := app.radius.srv.Addrs()

	var accts []model.Account
	if err := app.store.View(func(tx *store.Tx) error {
		return tx.ForEachAccount(func(a model.Account) error {
			if len(accts) < 30 && a.MemberID != "" {
				accts = append(accts, a)
			}
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if len(accts) < 30 {
		t.Fatalf("%d accounts imported, want at least 30", len(accts))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i, a := range accts {
		req := radius.New(radius.CodeAccountingRequest, []byte(nasSecret))
		rfc2865.UserName_SetString(req, a.Username)
		rfc2866.AcctStatusType_Set(req, rfc2866.AcctStatusType_Value_Start)
		rfc2866.AcctSessionID_SetString(req, fmt.Sprintf("dp-%d", i))
		rfc2865.CallingStationID_SetString(req, fmt.Sprintf("AA-BB-CC-00-01-%02X", i))
		rfc2865.NASIdentifier_SetString(req, "downtown-ap")
		if resp, err := radius.Exchange(ctx, req, acctAddrs[0].String()); err != nil || resp.Code != radius.CodeAccountingResponse {
			t.Fatalf("accounting start %d: %v %v", i, err, resp)
		}
	}
	// Some of these members may be re-authorized in the background (a
	// Disconnect ends their session); most stay online.
	var live []dgradius.Session
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if live = app.radius.srv.Sessions(""); len(live) == len(accts) {
			break
		}
	}
	if len(live) < 20 {
		t.Fatalf("%d live sessions after %d accounting Starts", len(live), len(accts))
	}

	// Nothing due: no commit. The least of three tries, so that a write
	// of another goroutine (an audit entry) does not count.
	least := 1 << 30
	for range 3 {
		before := writeSyscalls(t)
		app.activateDayPasses(ctx)
		least = min(least, writeSyscalls(t)-before)
	}
	if least > 10 {
		t.Errorf("%d write system calls for %d members online and no pass due, want none", least, len(live))
	}

	// A pass of a member online starts at that member's session start.
	m, start := live[0].MemberID, live[0].Start
	if err := app.store.Update(func(tx *store.Tx) error {
		return tx.PutPass(model.Pass{ID: "dp-pass", Member: m, IsPersonal: true, Count: 1, Status: "valid"})
	}); err != nil {
		t.Fatal(err)
	}
	for _, s := range app.radius.srv.Sessions("") {
		if s.MemberID == m && s.Start.Before(start) {
			start = s.Start
		}
	}
	activated := func() int {
		t.Helper()
		es, err := app.store.AuditOf(m, 100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range es {
			if e.Action == "daypass.activated" {
				n++
			}
		}
		return n
	}
	for range 2 {
		app.activateDayPasses(ctx)
	}
	var p model.Pass
	if err := app.store.View(func(tx *store.Tx) error { var err error; p, err = tx.GetPass("dp-pass"); return err }); err != nil {
		t.Fatal(err)
	}
	if !p.FirstUse.Equal(start) {
		t.Errorf("pass FirstUse %v, want the session start %v", p.FirstUse, start)
	}
	if n := activated(); n != 1 {
		t.Errorf("%d daypass.activated audit entries after two passes, want 1", n)
	}
}
