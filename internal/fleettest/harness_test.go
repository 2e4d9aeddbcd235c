package fleettest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/officernd/officerndsim"
	"github.com/deskgate/deskgate/appliance/peer"
)

// The binaries under test, built once per test binary run (lazily, so a
// -run that selects nothing here builds nothing).
var (
	binDir    string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaries builds deskgated and deskgate (go build) and returns their paths.
func binaries(t testing.TB) (daemon, cli string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "fleettest-bin-")
		if buildErr != nil {
			return
		}
		start := time.Now()
		cmd := exec.Command("go", "build", "-o", binDir+"/", "github.com/deskgate/deskgate/cmd/deskgated", "github.com/deskgate/deskgate/cmd/deskgate")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
		t.Logf("built deskgated and deskgate in %s", time.Since(start).Round(time.Millisecond))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "deskgated"), filepath.Join(binDir, "deskgate")
}

// unavailable skips, or fails under CI=true, a test whose tools or
// privileges are missing.
func unavailable(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but cannot run: %s", reason)
	}
	t.Skip(reason)
}

// needTools checks external programs (Debian packages in parentheses).
func needTools(t testing.TB, tools ...string) {
	t.Helper()
	pkgs := map[string]string{"radclient": "freeradius-utils", "eapol_test": "eapoltest", "ip": "iproute2", "iptables": "iptables"}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, tool+" not installed (apt-get install "+pkgs[tool]+")")
		}
	}
}

const (
	nasSecret  = "fleet-nas-secret"
	serverName = "wifi.fleet.test"
	simSecret  = "fleet-sim-secret"
)

// fleetOpts shape a test fleet.
type fleetOpts struct {
	netns      bool   // each box in its own network namespace (root)
	policy     string // users.password_policy; default generate
	webhooksA  bool   // box-a has a public webhook URL the simulator calls
	locations  []string
	extraMembs int
}

// fleet is three (or more) deskgated processes and one simulator.
type fleet struct {
	t      *testing.T
	sim    *officerndsim.Sim
	simURL string
	boxes  []*box
	lab    *lab // nil on loopback
	cli    string
	daemon string
	opts   fleetOpts
}

// box is one deskgated process and its data directory.
type box struct {
	f       *fleet
	id      string
	dir     string
	cfgPath string
	sock    string
	ns      string // network namespace, "" on loopback
	ip      string // the box's address (fleet and member pages)
	radius  string // RADIUS auth host:port (inside the box's namespace)
	acct    string // RADIUS accounting host:port
	members string // member pages base URL
	cmd     *exec.Cmd
	exited  chan struct{}
	logf    *os.File
}

// freePort returns a port on 127.0.0.1 (TCP and UDP) that was free a moment
// ago, below the ephemeral range.
func freePort(t testing.TB) int {
	t.Helper()
	for range 200 {
		p := 20000 + rand.IntN(12000)
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			if pc, err := net.ListenPacket("udp", addr); err == nil {
				pc.Close()
				return p
			}
		}
	}
	t.Fatal("no free port")
	return 0
}

// startFleet starts the simulator and three daemons (box-a and box-b at
// Downtown, box-c at Uptown), makes box-a the fleet's first box and joins
// the others with `deskgate fleet invite` / `fleet join`, restarts every
// daemon (so RADIUS presents the fleet certificate) and waits until every
// link is up.
func startFleet(t *testing.T, o fleetOpts) *fleet {
	t.Helper()
	daemon, cli := binaries(t)
	if o.policy == "" {
		o.policy = "generate"
	}
	if o.locations == nil {
		o.locations = []string{"Downtown", "Downtown", "Uptown"}
	}
	f := &fleet{t: t, cli: cli, daemon: daemon, opts: o}
	f.sim = officerndsim.New(officerndsim.Options{Seed: true, ExtraMembers: o.extraMembs, ClientSecret: simSecret,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RetryDelay: 50 * time.Millisecond})
	serve := func(ln net.Listener) {
		srv := &http.Server{Handler: f.sim, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}
	simPort := freePort(t)
	f.simURL = fmt.Sprintf("http://127.0.0.1:%d", simPort)
	if o.netns {
		// The simulator listens on the loopback of every box's namespace:
		// OfficeRnD stays reachable from every box whatever the partition.
		f.lab = newLab(t, len(o.locations))
		for _, ns := range f.lab.boxes {
			serve(f.lab.listen(ns, f.simURL[len("http://"):]))
		}
	} else {
		ln, err := net.Listen("tcp", f.simURL[len("http://"):])
		if err != nil {
			t.Fatal(err)
		}
		serve(ln)
	}
	for i, loc := range o.locations {
		f.boxes = append(f.boxes, f.newBox(i, loc))
	}
	t.Cleanup(func() {
		for _, b := range f.boxes {
			b.stop(syscall.SIGKILL)
		}
		if t.Failed() {
			for _, b := range f.boxes {
				t.Logf("%s log (tail):\n%s", b.id, b.logTail(40))
			}
		}
	})
	for _, b := range f.boxes {
		b.start()
	}
	for _, b := range f.boxes {
		b.waitReady(30 * time.Second)
	}
	f.boxes[0].run("fleet", "init", "--id", f.boxes[0].id)
	for _, b := range f.boxes[1:] {
		var inv struct {
			Token string `json:"token"`
		}
		f.boxes[0].runJSON(&inv, "fleet", "invite", "--ttl", "10m")
		b.run("fleet", "join", inv.Token, "--id", b.id)
	}
	for _, b := range f.boxes { // the fleet RADIUS certificate takes a restart
		b.stop(syscall.SIGTERM)
		b.start()
	}
	for _, b := range f.boxes {
		b.waitReady(30 * time.Second)
	}
	f.waitLinked(10 * time.Second)
	return f
}

func (f *fleet) newBox(i int, loc string) *box {
	t := f.t
	dir := t.TempDir()
	b := &box{f: f, id: "box-" + string(rune('a'+i)), dir: dir, sock: filepath.Join(dir, "deskgate.sock"), exited: make(chan struct{})}
	close(b.exited)
	b.ip = "127.0.0.1"
	if f.lab != nil {
		b.ns, b.ip = f.lab.boxes[i], f.lab.boxIP(i)
	}
	b.radius = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	b.acct = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	fleetAddr := fmt.Sprintf("%s:%d", b.ip, freePort(t))
	memberAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t)) // inside the box's namespace
	b.members = "http://" + memberAddr
	secret := filepath.Join(dir, "officernd.secret")
	if err := os.WriteFile(secret, []byte(simSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	hook := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	webhooks := fmt.Sprintf("sync: {interval: 1h, webhooks: false, webhook_listen: %q}", hook)
	if i == 0 && f.opts.webhooksA {
		webhooks = fmt.Sprintf("sync: {interval: 1h, webhooks: true, webhook_listen: %q, webhook_public_url: %q}", hook, "http://"+hook+"/webhooks/officernd")
	}
	cfg := fmt.Sprintf(`data_dir: %[1]s/data
log: {level: info}
admin: {listen: "127.0.0.1:0", socket: %[2]s}
officernd:
  client_id: %[3]s
  client_secret: {file: %[4]s}
  org_slug: %[5]s
  api_base: %[6]s/api/v2
  token_url: %[6]s/oauth/token
  scopes: [%[7]s]
%[8]s
users: {welcome_email: true, password_policy: %[9]s, onboarding_url: %[10]s/onboard}
plans:
  - {plan: Hot Desk, group: standard}
  - {plan: Day Pass, group: daypass, duration: 24h}
groups:
  - {name: standard, max_devices: 2}
  - {name: daypass, max_devices: 2}
locations:
  - {location: Downtown, network: downtown-secure, vlan: 100, subnet: 10.100.0.0/22}
  - {location: Uptown, network: uptown-secure, vlan: 200, subnet: 10.200.0.0/22}
roaming: {policy: all}
smtp: {mailbox_dir: %[1]s/mailbox, from: wifi@example.com}
radius:
  auth_listen: ["%[11]s"]
  acct_listen: ["%[12]s"]
  eap: {server_name: %[13]s}
  clients:
    - {name: ap, address: 127.0.0.1, secret: {value: %[14]s}, location: %[15]s}
fleet: {listen: "%[16]s", locations: [%[15]s]}
members: {listen: "%[17]s", insecure_http: true}
`, dir, b.sock, officerndsim.DefaultClientID, secret, officerndsim.DefaultOrgSlug, f.simURL,
		strings.Join(officerndsim.AllScopes, ", "), webhooks, f.opts.policy, b.members,
		b.radius, b.acct, serverName, nasSecret, loc, fleetAddr, memberAddr)
	b.cfgPath = filepath.Join(dir, "deskgate.yaml")
	if err := os.WriteFile(b.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

// command returns cmd to run inside the box's namespace (if any).
func (b *box) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if b.ns != "" {
		return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", b.ns, name}, args...)...)
	}
	return exec.CommandContext(ctx, name, args...)
}

// start runs deskgated on the box's data directory; its log goes to
// daemon.log (shown when the test fails).
func (b *box) start() {
	t := b.f.t
	t.Helper()
	lf, err := os.OpenFile(filepath.Join(b.dir, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := b.command(context.Background(), b.f.daemon, "-config", b.cfgPath)
	cmd.Stdout, cmd.Stderr = lf, lf
	// If the test binary dies (a timeout's panic skips t.Cleanup) the
	// daemon goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		t.Fatalf("start %s: %v", b.id, err)
	}
	b.cmd, b.logf, b.exited = cmd, lf, make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) {
		_ = c.Wait()
		close(done)
	}(cmd, b.exited)
}

// stop signals the daemon and waits for it to exit (SIGKILL after 10 s).
func (b *box) stop(sig syscall.Signal) {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(sig)
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.exited
	}
	b.logf.Close()
	b.cmd = nil
}

func (b *box) running() bool { return b.cmd != nil }

func (b *box) logTail(n int) string {
	raw, _ := os.ReadFile(filepath.Join(b.dir, "daemon.log"))
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// admin is the local API over the unix socket (what the CLI uses).
func (b *box) admin() *admin.Client { return admin.Dial(b.sock) }

func (b *box) status() (admin.Status, error) {
	var st admin.Status
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := b.admin().Get(ctx, "/v1/status", nil, &st)
	return st, err
}

func (b *box) waitReady(limit time.Duration) {
	b.f.t.Helper()
	waitFor(b.f.t, limit, b.id+" ready", func() bool {
		select {
		case <-b.exited:
			b.f.t.Fatalf("%s exited:\n%s", b.id, b.logTail(20))
		default:
		}
		st, err := b.status()
		return err == nil && st.Ready
	})
}

// run runs the deskgate CLI against the box and returns its output.
func (b *box) run(args ...string) string {
	b.f.t.Helper()
	out, err := b.tryRun(args...)
	if err != nil {
		b.f.t.Fatalf("%s: deskgate %s: %v\n%s", b.id, strings.Join(args, " "), err, out)
	}
	return out
}

func (b *box) tryRun(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.f.cli, append([]string{"-socket", b.sock}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (b *box) runJSON(v any, args ...string) {
	b.f.t.Helper()
	out := b.run(append([]string{"-json"}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		b.f.t.Fatalf("%s: deskgate -json %s: %v\n%s", b.id, strings.Join(args, " "), err, out)
	}
}

// fleetStatus reads `fleet status` over the API.
func (b *box) fleetStatus() (peer.Status, error) {
	var st peer.Status
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := b.admin().Get(ctx, "/v1/fleet/status", nil, &st)
	return st, err
}

// dump is `deskgate -json fleet dump`.
func (b *box) dump() (peer.Dump, error) {
	var d peer.Dump
	out, err := b.tryRun("-json", "fleet", "dump")
	if err != nil {
		return d, fmt.Errorf("%s: fleet dump: %v: %s", b.id, err, out)
	}
	err = json.Unmarshal([]byte(out), &d)
	return d, err
}

// linksUp reports how many of the box's peers have their link up.
func (b *box) linksUp() int {
	st, err := b.fleetStatus()
	if err != nil {
		return -1
	}
	up := 0
	for _, p := range st.Peers {
		if p.Link == "up" {
			up++
		}
	}
	return up
}

func (f *fleet) waitLinked(limit time.Duration) time.Duration {
	f.t.Helper()
	return waitFor(f.t, limit, "every link up", func() bool {
		for _, b := range f.boxes {
			if b.linksUp() != len(f.boxes)-1 {
				return false
			}
		}
		return true
	})
}

// sync makes the box poll OfficeRnD now (deskgate sync).
func (b *box) sync() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return b.admin().Post(ctx, "/v1/sync", nil, nil)
}

// account returns the box's view of user's account (nil: none).
func (b *box) account(user string) *admin.AccountView {
	var ex admin.Explanation
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.admin().Get(ctx, "/v1/explain", url.Values{"user": {user}}, &ex); err != nil {
		return nil
	}
	return ex.Account
}

// mails returns the decoded emails in the box's mailbox addressed to email.
func (b *box) mails(email string) []string {
	files, _ := filepath.Glob(filepath.Join(b.dir, "mailbox", "*.eml"))
	var out []string
	for _, fn := range files {
		raw, err := os.ReadFile(fn)
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
		s := string(body)
		if strings.Contains(s, "<"+email+">") || strings.Contains(s, "To: "+email) {
			out = append(out, s)
		}
	}
	return out
}

// welcomeMails returns the welcome emails in the box's mailbox addressed
// to email (a day-pass holder also gets a guest code email).
func (b *box) welcomeMails(email string) []string {
	var out []string
	for _, m := range b.mails(email) {
		if welcomeSubjectRe.MatchString(m) {
			out = append(out, m)
		}
	}
	return out
}

var welcomeSubjectRe = regexp.MustCompile(`(?m)^Subject: Welcome`)

// welcomes returns every welcome email to email across the fleet.
func (f *fleet) welcomes(email string) []string {
	var out []string
	for _, b := range f.boxes {
		out = append(out, b.welcomeMails(email)...)
	}
	return out
}

var onboardLinkRe = regexp.MustCompile(`http://[^\s"<>]+/onboard\?t=[A-Za-z0-9_=\-]+`)

// passwordIn returns the generated password of a welcome email.
func passwordIn(mail string) string {
	for _, l := range strings.Split(mail, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Password:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// createMember creates a member with a Hot Desk membership in the
// simulator (as an OfficeRnD admin would) and returns the member id.
func (f *fleet) createMember(name, email, location string) (string, string) {
	f.t.Helper()
	ids := f.sim.Seeded().IDs
	m, err := f.sim.Create("members", map[string]any{"name": name, "email": email, "location": ids["location:"+location]})
	if err != nil {
		f.t.Fatalf("create member: %v", err)
	}
	// Dates are days in the location's time zone: two days back is in the
	// past in every zone at any hour (one day back is today in New York
	// just after midnight UTC).
	start := f.sim.Now().UTC().AddDate(0, 0, -2).Format("2006-01-02")
	ms, err := f.sim.Create("memberships", map[string]any{"name": "Hot Desk", "isPersonal": true, "member": m["_id"],
		"plan": ids["plan:Hot Desk"], "location": ids["location:"+location], "startDate": start + "T00:00:00.000Z"})
	if err != nil {
		f.t.Fatalf("create membership: %v", err)
	}
	return fmt.Sprint(m["_id"]), fmt.Sprint(ms["_id"])
}

// createDayPassMember creates a drop-in member holding one unused Day
// Pass (no membership) in the simulator, as the seeded "daypass-valid"
// member, and returns the member and pass ids.
func (f *fleet) createDayPassMember(name, email, location string) (string, string) {
	f.t.Helper()
	ids := f.sim.Seeded().IDs
	m, err := f.sim.Create("members", map[string]any{"name": name, "email": email, "location": ids["location:"+location], "status": "drop-in"})
	if err != nil {
		f.t.Fatalf("create day-pass member: %v", err)
	}
	// Valid from two days back (see createMember on time zones) for a month.
	now := f.sim.Now().UTC()
	from, to := now.AddDate(0, 0, -2).Format("2006-01-02"), now.AddDate(0, 0, 29).Format("2006-01-02")
	p, err := f.sim.Create("passes", map[string]any{"member": m["_id"], "isPersonal": true, "plan": ids["plan:Day Pass"],
		"count": 1, "usedCount": 0, "intervalLength": "once", "resourceType": "hotdesk",
		"startDate": from + "T00:00:00.000Z", "validFrom": from + "T00:00:00.000Z", "validTo": to + "T23:59:00.000Z",
		"shouldGrantActiveStatus": false, "properties": map[string]any{"location": ids["location:"+location]}})
	if err != nil {
		f.t.Fatalf("create day pass: %v", err)
	}
	return fmt.Sprint(m["_id"]), fmt.Sprint(p["_id"])
}

// endMembership ends a membership two days ago (simulator clock; see
// createMember on time zones), with a start three days ago.
func (f *fleet) endMembership(id string) {
	f.t.Helper()
	now := f.sim.Now().UTC()
	start, end := now.AddDate(0, 0, -3).Format("2006-01-02"), now.AddDate(0, 0, -2).Format("2006-01-02")
	if _, err := f.sim.Update("memberships", id, map[string]any{"startDate": start + "T00:00:00.000Z", "endDate": end + "T00:00:00.000Z", "type": "fixed"}); err != nil {
		f.t.Fatalf("end membership: %v", err)
	}
}

// radclient sends one request with radclient from inside the box's
// namespace and reports whether the expected reply came.
func (b *box) radclient(kind, attrs string) (bool, string) {
	addr, want := b.radius, "Received Access-Accept"
	if kind == "acct" {
		addr, want = b.acct, "Received Accounting-Response"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := b.command(ctx, "radclient", "-x", "-r", "2", "-t", "1", addr, kind, nasSecret)
	cmd.Stdin = strings.NewReader(attrs)
	out, _ := cmd.CombinedOutput()
	return strings.Contains(string(out), want), string(out)
}

// pap reports whether user/pw gets an Access-Accept (PAP) at the box.
func (b *box) pap(user, pw, mac string) bool {
	ok, _ := b.radclient("auth", fmt.Sprintf("User-Name = %q\nUser-Password = %q\nNAS-Identifier = \"ap\"\nCalling-Station-Id = %q\nMessage-Authenticator = 0x00\n", user, pw, mac))
	return ok
}

// accounting sends an Accounting-Request Start or Stop for user's device
// mac (session id sid) and reports whether the box acknowledged it.
func (b *box) accounting(user, sid, mac, status string) bool {
	ok, _ := b.radclient("acct", fmt.Sprintf("User-Name = %q\nAcct-Status-Type = %s\nAcct-Session-Id = %q\nCalling-Station-Id = %q\nNAS-Identifier = \"ap\"\n", user, status, sid, mac))
	return ok
}

// accountingGo is accounting with an in-process RADIUS client (its socket
// made inside the box's namespace): the same request, a hundred times
// cheaper than starting radclient.
func (b *box) accountingGo(user, sid, mac string, status rfc2866.AcctStatusType) bool {
	req := radius.New(radius.CodeAccountingRequest, []byte(nasSecret))
	rfc2865.UserName_SetString(req, user)
	rfc2866.AcctStatusType_Set(req, status)
	rfc2866.AcctSessionID_SetString(req, sid)
	rfc2865.CallingStationID_SetString(req, mac)
	rfc2865.NASIdentifier_SetString(req, "ap")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	client := &radius.Client{Retry: 500 * time.Millisecond}
	var resp *radius.Packet
	exchange := func() error {
		var err error
		resp, err = client.Exchange(ctx, req, b.acct)
		return err
	}
	var err error
	if b.ns != "" {
		err = b.f.lab.inNS(b.ns, exchange)
	} else {
		err = exchange()
	}
	return err == nil && resp.Code == radius.CodeAccountingResponse
}

// peap runs eapol_test (PEAP-MSCHAPv2) at the box with the one device
// configuration of the fleet: the fleet CA and the shared server name.
func (b *box) peap(caFile, user, pw string) (bool, string) {
	return b.eapol(fmt.Sprintf("key_mgmt=IEEE8021X\neap=PEAP\nidentity=%q\nanonymous_identity=\"anonymous\"\npassword=%q\nca_cert=%q\ndomain_match=%q\nphase1=\"peaplabel=0\"\nphase2=\"auth=MSCHAPV2\"", user, pw, caFile, serverName))
}

// eapol runs eapol_test with one network block at the box's RADIUS
// server, as the access point, and reports SUCCESS.
func (b *box) eapol(network string) (bool, string) {
	t := b.f.t
	conf := filepath.Join(t.TempDir(), "eapol.conf")
	if err := os.WriteFile(conf, []byte("network={\n"+network+"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(b.radius)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := b.command(ctx, "eapol_test", "-c", conf, "-a", host, "-p", port, "-s", nasSecret, "-t", "10", "-N32:s:ap", "-N31:s:02-00-00-00-00-01")
	out, _ := cmd.CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1]) == "SUCCESS", string(out)
}

// onboard sets a member-chosen password through the member page link (a
// form post as the member's browser sends it), from inside the box's
// namespace.
func (f *fleet) onboard(link, pw string) error {
	u, err := url.Parse(link)
	if err != nil {
		return err
	}
	var b *box
	for _, x := range f.boxes {
		if strings.HasPrefix(link, x.members+"/") {
			b = x
		}
	}
	if b == nil {
		return fmt.Errorf("no box serves %s", link)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: b.dialContext, DisableKeepAlives: true}}
	resp, err := client.PostForm(b.members+"/onboard", url.Values{"t": {u.Query().Get("t")}, "password": {pw}, "password2": {pw}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("onboarding at %s: %s: %.200s", b.id, resp.Status, body)
	}
	return nil
}

// dialContext dials from inside the box's namespace.
func (b *box) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if b.ns == "" {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	var c net.Conn
	err := b.f.lab.inNS(b.ns, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// waitFor polls cond every 10 ms until it holds and returns how long that
// took, or fails the test after limit.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// lab is a set of network namespaces: a router namespace holding a bridge
// (and the simulator's listener), and one namespace per box with a veth
// into the bridge. Addresses exist only inside these namespaces.
type lab struct {
	t        testing.TB
	router   string
	boxes    []string
	routerIP string
	prefix   string
	mu       sync.Mutex
	handles  map[string]netns.NsHandle
}

const labNet = "10.231.0"

func newLab(t testing.TB, n int) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "needs root (network namespaces, iptables)")
	}
	needTools(t, "ip", "iptables")
	sweepLabs()
	tag := fmt.Sprintf("dgft%d", os.Getpid())
	l := &lab{t: t, router: tag + "-r", routerIP: labNet + ".1", prefix: tag, handles: map[string]netns.NsHandle{}}
	t.Cleanup(l.cleanup)
	l.ip("netns", "add", l.router)
	l.ip("-n", l.router, "link", "set", "lo", "up")
	l.ip("-n", l.router, "link", "add", "br0", "type", "bridge")
	l.ip("-n", l.router, "addr", "add", l.routerIP+"/24", "dev", "br0")
	l.ip("-n", l.router, "link", "set", "br0", "up")
	for i := range n {
		ns := fmt.Sprintf("%s-%c", tag, 'a'+i)
		l.boxes = append(l.boxes, ns)
		l.ip("netns", "add", ns)
		l.ip("-n", ns, "link", "set", "lo", "up")
		port := fmt.Sprintf("v%c", 'a'+i)
		l.ip("-n", l.router, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		l.ip("-n", l.router, "link", "set", port, "master", "br0", "up")
		l.ip("-n", ns, "addr", "add", l.boxIP(i)+"/24", "dev", "eth0")
		l.ip("-n", ns, "link", "set", "eth0", "up")
		l.ipt(ns, "-N", "DGCUT")
		l.ipt(ns, "-I", "INPUT", "-j", "DGCUT")
		l.ipt(ns, "-I", "OUTPUT", "-j", "DGCUT")
	}
	return l
}

// sweepLabs deletes the namespaces of test runs that died before their
// cleanup (named dgft<pid>-…, pid no longer running).
func sweepLabs() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, "dgft")
		if !ok {
			continue
		}
		pid, _, _ := strings.Cut(rest, "-")
		if _, err := os.Stat("/proc/" + pid); pid != "" && os.IsNotExist(err) {
			_ = exec.Command("ip", "netns", "del", name).Run()
		}
	}
}

func (l *lab) boxIP(i int) string { return fmt.Sprintf("%s.%d", labNet, 11+i) }

func (l *lab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (l *lab) ipt(ns string, args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "iptables", "-w"}, args...)...).CombinedOutput(); err != nil {
		l.t.Fatalf("iptables %s in %s: %v\n%s", strings.Join(args, " "), ns, err, out)
	}
}

// cut sets the partition: sides[i] is box i's side; boxes on different
// sides cannot reach each other (TCP is reset, everything else dropped),
// while every box still reaches the router (OfficeRnD). nil heals.
func (l *lab) cut(sides []int) {
	l.t.Helper()
	for i, ns := range l.boxes {
		rules := "*filter\n-F DGCUT\n-A DGCUT -p tcp --tcp-flags RST RST -j RETURN\n" // resets (ours too) end connections
		for j := range l.boxes {
			if j == i || sides == nil || sides[i] == sides[j] {
				continue
			}
			peerIP := l.boxIP(j)
			rules += fmt.Sprintf("-A DGCUT -d %[1]s -p tcp -j REJECT --reject-with tcp-reset\n-A DGCUT -s %[1]s -p tcp -j REJECT --reject-with tcp-reset\n-A DGCUT -d %[1]s -j DROP\n-A DGCUT -s %[1]s -j DROP\n", peerIP)
		}
		rules += "COMMIT\n"
		cmd := exec.Command("ip", "netns", "exec", ns, "iptables-restore", "-w", "--noflush")
		cmd.Stdin = strings.NewReader(rules)
		if out, err := cmd.CombinedOutput(); err != nil {
			l.t.Fatalf("iptables-restore in %s: %v\n%s\n%s", ns, err, out, rules)
		}
	}
}

func (l *lab) handle(ns string) (netns.NsHandle, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h, ok := l.handles[ns]; ok {
		return h, nil
	}
	h, err := netns.GetFromName(ns)
	if err != nil {
		return 0, fmt.Errorf("open netns %s: %w", ns, err)
	}
	l.handles[ns] = h
	return h, nil
}

// inNS runs fn on an OS thread switched into namespace ns (sockets fn
// creates stay in ns).
func (l *lab) inNS(ns string, fn func() error) error {
	h, err := l.handle(ns)
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(h); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := fn()
	if err := netns.Set(orig); err == nil {
		runtime.UnlockOSThread() // else the thread dies with the goroutine
	}
	return ferr
}

// listen opens a TCP listener inside ns.
func (l *lab) listen(ns, addr string) net.Listener {
	l.t.Helper()
	var ln net.Listener
	if err := l.inNS(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		l.t.Fatalf("listen in %s: %v", ns, err)
	}
	return ln
}

func (l *lab) cleanup() {
	l.mu.Lock()
	for _, h := range l.handles {
		h.Close()
	}
	l.handles = map[string]netns.NsHandle{}
	l.mu.Unlock()
	for _, ns := range append(l.boxes, l.router) {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
}
