package netcfg

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// TestIPMACGuest runs inside the VM (Debian's kernel has ipset hash:ip,mac,
// unlike the test host's): the manager detects hash:ip,mac, keeps the allow
// sets as address+MAC pairs (a client whose MAC changes for the same
// address is re-bound, a revoked one removed), and destroys the IP-only
// allow sets left from a kernel without it.
func TestIPMACGuest(t *testing.T) {
	if os.Getenv("DG_VMTEST_GUEST") != "1" {
		t.Skip("runs inside the qemu VM started by TestVLANsUnderQEMU (scripts/vmtest/run.sh)")
	}
	ns := &nsRunner{target: -1}
	h, err := ns.handle()
	if err != nil {
		t.Fatal(err)
	}
	if !probeIPMAC(h) {
		t.Fatal("hash:ip,mac not detected on a kernel that has it")
	}
	if _, err := h.IpsetList("dg-probe-ipmac"); err == nil {
		t.Fatal("the probe set was left behind")
	}
	// An IP-only set as a kernel without hash:ip,mac would have left it.
	if err := h.IpsetCreate(SetAllow4, "hash:ip", netlink.IpsetCreateOptions{}); err != nil {
		t.Fatal(err)
	}
	m := &manager{log: slog.New(slog.NewTextHandler(os.Stdout, nil)), nl: h, ns: ns, ipmac: true}
	ctx := context.Background()
	note := func(string, ...any) {}
	c := &Config{}
	entries := func(name string) []string {
		t.Helper()
		res, err := h.IpsetList(name)
		if err != nil {
			t.Fatalf("ipset list %s: %v", name, err)
		}
		if res.TypeName != "hash:ip,mac" {
			t.Fatalf("%s is %s, want hash:ip,mac", name, res.TypeName)
		}
		var out []string
		for _, e := range res.Entries {
			a, _ := netip.AddrFromSlice(e.IP)
			out = append(out, a.Unmap().String()+"/"+e.MAC.String())
		}
		slices.Sort(out)
		return out
	}
	c1, c2 := client1(time.Time{}), client2()
	clients := map[string]GuestClient{c1.MAC.String(): c1, c2.MAC.String(): c2}
	if err := m.applySets(ctx, c, clients, note); err != nil {
		t.Fatal(err)
	}
	if got, want := entries(SetAllowMAC4), []string{"10.77.0.10/" + c1MAC.String(), "10.77.0.11/" + c2MAC.String()}; !slices.Equal(got, want) {
		t.Fatalf("%s: %v, want %v", SetAllowMAC4, got, want)
	}
	if got := entries(SetAllowMAC6); len(got) != 2 {
		t.Fatalf("%s: %v", SetAllowMAC6, got)
	}
	// c2 takes c1's address with its own MAC; c1 is gone: the set holds
	// exactly the new pair.
	c2.IP4 = c1.IP4
	if err := m.applySets(ctx, c, map[string]GuestClient{c2.MAC.String(): c2}, note); err != nil {
		t.Fatal(err)
	}
	if got, want := entries(SetAllowMAC4), []string{"10.77.0.10/" + c2MAC.String()}; !slices.Equal(got, want) {
		t.Fatalf("after re-binding: %v, want %v", got, want)
	}
	if err := m.setDel(c2.IP4, c2.MAC); err != nil {
		t.Fatal(err)
	}
	if got := entries(SetAllowMAC4); len(got) != 0 {
		t.Fatalf("after revoke: %v", got)
	}
	if err := m.dropGardenSets(ctx, c, nil, note); err != nil {
		t.Fatal(err)
	}
	if _, err := h.IpsetList(SetAllow4); err == nil {
		t.Fatalf("the IP-only %s was not destroyed", SetAllow4)
	}
}
