package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// sectionOrder is the order testConfig assembles top-level sections in.
var sectionOrder = []string{"officernd", "sync", "users", "smtp", "groups", "plans", "locations", "roaming", "radius", "portal"}

// baseSections is a minimal valid config, one top-level section each.
var baseSections = map[string]string{
	"officernd": `officernd:
  client_id: cid-123
  client_secret: {env: DG_TEST_SECRET}
  org_slug: acme-coworking
`,
	"sync": `sync:
  webhook_secret: {env: DG_TEST_WEBHOOK}
`,
	"smtp": `smtp:
  mailbox_dir: /var/lib/deskgate/mailbox
  from: wifi@example.com
`,
	"groups": `groups:
  - name: standard
    bandwidth_down: 20mbit
    bandwidth_up: 5mbit
  - name: premium
`,
	"plans": `plans:
  - plan: Hot Desk
    group: standard
  - plan: Dedicated Desk
    group: premium
`,
	"locations": `locations:
  - location: Downtown
    network: downtown-secure
    vlan: 100
    subnet: 10.100.0.0/22
    static_pool: 10.100.3.0/24
`,
	"radius": `radius:
  clients:
    - address: 10.100.0.2
      secret: {env: DG_TEST_NAS}
      location: Downtown
`,
}

func setTestEnv(t testing.TB) {
	t.Setenv("DG_TEST_SECRET", "client-secret-value")
	t.Setenv("DG_TEST_WEBHOOK", "webhook-secret-value")
	t.Setenv("DG_TEST_NAS", "nas-secret-value")
}

// testConfig assembles the base config with some sections replaced
// ("" removes a section).
func testConfig(override map[string]string) string {
	var b strings.Builder
	for _, name := range sectionOrder {
		s, ok := override[name]
		if !ok {
			s = baseSections[name]
		}
		b.WriteString(s)
	}
	return b.String()
}

// withAdmin is the base config plus an admin section (after radius).
func withAdmin(admin string) map[string]string {
	return map[string]string{"radius": baseSections["radius"] + admin}
}

// lineOf returns the 1-based line of the first occurrence of sub in doc.
func lineOf(t *testing.T, doc, sub string) int {
	t.Helper()
	i := strings.Index(doc, sub)
	if i < 0 {
		t.Fatalf("marker %q not in config:\n%s", sub, doc)
	}
	return strings.Count(doc[:i], "\n") + 1
}

func TestBaseConfigIsValid(t *testing.T) {
	setTestEnv(t)
	if _, err := Parse([]byte(testConfig(nil)), "deskgate.yaml"); err != nil {
		t.Fatalf("base config rejected: %v", err)
	}
}

func TestMistakes(t *testing.T) {
	setTestEnv(t)
	dir := t.TempDir()
	openFile := filepath.Join(dir, "open.secret")
	if err := os.WriteFile(openFile, []byte("s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(openFile, 0o644); err != nil { // umask-proof
		t.Fatal(err)
	}
	missingFile := filepath.Join(dir, "missing.secret")

	tests := []struct {
		name     string
		sections map[string]string
		path     string // Problem.Path
		at       string // text on the line the problem must point at ("" = no line)
		msg      string // substring of Problem.Msg
		hint     string // substring of Problem.Hint
	}{
		{"yaml syntax", map[string]string{"roaming": "roaming:\n  policy: [single\n"},
			"", "policy: [single", "YAML syntax error", "indentation"},
		{"fleet peer not wss", map[string]string{"radius": baseSections["radius"] + "fleet:\n  peers: [\"https://box-b:8443\"]\n"},
			"fleet.peers[0]", "https://box-b:8443", "not a wss://host:port URL", "wss://host:port"},
		{"fleet location unknown", map[string]string{"radius": baseSections["radius"] + "fleet:\n  listen: 127.0.0.1:8443\n  locations: [Midtown]\n"},
			"fleet.locations[0]", "Midtown", `fleet location "Midtown" is not in locations`, "locations section"},
		{"unknown key", map[string]string{"groups": "groups:\n  - name: standard\n    bandwith_down: 20mbit\n  - name: premium\n"},
			"groups[0].bandwith_down", "bandwith_down", `unknown key "bandwith_down"`, `did you mean "bandwidth_down"?`},
		{"unknown key top level", map[string]string{"roaming": "roamin:\n  policy: all\n"},
			"roamin", "roamin:", `unknown key "roamin"`, `did you mean "roaming"?`},
		{"wrong type", map[string]string{"groups": "groups:\n  - name: standard\n    max_devices: three\n  - name: premium\n"},
			"groups[0].max_devices", "max_devices: three", `want an integer, got "three"`, "whole number"},
		{"wrong type list", map[string]string{"radius": "radius:\n  auth_listen: \":1812\"\n"},
			"radius.auth_listen", "auth_listen:", "want a list", "YAML list"},
		{"bad duration", map[string]string{"sync": "sync:\n  webhook_secret: {env: DG_TEST_WEBHOOK}\n  interval: 15 minutes\n"},
			"sync.interval", "interval: 15", `bad duration "15 minutes"`, `"7d"`},
		{"duration without unit", map[string]string{"sync": "sync:\n  webhook_secret: {env: DG_TEST_WEBHOOK}\n  timestamp_tolerance: 300\n"},
			"sync.timestamp_tolerance", "timestamp_tolerance: 300", "duration 300 has no unit", `"90s"`},
		{"member pages over http on the network", map[string]string{"roaming": "roaming:\n  policy: single\nmembers:\n  listen: \":8443\"\n  insecure_http: true\n"},
			"members.insecure_http", "insecure_http: true", "clear text", "127.0.0.1"},
		{"member certificate without key", map[string]string{"roaming": "roaming:\n  policy: single\nmembers:\n  tls_cert_file: /etc/deskgate/wifi.pem\n"},
			"members.tls_cert_file", "tls_cert_file:", "go together", "tls_key_file"},
		{"setup link ttl too long", map[string]string{"users": "users:\n  setup_link_ttl: 365d\n"},
			"users.setup_link_ttl", "setup_link_ttl: 365d", "out of range", `"90d"`},
		{"onboarding url over http", map[string]string{"users": "users:\n  onboarding_url: http://wifi.example.com/onboard\n"},
			"users.onboarding_url", "onboarding_url:", "plain http", "https://"},
		{"missing client_id", map[string]string{"officernd": "officernd:\n  client_secret: {env: DG_TEST_SECRET}\n  org_slug: acme\n"},
			"officernd.client_id", "officernd:", "required key is missing", "Developer Tools"},
		{"missing org_slug", map[string]string{"officernd": "officernd:\n  client_id: cid\n  client_secret: {env: DG_TEST_SECRET}\n"},
			"officernd.org_slug", "officernd:", "required key is missing", "slug"},
		{"missing client_secret", map[string]string{"officernd": "officernd:\n  client_id: cid\n  org_slug: acme\n"},
			"officernd.client_secret", "officernd:", "required key is missing", "{env: DESKGATE_OFFICERND_SECRET}"},
		{"missing officernd section", map[string]string{"officernd": ""},
			"officernd.client_id", "", "required key is missing", "client ID"},
		{"inline client secret", map[string]string{"officernd": "officernd:\n  client_id: cid\n  client_secret:\n    value: hunter2\n  org_slug: acme\n"},
			"officernd.client_secret.value", "value: hunter2", "may not be written inline", "chmod 600"},
		{"secret file missing", map[string]string{"officernd": "officernd:\n  client_id: cid\n  client_secret: {file: " + missingFile + "}\n  org_slug: acme\n"},
			"officernd.client_secret.file", "client_secret: {file", "cannot read secret file", "install -m 600"},
		{"secret file too open", map[string]string{"officernd": "officernd:\n  client_id: cid\n  client_secret: {file: " + openFile + "}\n  org_slug: acme\n"},
			"officernd.client_secret.file", "client_secret: {file", "readable or writable by group/others (mode 0644)", "chmod 600 " + openFile},
		{"env unset", map[string]string{"officernd": "officernd:\n  client_id: cid\n  client_secret: {env: DG_TEST_NOT_SET_ANYWHERE}\n  org_slug: acme\n"},
			"officernd.client_secret.env", "client_secret: {env", "DG_TEST_NOT_SET_ANYWHERE is unset or empty", "export DG_TEST_NOT_SET_ANYWHERE="},
		{"two secret sources", map[string]string{"officernd": "officernd:\n  client_id: cid\n  client_secret: {env: DG_TEST_SECRET, file: /x}\n  org_slug: acme\n"},
			"officernd.client_secret", "client_secret:", "more than one source", "exactly one"},
		{"bad api_base", map[string]string{"officernd": baseSections["officernd"] + "  api_base: app.officernd.com/api/v2\n"},
			"officernd.api_base", "api_base:", `bad URL "app.officernd.com/api/v2"`, "absolute URL"},
		{"token_url not https", map[string]string{"officernd": baseSections["officernd"] + "  token_url: http://identity.officernd.com/oauth/token\n"},
			"officernd.token_url", "token_url:", "is not https", "https://"},
		{"org_slug with slash", map[string]string{"officernd": "officernd:\n  client_id: cid\n  client_secret: {env: DG_TEST_SECRET}\n  org_slug: https://app.officernd.com/acme\n"},
			"officernd.org_slug", "org_slug:", "contains a slash or whitespace", "only the slug"},
		{"org_slug with spaces", map[string]string{"officernd": "officernd:\n  client_id: cid\n  client_secret: {env: DG_TEST_SECRET}\n  org_slug: Acme Coworking\n"},
			"officernd.org_slug", "org_slug:", "contains a slash or whitespace", "only the slug"},
		{"plan to undefined group", map[string]string{"plans": "plans:\n  - plan: Hot Desk\n    group: standard\n  - plan: Dedicated Desk\n    group: premum\n"},
			"plans[1].group", "group: premum", `group "premum" is not defined`, `did you mean "premium"?`},
		{"duplicate plan", map[string]string{"plans": "plans:\n  - plan: Hot Desk\n    group: standard\n  - plan: hot desk \n    group: premium\n"},
			"plans[1].plan", "plan: hot desk", "is mapped twice", "the first is plans[0]"},
		{"duplicate location", map[string]string{"locations": baseSections["locations"] + "  - location: downtown\n    network: x\n    vlan: 101\n    subnet: 10.101.0.0/24\n    static_pool: 10.101.0.0/26\n"},
			"locations[1].location", "location: downtown", `location "downtown" is mapped twice`, "the first is locations[0]"},
		{"vlan too big", map[string]string{"locations": strings.Replace(baseSections["locations"], "vlan: 100", "vlan: 4095", 1)},
			"locations[0].vlan", "vlan: 4095", "vlan 4095 out of range", "1..4094"},
		{"vlan zero", map[string]string{"locations": strings.Replace(baseSections["locations"], "vlan: 100", "vlan: 0", 1)},
			"locations[0].vlan", "vlan: 0", "vlan 0 out of range", "1..4094"},
		{"duplicate vlan", map[string]string{"locations": baseSections["locations"] + "  - location: Uptown\n    network: uptown\n    vlan: 100\n    subnet: 10.200.0.0/22\n    static_pool: 10.200.3.0/24\n"},
			"locations[1].vlan", "vlan: 100\n    subnet: 10.200", "vlan 100 is used by two locations", "locations[0]"},
		{"bad cidr", map[string]string{"locations": strings.Replace(baseSections["locations"], "10.100.0.0/22", "10.100.0.0/33", 1)},
			"locations[0].subnet", "subnet: 10.100.0.0/33", `bad subnet "10.100.0.0/33"`, "IPv4 CIDR"},
		{"static pool outside subnet", map[string]string{"locations": strings.Replace(baseSections["locations"], "10.100.3.0/24", "10.101.3.0/24", 1)},
			"locations[0].static_pool", "static_pool:", "static_pool 10.101.3.0/24 is not inside subnet 10.100.0.0/22", "inside 10.100.0.0/22"},
		{"overlapping subnets", map[string]string{"locations": baseSections["locations"] + "  - location: Uptown\n    network: uptown\n    vlan: 200\n    subnet: 10.100.2.0/24\n"},
			"locations[1].subnet", "subnet: 10.100.2.0/24", "overlaps another location's", "separate range"},
		{"bad bandwidth bytes", map[string]string{"groups": "groups:\n  - name: standard\n    bandwidth_down: 20mbps\n  - name: premium\n"},
			"groups[0].bandwidth_down", "bandwidth_down: 20mbps", `bad bandwidth "20mbps"`, `write "mbit"`},
		{"bad bandwidth word", map[string]string{"plans": "plans:\n  - plan: Hot Desk\n    group: standard\n    bandwidth_up: fast\n  - plan: Dedicated Desk\n    group: premium\n"},
			"plans[0].bandwidth_up", "bandwidth_up: fast", `bad bandwidth "fast"`, `"20mbit"`},
		{"roaming policy unknown", map[string]string{"roaming": "roaming:\n  policy: everywhere\n"},
			"roaming.policy", "policy: everywhere", `unknown value "everywhere"`, "single, all, by_plan"},
		{"roaming policy typo", map[string]string{"roaming": "roaming:\n  policy: by-plan\n"},
			"roaming.policy", "policy: by-plan", `unknown value "by-plan"`, `did you mean "by_plan"?`},
		{"plan roaming without by_plan", map[string]string{"plans": "plans:\n  - plan: Hot Desk\n    group: standard\n    roaming: all\n  - plan: Dedicated Desk\n    group: premium\n"},
			"plans[0].roaming", "roaming: all", `roaming.policy is "single"`, "by_plan"},
		{"plan roaming bad value", map[string]string{"roaming": "roaming:\n  policy: by_plan\n", "plans": "plans:\n  - plan: Hot Desk\n    group: standard\n    roaming: everywhere\n  - plan: Dedicated Desk\n    group: premium\n"},
			"plans[0].roaming", "roaming: everywhere", `unknown value "everywhere"`, "single, all"},
		{"username placeholder", map[string]string{"users": "users:\n  username_format: \"{first}.{lastname}\"\n"},
			"users.username_format", "username_format:", "unknown placeholder {lastname}", `did you mean "last"?`},
		{"username no placeholder", map[string]string{"users": "users:\n  username_format: mail\n"},
			"users.username_format", "username_format:", "has no placeholder", `did you mean "email"?`},
		{"password policy unknown", map[string]string{"users": "users:\n  password_policy: random\n"},
			"users.password_policy", "password_policy: random", `unknown value "random"`, "generate, property, member"},
		{"password too short", map[string]string{"users": "users:\n  password_length: 12\n"},
			"users.password_length", "password_length: 12", "password_length 12 out of range", "64-bit"},
		{"smtp host and mailbox", map[string]string{"smtp": "smtp:\n  host: smtp.example.com\n  mailbox_dir: /var/mail/x\n  from: wifi@example.com\n"},
			"smtp.mailbox_dir", "mailbox_dir:", "both set", "not both"},
		{"smtp tls none remote", map[string]string{"smtp": "smtp:\n  host: smtp.example.com\n  tls: none\n  from: wifi@example.com\n"},
			"smtp.tls", "tls: none", "clear text to smtp.example.com", "starttls"},
		{"smtp from not email", map[string]string{"smtp": "smtp:\n  mailbox_dir: /var/mail/x\n  from: Space WiFi\n"},
			"smtp.from", "from: Space WiFi", `from "Space WiFi" is not an email address`, "wifi@example.com"},
		{"no mail transport", map[string]string{"smtp": ""},
			"smtp", "", "nowhere to send", "welcome_email: false"},
		{"nas bad address", map[string]string{"radius": "radius:\n  clients:\n    - address: ap1.local\n      secret: {env: DG_TEST_NAS}\n"},
			"radius.clients[0].address", "address: ap1.local", `bad address "ap1.local"`, "host names are not allowed"},
		{"nas bad cidr", map[string]string{"radius": "radius:\n  clients:\n    - address: 10.0.0.0/40\n      secret: {env: DG_TEST_NAS}\n"},
			"radius.clients[0].address", "address: 10.0.0.0/40", `bad address "10.0.0.0/40"`, "CIDR"},
		{"nas missing secret", map[string]string{"radius": "radius:\n  clients:\n    - address: 10.100.0.2\n      location: Downtown\n"},
			"radius.clients[0].secret", "- address: 10.100.0.2", "required key is missing", "its own shared secret"},
		{"nas unknown location", map[string]string{"radius": "radius:\n  clients:\n    - address: 10.100.0.2\n      secret: {env: DG_TEST_NAS}\n      location: Dowtown\n"},
			"radius.clients[0].location", "location: Dowtown", `location "Dowtown" is not in locations`, `did you mean "Downtown"?`},
		{"ppsk unknown policy", map[string]string{"radius": "radius:\n  ppsk:\n    unknown: allow\n"},
			"radius.ppsk.unknown", "unknown: allow", `unknown value "allow"`, "reject, guest"},
		{"ppsk guest without a vlan", map[string]string{"radius": "radius:\n  ppsk:\n    unknown: guest\n"},
			"radius.ppsk.unknown", "unknown: guest", "needs a guest VLAN", "gateway.guest.vlan"},
		{"ppsk office without company", map[string]string{"radius": "radius:\n  ppsk:\n    offices:\n      - vlan: 310\n"},
			"radius.ppsk.offices[0].company", "- vlan: 310", "required key is missing", "company"},
		{"nas unknown vendor", map[string]string{"radius": "radius:\n  clients:\n    - address: 10.100.0.2\n      secret: {env: DG_TEST_NAS}\n      vendor: meraki\n"},
			"radius.clients[0].vendor", "vendor: meraki", `unknown value "meraki"`, "wispr, mikrotik, ubiquiti, cisco"},
		{"nas duplicate address", map[string]string{"radius": "radius:\n  clients:\n    - address: 10.100.0.2\n      secret: {env: DG_TEST_NAS}\n    - address: 10.100.0.2/32\n      secret: {env: DG_TEST_NAS}\n"},
			"radius.clients[1].address", "address: 10.100.0.2/32", "address 10.100.0.2/32 is listed twice", "radius.clients[0]"},
		{"unknown network group", map[string]string{"locations": baseSections["locations"] + "    group: premim\n"},
			"locations[0].group", "group: premim", `unknown group "premim"`, "groups"},
		{"bad timezone", map[string]string{"locations": baseSections["locations"] + "    timezone: America/NewYork\n"},
			"locations[0].timezone", "timezone:", `unknown timezone "America/NewYork"`, "IANA"},
		{"negative group max_devices", map[string]string{"groups": "groups:\n  - name: standard\n    max_devices: -1\n  - name: premium\n"},
			"groups[0].max_devices", "max_devices: -1", "max_devices -1 is negative", "positive"},
		{"negative plan max_devices", map[string]string{"plans": "plans:\n  - plan: Hot Desk\n    group: standard\n    max_devices: -2\n  - plan: Dedicated Desk\n    group: premium\n"},
			"plans[1-1].max_devices", "max_devices: -2", "max_devices -2 is negative", "inherit"},
		{"duplicate key", map[string]string{"roaming": "roaming:\n  policy: all\n  policy: single\n"},
			"roaming.policy", "policy: single", `key "policy" appears twice`, "remove one"},
		{"portal code budget off", map[string]string{"portal": "portal:\n  code_budget: -1\n"},
			"portal.code_budget", "code_budget: -1", "code_budget -1", "cannot be switched off"},
		{"portal member budget off", map[string]string{"portal": "portal:\n  member_budget: -5\n"},
			"portal.member_budget", "member_budget: -5", "member_budget -5", "cannot be switched off"},
		{"portal budget window too short", map[string]string{"portal": "portal:\n  budget_window: 10s\n"},
			"portal.budget_window", "budget_window: 10s", "budget_window 10s is out of range", `"1m" to "24h"`},
		{"webhooks unverifiable", map[string]string{"sync": ""},
			"sync.webhooks", "", "could not be verified", "webhook_public_url"},
		{"admin tls cert without key", withAdmin("admin:\n  listen: 0.0.0.0:8417\n  tls_cert_file: /etc/deskgate/admin.pem\n"),
			"admin.tls_key_file", "admin:", "tls_cert_file and tls_key_file go together", "or neither"},
		{"admin tls relative path", withAdmin("admin:\n  tls_cert_file: admin.pem\n  tls_key_file: /etc/deskgate/admin.key\n"),
			"admin.tls_cert_file", "tls_cert_file: admin.pem", `"admin.pem" is not absolute`, "absolute path"},
		{"admin allowed host with scheme", withAdmin("admin:\n  allowed_hosts:\n    - gw.example.lan\n    - https://gw.example.lan:8417\n"),
			"admin.allowed_hosts[1]", "- https://gw", `bad host name "https://gw.example.lan:8417"`, "without port or scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := testConfig(tt.sections)
			_, err := Parse([]byte(doc), "deskgate.yaml")
			if err == nil {
				t.Fatalf("config accepted, want a problem at %s:\n%s", tt.path, doc)
			}
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("error %T is not a *ValidationError: %v", err, err)
			}
			path := strings.ReplaceAll(tt.path, "[1-1]", "[0]")
			wantLine := 0
			if tt.at != "" {
				wantLine = lineOf(t, doc, tt.at)
			}
			for _, p := range verr.Problems {
				if p.Path != path || !strings.Contains(p.Msg, tt.msg) {
					continue
				}
				if !strings.Contains(p.Hint, tt.hint) {
					t.Errorf("hint %q does not contain %q", p.Hint, tt.hint)
				}
				if tt.at != "" && p.Line != wantLine {
					t.Errorf("problem on line %d, want %d (%q)", p.Line, wantLine, tt.at)
				}
				if p.File != "deskgate.yaml" {
					t.Errorf("problem file %q, want deskgate.yaml", p.File)
				}
				prefix := "deskgate.yaml: "
				if wantLine > 0 {
					prefix = fmt.Sprintf("deskgate.yaml:%d: ", wantLine)
				}
				if path != "" {
					prefix += path + ": "
				}
				if !strings.Contains(err.Error(), prefix) {
					t.Errorf("error text lacks %q:\n%v", prefix, err)
				}
				if strings.Contains(err.Error(), "client-secret-value") || strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error text reveals a secret:\n%v", err)
				}
				return
			}
			t.Errorf("no problem at %q with message %q; got:\n%v", path, tt.msg, err)
		})
	}
}

// TestAdminListenAccepted: loopback and other addresses are accepted; off
// loopback the listener speaks TLS with the configured certificate or the
// self-signed one the daemon makes (plain HTTP only from loopback peers).
func TestAdminListenAccepted(t *testing.T) {
	setTestEnv(t)
	for _, admin := range []string{
		"admin:\n  listen: 127.0.0.1:8417\n",
		"admin:\n  listen: \"[::1]:8417\"\n",
		"admin:\n  listen: localhost:8417\n  allowed_hosts: [gw.example.lan, 10.0.0.1, \"fd00::1\"]\n",
		"admin:\n  listen: 0.0.0.0:8417\n  tls_cert_file: /etc/deskgate/admin.pem\n  tls_key_file: /etc/deskgate/admin.key\n",
		"admin:\n  listen: \":8417\"\n",
		"admin:\n  socket: /run/dg.sock\n  listen: 192.168.1.10:8417\n",
	} {
		if _, err := Parse([]byte(testConfig(withAdmin(admin))), "deskgate.yaml"); err != nil {
			t.Errorf("%s: rejected: %v", admin, err)
		}
	}
}

func TestAllProblemsReported(t *testing.T) {
	setTestEnv(t)
	doc := testConfig(map[string]string{
		"users":   "users:\n  password_length: 8\n",
		"roaming": "roaming:\n  policy: nowhere\n",
	})
	_, err := Parse([]byte(doc), "deskgate.yaml")
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("got %v, want *ValidationError", err)
	}
	var paths []string
	for _, p := range verr.Problems {
		paths = append(paths, p.Path)
	}
	want := []string{"users.password_length", "roaming.policy"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("problem paths (-want +got):\n%s", diff)
	}
	if !strings.Contains(err.Error(), "2 problems") {
		t.Errorf("error text %q does not count the problems", err)
	}
}

func TestDefaults(t *testing.T) {
	setTestEnv(t)
	c, err := Parse([]byte(testConfig(nil)), "deskgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{
		"data_dir":            c.DataDir,
		"log.level":           c.Log.Level,
		"log.format":          c.Log.Format,
		"admin.listen":        c.Admin.Listen,
		"admin.socket":        c.Admin.Socket,
		"api_base":            c.OfficeRnD.APIBase,
		"token_url":           c.OfficeRnD.TokenURL,
		"scopes":              len(c.OfficeRnD.Scopes),
		"request_timeout":     c.OfficeRnD.RequestTimeout,
		"max_retries":         c.OfficeRnD.MaxRetries,
		"interval":            c.Sync.Interval,
		"full_every":          c.Sync.FullEvery,
		"initial_import":      *c.Sync.InitialImport,
		"webhooks":            *c.Sync.Webhooks,
		"webhook_listen":      c.Sync.WebhookListen,
		"webhook_path":        c.Sync.WebhookPath,
		"timestamp_tolerance": c.Sync.TimestampTolerance,
		"username_format":     c.Users.UsernameFormat,
		"password_policy":     c.Users.PasswordPolicy,
		"password_property":   c.Users.PasswordProperty,
		"password_length":     c.Users.PasswordLength,
		"welcome_email":       *c.Users.WelcomeEmail,
		"onboarding_url":      c.Users.OnboardingURL,
		"onboarding_link_ttl": c.Users.OnboardingLinkTTL,
		"setup_link_ttl":      c.Users.SetupLinkTTL,
		"members.listen":      c.Members.Listen,
		"members.insecure":    c.Members.InsecureHTTP,
		"roaming":             c.Roaming.Policy,
		"smtp.port":           c.SMTP.Port,
		"smtp.tls":            c.SMTP.TLS,
		"group.timeout":       c.Groups[1].SessionTimeout,
		"group.max_devices":   c.Groups[1].MaxDevices,
		"group.down_kbps":     c.Groups[0].DownKbps,
		"group.up_kbps":       c.Groups[0].UpKbps,
		"plan.enabled":        *c.Plans[0].Enabled,
		"auth_listen":         c.RADIUS.AuthListen,
		"acct_listen":         c.RADIUS.AcctListen,
		"interim_interval":    c.RADIUS.InterimInterval,
		"dedup_window":        c.RADIUS.DedupWindow,
		"nas.vendor":          c.RADIUS.Clients[0].Vendor,
		"nas.coa":             c.RADIUS.Clients[0].CoA,
		"nas.coa_port":        c.RADIUS.Clients[0].CoAPort,
		"code_budget":         c.Portal.CodeBudget,
		"member_budget":       c.Portal.MemberBudget,
		"budget_window":       c.Portal.BudgetWindow,
	}
	want := map[string]any{
		"data_dir":            "/var/lib/deskgate",
		"log.level":           "info",
		"log.format":          "text",
		"admin.listen":        "127.0.0.1:8417",
		"admin.socket":        "/var/lib/deskgate/deskgate.sock",
		"api_base":            "https://app.officernd.com/api/v2",
		"token_url":           "https://identity.officernd.com/oauth/token",
		"scopes":              9,
		"request_timeout":     30 * time.Second,
		"max_retries":         6,
		"interval":            15 * time.Minute,
		"full_every":          6 * time.Hour,
		"initial_import":      true,
		"webhooks":            true,
		"webhook_listen":      ":8418",
		"webhook_path":        "/webhooks/officernd",
		"timestamp_tolerance": 300 * time.Second,
		"username_format":     "email",
		"password_policy":     "generate",
		"password_property":   "wifiPassword",
		"password_length":     14,
		"welcome_email":       true,
		"onboarding_url":      "https://localhost:8443/onboard",
		"onboarding_link_ttl": 168 * time.Hour,
		"setup_link_ttl":      168 * time.Hour,
		"members.listen":      ":8443",
		"members.insecure":    false,
		"roaming":             "single",
		"smtp.port":           587,
		"smtp.tls":            "starttls",
		"group.timeout":       12 * time.Hour,
		"group.max_devices":   3,
		"group.down_kbps":     20000,
		"group.up_kbps":       5000,
		"plan.enabled":        true,
		"auth_listen":         []string{":1812"},
		"acct_listen":         []string{":1813"},
		"interim_interval":    5 * time.Minute,
		"dedup_window":        30 * time.Second,
		"nas.vendor":          "wispr",
		"nas.coa":             "disconnect",
		"nas.coa_port":        3799,
		"code_budget":         30,
		"member_budget":       30,
		"budget_window":       10 * time.Minute,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	for _, s := range []string{
		"flex.community.members.read", "flex.community.companies.read", "flex.community.memberships.read",
		"flex.billing.plans.read", "flex.space.locations.read", "flex.space.resources.read",
		"flex.space.bookings.read", "flex.community.visitors.read", "flex.space.passes.read",
	} {
		if !containsString(c.OfficeRnD.Scopes, s) {
			t.Errorf("default scopes lack %s", s)
		}
	}
	// A read-only OfficeRnD application must be able to sync with the
	// defaults: no write scope (the daemon adds the webhook scopes only
	// while it registers its webhook itself).
	for _, s := range c.OfficeRnD.Scopes {
		if !strings.HasSuffix(s, ".read") || strings.HasPrefix(s, "flex.settings.webhooks.") {
			t.Errorf("default scopes ask for %s", s)
		}
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestDefaultsFollowSettings(t *testing.T) {
	setTestEnv(t)
	doc := "data_dir: /srv/dg\nmembers:\n  listen: 127.0.0.1:9000\n  insecure_http: true\n" + testConfig(map[string]string{
		"smtp":    "smtp:\n  host: mail.example.com\n  tls: implicit\n  from: wifi@example.com\n",
		"roaming": "roaming:\n  policy: by_plan\n",
	})
	c, err := Parse([]byte(doc), "deskgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin.Socket != "/srv/dg/deskgate.sock" {
		t.Errorf("socket %q, want under data_dir", c.Admin.Socket)
	}
	if c.Users.OnboardingURL != "http://127.0.0.1:9000/onboard" {
		t.Errorf("onboarding_url %q, want from members.listen", c.Users.OnboardingURL)
	}
	if c.SMTP.Port != 465 {
		t.Errorf("implicit TLS port %d, want 465", c.SMTP.Port)
	}
	if c.Plans[0].Roaming != RoamSingle {
		t.Errorf("by_plan plan roaming %q, want single", c.Plans[0].Roaming)
	}
}

// exampleWithSecrets returns Example() with its /etc/deskgate secret files
// created in a temp dir.
func exampleWithSecrets(t testing.TB) []byte {
	dir := t.TempDir()
	for _, n := range []string{"officernd", "smtp", "radius-downtown", "radius-uptown"} {
		if err := os.WriteFile(filepath.Join(dir, n+".secret"), []byte("secret-of-"+n+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return []byte(strings.ReplaceAll(string(Example()), "/etc/deskgate/", dir+"/"))
}

func TestExampleLoads(t *testing.T) {
	ex := exampleWithSecrets(t)
	path := filepath.Join(t.TempDir(), "deskgate.yaml")
	if err := os.WriteFile(path, ex, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Example() does not load: %v", err)
	}
	if got := c.OfficeRnD.ClientSecret.Reveal(); got != "secret-of-officernd" {
		t.Errorf("client secret %q, want the file's content without newline", got)
	}
	type planRow struct {
		Plan, Group string
		Enabled     bool
		StaticIP    bool
		Duration    time.Duration
	}
	var plans []planRow
	for _, p := range c.Plans {
		plans = append(plans, planRow{p.Plan, p.Group, *p.Enabled, p.StaticIP, p.Duration})
	}
	wantPlans := []planRow{
		{"Hot Desk", "standard", true, false, 0},
		{"Dedicated Desk", "premium", true, false, 0},
		{"Private Office", "premium", true, true, 0},
		{"Virtual Office", "minimal", false, false, 0},
		{"Day Pass", "daypass", true, false, 24 * time.Hour},
	}
	if diff := cmp.Diff(wantPlans, plans); diff != "" {
		t.Errorf("seed plan table (-want +got):\n%s", diff)
	}
	dp := c.Groups[3]
	if dp.Name != "daypass" || dp.DownKbps != 10000 || dp.UpKbps != 2000 || dp.MaxDevices != 2 {
		t.Errorf("daypass group %+v", dp)
	}
	if l := c.Locations[1]; l.Location != "Uptown" || l.VLAN != 200 || l.Subnet != "10.200.0.0/22" || l.StaticPool != "10.200.3.0/24" || l.Timezone != "America/New_York" {
		t.Errorf("Uptown location %+v", l)
	}
	if got := c.Where("plans[4].duration"); got != path+":"+fmt.Sprint(lineOf(t, string(ex), "duration: 24h")) {
		t.Errorf("Where(plans[4].duration) = %q", got)
	}
}

func TestExampleWithoutSecretsFails(t *testing.T) {
	// The example's secret files live in /etc/deskgate; here they don't,
	// and the loader must say so rather than start without secrets.
	if _, err := os.Stat("/etc/deskgate/officernd.secret"); err == nil {
		t.Skip("this machine has a real /etc/deskgate/officernd.secret")
	}
	_, err := Parse(Example(), "example.yaml")
	if err == nil || !strings.Contains(err.Error(), "officernd.client_secret.file: cannot read secret file /etc/deskgate/officernd.secret") {
		t.Fatalf("got %v, want a missing secret file error", err)
	}
}

func TestRedactedRoundTrip(t *testing.T) {
	ex := exampleWithSecrets(t)
	c, err := Parse(ex, "deskgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := c.Redacted()
	for _, s := range []string{"secret-of-officernd", "secret-of-smtp", "secret-of-radius"} {
		if strings.Contains(out, s) {
			t.Errorf("Redacted() reveals %q", s)
		}
	}
	c2, err := Parse([]byte(out), "redacted.yaml")
	if err != nil {
		t.Fatalf("Redacted() output does not load: %v\n%s", err, out)
	}
	if diff := cmp.Diff(c, c2, cmp.Comparer(func(a, b Secret) bool { return a.File == b.File && a.Env == b.Env && a.Reveal() == b.Reveal() }),
		cmpopts.IgnoreUnexported(Config{})); diff != "" {
		t.Errorf("round trip through Redacted (-orig +reloaded):\n%s", diff)
	}
}

func TestRedactedHidesInlineAndEnvSecrets(t *testing.T) {
	setTestEnv(t)
	doc := testConfig(map[string]string{"radius": "radius:\n  clients:\n    - address: 10.100.0.2\n      secret: {value: inline-nas-secret}\n"})
	c, err := Parse([]byte(doc), "deskgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := c.Redacted()
	for _, s := range []string{"inline-nas-secret", "client-secret-value", "webhook-secret-value"} {
		if strings.Contains(out, s) {
			t.Errorf("Redacted() reveals %q:\n%s", s, out)
		}
	}
	if !strings.Contains(out, "env: DG_TEST_SECRET") || !strings.Contains(out, "value: '[redacted]'") {
		t.Errorf("Redacted() should show secret sources:\n%s", out)
	}
	if got := fmt.Sprintf("%v %+v %#v %s", c.RADIUS.Clients[0].Secret, c.RADIUS.Clients[0].Secret, c.RADIUS.Clients[0].Secret, c.RADIUS.Clients[0].Secret); strings.Contains(got, "inline-nas-secret") {
		t.Errorf("formatting a Secret reveals it: %s", got)
	}
}

func TestSecretResolution(t *testing.T) {
	setTestEnv(t)
	dir := t.TempDir()
	// Relative file paths resolve against the config file's directory.
	if err := os.WriteFile(filepath.Join(dir, "nas.secret"), []byte("nas-from-file\r\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "deskgate.yaml")
	doc := testConfig(map[string]string{
		"radius": "radius:\n  clients:\n    - address: 10.100.0.2\n      secret: {file: nas.secret}\n    - address: 10.100.0.3\n      secret: {env: DG_TEST_NAS}\n    - address: 10.100.0.4\n      secret: {value: inline}\n",
	})
	if err := os.WriteFile(cfgPath, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{
		c.OfficeRnD.ClientSecret.Reveal(), c.Sync.WebhookSecret.Reveal(),
		c.RADIUS.Clients[0].Secret.Reveal(), c.RADIUS.Clients[1].Secret.Reveal(), c.RADIUS.Clients[2].Secret.Reveal(),
	}
	want := []string{"client-secret-value", "webhook-secret-value", "nas-from-file", "nas-secret-value", "inline"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resolved secrets (-want +got):\n%s", diff)
	}
	if c.SMTP.Password.IsSet() {
		t.Error("unset smtp.password reports IsSet")
	}
	if s := NewSecret("x"); !s.IsSet() || s.Reveal() != "x" || s.String() != "[redacted]" {
		t.Errorf("NewSecret: %v %q", s.IsSet(), s.Reveal())
	}
}

func TestSecretFileEmpty(t *testing.T) {
	setTestEnv(t)
	f := filepath.Join(t.TempDir(), "empty.secret")
	if err := os.WriteFile(f, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := testConfig(map[string]string{"officernd": "officernd:\n  client_id: cid\n  client_secret: {file: " + f + "}\n  org_slug: acme\n"})
	if _, err := Parse([]byte(doc), "d.yaml"); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("got %v, want an empty secret file error", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "load config") || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want a wrapped not-exist error", err)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"15m", 15 * time.Minute, true},
		{"24h", 24 * time.Hour, true},
		{"7d", 7 * 24 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"300s", 300 * time.Second, true},
		{"1.5h", 90 * time.Minute, true},
		{"d", 0, false},
		{"7days", 0, false},
		{"1d-1h", 0, false},
		{"fifteen", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestDurationsInFile(t *testing.T) {
	setTestEnv(t)
	doc := testConfig(map[string]string{
		"users": "users:\n  onboarding_link_ttl: 7d\n",
		"sync":  "sync:\n  webhook_secret: {env: DG_TEST_WEBHOOK}\n  full_every: 1d\n  interval: 1d\n",
	})
	c, err := Parse([]byte(doc), "d.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Users.OnboardingLinkTTL != 7*24*time.Hour || c.Sync.FullEvery != 24*time.Hour || c.Sync.Interval != 24*time.Hour {
		t.Errorf("durations: ttl %v full %v interval %v", c.Users.OnboardingLinkTTL, c.Sync.FullEvery, c.Sync.Interval)
	}
}

func TestParseBandwidth(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"", 0, true},
		{"10mbit", 10000, true},
		{"512kbit", 512, true},
		{"1gbit", 1000000, true},
		{"1.5mbit", 1500, true},
		{"10M", 10000, true},
		{"512k", 512, true},
		{"2G", 2000000, true},
		{"100 mbit", 100000, true},
		{"10mbps", 0, false},
		{"10MB", 0, false},
		{"10", 0, false},
		{"mbit", 0, false},
		{"0mbit", 0, false},
		{"1.2.3mbit", 0, false},
		{"-5mbit", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseBandwidth(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseBandwidth(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestUsernameFormats(t *testing.T) {
	for f, ok := range map[string]bool{
		"email": true, "member_id": true, "{first}.{last}": true, "{email_local}": true, "wifi-{id}": true,
		"{first": false, "first}": false, "{}": false, "{first} {last}": false, "plain": false,
	} {
		if _, _, got := CheckUsernameFormat(f); got != ok {
			t.Errorf("CheckUsernameFormat(%q) ok=%v, want %v", f, got, ok)
		}
	}
}

func TestValidateCodeBuiltConfig(t *testing.T) {
	// Other packages build configs in code: ApplyDefaults + NewSecret must
	// give a config Validate accepts, and Validate must still catch mistakes.
	c := &Config{
		OfficeRnD: OfficeRnD{ClientID: "cid", ClientSecret: NewSecret("s"), OrgSlug: "acme"},
		Sync:      Sync{Webhooks: new(bool)},
		Users:     Users{WelcomeEmail: new(bool)},
		Groups:    []Group{{Name: "standard"}},
		Plans:     []PlanMapping{{Plan: "Hot Desk", Group: "standard"}},
		Locations: []LocationMapping{{Location: "Downtown", Network: "n", VLAN: 10, Subnet: "10.0.0.0/24"}},
		RADIUS:    RADIUS{Clients: []NAS{{Address: "127.0.0.1", Secret: NewSecret("nas")}}},
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("code-built config rejected: %v", err)
	}
	c.Locations[0].VLAN = 5000
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "locations[0].vlan: vlan 5000 out of range") {
		t.Fatalf("got %v, want a VLAN problem without file:line", err)
	}
}

func TestDecodeCoversEveryField(t *testing.T) {
	// Every exported field with a yaml key must be settable from the file:
	// the decoder only knows the kinds below.
	var walk func(reflect.Type, string)
	walk = func(tp reflect.Type, path string) {
		for i := 0; i < tp.NumField(); i++ {
			f := tp.Field(i)
			if !f.IsExported() || f.Tag.Get("yaml") == "-" {
				continue
			}
			ft := f.Type
			for ft.Kind() == reflect.Slice || ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case ft == durationType, ft.Kind() == reflect.String, ft.Kind() == reflect.Int, ft.Kind() == reflect.Bool:
			case ft.Kind() == reflect.Struct:
				walk(ft, path+"."+f.Name)
			default:
				t.Errorf("%s.%s has kind %s the decoder does not handle", path, f.Name, ft.Kind())
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "Config")
}

func TestYAMLAnchorsAndMerge(t *testing.T) {
	setTestEnv(t)
	doc := testConfig(map[string]string{
		"groups": "groups:\n  - &std\n    name: standard\n    bandwidth_down: 20mbit\n  - <<: *std\n    name: premium\n",
	})
	c, err := Parse([]byte(doc), "d.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Groups[1].Name != "premium" || c.Groups[1].DownKbps != 20000 {
		t.Errorf("merged group %+v", c.Groups[1])
	}
}

func TestMultipleDocumentsRejected(t *testing.T) {
	setTestEnv(t)
	doc := testConfig(nil) + "---\nlog: {level: debug}\n"
	_, err := Parse([]byte(doc), "d.yaml")
	if err == nil || !strings.Contains(err.Error(), "second YAML document") {
		t.Fatalf("got %v, want a second-document error", err)
	}
}

func FuzzParse(f *testing.F) {
	setTestEnv(f)
	f.Add(Example())
	f.Add([]byte(testConfig(nil)))
	f.Add([]byte(testConfig(map[string]string{"roaming": "roaming:\n  policy: by_plan\n", "plans": "plans:\n  - plan: a\n    group: standard\n    roaming: all\n    duration: 1d\n    bandwidth_down: 1.5mbit\n"})))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("officernd:\n  client_id: x\n\tclient_secret: {value: 3}\n"))
	f.Add([]byte("groups:\n  - name: a\n    max_devices: three\n"))
	f.Add([]byte("locations:\n  - {location: x, vlan: 4095, subnet: 10.0.0.0/33}\n"))
	f.Add([]byte("<<: {data_dir: /x}\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml")
		if err != nil {
			var verr *ValidationError
			if !errors.As(err, &verr) || len(verr.Problems) == 0 {
				t.Fatalf("Parse error %T without problems: %v", err, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config fails Validate: %v", err)
		}
		_ = c.Redacted()
	})
}

func TestAliasCyclesStop(t *testing.T) {
	for _, doc := range []string{
		"&a {<<: *a}\n",
		"log: &a {<<: [*a, *a]}\n",
		"plans: &p [*p]\n",
		"a: &a [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nplans: [*a]\n",
	} {
		done := make(chan error, 1)
		go func() { _, err := Parse([]byte(doc), "d.yaml"); done <- err }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("Parse(%q) accepted a cyclic config", doc)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Parse(%q) did not finish", doc)
		}
	}
}

// TestReferenceDocumentsEveryKey keeps docs/configuration.md in step with
// the types: every yaml key has a table row, and the embedded example is
// the current Example().
func TestReferenceDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatalf("read reference: %v", err)
	}
	doc := string(b)
	var walk func(reflect.Type, string)
	walk = func(tp reflect.Type, path string) {
		for i := 0; i < tp.NumField(); i++ {
			f := tp.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			if !strings.Contains(doc, "| `"+name+"` |") {
				t.Errorf("docs/configuration.md has no row for %s%s", path, name)
			}
			ft := f.Type
			for ft.Kind() == reflect.Slice || ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(Secret{}) {
				walk(ft, path+name+".")
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	if !strings.Contains(doc, "```yaml\n"+string(Example())+"```") {
		t.Error("docs/configuration.md does not embed the current Example(); copy appliance/config/example.yaml into its Full example section")
	}
}

func TestFormatDuration(t *testing.T) {
	for _, d := range []time.Duration{0, time.Second, 90 * time.Second, 15 * time.Minute, time.Hour, 90 * time.Minute,
		12 * time.Hour, 24 * time.Hour, 36 * time.Hour, 7 * 24 * time.Hour, 300 * time.Second, 1500 * time.Millisecond, 25*time.Hour + time.Second} {
		s := FormatDuration(d)
		back, err := ParseDuration(s)
		if err != nil || back != d {
			t.Errorf("FormatDuration(%v) = %q, parses back as %v, %v", d, s, back, err)
		}
	}
	for d, want := range map[time.Duration]string{15 * time.Minute: "15m", 7 * 24 * time.Hour: "7d", 36 * time.Hour: "1d12h", 300 * time.Second: "5m", 90 * time.Minute: "1h30m", 12 * time.Hour: "12h"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestLookups(t *testing.T) {
	c, err := Parse(exampleWithSecrets(t), "d.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := c.Group("daypass"); !ok || g.MaxDevices != 2 {
		t.Errorf("Group(daypass) = %+v, %v", g, ok)
	}
	if _, ok := c.Group("nope"); ok {
		t.Error("Group(nope) found")
	}
	if p, ok := c.PlanFor("6500aaaa", " day pass"); !ok || p.Group != "daypass" {
		t.Errorf("PlanFor by name = %+v, %v", p, ok)
	}
	if _, ok := c.PlanFor("", "Coworking Unlimited"); ok {
		t.Error("PlanFor(unmapped) found")
	}
	if l, ok := c.LocationFor("", "UPTOWN"); !ok || l.VLAN != 200 {
		t.Errorf("LocationFor(UPTOWN) = %+v, %v", l, ok)
	}
}

func TestSyntaxErrorLines(t *testing.T) {
	for _, tt := range []struct {
		doc  string
		line int
	}{
		{"log:\n  level: info\nsync: [x\nusers: {}\n", 3},      // parser error (yaml.v3 says 2)
		{"log:\n  level: info\n  - x\n", 2},                    // parser error: yaml.v3 names the mapping the bad line is in
		{"log:\n  level: info: debug\n", 2},                    // scanner error
		{"log:\n  level: info\n\tformat: json\n", 2},           // tab: points at the mapping
		{"log:\n  level: info\nsync:\n  interval: \"15m\n", 4}, // unterminated quote
		{"log: {level: info}\n---\nlog: {level: debug}\n", 2},  // second document
	} {
		_, err := Parse([]byte(tt.doc), "d.yaml")
		var verr *ValidationError
		if !errors.As(err, &verr) || len(verr.Problems) != 1 {
			t.Errorf("Parse(%q) = %v, want one syntax problem", tt.doc, err)
			continue
		}
		if p := verr.Problems[0]; p.Line != tt.line || !strings.Contains(p.Msg, "YAML syntax error") {
			t.Errorf("Parse(%q): %v; want line %d", tt.doc, p, tt.line)
		}
	}
}
