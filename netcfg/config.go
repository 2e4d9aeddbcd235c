// Package netcfg turns a declared desired network state into kernel state on
// the gateway: VLAN subinterfaces and their addresses (netlink), captive
// interception, allow-lists and NAT (iptables, ip6tables and ipsets), and
// per-client and per-network bandwidth shaping (tc: HTB, IFB and u32).
//
// The desired state is a plain [Config]; a [Manager] applies it
// idempotently with Set, changes single guest clients in O(1) with Allow and
// Revoke, repairs drift on a timer and expires clients on time. netcfg owns
// only what it created: iptables chains and ipsets named "dg-…" (each chain
// reached by one jump from a built-in chain), links named "dg-…", HTB root
// qdiscs with the handle dd: and ingress filters with the priority
// [OwnedPrio]. [CleanUp] removes exactly those. It also reads the kernel's
// IPv6 neighbour table for the captive portal's client lookup
// ([NeighbourMAC]).
//
// netcfg is a leaf package: it imports no other deskgate package. Only the
// appliance composition root is meant to import it; its tests use [NewFake].
package netcfg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Config is the desired network state of one gateway. It is plain data; the
// zero value describes a gateway that routes nothing.
type Config struct {
	Trunk    string    // trunk interface carrying the member (and guest) VLANs
	WAN      string    // uplink interface; traffic leaving it is masqueraded
	Networks []Network // member networks, routed without interception
	Guest    GuestNetwork
	Clients  []GuestClient // guests allowed through the captive portal
}

// Network is a member network: a VLAN subinterface of Parent (or of the
// trunk) with gateway addresses and a bandwidth limit for its group.
type Network struct {
	Name   string
	VLAN   int    // 802.1Q id 1–4094; 0 means Parent is used untagged
	Parent string // link carrying the VLAN; empty means Config.Trunk
	Addr4  netip.Prefix
	Addr6  netip.Prefix
	Group  string
	// DownKbps and UpKbps limit the whole network (its group's limit);
	// 0 means unlimited.
	DownKbps, UpKbps int
	Leases           []Lease // static DHCP leases (members with static IPs)
}

// Lease is a static DHCP lease.
type Lease struct {
	MAC  net.HardwareAddr
	IP   netip.Addr
	Name string
}

// GuestNetwork is the captive guest network.
type GuestNetwork struct {
	Interface string // existing link; ignored when VLAN is set
	VLAN      int    // when non-zero the guest network is dg-v<VLAN> on the trunk
	Addr4     netip.Prefix
	Addr6     netip.Prefix
	// PortalAddr4 and PortalAddr6 are where intercepted HTTP goes (DNAT).
	PortalAddr4 netip.AddrPort
	PortalAddr6 netip.AddrPort
	// CaptiveAPI is the RFC 8908 API URI sent in DHCP option 114.
	CaptiveAPI   string
	WalledGarden []netip.Prefix // reachable before login
	// WalledGardenHosts are domain names reachable before login: the
	// gateway's dnsmasq adds the addresses it resolves for them (and their
	// subdomains) to the ipsets dg-garden4/dg-garden6.
	WalledGardenHosts []string
	// DownKbps and UpKbps are the per-client defaults; 0 means unlimited.
	DownKbps, UpKbps int
}

// GuestClient is a guest allowed through the portal until Until.
type GuestClient struct {
	MAC   net.HardwareAddr
	IP4   netip.Addr
	IP6   []netip.Addr
	Until time.Time // zero means no expiry
	// DownKbps and UpKbps override the guest network defaults when non-zero.
	DownKbps, UpKbps int
}

// GuestLink returns the name of the guest network's link.
func (c *Config) GuestLink() string {
	if c.Guest.VLAN > 0 {
		return vlanLinkName(c.Guest.VLAN)
	}
	return c.Guest.Interface
}

// Link returns the name of the network's link.
func (n *Network) Link(c *Config) string {
	if n.VLAN > 0 {
		return vlanLinkName(n.VLAN)
	}
	return n.parent(c)
}

func (n *Network) parent(c *Config) string {
	if n.Parent != "" {
		return n.Parent
	}
	return c.Trunk
}

func vlanLinkName(vid int) string { return fmt.Sprintf("dg-v%d", vid) }

// rates returns the client's effective limits in kbit/s.
func (g *GuestClient) rates(n *GuestNetwork) (down, up int) {
	down, up = g.DownKbps, g.UpKbps
	if down == 0 {
		down = n.DownKbps
	}
	if up == 0 {
		up = n.UpKbps
	}
	return down, up
}

// Validate reports every problem that would make the config impossible
// to apply. Set calls it and changes nothing when it fails.
func (c *Config) Validate() error {
	var errs []error
	vlans := map[int]string{}
	links := map[string]string{}
	useLink := func(who, link string) {
		if link == "" {
			return
		}
		if prev, ok := links[link]; ok {
			errs = append(errs, fmt.Errorf("%s: link %s already used by %s", who, link, prev))
			return
		}
		links[link] = who
	}
	for i := range c.Networks {
		n := &c.Networks[i]
		who := fmt.Sprintf("network %q", n.Name)
		if n.Name == "" {
			errs = append(errs, fmt.Errorf("network %d: empty name", i))
		}
		if n.VLAN < 0 || n.VLAN > 4094 {
			errs = append(errs, fmt.Errorf("%s: vlan %d out of range 1-4094", who, n.VLAN))
		}
		if n.VLAN > 0 {
			if prev, ok := vlans[n.VLAN]; ok {
				errs = append(errs, fmt.Errorf("%s: vlan %d already used by %s", who, n.VLAN, prev))
			}
			vlans[n.VLAN] = who
		}
		if n.parent(c) == "" {
			errs = append(errs, fmt.Errorf("%s: no parent link and no trunk", who))
		}
		useLink(who, n.Link(c))
		errs = append(errs, checkPrefix(who, "addr4", n.Addr4, true), checkPrefix(who, "addr6", n.Addr6, false))
		if n.DownKbps < 0 || n.UpKbps < 0 {
			errs = append(errs, fmt.Errorf("%s: negative rate", who))
		}
		for _, l := range n.Leases {
			if len(l.MAC) != 6 || !l.IP.IsValid() {
				errs = append(errs, fmt.Errorf("%s: lease %v %v: need a MAC and an IP", who, l.MAC, l.IP))
			}
		}
	}
	g := &c.Guest
	if c.GuestLink() != "" {
		if g.VLAN < 0 || g.VLAN > 4094 {
			errs = append(errs, fmt.Errorf("guest: vlan %d out of range", g.VLAN))
		}
		if g.VLAN > 0 {
			if prev, ok := vlans[g.VLAN]; ok {
				errs = append(errs, fmt.Errorf("guest: vlan %d already used by %s", g.VLAN, prev))
			}
			if c.Trunk == "" {
				errs = append(errs, errors.New("guest: vlan set but no trunk"))
			}
		}
		useLink("guest", c.GuestLink())
		errs = append(errs, checkPrefix("guest", "addr4", g.Addr4, true), checkPrefix("guest", "addr6", g.Addr6, false))
		if g.PortalAddr4.IsValid() && !g.PortalAddr4.Addr().Is4() {
			errs = append(errs, fmt.Errorf("guest: portal4 %v is not IPv4", g.PortalAddr4))
		}
		if g.PortalAddr6.IsValid() && !g.PortalAddr6.Addr().Is6() {
			errs = append(errs, fmt.Errorf("guest: portal6 %v is not IPv6", g.PortalAddr6))
		}
		for _, p := range g.WalledGarden {
			if !p.IsValid() {
				errs = append(errs, errors.New("guest: invalid walled garden prefix"))
			}
		}
		for _, h := range g.WalledGardenHosts {
			if h == "" || strings.ContainsAny(h, "/, \t\n#") {
				errs = append(errs, fmt.Errorf("guest: invalid walled garden host %q", h))
			}
		}
		if g.DownKbps < 0 || g.UpKbps < 0 {
			errs = append(errs, errors.New("guest: negative rate"))
		}
	} else if len(c.Clients) > 0 {
		errs = append(errs, errors.New("guest clients without a guest network"))
	}
	if c.WAN != "" {
		useLink("wan", c.WAN)
	}
	seen := map[string]bool{}
	for _, cl := range c.Clients {
		if err := cl.validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[cl.MAC.String()] {
			errs = append(errs, fmt.Errorf("client %s listed twice", cl.MAC))
		}
		seen[cl.MAC.String()] = true
	}
	return errors.Join(errs...)
}

func (g *GuestClient) validate() error {
	if len(g.MAC) != 6 {
		return fmt.Errorf("client %q: need a 6-byte MAC", g.MAC.String())
	}
	if g.IP4.IsValid() && !g.IP4.Is4() {
		return fmt.Errorf("client %s: ip4 %v is not IPv4", g.MAC, g.IP4)
	}
	for _, a := range g.IP6 {
		if !a.Is6() || a.Is4In6() {
			return fmt.Errorf("client %s: ip6 %v is not IPv6", g.MAC, a)
		}
	}
	if !g.IP4.IsValid() && len(g.IP6) == 0 {
		return fmt.Errorf("client %s: no IP address", g.MAC)
	}
	if g.DownKbps < 0 || g.UpKbps < 0 {
		return fmt.Errorf("client %s: negative rate", g.MAC)
	}
	return nil
}

func checkPrefix(who, what string, p netip.Prefix, v4 bool) error {
	if !p.IsValid() {
		return nil
	}
	if p.Addr().Is4() != v4 {
		return fmt.Errorf("%s: %s %v has the wrong address family", who, what, p)
	}
	return nil
}

// String returns a stable, sorted text form of the config, as printed by
// `deskgate net plan`.
func (c *Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "trunk %s\nwan %s\n", orDash(c.Trunk), orDash(c.WAN))
	nets := slices.Clone(c.Networks)
	slices.SortFunc(nets, func(a, b Network) int { return strings.Compare(a.Name, b.Name) })
	for _, n := range nets {
		fmt.Fprintf(&b, "network %s link=%s vlan=%d parent=%s addr4=%s addr6=%s group=%s down=%s up=%s\n",
			n.Name, n.Link(c), n.VLAN, orDash(n.parent(c)), prefixStr(n.Addr4), prefixStr(n.Addr6),
			orDash(n.Group), kbps(n.DownKbps), kbps(n.UpKbps))
		leases := slices.Clone(n.Leases)
		slices.SortFunc(leases, func(a, b Lease) int { return a.IP.Compare(b.IP) })
		for _, l := range leases {
			fmt.Fprintf(&b, "  lease %s %s %s\n", l.MAC, l.IP, orDash(l.Name))
		}
	}
	g := &c.Guest
	if c.GuestLink() != "" {
		fmt.Fprintf(&b, "guest link=%s vlan=%d addr4=%s addr6=%s portal4=%s portal6=%s api=%s down=%s up=%s\n",
			c.GuestLink(), g.VLAN, prefixStr(g.Addr4), prefixStr(g.Addr6), apStr(g.PortalAddr4), apStr(g.PortalAddr6),
			orDash(g.CaptiveAPI), kbps(g.DownKbps), kbps(g.UpKbps))
		garden := slices.Clone(g.WalledGarden)
		slices.SortFunc(garden, comparePrefix)
		for _, p := range garden {
			fmt.Fprintf(&b, "  garden %s\n", p)
		}
		hosts := slices.Clone(g.WalledGardenHosts)
		slices.Sort(hosts)
		for _, h := range hosts {
			fmt.Fprintf(&b, "  garden-host %s\n", h)
		}
	}
	clients := slices.Clone(c.Clients)
	slices.SortFunc(clients, func(a, b GuestClient) int { return strings.Compare(a.MAC.String(), b.MAC.String()) })
	for _, cl := range clients {
		down, up := cl.rates(g)
		ip6 := slices.Clone(cl.IP6)
		slices.SortFunc(ip6, netip.Addr.Compare)
		var s6 []string
		for _, a := range ip6 {
			s6 = append(s6, a.String())
		}
		until := "-"
		if !cl.Until.IsZero() {
			until = cl.Until.UTC().Format(time.RFC3339)
		}
		ip4 := "-"
		if cl.IP4.IsValid() {
			ip4 = cl.IP4.String()
		}
		fmt.Fprintf(&b, "client %s ip4=%s ip6=%s until=%s down=%s up=%s\n",
			cl.MAC, ip4, orDash(strings.Join(s6, ",")), until, kbps(down), kbps(up))
	}
	return b.String()
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func prefixStr(p netip.Prefix) string {
	if !p.IsValid() {
		return "-"
	}
	return p.String()
}

func apStr(a netip.AddrPort) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}

func kbps(k int) string {
	if k == 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%dkbit", k)
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	n := *c
	n.Networks = slices.Clone(c.Networks)
	for i := range n.Networks {
		n.Networks[i].Leases = slices.Clone(n.Networks[i].Leases)
	}
	n.Guest.WalledGarden = slices.Clone(c.Guest.WalledGarden)
	n.Guest.WalledGardenHosts = slices.Clone(c.Guest.WalledGardenHosts)
	n.Clients = make([]GuestClient, len(c.Clients))
	for i, cl := range c.Clients {
		n.Clients[i] = cl.clone()
	}
	return &n
}

func (g GuestClient) clone() GuestClient {
	g.MAC = slices.Clone(g.MAC)
	g.IP6 = slices.Clone(g.IP6)
	return g
}

// Manager applies desired state to the kernel. All methods are safe for
// concurrent use.
type Manager interface {
	// Set makes the kernel match c. It is idempotent: calling it again with
	// the same config changes nothing. An invalid config changes nothing.
	// c.Clients replaces the allowed set (clients already past Until are
	// left out), so the caller passes every client its store allows,
	// including those it let in with Allow since the last Set.
	Set(ctx context.Context, c *Config) error
	// Allow lets one guest client through (or updates its addresses, limits
	// and expiry) without touching the others.
	Allow(ctx context.Context, c GuestClient) error
	// Revoke puts the client with this MAC back behind the portal. Revoking
	// a client that is not allowed is not an error.
	Revoke(ctx context.Context, mac net.HardwareAddr) error
	// Close stops the drift and expiry loop. It leaves kernel state in place
	// (a restarted daemon keeps allowed clients allowed); use CleanUp to
	// remove it.
	Close() error
}

// Options configure New and CleanUp.
type Options struct {
	Log *slog.Logger
	// Now is the clock for expiry; nil means time.Now.
	Now func() time.Time
	// CheckInterval is the drift check period; 0 means 30 s, negative
	// disables the check.
	CheckInterval time.Duration
	// NetNS, when set, is the name of a network namespace (/run/netns/NAME)
	// to operate in instead of the caller's.
	NetNS string
}

// ErrNoConfig is returned by Allow and Revoke before the first Set.
var ErrNoConfig = errors.New("netcfg: no config set")
