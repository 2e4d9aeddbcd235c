package netcfg

import (
	"context"
	"flag"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, d)
	}
}

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// location is a typical location: two member VLANs and a guest VLAN.
func location() *Config {
	return &Config{
		Trunk: "eth1",
		WAN:   "eth0",
		Networks: []Network{
			{Name: "members", VLAN: 10, Addr4: netip.MustParsePrefix("10.10.0.1/22"), Addr6: netip.MustParsePrefix("fd10::1/64"),
				Group: "standard", DownKbps: 200000, UpKbps: 50000,
				Leases: []Lease{{MAC: mac("02:00:00:00:10:05"), IP: netip.MustParseAddr("10.10.0.5"), Name: "Printer 2F"}}},
			{Name: "dedicated", VLAN: 20, Addr4: netip.MustParsePrefix("10.20.0.1/24"), Group: "premium"},
		},
		Guest: GuestNetwork{
			VLAN:              30,
			Addr4:             netip.MustParsePrefix("10.30.0.1/16"),
			Addr6:             netip.MustParsePrefix("fd30::1/64"),
			PortalAddr4:       netip.MustParseAddrPort("10.30.0.1:8080"),
			PortalAddr6:       netip.MustParseAddrPort("[fd30::1]:8080"),
			CaptiveAPI:        "https://portal.example/api/captive",
			WalledGarden:      []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")},
			WalledGardenHosts: []string{"officernd.com", "stripe.com"},
			DownKbps:          20000, UpKbps: 5000,
		},
		Clients: []GuestClient{
			{MAC: mac("02:00:00:00:30:20"), IP4: netip.MustParseAddr("10.30.1.32"), IP6: []netip.Addr{netip.MustParseAddr("fd30::20")},
				Until: time.Date(2026, 11, 27, 18, 0, 0, 0, time.UTC)},
			{MAC: mac("02:00:00:00:30:21"), IP4: netip.MustParseAddr("10.30.1.33"), DownKbps: 50000},
		},
	}
}

func TestPlanGolden(t *testing.T) {
	golden(t, "location-plan", Plan(location()))
	golden(t, "empty-plan", Plan(&Config{}))
}

func TestStringIsStable(t *testing.T) {
	a, b := location(), location()
	b.Networks[0], b.Networks[1] = b.Networks[1], b.Networks[0]
	b.Clients[0], b.Clients[1] = b.Clients[1], b.Clients[0]
	if a.String() != b.String() {
		t.Fatal("String depends on slice order")
	}
	if !strings.Contains(a.String(), "network members link=dg-v10 vlan=10 parent=eth1") {
		t.Fatalf("unexpected plan:\n%s", a)
	}
}

func TestValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(*Config)
		want string
	}{
		"ok":            {func(*Config) {}, ""},
		"dup vlan":      {func(c *Config) { c.Networks[1].VLAN = 10 }, "vlan 10 already used"},
		"guest vlan":    {func(c *Config) { c.Guest.VLAN = 20 }, "vlan 20 already used"},
		"vlan range":    {func(c *Config) { c.Networks[0].VLAN = 4095 }, "out of range"},
		"family":        {func(c *Config) { c.Networks[0].Addr4 = netip.MustParsePrefix("fd00::1/64") }, "wrong address family"},
		"no ip":         {func(c *Config) { c.Clients[1].IP4 = netip.Addr{} }, "no IP address"},
		"bad mac":       {func(c *Config) { c.Clients[1].MAC = nil }, "6-byte MAC"},
		"dup client":    {func(c *Config) { c.Clients[1].MAC = c.Clients[0].MAC }, "listed twice"},
		"neg rate":      {func(c *Config) { c.Guest.DownKbps = -1 }, "negative rate"},
		"portal family": {func(c *Config) { c.Guest.PortalAddr4 = netip.MustParseAddrPort("[fd30::1]:80") }, "not IPv4"},
		"garden host":   {func(c *Config) { c.Guest.WalledGardenHosts = []string{"a/b"} }, "invalid walled garden host"},
		"no trunk":      {func(c *Config) { c.Trunk = "" }, "no parent link and no trunk"},
		"link twice":    {func(c *Config) { c.Networks[1].VLAN = 0; c.Networks[1].Parent = "eth0" }, "already used by"},
		"clients w/o guest": {func(c *Config) {
			c.Guest = GuestNetwork{}
		}, "guest clients without a guest network"},
	} {
		t.Run(name, func(t *testing.T) {
			c := location()
			tc.edit(c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestFake(t *testing.T) {
	f := NewFake()
	ctx := context.Background()
	cl := GuestClient{MAC: mac("02:00:00:00:30:99"), IP4: netip.MustParseAddr("10.30.2.2")}
	if err := f.Allow(ctx, cl); err != ErrNoConfig {
		t.Fatalf("Allow before Set: %v, want ErrNoConfig", err)
	}
	bad := location()
	bad.Networks[1].VLAN = 10
	if err := f.Set(ctx, bad); err == nil {
		t.Fatal("invalid config accepted")
	}
	if err := f.Set(ctx, location()); err != nil {
		t.Fatal(err)
	}
	if err := f.Allow(ctx, cl); err != nil {
		t.Fatal(err)
	}
	if !f.Allowed(cl.MAC) {
		t.Fatal("not allowed after Allow")
	}
	if err := f.Revoke(ctx, mac("02:00:00:00:30:20")); err != nil {
		t.Fatal(err)
	}
	golden(t, "fake-after-allow-revoke", f.String())
	if got := strings.Join(f.Calls(), ";"); got != "set;allow 02:00:00:00:30:99;revoke 02:00:00:00:30:20" {
		t.Fatalf("calls %q", got)
	}
}

func TestDnsmasqConfig(t *testing.T) {
	data := DnsmasqConfig(location(), DnsmasqOptions{
		LeaseFile: "/var/lib/deskgate/dnsmasq.leases",
		Upstream:  []netip.Addr{netip.MustParseAddr("9.9.9.9")},
		Hosts:     map[string][]netip.Addr{"portal.example": {netip.MustParseAddr("10.30.0.1"), netip.MustParseAddr("fd30::1")}},
	})
	golden(t, "location-dnsmasq", string(data))
	for _, want := range []string{
		`dhcp-option=tag:guest,114,"https://portal.example/api/captive"`,
		"dhcp-host=02:00:00:00:10:05,set:members,10.10.0.5,printer-2f",
		"dhcp-range=set:guest,10.30.0.16,10.30.255.254,255.255.0.0,1h",
		"ipset=/officernd.com/stripe.com/dg-garden4,dg-garden6",
	} {
		if !strings.Contains(string(data), want) {
			t.Errorf("config lacks %q", want)
		}
	}

	// Restart only on change: the file is rewritten only when it differs.
	path := filepath.Join(t.TempDir(), "dnsmasq.conf")
	for i, want := range []bool{true, false} {
		changed, err := WriteFileIfChanged(path, data)
		if err != nil || changed != want {
			t.Fatalf("write %d: changed=%v err=%v, want changed=%v", i, changed, err, want)
		}
	}
	c := location()
	c.Networks[0].Leases = nil
	if changed, _ := WriteFileIfChanged(path, DnsmasqConfig(c, DnsmasqOptions{})); !changed {
		t.Fatal("changed config not written")
	}
}

func TestDrift(t *testing.T) {
	r := buildRules(location(), false)
	var fwd *chain
	for _, ch := range r.chains {
		if ch.name == "dg-forward" {
			fwd = ch
		}
	}
	save := parseSave(":dg-forward - [0:0]\n-A dg-forward -i dg-v30 -m comment --comment \"" + fwd.tags()[0] + "\" -j ACCEPT\n-A dg-forward -j ACCEPT\n")
	got := listedTags(save.rules["dg-forward"])
	if len(got) != 2 || got[0] != fwd.tags()[0] || got[1] != "?" {
		t.Fatalf("tags %v", got)
	}
}

func TestAssignMinorsStable(t *testing.T) {
	clients := map[string]GuestClient{}
	for _, cl := range location().Clients {
		clients[cl.MAC.String()] = cl
	}
	a := assignMinors(clients, nil)
	if a["02:00:00:00:30:20"] != 0x0120 {
		t.Fatalf("minor %x, want 120 (low 16 bits of 10.30.1.32)", a["02:00:00:00:30:20"])
	}
	// A new client whose preferred minor is taken does not move the others.
	clients["02:00:00:00:30:22"] = GuestClient{MAC: mac("02:00:00:00:30:22"), IP4: netip.MustParseAddr("10.31.1.32")}
	b := assignMinors(clients, a)
	for k, m := range a {
		if b[k] != m {
			t.Fatalf("%s moved from %x to %x", k, m, b[k])
		}
	}
	if b["02:00:00:00:30:22"] == 0x0120 {
		t.Fatal("duplicate minor")
	}
}

// TestRulesBindMACs: without hash:ip,mac each allowed address is bound to
// its client's MAC in the dg-bind chains (nat: others go to dg-captive;
// filter: only the bound pair is forwarded); with hash:ip,mac the allow
// set matches address and MAC ("src,src") and there is no dg-bind chain.
func TestRulesBindMACs(t *testing.T) {
	c := location()
	r := buildRules(c, false)
	fallback := r.String()
	for _, want := range []string{
		"-t nat -A dg-bind -s 10.30.1.32 -m mac --mac-source 02:00:00:00:30:20 -j RETURN\n",
		"-t nat -A dg-bind -j dg-captive\n",
		"-t filter -A dg-bind -s 10.30.1.32 -m mac --mac-source 02:00:00:00:30:20 -j ACCEPT\n",
		"-t nat -A dg-prerouting -i dg-v30 -m set --match-set dg-allow4 src -j dg-bind\n",
		"-t filter -A dg-forward -i dg-v30 -o eth0 -m set --match-set dg-allow4 src -j dg-bind\n",
	} {
		if !strings.Contains(fallback, want) {
			t.Errorf("rules without hash:ip,mac lack %q:\n%s", want, fallback)
		}
	}
	rm := buildRulesMode(c, false, true)
	ipmac := rm.String()
	for _, want := range []string{
		"-t nat -A dg-prerouting -i dg-v30 -m set ! --match-set dg-allowm4 src,src -j dg-captive\n",
		"-t filter -A dg-forward -i dg-v30 -o eth0 -m set --match-set dg-allowm4 src,src -j ACCEPT\n",
	} {
		if !strings.Contains(ipmac, want) {
			t.Errorf("rules with hash:ip,mac lack %q:\n%s", want, ipmac)
		}
	}
	if strings.Contains(ipmac, "dg-bind") || strings.Contains(ipmac, "dg-allow4 ") {
		t.Errorf("rules with hash:ip,mac still use dg-bind or the IP-only set:\n%s", ipmac)
	}
}
