package config

import (
	"strings"
	"time"
)

// Config is the whole deskgate configuration file. Field comments name the
// YAML key; defaults are applied by Load before validation.
type Config struct {
	// data_dir: where the bbolt store, generated keys and the demo mailbox live.
	DataDir   string            `yaml:"data_dir"`
	Log       Log               `yaml:"log"`
	Admin     Admin             `yaml:"admin"`
	OfficeRnD OfficeRnD         `yaml:"officernd"`
	Sync      Sync              `yaml:"sync"`
	Users     Users             `yaml:"users"`
	Members   Members           `yaml:"members"`
	Plans     []PlanMapping     `yaml:"plans"`
	Groups    []Group           `yaml:"groups"`
	Locations []LocationMapping `yaml:"locations"`
	Roaming   Roaming           `yaml:"roaming"`
	SMTP      SMTP              `yaml:"smtp"`
	RADIUS    RADIUS            `yaml:"radius"`
	Gateway   Gateway           `yaml:"gateway"`
	Guests    Guests            `yaml:"guests"`
	Portal    Portal            `yaml:"portal"`
	Fleet     Fleet             `yaml:"fleet"`

	// memory_limit_mib: the Go runtime's soft memory limit
	// (debug.SetMemoryLimit), default 128; the garbage collector works
	// harder near it. Not a cap: the daemon keeps running above it.
	MemoryLimitMiB int `yaml:"memory_limit_mib"`

	// src remembers where each key came from (file and line) so Validate
	// can point at it; nil for configs built in code.
	src *source
}

// Log configures log/slog.
type Log struct {
	Level  string `yaml:"level"`  // debug|info|warn|error, default info
	Format string `yaml:"format"` // text|json, default text
}

// Admin is the daemon's local API (CLI, health, /metrics).
type Admin struct {
	// listen: loopback address of the local HTTP API, default 127.0.0.1:8417.
	Listen string `yaml:"listen"`
	// socket: unix socket the CLI uses, default <data_dir>/deskgate.sock.
	// It needs no token: its 0600 mode is the access control.
	Socket string `yaml:"socket"`
	// allowed_hosts: Host names the TCP API answers to besides the
	// loopback literals 127.0.0.1, ::1 and localhost (DNS rebinding guard).
	AllowedHosts []string `yaml:"allowed_hosts"`
	// tls_cert_file, tls_key_file: serve the TCP API over HTTPS. Required
	// when listen is not a loopback address.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
}

// Secret is a value read from a file or an environment variable. Inline
// values are accepted only where noted and never printed.
type Secret struct {
	File  string `yaml:"file"`
	Env   string `yaml:"env"`
	Value string `yaml:"value"` // inline; rejected for OfficeRnD client secrets
	// resolved holds the value after Load.
	resolved string
}

// Reveal returns the resolved secret.
func (s Secret) Reveal() string { return s.resolved }

// IsSet reports whether the secret resolved to a non-empty value.
func (s Secret) IsSet() bool { return s.resolved != "" }

// String never shows the value.
func (s Secret) String() string { return "[redacted]" }

// OfficeRnD is how to reach the space's OfficeRnD organization.
type OfficeRnD struct {
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"client_secret"` // file or env only
	OrgSlug      string `yaml:"org_slug"`
	// api_base: default https://app.officernd.com/api/v2
	APIBase string `yaml:"api_base"`
	// token_url: default https://identity.officernd.com/oauth/token
	TokenURL string `yaml:"token_url"`
	// scopes: default the read scopes deskgate needs. The daemon adds
	// flex.settings.webhooks.read/create/delete while it registers its own
	// webhook (webhook_public_url set), and falls back to the read scopes
	// when OfficeRnD refuses those (invalid_scope).
	Scopes []string `yaml:"scopes"`
	// request_timeout: per request, default 30s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// max_retries on 429/5xx, default 6.
	MaxRetries int `yaml:"max_retries"`
}

// Sync controls import, polling and webhooks.
type Sync struct {
	Interval      time.Duration `yaml:"interval"`       // default 15m
	FullEvery     time.Duration `yaml:"full_every"`     // periodic full pass that notices deletions, default 6h
	InitialImport *bool         `yaml:"initial_import"` // default true
	Webhooks      *bool         `yaml:"webhooks"`       // default true
	// webhook_listen: address of the webhook HTTP endpoint, default :8418.
	WebhookListen string `yaml:"webhook_listen"`
	// webhook_path: default /webhooks/officernd
	WebhookPath string `yaml:"webhook_path"`
	// webhook_public_url: the URL OfficeRnD should call; when set and the
	// API scope allows, deskgate registers its webhook itself.
	WebhookPublicURL string `yaml:"webhook_public_url"`
	// webhook_secret: the secret of a manually created webhook (file/env/value).
	WebhookSecret Secret `yaml:"webhook_secret"`
	// timestamp_tolerance: max |now - t| for a signed delivery, default 300s.
	TimestampTolerance time.Duration `yaml:"timestamp_tolerance"`
	// require_paid_invoice: also wait for the first invoice to be paid.
	RequirePaidInvoice bool `yaml:"require_paid_invoice"`
}

// Username formats.
const (
	UsernameEmail    = "email"
	UsernameMemberID = "member_id"
)

// Users controls how WiFi identities are derived.
type Users struct {
	// username_format: email | member_id | a template using {first} {last}
	// {email_local} {id}, e.g. "{first}.{last}". Default email.
	UsernameFormat string `yaml:"username_format"`
	// password_policy: generate | property | member. Default generate.
	PasswordPolicy string `yaml:"password_policy"`
	// password_property: member custom property for policy "property", default wifiPassword.
	PasswordProperty string `yaml:"password_property"`
	// password_length: generated password length in characters, default 14 (≥ 64 bits).
	PasswordLength int `yaml:"password_length"`
	// welcome_email: default true.
	WelcomeEmail *bool `yaml:"welcome_email"`
	// onboarding_url: base URL of the onboarding page the welcome email links
	// to (member-defined passwords) and, without /onboard, of the device
	// setup pages; default the member listener (members.listen).
	OnboardingURL string `yaml:"onboarding_url"`
	// onboarding_link_ttl: default 168h (7 days).
	OnboardingLinkTTL time.Duration `yaml:"onboarding_link_ttl"`
	// setup_link_ttl: how long a device setup link (/wifi) stays valid,
	// default 168h (7 days).
	SetupLinkTTL time.Duration `yaml:"setup_link_ttl"`
}

// Members is the listener of the member pages (/wifi device setup,
// /onboard password page). They are served only here: never on the
// webhook listener nor on the admin API.
type Members struct {
	// listen: address of the member pages, default :8443.
	Listen string `yaml:"listen"`
	// tls_cert_file / tls_key_file: the operator's certificate for the
	// member pages; without them deskgate issues one from its EAP CA for
	// the host name of users.onboarding_url.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// insecure_http: plain HTTP (the demo); only on a loopback listen address.
	InsecureHTTP bool `yaml:"insecure_http"`
}

// BaseURL is where members reach the member pages when
// users.onboarding_url is not set: the member listener, with localhost
// for an empty host.
func (m Members) BaseURL() string {
	scheme := "https"
	if m.InsecureHTTP {
		scheme = "http"
	}
	hostport := m.Listen
	if strings.HasPrefix(hostport, ":") {
		hostport = "localhost" + hostport
	}
	return scheme + "://" + hostport
}

// PlanMapping maps an OfficeRnD plan (by name or id) to access.
type PlanMapping struct {
	Plan  string `yaml:"plan"`
	Group string `yaml:"group"`
	// duration: how long access lasts from its start (e.g. 24h for a day
	// pass); zero means as long as the membership.
	Duration time.Duration `yaml:"duration"`
	// bandwidth_down / bandwidth_up: "10mbit", "512kbit", "1gbit"; empty
	// inherits the group's.
	BandwidthDown string `yaml:"bandwidth_down"`
	BandwidthUp   string `yaml:"bandwidth_up"`
	Enabled       *bool  `yaml:"enabled"` // default true; false = no WiFi
	StaticIP      bool   `yaml:"static_ip"`
	MaxDevices    int    `yaml:"max_devices"` // 0 inherits the group's
	// roaming: for roaming.policy by_plan: single | all. Default single.
	Roaming string `yaml:"roaming"`
	// DownKbps/UpKbps are the parsed bandwidths (0 = inherit).
	DownKbps int `yaml:"-"`
	UpKbps   int `yaml:"-"`
}

// Group is a named class of access (VLAN-independent): bandwidth, session
// length, device limit.
type Group struct {
	Name           string        `yaml:"name"`
	BandwidthDown  string        `yaml:"bandwidth_down"`
	BandwidthUp    string        `yaml:"bandwidth_up"`
	SessionTimeout time.Duration `yaml:"session_timeout"` // default 12h
	MaxDevices     int           `yaml:"max_devices"`     // default 3
	DownKbps       int           `yaml:"-"`
	UpKbps         int           `yaml:"-"`
}

// LocationMapping maps an OfficeRnD location (by name or id) to a network.
type LocationMapping struct {
	Location string `yaml:"location"`
	Network  string `yaml:"network"`
	VLAN     int    `yaml:"vlan"`
	Subnet   string `yaml:"subnet"` // IPv4 CIDR of the member network
	// subnet6: optional IPv6 prefix of the member network.
	Subnet6 string `yaml:"subnet6"`
	// static_pool: CIDR inside subnet for static-IP plans.
	StaticPool string `yaml:"static_pool"`
	// timezone: overrides the location's timezone from OfficeRnD.
	Timezone string `yaml:"timezone"`
	// group: a group whose bandwidth_down / bandwidth_up shape the whole
	// member network at the gateway (e.g. a VLAN for Dedicated Desk
	// members: premium); empty leaves the network unshaped.
	Group string `yaml:"group"`
}

// Roaming policies.
const (
	RoamSingle = "single"
	RoamAll    = "all"
	RoamByPlan = "by_plan"
)

// Roaming decides where a member may use WiFi.
type Roaming struct {
	Policy string `yaml:"policy"` // single | all | by_plan, default single
}

// SMTP is the outgoing mail server.
type SMTP struct {
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"` // default 587
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	From     string `yaml:"from"`
	// tls: starttls (default; required) | implicit | none (loopback only).
	TLS string `yaml:"tls"`
	// insecure_skip_verify: accept any server certificate (tests only).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// mailbox_dir: instead of SMTP, write each email as an .eml file here
	// (the demo's local mailbox). Mutually exclusive with host.
	MailboxDir string `yaml:"mailbox_dir"`
	// templates_dir: operator overrides for email templates.
	TemplatesDir string `yaml:"templates_dir"`
}

// RADIUS configures the RADIUS server (see the RADIUS section of README).
type RADIUS struct {
	AuthListen []string `yaml:"auth_listen"` // default [":1812"]
	AcctListen []string `yaml:"acct_listen"` // default [":1813"]
	Clients    []NAS    `yaml:"clients"`
	// interim_interval: Acct-Interim-Interval sent to NAS, default 5m.
	InterimInterval time.Duration `yaml:"interim_interval"`
	// dedup_window: how long replies are cached for retransmissions, default 30s.
	DedupWindow time.Duration `yaml:"dedup_window"`
	EAP         RADIUSEAP     `yaml:"eap"`
	PPSK        PPSK          `yaml:"ppsk"`
}

// PPSK configures per-member passphrases for devices without 802.1X,
// answered to the access points' MAC authentication.
type PPSK struct {
	// unknown: reject (default) | guest — what a MAC no member registered gets.
	Unknown string `yaml:"unknown"`
	// guest_vlan: the VLAN unknown devices go to with unknown: guest;
	// default gateway.guest.vlan.
	GuestVLAN int `yaml:"guest_vlan"`
	// offices: companies (Private Offices) whose members' devices share one
	// passphrase per office, on the office's own VLAN.
	Offices []PPSKOffice `yaml:"offices,omitempty"`
}

// PPSKOffice is one Private Office with a shared PPSK passphrase.
type PPSKOffice struct {
	Company string `yaml:"company"` // OfficeRnD company name or id
	VLAN    int    `yaml:"vlan"`    // 0: the location's VLAN
}

// RADIUSEAP configures WPA-Enterprise (EAP inside RADIUS).
type RADIUSEAP struct {
	// enabled: answer EAP (PEAP, EAP-TTLS, EAP-TLS), default true.
	Enabled *bool `yaml:"enabled"`
	// server_name: the DNS name on the server certificate that devices
	// check, default radius.deskgate.lan.
	ServerName string `yaml:"server_name"`
	// methods: offered in this order, default [peap, ttls, tls].
	Methods []string `yaml:"methods,omitempty"`
	// cert_file / key_file / trust_file: an operator certificate chain, its
	// key and the CA devices must trust; default a local CA deskgate
	// creates on first start.
	CertFile  string `yaml:"cert_file"`
	KeyFile   string `yaml:"key_file"`
	TrustFile string `yaml:"trust_file"`
	// profile_cert_file / profile_key_file: sign the Apple .mobileconfig
	// profiles with this certificate (unsigned without).
	ProfileCertFile string `yaml:"profile_cert_file"`
	ProfileKeyFile  string `yaml:"profile_key_file"`
}

// NAS is one RADIUS client (an access point, switch or controller).
type NAS struct {
	Name       string `yaml:"name"`
	Address    string `yaml:"address"` // IP or CIDR
	Secret     Secret `yaml:"secret"`
	Location   string `yaml:"location"`   // location name or id from locations
	Identifier string `yaml:"identifier"` // NAS-Identifier that selects this NAS's location
	Vendor     string `yaml:"vendor"`     // wispr (default) | mikrotik | ubiquiti | cisco | hostapd | aruba | ruckus | fortinet
	Legacy     bool   `yaml:"legacy"`     // accept Access-Request without Message-Authenticator
	// coa: disconnect | coa | none, default disconnect.
	CoA     string `yaml:"coa"`
	CoAPort int    `yaml:"coa_port"` // default 3799
}

// Gateway is the box's own network: the member VLANs of the locations it
// serves, the captive guest network, NAT to the uplink and shaping.
type Gateway struct {
	// enabled: program the kernel (VLANs, iptables, tc). Off by default:
	// deskgate then only prints the plan (deskgate net plan).
	Enabled bool `yaml:"enabled"`
	// trunk: the interface carrying the member (and guest) VLANs.
	Trunk string `yaml:"trunk"`
	// wan: the uplink interface; traffic leaving it is masqueraded.
	WAN string `yaml:"wan"`
	// locations: which of the configured locations this box routes
	// (name or id); empty means all.
	Locations []string `yaml:"locations,omitempty"`
	// check_interval: how often drift is looked for and repaired, default 30s.
	CheckInterval time.Duration `yaml:"check_interval"`
	// dnsmasq: run dnsmasq for DHCP and DNS on the routed networks,
	// default true when enabled.
	Dnsmasq *bool `yaml:"dnsmasq"`
	// dns_upstream: resolvers dnsmasq forwards to; empty: answer only
	// local names and leases.
	DNSUpstream []string     `yaml:"dns_upstream,omitempty"`
	Guest       GuestNetwork `yaml:"guest"`
}

// GuestNetwork is the captive guest network.
type GuestNetwork struct {
	// interface: an existing link for the guest network (when vlan is 0).
	Interface string `yaml:"interface"`
	// vlan: the guest network as a VLAN on the trunk.
	VLAN int `yaml:"vlan"`
	// address4 / address6: the gateway's own address with prefix, e.g.
	// 10.50.0.1/22 and fd00:50::1/64.
	Address4 string `yaml:"address4"`
	Address6 string `yaml:"address6"`
	// portal_port: where intercepted HTTP is sent on the gateway address,
	// default 8080.
	PortalPort int `yaml:"portal_port"`
	// walled_garden: CIDRs reachable before login.
	WalledGarden []string `yaml:"walled_garden,omitempty"`
	// walled_garden_hosts: domain names reachable before login.
	WalledGardenHosts []string `yaml:"walled_garden_hosts,omitempty"`
	// bandwidth_down / bandwidth_up: per-guest limits.
	BandwidthDown string `yaml:"bandwidth_down"`
	BandwidthUp   string `yaml:"bandwidth_up"`
	DownKbps      int    `yaml:"-"`
	UpKbps        int    `yaml:"-"`
}

// Guests configures meeting-room guest codes and day passes.
type Guests struct {
	// buffer_before / buffer_after: a meeting guest's code works this long
	// before the booking starts and after it ends, default 15m each.
	BufferBefore time.Duration `yaml:"buffer_before"`
	BufferAfter  time.Duration `yaml:"buffer_after"`
	// devices_per_code: distinct devices one code admits, default 2.
	DevicesPerCode int `yaml:"devices_per_code"`
	// daypass_from: first_login (default) | purchase.
	DayPassFrom string `yaml:"daypass_from"`
	// daypass_duration: what one day pass grants, default 24h.
	DayPassDuration time.Duration `yaml:"daypass_duration"`
	// guest_network: the guest SSID named in the code emails.
	GuestNetwork string   `yaml:"guest_network"`
	SMS          GuestSMS `yaml:"sms"`
}

// GuestSMS is the SMS hook: deskgate POSTs JSON {to, text, from} with a
// bearer token to url (SMS providers differ; a small relay adapts).
type GuestSMS struct {
	URL   string `yaml:"url"`
	Token Secret `yaml:"token"` // file only
	From  string `yaml:"from"`
}

// Portal configures the captive portal on the guest network.
type Portal struct {
	// enabled: serve the captive portal, default false.
	Enabled bool `yaml:"enabled"`
	// listen: plain HTTP listener (the target of the HTTP interception),
	// default ":8080".
	Listen string `yaml:"listen"`
	// listen_tls, cert_file, key_file: HTTPS for the RFC 8908 API.
	ListenTLS string `yaml:"listen_tls"`
	CertFile  string `yaml:"cert_file"`
	KeyFile   string `yaml:"key_file"`
	// public_url: the portal's own URL, what captive-network probes are
	// sent to, e.g. http://portal.guest.lan:8080.
	PublicURL string `yaml:"public_url"`
	// default_location: the location (name or id) of clients the box cannot
	// place otherwise; default the first of gateway.locations or locations.
	DefaultLocation string `yaml:"default_location"`
	// languages: offered languages, first is the fallback; default [en, de].
	Languages []string `yaml:"languages,omitempty"`
	// templates_dir: operator overrides for the pages.
	TemplatesDir string `yaml:"templates_dir"`
	// max_attempts / lockout: wrong codes before a client is locked out,
	// and for how long; default 5 and 15m.
	MaxAttempts int           `yaml:"max_attempts"`
	Lockout     time.Duration `yaml:"lockout"`
	// code_budget / member_budget / budget_window: wrong codes (and,
	// counted apart, wrong member passwords) all clients together may try
	// per window before that login is paused for everyone until the
	// window closes; default 30, 30 and 10m.
	CodeBudget   int           `yaml:"code_budget"`
	MemberBudget int           `yaml:"member_budget"`
	BudgetWindow time.Duration `yaml:"budget_window"`
	// branding: per-location name, logo, colour and terms.
	Branding []PortalBranding `yaml:"branding,omitempty"`
}

// PortalBranding is how the portal looks at one location.
type PortalBranding struct {
	Location     string `yaml:"location"`
	Name         string `yaml:"name"`
	LogoURL      string `yaml:"logo_url"`
	PrimaryColor string `yaml:"primary_color"`
	TermsText    string `yaml:"terms_text"`
	TermsVersion string `yaml:"terms_version"`
	VenueInfoURL string `yaml:"venue_info_url"`
}

// Fleet makes this box one of several of the same space (docs/fleet.md).
// Membership itself is set up with `deskgate fleet init|join`.
type Fleet struct {
	// listen: host:port of the fleet listener (mutual TLS websockets and
	// joins); empty = this box only dials out (behind NAT).
	Listen string `yaml:"listen"`
	// advertise: host:port other boxes dial to reach this one; default listen.
	Advertise string `yaml:"advertise"`
	// peers: wss://host:port URLs of boxes to dial.
	Peers []string `yaml:"peers"`
	// locations: OfficeRnD location names this box serves (owner of those
	// members' welcome emails).
	Locations []string `yaml:"locations"`
}
