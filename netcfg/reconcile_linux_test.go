package netcfg

import (
	"context"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// foreignState adds firewall rules and a qdisc netcfg does not own; they
// must survive Set, drift repair and CleanUp untouched.
func (g *guestLab) foreignState() {
	g.exec("gw", "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "2222", "-j", "ACCEPT")
	g.exec("gw", "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-p", "udp", "--dport", "9", "-j", "RETURN")
	g.exec("gw", "ip6tables", "-A", "FORWARD", "-p", "tcp", "--dport", "2222", "-j", "ACCEPT")
	g.exec("gw", "ip6tables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "2223", "-j", "RETURN")
	g.exec("gw", "tc", "qdisc", "add", "dev", "wan0", "root", "tbf", "rate", "900mbit", "burst", "64k", "latency", "50ms")
}

var classRE = regexp.MustCompile(`class htb (dd:[0-9a-f]+) `)

func TestReconcile(t *testing.T) {
	needRoot(t, "ipset")
	g := newGuestLab(t)
	g.foreignState()
	before := g.snapshot("gw")
	ctx := context.Background()

	g.cfg.Guest.DownKbps, g.cfg.Guest.UpKbps = 20000, 10000
	g.cfg.Clients = []GuestClient{client1(time.Time{}), client2()}
	log, logs := testLogger(t)
	const interval = time.Second
	m := g.manager(log, interval)

	// Applying twice changes nothing.
	if err := m.Set(ctx, g.cfg); err != nil {
		t.Fatal(err)
	}
	applied := g.snapshot("gw")
	if !strings.Contains(applied, "dg-forward") || !strings.Contains(applied, "class htb dd:") {
		t.Fatalf("Set did not program the gateway:\n%s", applied)
	}
	n := strings.Count(logs.String(), "netcfg applied")
	start := time.Now()
	if err := m.Set(ctx, g.cfg); err != nil {
		t.Fatal(err)
	}
	t.Logf("second Set (no change) took %v", time.Since(start))
	if d := cmp.Diff(applied, g.snapshot("gw")); d != "" {
		t.Fatalf("second Set changed state (-first +second):\n%s", d)
	}
	if got := strings.Count(logs.String(), "netcfg applied"); got != n {
		t.Fatalf("second Set reported changes")
	}
	if g.captive("c1", "http://"+inet4+"/") {
		t.Fatal("c1 captive although allowed")
	}

	// An invalid config changes nothing.
	bad := g.cfg.Clone()
	bad.Clients = append(bad.Clients, bad.Clients[0])
	if err := m.Set(ctx, bad); err == nil {
		t.Fatal("Set accepted a config listing a client twice")
	}
	// Allow then Revoke of a third client leaves no residue; while allowed
	// it has its own classes and filters.
	c3 := GuestClient{MAC: mustMAC("02:00:00:00:77:12"), IP4: netip.MustParseAddr("10.77.0.12"),
		IP6: []netip.Addr{netip.MustParseAddr("fd77::12")}, DownKbps: 3000}
	if err := m.Allow(ctx, c3); err != nil {
		t.Fatal(err)
	}
	for dev, want := range map[string]string{"guest0": "rate 3Mbit", "dg-ifb0": "rate 10Mbit"} {
		out := g.exec("gw", "tc", "class", "show", "dev", dev)
		if strings.Count(out, "class htb dd:") != 3 || !strings.Contains(out, want) {
			t.Fatalf("after Allow, %s classes:\n%s", dev, out)
		}
		if f := g.exec("gw", "tc", "filter", "show", "dev", dev); !strings.Contains(f, "0a4d000c/ffffffff") {
			t.Fatalf("after Allow, no filter for 10.77.0.12 on %s:\n%s", dev, f)
		}
	}
	if !strings.Contains(g.exec("gw", "ipset", "list", SetAllow6), "fd77::12") {
		t.Fatal("fd77::12 not in the allow set")
	}
	if err := m.Revoke(ctx, c3.MAC); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(applied, g.snapshot("gw")); d != "" {
		t.Fatalf("Allow+Revoke left residue (-before +after):\n%s", d)
	}

	// Drift: flushed chains, a removed jump and a deleted class come back
	// within the check interval.
	classes := classRE.FindAllStringSubmatch(g.exec("gw", "tc", "class", "show", "dev", "guest0"), -1)
	if len(classes) != 2 {
		t.Fatalf("want 2 guest classes, got %v", classes)
	}
	offset := len(logs.String())
	g.exec("gw", "iptables", "-F", "dg-forward")
	g.exec("gw", "ip6tables", "-t", "nat", "-F", "dg-captive")
	g.exec("gw", "iptables", "-D", "FORWARD", "-j", "dg-forward")
	g.exec("gw", "tc", "class", "del", "dev", "guest0", "classid", classes[0][1])
	g.exec("gw", "tc", "class", "del", "dev", "dg-ifb0", "classid", classes[1][1])
	damaged := time.Now()
	repairs := []string{"filter/dg-forward rewritten", "nat/dg-captive rewritten", "FORWARD -> dg-forward inserted",
		"guest0: class " + classes[0][1] + " added", "dg-ifb0: class " + classes[1][1] + " added"}
	for !allIn(logs.String()[offset:], repairs) && time.Since(damaged) < 3*interval {
		time.Sleep(10 * time.Millisecond)
	}
	d := time.Since(damaged)
	if d > interval+time.Second {
		t.Errorf("drift repaired after %v, want within the check interval %v (+1 s to repair)", d, interval)
	}
	if diff := cmp.Diff(applied, g.snapshot("gw")); diff != "" {
		t.Fatalf("drift not repaired after %v (-want +got):\n%s", d, diff)
	}
	t.Logf("drift (2 flushed chains, 1 removed jump, 2 deleted classes) repaired %v after the damage (interval %v)", d, interval)
	for _, what := range repairs {
		if !strings.Contains(logs.String()[offset:], what) {
			t.Errorf("repair of %q not logged", what)
		}
	}
	if !strings.Contains(logs.String(), "repaired drift") {
		t.Error(`no "repaired drift" log line`)
	}

	// Restart: the old manager stops, kernel state stays, a new manager
	// adopts it without changing anything and the client stays allowed.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if g.captive("c1", "http://"+inet4+"/") {
		t.Fatal("c1 captive after manager Close")
	}
	log2, logs2 := testLogger(t)
	m2 := g.manager(log2, -1)
	if err := m2.Set(ctx, g.cfg); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(applied, g.snapshot("gw")); d != "" {
		t.Fatalf("restart changed state (-before +after):\n%s", d)
	}
	if strings.Contains(logs2.String(), "netcfg applied") {
		t.Errorf("restarted manager changed something:\n%s", logs2.String())
	}
	if g.captive("c1", "http://"+inet4+"/") || g.captive("c1", "http://["+inet6+"]/") {
		t.Fatal("c1 captive after restart")
	}

	// Teardown restores the exact pre-netcfg state.
	m2.Close()
	if err := CleanUp(ctx, Options{NetNS: g.ns["gw"], Log: log2}); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(before, g.snapshot("gw")); d != "" {
		t.Fatalf("CleanUp left differences (-before +after):\n%s", d)
	}
	// And a second CleanUp is a no-op.
	if err := CleanUp(ctx, Options{NetNS: g.ns["gw"]}); err != nil {
		t.Fatal(err)
	}
}

func allIn(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestForeignRootQdisc: a root qdisc someone else added to the guest link
// is reported, not replaced, and survives CleanUp.
func TestForeignRootQdisc(t *testing.T) {
	needRoot(t)
	g := newGuestLab(t)
	g.exec("gw", "tc", "qdisc", "add", "dev", "guest0", "root", "handle", "7:", "tbf", "rate", "900mbit", "burst", "64k", "latency", "50ms")
	log, _ := testLogger(t)
	m := g.manager(log, -1)
	err := m.Set(context.Background(), g.cfg)
	if err == nil || !strings.Contains(err.Error(), "not netcfg's") {
		t.Fatalf("Set: %v, want a refusal to replace the foreign root qdisc", err)
	}
	// Everything else was still applied: the portal works, and Allow of a
	// client with limits succeeds (shaping is retried by the drift check).
	if !g.captive("c1", "http://"+inet4+"/") {
		t.Fatal("not captive")
	}
	c1 := client1(time.Time{})
	c1.DownKbps = 1000
	if err := m.Allow(context.Background(), c1); err != nil {
		t.Fatalf("Allow with shaping refused: %v", err)
	}
	if g.captive("c1", "http://"+inet4+"/") {
		t.Fatal("captive after Allow")
	}
	m.Close()
	if err := CleanUp(context.Background(), Options{NetNS: g.ns["gw"]}); err != nil {
		t.Fatal(err)
	}
	if out := g.exec("gw", "tc", "qdisc", "show", "dev", "guest0"); !strings.Contains(out, "qdisc tbf 7: root") {
		t.Fatalf("foreign qdisc gone:\n%s", out)
	}
}
