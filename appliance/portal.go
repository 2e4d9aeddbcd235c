package appliance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/appliance/creds"
	"github.com/deskgate/deskgate/appliance/guests"
	"github.com/deskgate/deskgate/appliance/store"
	"github.com/deskgate/deskgate/internal/guestnet"
	"github.com/deskgate/deskgate/internal/keyfile"
	"github.com/deskgate/deskgate/netcfg"
	"github.com/deskgate/deskgate/portal"
)

// guestPart is the guest side: codes (appliance/guests), the captive
// portal, and the allow-list they drive.
type guestPart struct {
	mu  sync.Mutex
	mgr *guests.Manager
	// started is closed once mgr is set and running.
	started chan struct{}
	portal  *portal.Server
	net     *guestNet
}

// guestNet is the one allow-list both the portal and the guest lifecycle
// drive: it remembers who is allowed (for netcfg's desired state and for
// status) and programs the gateway when gateway.enabled is true.
type guestNet struct {
	a  *App
	mu sync.Mutex
	by map[string]netcfg.GuestClient // by MAC (or IP when no MAC)
}

func clientKey(mac net.HardwareAddr, ip netip.Addr) string {
	if len(mac) > 0 {
		return mac.String()
	}
	return ip.String()
}

func (g *guestNet) allow(ctx context.Context, mac net.HardwareAddr, ip netip.Addr, until time.Time) error {
	gc := netcfg.GuestClient{MAC: mac, Until: until}
	if ip.Is4() || ip.Is4In6() {
		gc.IP4 = ip.Unmap()
	} else if ip.IsValid() {
		gc.IP6 = []netip.Addr{ip}
	}
	g.mu.Lock()
	if g.by == nil {
		g.by = map[string]netcfg.GuestClient{}
	}
	g.by[clientKey(mac, ip)] = gc
	g.mu.Unlock()
	if m := g.a.net.mgr; m != nil && len(mac) > 0 {
		if err := m.Allow(ctx, gc); err != nil {
			return fmt.Errorf("allow guest %s: %w", mac, err)
		}
	}
	return nil
}

func (g *guestNet) revoke(ctx context.Context, mac net.HardwareAddr, ip netip.Addr) error {
	g.mu.Lock()
	delete(g.by, clientKey(mac, ip))
	g.mu.Unlock()
	if m := g.a.net.mgr; m != nil && len(mac) > 0 {
		if err := m.Revoke(ctx, mac); err != nil {
			return fmt.Errorf("revoke guest %s: %w", mac, err)
		}
	}
	return nil
}

// clients returns the allowed guests still within their time.
func (g *guestNet) clients(now time.Time) []netcfg.GuestClient {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []netcfg.GuestClient
	for k, c := range g.by {
		if !c.Until.IsZero() && !c.Until.After(now) {
			delete(g.by, k)
			continue
		}
		if len(c.MAC) > 0 {
			out = append(out, c)
		}
	}
	return out
}

// guestNetwork opens and closes the guest network for the portal and the
// guest lifecycle (both speak internal/guestnet's Network).
type guestNetwork struct{ g *guestNet }

// The guest lifecycle is the portal's Backend as it is: both speak
// internal/guestnet, so a drift between them fails to compile.
var (
	_ portal.Backend = (*guests.Manager)(nil)
	_ portal.Network = guestNetwork{}
	_ guests.Network = guestNetwork{}
)

func (n guestNetwork) Allow(ctx context.Context, c guestnet.Client, until time.Time) error {
	return n.g.allow(ctx, c.MAC, c.IP, until)
}
func (n guestNetwork) Revoke(ctx context.Context, c guestnet.Client) error {
	return n.g.revoke(ctx, c.MAC, c.IP)
}

// members checks a member's email and WiFi password for the portal's
// member login, with the decision at the portal's location.
type members struct{ a *App }

func (m members) CheckMember(ctx context.Context, email, password, locationID string) (string, string, time.Time, error) {
	var id, name string
	var until time.Time
	err := m.a.store.View(func(tx *store.Tx) error {
		mem, err := tx.MemberByEmail(email)
		if err != nil {
			return guests.ErrBadCredentials
		}
		acct, err := tx.AccountOfMember(mem.ID)
		if err != nil || !creds.VerifyPassword(acct.NTHash, password) {
			return guests.ErrBadCredentials
		}
		_, dec, err := m.a.res.DecideMember(tx, mem.ID, m.a.now())
		if err != nil {
			return err
		}
		if !dec.Allowed {
			return fmt.Errorf("%w: %s", guests.ErrNoWiFi, firstReason(dec.Reasons))
		}
		if _, ok := dec.At(locationID); !ok {
			return guests.ErrWrongLocation
		}
		id, name, until = mem.ID, mem.Name, dec.ValidUntil
		return nil
	})
	return id, name, until, err
}

func firstReason(r []string) string {
	if len(r) == 0 {
		return ""
	}
	return r[0]
}

// portalLocation is the location whose portal this box serves.
func portalLocation(cfg *config.Config) string {
	switch {
	case cfg.Portal.DefaultLocation != "":
		return cfg.Portal.DefaultLocation
	case len(cfg.Gateway.Locations) > 0:
		return cfg.Gateway.Locations[0]
	case len(cfg.Locations) > 0:
		return cfg.Locations[0].Location
	}
	return ""
}

// runGuests starts the guest lifecycle and the portal once OfficeRnD's
// locations are known (codes and branding are keyed by location id).
func (a *App) runGuests(ctx context.Context) error {
	cfg := a.Config()
	a.guests.net = &guestNet{a: a}
	for {
		if _, ok := a.res.LocationID(portalLocation(cfg)); ok || len(cfg.Locations) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	sealKey, err := loadOrCreateKey(filepath.Join(cfg.DataDir, "guests.key"))
	if err != nil {
		return err
	}
	codeKey, err := loadCodeKey(filepath.Join(cfg.DataDir, codeKeyFile))
	if err != nil {
		return err
	}
	gl := map[string]guests.Location{}
	for _, l := range cfg.Locations {
		if id, ok := a.res.LocationID(l.Location); ok {
			gl[id] = guests.Location{Network: cfg.Guests.GuestNetwork}
		}
	}
	gcfg := guests.Config{
		BufferBefore: cfg.Guests.BufferBefore, BufferAfter: cfg.Guests.BufferAfter,
		DevicesPerCode: cfg.Guests.DevicesPerCode, DayPassFrom: cfg.Guests.DayPassFrom,
		DayPassDuration: cfg.Guests.DayPassDuration, Locations: gl, SealKey: sealKey, CodeKey: codeKey, KickMail: a.sender.Kick,
		SMS: guests.SMSConfig{URL: cfg.Guests.SMS.URL, TokenFile: cfg.Guests.SMS.Token.File, From: cfg.Guests.SMS.From},
	}
	mgr := guests.New(gcfg, a.store, guestNetwork{a.guests.net}, members{a}, a.log.With("component", "guests"), a.now)
	a.guests.mu.Lock()
	a.guests.mgr = mgr
	a.guests.mu.Unlock()

	errc := make(chan error, 2)
	go func() { errc <- mgr.Run(ctx) }()
	close(a.guests.started)
	if cfg.Portal.Enabled {
		srv, err := a.newPortal(cfg, mgr)
		if err != nil {
			return err
		}
		a.guests.mu.Lock()
		a.guests.portal = srv
		a.guests.mu.Unlock()
		go func() { errc <- srv.Run(ctx) }()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
				return err
			}
		}
	}
}

func (a *App) newPortal(cfg *config.Config, mgr *guests.Manager) (*portal.Server, error) {
	def, _ := a.res.LocationID(portalLocation(cfg))
	pc := portal.Config{
		Listen: cfg.Portal.Listen, ListenTLS: cfg.Portal.ListenTLS, CertFile: cfg.Portal.CertFile, KeyFile: cfg.Portal.KeyFile,
		PublicURL: cfg.Portal.PublicURL, DefaultLocation: def, Languages: cfg.Portal.Languages,
		TemplatesDir: cfg.Portal.TemplatesDir, MaxAttempts: cfg.Portal.MaxAttempts, Lockout: cfg.Portal.Lockout,
		CodeBudget: cfg.Portal.CodeBudget, MemberBudget: cfg.Portal.MemberBudget, BudgetWindow: cfg.Portal.BudgetWindow,
		CSRFKeyFile: filepath.Join(cfg.DataDir, "portal-csrf.key"), Now: a.now,
		OnboardURL: a.memberProfileURL,
		Locations:  map[string]portal.Branding{},
	}
	for _, l := range cfg.Locations {
		id, ok := a.res.LocationID(l.Location)
		if !ok {
			continue
		}
		b := portal.Branding{Name: l.Location, TimeZone: l.Timezone}
		for _, br := range cfg.Portal.Branding {
			if strings.EqualFold(br.Location, l.Location) {
				b.Name = firstNonEmpty(br.Name, l.Location)
				b.LogoURL, b.PrimaryColor, b.TermsText, b.TermsVersion, b.VenueInfoURL = br.LogoURL, br.PrimaryColor, br.TermsText, br.TermsVersion, br.VenueInfoURL
			}
		}
		pc.Locations[id] = b
	}
	var resolver portal.ClientResolver = loopbackOrNeighbor{}
	if a.portalResolver != nil {
		resolver = a.portalResolver
	}
	srv, err := portal.New(pc, mgr, guestNetwork{a.guests.net}, resolver, a.log.With("component", "portal"))
	if err != nil {
		return nil, fmt.Errorf("portal: %w", err)
	}
	return srv, nil
}

// codeKeyFile (in data_dir) holds the key of the HMAC under which guest
// codes are stored; it is never written to the database or logged.
const codeKeyFile = "guest-codes.key"

// loadCodeKey reads the 32-byte guest code key at path, creating it (0600)
// when there is none. An existing file of the wrong size or readable by
// others is refused, not replaced: a new key would silently invalidate
// every live code.
func loadCodeKey(path string) ([]byte, error) { return keyfile.LoadOrCreate(path, "guest code key") }

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// loopbackOrNeighbor finds a guest's MAC in the kernel's neighbour table;
// a browser on the box itself (loopback, as in make demo) has none and is
// given a stable made-up one derived from its address.
type loopbackOrNeighbor struct{}

func (loopbackOrNeighbor) Resolve(r *http.Request) (portal.Client, error) {
	ip, err := portal.RemoteAddr(r)
	if err == nil && ip.IsLoopback() {
		return (&portal.StaticResolver{Derive: true}).Resolve(r)
	}
	if err == nil && ip.Is6() && !ip.Is4In6() {
		// The ARP table is IPv4 only; IPv6 neighbours come from netlink.
		if mac, ok := netcfg.NeighbourMAC(ip); ok {
			return portal.Client{MAC: mac, IP: ip}, nil
		}
		return portal.Client{}, fmt.Errorf("%w: %s", portal.ErrUnknownClient, ip)
	}
	return portal.NeighborResolver{}.Resolve(r)
}

// memberProfileURL is the "set up the secure network" link the portal
// offers members who landed on the guest network.
func (a *App) memberProfileURL(memberID string) string {
	var user string
	_ = a.store.View(func(tx *store.Tx) error {
		if acct, err := tx.AccountOfMember(memberID); err == nil {
			user = acct.Username
		}
		return nil
	})
	return a.ProfileURL(user)
}
