package netcfg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

type manager struct {
	opts Options
	log  *slog.Logger
	ns   *nsRunner
	nl   *netlink.Handle
	ipt4 ipt
	ipt6 ipt
	// ipmac: the kernel has ipset hash:ip,mac, so the allow sets bind each
	// address to its MAC; otherwise the dg-bind chains do.
	ipmac bool

	mu      sync.Mutex
	cfg     *Config                // last applied config; Clients is unused
	clients map[string]GuestClient // allowed clients by MAC
	shape   *shaper
	warned  map[string]bool

	wake      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// New returns a Manager operating in opts.NetNS (or the caller's namespace).
// It changes nothing in the kernel until the first Set; after that it runs a
// drift check every opts.CheckInterval and expires clients at their Until.
func New(opts Options) (Manager, error) {
	m, err := newManager(opts)
	if err != nil {
		return nil, err
	}
	go m.loop()
	return m, nil
}

func (o *Options) defaults() {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CheckInterval == 0 {
		o.CheckInterval = 30 * time.Second
	}
}

func newManager(opts Options) (*manager, error) {
	opts.defaults()
	ns, err := openNS(opts.NetNS)
	if err != nil {
		return nil, err
	}
	h, err := ns.handle()
	if err != nil {
		ns.close()
		return nil, err
	}
	i4, err := newIPT(ns, false)
	if err != nil {
		h.Close()
		ns.close()
		return nil, err
	}
	i6, err := newIPT(ns, true)
	if err != nil {
		h.Close()
		ns.close()
		return nil, err
	}
	m := &manager{
		opts:    opts,
		log:     opts.Log,
		ns:      ns,
		nl:      h,
		ipt4:    i4,
		ipt6:    i6,
		clients: map[string]GuestClient{},
		warned:  map[string]bool{},
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	m.shape = newShaper(m)
	m.ipmac = probeIPMAC(h)
	if m.ipmac {
		m.log.Info("netcfg: allow-lists bind addresses to MACs with ipset hash:ip,mac")
	} else {
		m.log.Info("netcfg: no ipset hash:ip,mac in this kernel; allow-lists bind addresses to MACs with -m mac rules (dg-bind)")
	}
	return m, nil
}

// probeIPMAC reports whether the kernel can create a hash:ip,mac set.
func probeIPMAC(h *netlink.Handle) bool {
	const probe = "dg-probe-ipmac"
	if err := h.IpsetCreate(probe, "hash:ip,mac", netlink.IpsetCreateOptions{Family: unix.AF_INET}); err != nil {
		return false
	}
	_ = h.IpsetDestroy(probe)
	return true
}

func (m *manager) rules(c *Config, v6 bool) ruleset { return buildRulesMode(c, v6, m.ipmac) }

func (m *manager) Close() error {
	m.closeOnce.Do(func() {
		close(m.stop)
		<-m.done
		m.mu.Lock()
		defer m.mu.Unlock()
		m.nl.Close()
		m.ns.close()
	})
	return nil
}

func (m *manager) Set(ctx context.Context, c *Config) error {
	if c == nil {
		return errors.New("netcfg set: nil config")
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("netcfg set: %w", err)
	}
	c = c.Clone()
	now := m.opts.Now()
	clients := map[string]GuestClient{}
	for _, cl := range c.Clients {
		if !cl.Until.IsZero() && !now.Before(cl.Until) {
			continue
		}
		clients[cl.MAC.String()] = cl
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	changes, err := m.apply(ctx, c, clients)
	m.cfg = c
	m.clients = clients
	m.kick()
	if len(changes) > 0 {
		m.log.Info("netcfg applied", "changes", len(changes), "first", changes[0])
		for _, ch := range changes {
			m.log.Debug("netcfg change", "what", ch)
		}
	}
	if err != nil {
		return fmt.Errorf("netcfg set: %w", err)
	}
	return nil
}

func (m *manager) kick() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *manager) Allow(ctx context.Context, cl GuestClient) error {
	if err := cl.validate(); err != nil {
		return fmt.Errorf("netcfg allow: %w", err)
	}
	cl = cl.clone()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg == nil {
		return ErrNoConfig
	}
	if m.cfg.GuestLink() == "" {
		return errors.New("netcfg allow: no guest network")
	}
	key := cl.MAC.String()
	if old, ok := m.clients[key]; ok {
		if err := m.removeClient(old, &cl); err != nil {
			return fmt.Errorf("netcfg allow %s: %w", key, err)
		}
	}
	m.clients[key] = cl
	if err := m.addClient(cl); err != nil {
		return fmt.Errorf("netcfg allow %s: %w", key, err)
	}
	if err := m.applyBind(ctx); err != nil {
		return fmt.Errorf("netcfg allow %s: bind to MAC: %w", key, err)
	}
	if !cl.Until.IsZero() {
		m.kick()
	}
	return nil
}

func (m *manager) Revoke(ctx context.Context, mac net.HardwareAddr) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg == nil {
		return ErrNoConfig
	}
	return m.revokeLocked(ctx, mac.String())
}

func (m *manager) revokeLocked(ctx context.Context, key string) error {
	cl, ok := m.clients[key]
	if !ok {
		return nil
	}
	delete(m.clients, key)
	err := m.removeClient(cl, nil)
	if berr := m.applyBind(ctx); berr != nil {
		err = errors.Join(err, fmt.Errorf("unbind MAC: %w", berr))
	}
	if err != nil {
		return fmt.Errorf("netcfg revoke %s: %w", key, err)
	}
	return nil
}

// addClient puts a client's addresses into the allow sets and its shaping
// classes in place: a constant number of netlink messages.
func (m *manager) addClient(cl GuestClient) error {
	for _, a := range clientAddrs(cl) {
		if err := m.setAdd(a, cl.MAC); err != nil {
			return err
		}
	}
	m.forgetFlows(cl)
	// The client is allowed now; a shaping failure is logged and left to
	// the drift check rather than reported as a failed Allow.
	if err := m.shape.addClient(m.cfg, cl); err != nil {
		m.log.Warn("netcfg shaping", "mac", cl.MAC.String(), "err", err)
	}
	return nil
}

// removeClient undoes addClient. When next is the same client's new state,
// addresses it keeps are left in place.
func (m *manager) removeClient(cl GuestClient, next *GuestClient) error {
	keep := map[netip.Addr]bool{}
	if next != nil {
		for _, a := range clientAddrs(*next) {
			keep[a] = true
		}
	}
	var errs []error
	for _, a := range clientAddrs(cl) {
		if keep[a] {
			continue
		}
		if err := m.setDel(a, cl.MAC); err != nil {
			errs = append(errs, err)
		}
	}
	if next == nil {
		m.forgetFlows(cl)
	}
	if err := m.shape.removeClient(cl, next); err != nil {
		m.log.Warn("netcfg shaping", "mac", cl.MAC.String(), "err", err)
	}
	return errors.Join(errs...)
}

func (m *manager) setFor(a netip.Addr) string { return allowSetName(a.Is6(), m.ipmac) }

// setEntry is a's allow set entry: the address, and with hash:ip,mac the
// client's MAC.
func (m *manager) setEntry(a netip.Addr, mac net.HardwareAddr) *netlink.IPSetEntry {
	e := &netlink.IPSetEntry{IP: net.IP(a.AsSlice())}
	if m.ipmac {
		e.MAC = mac
	}
	return e
}

func (m *manager) setAdd(a netip.Addr, mac net.HardwareAddr) error {
	e := m.setEntry(a, mac)
	e.Replace = true
	if err := m.nl.IpsetAdd(m.setFor(a), e); err != nil {
		return fmt.Errorf("ipset add %s %s: %w", m.setFor(a), a, err)
	}
	return nil
}

func (m *manager) setDel(a netip.Addr, mac net.HardwareAddr) error {
	err := m.nl.IpsetDel(m.setFor(a), m.setEntry(a, mac))
	if err != nil && !isNotInSet(err) {
		return fmt.Errorf("ipset del %s %s: %w", m.setFor(a), a, err)
	}
	return nil
}

func isNotInSet(err error) bool {
	var ie nl.IPSetError
	return errors.As(err, &ie) && int(ie) == nl.IPSET_ERR_EXIST
}

// loop runs the drift check and the expiry timer until Close.
func (m *manager) loop() {
	defer close(m.done)
	var tick <-chan time.Time
	if m.opts.CheckInterval > 0 {
		t := time.NewTicker(m.opts.CheckInterval)
		defer t.Stop()
		tick = t.C
	}
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	for {
		m.mu.Lock()
		next := m.expireLocked()
		m.mu.Unlock()
		if next.IsZero() {
			expiry.Reset(time.Hour)
		} else {
			expiry.Reset(max(next.Sub(m.opts.Now()), time.Millisecond))
		}
		select {
		case <-m.stop:
			return
		case <-m.wake:
		case <-expiry.C:
		case <-tick:
			m.checkDrift()
		}
	}
}

// expireLocked revokes clients whose Until has passed and returns the next
// expiry (zero if none).
func (m *manager) expireLocked() time.Time {
	if m.cfg == nil {
		return time.Time{}
	}
	now := m.opts.Now()
	var next time.Time
	for key, cl := range m.clients {
		if cl.Until.IsZero() {
			continue
		}
		if !now.Before(cl.Until) {
			if err := m.revokeLocked(context.Background(), key); err != nil {
				m.log.Error("netcfg expire", "mac", key, "err", err)
			} else {
				m.log.Info("netcfg client expired", "mac", key, "until", cl.Until)
			}
			continue
		}
		if next.IsZero() || cl.Until.Before(next) {
			next = cl.Until
		}
	}
	return next
}

func (m *manager) checkDrift() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	changes, err := m.apply(ctx, m.cfg, m.clients)
	for _, ch := range changes {
		m.log.Warn("netcfg repaired drift", "what", ch)
	}
	if err != nil {
		m.log.Error("netcfg drift check", "err", err)
	}
}

// apply converges the kernel to c with the given allowed clients and returns
// what it changed. It is the one code path behind Set and the drift check.
func (m *manager) apply(ctx context.Context, c *Config, clients map[string]GuestClient) ([]string, error) {
	var changes []string
	note := func(format string, args ...any) { changes = append(changes, fmt.Sprintf(format, args...)) }
	steps := []func(context.Context, *Config, map[string]GuestClient, func(string, ...any)) error{
		m.applySysctl,
		m.applyLinks,
		m.applySets,
		func(ctx context.Context, c *Config, clients map[string]GuestClient, note func(string, ...any)) error {
			return m.applyRules(ctx, m.ipt4, m.rules(withClients(c, clients), false), note)
		},
		func(ctx context.Context, c *Config, clients map[string]GuestClient, note func(string, ...any)) error {
			return m.applyRules(ctx, m.ipt6, m.rules(withClients(c, clients), true), note)
		},
		m.dropGardenSets,
		m.shape.apply,
	}
	var errs []error
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return changes, err
		}
		if err := step(ctx, c, clients, note); err != nil {
			errs = append(errs, err)
		}
	}
	return changes, errors.Join(errs...)
}

// withClients returns c with the allowed clients as its Clients (the rules
// bind each allowed address to its MAC).
func withClients(c *Config, clients map[string]GuestClient) *Config {
	rc := *c
	rc.Clients = make([]GuestClient, 0, len(clients))
	for _, cl := range clients {
		rc.Clients = append(rc.Clients, cl)
	}
	return &rc
}

// applyBind rewrites the MAC binding chains after Allow or Revoke changed
// the allowed clients (only the dg-bind chains differ, so only they are
// restored).
func (m *manager) applyBind(ctx context.Context) error {
	if m.ipmac {
		return nil // the set entries carry the MACs
	}
	rc := withClients(m.cfg, m.clients)
	note := func(string, ...any) {}
	return errors.Join(m.applyRules(ctx, m.ipt4, m.rules(rc, false), note),
		m.applyRules(ctx, m.ipt6, m.rules(rc, true), note))
}

func (m *manager) applySysctl(_ context.Context, c *Config, _ map[string]GuestClient, note func(string, ...any)) error {
	if c.WAN == "" && c.GuestLink() == "" && len(c.Networks) == 0 {
		return nil
	}
	var errs []error
	for _, p := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
		var cur []byte
		err := m.ns.do(func() (e error) { cur, e = os.ReadFile(p); return })
		if err == nil && strings.TrimSpace(string(cur)) == "1" {
			continue
		}
		if err := m.ns.writeSysctl(p, "1"); err != nil {
			errs = append(errs, err)
			continue
		}
		note("sysctl %s=1", p)
	}
	return errors.Join(errs...)
}

type vlanWant struct {
	name, parent string
	vid          int
	addrs        []netip.Prefix
}

func wantedVLANs(c *Config) []vlanWant {
	var out []vlanWant
	for _, n := range c.Networks {
		if n.VLAN > 0 {
			out = append(out, vlanWant{vlanLinkName(n.VLAN), n.parent(c), n.VLAN, validPrefixes(n.Addr4, n.Addr6)})
		}
	}
	if c.Guest.VLAN > 0 {
		out = append(out, vlanWant{vlanLinkName(c.Guest.VLAN), c.Trunk, c.Guest.VLAN, validPrefixes(c.Guest.Addr4, c.Guest.Addr6)})
	}
	return out
}

func validPrefixes(ps ...netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.IsValid() {
			out = append(out, p)
		}
	}
	return out
}

// applyLinks creates, re-addresses and removes the owned VLAN links.
func (m *manager) applyLinks(_ context.Context, c *Config, _ map[string]GuestClient, note func(string, ...any)) error {
	links, err := m.nl.LinkList()
	if err != nil {
		return fmt.Errorf("link list: %w", err)
	}
	byName := map[string]netlink.Link{}
	for _, l := range links {
		byName[l.Attrs().Name] = l
	}
	want := wantedVLANs(c)
	wanted := map[string]bool{}
	var errs []error
	for _, w := range want {
		wanted[w.name] = true
		parent, ok := byName[w.parent]
		if !ok {
			errs = append(errs, fmt.Errorf("vlan %s: parent link %s not found", w.name, w.parent))
			continue
		}
		l, ok := byName[w.name]
		if ok {
			v, isVLAN := l.(*netlink.Vlan)
			if !isVLAN || v.VlanId != w.vid || v.ParentIndex != parent.Attrs().Index {
				if err := m.nl.LinkDel(l); err != nil {
					errs = append(errs, fmt.Errorf("link del %s: %w", w.name, err))
					continue
				}
				note("link %s replaced (wrong kind, id or parent)", w.name)
				ok = false
			}
		}
		if !ok {
			v := &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: w.name, ParentIndex: parent.Attrs().Index}, VlanId: w.vid}
			if err := m.nl.LinkAdd(v); err != nil {
				errs = append(errs, fmt.Errorf("link add vlan %s id %d on %s: %w", w.name, w.vid, w.parent, err))
				continue
			}
			note("link %s added (vlan %d on %s)", w.name, w.vid, w.parent)
			l, err = m.nl.LinkByName(w.name)
			if err != nil {
				errs = append(errs, fmt.Errorf("link get %s: %w", w.name, err))
				continue
			}
		}
		if l.Attrs().Flags&net.FlagUp == 0 {
			if err := m.nl.LinkSetUp(l); err != nil {
				errs = append(errs, fmt.Errorf("link up %s: %w", w.name, err))
			} else {
				note("link %s set up", w.name)
			}
		}
		if err := m.syncAddrs(l, w.addrs, note); err != nil {
			errs = append(errs, err)
		}
	}
	for name, l := range byName {
		if strings.HasPrefix(name, "dg-v") && !wanted[name] {
			if err := m.nl.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("link del %s: %w", name, err))
			} else {
				note("link %s removed", name)
			}
		}
	}
	// Links netcfg does not own must already carry their addresses.
	if c.Guest.VLAN == 0 && c.Guest.Interface != "" {
		if _, ok := byName[c.Guest.Interface]; !ok {
			errs = append(errs, fmt.Errorf("guest link %s not found", c.Guest.Interface))
		}
	}
	return errors.Join(errs...)
}

func (m *manager) syncAddrs(l netlink.Link, want []netip.Prefix, note func(string, ...any)) error {
	have, err := m.nl.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("addr list %s: %w", l.Attrs().Name, err)
	}
	var errs []error
	present := map[netip.Prefix]bool{}
	for _, a := range have {
		p, ok := ipNetPrefix(a.IPNet)
		if !ok || p.Addr().IsLinkLocalUnicast() {
			continue
		}
		if slices.Contains(want, p) {
			present[p] = true
			continue
		}
		if err := m.nl.AddrDel(l, &a); err != nil {
			errs = append(errs, fmt.Errorf("addr del %s %s: %w", l.Attrs().Name, p, err))
			continue
		}
		note("addr %s removed from %s", p, l.Attrs().Name)
	}
	for _, p := range want {
		if present[p] {
			continue
		}
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := m.nl.AddrAdd(l, a); err != nil {
			errs = append(errs, fmt.Errorf("addr add %s %s: %w", l.Attrs().Name, p, err))
			continue
		}
		note("addr %s added to %s", p, l.Attrs().Name)
	}
	return errors.Join(errs...)
}

func ipNetPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

// applySets makes the allow sets hold exactly the allowed clients' addresses.
// dropGardenSets destroys the garden sets once no rule references them.
// It also destroys the allow sets of the other binding mode (left by a
// kernel with or without hash:ip,mac), which no rule references any more.
func (m *manager) dropGardenSets(_ context.Context, c *Config, _ map[string]GuestClient, note func(string, ...any)) error {
	drop := []string{allowSetName(false, !m.ipmac), allowSetName(true, !m.ipmac)}
	if len(c.Guest.WalledGardenHosts) == 0 || c.GuestLink() == "" {
		drop = append(drop, SetGarden4, SetGarden6)
	}
	var errs []error
	for _, name := range drop {
		if _, err := m.nl.IpsetList(name); err != nil {
			continue
		}
		if err := m.nl.IpsetDestroy(name); err != nil {
			errs = append(errs, fmt.Errorf("ipset destroy %s: %w", name, err))
			continue
		}
		note("ipset %s destroyed", name)
	}
	return errors.Join(errs...)
}

func setFamily(name string) uint8 {
	if strings.HasSuffix(name, "6") {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

func (m *manager) applySets(_ context.Context, c *Config, clients map[string]GuestClient, note func(string, ...any)) error {
	// Entries by set, keyed by "address" or, with hash:ip,mac,
	// "address/MAC".
	type entry struct {
		a   netip.Addr
		mac net.HardwareAddr
	}
	key := func(a netip.Addr, mac net.HardwareAddr) string {
		if m.ipmac {
			return a.String() + "/" + mac.String()
		}
		return a.String()
	}
	sets := []string{allowSetName(false, m.ipmac), allowSetName(true, m.ipmac)}
	want := map[string]map[string]entry{sets[0]: {}, sets[1]: {}}
	for _, cl := range clients {
		for _, a := range clientAddrs(cl) {
			want[m.setFor(a)][key(a, cl.MAC)] = entry{a, cl.MAC}
		}
	}
	var errs []error
	// The garden sets exist while there are garden hosts; dnsmasq owns
	// their members.
	for _, name := range []string{SetGarden4, SetGarden6} {
		_, err := m.nl.IpsetList(name)
		if err != nil && len(c.Guest.WalledGardenHosts) > 0 && c.GuestLink() != "" {
			if err := m.nl.IpsetCreate(name, "hash:ip", netlink.IpsetCreateOptions{Family: setFamily(name), MaxElements: 65536}); err != nil {
				errs = append(errs, fmt.Errorf("ipset create %s: %w", name, err))
				continue
			}
			note("ipset %s created", name)
		}
	}
	typ := "hash:ip"
	if m.ipmac {
		typ = "hash:ip,mac"
	}
	for _, name := range sets {
		res, err := m.nl.IpsetList(name)
		if err != nil {
			fam := setFamily(name)
			if err := m.nl.IpsetCreate(name, typ, netlink.IpsetCreateOptions{Family: fam, MaxElements: 65536}); err != nil {
				errs = append(errs, fmt.Errorf("ipset create %s %s: %w", name, typ, err))
				continue
			}
			note("ipset %s created (%s)", name, typ)
			res = &netlink.IPSetResult{}
		}
		have := map[string]entry{}
		for _, e := range res.Entries {
			if a, ok := netip.AddrFromSlice(e.IP); ok {
				have[key(a.Unmap(), e.MAC)] = entry{a.Unmap(), e.MAC}
			}
		}
		for k, e := range have {
			if _, ok := want[name][k]; !ok {
				if err := m.setDel(e.a, e.mac); err != nil {
					errs = append(errs, err)
				} else {
					note("ipset %s: removed %s", name, k)
				}
			}
		}
		for k, e := range want[name] {
			if _, ok := have[k]; !ok {
				if err := m.setAdd(e.a, e.mac); err != nil {
					errs = append(errs, err)
				} else {
					note("ipset %s: added %s", name, k)
				}
			}
		}
	}
	return errors.Join(errs...)
}

var tables = []string{"filter", "nat"}

// applyRules converges one family's owned chains and jumps. A check that
// finds nothing to do costs one iptables-save per table.
func (m *manager) applyRules(ctx context.Context, t ipt, rs ruleset, note func(string, ...any)) error {
	fam := "iptables"
	if rs.v6 {
		fam = "ip6tables"
	}
	saved := map[string]savedTable{}
	for _, tb := range tables {
		out, err := t.Save(tb)
		if err != nil {
			return fmt.Errorf("%s save %s: %w", fam, tb, err)
		}
		saved[tb] = parseSave(out)
	}
	var errs []error
	wanted := map[string]bool{}
	for _, tb := range tables {
		if err := ctx.Err(); err != nil {
			return err
		}
		var decl, body strings.Builder
		var notes []string
		for _, ch := range rs.chains {
			if ch.table != tb {
				continue
			}
			wanted[tb+"/"+ch.name] = true
			exists := saved[tb].chains[ch.name]
			cur := listedTags(saved[tb].rules[ch.name])
			if exists && slices.Equal(cur, ch.tags()) {
				continue
			}
			fmt.Fprintf(&decl, ":%s - [0:0]\n", ch.name)
			for _, spec := range ch.rules {
				fmt.Fprintf(&body, "-A %s %s\n", ch.name, quoteArgs(spec))
			}
			if exists {
				notes = append(notes, fmt.Sprintf("%s %s/%s rewritten (%d rules, found %d)", fam, tb, ch.name, len(ch.rules), len(cur)))
			} else {
				notes = append(notes, fmt.Sprintf("%s %s/%s created (%d rules)", fam, tb, ch.name, len(ch.rules)))
			}
		}
		for _, j := range rs.jumps {
			if j.table != tb || slices.Contains(saved[tb].rules[j.builtin], "-A "+j.builtin+" -j "+j.target) {
				continue
			}
			fmt.Fprintf(&body, "-I %s 1 -j %s\n", j.builtin, j.target)
			notes = append(notes, fmt.Sprintf("%s jump %s/%s -> %s inserted", fam, tb, j.builtin, j.target))
		}
		if len(notes) == 0 {
			continue
		}
		if err := t.Restore("*" + tb + "\n" + decl.String() + body.String() + "COMMIT\n"); err != nil {
			errs = append(errs, fmt.Errorf("%s restore %s: %w", fam, tb, err))
			continue
		}
		for _, n := range notes {
			note("%s", n)
		}
	}
	// Owned chains that are no longer wanted.
	for _, tb := range tables {
		var stale []string
		for ch := range saved[tb].chains {
			if strings.HasPrefix(ch, Prefix) && !wanted[tb+"/"+ch] {
				stale = append(stale, ch)
			}
		}
		if len(stale) == 0 {
			continue
		}
		slices.Sort(stale)
		if err := removeChains(t, tb, stale); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", fam, err))
			continue
		}
		note("%s %s: removed chains %s", fam, tb, strings.Join(stale, ","))
	}
	return errors.Join(errs...)
}

func quoteArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'") {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

var builtins = map[string][]string{
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
}

// removeChains deletes jumps to the chains from the built-in chains, then
// the chains themselves.
func removeChains(t ipt, table string, chains []string) error {
	var errs []error
	for _, b := range builtins[table] {
		for _, ch := range chains {
			for {
				ok, err := t.Exists(table, b, "-j", ch)
				if err != nil || !ok {
					break
				}
				if err := t.Delete(table, b, "-j", ch); err != nil {
					errs = append(errs, fmt.Errorf("delete jump %s/%s -> %s: %w", table, b, ch, err))
					break
				}
			}
		}
	}
	for _, ch := range chains {
		if err := t.ClearChain(table, ch); err != nil {
			errs = append(errs, fmt.Errorf("flush %s/%s: %w", table, ch, err))
		}
	}
	for _, ch := range chains {
		if err := t.DeleteChain(table, ch); err != nil {
			errs = append(errs, fmt.Errorf("delete chain %s/%s: %w", table, ch, err))
		}
	}
	return errors.Join(errs...)
}

// forgetFlows drops the conntrack state of a client's connections: those the
// captive DNAT sent to the portal (after Allow a browser would reuse them and
// see the portal again) and those forwarded while allowed (after Revoke they
// would hang instead of being intercepted).
func (m *manager) forgetFlows(cl GuestClient) {
	for _, a := range clientAddrs(cl) {
		f := &netlink.ConntrackFilter{}
		f.AddIP(netlink.ConntrackOrigSrcIP, net.IP(a.AsSlice()))
		fam := netlink.InetFamily(unix.AF_INET)
		if a.Is6() {
			fam = unix.AF_INET6
		}
		n, err := m.nl.ConntrackDeleteFilters(netlink.ConntrackTable, fam, f)
		if err != nil {
			// Not fatal: the client's new connections follow the new
			// rules; only ones already open keep their old path.
			m.log.Warn("netcfg: forget a client's connections", "ip", a, "err", err)
			continue
		}
		m.log.Debug("netcfg forget flows", "ip", a, "deleted", n)
	}
}
