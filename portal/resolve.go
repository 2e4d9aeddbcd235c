package portal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
)

// ErrUnknownClient is returned by resolvers that cannot find a client's MAC.
var ErrUnknownClient = errors.New("portal: client not in the neighbour table")

// RemoteAddr returns the client IP of r (from RemoteAddr, never from
// headers a client can set).
func RemoteAddr(r *http.Request) (netip.Addr, error) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("portal: remote address %q: %w", r.RemoteAddr, err)
	}
	return ap.Addr().Unmap(), nil
}

// ResolverFunc adapts a function to ClientResolver.
type ResolverFunc func(r *http.Request) (Client, error)

// Resolve calls f.
func (f ResolverFunc) Resolve(r *http.Request) (Client, error) { return f(r) }

// StaticResolver maps client IPs to MACs (tests, fixed setups). IPs that
// are not in the map resolve with a MAC derived from the IP when Derive is
// set, and fail with ErrUnknownClient otherwise.
type StaticResolver struct {
	mu     sync.Mutex
	MACs   map[netip.Addr]net.HardwareAddr
	Derive bool
}

// Set maps ip to mac.
func (s *StaticResolver) Set(ip netip.Addr, mac net.HardwareAddr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.MACs == nil {
		s.MACs = make(map[netip.Addr]net.HardwareAddr)
	}
	s.MACs[ip] = mac
}

// Resolve implements ClientResolver.
func (s *StaticResolver) Resolve(r *http.Request) (Client, error) {
	ip, err := RemoteAddr(r)
	if err != nil {
		return Client{}, err
	}
	s.mu.Lock()
	mac, ok := s.MACs[ip]
	s.mu.Unlock()
	if ok {
		return Client{MAC: mac, IP: ip}, nil
	}
	if s.Derive {
		b := ip.As16()
		return Client{MAC: net.HardwareAddr{0x02, 0, b[12], b[13], b[14], b[15]}, IP: ip}, nil
	}
	return Client{}, fmt.Errorf("%w: %s", ErrUnknownClient, ip)
}

// NeighborResolver finds an IPv4 client's MAC in the kernel's ARP table
// (/proc/net/arp). IPv6 clients need lease or netlink data, which the
// appliance can supply with a ResolverFunc.
type NeighborResolver struct {
	Path string // default /proc/net/arp
}

// Resolve implements ClientResolver.
func (n NeighborResolver) Resolve(r *http.Request) (Client, error) {
	ip, err := RemoteAddr(r)
	if err != nil {
		return Client{}, err
	}
	path := n.Path
	if path == "" {
		path = "/proc/net/arp"
	}
	f, err := os.Open(path)
	if err != nil {
		return Client{}, fmt.Errorf("portal: read neighbour table: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header: IP address, HW type, Flags, HW address, Mask, Device
	want := ip.String()
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 || fs[0] != want || fs[2] == "0x0" {
			continue // flags 0x0: incomplete entry
		}
		mac, err := net.ParseMAC(fs[3])
		if err != nil || mac.String() == "00:00:00:00:00:00" {
			continue
		}
		return Client{MAC: mac, IP: ip}, nil
	}
	if err := sc.Err(); err != nil {
		return Client{}, fmt.Errorf("portal: read neighbour table: %w", err)
	}
	return Client{}, fmt.Errorf("%w: %s", ErrUnknownClient, ip)
}

// MemNetwork is an in-memory Network for tests and dry runs: it records
// which clients are allowed until when.
type MemNetwork struct {
	mu      sync.Mutex
	allowed map[string]time.Time // by MAC
	// Err, when set, is returned by Allow and Revoke.
	Err error
}

// Allow implements Network.
func (m *MemNetwork) Allow(ctx context.Context, c Client, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Err != nil {
		return m.Err
	}
	if m.allowed == nil {
		m.allowed = make(map[string]time.Time)
	}
	m.allowed[c.MAC.String()] = until
	return nil
}

// Revoke implements Network.
func (m *MemNetwork) Revoke(ctx context.Context, c Client) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Err != nil {
		return m.Err
	}
	delete(m.allowed, c.MAC.String())
	return nil
}

// Allowed reports whether mac is allowed, and until when.
func (m *MemNetwork) Allowed(mac net.HardwareAddr) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.allowed[mac.String()]
	return t, ok
}
