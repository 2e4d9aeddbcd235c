package netcfg

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strings"
)

// Traffic control ownership markers.
const (
	// OwnedMajor is the major handle of every HTB root qdisc netcfg adds
	// (shown by tc as "dd:").
	OwnedMajor = 0xdd
	// OwnedPrio is the priority of the ingress filters netcfg adds to
	// redirect uploads to an IFB device.
	OwnedPrio = 0xdd
)

// tcDev is the desired HTB tree on one device.
type tcDev struct {
	link         string
	defaultMinor uint16            // HTB default class; 0 sends unclassified traffic unshaped
	classes      map[uint16]uint64 // minor -> rate in bit/s
	matchSrc     bool              // client filters match the source (upload) address
	clients      map[netip.Addr]uint16
	guest        bool // carries the per-client u32 hash tables
}

// tcPlan is the desired shaping state.
type tcPlan struct {
	devs     []tcDev
	ingress  map[string]string // link -> IFB it redirects to
	ifbs     []string          // IFB links to create
	guestDev string
}

func memberIFB(link string) string {
	n := "dg-u-" + strings.TrimPrefix(link, Prefix)
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}

// planTC derives the shaping state. minors assigns each guest client (by
// MAC) its class minor; clients without a limit get no class.
func planTC(c *Config, clients map[string]GuestClient, minors map[string]uint16) tcPlan {
	p := tcPlan{ingress: map[string]string{}}
	if gl := c.GuestLink(); gl != "" {
		down := tcDev{link: gl, classes: map[uint16]uint64{}, clients: map[netip.Addr]uint16{}, guest: true}
		up := tcDev{link: IFBLink, classes: map[uint16]uint64{}, clients: map[netip.Addr]uint16{}, matchSrc: true, guest: true}
		for key, cl := range clients {
			d, u := cl.rates(&c.Guest)
			minor := minors[key]
			if minor == 0 {
				continue
			}
			if d > 0 {
				down.classes[minor] = uint64(d) * 1000
				for _, a := range clientAddrs(cl) {
					down.clients[a] = minor
				}
			}
			if u > 0 {
				up.classes[minor] = uint64(u) * 1000
				for _, a := range clientAddrs(cl) {
					up.clients[a] = minor
				}
			}
		}
		p.devs = append(p.devs, down, up)
		p.ingress[gl] = IFBLink
		p.ifbs = append(p.ifbs, IFBLink)
		p.guestDev = gl
	}
	for _, n := range c.Networks {
		l := n.Link(c)
		if n.DownKbps > 0 {
			p.devs = append(p.devs, tcDev{link: l, defaultMinor: 1, classes: map[uint16]uint64{1: uint64(n.DownKbps) * 1000}})
		}
		if n.UpKbps > 0 {
			ifb := memberIFB(l)
			p.devs = append(p.devs, tcDev{link: ifb, defaultMinor: 1, classes: map[uint16]uint64{1: uint64(n.UpKbps) * 1000}})
			p.ingress[l] = ifb
			p.ifbs = append(p.ifbs, ifb)
		}
	}
	return p
}

// assignMinors gives every client a class minor, keeping earlier
// assignments. A client's preferred minor is the low 16 bits of its IPv4
// address (unique within a /16 guest subnet), else a hash of its MAC.
func assignMinors(clients map[string]GuestClient, prev map[string]uint16) map[string]uint16 {
	out := map[string]uint16{}
	used := map[uint16]bool{}
	keys := make([]string, 0, len(clients))
	for k := range clients {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if m, ok := prev[k]; ok && m != 0 && !used[m] {
			out[k] = m
			used[m] = true
		}
	}
	for _, k := range keys {
		if _, ok := out[k]; ok {
			continue
		}
		m := pickMinor(clients[k], used)
		out[k] = m
		used[m] = true
	}
	return out
}

func preferredMinor(cl GuestClient) uint16 {
	if cl.IP4.IsValid() {
		b := cl.IP4.As4()
		if m := uint16(b[2])<<8 | uint16(b[3]); m >= 0x10 && m < 0xfff0 {
			return m
		}
	}
	h := fnv.New32a()
	h.Write(cl.MAC)
	return uint16(h.Sum32()%0xffe0) + 0x10
}

func pickMinor(cl GuestClient, used map[uint16]bool) uint16 {
	m := preferredMinor(cl)
	for used[m] {
		m++
		if m >= 0xfff0 {
			m = 0x10
		}
	}
	return m
}

// String renders the plan for golden tests and `deskgate net plan`.
func (p tcPlan) String() string {
	var b strings.Builder
	for l, ifb := range sortedMap(p.ingress) {
		fmt.Fprintf(&b, "tc ingress %s -> %s\n", l, ifb)
	}
	for _, d := range p.devs {
		fmt.Fprintf(&b, "tc htb %s default %x\n", d.link, d.defaultMinor)
		minors := make([]uint16, 0, len(d.classes))
		for m := range d.classes {
			minors = append(minors, m)
		}
		slices.Sort(minors)
		for _, m := range minors {
			fmt.Fprintf(&b, "  class dd:%x rate %dkbit\n", m, d.classes[m]/1000)
		}
		addrs := make([]netip.Addr, 0, len(d.clients))
		for a := range d.clients {
			addrs = append(addrs, a)
		}
		slices.SortFunc(addrs, netip.Addr.Compare)
		dir := "dst"
		if d.matchSrc {
			dir = "src"
		}
		for _, a := range addrs {
			fmt.Fprintf(&b, "  filter %s %s -> dd:%x\n", dir, a, d.clients[a])
		}
	}
	return b.String()
}

// sortedMap iterates a string map in key order.
func sortedMap(m map[string]string) func(func(string, string) bool) {
	return func(yield func(string, string) bool) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if !yield(k, m[k]) {
				return
			}
		}
	}
}

// clientAddrs lists a client's IPv4 and IPv6 addresses.
func clientAddrs(cl GuestClient) []netip.Addr {
	var out []netip.Addr
	if cl.IP4.IsValid() {
		out = append(out, cl.IP4)
	}
	return append(out, cl.IP6...)
}
