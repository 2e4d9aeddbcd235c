package netcfg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// u32 hash tables for per-client filters: 256 buckets keyed by the last
// byte of the client address, so a packet is compared with the few clients
// sharing that byte rather than with every client.
const (
	ht4    = 0x10 << 20
	ht6    = 0x11 << 20
	prio4  = 10
	prio6  = 11
	bucket = 256
)

var (
	rootHandle    = netlink.MakeHandle(OwnedMajor, 0)
	ingressParent = netlink.MakeHandle(0xffff, 0)
)

// shaper owns the tc state: HTB trees, IFB devices and u32 filters.
type shaper struct {
	m      *manager
	leaf   string // leaf qdisc kind per class; "" keeps HTB's default fifo
	probed bool
	minors map[string]uint16
	// filters maps device -> client address -> u32 handle, as last seen.
	filters map[string]map[netip.Addr]uint32
	used    map[string]map[uint32]bool
}

func newShaper(m *manager) *shaper {
	return &shaper{m: m, minors: map[string]uint16{}, filters: map[string]map[netip.Addr]uint32{}, used: map[string]map[uint32]bool{}}
}

func (s *shaper) apply(ctx context.Context, c *Config, clients map[string]GuestClient, note func(string, ...any)) error {
	s.minors = assignMinors(clients, s.minors)
	plan := planTC(c, clients, s.minors)
	var errs []error
	links, err := s.m.nl.LinkList()
	if err != nil {
		return fmt.Errorf("link list: %w", err)
	}
	byName := map[string]netlink.Link{}
	for _, l := range links {
		byName[l.Attrs().Name] = l
	}
	// IFB devices.
	wantIFB := map[string]bool{}
	for _, name := range plan.ifbs {
		wantIFB[name] = true
		l, ok := byName[name]
		if !ok {
			if err := s.m.nl.LinkAdd(&netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: name, TxQLen: 1000}}); err != nil {
				errs = append(errs, fmt.Errorf("link add ifb %s: %w", name, err))
				continue
			}
			note("link %s added (ifb)", name)
			if l, err = s.m.nl.LinkByName(name); err != nil {
				errs = append(errs, fmt.Errorf("link get %s: %w", name, err))
				continue
			}
			byName[name] = l
		}
		if l.Attrs().Flags&net.FlagUp == 0 {
			if err := s.m.nl.LinkSetUp(l); err != nil {
				errs = append(errs, fmt.Errorf("link up %s: %w", name, err))
			} else {
				note("link %s set up", name)
			}
		}
	}
	// HTB trees.
	wantRoot := map[string]bool{}
	for _, d := range plan.devs {
		if err := ctx.Err(); err != nil {
			return err
		}
		wantRoot[d.link] = true
		l, ok := byName[d.link]
		if !ok {
			errs = append(errs, fmt.Errorf("shaping %s: link not found", d.link))
			continue
		}
		if err := s.syncDev(l, d, note); err != nil {
			errs = append(errs, err)
		}
	}
	// Ingress redirects.
	for _, l := range links {
		name := l.Attrs().Name
		ifb, want := plan.ingress[name]
		var ifbLink netlink.Link
		if want {
			if ifbLink, want = byName[ifb]; !want {
				errs = append(errs, fmt.Errorf("ingress %s: ifb %s missing", name, ifb))
			}
		}
		if err := s.syncIngress(l, ifbLink, note); err != nil {
			errs = append(errs, err)
		}
	}
	// Owned roots on links that are no longer shaped, and stale IFBs.
	for _, l := range links {
		name := l.Attrs().Name
		if strings.HasPrefix(name, "dg-ifb") || strings.HasPrefix(name, "dg-u-") {
			if !wantIFB[name] {
				if err := s.m.nl.LinkDel(l); err != nil {
					errs = append(errs, fmt.Errorf("link del %s: %w", name, err))
				} else {
					note("link %s removed", name)
				}
				continue
			}
		}
		if wantRoot[name] {
			continue
		}
		removed, err := removeOwnedRoot(s.m.nl, l)
		if err != nil {
			errs = append(errs, err)
		} else if removed {
			note("tc root qdisc dd: removed from %s", name)
			delete(s.filters, name)
			delete(s.used, name)
		}
	}
	return errors.Join(errs...)
}

func removeOwnedRoot(h *netlink.Handle, l netlink.Link) (bool, error) {
	qs, err := h.QdiscList(l)
	if err != nil {
		return false, fmt.Errorf("qdisc list %s: %w", l.Attrs().Name, err)
	}
	for _, q := range qs {
		a := q.Attrs()
		if a.Parent == netlink.HANDLE_ROOT && a.Handle == rootHandle {
			if err := h.QdiscDel(q); err != nil {
				return false, fmt.Errorf("qdisc del %s root dd: %w", l.Attrs().Name, err)
			}
			return true, nil
		}
	}
	return false, nil
}

func (s *shaper) probeLeaf(l netlink.Link, parent uint32) {
	if s.probed {
		return
	}
	s.probed = true
	for _, kind := range []string{"fq_codel", "sfq"} {
		q := leafQdisc(kind, l.Attrs().Index, parent)
		if err := s.m.nl.QdiscAdd(q); err == nil {
			s.leaf = kind
			_ = s.m.nl.QdiscDel(q)
			s.m.log.Info("netcfg leaf qdisc", "kind", kind)
			return
		}
	}
	s.m.log.Info("netcfg leaf qdisc", "kind", "htb default (fq_codel and sfq unavailable)")
}

func leafQdisc(kind string, index int, parent uint32) netlink.Qdisc {
	attrs := netlink.QdiscAttrs{LinkIndex: index, Parent: parent}
	if kind == "fq_codel" {
		return netlink.NewFqCodel(attrs)
	}
	return &netlink.Sfq{QdiscAttrs: attrs}
}

func htbClass(index int, minor uint16, rate uint64) *netlink.HtbClass {
	return netlink.NewHtbClass(netlink.ClassAttrs{
		LinkIndex: index,
		Parent:    rootHandle,
		Handle:    netlink.MakeHandle(OwnedMajor, minor),
	}, netlink.HtbClassAttrs{Rate: rate, Ceil: rate, Quantum: quantum(rate), Buffer: burst(rate), Cbuffer: burst(rate)})
}

// burst is the HTB burst for a rate in bit/s: 10 ms at that rate, at least
// four full frames. tc's default (rate/HZ + one MTU) is a single frame with
// a high-resolution clock, so a class falls short of its rate as soon as
// the qdisc watchdog fires late on a busy CPU; 10 ms absorbs that.
func burst(rate uint64) uint32 {
	return uint32(min(max(rate/8/100, 4*1600), 1<<20))
}

// quantum is the HTB quantum for a rate in bit/s: rate/10 bytes as tc would
// pick, kept within 1 MTU and 200 kB so the kernel does not warn.
func quantum(rate uint64) uint32 {
	return uint32(min(max(rate/8/10, 1514), 200000))
}

// syncDev converges one device's HTB root, classes and client filters.
func (s *shaper) syncDev(l netlink.Link, d tcDev, note func(string, ...any)) error {
	h := s.m.nl
	name := l.Attrs().Name
	idx := l.Attrs().Index
	qs, err := h.QdiscList(l)
	if err != nil {
		return fmt.Errorf("qdisc list %s: %w", name, err)
	}
	var root *netlink.Htb
	leaves := map[uint32]bool{}
	for _, q := range qs {
		a := q.Attrs()
		if a.Parent == netlink.HANDLE_ROOT && a.Handle == rootHandle {
			root, _ = q.(*netlink.Htb)
		} else if a.Parent == netlink.HANDLE_ROOT && a.Handle != 0 {
			// Kernel defaults (noqueue, pfifo_fast, mq, fq_codel) sit at
			// handle 0: and come back when ours is deleted; anything
			// else was added by someone else and is not ours to replace.
			return fmt.Errorf("shaping %s: root qdisc %s %s is not netcfg's; not replacing it", name, q.Type(), netlink.HandleStr(a.Handle))
		}
		if a.Parent>>16 == OwnedMajor {
			leaves[a.Parent] = true
		}
	}
	defcls := uint32(d.defaultMinor)
	if root == nil || root.Defcls != defcls {
		q := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: idx, Parent: netlink.HANDLE_ROOT, Handle: rootHandle})
		q.Defcls = defcls
		if err := h.QdiscReplace(q); err != nil {
			return fmt.Errorf("qdisc replace %s root htb dd: %w", name, err)
		}
		if root == nil {
			note("tc %s: root htb dd: added", name)
			leaves = map[uint32]bool{}
			s.filters[name] = nil
		} else {
			note("tc %s: root htb default set to %x", name, defcls)
		}
	}
	classes, err := h.ClassList(l, 0)
	if err != nil {
		return fmt.Errorf("class list %s: %w", name, err)
	}
	have := map[uint16]*netlink.HtbClass{}
	for _, c := range classes {
		hc, ok := c.(*netlink.HtbClass)
		if ok && hc.Handle>>16 == OwnedMajor {
			have[uint16(hc.Handle&0xffff)] = hc
		}
	}
	var errs []error
	if d.guest {
		if err := s.syncFilters(l, d, note); err != nil {
			errs = append(errs, err)
		}
	}
	for minor, rate := range d.classes {
		c, ok := have[minor]
		if ok && uint64(c.Rate) == rate/8 && uint64(c.Ceil) == rate/8 {
			if s.leaf != "" && !leaves[netlink.MakeHandle(OwnedMajor, minor)] {
				if err := s.addLeaf(idx, minor); err != nil {
					errs = append(errs, err)
				} else {
					note("tc %s: leaf %s under dd:%x added", name, s.leaf, minor)
				}
			}
			continue
		}
		if err := h.ClassReplace(htbClass(idx, minor, rate)); err != nil {
			errs = append(errs, fmt.Errorf("class replace %s dd:%x: %w", name, minor, err))
			continue
		}
		if ok {
			note("tc %s: class dd:%x rate set to %dkbit", name, minor, rate/1000)
			continue
		}
		note("tc %s: class dd:%x added (%dkbit)", name, minor, rate/1000)
		s.probeLeaf(l, netlink.MakeHandle(OwnedMajor, minor))
		if s.leaf != "" {
			if err := s.addLeaf(idx, minor); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for minor, c := range have {
		if _, ok := d.classes[minor]; ok {
			continue
		}
		if err := h.ClassDel(c); err != nil {
			errs = append(errs, fmt.Errorf("class del %s dd:%x: %w", name, minor, err))
			continue
		}
		note("tc %s: class dd:%x removed", name, minor)
	}
	return errors.Join(errs...)
}

func (s *shaper) addLeaf(idx int, minor uint16) error {
	if err := s.m.nl.QdiscReplace(leafQdisc(s.leaf, idx, netlink.MakeHandle(OwnedMajor, minor))); err != nil {
		return fmt.Errorf("qdisc add %s under dd:%x: %w", s.leaf, minor, err)
	}
	return nil
}

func addrHT(a netip.Addr) (ht uint32, prio uint16, proto uint16) {
	if a.Is4() {
		return ht4, prio4, unix.ETH_P_IP
	}
	return ht6, prio6, unix.ETH_P_IPV6
}

// u32Keys matches a whole address at the source or destination.
func u32Keys(a netip.Addr, src bool) []netlink.TcU32Key {
	b := a.AsSlice()
	off := int32(16) // IPv4 destination
	if a.Is4() && src {
		off = 12
	} else if a.Is6() {
		off = 24
		if src {
			off = 8
		}
	}
	var keys []netlink.TcU32Key
	for i := 0; i < len(b); i += 4 {
		v := uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3])
		keys = append(keys, netlink.TcU32Key{Mask: 0xffffffff, Val: v, Off: off + int32(i)})
	}
	return keys
}

func keysAddr(keys []netlink.TcU32Key) (netip.Addr, bool) {
	var b []byte
	for _, k := range keys {
		if k.Mask != 0xffffffff {
			return netip.Addr{}, false
		}
		b = append(b, byte(k.Val>>24), byte(k.Val>>16), byte(k.Val>>8), byte(k.Val))
	}
	a, ok := netip.AddrFromSlice(b)
	return a, ok
}

func addrBucket(a netip.Addr) uint32 {
	b := a.AsSlice()
	return uint32(b[len(b)-1])
}

func (s *shaper) clientFilter(idx int, a netip.Addr, src bool, handle uint32, minor uint16) *netlink.U32 {
	ht, prio, proto := addrHT(a)
	return &netlink.U32{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: idx, Parent: rootHandle, Priority: prio, Protocol: proto, Handle: handle},
		ClassId:     netlink.MakeHandle(OwnedMajor, minor),
		Hash:        ht | addrBucket(a)<<12,
		Sel:         &netlink.TcU32Sel{Flags: nl.TC_U32_TERMINAL, Keys: u32Keys(a, src)},
	}
}

// syncFilters makes sure the hash tables exist and that each client address
// has exactly one filter to its class.
func (s *shaper) syncFilters(l netlink.Link, d tcDev, note func(string, ...any)) error {
	h := s.m.nl
	name, idx := l.Attrs().Name, l.Attrs().Index
	fs, err := h.FilterList(l, rootHandle)
	if err != nil {
		return fmt.Errorf("filter list %s: %w", name, err)
	}
	haveLink := map[uint32]bool{}
	type cur struct {
		handle uint32
		class  uint32
	}
	have := map[netip.Addr]cur{}
	used := map[uint32]bool{}
	var errs []error
	for _, f := range fs {
		u, ok := f.(*netlink.U32)
		if !ok {
			continue
		}
		ht := u.Handle & 0xfff00000
		switch {
		case u.Link == ht4 || u.Link == ht6:
			haveLink[u.Link] = true
		case (ht == ht4 || ht == ht6) && u.Handle&0xfff != 0 && u.Sel != nil:
			used[u.Handle] = true
			a, ok := keysAddr(u.Sel.Keys)
			if ok {
				if _, dup := have[a]; !dup {
					have[a] = cur{u.Handle, u.ClassId}
					continue
				}
			}
			// Unparseable or duplicate: remove.
			if err := h.FilterDel(u); err != nil {
				errs = append(errs, fmt.Errorf("filter del %s %x: %w", name, u.Handle, err))
			}
			delete(used, u.Handle)
		}
	}
	for _, t := range []struct {
		ht     uint32
		prio   uint16
		proto  uint16
		hoff   int32
		family string
	}{
		{ht4, prio4, unix.ETH_P_IP, 16, "ipv4"},
		{ht6, prio6, unix.ETH_P_IPV6, 36, "ipv6"},
	} {
		hoff := t.hoff
		if d.matchSrc {
			hoff -= 4
			if t.ht == ht6 {
				hoff = 20
			}
		}
		attrs := netlink.FilterAttrs{LinkIndex: idx, Parent: rootHandle, Priority: t.prio, Protocol: t.proto}
		if !haveLink[t.ht] {
			// netlink's dump omits hash tables themselves; one that
			// survived its link is reused.
			a := attrs
			a.Handle = t.ht
			err := h.FilterAdd(&netlink.U32{FilterAttrs: a, Divisor: bucket})
			if err != nil && !errors.Is(err, unix.EEXIST) {
				errs = append(errs, fmt.Errorf("filter add %s %s hash table: %w", name, t.family, err))
				continue
			}
			if err == nil {
				note("tc %s: %s hash table added", name, t.family)
			}
			f := &netlink.U32{FilterAttrs: attrs, Link: t.ht, Sel: &netlink.TcU32Sel{
				Hmask: 0xff, Hoff: int16(hoff), Keys: []netlink.TcU32Key{{Off: hoff}},
			}}
			if err := h.FilterAdd(f); err != nil {
				errs = append(errs, fmt.Errorf("filter add %s %s hash link: %w", name, t.family, err))
				continue
			}
			note("tc %s: %s hash link added", name, t.family)
		}
	}
	handles := map[netip.Addr]uint32{}
	for a, c := range have {
		minor, ok := d.clients[a]
		if !ok {
			f := s.clientFilter(idx, a, d.matchSrc, c.handle, 0)
			if err := h.FilterDel(f); err != nil {
				errs = append(errs, fmt.Errorf("filter del %s %s: %w", name, a, err))
				continue
			}
			delete(used, c.handle)
			note("tc %s: filter %s removed", name, a)
			continue
		}
		handles[a] = c.handle
		if c.class != netlink.MakeHandle(OwnedMajor, minor) {
			if err := h.FilterReplace(s.clientFilter(idx, a, d.matchSrc, c.handle, minor)); err != nil {
				errs = append(errs, fmt.Errorf("filter replace %s %s: %w", name, a, err))
				continue
			}
			note("tc %s: filter %s now to dd:%x", name, a, minor)
		}
	}
	s.filters[name] = handles
	s.used[name] = used
	for a, minor := range d.clients {
		if _, ok := have[a]; ok {
			continue
		}
		if err := s.addFilter(l, a, d.matchSrc, minor); err != nil {
			errs = append(errs, err)
			continue
		}
		note("tc %s: filter %s -> dd:%x added", name, a, minor)
	}
	return errors.Join(errs...)
}

func (s *shaper) addFilter(l netlink.Link, a netip.Addr, src bool, minor uint16) error {
	name := l.Attrs().Name
	if s.filters[name] == nil {
		s.filters[name] = map[netip.Addr]uint32{}
	}
	if s.used[name] == nil {
		s.used[name] = map[uint32]bool{}
	}
	ht, _, _ := addrHT(a)
	base := ht | addrBucket(a)<<12
	if old, ok := s.filters[name][a]; ok {
		if err := s.m.nl.FilterReplace(s.clientFilter(l.Attrs().Index, a, src, old, minor)); err != nil {
			return fmt.Errorf("filter replace %s %s: %w", name, a, err)
		}
		return nil
	}
	for node := uint32(1); node < 0x1000; node++ {
		hd := base | node
		if s.used[name][hd] {
			continue
		}
		if err := s.m.nl.FilterAdd(s.clientFilter(l.Attrs().Index, a, src, hd, minor)); err != nil {
			return fmt.Errorf("filter add %s %s: %w", name, a, err)
		}
		s.used[name][hd] = true
		s.filters[name][a] = hd
		return nil
	}
	return fmt.Errorf("filter add %s %s: hash bucket full", name, a)
}

func (s *shaper) delFilter(l netlink.Link, a netip.Addr, src bool) error {
	name := l.Attrs().Name
	hd, ok := s.filters[name][a]
	if !ok {
		return nil
	}
	if err := s.m.nl.FilterDel(s.clientFilter(l.Attrs().Index, a, src, hd, 0)); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("filter del %s %s: %w", name, a, err)
	}
	delete(s.filters[name], a)
	delete(s.used[name], hd)
	return nil
}

// guestDevs returns the download and upload devices of the guest network.
func (s *shaper) guestDevs(c *Config) (down, up netlink.Link, err error) {
	if down, err = s.m.nl.LinkByName(c.GuestLink()); err != nil {
		return nil, nil, fmt.Errorf("link get %s: %w", c.GuestLink(), err)
	}
	if up, err = s.m.nl.LinkByName(IFBLink); err != nil {
		return nil, nil, fmt.Errorf("link get %s: %w", IFBLink, err)
	}
	return down, up, nil
}

// addClient adds one client's classes and filters: O(1) netlink messages.
func (s *shaper) addClient(c *Config, cl GuestClient) error {
	d, u := cl.rates(&c.Guest)
	if d == 0 && u == 0 {
		return nil
	}
	key := cl.MAC.String()
	minor, ok := s.minors[key]
	if !ok {
		used := map[uint16]bool{}
		for _, m := range s.minors {
			used[m] = true
		}
		minor = pickMinor(cl, used)
		s.minors[key] = minor
	}
	down, up, err := s.guestDevs(c)
	if err != nil {
		return err
	}
	var errs []error
	for _, dir := range []struct {
		l    netlink.Link
		rate int
		src  bool
	}{{down, d, false}, {up, u, true}} {
		if dir.rate == 0 {
			continue
		}
		if err := s.m.nl.ClassReplace(htbClass(dir.l.Attrs().Index, minor, uint64(dir.rate)*1000)); err != nil {
			errs = append(errs, fmt.Errorf("class replace %s dd:%x: %w", dir.l.Attrs().Name, minor, err))
			continue
		}
		if s.leaf != "" {
			if err := s.addLeaf(dir.l.Attrs().Index, minor); err != nil {
				errs = append(errs, err)
			}
		}
		for _, a := range clientAddrs(cl) {
			if err := s.addFilter(dir.l, a, dir.src, minor); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// removeClient deletes one client's filters and classes.
func (s *shaper) removeClient(cl GuestClient, _ *GuestClient) error {
	key := cl.MAC.String()
	minor, ok := s.minors[key]
	if !ok {
		return nil
	}
	delete(s.minors, key)
	down, up, err := s.guestDevs(s.m.cfg)
	if err != nil {
		return err
	}
	var errs []error
	for _, dir := range []struct {
		l   netlink.Link
		src bool
	}{{down, false}, {up, true}} {
		for _, a := range clientAddrs(cl) {
			if err := s.delFilter(dir.l, a, dir.src); err != nil {
				errs = append(errs, err)
			}
		}
		c := htbClass(dir.l.Attrs().Index, minor, 8)
		if err := s.m.nl.ClassDel(c); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("class del %s dd:%x: %w", dir.l.Attrs().Name, minor, err))
		}
	}
	return errors.Join(errs...)
}

// syncIngress makes l's ingress redirect to ifb (nil: no owned redirect).
func (s *shaper) syncIngress(l netlink.Link, ifb netlink.Link, note func(string, ...any)) error {
	h := s.m.nl
	name := l.Attrs().Name
	qs, err := h.QdiscList(l)
	if err != nil {
		return fmt.Errorf("qdisc list %s: %w", name, err)
	}
	var ingress netlink.Qdisc
	for _, q := range qs {
		if q.Type() == "ingress" {
			ingress = q
		}
	}
	if ingress == nil && ifb == nil {
		return nil
	}
	var owned []*netlink.U32
	foreign := 0
	if ingress != nil {
		fs, err := h.FilterList(l, ingressParent)
		if err != nil {
			return fmt.Errorf("filter list %s ingress: %w", name, err)
		}
		for _, f := range fs {
			if u, ok := f.(*netlink.U32); ok && f.Attrs().Priority == OwnedPrio {
				owned = append(owned, u)
			} else {
				foreign++
			}
		}
	}
	if ifb == nil {
		if len(owned) == 0 {
			return nil
		}
		if foreign == 0 {
			if err := h.QdiscDel(ingress); err != nil {
				return fmt.Errorf("qdisc del %s ingress: %w", name, err)
			}
			note("tc %s: ingress qdisc removed", name)
			return nil
		}
		for _, u := range owned {
			if err := h.FilterDel(u); err != nil {
				return fmt.Errorf("filter del %s ingress: %w", name, err)
			}
		}
		note("tc %s: ingress redirect removed", name)
		return nil
	}
	if ingress == nil {
		q := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Parent: netlink.HANDLE_INGRESS, Handle: netlink.MakeHandle(0xffff, 0)}}
		if err := h.QdiscAdd(q); err != nil {
			return fmt.Errorf("qdisc add %s ingress: %w", name, err)
		}
		note("tc %s: ingress qdisc added", name)
	}
	okCount := 0
	for _, u := range owned {
		if u.RedirIndex == ifb.Attrs().Index && okCount == 0 {
			okCount++
			continue
		}
		if err := h.FilterDel(u); err != nil {
			return fmt.Errorf("filter del %s ingress: %w", name, err)
		}
	}
	if okCount == 1 {
		return nil
	}
	f := &netlink.U32{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: l.Attrs().Index, Parent: ingressParent, Priority: OwnedPrio, Protocol: unix.ETH_P_ALL},
		Sel:         &netlink.TcU32Sel{Flags: nl.TC_U32_TERMINAL, Keys: []netlink.TcU32Key{{}}},
		Actions:     []netlink.Action{netlink.NewMirredAction(ifb.Attrs().Index)},
	}
	if err := h.FilterAdd(f); err != nil {
		return fmt.Errorf("filter add %s ingress redirect to %s: %w", name, ifb.Attrs().Name, err)
	}
	note("tc %s: ingress redirect to %s added", name, ifb.Attrs().Name)
	return nil
}
