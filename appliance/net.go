package appliance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/netcfg"
)

// netPart is the gateway's kernel state manager (nil when gateway.enabled
// is false: then deskgate only plans).
type netPart struct {
	mgr netcfg.Manager
}

// desiredNet computes the gateway's desired network state from the
// configuration (and, once the portal is wired, the allowed guests).
func (a *App) desiredNet(cfg *config.Config) (*netcfg.Config, error) {
	g := cfg.Gateway
	nc := &netcfg.Config{Trunk: g.Trunk, WAN: g.WAN}
	serve := map[string]bool{}
	for _, l := range g.Locations {
		serve[strings.ToLower(strings.TrimSpace(l))] = true
	}
	for _, l := range cfg.Locations {
		if len(serve) > 0 && !serve[strings.ToLower(l.Location)] {
			if id, ok := a.res.LocationID(l.Location); !ok || !serve[strings.ToLower(id)] {
				continue
			}
		}
		n := netcfg.Network{Name: l.Network, VLAN: l.VLAN}
		var err error
		if n.Addr4, err = gatewayAddr(l.Subnet); err != nil {
			return nil, fmt.Errorf("location %s: subnet: %w", l.Location, err)
		}
		if l.Subnet6 != "" {
			if n.Addr6, err = gatewayAddr(l.Subnet6); err != nil {
				return nil, fmt.Errorf("location %s: subnet6: %w", l.Location, err)
			}
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
	apply := func() {
		nc, err := a.desiredNet(a.Config())
		if err == nil {
			err = mgr.Set(ctx, nc)
		}
		if err == nil && dns != nil {
			_, err = dns.Apply(ctx, nc)
		}
		if err != nil {
			a.log.Error("apply network state", "err", err)
		}
	}
	apply()
	t := time.NewTicker(5 * time.Minute) // re-derive from the config (locations resolve after import)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			apply()
		}
	}
}

func (a *App) handleNetPlan(w http.ResponseWriter, r *http.Request) {
	nc, err := a.desiredNet(a.Config())
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	mode := "plan only (gateway.enabled is false: nothing is applied)"
	if a.Config().Gateway.Enabled {
		mode = "applied and kept in place"
	}
	writeJSON(w, http.StatusOK, map[string]string{"mode": mode, "plan": netcfg.Plan(nc)})
}

func (a *App) handleNetTeardown(w http.ResponseWriter, r *http.Request) {
	if a.Config().Gateway.Enabled {
		writeErr(w, http.StatusConflict, errors.New("gateway.enabled is true: set it to false and reload first, or stop deskgated and run deskgated -cleanup"))
		return
	}
	if err := netcfg.CleanUp(r.Context(), a.netOptions()); err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "removed every dg- chain, ipset, class and link"})
}

// CleanUpNet removes every piece of kernel state netcfg owns (deskgated
// -cleanup, after a crash).
func CleanUpNet(ctx context.Context, cfg *config.Config) error {
	return netcfg.CleanUp(ctx, netcfg.Options{CheckInterval: cfg.Gateway.CheckInterval})
}
