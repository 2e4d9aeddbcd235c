package netcfg

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Names of the objects netcfg owns. Everything it creates starts with
// Prefix.
const (
	Prefix    = "dg-"
	SetAllow4 = "dg-allow4"
	SetAllow6 = "dg-allow6"
	// SetAllowMAC4 and SetAllowMAC6 replace SetAllow4 and SetAllow6 on
	// kernels with ipset hash:ip,mac: each entry is an address and its
	// client's MAC, matched with "src,src".
	SetAllowMAC4 = "dg-allowm4"
	SetAllowMAC6 = "dg-allowm6"
	// SetGarden4 and SetGarden6 hold the resolved addresses of the walled
	// garden hosts; dnsmasq fills them.
	SetGarden4 = "dg-garden4"
	SetGarden6 = "dg-garden6"
	// IFBLink is the IFB device whose egress shapes guest uploads.
	IFBLink = "dg-ifb0"
	// ChainBind (in the nat and the filter table) binds each allowed
	// guest address to its client's MAC.
	ChainBind = "dg-bind"
)

// chain is one owned chain and its rules in order.
type chain struct {
	table, name string
	rules       [][]string
}

// jump is the one rule in a built-in chain that reaches an owned chain.
type jump struct {
	table, builtin, target string
}

// ruleset is the desired iptables (v6=false) or ip6tables state.
type ruleset struct {
	v6     bool
	chains []*chain // a chain appears before any chain that jumps to it
	jumps  []jump
}

func (r *ruleset) chain(table, name string) *chain {
	for _, ch := range r.chains {
		if ch.table == table && ch.name == name {
			return ch
		}
	}
	ch := &chain{table: table, name: name}
	r.chains = append(r.chains, ch)
	return ch
}

func (ch *chain) add(spec ...string) { ch.rules = append(ch.rules, spec) }

// buildRules derives the owned chains for one address family on a kernel
// without ipset hash:ip,mac (allowed addresses bound to MACs by rules).
func buildRules(c *Config, v6 bool) ruleset { return buildRulesMode(c, v6, false) }

// buildRulesMode derives the owned chains for one address family. With
// ipmac the allow sets are hash:ip,mac and match address and MAC at once;
// without, each allowed address is bound to its MAC in the dg-bind chains.
func buildRulesMode(c *Config, v6, ipmac bool) ruleset {
	r := ruleset{v6: v6}
	set, gset, icmp, dhcp := SetAllow4, SetGarden4, "icmp", "67"
	if v6 {
		set, gset, icmp, dhcp = SetAllow6, SetGarden6, "ipv6-icmp", "547"
	}
	dir := "src"
	if ipmac {
		set, dir = allowSetName(v6, true), "src,src"
	}
	hosts := len(c.Guest.WalledGardenHosts) > 0
	g := &c.Guest
	gl := c.GuestLink()
	portal := g.PortalAddr4
	gaddr := g.Addr4
	if v6 {
		portal, gaddr = g.PortalAddr6, g.Addr6
	}
	var garden []string
	for _, p := range g.WalledGarden {
		if p.Addr().Is6() == v6 && p.IsValid() {
			garden = append(garden, p.Masked().String())
		}
	}
	wanOut := []string{}
	if c.WAN != "" {
		wanOut = []string{"-o", c.WAN}
	}

	// Sub-chains first so that their parents can jump to them.
	if gl != "" {
		capt := r.chain("nat", "dg-captive")
		for _, p := range garden {
			capt.add("-d", p, "-j", "RETURN")
		}
		if hosts {
			capt.add("-m", "set", "--match-set", gset, "dst", "-j", "RETURN")
		}
		if portal.IsValid() {
			to := portal.String()
			capt.add("-p", "tcp", "--dport", "80", "-j", "DNAT", "--to-destination", to)
		}
		// The allow sets hold IP addresses only (this kernel may lack
		// hash:ip,mac), so each allowed address is bound to its client's
		// MAC here: a packet from an allowed address but another MAC (a
		// second device spoofing it) is intercepted like any captive one
		// and not forwarded.
		if !ipmac {
			natBind := r.chain("nat", ChainBind)
			fwdBind := r.chain("filter", ChainBind)
			for _, cl := range sortedClients(c.Clients) {
				for _, a := range clientAddrs(cl) {
					if a.Is6() != v6 {
						continue
					}
					natBind.add("-s", a.String(), "-m", "mac", "--mac-source", cl.MAC.String(), "-j", "RETURN")
					fwdBind.add("-s", a.String(), "-m", "mac", "--mac-source", cl.MAC.String(), "-j", "ACCEPT")
				}
			}
			natBind.add("-j", "dg-captive")
		}
	}

	in := r.chain("filter", "dg-input")
	fwd := r.chain("filter", "dg-forward")
	pre := r.chain("nat", "dg-prerouting")
	post := r.chain("nat", "dg-postrouting")
	if gl != "" {
		i := []string{"-i", gl}
		in.add(cat(i, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")...)
		in.add(cat(i, "-p", "udp", "--dport", "53", "-j", "ACCEPT")...)
		in.add(cat(i, "-p", "tcp", "--dport", "53", "-j", "ACCEPT")...)
		in.add(cat(i, "-p", "udp", "--dport", dhcp, "-j", "ACCEPT")...)
		in.add(cat(i, "-p", icmp, "-j", "ACCEPT")...)
		if portal.IsValid() {
			// The portal's HTTP port (DNAT target) and HTTPS for the RFC
			// 8908 API; nothing else on the box is reachable from guests.
			pa := portal.Addr().String()
			in.add(cat(i, "-d", pa, "-p", "tcp", "--dport", strconv.Itoa(int(portal.Port())), "-j", "ACCEPT")...)
			if portal.Port() != 443 {
				in.add(cat(i, "-d", pa, "-p", "tcp", "--dport", "443", "-j", "ACCEPT")...)
			}
		}
		in.add(cat(i, "-j", "DROP")...)

		fwd.add("-o", gl, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
		if ipmac {
			fwd.add(cat(cat(i, wanOut...), "-m", "set", "--match-set", set, dir, "-j", "ACCEPT")...)
		} else {
			fwd.add(cat(cat(i, wanOut...), "-m", "set", "--match-set", set, dir, "-j", ChainBind)...)
		}
		for _, p := range garden {
			fwd.add(cat(i, "-d", p, "-j", "ACCEPT")...)
		}
		if hosts {
			fwd.add(cat(i, "-m", "set", "--match-set", gset, "dst", "-j", "ACCEPT")...)
		}
		fwd.add(cat(i, "-p", "tcp", "--dport", "443", "-j", "REJECT", "--reject-with", "tcp-reset")...)
		fwd.add(cat(i, "-p", "udp", "--dport", "443", "-j", "REJECT")...)
		fwd.add(cat(i, "-j", "DROP")...)
		fwd.add("-o", gl, "-j", "DROP")

		if !ipmac {
			pre.add(cat(i, "-m", "set", "--match-set", set, dir, "-j", ChainBind)...)
		}
		pre.add(cat(i, "-m", "set", "!", "--match-set", set, dir, "-j", "dg-captive")...)
		if c.WAN != "" && gaddr.IsValid() {
			post.add("-s", gaddr.Masked().String(), "-o", c.WAN, "-j", "MASQUERADE")
		}
	}
	for i := range c.Networks {
		n := &c.Networks[i]
		l := n.Link(c)
		if c.WAN != "" {
			fwd.add("-i", l, "-o", c.WAN, "-j", "ACCEPT")
			fwd.add("-i", c.WAN, "-o", l, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
			addr := n.Addr4
			if v6 {
				addr = n.Addr6
			}
			if addr.IsValid() {
				post.add("-s", addr.Masked().String(), "-o", c.WAN, "-j", "MASQUERADE")
			}
		}
	}
	r.jumps = []jump{
		{"filter", "INPUT", "dg-input"},
		{"filter", "FORWARD", "dg-forward"},
		{"nat", "PREROUTING", "dg-prerouting"},
		{"nat", "POSTROUTING", "dg-postrouting"},
	}
	// Tag every rule with a hash of its own text so that drift is found by
	// comparing tags, independent of how iptables prints a rule back.
	for _, ch := range r.chains {
		for ri, spec := range ch.rules {
			ch.rules[ri] = cat(spec, "-m", "comment", "--comment", ruleTag(ch.table, ch.name, spec))
		}
	}
	return r
}

// allowSetName is the allow set of a family in a mode.
func allowSetName(v6, ipmac bool) string {
	switch {
	case ipmac && v6:
		return SetAllowMAC6
	case ipmac:
		return SetAllowMAC4
	case v6:
		return SetAllow6
	}
	return SetAllow4
}

// sortedClients orders clients by MAC, so generated rules are stable.
func sortedClients(cs []GuestClient) []GuestClient {
	out := slices.Clone(cs)
	slices.SortFunc(out, func(a, b GuestClient) int { return strings.Compare(a.MAC.String(), b.MAC.String()) })
	return out
}

func cat(a []string, b ...string) []string {
	out := make([]string, 0, len(a)+len(b))
	return append(append(out, a...), b...)
}

func ruleTag(table, chain string, spec []string) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%s %s", table, chain, strings.Join(spec, " "))
	return "dg:" + strconv.FormatUint(uint64(h.Sum32()), 16)
}

var tagRE = regexp.MustCompile(`--comment "?(dg:[0-9a-f]+)"?`)

// listedTags returns the tags of the rules of a chain as printed by
// `iptables -S chain` (the first line, "-N chain", is skipped). A rule without
// a tag yields "?" so that foreign rules count as drift.
func listedTags(lines []string) []string {
	var tags []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "-A ") {
			continue
		}
		m := tagRE.FindStringSubmatch(l)
		if m == nil {
			tags = append(tags, "?")
			continue
		}
		tags = append(tags, m[1])
	}
	return tags
}

func (ch *chain) tags() []string {
	var tags []string
	for _, spec := range ch.rules {
		tags = append(tags, spec[len(spec)-1])
	}
	return tags
}

// String renders the ruleset like iptables-save, for plans and golden tests.
func (r *ruleset) String() string {
	var b strings.Builder
	for _, j := range r.jumps {
		fmt.Fprintf(&b, "-t %s -I %s 1 -j %s\n", j.table, j.builtin, j.target)
	}
	for _, ch := range r.chains {
		fmt.Fprintf(&b, "-t %s -N %s\n", ch.table, ch.name)
		for _, spec := range ch.rules {
			fmt.Fprintf(&b, "-t %s -A %s %s\n", ch.table, ch.name, strings.Join(spec[:len(spec)-4], " "))
		}
	}
	return b.String()
}

// savedTable is a parsed `iptables-save -t table`.
type savedTable struct {
	chains map[string]bool
	rules  map[string][]string // chain -> "-A chain ..." lines
}

func parseSave(out string) savedTable {
	t := savedTable{chains: map[string]bool{}, rules: map[string][]string{}}
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, ":"):
			if f := strings.Fields(line[1:]); len(f) > 0 {
				t.chains[f[0]] = true
			}
		case strings.HasPrefix(line, "-A "):
			if f := strings.Fields(line); len(f) > 1 {
				t.rules[f[1]] = append(t.rules[f[1]], line)
			}
		}
	}
	return t
}
