package netcfg

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestVLANsUnderQEMU boots Debian's kernel (which has 802.1Q and ipset
// hash:ip,mac, unlike the test host's) under qemu and runs TestVLANGuest
// and TestIPMACGuest inside it.
func TestVLANsUnderQEMU(t *testing.T) {
	needRoot(t, "qemu-system-x86_64", "cpio", "busybox", "go")
	if m, _ := filepath.Glob("/boot/vmlinuz-*-amd64"); len(m) == 0 {
		unavailable(t, "no /boot/vmlinuz-*-amd64 (apt-get install linux-image-amd64)")
	}
	if testing.Short() {
		t.Skip("boots a VM; skipped with -short")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "../scripts/vmtest/run.sh", "^(TestVLANGuest|TestIPMACGuest)$").CombinedOutput()
	var result string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "DGVMTEST: ") {
			result = line
		}
		if strings.Contains(line, "vlan_linux_test.go") || strings.Contains(line, "ipmac_linux_test.go") || strings.HasPrefix(line, "--- ") {
			t.Log("vm: " + strings.TrimSpace(line))
		}
	}
	t.Logf("%s (VM test took %v including build and boot)", result, time.Since(start).Round(time.Millisecond))
	if err != nil || result != "DGVMTEST: PASS" {
		t.Fatalf("VM test failed: %v\n%s", err, out)
	}
}

// TestVLANGuest runs inside the VM: it creates, re-addresses, repairs and
// removes VLAN subinterfaces with the manager's link reconciler.
func TestVLANGuest(t *testing.T) {
	if os.Getenv("DG_VMTEST_GUEST") != "1" {
		t.Skip("runs inside the qemu VM started by TestVLANsUnderQEMU (scripts/vmtest/run.sh)")
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "trunk0"}}); err != nil {
		t.Fatalf("dummy trunk: %v", err)
	}
	trunk, _ := h.LinkByName("trunk0")
	h.LinkSetUp(trunk)
	m := &manager{log: slog.New(slog.NewTextHandler(os.Stdout, nil)), nl: h, ns: &nsRunner{target: -1}}
	ctx := context.Background()
	apply := func(c *Config) []string {
		t.Helper()
		var notes []string
		if err := m.applyLinks(ctx, c, nil, func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }); err != nil {
			t.Fatalf("applyLinks: %v", err)
		}
		return notes
	}
	check := func(name string, vid int, addrs ...string) {
		t.Helper()
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		v, ok := l.(*netlink.Vlan)
		if !ok || v.VlanId != vid || v.ParentIndex != trunk.Attrs().Index || l.Attrs().Flags&net.FlagUp == 0 {
			t.Fatalf("%s: got %T id %d parent %d up %v, want vlan %d on trunk0, up", name, l, v.VlanId, v.ParentIndex, l.Attrs().Flags&net.FlagUp != 0, vid)
		}
		have, _ := h.AddrList(l, netlink.FAMILY_ALL)
		var got []string
		for _, a := range have {
			if p, ok := ipNetPrefix(a.IPNet); ok && !p.Addr().IsLinkLocalUnicast() {
				got = append(got, p.String())
			}
		}
		slices.Sort(got)
		slices.Sort(addrs)
		if !slices.Equal(got, addrs) {
			t.Fatalf("%s addresses %v, want %v", name, got, addrs)
		}
	}
	gone := func(name string) {
		t.Helper()
		if _, err := h.LinkByName(name); err == nil {
			t.Fatalf("%s still exists", name)
		}
	}
	cfg := &Config{Trunk: "trunk0", Networks: []Network{
		{Name: "staff", VLAN: 100, Addr4: netip.MustParsePrefix("10.100.0.1/24"), Addr6: netip.MustParsePrefix("fd00:100::1/64")},
		{Name: "events", VLAN: 200, Addr4: netip.MustParsePrefix("10.200.0.1/24")},
	}, Guest: GuestNetwork{VLAN: 300, Addr4: netip.MustParsePrefix("10.30.0.1/24")}}

	t.Logf("create: %v", apply(cfg))
	check("dg-v100", 100, "10.100.0.1/24", "fd00:100::1/64")
	check("dg-v200", 200, "10.200.0.1/24")
	check("dg-v300", 300, "10.30.0.1/24")
	if n := apply(cfg); len(n) != 0 {
		t.Fatalf("second apply changed %v", n)
	}

	cfg.Networks[0].Addr4 = netip.MustParsePrefix("10.101.0.1/24")
	cfg.Networks[0].Addr6 = netip.MustParsePrefix("fd00:101::1/64")
	cfg.Networks[1].VLAN = 201
	t.Logf("re-address: %v", apply(cfg))
	check("dg-v100", 100, "10.101.0.1/24", "fd00:101::1/64")
	gone("dg-v200")
	check("dg-v201", 201, "10.200.0.1/24")

	// Per-network (group) shaping on a VLAN link: HTB with a fair-queue
	// leaf for download, ingress -> IFB for upload; limits change live.
	m.shape = newShaper(m)
	shape := func(c *Config) []string {
		t.Helper()
		var notes []string
		if err := m.shape.apply(ctx, c, nil, func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }); err != nil {
			t.Fatalf("shape: %v", err)
		}
		return notes
	}
	rate := func(link string) uint64 {
		t.Helper()
		l, err := h.LinkByName(link)
		if err != nil {
			t.Fatalf("%s: %v", link, err)
		}
		cs, _ := h.ClassList(l, 0)
		for _, c := range cs {
			if hc, ok := c.(*netlink.HtbClass); ok && hc.Handle == netlink.MakeHandle(OwnedMajor, 1) {
				return hc.Rate * 8 / 1000
			}
		}
		t.Fatalf("%s: no class dd:1", link)
		return 0
	}
	cfg.Networks[0].DownKbps, cfg.Networks[0].UpKbps = 30000, 10000
	t.Logf("shape: %v", shape(cfg))
	if d, u := rate("dg-v100"), rate(memberIFB("dg-v100")); d != 30000 || u != 10000 {
		t.Fatalf("rates %d/%d kbit, want 30000/10000", d, u)
	}
	t.Logf("leaf qdisc per class: %q", m.shape.leaf)
	if m.shape.leaf != "fq_codel" {
		t.Errorf("leaf %q, want fq_codel on this kernel", m.shape.leaf)
	}
	vl, _ := h.LinkByName("dg-v100")
	qs, _ := h.QdiscList(vl)
	leaf := false
	for _, q := range qs {
		leaf = leaf || q.Type() == m.shape.leaf && q.Attrs().Parent == netlink.MakeHandle(OwnedMajor, 1)
	}
	if !leaf {
		t.Errorf("no %s leaf under dd:1: %v", m.shape.leaf, qs)
	}
	if n := shape(cfg); len(n) != 0 {
		t.Fatalf("second shape changed %v", n)
	}
	cfg.Networks[0].DownKbps = 50000
	t.Logf("live change: %v", shape(cfg))
	if d := rate("dg-v100"); d != 50000 {
		t.Fatalf("download %d kbit after change, want 50000", d)
	}
	cfg.Networks[0].DownKbps, cfg.Networks[0].UpKbps = 0, 0
	t.Logf("unshape: %v", shape(cfg))
	gone(memberIFB("dg-v100"))

	// Drift: a deleted VLAN and a downed one are repaired.
	l, _ := h.LinkByName("dg-v100")
	h.LinkDel(l)
	l, _ = h.LinkByName("dg-v201")
	h.LinkSetDown(l)
	t.Logf("repair: %v", apply(cfg))
	check("dg-v100", 100, "10.101.0.1/24", "fd00:101::1/64")
	check("dg-v201", 201, "10.200.0.1/24")

	t.Logf("remove: %v", apply(&Config{Trunk: "trunk0"}))
	for _, n := range []string{"dg-v100", "dg-v201", "dg-v300"} {
		gone(n)
	}
	if _, err := h.LinkByName("trunk0"); err != nil {
		t.Fatal("trunk0 removed")
	}
}
