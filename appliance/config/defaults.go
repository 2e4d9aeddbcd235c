package config

import (
	"path/filepath"
	"time"
)

// Defaults applied by Load (and ApplyDefaults) to keys left unset.
const (
	DefaultDataDir            = "/var/lib/deskgate"
	DefaultAdminListen        = "127.0.0.1:8417"
	DefaultAPIBase            = "https://app.officernd.com/api/v2"
	DefaultTokenURL           = "https://identity.officernd.com/oauth/token"
	DefaultRequestTimeout     = 30 * time.Second
	DefaultMaxRetries         = 6
	DefaultSyncInterval       = 15 * time.Minute
	DefaultFullEvery          = 6 * time.Hour
	DefaultWebhookListen      = ":8418"
	DefaultWebhookPath        = "/webhooks/officernd"
	DefaultTimestampTolerance = 300 * time.Second
	DefaultPasswordProperty   = "wifiPassword"
	DefaultPasswordLength     = 14
	DefaultOnboardingLinkTTL  = 168 * time.Hour
	DefaultSetupLinkTTL       = 168 * time.Hour
	DefaultMembersListen      = ":8443"
	DefaultSMTPPort           = 587
	DefaultSMTPImplicitPort   = 465
	DefaultSessionTimeout     = 12 * time.Hour
	DefaultMaxDevices         = 3
	DefaultInterimInterval    = 5 * time.Minute
	DefaultDedupWindow        = 30 * time.Second
	DefaultCoAPort            = 3799
	DefaultMemoryLimitMiB     = 128
)

// DefaultScopes are the OfficeRnD v2 scopes deskgate asks for when
// officernd.scopes is not set: read access to what it syncs, nothing else.
// OfficeRnD refuses a token that asks for an ungranted scope, so a
// read-only application must be able to sync with these. The webhook
// scopes (flex.settings.webhooks.read/create/delete) are added by the
// daemon only while automatic webhook registration is on.
var DefaultScopes = []string{
	"flex.community.members.read",
	"flex.community.companies.read",
	"flex.community.memberships.read",
	"flex.billing.plans.read",
	"flex.space.locations.read",
	"flex.space.resources.read",
	"flex.space.bookings.read",
	"flex.community.visitors.read",
	"flex.space.passes.read",
}

// Enumerated values.
const (
	VendorWISPr    = "wispr"
	VendorMikroTik = "mikrotik"
	VendorUbiquiti = "ubiquiti"
	VendorCisco    = "cisco"
	VendorHostapd  = "hostapd" // and OpenWrt
	VendorAruba    = "aruba"
	VendorRuckus   = "ruckus"
	VendorFortinet = "fortinet"

	CoADisconnect = "disconnect"
	CoAFull       = "coa"
	CoANone       = "none"

	TLSStartTLS = "starttls"
	TLSImplicit = "implicit"
	TLSNone     = "none"
)

func ptr[T any](v T) *T { return &v }

// ApplyDefaults fills every unset key with its default. Load calls it;
// code that builds a Config by hand may call it before Validate.
func (c *Config) ApplyDefaults() { c.applyDefaults() }

func (c *Config) applyDefaults() {
	setS := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	setD := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	setI := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setB := func(p **bool, v bool) {
		if *p == nil {
			*p = ptr(v)
		}
	}
	setS(&c.DataDir, DefaultDataDir)
	setI(&c.MemoryLimitMiB, DefaultMemoryLimitMiB)
	setS(&c.Log.Level, "info")
	setS(&c.Log.Format, "text")
	setS(&c.Admin.Listen, DefaultAdminListen)
	setS(&c.Admin.Socket, filepath.Join(c.DataDir, "deskgate.sock"))
	if c.Admin.AllowedHosts == nil {
		c.Admin.AllowedHosts = []string{}
	}
	if c.Fleet.Peers == nil {
		c.Fleet.Peers = []string{}
	}
	if c.Fleet.Locations == nil {
		c.Fleet.Locations = []string{}
	}

	o := &c.OfficeRnD
	setS(&o.APIBase, DefaultAPIBase)
	setS(&o.TokenURL, DefaultTokenURL)
	if o.Scopes == nil {
		o.Scopes = append([]string(nil), DefaultScopes...)
	}
	setD(&o.RequestTimeout, DefaultRequestTimeout)
	setI(&o.MaxRetries, DefaultMaxRetries)

	s := &c.Sync
	setD(&s.Interval, DefaultSyncInterval)
	setD(&s.FullEvery, DefaultFullEvery)
	setB(&s.InitialImport, true)
	setB(&s.Webhooks, true)
	setS(&s.WebhookListen, DefaultWebhookListen)
	setS(&s.WebhookPath, DefaultWebhookPath)
	setD(&s.TimestampTolerance, DefaultTimestampTolerance)

	u := &c.Users
	setS(&u.UsernameFormat, UsernameEmail)
	setS(&u.PasswordPolicy, "generate")
	setS(&u.PasswordProperty, DefaultPasswordProperty)
	setI(&u.PasswordLength, DefaultPasswordLength)
	setB(&u.WelcomeEmail, true)
	setS(&c.Members.Listen, DefaultMembersListen)
	setS(&u.OnboardingURL, c.Members.BaseURL()+"/onboard")
	setD(&u.OnboardingLinkTTL, DefaultOnboardingLinkTTL)
	setD(&u.SetupLinkTTL, DefaultSetupLinkTTL)

	for i := range c.Plans {
		setB(&c.Plans[i].Enabled, true)
	}
	for i := range c.Groups {
		setD(&c.Groups[i].SessionTimeout, DefaultSessionTimeout)
		setI(&c.Groups[i].MaxDevices, DefaultMaxDevices)
	}
	setS(&c.Roaming.Policy, RoamSingle)
	if c.Roaming.Policy == RoamByPlan {
		for i := range c.Plans {
			setS(&c.Plans[i].Roaming, RoamSingle)
		}
	}

	setS(&c.SMTP.TLS, TLSStartTLS)
	if c.SMTP.TLS == TLSImplicit {
		setI(&c.SMTP.Port, DefaultSMTPImplicitPort)
	}
	setI(&c.SMTP.Port, DefaultSMTPPort)

	r := &c.RADIUS
	if r.PPSK.Offices == nil {
		r.PPSK.Offices = []PPSKOffice{}
	}
	setS(&r.PPSK.Unknown, "reject")
	if r.AuthListen == nil {
		r.AuthListen = []string{":1812"}
	}
	if r.AcctListen == nil {
		r.AcctListen = []string{":1813"}
	}
	setD(&r.InterimInterval, DefaultInterimInterval)
	setD(&r.DedupWindow, DefaultDedupWindow)
	if r.EAP.Enabled == nil {
		r.EAP.Enabled = ptr(true)
	}
	setS(&r.EAP.ServerName, "radius.deskgate.lan")
	if r.EAP.Methods == nil {
		r.EAP.Methods = []string{"peap", "ttls", "tls"}
	}
	for i := range r.Clients {
		setS(&r.Clients[i].Vendor, VendorWISPr)
		setS(&r.Clients[i].CoA, CoADisconnect)
		setI(&r.Clients[i].CoAPort, DefaultCoAPort)
	}
	setD(&c.Guests.BufferBefore, 15*time.Minute)
	setD(&c.Guests.BufferAfter, 15*time.Minute)
	setI(&c.Guests.DevicesPerCode, 2)
	setS(&c.Guests.DayPassFrom, "first_login")
	setD(&c.Guests.DayPassDuration, 24*time.Hour)
	setS(&c.Portal.Listen, ":8080")
	setI(&c.Portal.MaxAttempts, 5)
	setD(&c.Portal.Lockout, 15*time.Minute)
	setI(&c.Portal.CodeBudget, 30)
	setI(&c.Portal.MemberBudget, 30)
	setD(&c.Portal.BudgetWindow, 10*time.Minute)
	if c.Portal.Languages == nil {
		c.Portal.Languages = []string{"en", "de"}
	}
	if c.Portal.Branding == nil {
		c.Portal.Branding = []PortalBranding{}
	}
	setD(&c.Gateway.CheckInterval, 30*time.Second)
	if c.Gateway.Dnsmasq == nil {
		c.Gateway.Dnsmasq = ptr(true)
	}
	if c.Gateway.DNSUpstream == nil {
		c.Gateway.DNSUpstream = []string{}
	}
	for _, l := range []*[]string{&c.Gateway.Locations, &c.Gateway.Guest.WalledGarden, &c.Gateway.Guest.WalledGardenHosts} {
		if *l == nil {
			*l = []string{}
		}
	}
	setI(&c.Gateway.Guest.PortalPort, 8080)
	c.parseBandwidths()
}

// parseBandwidths fills DownKbps/UpKbps from the bandwidth strings,
// leaving 0 where a string is empty or bad (Validate reports bad ones).
func (c *Config) parseBandwidths() {
	for i := range c.Groups {
		g := &c.Groups[i]
		g.DownKbps, _ = ParseBandwidth(g.BandwidthDown)
		g.UpKbps, _ = ParseBandwidth(g.BandwidthUp)
	}
	for i := range c.Plans {
		p := &c.Plans[i]
		p.DownKbps, _ = ParseBandwidth(p.BandwidthDown)
		p.UpKbps, _ = ParseBandwidth(p.BandwidthUp)
	}
	g := &c.Gateway.Guest
	g.DownKbps, _ = ParseBandwidth(g.BandwidthDown)
	g.UpKbps, _ = ParseBandwidth(g.BandwidthUp)
}
