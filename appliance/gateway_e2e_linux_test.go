package appliance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/appliance/notify/notifytest"
	"github.com/deskgate/deskgate/appliance/officernd"
	"github.com/deskgate/deskgate/appliance/officernd/officerndsim"
	"github.com/deskgate/deskgate/internal/cdp"
	"github.com/deskgate/deskgate/internal/testepoch"
	"github.com/deskgate/deskgate/netcfg"
)

// The daemon-driven gateway topology:
//
//	client:eth0 (DHCP) ── gw:guest0 10.60.0.1 | gw:wan0 203.0.113.1 ── inet:eth0 203.0.113.10
//
// deskgated runs inside the gw namespace with gateway.enabled: it programs
// netcfg there, runs dnsmasq (DHCP and DNS for the guest network,
// forwarding to the "internet's" resolver) and serves the portal on
// 10.60.0.1:8080. The OfficeRnD simulator and the SMTP test server run in
// this test process, listening on the gw namespace's loopback.
const (
	e2eGuestGW   = "10.60.0.1"
	e2eWANIP     = "203.0.113.1"
	e2eInetIP    = "203.0.113.10"
	e2eInetURL   = "http://internet.test/"
	e2eInetText  = "The internet works"
	e2ePortal    = "http://10.60.0.1:8080"
	e2eAdmin     = "127.0.0.1:18417"
	e2eHookAddr  = "127.0.0.1:18418"
	e2eDownKbps  = 20_000
	e2eUpKbps    = 5_000
	e2eDaemonEnv = "DESKGATE_E2E_DAEMON" // set in the re-executed child: its config path
	e2eClockEnv  = "DESKGATE_E2E_T0"     // the child's clock start (RFC 3339, from the parent's clock)
)

// TestGatewayDaemonE2E is the issue-10 acceptance test of the gateway as the
// daemon programs it: deskgated (gateway.enabled: true) is the gateway of
// a namespace topology. The client gets its address and resolver by DHCP
// from the daemon's dnsmasq, Chromium resolves internet.test through it
// (no --host-resolver-rules) and is sent to the portal; a real booking
// created through the simulator's API yields a visitor code emailed to a
// real SMTP server, which Chromium types into the portal; iperf3 measures
// the guest's shaped rate (within ±10 % of gateway.guest's limits); then
// the booking is cancelled through the simulator's API and the client is
// captive again within 1 s. Screenshots go to $DESKGATE_TEST_ARTIFACTS/e2e-daemon.
func TestGatewayDaemonE2E(t *testing.T) {
	if cfgPath := os.Getenv(e2eDaemonEnv); cfgPath != "" {
		runE2EDaemonChild(t, cfgPath)
		return
	}
	bin := e2eNeed(t)
	start := time.Now()
	outDir := t.TempDir()
	if d := os.Getenv("DESKGATE_TEST_ARTIFACTS"); d != "" {
		outDir = filepath.Join(d, "e2e-daemon")
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 110*time.Second)
	defer cancel()
	l := newE2ELab(t)
	clk := newClock(testepoch.Epoch())

	// The simulator and the SMTP server, on the gateway's loopback.
	nsClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: e2eDialIn(l.gw)}}
	sim := officerndsim.New(officerndsim.Options{
		Seed: true, Now: clk.Now, ClientSecret: testSecret, WebhookClient: nsClient, RetryDelay: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	simSrv := httptest.NewUnstartedServer(sim)
	simSrv.Listener.Close()
	simSrv.Listener = l.listen(l.gw, "127.0.0.1:0")
	simSrv.Start()
	t.Cleanup(simSrv.Close)
	var smtp *notifytest.Server
	if err := e2eInNS(l.gw, func() error { smtp = notifytest.StartAt(t, "127.0.0.1:0"); return nil }); err != nil {
		t.Fatal(err)
	}
	simURL := "http://" + simSrv.Listener.Addr().String()
	api, err := officernd.New(ctx, officernd.Config{
		APIBase: simURL + "/api/v2", TokenURL: simURL + "/oauth/token",
		OrgSlug: officerndsim.DefaultOrgSlug, ClientID: officerndsim.DefaultClientID, ClientSecret: testSecret,
		Scopes: officerndsim.AllScopes, MaxRetries: 1, HTTPClient: nsClient,
	})
	if err != nil {
		t.Fatal(err)
	}

	cfgPath := l.writeConfig(simURL, smtp.Addr)
	l.startDaemon(cfgPath, clk)
	st := l.waitReady(nsClient)
	t.Logf("daemon ready after %v (webhook %s)", time.Since(start).Round(time.Millisecond), st.Webhook.Registration)

	// DHCP from the daemon's dnsmasq, and DNS through it.
	lease := l.dhcp(ctx)
	t.Logf("DHCP: %s", lease)
	if !strings.HasPrefix(lease["ip"], "10.60.0.") || lease["router"] != e2eGuestGW || lease["dns"] != e2eGuestGW {
		t.Fatalf("DHCP lease %v, want an address in 10.60.0.0/24 with router and DNS %s", lease, e2eGuestGW)
	}
	clientIP := lease["ip"]

	page := cdp.Start(ctx, t, cdp.Options{Bin: bin, Prefix: []string{"ip", "netns", "exec", l.client},
		Dial: e2eDialIn(l.client), Timeout: 15 * time.Second})
	page.Call("Page.enable", nil)
	page.Call("Emulation.setDeviceMetricsOverride", map[string]any{"width": 800, "height": 900, "deviceScaleFactor": 1, "mobile": false})
	page.Call("Network.setExtraHTTPHeaders", map[string]any{"headers": map[string]string{"Accept-Language": "en-US,en;q=0.9"}})
	shot := func(name string) { page.Screenshot(filepath.Join(outDir, name)) }

	// 1. Captive: internet.test (resolved by the gateway's dnsmasq) is
	// intercepted and the portal shown.
	page.Navigate(e2eInetURL)
	d := page.DOM()
	d.Check(t, "intercepted", cdp.Want{Host: "10.60.0.1:8080", Path: "/", Text: "Access code", Form: "code-form"}, true)
	shot("1-intercepted-portal.png")

	// 2. A real booking with a visitor, through the simulator's API; the
	// daemon hears of it by webhook and emails the visitor a code.
	ids := sim.Seeded().IDs
	v, err := officernd.Create[officernd.Visitor](ctx, api, "visitors", map[string]any{
		"name": "Grace Hopper", "email": "grace.hopper@example.net", "member": ids["member:hotdesk-downtown"], "type": "preregistration"})
	if err != nil {
		t.Fatal(err)
	}
	bStart := clk.Now().Add(-5 * time.Minute).Truncate(time.Minute)
	b, err := officernd.Create[officernd.Booking](ctx, api, "bookings", map[string]any{
		"title": "Compiler review", "resource": ids["resource:Boardroom"], "member": ids["member:hotdesk-downtown"],
		"start": bStart.UTC().Format(time.RFC3339), "end": bStart.Add(time.Hour).UTC().Format(time.RFC3339), "visitors": []string{v.ID}})
	if err != nil {
		t.Fatal(err)
	}
	var code string
	waitFor(t, 10*time.Second, "the visitor's guest code email", func() bool {
		for _, m := range smtp.Messages() {
			if len(m.To) > 0 && m.To[0] == "grace.hopper@example.net" {
				code = codeRE.FindString(qpDecode(string(m.Data)))
			}
		}
		return code != ""
	})
	t.Logf("code emailed after %v", time.Since(start).Round(time.Millisecond))

	// 3. Chromium types the code into the portal.
	page.SubmitCode(code)
	d = page.DOM()
	d.Check(t, "status", cdp.Want{Host: "10.60.0.1:8080", Path: "/status", Text: "Time left", Form: "logout-form"}, true)
	shot("2-status.png")
	if err := page.TryNavigate(e2eInetURL); err != nil {
		t.Fatalf("after login: %v", err)
	}
	d = page.DOM()
	shot("3-internet.png")
	if d.Host != "internet.test" || !strings.Contains(d.Text, e2eInetText) || !strings.Contains(d.Text, "from "+e2eWANIP) {
		t.Fatalf("after login %s showed %s%s %q, want the internet page via the gateway's NAT", e2eInetURL, d.Host, d.Path, d.Text)
	}

	// 4. iperf3 through the gateway: the guest's shaped rates.
	down := l.iperf(ctx, true)
	up := l.iperf(ctx, false)
	t.Logf("iperf3 guest download %.2f Mbit/s (limit %d), upload %.2f Mbit/s (limit %d)", down/1e6, e2eDownKbps/1000, up/1e6, e2eUpKbps/1000)
	for _, x := range []struct {
		what      string
		got, want float64
	}{{"download", down, e2eDownKbps * 1000 * tcpGoodput}, {"upload", up, e2eUpKbps * 1000 * tcpGoodput}} {
		if x.got < 0.9*x.want || x.got > 1.1*x.want {
			t.Errorf("guest %s %.2f Mbit/s, want %.2f Mbit/s ±10 %% (the limit's TCP goodput)", x.what, x.got/1e6, x.want/1e6)
		}
	}

	// 5. Cancel the booking through the simulator's API: captive again
	// within a second.
	probe := &http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{DialContext: e2eDialIn(l.client), DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	captive := func() bool {
		resp, err := probe.Get("http://" + e2eInetIP + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusFound && strings.HasPrefix(resp.Header.Get("Location"), e2ePortal)
	}
	if captive() {
		t.Fatal("client captive before the cancellation")
	}
	if _, err := officernd.Create[officernd.Booking](ctx, api, "bookings/"+b.ID+"/cancel", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, 5*time.Second, "captive again after the cancellation", captive)
	t.Logf("booking cancelled via the simulator's API → client %s captive again after %v", clientIP, took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("captive again after %v, want within 1s", took)
	}
	if err := page.TryNavigate(e2eInetURL); err != nil {
		t.Errorf("after the cancellation: %v", err)
	} else {
		d = page.DOM()
		d.Check(t, "intercepted after cancellation", cdp.Want{Host: "10.60.0.1:8080", Path: "/", Text: "Access code", Form: "code-form"}, true)
		shot("4-cancelled-portal.png")
	}
	t.Logf("screenshots in %s; whole test %v", outDir, time.Since(start).Round(time.Millisecond))
}

// runE2EDaemonChild is the daemon side: this test binary re-executed inside
// the gateway namespace runs the daemon in-process (with the parent's
// clock) until SIGTERM.
func runE2EDaemonChild(t *testing.T, cfgPath string) {
	t0, err := time.Parse(time.RFC3339Nano, os.Getenv(e2eClockEnv))
	if err != nil {
		t.Fatalf("%s: %v", e2eClockEnv, err)
	}
	clk := newClock(t0)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	app, err := New(ctx, cfgPath, cfg, log, Options{Now: clk.Now})
	if err != nil {
		t.Fatalf("new app: %v", err)
	}
	if err := app.Run(ctx); err != nil {
		t.Fatalf("daemon: %v", err)
	}
}

// e2eNeed fails (CI=true) or skips unless root and every tool is there; it
// returns the Chromium binary.
func e2eNeed(t *testing.T) string {
	t.Helper()
	unavailable := func(reason string) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but cannot run: %s", reason)
		}
		t.Skip(reason)
	}
	if os.Geteuid() != 0 {
		unavailable("needs root (network namespaces, iptables, tc)")
	}
	for _, tool := range []string{"ip", "iptables", "iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore", "ipset", "tc", "dnsmasq", "iperf3", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(tool + " not installed (scripts/install-test-deps.sh)")
		}
	}
	bin := os.Getenv("CHROMIUM")
	for _, name := range []string{"chromium", "chromium-browser"} {
		if bin == "" {
			bin, _ = exec.LookPath(name)
		}
	}
	if bin == "" {
		unavailable("chromium not installed (apt-get install chromium)")
	}
	return bin
}

type e2eLab struct {
	t                *testing.T
	client, gw, inet string
	dir              string
	daemonDone       chan struct{} // closed when the daemon exits
}

func newE2ELab(t *testing.T) *e2eLab {
	b := make([]byte, 3)
	rand.Read(b)
	id := "dgd2e-" + hex.EncodeToString(b)
	l := &e2eLab{t: t, client: id + "-c", gw: id + "-gw", inet: id + "-in", dir: t.TempDir()}
	for _, ns := range []string{l.client, l.gw, l.inet} {
		e2eRun(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			// Whatever still runs in the namespace was started by this
			// test (the daemon's dnsmasq if the daemon died): end it.
			out, _ := exec.Command("ip", "netns", "pids", ns).Output()
			for _, f := range strings.Fields(string(out)) {
				// This process itself may be listed: a thread that
				// entered the namespace (e2eInNS) can be its main one.
				if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", ns, err, out)
			}
		})
		e2eRun(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	// ip netns exec bind-mounts /etc/netns/<ns>/resolv.conf: the client's
	// resolver, written by its DHCP client.
	if err := os.MkdirAll(filepath.Join("/etc/netns", l.client), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Join("/etc/netns", l.client)) })
	if err := os.WriteFile(l.resolvConf(), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e2eRun(t, "ip", "-n", l.gw, "link", "add", "guest0", "type", "veth", "peer", "name", "eth0", "netns", l.client)
	e2eRun(t, "ip", "-n", l.gw, "link", "add", "wan0", "type", "veth", "peer", "name", "eth0", "netns", l.inet)
	for _, c := range [][]string{
		{l.gw, "link", "set", "guest0", "up"},
		{l.gw, "link", "set", "wan0", "up"},
		{l.client, "link", "set", "eth0", "address", "02:00:5e:60:00:10"},
		{l.client, "link", "set", "eth0", "up"},
		{l.inet, "link", "set", "eth0", "up"},
		{l.gw, "addr", "add", e2eGuestGW + "/24", "dev", "guest0"},
		{l.gw, "addr", "add", e2eWANIP + "/24", "dev", "wan0"},
		{l.inet, "addr", "add", e2eInetIP + "/24", "dev", "eth0"},
		{l.gw, "route", "add", "default", "via", e2eInetIP},
	} {
		e2eRun(t, append([]string{"ip", "-n"}, c...)...)
	}
	l.serveInternet()
	return l
}

func (l *e2eLab) resolvConf() string { return filepath.Join("/etc/netns", l.client, "resolv.conf") }

func e2eRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// e2eInNS runs fn on a fresh OS thread inside the named namespace; the
// thread is discarded afterwards. Sockets fn opens stay in that namespace.
func e2eInNS(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromName(name)
		if err != nil {
			errc <- fmt.Errorf("netns %s: %w", name, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func e2eDialIn(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		if ierr := e2eInNS(ns, func() error {
			c, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
			return nil
		}); ierr != nil {
			return nil, ierr
		}
		return c, err
	}
}

func (l *e2eLab) listen(ns, addr string) net.Listener {
	l.t.Helper()
	var ln net.Listener
	if err := e2eInNS(ns, func() (e error) { ln, e = net.Listen("tcp", addr); return e }); err != nil {
		l.t.Fatalf("listen %s in %s: %v", addr, ns, err)
	}
	return ln
}

// start runs a command in a namespace until the test ends.
func (l *e2eLab) start(ns, logName string, args ...string) *exec.Cmd {
	l.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	logf, err := os.Create(filepath.Join(l.dir, logName))
	if err != nil {
		l.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("start %v: %v", args, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	l.t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	return cmd
}

// serveInternet runs the internet's web server, its resolver (answering
// internet.test) and an iperf3 server.
func (l *e2eLab) serveInternet() {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>Internet</title>
<style>body{font-family:sans-serif;background:#ecfdf5;color:#064e3b;margin:3em}
h1{background:#059669;color:#fff;padding:.5em 1em;border-radius:8px}</style></head>
<body><h1>%s</h1><p>Served by the test's internet host %s to a request from %s.</p></body></html>`, e2eInetText, e2eInetIP, host)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l.listen(l.inet, e2eInetIP+":80"))
	l.t.Cleanup(func() { srv.Close() })
	l.start(l.inet, "inet-dnsmasq.log", "dnsmasq", "-k", "--no-resolv", "--no-hosts", "--bind-interfaces",
		"--listen-address="+e2eInetIP, "--address=/internet.test/"+e2eInetIP, "--pid-file", "--log-facility=-")
	l.start(l.inet, "iperf3.log", "iperf3", "-s", "-B", e2eInetIP)
}

// writeConfig writes the daemon's configuration.
func (l *e2eLab) writeConfig(simURL, smtpAddr string) string {
	l.t.Helper()
	secret := filepath.Join(l.dir, "officernd.secret")
	if err := os.WriteFile(secret, []byte(testSecret+"\n"), 0o600); err != nil {
		l.t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(smtpAddr)
	yaml := fmt.Sprintf(`data_dir: %[1]s/data
log: {level: info}
admin:
  listen: %[2]s
  socket: %[1]s/deskgate.sock
officernd:
  client_id: %[3]s
  client_secret: {file: %[4]s}
  org_slug: %[5]s
  api_base: %[6]s/api/v2
  token_url: %[6]s/oauth/token
  request_timeout: 10s
  scopes: [%[7]s]
sync:
  interval: 1h
  full_every: 24h
  webhooks: true
  webhook_listen: %[8]s
  webhook_public_url: http://%[8]s/webhooks/officernd
users: {welcome_email: false}
plans:
  - {plan: Hot Desk, group: standard}
  - {plan: Dedicated Desk, group: premium}
  - {plan: Day Pass, group: daypass, duration: 24h}
groups:
  - {name: standard, bandwidth_down: 20mbit, bandwidth_up: 5mbit}
  - {name: premium, bandwidth_down: 100mbit, bandwidth_up: 20mbit}
  - {name: daypass, bandwidth_down: 10mbit, bandwidth_up: 2mbit}
locations:
  - {location: Downtown, network: downtown-secure, vlan: 100, subnet: 10.100.0.0/22, group: premium}
smtp:
  host: %[9]s
  port: %[10]s
  tls: starttls
  insecure_skip_verify: true
  username: %[11]s
  password: {value: %[12]s}
  from: wifi@example.com
gateway:
  enabled: true
  wan: wan0
  # No trunk: this kernel has no 802.1Q, so the box routes the guest
  # network only (TestDesiredNetShapingAndLeases covers the member VLANs).
  check_interval: 30s
  dns_upstream: [%[13]s]
  guest:
    interface: guest0
    address4: %[14]s/24
    portal_port: 8080
    bandwidth_down: %[15]dkbit
    bandwidth_up: %[16]dkbit
portal:
  enabled: true
  listen: %[14]s:8080
  public_url: %[17]s
  default_location: Downtown
guests: {guest_network: downtown-guest}
`, l.dir, e2eAdmin, officerndsim.DefaultClientID, secret, officerndsim.DefaultOrgSlug, simURL,
		strings.Join(officerndsim.AllScopes, ", "), e2eHookAddr, host, port, notifytest.User, notifytest.Password,
		e2eInetIP, e2eGuestGW, e2eDownKbps, e2eUpKbps, e2ePortal)
	p := filepath.Join(l.dir, "deskgate.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		l.t.Fatal(err)
	}
	return p
}

// startDaemon re-executes this test binary inside the gateway namespace as
// the daemon, on the parent's clock, and stops it with SIGTERM at the end.
func (l *e2eLab) startDaemon(cfgPath string, clk *clock) {
	l.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		l.t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", l.gw, exe, "-test.run=^TestGatewayDaemonE2E$", "-test.count=1")
	cmd.Env = append(os.Environ(), e2eDaemonEnv+"="+cfgPath, e2eClockEnv+"="+clk.Now().Format(time.RFC3339Nano))
	logPath := filepath.Join(l.dir, "deskgated.log")
	logf, err := os.Create(logPath)
	if err != nil {
		l.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	done := make(chan struct{})
	l.daemonDone = done
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	l.t.Cleanup(func() {
		// ip netns exec execs the binary: the signal reaches the daemon.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			l.t.Errorf("daemon did not stop within 15s")
			cmd.Process.Kill()
			<-done
		}
		if l.t.Failed() || testing.Verbose() {
			b, _ := os.ReadFile(logPath)
			l.t.Logf("deskgated log:\n%s", e2eTail(string(b), 60))
		}
		if err := netcfg.CleanUp(context.Background(), netcfg.Options{NetNS: l.gw}); err != nil {
			l.t.Errorf("netcfg cleanup: %v", err)
		}
	})
}

func e2eTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitReady polls the daemon's local API until it reports ready with its
// webhook registered at the simulator.
func (l *e2eLab) waitReady(hc *http.Client) admin.Status {
	l.t.Helper()
	var st admin.Status
	waitFor(l.t, 30*time.Second, "the daemon ready with its webhook registered", func() bool {
		select {
		case <-l.daemonDone:
			l.t.Fatal("the daemon exited")
		default:
		}
		// The admin API over TCP wants the token the daemon wrote.
		tok, err := os.ReadFile(filepath.Join(l.dir, "data", "admin.token"))
		if err != nil {
			return false
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+e2eAdmin+"/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		st = admin.Status{}
		return json.NewDecoder(resp.Body).Decode(&st) == nil && st.Ready && st.Webhook.Registration == "registered"
	})
	return st
}

// dhcp runs busybox's DHCP client in the client namespace and returns what
// the lease said; its script configures the address, the default route and
// the namespace's resolv.conf.
func (l *e2eLab) dhcp(ctx context.Context) map[string]string {
	l.t.Helper()
	script := filepath.Join(l.dir, "udhcpc.sh")
	leaseOut := filepath.Join(l.dir, "lease")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(`#!/bin/sh
case "$1" in
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/$mask" dev "$interface"
	ip route replace default via "${router%%%% *}"
	echo "nameserver ${dns%%%% *}" > %[1]s
	printf 'ip=%%s\nrouter=%%s\ndns=%%s\n' "$ip" "$router" "$dns" > %[2]s
	;;
esac
`, l.resolvConf(), leaseOut)), 0o755); err != nil {
		l.t.Fatal(err)
	}
	var out []byte
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.client, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "4", "-T", "1", "-s", script)
		if out, err = cmd.CombinedOutput(); err == nil {
			break
		}
	}
	if err != nil {
		l.t.Fatalf("DHCP: %v\n%s", err, out)
	}
	b, err := os.ReadFile(leaseOut)
	if err != nil {
		l.t.Fatalf("DHCP: no lease: %v\n%s", err, out)
	}
	lease := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			lease[k] = strings.TrimSpace(v)
		}
	}
	return lease
}

// iperf measures the guest's TCP rate to (reverse: from) the internet
// host, in bit/s as received.
//
// tcpGoodput is the share of a shaped rate that iperf3 can see: tc counts
// whole Ethernet frames (1514 bytes at MTU 1500), iperf3 counts the 1448
// bytes of TCP payload in each.
const tcpGoodput = 1448.0 / 1514.0

func (l *e2eLab) iperf(ctx context.Context, reverse bool) float64 {
	l.t.Helper()
	args := []string{"netns", "exec", l.client, "iperf3", "-c", e2eInetIP, "-t", "4", "-O", "1", "-J"}
	if reverse {
		args = append(args, "-R")
	}
	out, err := exec.CommandContext(ctx, "ip", args...).Output()
	if err != nil {
		l.t.Fatalf("iperf3 %v: %v\n%s", args, err, out)
	}
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		l.t.Fatalf("iperf3 output: %v\n%s", err, out)
	}
	return r.End.SumReceived.BitsPerSecond
}
