package netcfg

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// needRoot skips (or, with CI=true, fails) unless the test runs as root with
// the given tools installed.
func needRoot(t testing.TB, tools ...string) {
	t.Helper()
	skip := func(reason string) { t.Helper(); unavailable(t, reason) }
	if os.Geteuid() != 0 {
		skip("needs root (network namespaces, iptables, tc)")
	}
	for _, tool := range append([]string{"ip", "iptables", "ip6tables", "iptables-save", "ip6tables-save", "tc"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			skip(tool + " not installed")
		}
	}
}

// unavailable skips the test, or fails it when CI=true.
func unavailable(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but cannot run: %s", reason)
	}
	t.Skip(reason)
}

// lab is a set of network namespaces owned by one test.
type lab struct {
	t  testing.TB
	id string
	ns map[string]string // role -> namespace name
}

func newLab(t testing.TB) *lab {
	b := make([]byte, 3)
	rand.Read(b)
	return &lab{t: t, id: hex.EncodeToString(b), ns: map[string]string{}}
}

func (l *lab) addNS(roles ...string) {
	for _, role := range roles {
		name := fmt.Sprintf("dgtest-%s-%s", l.id, role)
		run(l.t, "ip", "netns", "add", name)
		l.ns[role] = name
		l.t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
				l.t.Errorf("ip netns del %s: %v: %s", name, err, out)
			}
		})
		l.ip(role, "link", "set", "lo", "up")
	}
}

func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (l *lab) ip(role string, args ...string) string {
	l.t.Helper()
	return run(l.t, append([]string{"ip", "-n", l.ns[role]}, args...)...)
}

func (l *lab) exec(role string, args ...string) string {
	l.t.Helper()
	return run(l.t, append([]string{"ip", "netns", "exec", l.ns[role]}, args...)...)
}

// veth joins role a's link an with role b's link bn.
func (l *lab) veth(a, an, b, bn string) {
	l.t.Helper()
	l.ip(a, "link", "add", an, "type", "veth", "peer", "name", bn, "netns", l.ns[b])
	l.ip(a, "link", "set", an, "up")
	l.ip(b, "link", "set", bn, "up")
}

func (l *lab) addr(role, link string, addrs ...string) {
	l.t.Helper()
	for _, a := range addrs {
		if strings.Contains(a, ":") {
			l.ip(role, "addr", "add", a, "dev", link, "nodad")
		} else {
			l.ip(role, "addr", "add", a, "dev", link)
		}
	}
}

// in runs fn on a thread inside the role's namespace; sockets created there
// stay in that namespace.
func (l *lab) in(role string, fn func()) {
	l.t.Helper()
	h, err := netns.GetFromName(l.ns[role])
	if err != nil {
		l.t.Fatalf("netns %s: %v", role, err)
	}
	defer h.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		l.t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(h); err != nil {
		runtime.UnlockOSThread()
		l.t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(err) // thread stays locked and is discarded
		}
		runtime.UnlockOSThread()
	}()
	fn()
}

func (l *lab) listen(role, network, addr string) net.Listener {
	l.t.Helper()
	var ln net.Listener
	var err error
	l.in(role, func() { ln, err = net.Listen(network, addr) })
	if err != nil {
		l.t.Fatalf("listen %s %s in %s: %v", network, addr, role, err)
	}
	l.t.Cleanup(func() { ln.Close() })
	return ln
}

func (l *lab) dial(role, network, addr string, timeout time.Duration) (c net.Conn, err error) {
	l.in(role, func() {
		d := net.Dialer{Timeout: timeout}
		c, err = d.Dial(network, addr)
	})
	return c, err
}

// serve runs an HTTP handler on ln until the test ends.
func serve(t testing.TB, ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// httpClient makes requests from the role's namespace without following
// redirects or keeping connections.
func (l *lab) httpClient(role string) *http.Client {
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return l.dial(role, network, addr, 2*time.Second)
		},
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       3 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// get returns status, Location and body of a GET from role.
func (l *lab) get(role, url string) (int, string, string, error) {
	resp, err := l.httpClient(role).Get(url)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), b.String(), nil
}

// start runs a long-lived process in role's namespace, killed at cleanup.
func (l *lab) start(role string, args ...string) *exec.Cmd {
	l.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.ns[role]}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("start %v: %v", args, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	l.t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if l.t.Failed() {
			l.t.Logf("%s output:\n%s", args[0], out.String())
		}
	})
	return cmd
}

var counterRE = regexp.MustCompile(`\[\d+:\d+\]|direct_packets_stat \d+`)

// snapshot is the kernel state the teardown must restore, as text.
func (l *lab) snapshot(role string) string {
	l.t.Helper()
	var b strings.Builder
	for _, cmd := range [][]string{{"iptables-save"}, {"ip6tables-save"}, {"ip", "-o", "link"}, {"tc", "qdisc", "show"}, {"ipset", "list", "-n"}} {
		out := l.exec(role, cmd...)
		var lines []string
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "#") {
				continue // iptables-save timestamps
			}
			lines = append(lines, counterRE.ReplaceAllString(line, "[]"))
		}
		fmt.Fprintf(&b, "== %s\n%s\n", strings.Join(cmd, " "), strings.Join(lines, "\n"))
	}
	links := l.exec(role, "ip", "-o", "link")
	for _, line := range strings.Split(links, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		dev := strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":")
		for _, what := range []string{"class", "filter"} {
			fmt.Fprintf(&b, "== tc %s show dev %s\n%s", what, dev, l.exec(role, "tc", what, "show", "dev", dev))
		}
		fmt.Fprintf(&b, "== tc filter show dev %s ingress\n%s", dev, l.exec(role, "tc", "filter", "show", "dev", dev, "ingress"))
	}
	return b.String()
}

// logBuffer collects a manager's log lines for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *logBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *logBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func testLogger(t testing.TB) (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	log := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("manager log:\n%s", buf.String())
		}
	})
	return log, buf
}

// guestLab is the acceptance topology:
//
//	c1, c2 ── sw (bridge) ── gw:guest0 | gw:wan0 ── in:eth0
//
// guest 10.77.0.0/24 + fd77::/64, WAN 198.51.100.0/24 + fd99::/64. The
// "internet" has no route back to the guest prefixes, so only NAT works.
type guestLab struct {
	*lab
	cfg *Config
}

var (
	inet4   = "198.51.100.2"
	inet6   = "fd99::2"
	garden4 = "198.51.100.3"
	gardenH = "198.51.100.4" // garden.test, reachable once resolved
	c1MAC   = mustMAC("02:00:00:00:77:10")
	c2MAC   = mustMAC("02:00:00:00:77:11")
)

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func newGuestLab(t testing.TB) *guestLab {
	l := newLab(t)
	l.addNS("c1", "c2", "sw", "gw", "in", "m1")
	l.ip("sw", "link", "add", "br0", "type", "bridge")
	l.ip("sw", "link", "set", "br0", "up")
	l.veth("gw", "guest0", "sw", "p0")
	l.veth("c1", "eth0", "sw", "p1")
	l.veth("c2", "eth0", "sw", "p2")
	for _, p := range []string{"p0", "p1", "p2"} {
		l.ip("sw", "link", "set", p, "master", "br0")
	}
	l.ip("c1", "link", "set", "eth0", "address", c1MAC.String())
	l.ip("c2", "link", "set", "eth0", "address", c2MAC.String())
	l.veth("gw", "wan0", "in", "eth0")
	l.veth("gw", "lan0", "m1", "eth0") // a member network, untagged
	l.addr("gw", "lan0", "10.88.0.1/24", "fd88::1/64")
	l.addr("m1", "eth0", "10.88.0.10/24", "fd88::10/64")
	l.ip("m1", "route", "add", "default", "via", "10.88.0.1")
	l.ip("m1", "-6", "route", "add", "default", "via", "fd88::1")
	l.addr("gw", "guest0", "10.77.0.1/24", "fd77::1/64")
	l.addr("gw", "wan0", "198.51.100.1/24", "fd99::1/64")
	l.addr("c1", "eth0", "10.77.0.10/24", "fd77::10/64")
	l.addr("c2", "eth0", "10.77.0.11/24", "fd77::11/64")
	l.addr("in", "eth0", inet4+"/24", garden4+"/24", gardenH+"/24", inet6+"/64")
	for _, c := range []string{"c1", "c2"} {
		l.ip(c, "route", "add", "default", "via", "10.77.0.1")
		l.ip(c, "-6", "route", "add", "default", "via", "fd77::1")
	}
	l.ip("gw", "route", "add", "default", "via", inet4)
	l.ip("gw", "-6", "route", "add", "default", "via", inet6)

	// Portal stub on the gateway: everything redirects to its own URL.
	portal := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/portal" {
			fmt.Fprint(w, "portal")
			return
		}
		http.Redirect(w, r, "http://10.77.0.1:8080/portal", http.StatusFound)
	})
	serve(t, l.listen("gw", "tcp4", "10.77.0.1:8080"), portal)
	serve(t, l.listen("gw", "tcp6", "[fd77::1]:8080"), portal)

	// The internet: HTTP on 80, HTTPS on 443, a TCP service on 22.
	inet := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "internet from %s", r.RemoteAddr)
	})
	for _, a := range []string{inet4, "[" + inet6 + "]"} {
		serve(t, l.listen("in", "tcp", a+":80"), inet)
		ts := httptest.NewUnstartedServer(inet)
		ts.Listener.Close()
		ts.Listener = l.listen("in", "tcp", a+":443")
		ts.StartTLS()
		t.Cleanup(ts.Close)
	}
	for _, a := range []string{inet4 + ":22", garden4 + ":22", gardenH + ":22", "[" + inet6 + "]:22"} {
		ln := l.listen("in", "tcp", a)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("SSH-2.0-lab\r\n"))
				c.Close()
			}
		}()
	}
	cfg := &Config{
		WAN: "wan0",
		Networks: []Network{{Name: "members", Parent: "lan0", Group: "standard",
			Addr4: netip.MustParsePrefix("10.88.0.1/24"), Addr6: netip.MustParsePrefix("fd88::1/64")}},
		Guest: GuestNetwork{
			Interface:         "guest0",
			Addr4:             netip.MustParsePrefix("10.77.0.1/24"),
			Addr6:             netip.MustParsePrefix("fd77::1/64"),
			PortalAddr4:       netip.MustParseAddrPort("10.77.0.1:8080"),
			PortalAddr6:       netip.MustParseAddrPort("[fd77::1]:8080"),
			CaptiveAPI:        "https://portal.test/api/captive",
			WalledGarden:      []netip.Prefix{netip.MustParsePrefix(garden4 + "/32")},
			WalledGardenHosts: []string{"garden.test"},
		},
	}
	return &guestLab{lab: l, cfg: cfg}
}

func client1(until time.Time) GuestClient {
	return GuestClient{MAC: c1MAC, IP4: netip.MustParseAddr("10.77.0.10"), IP6: []netip.Addr{netip.MustParseAddr("fd77::10")}, Until: until}
}

func client2() GuestClient {
	return GuestClient{MAC: c2MAC, IP4: netip.MustParseAddr("10.77.0.11"), IP6: []netip.Addr{netip.MustParseAddr("fd77::11")}}
}

func (g *guestLab) manager(log *slog.Logger, interval time.Duration) *manager {
	g.t.Helper()
	m, err := New(Options{Log: log, NetNS: g.ns["gw"], CheckInterval: interval})
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { m.Close() })
	return m.(*manager)
}

// captive reports whether role's HTTP to the internet is redirected to the
// portal (true) or served (false); anything else fails the test.
func (g *guestLab) captive(role, url string) bool {
	g.t.Helper()
	code, loc, body, err := g.get(role, url)
	if err != nil {
		g.t.Fatalf("GET %s from %s: %v", url, role, err)
	}
	switch {
	case code == http.StatusFound && loc == "http://10.77.0.1:8080/portal":
		return true
	case code == http.StatusOK && strings.HasPrefix(body, "internet"):
		return false
	}
	g.t.Fatalf("GET %s from %s: %d %q %q", url, role, code, loc, body)
	return false
}
