//go:build !linux

package netcfg

import (
	"net"
	"net/netip"
)

// NeighbourMAC finds nothing: the neighbour table is read on Linux only.
func NeighbourMAC(ip netip.Addr) (net.HardwareAddr, bool) { return nil, false }
