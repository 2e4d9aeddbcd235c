// Command deskgate is the operator CLI. It talks to the running daemon
// over its local API (the unix socket, or -addr host:port) and never opens
// the database itself.
//
//	deskgate status                 sync health, counts, webhook, RADIUS
//	deskgate members [query]        members with their decision and username
//	deskgate explain <user> [--nas <name>]
//	                                the decision with its reasons, and the
//	                                RADIUS reply a NAS would get
//	deskgate sync now [--full]      poll (or full pass) now and show the run
//	deskgate synclog [n]            the last sync runs
//	deskgate audit [member]         access changes with their causes
//	deskgate doctor                 walk the troubleshooting list
//	deskgate reload                 re-read the configuration
//	deskgate nas check              NAS that sent requests without Message-Authenticator
//	deskgate sessions               live RADIUS sessions
//	deskgate certs [user]           EAP-TLS client certificates issued
//	deskgate certs revoke <user|serial>
//	                                revoke one certificate, or all of a member's
//	deskgate devices [user]         devices registered for PPSK
//	deskgate devices add <user> <mac> <name>
//	deskgate devices remove <mac>
//	deskgate fleet init|invite|join|remove|status|dump|config push|update|partition|heal
//	                                the boxes of one space as a fleet
//	deskgate net plan               the gateway's desired network state
//	deskgate net teardown           remove the network state deskgate owns
//	deskgate config check <file>    validate a configuration file
//	deskgate config example         print a commented example configuration
//	deskgate update status|install|gate
//	                                A/B slots and signed updates (on the box)
//	deskgate admin token            print the token the TCP admin API wants
//	deskgate admin add|passwd|remove|list
//	                                the web console's operator logins
//
// Over the unix socket no token is needed. With -addr the CLI sends
// Authorization: Bearer <token> from -token, -token-file or DESKGATE_TOKEN.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/config"
)

func main() {
	code, err := run(os.Args[1:], os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "deskgate:", err)
	}
	os.Exit(code)
}

const usage = `usage: deskgate [-socket path | -addr host:port [-token T | -token-file F] [-cacert F]] [-json] <command>

commands:
  status                    sync health, counts, webhook and RADIUS state
  members [query]           members with their decision and WiFi username
  explain <user> [--nas N]  why a member is allowed or denied, and the RADIUS reply
  sync now [--full]         poll OfficeRnD now (or a full pass)
  synclog [n]               the last n sync runs
  audit [member]            access changes with their causes
  doctor                    walk the troubleshooting list
  reload                    re-read the configuration file
  nas check                 NAS that sent Access-Requests without Message-Authenticator
  sessions [member]         live RADIUS sessions
  certs [user]              EAP-TLS client certificates issued (all, or a member's)
  certs revoke <user|serial>  revoke one certificate, or every one of a member
  devices [user]            devices without 802.1X registered for PPSK, with their passphrase
  devices add <user> <mac> <name>  register a device for a member (counts against their device limit)
  devices remove <mac>      forget a device and disconnect it
  net plan                  the gateway's desired network state (VLANs, rules, shaping)
  net teardown              remove every dg- chain, ipset, class and link
  config check <file>       validate a configuration file
  config example            print a commented example configuration
  update status             root slots, versions, the last update attempt and why it failed
  update install FILE|URL   install a signed bundle into the other slot and reboot
  admin token               print the admin API token (over the unix socket only)
  admin add NAME [--role operator|admin]  add a web console login (password from the terminal or stdin)
  admin passwd NAME [--role R]  change a console login's password (and role)
  admin remove NAME         remove a console login
  admin list                console logins and their roles
  fleet init [--id BOX]     make this box the first of a fleet (creates the fleet CA)
  fleet invite [--ttl 1h]   print a single-use join token for a new box
  fleet join TOKEN [--id BOX]  join the fleet the token is from
  fleet remove BOX          remove a box; every box refuses it from then on
  fleet status              this box, its peers, link state and lag
  fleet config push [FILE]  plans, groups, locations, roaming for every box (default:
                            this box's own); every reachable box validates it first
  fleet dump                the replicated state in canonical form, with its digest
  fleet partition BOX...    demo/test switch: cut this box off from those boxes
  fleet heal                (deskgated started with DESKGATE_DEMO_SWITCHES=1)
  fleet update BUNDLE [--canary BOX]  install a signed bundle on every box, a canary first
  fleet update status       the fleet's rollouts: each box's phase, which box failed and why

Over -addr the daemon wants its admin token: -token, -token-file or DESKGATE_TOKEN.
`

func run(args []string, out io.Writer) (int, error) {
	fs := flag.NewFlagSet("deskgate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	socket := fs.String("socket", envOr("DESKGATE_SOCKET", "/var/lib/deskgate/deskgate.sock"), "daemon's unix socket")
	addr := fs.String("addr", os.Getenv("DESKGATE_ADDR"), "daemon's local API host:port or https://host:port (instead of -socket)")
	token := fs.String("token", "", "admin token for -addr (default $DESKGATE_TOKEN)")
	tokenFile := fs.String("token-file", "", "file holding the admin token for -addr")
	caFile := fs.String("cacert", "", "PEM CA certificate to trust for an https:// -addr")
	asJSON := fs.Bool("json", false, "print raw JSON")
	if err := fs.Parse(args); err != nil {
		fmt.Fprint(out, usage)
		return 2, err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprint(out, usage)
		return 2, nil
	}
	target := *socket
	if *addr != "" {
		target = *addr
	}
	c := admin.Dial(target)
	if *addr != "" {
		tok, err := adminToken(*token, *tokenFile)
		if err != nil {
			return 2, err
		}
		c.WithToken(tok)
		if *caFile != "" {
			pem, err := os.ReadFile(*caFile)
			if err != nil {
				return 2, fmt.Errorf("read -cacert: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return 2, fmt.Errorf("-cacert %s: no PEM certificate in it", *caFile)
			}
			c.SetTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	show := func(v any, human func()) (int, error) {
		if *asJSON {
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			return 0, enc.Encode(v)
		}
		human()
		return 0, nil
	}
	switch rest[0] {
	case "status":
		var st admin.Status
		if err := c.Get(ctx, "/v1/status", nil, &st); err != nil {
			return 1, err
		}
		return show(st, func() { printStatus(out, st) })
	case "members":
		q := url.Values{}
		if len(rest) > 1 {
			q.Set("q", strings.Join(rest[1:], " "))
		}
		var rows []admin.MemberRow
		if err := c.Get(ctx, "/v1/members", q, &rows); err != nil {
			return 1, err
		}
		return show(rows, func() { printMembers(out, rows) })
	case "explain":
		efs := flag.NewFlagSet("explain", flag.ContinueOnError)
		efs.SetOutput(io.Discard)
		nas := efs.String("nas", "", "NAS name from the config")
		user, eargs := "", rest[1:]
		if len(eargs) > 0 && !strings.HasPrefix(eargs[0], "-") {
			user, eargs = eargs[0], eargs[1:]
		}
		if err := efs.Parse(eargs); err != nil {
			return 2, err
		}
		if user == "" && efs.NArg() > 0 {
			user = efs.Arg(0)
		}
		if user == "" {
			return 2, fmt.Errorf("explain: which user? (username, email or member id)")
		}
		var ex admin.Explanation
		if err := c.Get(ctx, "/v1/explain", url.Values{"user": {user}, "nas": {*nas}}, &ex); err != nil {
			return 1, err
		}
		return show(ex, func() { printExplain(out, ex) })
	case "sync":
		if len(rest) < 2 || rest[1] != "now" {
			return 2, fmt.Errorf("usage: deskgate sync now [--full]")
		}
		q := url.Values{}
		if len(rest) > 2 && (rest[2] == "--full" || rest[2] == "-full") {
			q.Set("full", "1")
		}
		var rl json.RawMessage
		err := c.Post(ctx, "/v1/sync", q, &rl)
		if err != nil {
			return 1, err
		}
		return show(rl, func() { printJSON(out, rl) })
	case "synclog":
		q := url.Values{"limit": {"10"}}
		if len(rest) > 1 {
			q.Set("limit", rest[1])
		}
		var logs []json.RawMessage
		if err := c.Get(ctx, "/v1/synclog", q, &logs); err != nil {
			return 1, err
		}
		return show(logs, func() { printJSON(out, logs) })
	case "audit":
		q := url.Values{}
		if len(rest) > 1 {
			q.Set("member", rest[1])
		}
		var entries []struct {
			Time    time.Time `json:"time"`
			Actor   string    `json:"actor"`
			Action  string    `json:"action"`
			Subject string    `json:"subject"`
			Cause   string    `json:"cause"`
			Box     string    `json:"box"`
		}
		if err := c.Get(ctx, "/v1/audit", q, &entries); err != nil {
			return 1, err
		}
		return show(entries, func() {
			for _, e := range entries {
				box := ""
				if e.Box != "" { // a fleet's trail: which box made the change
					box = fmt.Sprintf("%-10s ", e.Box)
				}
				fmt.Fprintf(out, "%s  %s%-8s %-22s %s\n", e.Time.Local().Format("2006-01-02 15:04:05"), box, e.Actor, e.Action, e.Cause)
			}
		})
	case "doctor":
		var checks []admin.Check
		if err := c.Get(ctx, "/v1/doctor", nil, &checks); err != nil {
			return 1, err
		}
		code := 0
		for _, ch := range checks {
			if !ch.OK {
				code = 1
			}
		}
		_, err := show(checks, func() { printDoctor(out, checks) })
		return code, err
	case "reload":
		if err := c.Post(ctx, "/v1/reload", nil, nil); err != nil {
			return 1, err
		}
		fmt.Fprintln(out, "configuration reloaded")
		return 0, nil
	case "nas":
		if len(rest) < 2 || rest[1] != "check" {
			return 2, fmt.Errorf("usage: deskgate nas check")
		}
		var v []struct {
			Name       string    `json:"name"`
			Prefix     string    `json:"prefix"`
			Legacy     bool      `json:"legacy"`
			Count      uint64    `json:"count"`
			Dropped    uint64    `json:"dropped"`
			LastSource string    `json:"lastSource"`
			Last       time.Time `json:"last"`
		}
		if err := c.Get(ctx, "/v1/nas/check", nil, &v); err != nil {
			return 1, err
		}
		return show(v, func() {
			if len(v) == 0 {
				fmt.Fprintln(out, "every NAS sent Message-Authenticator with its Access-Requests (BlastRADIUS-safe)")
				return
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAS\tADDRESS\tLEGACY\tWITHOUT MA\tDROPPED\tLAST FROM\tLAST")
			for _, r := range v {
				fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%d\t%s\t%s\n", r.Name, r.Prefix, r.Legacy, r.Count, r.Dropped, r.LastSource, r.Last.Local().Format("2006-01-02 15:04:05"))
			}
			tw.Flush()
			fmt.Fprintln(out, "\nUpdate these NAS to send Message-Authenticator (CVE-2024-3596); legacy: true accepts them meanwhile.")
		})
	case "net":
		if len(rest) < 2 || (rest[1] != "plan" && rest[1] != "teardown") {
			return 2, fmt.Errorf("usage: deskgate net plan | deskgate net teardown")
		}
		var v map[string]string
		var err error
		if rest[1] == "plan" {
			err = c.Get(ctx, "/v1/net/plan", nil, &v)
		} else {
			err = c.Post(ctx, "/v1/net/teardown", nil, &v)
		}
		if err != nil {
			return 1, err
		}
		return show(v, func() {
			if v["mode"] != "" {
				fmt.Fprintf(out, "# %s\n", v["mode"])
			}
			fmt.Fprint(out, v["plan"], v["status"], "\n")
		})
	case "update":
		return runUpdate(ctx, rest[1:], c, out, *asJSON)
	case "sessions":
		q := url.Values{}
		if len(rest) > 1 {
			q.Set("member", rest[1])
		}
		var v []struct {
			NAS          string    `json:"nas"`
			Username     string    `json:"username"`
			MAC          string    `json:"mac"`
			IP           string    `json:"ip"`
			Start        time.Time `json:"start"`
			LastUpdate   time.Time `json:"lastUpdate"`
			InputOctets  uint64    `json:"inputOctets"`
			OutputOctets uint64    `json:"outputOctets"`
		}
		if err := c.Get(ctx, "/v1/sessions", q, &v); err != nil {
			return 1, err
		}
		return show(v, func() {
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USER\tMAC\tIP\tNAS\tSTART\tLAST UPDATE\tIN\tOUT")
			for _, s := range v {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", s.Username, s.MAC, s.IP, s.NAS,
					s.Start.Local().Format("01-02 15:04"), s.LastUpdate.Local().Format("01-02 15:04"), s.InputOctets, s.OutputOctets)
			}
			tw.Flush()
		})
	case "certs":
		var v []admin.ClientCert
		var err error
		switch {
		case len(rest) >= 2 && rest[1] == "revoke":
			if len(rest) != 3 || rest[2] == "" {
				return 2, fmt.Errorf("usage: deskgate certs revoke <user|serial>")
			}
			err = c.Post(ctx, "/v1/certs/revoke", url.Values{"target": {rest[2]}}, &v)
		case len(rest) > 2:
			return 2, fmt.Errorf("usage: deskgate certs [user] | deskgate certs revoke <user|serial>")
		default:
			q := url.Values{}
			if len(rest) == 2 {
				q.Set("user", rest[1])
			}
			err = c.Get(ctx, "/v1/certs", q, &v)
		}
		if err != nil {
			return 1, err
		}
		return show(v, func() { printCerts(out, v) })
	case "devices":
		var v []admin.Device
		var err error
		switch {
		case len(rest) >= 2 && rest[1] == "add":
			if len(rest) < 5 {
				return 2, fmt.Errorf("usage: deskgate devices add <user> <mac> <name>")
			}
			err = c.Post(ctx, "/v1/devices", url.Values{"user": {rest[2]}, "mac": {rest[3]}, "name": {strings.Join(rest[4:], " ")}}, &v)
		case len(rest) >= 2 && rest[1] == "remove":
			if len(rest) != 3 {
				return 2, fmt.Errorf("usage: deskgate devices remove <mac>")
			}
			err = c.Post(ctx, "/v1/devices/remove", url.Values{"mac": {rest[2]}}, &v)
		case len(rest) > 2:
			return 2, fmt.Errorf("usage: deskgate devices [user] | devices add <user> <mac> <name> | devices remove <mac>")
		default:
			q := url.Values{}
			if len(rest) == 2 {
				q.Set("user", rest[1])
			}
			err = c.Get(ctx, "/v1/devices", q, &v)
		}
		if err != nil {
			return 1, err
		}
		return show(v, func() { printDevices(out, v) })
	case "config":
		if len(rest) >= 2 && rest[1] == "example" {
			_, err := out.Write(config.Example())
			return 0, err
		}
		if len(rest) < 3 || rest[1] != "check" {
			return 2, fmt.Errorf("usage: deskgate config check <file> | deskgate config example")
		}
		if _, err := config.Load(rest[2]); err != nil {
			return 1, err
		}
		fmt.Fprintf(out, "%s: OK\n", rest[2])
		return 0, nil
	case "admin":
		if len(rest) >= 2 && rest[1] != "token" {
			return operatorCmd(ctx, c, rest[1:], *addr != "", out, show)
		}
		if len(rest) < 2 {
			return 2, errors.New(adminUsage)
		}
		if *addr != "" {
			return 2, fmt.Errorf("admin token: the daemon hands its token out only over the unix socket; run it on the box without -addr (or read <data_dir>/admin.token as root)")
		}
		var v struct {
			Token string `json:"token"`
			File  string `json:"file"`
		}
		if err := c.Get(ctx, "/v1/token", nil, &v); err != nil {
			return 1, err
		}
		if *asJSON {
			return show(v, nil)
		}
		fmt.Fprintln(out, v.Token)
		return 0, nil
	case "fleet":
		return fleetCmd(ctx, c, rest[1:], out, show)
	case "help", "-h", "--help":
		fmt.Fprint(out, usage)
		return 0, nil
	}
	fmt.Fprint(out, usage)
	return 2, fmt.Errorf("unknown command %q", rest[0])
}

// adminToken picks the token for -addr: -token, then -token-file, then
// $DESKGATE_TOKEN. No token is not an error here: the daemon answers 401
// with the hint, and /metrics and /healthz need none.
func adminToken(flagTok, file string) (string, error) {
	if flagTok != "" && file != "" {
		return "", fmt.Errorf("give -token or -token-file, not both")
	}
	if flagTok != "" {
		return strings.TrimSpace(flagTok), nil
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read -token-file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("-token-file %s is empty", file)
		}
		return tok, nil
	}
	return strings.TrimSpace(os.Getenv("DESKGATE_TOKEN")), nil
}

func printDevices(out io.Writer, ds []admin.Device) {
	if len(ds) == 0 {
		fmt.Fprintln(out, "no devices")
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MAC\tNAME\tUSER\tKEY\tVLAN\tPASSPHRASE\tADDED")
	for _, d := range ds {
		vlan := "-"
		if d.VLAN > 0 {
			vlan = fmt.Sprint(d.VLAN)
		}
		pass := d.Passphrase
		if pass == "" {
			pass = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.MAC, d.Name, d.Username, d.Scope, vlan, pass, d.CreatedAt.Local().Format("2006-01-02")+" by "+d.AddedBy)
	}
	tw.Flush()
}

func printCerts(out io.Writer, certs []admin.ClientCert) {
	if len(certs) == 0 {
		fmt.Fprintln(out, "no client certificates")
		return
	}
	day := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Local().Format("2006-01-02")
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL\tUSER\tISSUED\tEXPIRES\tSTATE")
	for _, c := range certs {
		state := "live"
		switch {
		case !c.Revoked.IsZero():
			state = "revoked " + day(c.Revoked)
		case !c.Live:
			state = "expired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Serial, c.Identity, day(c.IssuedAt), day(c.NotAfter), state)
	}
	tw.Flush()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func printJSON(out io.Writer, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintln(out, string(b))
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}

func printStatus(out io.Writer, st admin.Status) {
	ready := "ready"
	if !st.Ready {
		ready = "starting (initial import or guest codes not settled yet)"
	}
	fmt.Fprintf(out, "deskgated %s, up %s, %s\n\n", st.Version, st.Now.Sub(st.Started).Round(time.Second), ready)
	health := "healthy"
	if st.Sync.Failures > 0 {
		health = fmt.Sprintf("FAILING (%d in a row): %s", st.Sync.Failures, st.Sync.LastError)
	}
	if !st.Sync.ImportDone {
		health = "initial import not finished: " + st.Sync.LastError
	}
	fmt.Fprintf(out, "sync       %s\n", health)
	fmt.Fprintf(out, "           last success %s, lag %s, API calls %d, rate-limit waits %d\n",
		ago(st.Sync.LastSuccess, st.Now), (time.Duration(st.Sync.LagSeconds) * time.Second).String(), st.Sync.APICalls, st.Sync.RateWaits)
	fmt.Fprintf(out, "webhook    %s (secret set: %v) %s\n", st.Webhook.Registration, st.Webhook.SecretSet, st.Webhook.Detail)
	fmt.Fprintf(out, "store      %d members, %d companies, %d memberships, %d plans, %d locations, %d bookings, %d passes\n",
		st.Counts["member"], st.Counts["company"], st.Counts["membership"], st.Counts["plan"], st.Counts["location"], st.Counts["booking"], st.Counts["pass"])
	var groups []string
	for g, n := range st.Groups {
		groups = append(groups, fmt.Sprintf("%s %d", g, n))
	}
	fmt.Fprintf(out, "accounts   %s; disabled %d\n", strings.Join(groups, ", "), st.Disabled)
	fmt.Fprintf(out, "email      %d waiting in the outbox\n", st.Outbox)
	if st.RADIUS != nil {
		fmt.Fprintf(out, "radius     auth %s, acct %s, %d NAS, %d live sessions\n",
			strings.Join(st.RADIUS.AuthAddrs, " "), strings.Join(st.RADIUS.AcctAddrs, " "), st.RADIUS.NAS, st.RADIUS.LiveSessions)
		printRadiusCounters(out, st.RADIUS)
	}
	if c := st.Console; c != nil {
		kind := "configured certificate"
		if c.SelfSigned {
			kind = "self-signed certificate"
		}
		fmt.Fprintf(out, "console    %s (%s, SHA-256 %s)\n", c.URL, kind, c.Fingerprint)
	}
	if len(st.Unmapped) > 0 {
		fmt.Fprintf(out, "WARNING    plans without a mapping: %s\n", strings.Join(st.Unmapped, ", "))
	}
	if len(st.Unresolved) > 0 {
		fmt.Fprintf(out, "WARNING    config locations not found in OfficeRnD: %s\n", strings.Join(st.Unresolved, ", "))
	}
}

// printRadiusCounters prints the RADIUS packet counters since start: what
// came in, what went out, and what was dropped and why.
func printRadiusCounters(out io.Writer, r *admin.RADIUSStatus) {
	var in, sent, dropped []string
	for _, c := range r.Requests {
		in = append(in, fmt.Sprintf("%s %s %d", c.Port, c.Code, c.Count))
	}
	for _, c := range r.Responses {
		sent = append(sent, fmt.Sprintf("%s %d", c.Code, c.Count))
	}
	reasons := make([]string, 0, len(r.Drops))
	for k := range r.Drops {
		reasons = append(reasons, k)
	}
	slices.Sort(reasons)
	for _, k := range reasons {
		if n := r.Drops[k]; n > 0 {
			dropped = append(dropped, fmt.Sprintf("%s %d", k, n))
		}
	}
	none := func(s []string) string {
		if len(s) == 0 {
			return "none"
		}
		return strings.Join(s, ", ")
	}
	fmt.Fprintf(out, "           requests: %s\n", none(in))
	fmt.Fprintf(out, "           replies: %s; duplicates %d\n", none(sent), r.Duplicates)
	fmt.Fprintf(out, "           dropped: %s\n", none(dropped))
}

func printMembers(out io.Writer, rows []admin.MemberRow) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tUSERNAME\tACCESS\tPLAN\tGROUP")
	for _, r := range rows {
		acc := "allowed"
		if !r.Allowed {
			acc = "denied: " + r.Deny
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Username, acc, r.Plan, r.Group)
	}
	tw.Flush()
}

func printExplain(out io.Writer, ex admin.Explanation) {
	d := ex.Decision
	who := ex.Query
	if ex.Member != nil {
		who = fmt.Sprintf("%s <%s> (member %s)", ex.Member.Name, ex.Member.Email, ex.Member.ID)
	}
	verdict := "ALLOWED"
	if !d.Allowed {
		verdict = "DENIED (" + d.Deny + ")"
	}
	fmt.Fprintf(out, "%s: %s at %s\n", who, verdict, ex.At.Local().Format("2006-01-02 15:04 MST"))
	for _, r := range d.Reasons {
		fmt.Fprintf(out, "  - %s\n", r)
	}
	if ex.Account != nil {
		state := "enabled"
		if ex.Account.Disabled {
			state = "disabled (" + ex.Account.DisabledReason + ")"
		}
		fmt.Fprintf(out, "account   %s, %s, password %s (%s)\n", ex.Account.Username, state,
			map[bool]string{true: "set", false: "not set"}[ex.Account.PasswordSet], ex.Account.PasswordSource)
	} else {
		fmt.Fprintln(out, "account   none")
	}
	if d.Allowed {
		fmt.Fprintf(out, "group     %s (plan %s)\n", d.Group, d.PlanName)
		fmt.Fprintf(out, "bandwidth down %d kbit/s, up %d kbit/s (0 = unlimited)\n", d.Bandwidth.DownKbps, d.Bandwidth.UpKbps)
		for _, l := range d.Locations {
			fmt.Fprintf(out, "location  %s: network %s, VLAN %d\n", l.Name, l.Network, l.VLAN)
		}
		until := "open-ended"
		if !d.ValidUntil.IsZero() {
			until = d.ValidUntil.Local().Format("2006-01-02 15:04 MST")
		}
		fmt.Fprintf(out, "valid     until %s; session timeout %s; max devices %d; static IP %v\n", until, d.SessionTimeout, d.MaxDevices, d.StaticIP)
	}
	if ex.SetupURL != "" {
		fmt.Fprintf(out, "setup     %s\n", ex.SetupURL)
	}
	if len(ex.Reply) > 0 {
		fmt.Fprintf(out, "RADIUS reply for NAS %s:\n", ex.NAS)
		for _, l := range ex.Reply {
			fmt.Fprintf(out, "  %s\n", l)
		}
	}
	if len(ex.Audit) > 0 {
		fmt.Fprintln(out, "recent changes:")
		for _, e := range ex.Audit {
			fmt.Fprintf(out, "  %s  %s\n", e.Time.Local().Format("2006-01-02 15:04:05"), e.Cause)
		}
	}
}

func printDoctor(out io.Writer, checks []admin.Check) {
	for _, c := range checks {
		mark := "ok  "
		switch {
		case !c.OK:
			mark = "FAIL"
		case c.Warn:
			mark = "warn"
		}
		fmt.Fprintf(out, "[%s] %-24s %s\n", mark, c.Name, c.Detail)
		if c.Fix != "" && (!c.OK || c.Warn) {
			for _, l := range strings.Split(c.Fix, "\n") {
				fmt.Fprintf(out, "       fix: %s\n", l)
			}
		}
	}
}

const fleetUsage = "usage: deskgate fleet init [--id BOX] | invite [--ttl 1h] | join TOKEN [--id BOX] | remove BOX | status | dump | config push [FILE] | update BUNDLE [--canary BOX] | update status | partition BOX... | heal"

// fleetCmd runs `deskgate fleet ...` (docs/fleet.md).
func fleetCmd(ctx context.Context, c *admin.Client, args []string, out io.Writer, show func(any, func()) (int, error)) (int, error) {
	if len(args) == 0 {
		return 2, errors.New(fleetUsage)
	}
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	host, _ := os.Hostname()
	id := fs.String("id", strings.ToLower(strings.SplitN(host, ".", 2)[0]), "this box's id in the fleet")
	ttl := fs.String("ttl", "1h", "how long the join token is valid")
	canary := fs.String("canary", "", "update: the box that installs first (default: the one with the fewest live sessions)")
	sub := args[0]
	var pos []string
	rest := args[1:]
	for len(rest) > 0 { // flags and positional arguments in any order
		if err := fs.Parse(rest); err != nil {
			return 2, fmt.Errorf("%w; %s", err, fleetUsage)
		}
		rest = fs.Args()
		if len(rest) > 0 {
			pos, rest = append(pos, rest[0]), rest[1:]
		}
	}
	type ident struct {
		BoxID   string `json:"boxId"`
		FleetID string `json:"fleetId"`
	}
	switch {
	case sub == "init" && len(pos) == 0:
		var v ident
		if err := c.PostJSON(ctx, "/v1/fleet/init", map[string]string{"box": *id}, &v); err != nil {
			return 1, err
		}
		return show(v, func() {
			fmt.Fprintf(out, "fleet %s created; this box is %s. Restart deskgated so RADIUS presents the fleet certificate. Next: deskgate fleet invite\n", v.FleetID, v.BoxID)
		})
	case sub == "invite" && len(pos) == 0:
		var v struct {
			Token   string    `json:"token"`
			Expires time.Time `json:"expires"`
		}
		if err := c.PostJSON(ctx, "/v1/fleet/invite", map[string]string{"ttl": *ttl}, &v); err != nil {
			return 1, err
		}
		return show(v, func() {
			fmt.Fprintf(out, "%s\n\nOn the new box: deskgate fleet join <token>  (single use, valid until %s)\n", v.Token, v.Expires.Local().Format("2006-01-02 15:04"))
		})
	case sub == "join" && len(pos) == 1:
		var v ident
		if err := c.PostJSON(ctx, "/v1/fleet/join", map[string]string{"token": pos[0], "box": *id}, &v); err != nil {
			return 1, err
		}
		return show(v, func() {
			fmt.Fprintf(out, "joined fleet %s as %s; restart deskgated so RADIUS presents the fleet certificate\n", v.FleetID, v.BoxID)
		})
	case sub == "remove" && len(pos) == 1:
		if err := c.PostJSON(ctx, "/v1/fleet/remove", map[string]string{"box": pos[0]}, nil); err != nil {
			return 1, err
		}
		fmt.Fprintf(out, "box %s removed; every box refuses it once it hears of the removal\n", pos[0])
		return 0, nil
	case sub == "partition" || (sub == "heal" && len(pos) == 0):
		if sub == "partition" && len(pos) == 0 {
			return 2, errors.New("usage: deskgate fleet partition BOX... (cut this box off from those boxes) | fleet heal")
		}
		var v struct {
			Cut []string `json:"cut"`
		}
		if err := c.PostJSON(ctx, "/v1/fleet/partition", map[string][]string{"cut": pos}, &v); err != nil {
			return 1, err
		}
		return show(v, func() {
			if len(v.Cut) == 0 {
				fmt.Fprintln(out, "partition healed: this box links with every box again")
				return
			}
			fmt.Fprintf(out, "this box is cut off from %s until `deskgate fleet heal`\n", strings.Join(v.Cut, ", "))
		})
	case sub == "config" && len(pos) >= 1 && len(pos) <= 2 && pos[0] == "push":
		req := map[string]string{"doc": ""}
		if len(pos) == 2 {
			b, err := os.ReadFile(pos[1])
			if err != nil {
				return 1, fmt.Errorf("fleet config push: %w", err)
			}
			req["doc"] = string(b)
		}
		var v struct {
			Applied     bool     `json:"applied"`
			Version     uint64   `json:"version"`
			Unreachable []string `json:"unreachable"`
		}
		if err := c.PostJSON(ctx, "/v1/fleet/config", req, &v); err != nil {
			return 1, err
		}
		return show(v, func() {
			fmt.Fprintf(out, "fleet configuration version %d pushed: every reachable box validated it", v.Version)
			if len(v.Unreachable) > 0 {
				fmt.Fprintf(out, "; %s get it when they reconnect (and keep their old one if it does not validate there: see fleet status)", strings.Join(v.Unreachable, ", "))
			}
			fmt.Fprintln(out)
		})
	case sub == "update" && len(pos) == 1:
		return fleetUpdate(ctx, c, pos[0], *canary, out, show) // fleetupdate.go
	case sub == "status" && len(pos) == 0:
		var v peerStatus
		if err := c.Get(ctx, "/v1/fleet/status", nil, &v); err != nil {
			return 1, err
		}
		return show(v, func() { printFleet(out, v) })
	case sub == "dump" && len(pos) == 0:
		var v fleetDump
		if err := c.Get(ctx, "/v1/fleet/dump", nil, &v); err != nil {
			return 1, err
		}
		return show(v, func() { printFleetDump(out, v) })
	}
	return 2, errors.New(fleetUsage)
}

// peerStatus mirrors peer.Status (the CLI does not import the daemon's packages).
type peerStatus struct {
	InFleet       bool              `json:"inFleet"`
	Box           string            `json:"box"`
	Fleet         string            `json:"fleet"`
	CAFingerprint string            `json:"caFingerprint"`
	HoldsCA       bool              `json:"holdsCA"`
	Listen        string            `json:"listen"`
	Locations     []string          `json:"locations"`
	VV            map[string]uint64 `json:"versionVector"`
	Peers         []struct {
		Box       string    `json:"box"`
		URL       string    `json:"url"`
		Locations []string  `json:"locations"`
		Version   string    `json:"version"`
		Link      string    `json:"link"`
		DialedBy  string    `json:"dialedBy"`
		Since     time.Time `json:"since"`
		Lag       uint64    `json:"lag"`
		LastError string    `json:"lastError"`
	} `json:"peers"`
	Removed    []string `json:"removed"`
	LogEntries int      `json:"logEntries"`
	Registers  int      `json:"registers"`
	Config     *struct {
		Version uint64 `json:"version"`
		By      string `json:"by"`
		State   string `json:"state"`
		Reason  string `json:"reason"`
	} `json:"config"`
}

// fleetDump mirrors peer.Dump.
type fleetDump struct {
	Box       string            `json:"box"`
	VV        map[string]uint64 `json:"versionVector"`
	Registers []struct {
		Kind   string `json:"kind"`
		Key    string `json:"key"`
		Origin string `json:"origin"`
		Seq    uint64 `json:"seq"`
		Time   struct {
			Wall    int64  `json:"w"`
			Logical uint32 `json:"l"`
		} `json:"time"`
		Value json.RawMessage `json:"value"`
	} `json:"registers"`
	Accounts []struct {
		Member   string `json:"member"`
		Username string `json:"username"`
		Password string `json:"password"`
		Source   string `json:"source"`
	} `json:"accounts"`
	Digest          string `json:"digest"`
	RegistersDigest string `json:"registersDigest"`
}

// printFleetDump prints the canonical dump: equal on two boxes exactly
// when they hold the same replicated state.
func printFleetDump(out io.Writer, v fleetDump) {
	fmt.Fprintf(out, "box %s digest %s (registers %s)\n", v.Box, v.Digest, v.RegistersDigest)
	origins := make([]string, 0, len(v.VV))
	for o := range v.VV {
		origins = append(origins, o)
	}
	slices.Sort(origins)
	for _, o := range origins {
		fmt.Fprintf(out, "vv %s %d\n", o, v.VV[o])
	}
	for _, r := range v.Registers {
		fmt.Fprintf(out, "reg %s %s %s/%d %d.%d %s\n", r.Kind, r.Key, r.Origin, r.Seq, r.Time.Wall, r.Time.Logical, r.Value)
	}
	for _, a := range v.Accounts {
		pw := a.Password
		if pw == "" {
			pw = "-"
		}
		fmt.Fprintf(out, "acct %s %s %s %s\n", a.Member, a.Username, pw, a.Source)
	}
}

func printFleet(out io.Writer, v peerStatus) {
	if !v.InFleet {
		fmt.Fprintln(out, "this box is in no fleet (deskgate fleet init, or fleet join TOKEN)")
		return
	}
	fmt.Fprintf(out, "box %s in fleet %s (CA %s…%s)\n", v.Box, v.Fleet, v.CAFingerprint[:8], v.CAFingerprint[56:])
	if v.Listen != "" {
		fmt.Fprintf(out, "listening on %s; locations: %s\n", v.Listen, strings.Join(v.Locations, ", "))
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nPEER\tVERSION\tLINK\tDIALED BY\tLAG\tURL\tLOCATIONS\tLAST ERROR")
	for _, p := range v.Peers {
		ver := p.Version
		if ver == "" {
			ver = "?"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", p.Box, ver, p.Link, p.DialedBy, p.Lag, p.URL, strings.Join(p.Locations, ","), p.LastError)
	}
	tw.Flush()
	if len(v.Removed) > 0 {
		fmt.Fprintf(out, "removed: %s\n", strings.Join(v.Removed, ", "))
	}
	if v.Registers > 0 {
		fmt.Fprintf(out, "log: %d entries for %d registers (superseded entries are compacted away)\n", v.LogEntries, v.Registers)
	}
	if c := v.Config; c != nil {
		fmt.Fprintf(out, "fleet configuration: version %d (pushed by %s) %s", c.Version, c.By, c.State)
		if c.State != "applied" {
			fmt.Fprintf(out, " — this box keeps its previous configuration: %s", c.Reason)
		}
		fmt.Fprintln(out)
	}
}
