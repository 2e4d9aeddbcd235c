package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Problem is one mistake in a config: the key path (e.g. "plans[2].group"),
// where it is in the file (0 when the key is absent or the config was built
// in code), what is wrong and what to do about it.
type Problem struct {
	Path string
	File string
	Line int
	Msg  string
	Hint string
}

// String renders "file:line: path: message; hint: ...".
func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.File != "" && p.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", p.File, p.Line)
	case p.File != "":
		fmt.Fprintf(&b, "%s: ", p.File)
	case p.Line > 0:
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Msg)
	if p.Hint != "" {
		b.WriteString("; hint: " + p.Hint)
	}
	return b.String()
}

// ValidationError lists every problem found in a config.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	if len(e.Problems) == 1 {
		return "invalid config: " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid config: %d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}

func (e *ValidationError) sort() {
	sort.SliceStable(e.Problems, func(i, j int) bool {
		a, b := e.Problems[i], e.Problems[j]
		if (a.Line == 0) != (b.Line == 0) {
			return b.Line == 0
		}
		return a.Line < b.Line
	})
}

// Line returns the line of the config file the key path came from, or of
// its nearest enclosing key that appeared; 0 if unknown.
func (c *Config) Line(path string) int {
	if c.src == nil {
		return 0
	}
	for path != "" {
		if l, ok := c.src.lines[path]; ok {
			return l
		}
		if i := strings.LastIndexAny(path, ".["); i >= 0 {
			path = path[:i]
		} else {
			break
		}
	}
	return 0
}

// Where returns "file:line" for a key path (see Line), for runtime errors
// that want to point at the config; "" if unknown.
func (c *Config) Where(path string) string {
	if c.src == nil {
		return ""
	}
	if l := c.Line(path); l > 0 {
		return fmt.Sprintf("%s:%d", c.src.file, l)
	}
	return c.src.file
}

func (c *Config) problem(path, msg, hint string) Problem {
	p := Problem{Path: path, Msg: msg, Hint: hint, Line: c.Line(path)}
	if c.src != nil {
		p.File = c.src.file
	}
	return p
}

// Validate checks the config for mistakes and returns nil or a
// *ValidationError listing all of them. Load calls it after applying
// defaults and resolving secrets; a Config built in code should call
// ApplyDefaults first and use NewSecret for its secrets.
func (c *Config) Validate() error {
	v := c.validate()
	if len(v.Problems) == 0 {
		return nil
	}
	v.sort()
	return v
}

type checker struct {
	c *Config
	v *ValidationError
}

func (k *checker) add(path, hint, format string, args ...any) {
	k.v.Problems = append(k.v.Problems, k.c.problem(path, fmt.Sprintf(format, args...), hint))
}

func (c *Config) validate() *ValidationError {
	k := &checker{c: c, v: &ValidationError{}}
	k.general()
	k.officernd()
	k.sync()
	k.users()
	k.members()
	groups := k.groups()
	k.plans(groups)
	locs := k.locations()
	k.smtp()
	k.radius(locs)
	k.gateway(locs)
	k.guestsPortal(locs)
	k.eap()
	k.fleet(locs)
	return k.v
}

// fleet checks the fleet section.
func (k *checker) fleet(locs map[string]bool) {
	f := &k.c.Fleet
	if f.Listen != "" {
		k.hostPort("fleet.listen", f.Listen)
	}
	if f.Advertise != "" {
		k.hostPort("fleet.advertise", f.Advertise)
	}
	for i, p := range f.Peers {
		u, err := url.Parse(p)
		if err != nil || u.Scheme != "wss" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			k.add(fmt.Sprintf("fleet.peers[%d]", i), "write wss://host:port", "fleet peer %q is not a wss://host:port URL", p)
		}
	}
	for i, l := range f.Locations {
		if !locs[normKey(l)] {
			k.add(fmt.Sprintf("fleet.locations[%d]", i), "use a location from the locations section", "fleet location %q is not in locations", l)
		}
	}
}

// guestsPortal checks the guest-code and captive-portal sections.
func (k *checker) guestsPortal(locs map[string]bool) {
	g := &k.c.Guests
	if g.DevicesPerCode < 1 || g.DevicesPerCode > 50 {
		k.add("guests.devices_per_code", "use 1..50 (default 2)", "devices_per_code %d out of range", g.DevicesPerCode)
	}
	k.enum("guests.daypass_from", g.DayPassFrom, "first_login", "purchase")
	if g.DayPassDuration < time.Hour {
		k.add("guests.daypass_duration", `use at least "1h" (default 24h)`, "daypass_duration %s is too short", g.DayPassDuration)
	}
	if g.SMS.URL != "" {
		k.httpURL("guests.sms.url", g.SMS.URL, false)
		if g.SMS.Token.File == "" {
			k.add("guests.sms.token", "put the bearer token in a file (chmod 600): {file: /etc/deskgate/sms.token}", "the SMS hook needs a token file")
		}
	}
	p := &k.c.Portal
	if p.MaxAttempts < 1 {
		k.add("portal.max_attempts", "use 1 or more (default 5)", "max_attempts %d", p.MaxAttempts)
	}
	if p.CodeBudget < 1 {
		k.add("portal.code_budget", "use 1 or more (default 30); it cannot be switched off", "code_budget %d", p.CodeBudget)
	}
	if p.MemberBudget < 1 {
		k.add("portal.member_budget", "use 1 or more (default 30); it cannot be switched off", "member_budget %d", p.MemberBudget)
	}
	if p.BudgetWindow < time.Minute || p.BudgetWindow > 24*time.Hour {
		k.add("portal.budget_window", `use "1m" to "24h" (default 10m)`, "budget_window %s is out of range", p.BudgetWindow)
	}
	if (p.CertFile == "") != (p.KeyFile == "") {
		k.add("portal.cert_file", "give both cert_file and key_file, or neither", "cert_file and key_file go together")
	}
	if p.ListenTLS != "" && p.CertFile == "" {
		k.add("portal.listen_tls", "set cert_file and key_file for HTTPS", "listen_tls needs a certificate")
	}
	if p.PublicURL != "" {
		k.httpURL("portal.public_url", p.PublicURL, true)
	}
	if p.DefaultLocation != "" && !locs[normKey(p.DefaultLocation)] {
		k.add("portal.default_location", "use a location from locations:", "location %q is not configured", p.DefaultLocation)
	}
	for i, b := range p.Branding {
		if !locs[normKey(b.Location)] {
			k.add(fmt.Sprintf("portal.branding[%d].location", i), "use a location from locations:", "location %q is not configured", b.Location)
		}
		if b.PrimaryColor != "" && !colorRE.MatchString(b.PrimaryColor) {
			k.add(fmt.Sprintf("portal.branding[%d].primary_color", i), `write a hex colour like "#1d4ed8"`, "bad colour %q", b.PrimaryColor)
		}
	}
}

var colorRE = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// gateway checks the box's own network section.
func (k *checker) gateway(locs map[string]bool) {
	g := &k.c.Gateway
	for i, l := range g.Locations {
		if !locs[normKey(l)] {
			k.add(fmt.Sprintf("gateway.locations[%d]", i), "use a location from locations:", "location %q is not configured", l)
		}
	}
	for i, u := range g.DNSUpstream {
		if _, err := netip.ParseAddr(u); err != nil {
			k.add(fmt.Sprintf("gateway.dns_upstream[%d]", i), "write an IP address such as 9.9.9.9", "bad address %q", u)
		}
	}
	if g.CheckInterval < time.Second {
		k.add("gateway.check_interval", `use at least "1s" (default 30s)`, "check_interval %s is too short", g.CheckInterval)
	}
	gn := &g.Guest
	if gn.VLAN < 0 || gn.VLAN > 4094 {
		k.add("gateway.guest.vlan", "use 1..4094, or 0 with guest.interface", "vlan %d out of range", gn.VLAN)
	}
	for _, a := range []struct{ path, v string }{{"gateway.guest.address4", gn.Address4}, {"gateway.guest.address6", gn.Address6}} {
		if a.v == "" {
			continue
		}
		if p, err := netip.ParsePrefix(a.v); err != nil || p.Addr() == p.Masked().Addr() {
			k.add(a.path, "write the gateway's own address with its prefix length, e.g. 10.50.0.1/22", "bad address %q", a.v)
		}
	}
	for i, w := range gn.WalledGarden {
		if _, err := netip.ParsePrefix(w); err != nil {
			if _, err := netip.ParseAddr(w); err != nil {
				k.add(fmt.Sprintf("gateway.guest.walled_garden[%d]", i), "write an address or CIDR; host names go under walled_garden_hosts", "bad prefix %q", w)
			}
		}
	}
	k.bandwidth("gateway.guest.bandwidth_down", gn.BandwidthDown)
	k.bandwidth("gateway.guest.bandwidth_up", gn.BandwidthUp)
	if gn.PortalPort < 1 || gn.PortalPort > 65535 {
		k.add("gateway.guest.portal_port", "use 1..65535 (default 8080)", "portal_port %d out of range", gn.PortalPort)
	}
	if !g.Enabled {
		return
	}
	if g.WAN == "" {
		k.add("gateway.wan", "name the uplink interface, e.g. eth0", "required when gateway.enabled is true")
	}
	if g.Trunk == "" && gn.Interface == "" {
		k.add("gateway.trunk", "name the interface carrying the VLANs, e.g. eth1", "required when gateway.enabled is true")
	}
	if gn.VLAN == 0 && gn.Interface == "" {
		k.add("gateway.guest.vlan", "give the guest network a VLAN on the trunk, or an interface", "guest network has neither vlan nor interface")
	}
	if gn.Address4 == "" {
		k.add("gateway.guest.address4", "e.g. 10.50.0.1/22", "required when gateway.enabled is true")
	}
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// enumHint suggests the nearest allowed value, or lists them.
func enumHint(v string, allowed ...string) string {
	if s := closest(v, allowed); s != "" {
		return fmt.Sprintf("did you mean %q? (one of: %s)", s, strings.Join(allowed, ", "))
	}
	return "use one of: " + strings.Join(allowed, ", ")
}

func (k *checker) enum(path, v string, allowed ...string) {
	if !oneOf(v, allowed...) {
		k.add(path, enumHint(v, allowed...), "unknown value %q", v)
	}
}

func (k *checker) hostPort(path, v string) {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		k.add(path, `write host:port, e.g. "127.0.0.1:8417" or ":1812" for all addresses`, "bad listen address %q", v)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		k.add(path, "ports are numbers 1..65535", "bad port %q in %q", port, v)
		return
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			k.add(path, "use an IP address (or leave the host empty for all addresses)", "bad host %q in %q", host, v)
		}
	}
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}

// httpURL checks an absolute http(s) URL; plain http only on loopback
// unless allowHTTP.
func (k *checker) httpURL(path, v string, allowHTTP bool) {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		k.add(path, "write an absolute URL such as https://host/path", "bad URL %q", v)
		return
	}
	if u.Scheme == "http" && !allowHTTP && !isLoopbackHost(u.Hostname()) {
		k.add(path, "use https:// (plain http is allowed only to a loopback simulator)", "URL %q is not https", v)
	}
	if u.User != nil {
		k.add(path, "remove user:password@ from the URL", "URL %q carries credentials", redactURL(u))
	}
}

func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

func (k *checker) general() {
	c := k.c
	if !filepath.IsAbs(c.DataDir) {
		k.add("data_dir", "use an absolute path such as /var/lib/deskgate", "data_dir %q is not absolute", c.DataDir)
	}
	k.enum("log.level", c.Log.Level, "debug", "info", "warn", "error")
	k.enum("log.format", c.Log.Format, "text", "json")
	k.hostPort("admin.listen", c.Admin.Listen)
	if !filepath.IsAbs(c.Admin.Socket) {
		k.add("admin.socket", "use an absolute path, e.g. /var/lib/deskgate/deskgate.sock", "admin.socket %q is not absolute", c.Admin.Socket)
	}
	k.admin()
	k.enum("roaming.policy", c.Roaming.Policy, RoamSingle, RoamAll, RoamByPlan)
	if c.MemoryLimitMiB < 16 || c.MemoryLimitMiB > 1<<20 {
		k.add("memory_limit_mib", "use at least 16 (default 128)", "memory_limit_mib %d out of range", c.MemoryLimitMiB)
	}
}

// admin checks the TCP API's TLS files and host names.
func (k *checker) admin() {
	a := &k.c.Admin
	if (a.TLSCertFile == "") != (a.TLSKeyFile == "") {
		path := "admin.tls_cert_file"
		if a.TLSCertFile != "" {
			path = "admin.tls_key_file"
		}
		k.add(path, "give both admin.tls_cert_file and admin.tls_key_file, or neither", "tls_cert_file and tls_key_file go together")
	}
	for _, f := range []struct{ path, v string }{{"admin.tls_cert_file", a.TLSCertFile}, {"admin.tls_key_file", a.TLSKeyFile}} {
		if f.v != "" && !filepath.IsAbs(f.v) {
			k.add(f.path, "use an absolute path, e.g. /etc/deskgate/admin.pem", "%s %q is not absolute", f.path, f.v)
		}
	}
	// Off loopback without tls_cert_file the daemon serves TLS with a
	// self-signed certificate and answers plain HTTP from loopback peers
	// only (appliance/admintls.go), so the token never crosses the
	// network in clear text.
	for i, h := range a.AllowedHosts {
		if !hostNameRE.MatchString(h) {
			if _, err := netip.ParseAddr(h); err != nil {
				k.add(fmt.Sprintf("admin.allowed_hosts[%d]", i), `write a bare host name or IP address without port or scheme, e.g. "gw.example.lan"`, "bad host name %q", h)
			}
		}
	}
}

var hostNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)

var slugRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func (k *checker) officernd() {
	o := k.c.OfficeRnD
	if strings.TrimSpace(o.ClientID) == "" {
		k.add("officernd.client_id", "copy the client ID of your API application from OfficeRnD Settings > Developer Tools", "required key is missing")
	}
	switch {
	case o.ClientSecret.Value != "":
		k.add("officernd.client_secret.value", "store it in a file readable only by deskgate ({file: /etc/deskgate/officernd.secret}, chmod 600) or pass it in the environment ({env: DESKGATE_OFFICERND_SECRET})",
			"the OfficeRnD client secret may not be written inline in the config")
	case !o.ClientSecret.configured() && !o.ClientSecret.IsSet():
		k.add("officernd.client_secret", "add client_secret: {file: /etc/deskgate/officernd.secret} or {env: DESKGATE_OFFICERND_SECRET}", "required key is missing")
	}
	switch {
	case o.OrgSlug == "":
		k.add("officernd.org_slug", "the slug is the organization's short name in OfficeRnD URLs, e.g. acme-coworking", "required key is missing")
	case strings.ContainsAny(o.OrgSlug, "/ \t"):
		k.add("officernd.org_slug", "give only the slug (e.g. acme-coworking), not a URL or a display name", "org_slug %q contains a slash or whitespace", o.OrgSlug)
	case !slugRE.MatchString(o.OrgSlug):
		k.add("officernd.org_slug", "a slug uses letters, digits, '-', '_' and '.'", "org_slug %q has characters a slug cannot have", o.OrgSlug)
	}
	k.httpURL("officernd.api_base", o.APIBase, false)
	k.httpURL("officernd.token_url", o.TokenURL, false)
	if len(o.Scopes) == 0 {
		k.add("officernd.scopes", "remove the key to use the default scopes", "no scopes listed")
	}
	for i, s := range o.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\n") {
			k.add(fmt.Sprintf("officernd.scopes[%d]", i), "list one scope per item, e.g. flex.community.members.read", "bad scope %q", s)
		}
	}
	if o.RequestTimeout < time.Second {
		k.add("officernd.request_timeout", `use at least "1s" (default 30s)`, "request_timeout %s is too short", o.RequestTimeout)
	}
	if o.MaxRetries < 0 || o.MaxRetries > 20 {
		k.add("officernd.max_retries", "use 0..20 (default 6)", "max_retries %d out of range", o.MaxRetries)
	}
}

func (k *checker) sync() {
	s := k.c.Sync
	if s.Interval < time.Minute {
		k.add("sync.interval", `use at least "1m"; webhooks deliver changes sooner, polling only repairs`, "sync.interval %s is shorter than 1m and would exhaust OfficeRnD's rate limit", s.Interval)
	}
	if s.FullEvery < s.Interval {
		k.add("sync.full_every", "make full_every at least sync.interval", "full_every %s is shorter than interval %s", s.FullEvery, s.Interval)
	}
	if s.Webhooks != nil && *s.Webhooks {
		k.hostPort("sync.webhook_listen", s.WebhookListen)
		if !strings.HasPrefix(s.WebhookPath, "/") {
			k.add("sync.webhook_path", "start the path with '/', e.g. /webhooks/officernd", "webhook_path %q is not an absolute path", s.WebhookPath)
		}
		if s.WebhookPublicURL == "" && !s.WebhookSecret.configured() && !s.WebhookSecret.IsSet() {
			k.add("sync.webhooks", "set sync.webhook_public_url (deskgate registers its webhook itself), or sync.webhook_secret (the secret of the webhook you created in OfficeRnD), or sync.webhooks: false to rely on polling",
				"webhooks are on but deliveries could not be verified: neither webhook_public_url nor webhook_secret is set")
		}
	}
	if s.WebhookPublicURL != "" {
		k.httpURL("sync.webhook_public_url", s.WebhookPublicURL, false)
	}
	if s.TimestampTolerance < time.Second || s.TimestampTolerance > time.Hour {
		k.add("sync.timestamp_tolerance", `use between "1s" and "1h" (default 300s)`, "timestamp_tolerance %s out of range", s.TimestampTolerance)
	}
}

// Username template placeholders.
var usernamePlaceholders = []string{"first", "last", "email_local", "id"}

// CheckUsernameFormat validates a username_format value: "email",
// "member_id" or a template of {first} {last} {email_local} {id}.
func CheckUsernameFormat(f string) (msg, hint string, ok bool) {
	if f == UsernameEmail || f == UsernameMemberID {
		return "", "", true
	}
	const use = "use email, member_id or a template of {first} {last} {email_local} {id}, e.g. {first}.{last}"
	rest := f
	n := 0
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		close := strings.IndexByte(rest, '}')
		if open < 0 {
			if close >= 0 {
				return fmt.Sprintf("unbalanced '}' in username_format %q", f), use, false
			}
			break
		}
		if close >= 0 && close < open {
			return fmt.Sprintf("unbalanced '}' in username_format %q", f), use, false
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return fmt.Sprintf("unclosed '{' in username_format %q", f), use, false
		}
		name := rest[open+1 : open+end]
		if !oneOf(name, usernamePlaceholders...) {
			return fmt.Sprintf("unknown placeholder {%s} in username_format %q", name, f), enumHint(name, usernamePlaceholders...), false
		}
		n++
		rest = rest[open+end+1:]
	}
	if n == 0 {
		return fmt.Sprintf("username_format %q is neither email, member_id nor a template (it has no placeholder, so every member would get the same username)", f), enumHint(f, UsernameEmail, UsernameMemberID), false
	}
	if strings.ContainsAny(f, " \t\"\\") {
		return fmt.Sprintf("username_format %q would produce usernames with spaces, quotes or backslashes", f), "use separators such as . _ - @", false
	}
	return "", "", true
}

func (k *checker) users() {
	u := k.c.Users
	if msg, hint, ok := CheckUsernameFormat(u.UsernameFormat); !ok {
		k.add("users.username_format", hint, "%s", msg)
	}
	k.enum("users.password_policy", u.PasswordPolicy, "generate", "property", "member")
	if u.PasswordPolicy == "property" && strings.TrimSpace(u.PasswordProperty) == "" {
		k.add("users.password_property", "name the member custom property holding the password (default wifiPassword)", "empty password_property")
	}
	if u.PasswordLength < 13 || u.PasswordLength > 128 {
		k.add("users.password_length", "use 13..128; 13 characters from a 32-symbol alphabet is the 64-bit minimum (default 14)", "password_length %d out of range", u.PasswordLength)
	}
	if u.PasswordPolicy == "member" && u.WelcomeEmail != nil && !*u.WelcomeEmail {
		k.add("users.welcome_email", "turn welcome_email on, or choose password_policy generate or property", "password_policy member needs welcome_email: members set their password from the emailed link")
	}
	if u.OnboardingURL != "" {
		k.httpURL("users.onboarding_url", u.OnboardingURL, true)
	}
	if u.OnboardingLinkTTL < 10*time.Minute || u.OnboardingLinkTTL > 90*24*time.Hour {
		k.add("users.onboarding_link_ttl", `use between "10m" and "90d" (default 7d)`, "onboarding_link_ttl %s out of range", u.OnboardingLinkTTL)
	}
	if u.SetupLinkTTL < time.Hour || u.SetupLinkTTL > 90*24*time.Hour {
		k.add("users.setup_link_ttl", `use between "1h" and "90d" (default 7d)`, "setup_link_ttl %s out of range", u.SetupLinkTTL)
	}
}

func (k *checker) members() {
	m := k.c.Members
	k.hostPort("members.listen", m.Listen)
	if (m.TLSCertFile == "") != (m.TLSKeyFile == "") {
		k.add("members.tls_cert_file", "give both tls_cert_file and tls_key_file, or neither (deskgate then issues a certificate from its EAP CA)", "tls_cert_file and tls_key_file go together")
	}
	if m.InsecureHTTP {
		if host, _, err := net.SplitHostPort(m.Listen); err == nil && !isLoopbackHost(host) {
			k.add("members.insecure_http", "serve the member pages over TLS (remove insecure_http), or listen on 127.0.0.1 for a demo",
				"insecure_http on %q: member links and certificates would cross the network in clear text", m.Listen)
		}
		if m.TLSCertFile != "" {
			k.add("members.insecure_http", "remove insecure_http or the certificate files", "insecure_http contradicts tls_cert_file")
		}
	}
	if u, err := url.Parse(k.c.Users.OnboardingURL); err == nil && u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		k.add("users.onboarding_url", "use https:// (the member pages serve TLS)", "onboarding_url %q sends members to plain http", k.c.Users.OnboardingURL)
	}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func (k *checker) bandwidth(path, v string) {
	if v == "" {
		return
	}
	if _, err := ParseBandwidth(v); err != nil {
		hint := `write a bit rate such as "512kbit", "20mbit", "1.5mbit", "1gbit" (or "20M", "512k")`
		low := strings.ToLower(v)
		if strings.HasSuffix(low, "bps") || strings.HasSuffix(low, "b") || strings.HasSuffix(low, "byte") {
			hint = `rates are in bits: write "mbit", not "mbps"/"MB" (tc reads mbps as megaBYTES per second)`
		}
		k.add(path, hint, "bad bandwidth %q", v)
	}
}

func (k *checker) groups() map[string]int {
	names := map[string]int{}
	for i, g := range k.c.Groups {
		p := fmt.Sprintf("groups[%d]", i)
		switch {
		case g.Name == "":
			k.add(p+".name", "give the group a name, e.g. standard", "required key is missing")
		case !nameRE.MatchString(g.Name) || len(g.Name) > 32:
			k.add(p+".name", "use up to 32 letters, digits, '-', '_' or '.'", "bad group name %q", g.Name)
		default:
			if j, dup := names[g.Name]; dup {
				k.add(p+".name", fmt.Sprintf("rename one of them (the first is groups[%d], line %d)", j, k.c.Line(fmt.Sprintf("groups[%d].name", j))), "group %q is defined twice", g.Name)
			} else {
				names[g.Name] = i
			}
		}
		k.bandwidth(p+".bandwidth_down", g.BandwidthDown)
		k.bandwidth(p+".bandwidth_up", g.BandwidthUp)
		if g.SessionTimeout < time.Minute {
			k.add(p+".session_timeout", `use at least "1m" (default 12h)`, "session_timeout %s is too short", g.SessionTimeout)
		}
		if g.MaxDevices < 0 {
			k.add(p+".max_devices", "use a positive number (default 3)", "max_devices %d is negative", g.MaxDevices)
		}
	}
	return names
}

func normKey(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func (k *checker) plans(groups map[string]int) {
	c := k.c
	seen := map[string]int{}
	groupNames := make([]string, 0, len(groups))
	for n := range groups {
		groupNames = append(groupNames, n)
	}
	sort.Strings(groupNames)
	for i, pm := range c.Plans {
		p := fmt.Sprintf("plans[%d]", i)
		enabled := pm.Enabled == nil || *pm.Enabled
		if strings.TrimSpace(pm.Plan) == "" {
			k.add(p+".plan", "name the OfficeRnD plan (its name or id)", "required key is missing")
		} else if j, dup := seen[normKey(pm.Plan)]; dup {
			k.add(p+".plan", fmt.Sprintf("keep one mapping per plan (the first is plans[%d], line %d)", j, c.Line(fmt.Sprintf("plans[%d].plan", j))), "plan %q is mapped twice", pm.Plan)
		} else {
			seen[normKey(pm.Plan)] = i
		}
		switch {
		case pm.Group == "" && enabled:
			k.add(p+".group", "name one of the groups (or set enabled: false for a plan without WiFi)", "required key is missing")
		case pm.Group != "":
			if _, ok := groups[pm.Group]; !ok {
				hint := "define it under groups:"
				if s := closest(pm.Group, groupNames); s != "" {
					hint = fmt.Sprintf("did you mean %q? or define it under groups:", s)
				} else if len(groupNames) > 0 {
					hint = fmt.Sprintf("use one of %s, or define it under groups:", strings.Join(groupNames, ", "))
				}
				k.add(p+".group", hint, "group %q is not defined", pm.Group)
			}
		}
		k.bandwidth(p+".bandwidth_down", pm.BandwidthDown)
		k.bandwidth(p+".bandwidth_up", pm.BandwidthUp)
		if pm.MaxDevices < 0 {
			k.add(p+".max_devices", "use a positive number, or 0 to inherit the group's", "max_devices %d is negative", pm.MaxDevices)
		}
		if pm.Duration != 0 && pm.Duration < time.Minute {
			k.add(p+".duration", `use at least "1m", or remove it for access as long as the membership`, "duration %s is too short", pm.Duration)
		}
		if c.Roaming.Policy == RoamByPlan {
			if pm.Roaming != "" {
				k.enum(p+".roaming", pm.Roaming, RoamSingle, RoamAll)
			}
		} else if pm.Roaming != "" {
			k.add(p+".roaming", "set roaming.policy: by_plan to choose roaming per plan, or remove this key", "per-plan roaming is ignored because roaming.policy is %q", c.Roaming.Policy)
		}
	}
}

func (k *checker) locations() map[string]bool {
	c := k.c
	known := map[string]bool{}
	seen := map[string]int{}
	vlans := map[int]int{}
	type pfx struct {
		i int
		p netip.Prefix
	}
	var subnets []pfx
	staticPlan := ""
	for _, pm := range c.Plans {
		if pm.StaticIP && (pm.Enabled == nil || *pm.Enabled) {
			staticPlan = pm.Plan
			break
		}
	}
	for i, l := range c.Locations {
		p := fmt.Sprintf("locations[%d]", i)
		if strings.TrimSpace(l.Location) == "" {
			k.add(p+".location", "name the OfficeRnD location (its name or id)", "required key is missing")
		} else if j, dup := seen[normKey(l.Location)]; dup {
			k.add(p+".location", fmt.Sprintf("keep one mapping per location (the first is locations[%d], line %d)", j, c.Line(fmt.Sprintf("locations[%d].location", j))), "location %q is mapped twice", l.Location)
		} else {
			seen[normKey(l.Location)] = i
			known[normKey(l.Location)] = true
		}
		if strings.TrimSpace(l.Network) == "" {
			k.add(p+".network", "name the member network, e.g. downtown-secure", "required key is missing")
		}
		if l.VLAN < 1 || l.VLAN > 4094 {
			k.add(p+".vlan", "VLAN IDs are 1..4094", "vlan %d out of range", l.VLAN)
		} else if j, dup := vlans[l.VLAN]; dup {
			k.add(p+".vlan", fmt.Sprintf("give each location its own VLAN (locations[%d] at line %d uses it)", j, c.Line(fmt.Sprintf("locations[%d].vlan", j))), "vlan %d is used by two locations", l.VLAN)
		} else {
			vlans[l.VLAN] = i
		}
		var subnet netip.Prefix
		if l.Subnet == "" {
			k.add(p+".subnet", "give the member network's IPv4 CIDR, e.g. 10.100.0.0/22", "required key is missing")
		} else if s, err := netip.ParsePrefix(l.Subnet); err != nil || !s.Addr().Is4() {
			k.add(p+".subnet", "write an IPv4 CIDR such as 10.100.0.0/22", "bad subnet %q", l.Subnet)
		} else if s.Bits() > 30 {
			k.add(p+".subnet", "use a prefix of /30 or shorter", "subnet %q has no room for clients", l.Subnet)
		} else {
			subnet = s.Masked()
			for _, o := range subnets {
				if o.p.Overlaps(subnet) {
					k.add(p+".subnet", fmt.Sprintf("give each location a separate range (locations[%d] uses %s)", o.i, o.p), "subnet %s overlaps another location's", subnet)
				}
			}
			subnets = append(subnets, pfx{i, subnet})
		}
		if l.Subnet6 != "" {
			if s, err := netip.ParsePrefix(l.Subnet6); err != nil || !s.Addr().Is6() || s.Addr().Is4In6() {
				k.add(p+".subnet6", "write an IPv6 prefix such as 2001:db8:100::/64", "bad subnet6 %q", l.Subnet6)
			}
		}
		if l.StaticPool != "" {
			sp, err := netip.ParsePrefix(l.StaticPool)
			switch {
			case err != nil || !sp.Addr().Is4():
				k.add(p+".static_pool", "write an IPv4 CIDR inside subnet, e.g. 10.100.3.0/24", "bad static_pool %q", l.StaticPool)
			case subnet.IsValid() && (sp.Bits() < subnet.Bits() || !subnet.Contains(sp.Addr())):
				k.add(p+".static_pool", fmt.Sprintf("choose a range inside %s", subnet), "static_pool %s is not inside subnet %s", sp, subnet)
			}
		} else if staticPlan != "" {
			k.add(p+".static_pool", "add static_pool: a CIDR inside subnet reserved for static addresses", "plan %q has static_ip but this location has no static_pool", staticPlan)
		}
		if l.Group != "" {
			if _, ok := c.Group(l.Group); !ok {
				k.add(p+".group", "name one of the groups under groups:", "unknown group %q", l.Group)
			}
		}
		if l.Timezone != "" {
			if _, err := time.LoadLocation(l.Timezone); err != nil || l.Timezone == "Local" {
				k.add(p+".timezone", "use an IANA zone name such as America/New_York or Europe/London", "unknown timezone %q", l.Timezone)
			}
		}
	}
	return known
}

func (k *checker) smtp() {
	c := k.c
	s := c.SMTP
	welcome := c.Users.WelcomeEmail != nil && *c.Users.WelcomeEmail
	if s.Host != "" && s.MailboxDir != "" {
		k.add("smtp.mailbox_dir", "keep host: to send real email, or mailbox_dir: to write .eml files for a demo, not both", "smtp.host and smtp.mailbox_dir are both set")
	}
	if s.Host == "" && s.MailboxDir == "" && welcome {
		k.add("smtp", "set smtp.host (a mail relay), smtp.mailbox_dir (write .eml files), or users.welcome_email: false", "welcome emails are on but there is nowhere to send them")
	}
	k.enum("smtp.tls", s.TLS, TLSStartTLS, TLSImplicit, TLSNone)
	if s.TLS == TLSNone && s.Host != "" && !isLoopbackHost(s.Host) {
		k.add("smtp.tls", "use starttls or implicit; tls: none is only for a relay on this machine (127.0.0.1)", "smtp.tls none would send passwords in clear text to %s", s.Host)
	}
	if s.Host != "" {
		if strings.ContainsAny(s.Host, ":/ ") {
			if _, err := netip.ParseAddr(s.Host); err != nil {
				k.add("smtp.host", "give only the host name; the port goes in smtp.port", "bad smtp host %q", s.Host)
			}
		}
		if s.Port < 1 || s.Port > 65535 {
			k.add("smtp.port", "use 587 (starttls), 465 (implicit) or 25", "port %d out of range", s.Port)
		}
	}
	if s.Host != "" || s.MailboxDir != "" {
		if s.From == "" {
			k.add("smtp.from", `add from: "Deskgate WiFi <wifi@example.com>"`, "required key is missing")
		} else if a, err := mail.ParseAddress(s.From); err != nil || !strings.Contains(a.Address, "@") {
			k.add("smtp.from", `write an email address, e.g. wifi@example.com or "Space WiFi <wifi@example.com>"`, "from %q is not an email address", s.From)
		}
	}
	pw := s.Password.configured() || s.Password.IsSet()
	if pw && s.Username == "" {
		k.add("smtp.username", "add the SMTP username that goes with smtp.password", "smtp.password is set without smtp.username")
	}
	if s.Username != "" && !pw {
		k.add("smtp.password", "add password: {file: /etc/deskgate/smtp.secret} or {env: DESKGATE_SMTP_PASSWORD}", "smtp.username is set without smtp.password")
	}
}

func (k *checker) radius(locs map[string]bool) {
	c := k.c
	r := c.RADIUS
	if r.PPSK.Unknown != "" {
		k.enum("radius.ppsk.unknown", r.PPSK.Unknown, "reject", "guest")
	}
	if r.PPSK.GuestVLAN < 0 || r.PPSK.GuestVLAN > 4094 {
		k.add("radius.ppsk.guest_vlan", "use 1..4094, or 0 for gateway.guest.vlan", "vlan %d out of range", r.PPSK.GuestVLAN)
	}
	if r.PPSK.Unknown == "guest" && r.PPSK.GuestVLAN == 0 && c.Gateway.Guest.VLAN == 0 {
		k.add("radius.ppsk.unknown", "set radius.ppsk.guest_vlan (or gateway.guest.vlan), or use unknown: reject", "unknown: guest needs a guest VLAN")
	}
	seenOffice := map[string]bool{}
	for i, o := range r.PPSK.Offices {
		p := fmt.Sprintf("radius.ppsk.offices[%d]", i)
		if strings.TrimSpace(o.Company) == "" {
			k.add(p+".company", "name the company as in OfficeRnD (or its id)", "required key is missing")
		} else if seenOffice[strings.ToLower(o.Company)] {
			k.add(p+".company", "list each company once", "company %q is listed twice", o.Company)
		}
		seenOffice[strings.ToLower(o.Company)] = true
		if o.VLAN < 0 || o.VLAN > 4094 {
			k.add(p+".vlan", "use 1..4094, or 0 for the location's VLAN", "vlan %d out of range", o.VLAN)
		}
	}
	if len(r.AuthListen) == 0 {
		k.add("radius.auth_listen", `remove the key for the default [":1812"]`, "no auth listen address")
	}
	for i, a := range r.AuthListen {
		k.hostPort(fmt.Sprintf("radius.auth_listen[%d]", i), a)
	}
	for i, a := range r.AcctListen {
		k.hostPort(fmt.Sprintf("radius.acct_listen[%d]", i), a)
	}
	if r.InterimInterval < time.Minute {
		k.add("radius.interim_interval", `use at least "60s" (RFC 2869; default 5m)`, "interim_interval %s is too short", r.InterimInterval)
	}
	if r.DedupWindow < time.Second || r.DedupWindow > 5*time.Minute {
		k.add("radius.dedup_window", `use between "1s" and "5m" (default 30s)`, "dedup_window %s out of range", r.DedupWindow)
	}
	locNames := make([]string, 0, len(c.Locations))
	for _, l := range c.Locations {
		locNames = append(locNames, l.Location)
	}
	addrs := map[string]int{}
	for i, n := range r.Clients {
		p := fmt.Sprintf("radius.clients[%d]", i)
		var pfx netip.Prefix
		if n.Address == "" {
			k.add(p+".address", "give the NAS's IP address or a CIDR covering it, e.g. 10.0.0.2 or 10.0.0.0/24", "required key is missing")
		} else if a, err := netip.ParseAddr(n.Address); err == nil {
			pfx = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		} else if pp, err := netip.ParsePrefix(n.Address); err == nil {
			pfx = pp.Masked()
		} else {
			k.add(p+".address", "write an IP address (10.0.0.2) or a CIDR (10.0.0.0/24); host names are not allowed", "bad address %q", n.Address)
		}
		if pfx.IsValid() {
			// One address may serve several entries (a controller for
			// several sites) when each names its NAS-Identifier.
			key := pfx.String() + "|" + strings.ToLower(n.Identifier)
			if j, dup := addrs[key]; dup {
				hint := fmt.Sprintf("merge the two entries (radius.clients[%d] at line %d has it), or give each a distinct identifier (NAS-Identifier)", j, c.Line(fmt.Sprintf("radius.clients[%d].address", j)))
				k.add(p+".address", hint, "address %s is listed twice", pfx)
			} else {
				addrs[key] = i
			}
		}
		if !n.Secret.configured() && !n.Secret.IsSet() {
			k.add(p+".secret", "give each NAS its own shared secret: {file: /etc/deskgate/nas.secret} or {env: VAR}", "required key is missing")
		}
		if n.Location != "" && !locs[normKey(n.Location)] {
			hint := "add it under locations:, or use one of: " + strings.Join(locNames, ", ")
			if s := closest(n.Location, locNames); s != "" {
				hint = fmt.Sprintf("did you mean %q?", s)
			}
			k.add(p+".location", hint, "location %q is not in locations", n.Location)
		}
		k.enum(p+".vendor", n.Vendor, VendorWISPr, VendorMikroTik, VendorUbiquiti, VendorCisco, VendorHostapd, VendorAruba, VendorRuckus, VendorFortinet)
		k.enum(p+".coa", n.CoA, CoADisconnect, CoAFull, CoANone)
		if n.CoAPort < 1 || n.CoAPort > 65535 {
			k.add(p+".coa_port", "use 1..65535 (default 3799)", "coa_port %d out of range", n.CoAPort)
		}
	}
}

func (k *checker) eap() {
	e := &k.c.RADIUS.EAP
	for i, m := range e.Methods {
		k.enum(fmt.Sprintf("radius.eap.methods[%d]", i), m, "peap", "ttls", "tls")
	}
	if (e.CertFile == "") != (e.KeyFile == "") {
		k.add("radius.eap.cert_file", "give both cert_file and key_file, or neither (deskgate then makes its own CA)", "cert_file and key_file go together")
	}
	if (e.ProfileCertFile == "") != (e.ProfileKeyFile == "") {
		k.add("radius.eap.profile_cert_file", "give both profile_cert_file and profile_key_file, or neither", "profile signing needs a certificate and its key")
	}
	if strings.ContainsAny(e.ServerName, " /:") || e.ServerName == "" {
		k.add("radius.eap.server_name", "a DNS name such as radius.example.com", "bad server name %q", e.ServerName)
	}
}
