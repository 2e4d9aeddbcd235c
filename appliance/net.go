package appliance

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/appliance/store"
	"github.com/deskgate/deskgate/netcfg"
)

// netPart is the gateway's kernel state manager (nil when gateway.enabled
// is false: then deskgate only plans).
type netPart struct {
	mgr netcfg.Manager
	// kick asks the net loop to re-derive the desired state soon (a MAC
	// learned for a static lease, a reload). Buffered 1; never blocks.
	kick chan struct{}
	// leases remembers the MAC learned per (location, member) for static
	// leases, mirroring the netLeasesBucket, so accounting bursts write
	// only what is new.
	leasesMu sync.Mutex
	leases   map[string]staticLease
}

// kickNet asks the net loop to re-derive and apply the desired state.
func (a *App) kickNet() {
	if a.net.kick == nil {
		return
	}
	select {
	case a.net.kick <- struct{}{}:
	default:
	}
}

// desiredNet computes the gateway's desired network state from the
// configuration and the store: the member networks of the locations this
// box routes (each shaped at its group's bandwidth), the static DHCP leases
// of static-IP members whose device MAC is known, the guest network and the
// guests the portal and the guest codes have let in.
func (a *App) desiredNet(cfg *config.Config) (*netcfg.Config, error) {
	g := cfg.Gateway
	nc := &netcfg.Config{Trunk: g.Trunk, WAN: g.WAN}
	serve := map[string]bool{}
	for _, l := range g.Locations {
		serve[strings.ToLower(strings.TrimSpace(l))] = true
	}
	leases, err := a.staticLeases()
	if err != nil {
		return nil, err
	}
	for _, l := range cfg.Locations {
		if g.Enabled && g.Trunk == "" {
			// No trunk: the member VLANs are routed elsewhere; this box
			// routes the guest network only. (The plan-only view still
			// lists them, as it always has.)
			break
		}
		id, resolved := a.res.LocationID(l.Location)
		if len(serve) > 0 && !serve[strings.ToLower(l.Location)] {
			if !resolved || !serve[strings.ToLower(id)] {
				continue
			}
		}
		n := netcfg.Network{Name: l.Network, VLAN: l.VLAN, Group: l.Group}
		if l.Group != "" {
			grp, ok := cfg.Group(l.Group)
			if !ok {
				return nil, fmt.Errorf("location %s: unknown group %q", l.Location, l.Group)
			}
			n.DownKbps, n.UpKbps = grp.DownKbps, grp.UpKbps
		}
		if n.Addr4, err = gatewayAddr(l.Subnet); err != nil {
			return nil, fmt.Errorf("location %s: subnet: %w", l.Location, err)
		}
		if l.Subnet6 != "" {
			if n.Addr6, err = gatewayAddr(l.Subnet6); err != nil {
				return nil, fmt.Errorf("location %s: subnet6: %w", l.Location, err)
			}
		}
		if resolved {
			n.Leases = leases[id]
		}
		nc.Networks = append(nc.Networks, n)
	}
	gn := g.Guest
	nc.Guest = netcfg.GuestNetwork{Interface: gn.Interface, VLAN: gn.VLAN, WalledGardenHosts: gn.WalledGardenHosts,
		DownKbps: gn.DownKbps, UpKbps: gn.UpKbps}
	if gn.Address4 != "" {
		p, err := netip.ParsePrefix(gn.Address4)
		if err != nil {
			return nil, fmt.Errorf("gateway.guest.address4: %w", err)
		}
		nc.Guest.Addr4 = p
		nc.Guest.PortalAddr4 = netip.AddrPortFrom(p.Addr(), uint16(gn.PortalPort))
		nc.Guest.CaptiveAPI = fmt.Sprintf("http://%s/captive-portal/api", nc.Guest.PortalAddr4)
	}
	if gn.Address6 != "" {
		p, err := netip.ParsePrefix(gn.Address6)
		if err != nil {
			return nil, fmt.Errorf("gateway.guest.address6: %w", err)
		}
		nc.Guest.Addr6 = p
		nc.Guest.PortalAddr6 = netip.AddrPortFrom(p.Addr(), uint16(gn.PortalPort))
	}
	for _, w := range gn.WalledGarden {
		p, err := netip.ParsePrefix(w)
		if err != nil {
			a, aerr := netip.ParseAddr(w)
			if aerr != nil {
				return nil, fmt.Errorf("gateway.guest.walled_garden %q: %w", w, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		nc.Guest.WalledGarden = append(nc.Guest.WalledGarden, p)
	}
	nc.Clients = a.allowedGuests()
	return nc, nil
}

// allowedGuests lists the guest clients the portal and the guest codes
// have let in, so a re-applied state keeps them allowed.
func (a *App) allowedGuests() []netcfg.GuestClient {
	if a.guests.net == nil {
		return nil
	}
	return a.guests.net.clients(a.now())
}

// gatewayAddr is the first host address of a subnet, with its prefix length.
func gatewayAddr(subnet string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(subnet)
	if err != nil {
		return netip.Prefix{}, err
	}
	p = p.Masked()
	return netip.PrefixFrom(p.Addr().Next(), p.Bits()), nil
}

func (a *App) netOptions() netcfg.Options {
	return netcfg.Options{Log: a.log.With("component", "netcfg"), Now: a.now, CheckInterval: a.Config().Gateway.CheckInterval}
}

// runNet applies the desired state when gateway.enabled and keeps it
// applied (netcfg repairs drift itself); otherwise it does nothing.
func (a *App) runNet(ctx context.Context) error {
	cfg := a.Config()
	if !cfg.Gateway.Enabled {
		<-ctx.Done()
		return nil
	}
	mgr, err := netcfg.New(a.netOptions())
	if err != nil {
		return fmt.Errorf("netcfg: %w", err)
	}
	defer mgr.Close()
	a.net.mgr = mgr
	var dns *netcfg.Dnsmasq
	if cfg.Gateway.Dnsmasq == nil || *cfg.Gateway.Dnsmasq {
		dns = &netcfg.Dnsmasq{ConfPath: filepath.Join(cfg.DataDir, "dnsmasq.conf"), Log: a.log.With("component", "dnsmasq"),
			Options: netcfg.DnsmasqOptions{LeaseFile: filepath.Join(cfg.DataDir, "dnsmasq.leases")}}
		for _, u := range cfg.Gateway.DNSUpstream {
			if ip, err := netip.ParseAddr(u); err == nil {
				dns.Options.Upstream = append(dns.Options.Upstream, ip)
			}
		}
		defer dns.Stop()
	}
	apply := func(reason string) {
		nc, err := a.desiredNet(a.Config())
		if err == nil {
			err = mgr.Set(ctx, nc)
		}
		if err == nil && dns != nil {
			_, err = dns.Apply(ctx, nc)
		}
		if err != nil {
			a.log.Error("apply network state", "reason", reason, "err", err)
		}
	}
	feed, unsubscribe := a.store.Subscribe(256)
	defer unsubscribe()
	netLoop(ctx, feed, a.net.kick, netDebounce, netRepairEvery, apply)
	return nil
}

// The net loop's timing: a burst of store changes (an import, one
// transaction's membership + account + audit) is applied once, at most
// netDebounce after its first change; netRepairEvery re-derives the state
// even without changes (decisions that change with the clock alone, such as
// a membership ending at midnight).
const (
	netDebounce    = 100 * time.Millisecond
	netRepairEvery = 10 * time.Minute
)

// netLoop applies the desired state at start, after each burst of relevant
// store changes or kicks (debounced), and every repair interval, until ctx
// ends or the feed closes.
func netLoop(ctx context.Context, feed <-chan store.Change, kick <-chan struct{}, debounce, repair time.Duration, apply func(reason string)) {
	apply("start")
	pending := time.NewTimer(time.Hour)
	pending.Stop()
	armed := false
	arm := func() {
		if !armed {
			pending.Reset(debounce)
			armed = true
		}
	}
	t := time.NewTicker(repair)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case c, ok := <-feed:
			if !ok {
				return
			}
			if netRelevant(c) {
				arm()
			}
		case <-kick:
			arm()
		case <-pending.C:
			armed = false
			apply("change")
		case <-t.C:
			apply("repair")
		}
	}
}

// netRelevant reports whether a store change can change the gateway's
// desired state: locations resolve the routed networks, and members, their
// memberships, plans and accounts decide static leases. Bookings, visitors
// and resources reach the gateway through the guest lifecycle's Allow and
// Revoke instead.
func netRelevant(c store.Change) bool {
	switch c.Kind {
	case store.KindBooking, store.KindVisitor, store.KindResource:
		return false
	}
	return true
}

// CleanUpNet removes every piece of kernel state netcfg owns (deskgated
// -cleanup, after a crash).
func CleanUpNet(ctx context.Context, cfg *config.Config) error {
	return netcfg.CleanUp(ctx, netcfg.Options{CheckInterval: cfg.Gateway.CheckInterval})
}
