package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deskgate/deskgate/internal/cdp"
	"github.com/deskgate/deskgate/netcfg"
	"github.com/deskgate/deskgate/portal"
	"github.com/vishvananda/netns"
)

// The browser topology:
//
//	client:eth0 10.50.0.10 ── gw:guest0 10.50.0.1 | gw:wan0 203.0.113.1 ── inet:eth0 203.0.113.10
//
// The "internet" has no route back to 10.50.0.0/24, so only the gateway's
// NAT lets the client through.
const (
	brGuestCode = "K7M-QX3-VH9"
	brPortalURL = "http://10.50.0.1:8080"
	brInetURL   = "http://internet.test/"
	brInetText  = "The internet works"
	brInetIP    = "203.0.113.10"
	brWANIP     = "203.0.113.1"
	brClientIP  = "10.50.0.10"
)

var brClientMAC = net.HardwareAddr{0x02, 0x00, 0x5e, 0x50, 0x00, 0x10}

// TestGatewayPortalBrowser is the issue-6 acceptance test "real browser":
// headless Chromium, started inside the client namespace, opens
// http://internet.test/, is intercepted by the gateway (netcfg's DNAT) and
// shown the captive portal, logs in with a guest code by typing it into the
// form and clicking Connect, and then loads the real "internet" page through
// the gateway's NAT. Logging out in the browser (the portal revokes the
// client in netcfg) makes the next visit land on the portal again.
// Screenshots of every step go to $DESKGATE_TEST_ARTIFACTS/e2e (or a temp dir).
//
// Browsers keep connections open, so the test also checks the two ways a
// kept-alive connection can defeat the portal, deterministically with a Go
// client that keeps its connection: a connection the DNAT sent to the portal
// before login must not keep showing the portal after login, and a
// connection to the internet opened while allowed must not hang after the
// revoke.
func TestGatewayPortalBrowser(t *testing.T) {
	bin := brNeed(t)
	start := time.Now()
	outDir := t.TempDir()
	if d := os.Getenv("DESKGATE_TEST_ARTIFACTS"); d != "" {
		outDir = filepath.Join(d, "e2e")
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 80*time.Second)
	defer cancel()

	l := newBrLab(t)
	inet := l.serveInternet()
	m := l.gateway(ctx)
	l.servePortal(ctx, m)
	ka := l.keepAliveClient()
	t.Logf("topology up in %v (namespaces %s, %s, %s)", time.Since(start).Round(time.Millisecond), l.client, l.gw, l.inet)

	// internet.test is the only name the browser resolves; every other name
	// fails at once, so nothing asks a DNS server.
	page := l.startChromium(ctx, bin, "--host-resolver-rules=MAP internet.test "+brInetIP+", MAP * ~NOTFOUND, EXCLUDE 10.50.0.1")
	page.Call("Page.enable", nil)
	page.Call("Emulation.setDeviceMetricsOverride", map[string]any{"width": 800, "height": 900, "deviceScaleFactor": 1, "mobile": false})
	page.Call("Network.enable", nil)
	page.Call("Network.setExtraHTTPHeaders", map[string]any{"headers": map[string]string{"Accept-Language": "en-US,en;q=0.9"}})
	t.Logf("chromium ready after %v", time.Since(start).Round(time.Millisecond))
	shot := func(name string) { page.Screenshot(filepath.Join(outDir, name)) }

	// 1. Before login: the internet is intercepted and the portal shown.
	page.Navigate(brInetURL)
	d := page.DOM()
	d.Check(t, "intercepted", cdp.Want{Host: "10.50.0.1:8080", Path: "/", Text: "Access code", Form: "code-form"}, true)
	shot("1-intercepted-portal.png")
	if r := ka.get(); r.err != nil || r.code != http.StatusFound || r.location != brPortalURL+"/" {
		t.Fatalf("keep-alive client before login: %v, want a redirect to %s/", r, brPortalURL)
	}
	if n := inet.hits.Load(); n != 0 {
		t.Fatalf("the internet server saw %d requests from a captive client", n)
	}
	if l.allowed() {
		t.Fatal("client in the allow set before login")
	}

	// 2. Log in with the guest code: a real form post from the browser.
	page.SubmitCode(brGuestCode)
	d = page.DOM()
	d.Check(t, "status", cdp.Want{Host: "10.50.0.1:8080", Path: "/status", Text: "Time left", Form: "logout-form"}, true)
	if !strings.Contains(d.Text, "You are online") {
		t.Errorf("status page lacks %q:\n%s", "You are online", d.Text)
	}
	shot("2-status.png")
	if !l.allowed() {
		t.Fatal("login did not put the client into netcfg's allow set")
	}

	// 3. The internet now loads, through the gateway's NAT.
	flows := l.clientFlows() // before the browser touches them
	if r := ka.get(); r.err != nil || r.code != http.StatusOK || !strings.Contains(r.body, brInetText) {
		t.Errorf("after login, the keep-alive client's connection that the gateway intercepted before login "+
			"still does not reach the internet: %v. netcfg keeps the connection's DNAT to the portal "+
			"(conntrack) after Allow; it should drop the client's flows on Allow.", r)
	}
	fresh := l.keepAliveClient() // its connection to the internet is for step 4
	if r := fresh.get(); r.err != nil || r.code != http.StatusOK || !strings.Contains(r.body, brInetText) {
		t.Errorf("after login, a new connection to the internet: %v, want the internet page", r)
	}
	if err := page.TryNavigate(brInetURL); err != nil {
		t.Fatalf("after login: %v", err)
	}
	d = page.DOM()
	shot("3-internet.png")
	if d.Host != "internet.test" || !strings.Contains(d.Text, brInetText) {
		t.Errorf("after login the browser's %s showed %s%s %q, want the internet page. The browser reused a "+
			"connection the gateway had sent to the portal before login (its DNAT lives on in conntrack):\n%s",
			brInetURL, d.Host, d.Path, brFirstLine(d.Text), flows)
	} else if !strings.Contains(d.Text, "from "+brWANIP) {
		t.Errorf("the internet saw the client as %q, want the gateway's WAN address %s (NAT)", d.Text, brWANIP)
	}

	// 4. Log out in the browser: the portal revokes the client in netcfg,
	// and the next visit to the internet lands on the portal again.
	page.Navigate(brPortalURL + "/status")
	page.Click("#logout-form button")
	d = page.DOM()
	d.Check(t, "logged out", cdp.Want{Host: "10.50.0.1:8080", Path: "/", Text: "Access code", Form: "code-form"}, true)
	if l.allowed() {
		t.Fatal("client still in the allow set after logout")
	}
	hits := inet.hits.Load()
	if err := page.TryNavigate(brInetURL); err != nil {
		t.Errorf("after the revoke: %v. The browser reused its kept-alive connection to the internet, whose "+
			"packets the gateway now drops; netcfg should drop the client's flows on Revoke so they are "+
			"reset or intercepted instead of hanging.", err)
	} else {
		d = page.DOM()
		d.Check(t, "intercepted after revoke", cdp.Want{Host: "10.50.0.1:8080", Path: "/", Text: "Access code", Form: "code-form"}, true)
		shot("4-revoked-portal.png")
	}
	if r := fresh.get(); r.err != nil || r.code != http.StatusFound || r.location != brPortalURL+"/" {
		t.Errorf("after the revoke, the keep-alive client's connection to the internet: %v, want a redirect to "+
			"the portal (a reset and a new, intercepted connection), not a hang. netcfg should drop the "+
			"client's flows on Revoke.", r)
	}
	if n := inet.hits.Load(); n != hits {
		t.Errorf("the internet server saw %d requests after the revoke", n-hits)
	}
	t.Logf("screenshots in %s; whole test %v", outDir, time.Since(start).Round(time.Millisecond))
}

func brFirstLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

// brNeed skips (or fails with CI=true) unless the test runs as root with the
// tools it needs, and returns the chromium binary.
func brNeed(t *testing.T) string {
	t.Helper()
	unavailable := func(reason string) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but cannot run: %s", reason)
		}
		t.Skip(reason)
	}
	if os.Geteuid() != 0 {
		unavailable("needs root (network namespaces, iptables)")
	}
	for _, tool := range []string{"ip", "iptables", "ip6tables", "iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore", "ipset", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(tool + " not installed (apt-get install iproute2 iptables ipset)")
		}
	}
	bin := os.Getenv("CHROMIUM")
	for _, name := range []string{"chromium", "chromium-browser"} {
		if bin != "" {
			break
		}
		bin, _ = exec.LookPath(name)
	}
	if bin == "" {
		unavailable("chromium not installed (apt-get install chromium)")
	}
	return bin
}

// brLab is the three namespaces of one test run.
type brLab struct {
	t                *testing.T
	client, gw, inet string
}

func newBrLab(t *testing.T) *brLab {
	b := make([]byte, 3)
	rand.Read(b)
	id := "dge2e-" + hex.EncodeToString(b)
	l := &brLab{t: t, client: id + "-c", gw: id + "-gw", inet: id + "-in"}
	for _, ns := range []string{l.client, l.gw, l.inet} {
		brRun(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", ns, err, out)
			}
		})
		brRun(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	// The veth pairs are created inside the gateway namespace with their
	// peers moved straight into the others: nothing appears in the host's.
	brRun(t, "ip", "-n", l.gw, "link", "add", "guest0", "type", "veth", "peer", "name", "eth0", "netns", l.client)
	brRun(t, "ip", "-n", l.gw, "link", "add", "wan0", "type", "veth", "peer", "name", "eth0", "netns", l.inet)
	brRun(t, "ip", "-n", l.client, "link", "set", "eth0", "address", brClientMAC.String())
	for _, c := range [][]string{
		{l.gw, "link", "set", "guest0", "up"},
		{l.gw, "link", "set", "wan0", "up"},
		{l.client, "link", "set", "eth0", "up"},
		{l.inet, "link", "set", "eth0", "up"},
		{l.gw, "addr", "add", "10.50.0.1/24", "dev", "guest0"},
		{l.gw, "addr", "add", brWANIP + "/24", "dev", "wan0"},
		{l.client, "addr", "add", brClientIP + "/24", "dev", "eth0"},
		{l.inet, "addr", "add", brInetIP + "/24", "dev", "eth0"},
		{l.client, "route", "add", "default", "via", "10.50.0.1"},
		{l.gw, "route", "add", "default", "via", brInetIP},
	} {
		brRun(t, append([]string{"ip", "-n"}, c...)...)
	}
	return l
}

func brRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inNS runs fn on a fresh OS thread inside the named namespace. The thread
// is never unlocked, so the runtime discards it when fn returns; sockets
// fn creates stay in that namespace.
func inNS(name string, fn func() error) error {
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

func dialIn(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = inNS(ns, func() (e error) {
			c, e = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
			return e
		})
		return c, err
	}
}

func (l *brLab) listen(ns, addr string) net.Listener {
	l.t.Helper()
	var ln net.Listener
	if err := inNS(ns, func() (e error) { ln, e = net.Listen("tcp", addr); return e }); err != nil {
		l.t.Fatalf("listen %s in %s: %v", addr, ns, err)
	}
	return ln
}

type brInternet struct{ hits atomic.Int64 }

// serveInternet runs the "internet" web server on port 80. Like real web
// servers it keeps connections alive.
func (l *brLab) serveInternet() *brInternet {
	in := &brInternet{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		in.hits.Add(1)
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>Internet</title>
<style>body{font-family:sans-serif;background:#ecfdf5;color:#064e3b;margin:3em}
h1{background:#059669;color:#fff;padding:.5em 1em;border-radius:8px}</style></head>
<body><h1>%s</h1><p>Served by the test's internet host %s to a request from %s.</p></body></html>`, brInetText, brInetIP, host)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	ln := l.listen(l.inet, brInetIP+":80")
	go srv.Serve(ln)
	l.t.Cleanup(func() { srv.Close() })
	return in
}

// gateway starts netcfg in the gateway namespace with the guest network on
// guest0 and the uplink on wan0.
func (l *brLab) gateway(ctx context.Context) netcfg.Manager {
	l.t.Helper()
	log := slog.New(slog.NewTextHandler(newBrTLog(l.t, "netcfg: "), nil))
	opts := netcfg.Options{Log: log, NetNS: l.gw, CheckInterval: -1}
	m, err := netcfg.New(opts)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() {
		m.Close()
		if err := netcfg.CleanUp(context.Background(), opts); err != nil {
			l.t.Errorf("netcfg cleanup: %v", err)
		}
	})
	cfg := &netcfg.Config{
		WAN: "wan0",
		Guest: netcfg.GuestNetwork{
			Interface:   "guest0",
			Addr4:       netip.MustParsePrefix("10.50.0.1/24"),
			PortalAddr4: netip.MustParseAddrPort("10.50.0.1:8080"),
		},
	}
	if err := m.Set(ctx, cfg); err != nil {
		l.t.Fatal(err)
	}
	return m
}

// allowed reports whether the client's IP is in netcfg's IPv4 allow set.
func (l *brLab) allowed() bool {
	l.t.Helper()
	out := brRun(l.t, "ip", "netns", "exec", l.gw, "ipset", "list", netcfg.SetAllow4)
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == brClientIP {
			return true
		}
	}
	return false
}

// clientFlows returns the gateway's conntrack entries of the client's
// connections to the internet host that the DNAT sent to the portal.
func (l *brLab) clientFlows() string {
	l.t.Helper()
	out, _ := exec.Command("ip", "netns", "exec", l.gw, "cat", "/proc/net/nf_conntrack").CombinedOutput()
	var b strings.Builder
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "src="+brClientIP+" dst="+brInetIP+" ") && strings.Contains(line, "src=10.50.0.1 dst="+brClientIP+" ") {
			fmt.Fprintf(&b, "  %s\n", strings.Join(strings.Fields(line), " "))
		}
	}
	return b.String()
}

// brKeepAlive is an HTTP client in the client namespace that keeps (at most
// one) idle connection per host, as browsers do, and follows no redirects.
type brKeepAlive struct{ hc *http.Client }

type brResult struct {
	code           int
	location, body string
	err            error
}

func (r brResult) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	return fmt.Sprintf("%d Location=%q body=%q", r.code, r.location, brFirstLine(r.body))
}

func (l *brLab) keepAliveClient() *brKeepAlive {
	dial := dialIn(l.client)
	tr := &http.Transport{
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     time.Minute,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, port, _ := net.SplitHostPort(addr); host == "internet.test" {
				addr = net.JoinHostPort(brInetIP, port)
			}
			return dial(ctx, network, addr)
		},
	}
	l.t.Cleanup(tr.CloseIdleConnections)
	return &brKeepAlive{hc: &http.Client{
		Transport:     tr,
		Timeout:       3 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// get fetches http://internet.test/ and reads the whole body, so that the
// connection goes back to the idle pool.
func (k *brKeepAlive) get() brResult {
	resp, err := k.hc.Get(brInetURL)
	if err != nil {
		return brResult{err: err}
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return brResult{code: resp.StatusCode, location: resp.Header.Get("Location"), body: b.String(), err: err}
}

// servePortal runs the captive portal (Server.Run) on 10.50.0.1:8080 inside
// the gateway namespace until the test ends, and waits until it accepts.
func (l *brLab) servePortal(ctx context.Context, m netcfg.Manager) {
	l.t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	log := slog.New(slog.NewTextHandler(newBrTLog(l.t, "portal: "), nil))
	srv, err := portal.New(portal.Config{
		Listen:          "10.50.0.1:8080",
		PublicURL:       brPortalURL,
		Locations:       map[string]portal.Branding{"loc-e2e": {Name: "Deskgate E2E", PrimaryColor: "#0f766e", TermsVersion: "v1"}},
		DefaultLocation: "loc-e2e",
		RateLimit:       100,
		RateBurst:       200,
	}, newBrBackend(), brNetwork{m}, l.neighborResolver(), log)
	if err != nil {
		l.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		// Run listens on this thread, inside the gateway namespace; the
		// thread is discarded when Run returns.
		runtime.LockOSThread()
		h, err := netns.GetFromName(l.gw)
		if err == nil {
			err = netns.Set(h)
			h.Close()
		}
		if err != nil {
			done <- err
			return
		}
		done <- srv.Run(ctx)
	}()
	l.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			l.t.Errorf("portal: %v", err)
		}
	})
	dial := dialIn(l.gw)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := dial(ctx, "tcp", "10.50.0.1:8080")
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-done:
			l.t.Fatalf("portal stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("portal not listening: %v", err)
		}
	}
}

// neighborResolver is portal.NeighborResolver reading the gateway
// namespace's ARP table: /proc/thread-self/net/arp read from a thread in
// that namespace (plain /proc/net/arp would be the test process's).
func (l *brLab) neighborResolver() portal.ClientResolver {
	return portal.ResolverFunc(func(r *http.Request) (c portal.Client, err error) {
		if ierr := inNS(l.gw, func() error {
			c, err = portal.NeighborResolver{Path: "/proc/thread-self/net/arp"}.Resolve(r)
			return nil
		}); ierr != nil {
			return c, ierr
		}
		if err == nil && c.MAC.String() != brClientMAC.String() {
			l.t.Errorf("neighbour table: %s has MAC %s, want the client's %s", c.IP, c.MAC, brClientMAC)
		}
		return c, err
	})
}

// brNetwork is the portal's Network backed by netcfg.
type brNetwork struct{ m netcfg.Manager }

func (n brNetwork) Allow(ctx context.Context, c portal.Client, until time.Time) error {
	gc := netcfg.GuestClient{MAC: c.MAC, Until: until}
	if c.IP.Is4() {
		gc.IP4 = c.IP
	} else {
		gc.IP6 = []netip.Addr{c.IP}
	}
	return n.m.Allow(ctx, gc)
}

func (n brNetwork) Revoke(ctx context.Context, c portal.Client) error {
	return n.m.Revoke(ctx, c.MAC)
}

// brBackend accepts one guest code for a one-hour session per MAC.
type brBackend struct {
	mu       sync.Mutex
	sessions map[string]portal.Session
}

func newBrBackend() *brBackend { return &brBackend{sessions: map[string]portal.Session{}} }

func (b *brBackend) LoginCode(_ context.Context, code string, c portal.Client, loc string) (portal.Session, error) {
	if !strings.EqualFold(code, brGuestCode) {
		return portal.Session{}, portal.ErrBadCode
	}
	s := portal.Session{ID: "s-" + c.MAC.String(), Kind: portal.KindGuest, Name: "E2E Guest", Until: time.Now().Add(time.Hour), LocationID: loc}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sessions[c.MAC.String()] = s
	return s, nil
}

func (b *brBackend) LoginMember(context.Context, string, string, portal.Client, string) (portal.Session, error) {
	return portal.Session{}, portal.ErrBadCredentials
}

func (b *brBackend) SessionFor(_ context.Context, c portal.Client) (portal.Session, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.sessions[c.MAC.String()]
	return s, ok, nil
}

func (b *brBackend) Logout(_ context.Context, c portal.Client) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.sessions, c.MAC.String())
	return nil
}

func (b *brBackend) RecordTerms(context.Context, portal.Client, string, string) error { return nil }

// brTLog sends log lines to t.Log until the test's cleanups are done.
type brTLog struct {
	t      *testing.T
	prefix string
	mu     sync.Mutex
	done   bool
}

func newBrTLog(t *testing.T, prefix string) *brTLog {
	w := &brTLog{t: t, prefix: prefix}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return w
}

func (w *brTLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(w.prefix + strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// brNavTimeout bounds one DevTools command and one navigation: every page
// here is local and small.
const brNavTimeout = 10 * time.Second

// startChromium runs headless Chromium inside the client namespace and
// connects to its DevTools endpoint, which listens on the client
// namespace's loopback, from a thread in that namespace.
func (l *brLab) startChromium(ctx context.Context, bin string, extra ...string) *cdp.Page {
	l.t.Helper()
	return cdp.Start(ctx, l.t, cdp.Options{
		Bin:     bin,
		Flags:   extra,
		Prefix:  []string{"ip", "netns", "exec", l.client},
		Dial:    dialIn(l.client),
		Timeout: brNavTimeout,
	})
}
