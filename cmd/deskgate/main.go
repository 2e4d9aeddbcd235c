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
//	deskgate net plan               the gateway's desired network state
//	deskgate net teardown           remove the network state deskgate owns
//	deskgate config check <file>    validate a configuration file
//	deskgate config example         print a commented example configuration
//	deskgate update status|install|gate
//	                                A/B slots and signed updates (on the box)
package main

import (
	"context"
	"encoding/json"
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

const usage = `usage: deskgate [-socket path | -addr host:port] [-json] <command>

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
  net plan                  the gateway's desired network state (VLANs, rules, shaping)
  net teardown              remove every dg- chain, ipset, class and link
  config check <file>       validate a configuration file
  config example            print a commented example configuration
  update status             root slots, versions, the last update attempt and why it failed
  update install FILE|URL   install a signed bundle into the other slot and reboot
`

func run(args []string, out io.Writer) (int, error) {
	fs := flag.NewFlagSet("deskgate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	socket := fs.String("socket", envOr("DESKGATE_SOCKET", "/var/lib/deskgate/deskgate.sock"), "daemon's unix socket")
	addr := fs.String("addr", os.Getenv("DESKGATE_ADDR"), "daemon's local API host:port (instead of -socket)")
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
		}
		if err := c.Get(ctx, "/v1/audit", q, &entries); err != nil {
			return 1, err
		}
		return show(entries, func() {
			for _, e := range entries {
				fmt.Fprintf(out, "%s  %-8s %-22s %s\n", e.Time.Local().Format("2006-01-02 15:04:05"), e.Actor, e.Action, e.Cause)
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
	case "help", "-h", "--help":
		fmt.Fprint(out, usage)
		return 0, nil
	}
	fmt.Fprint(out, usage)
	return 2, fmt.Errorf("unknown command %q", rest[0])
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
