package netcfg

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// benchClient returns guest client i of a /16 guest network.
func benchClient(i int) GuestClient {
	return GuestClient{
		MAC:      net.HardwareAddr{0x02, 0, 0, 0x01, byte(i >> 8), byte(i)},
		IP4:      netip.AddrFrom4([4]byte{10, 77, byte(i/250 + 1), byte(i%250 + 2)}),
		IP6:      []netip.Addr{netip.MustParseAddr(fmt.Sprintf("fd77::1:%x", i))},
		DownKbps: 20000, UpKbps: 10000,
	}
}

// benchGateway is a gateway namespace with a guest and a WAN link and a
// config with n allowed clients.
func benchGateway(b *testing.B, n int) (*lab, *Config) {
	needRoot(b, "ipset")
	l := newLab(b)
	l.addNS("gw", "peer")
	l.veth("gw", "guest0", "peer", "p0")
	l.veth("gw", "wan0", "peer", "p1")
	l.addr("gw", "guest0", "10.77.0.1/16", "fd77::1/64")
	l.addr("gw", "wan0", "198.51.100.1/24")
	cfg := &Config{WAN: "wan0", Guest: GuestNetwork{
		Interface: "guest0", Addr4: netip.MustParsePrefix("10.77.0.1/16"), Addr6: netip.MustParsePrefix("fd77::1/64"),
		PortalAddr4: netip.MustParseAddrPort("10.77.0.1:8080"), PortalAddr6: netip.MustParseAddrPort("[fd77::1]:8080"),
	}}
	for i := range n {
		cfg.Clients = append(cfg.Clients, benchClient(i))
	}
	return l, cfg
}

// BenchmarkAllowRevoke1000 measures Allow plus Revoke of one client (IPv4,
// IPv6, download and upload classes) with 1,000 clients already allowed.
func BenchmarkAllowRevoke1000(b *testing.B) {
	l, cfg := benchGateway(b, 1000)
	m, err := New(Options{NetNS: l.ns["gw"], CheckInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	if err := m.Set(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	var ds []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		cl := benchClient(1000 + i%5000)
		start := time.Now()
		if err := m.Allow(ctx, cl); err != nil {
			b.Fatal(err)
		}
		if err := m.Revoke(ctx, cl.MAC); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds()), "µs-median")
	b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds()), "µs-p99")
}

// BenchmarkReconcile1000 measures Set of a config with 1,000 allowed
// clients onto a gateway where netcfg has nothing yet.
func BenchmarkReconcile1000(b *testing.B) {
	l, cfg := benchGateway(b, 1000)
	ctx := context.Background()
	opts := Options{NetNS: l.ns["gw"], CheckInterval: -1}
	for b.Loop() {
		b.StopTimer()
		if err := CleanUp(ctx, opts); err != nil {
			b.Fatal(err)
		}
		m, err := New(opts)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := m.Set(ctx, cfg); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		m.Close()
		b.StartTimer()
	}
}
