package netcfg

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// NeighbourMAC looks an IPv6 address up in the kernel's neighbour table
// (the ARP table, which the portal reads for IPv4, has no IPv6 entries).
// Incomplete and failed entries do not count.
func NeighbourMAC(ip netip.Addr) (net.HardwareAddr, bool) {
	neighs, err := netlink.NeighList(0, netlink.FAMILY_V6)
	if err != nil {
		return nil, false
	}
	for _, n := range neighs {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a == ip && len(n.HardwareAddr) == 6 &&
			n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) == 0 {
			return n.HardwareAddr, true
		}
	}
	return nil, false
}
