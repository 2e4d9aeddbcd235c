package appliance

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	"github.com/deskgate/deskgate/appliance/store"
	"github.com/deskgate/deskgate/netcfg"
)

// TestNetLoopDebounce: the net loop applies once at start, once per burst
// of relevant store changes (not once per change), never for guest-only
// changes, once per kick, and on its repair interval without changes.
func TestNetLoopDebounce(t *testing.T) {
	const debounce = 150 * time.Millisecond
	var applies atomic.Int32
	reasons := make(chan string, 100)
	apply := func(reason string) { applies.Add(1); reasons <- reason }
	feed := make(chan store.Change, 256)
	// A burst already queued when the loop starts: an import's worth.
	for i := range 200 {
		feed <- store.Change{Kind: store.KindMembership, ID: string(rune('a' + i%26)), Member: "m1"}
	}
	kick := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { netLoop(ctx, feed, kick, debounce, time.Hour, apply); close(done) }()
	next := func(what string) string {
		t.Helper()
		select {
		case r := <-reasons:
			return r
		case <-time.After(3 * time.Second):
			t.Fatalf("no apply for %s", what)
			return ""
		}
	}
	quiet := func(what string) {
		t.Helper()
		select {
		case r := <-reasons:
			t.Fatalf("%s: unexpected apply (%s)", what, r)
		case <-time.After(3 * debounce):
		}
	}
	if r := next("start"); r != "start" {
		t.Fatalf("first apply %q, want start", r)
	}
	if r := next("the burst"); r != "change" {
		t.Fatalf("apply for the burst: %q", r)
	}
	quiet("after the burst of 200 changes")

	// Bookings and visitors reach the gateway through Allow/Revoke.
	feed <- store.Change{Kind: store.KindBooking, ID: "b1"}
	feed <- store.Change{Kind: store.KindVisitor, ID: "v1"}
	quiet("booking and visitor changes")

	// A kick (a learned MAC) applies too, within the debounce.
	kicked := time.Now()
	kick <- struct{}{}
	if r := next("a kick"); r != "change" {
		t.Fatalf("apply for a kick: %q", r)
	}
	if d := time.Since(kicked); d > debounce+time.Second {
		t.Errorf("kick applied after %v", d)
	}
	cancel()
	<-done
	if n := applies.Load(); n != 3 {
		t.Errorf("%d applies, want 3 (start, burst, kick)", n)
	}

	// With no changes at all, the repair pass still re-derives.
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	go netLoop(ctx, make(chan store.Change), make(chan struct{}), debounce, 50*time.Millisecond, apply)
	next("start")
	if r := next("repair"); r != "repair" {
		t.Fatalf("apply without changes: %q, want repair", r)
	}
}

// TestDesiredNetShapingAndLeases: the state builder shapes a member network
// at its group's bandwidth (Downtown, mapped to the premium group: 100/20
// Mbit/s) and leaves an unmapped one unshaped; a static-IP member (Acme's
// Private Office) whose device MAC arrives in RADIUS accounting
// (Calling-Station-Id) gets a static DHCP lease for their pool address at
// that location, learning it kicks the net loop, and the lease is
// remembered across a restart; a member without a static IP gets none.
func TestDesiredNetShapingAndLeases(t *testing.T) {
	nas := startTestNAS(t)
	h := newHarness(t, harnessOpts{seed: true, extraYAML: radiusYAML(nas.port()) + "gateway: {trunk: eth1, wan: eth0}\n"})
	b, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(b), "static_pool: 10.100.3.0/24}", "static_pool: 10.100.3.0/24, group: premium}", 1)
	if y == string(b) {
		t.Fatal("harness config changed: Downtown's location line not found")
	}
	if err := os.WriteFile(h.cfgPath, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	app := h.start()
	h.waitImport(30 * time.Second)
	waitFor(t, 5*time.Second, "radius listening", func() bool { a, b := app.radius.srv.Addrs(); return len(a) > 0 && len(b) > 0 })
	_, acctAddrs := app.radius.srv.Addrs()
	down, _ := app.res.LocationID("Downtown")
	seed := h.sim.Seeded()
	member := func(role string) (id, email string) {
		for _, m := range seed.Members {
			if m.Role == role {
				return m.ID, m.Email
			}
		}
		t.Fatalf("no seeded member %s", role)
		return "", ""
	}
	acmeID, acmeEmail := member("acme-2")
	hotID, hotEmail := member("hotdesk-downtown-2")

	nc, err := app.desiredNet(app.Config())
	if err != nil {
		t.Fatal(err)
	}
	nets := map[string]netcfg.Network{}
	for _, n := range nc.Networks {
		nets[n.Name] = n
	}
	if n := nets["downtown-secure"]; n.DownKbps != 100_000 || n.UpKbps != 20_000 || n.Group != "premium" {
		t.Errorf("downtown-secure: group %q down %d up %d kbit/s, want premium 100000/20000", n.Group, n.DownKbps, n.UpKbps)
	}
	if n := nets["uptown-secure"]; n.DownKbps != 0 || n.UpKbps != 0 {
		t.Errorf("uptown-secure (no group) shaped at %d/%d kbit/s", n.DownKbps, n.UpKbps)
	}
	if len(nets["downtown-secure"].Leases) != 0 {
		t.Fatalf("leases before any device was seen: %v", nets["downtown-secure"].Leases)
	}
	if !strings.Contains(netcfg.Plan(nc), "down=100000kbit up=20000kbit") {
		t.Errorf("plan does not show the shaping:\n%s", netcfg.Plan(nc))
	}

	// The member's first login assigned an address from the pool.
	ip, err := app.radius.pool.Assign(t.Context(), down, acmeID, netip.MustParsePrefix("10.100.3.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	for len(app.net.kick) > 0 {
		<-app.net.kick
	}
	acct := func(user, session, mac string) {
		t.Helper()
		req := radius.New(radius.CodeAccountingRequest, []byte(nasSecret))
		rfc2865.UserName_SetString(req, user)
		rfc2866.AcctStatusType_Set(req, rfc2866.AcctStatusType_Value_Start)
		rfc2866.AcctSessionID_SetString(req, session)
		rfc2865.CallingStationID_SetString(req, mac)
		rfc2865.NASIdentifier_SetString(req, "downtown-ap")
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if resp, err := radius.Exchange(ctx, req, acctAddrs[0].String()); err != nil || resp.Code != radius.CodeAccountingResponse {
			t.Fatalf("accounting start: %v %v", err, resp)
		}
	}
	acct(acmeEmail, "s-acme", "02-AC-3E-00-00-02")
	acct(hotEmail, "s-hot", "02-40-70-00-00-01")
	waitFor(t, 3*time.Second, "the net loop kicked", func() bool { return len(app.net.kick) > 0 })

	nc, err = app.desiredNet(app.Config())
	if err != nil {
		t.Fatal(err)
	}
	var leases []netcfg.Lease
	for _, n := range nc.Networks {
		if n.Name == "downtown-secure" {
			leases = n.Leases
		} else if len(n.Leases) > 0 {
			t.Errorf("%s has leases %v", n.Name, n.Leases)
		}
	}
	if len(leases) != 1 || leases[0].MAC.String() != "02:ac:3e:00:00:02" || leases[0].IP != ip {
		t.Fatalf("downtown leases %v, want one: 02:ac:3e:00:00:02 → %s (the static member's; none for %s)", leases, ip, hotID)
	}
	conf := string(netcfg.DnsmasqConfig(nc, netcfg.DnsmasqOptions{}))
	if !strings.Contains(conf, "dhcp-host=02:ac:3e:00:00:02,set:downtown-secure,"+ip.String()) {
		t.Errorf("dnsmasq config lacks the static lease:\n%s", conf)
	}

	// Without a trunk the box routes the guest network only.
	noTrunk := *app.Config()
	noTrunk.Gateway.Trunk, noTrunk.Gateway.Enabled = "", true
	if nc, err := app.desiredNet(&noTrunk); err != nil {
		t.Error(err)
	} else if len(nc.Networks) != 0 {
		t.Errorf("without a trunk: %d member networks, want none", len(nc.Networks))
	}

	// The learned MAC is in the store: a restarted daemon still has it
	// before any new accounting arrives.
	app.net.leases = nil
	if err := app.loadLeases(); err != nil {
		t.Fatal(err)
	}
	if l, ok := app.net.leases[leaseKey(down, acmeID)]; !ok || l.MAC != "02:ac:3e:00:00:02" {
		t.Errorf("after reload from the store: %+v %v", l, ok)
	}
}
