package netcfg

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
)

// TestNeighbourMACv6: NeighbourMAC finds an IPv6 guest's MAC in the kernel's
// neighbour table (the ARP table it reads for IPv4 has none).
func TestNeighbourMACv6(t *testing.T) {
	needRoot(t)
	ns := fmt.Sprintf("dgn6-%04x", rand.IntN(0xffff))
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
	run(t, "ip", "-n", ns, "link", "set", "v0", "up")
	run(t, "ip", "-n", ns, "-6", "neigh", "add", "fd00::5", "lladdr", "02:11:22:33:44:55", "dev", "v0", "nud", "permanent")

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		t.Fatal(err)
	}
	defer netns.Set(orig)
	mac, ok := NeighbourMAC(netip.MustParseAddr("fd00::5"))
	if !ok || mac.String() != "02:11:22:33:44:55" {
		t.Fatalf("neighbour fd00::5: %v %v", mac, ok)
	}
	if _, ok := NeighbourMAC(netip.MustParseAddr("fd00::6")); ok {
		t.Fatal("found a MAC for an address with no neighbour entry")
	}
}
