package radius

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// ClientPrefix parses a NAS address from the config: an IP ("10.0.0.5",
// "fd00::5") or a CIDR ("10.0.10.0/24").
func ClientPrefix(address string) (netip.Prefix, error) {
	if strings.Contains(address, "/") {
		p, err := netip.ParsePrefix(address)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("nas address %q: %w", address, err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(address)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("nas address %q: %w", address, err)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// nasState is a configured client plus what the server has seen from it.
type nasState struct {
	Client
	ident []byte // lower-cased Identifier

	mu         sync.Mutex
	noMA       uint64
	dropped    uint64
	lastNoMA   time.Time
	lastSource netip.AddrPort
}

// clientTable matches a source address to its NAS entries, most specific
// prefix first. It is immutable; SetClients swaps in a new one.
type clientTable struct {
	exact  map[netip.Addr][]*nasState
	ranges []*nasState // sorted by prefix length, longest first
	byName map[string]*nasState
	all    []*nasState
}

func newClientTable(cs []Client, prev *clientTable) (*clientTable, error) {
	t := &clientTable{exact: map[netip.Addr][]*nasState{}, byName: map[string]*nasState{}}
	for i, c := range cs {
		if c.Name == "" {
			return nil, fmt.Errorf("client %d: empty name", i)
		}
		if !c.Prefix.IsValid() {
			return nil, fmt.Errorf("client %s: invalid address prefix", c.Name)
		}
		if len(c.Secret) == 0 {
			return nil, fmt.Errorf("client %s: empty shared secret", c.Name)
		}
		if _, dup := t.byName[c.Name]; dup {
			return nil, fmt.Errorf("client %s: duplicate name", c.Name)
		}
		switch c.Vendor {
		case "":
			c.Vendor = VendorWISPr
		case VendorWISPr, VendorMikroTik, VendorUbiquiti, VendorCisco, VendorHostapd, VendorAruba, VendorRuckus, VendorFortinet:
		case "unifi":
			c.Vendor = VendorUbiquiti
		default:
			return nil, fmt.Errorf("client %s: unknown vendor profile %q", c.Name, c.Vendor)
		}
		switch c.CoA {
		case "":
			c.CoA = CoADisconnect
		case CoADisconnect, CoAChange, CoANone:
		default:
			return nil, fmt.Errorf("client %s: unknown coa mode %q", c.Name, c.CoA)
		}
		if c.CoAPort == 0 {
			c.CoAPort = 3799
		}
		c.Prefix = c.Prefix.Masked()
		c.Secret = bytes.Clone(c.Secret)
		n := &nasState{Client: c, ident: []byte(strings.ToLower(c.Identifier))}
		if prev != nil {
			// Keep the counters for `nas check` across reloads.
			if p, ok := prev.byName[c.Name]; ok {
				p.mu.Lock()
				n.noMA, n.dropped, n.lastNoMA, n.lastSource = p.noMA, p.dropped, p.lastNoMA, p.lastSource
				p.mu.Unlock()
			}
		}
		t.byName[c.Name] = n
		t.all = append(t.all, n)
		if c.Prefix.IsSingleIP() {
			t.exact[c.Prefix.Addr()] = append(t.exact[c.Prefix.Addr()], n)
		} else {
			t.ranges = append(t.ranges, n)
		}
	}
	slices.SortStableFunc(t.ranges, func(a, b *nasState) int { return b.Prefix.Bits() - a.Prefix.Bits() })
	return t, nil
}

// match returns the NAS entry for a request from src. Entries sharing the
// most specific matching prefix are told apart by Identifier against
// NAS-Identifier or Called-Station-Id; an entry without Identifier is the
// fallback.
func (t *clientTable) match(src netip.Addr, r *request) *nasState {
	src = src.Unmap()
	if cands, ok := t.exact[src]; ok {
		return pick(cands, r)
	}
	var cands []*nasState
	bits := -1
	for _, n := range t.ranges {
		if bits >= 0 && n.Prefix.Bits() < bits {
			break
		}
		if n.Prefix.Contains(src) {
			bits = n.Prefix.Bits()
			cands = append(cands, n)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	return pick(cands, r)
}

func pick(cands []*nasState, r *request) *nasState {
	if len(cands) == 1 && len(cands[0].ident) == 0 {
		return cands[0]
	}
	var fallback *nasState
	for _, n := range cands {
		if len(n.ident) == 0 {
			if fallback == nil {
				fallback = n
			}
			continue
		}
		if r != nil && identMatches(n.ident, r) {
			return n
		}
	}
	if fallback == nil && len(cands) == 1 {
		// A single entry with an Identifier still serves its address.
		return cands[0]
	}
	return fallback
}

// identMatches compares an identifier with NAS-Identifier and with both
// parts of Called-Station-Id ("AA-BB-CC-DD-EE-FF:SSID").
func identMatches(ident []byte, r *request) bool {
	if len(r.nasIdentifier) > 0 && bytes.EqualFold(r.nasIdentifier, ident) {
		return true
	}
	cs := r.calledStation
	if len(cs) == 0 {
		return false
	}
	mac, ssid := splitCalledStation(cs)
	if len(ssid) > 0 && bytes.EqualFold(ssid, ident) {
		return true
	}
	if m, ok := normalizeMAC(mac); ok {
		if im, ok := normalizeMAC(ident); ok && m == im {
			return true
		}
	}
	return bytes.EqualFold(cs, ident)
}

// splitCalledStation splits "AA-BB-CC-DD-EE-FF:SSID" (or the colon and
// bare-hex spellings) into the MAC and SSID parts.
func splitCalledStation(cs []byte) (mac, ssid []byte) {
	for _, n := range []int{17, 14, 12} {
		if len(cs) > n && cs[n] == ':' {
			if _, ok := normalizeMAC(cs[:n]); ok {
				return cs[:n], cs[n+1:]
			}
		}
	}
	return cs, nil
}

// normalizeMAC turns the spellings NAS use (AA-BB-CC-DD-EE-FF,
// aa:bb:..., aabb.ccdd.eeff, AABBCCDDEEFF) into aa:bb:cc:dd:ee:ff.
func normalizeMAC(b []byte) (string, bool) {
	var hex [12]byte
	n := 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			c += 'a' - 'A'
		case c == ':' || c == '-' || c == '.':
			continue
		default:
			return "", false
		}
		if n == 12 {
			return "", false
		}
		hex[n] = c
		n++
	}
	if n != 12 {
		return "", false
	}
	out := make([]byte, 0, 17)
	for i := 0; i < 12; i += 2 {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, hex[i], hex[i+1])
	}
	return string(out), true
}

// sourceLimiter remembers when each unknown source was last logged, so a
// flood is logged once per source per minute.
type sourceLimiter struct {
	mu    sync.Mutex
	seen  map[netip.Addr]time.Time
	every time.Duration
}

func (l *sourceLimiter) allow(a netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[netip.Addr]time.Time{}
	}
	if t, ok := l.seen[a]; ok && now.Sub(t) < l.every {
		return false
	}
	if len(l.seen) >= 4096 {
		for k, t := range l.seen {
			if now.Sub(t) >= l.every {
				delete(l.seen, k)
			}
		}
		if len(l.seen) >= 4096 {
			return false
		}
	}
	l.seen[a] = now
	return true
}
