package appliance

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime/quotedprintable"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/appliance/notify/notifytest"
	"github.com/deskgate/deskgate/appliance/officernd"
	"github.com/deskgate/deskgate/appliance/officernd/officerndsim"
	"github.com/deskgate/deskgate/appliance/update"
	"github.com/deskgate/deskgate/internal/testepoch"
	"github.com/deskgate/deskgate/portal"
)

// clock is a settable clock shared by the simulator and the daemon.
type clock struct {
	mu sync.Mutex
	t  time.Time
	// real: advance with wall time from t (so timeouts and latencies
	// behave), plus explicit jumps.
	base time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t, base: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t.Add(time.Since(c.base))
}

func (c *clock) Jump(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// freePort returns a loopback address that was free a moment ago. It is
// picked below the kernel's ephemeral range (32768–60999), so sockets other
// tests bind to port 0 meanwhile cannot take it before the daemon does.
func freePort(t testing.TB) string {
	t.Helper()
	for i := 0; i < 100; i++ {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		return addr
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}

type harnessOpts struct {
	seed        bool
	extra       int
	interval    time.Duration
	extraYAML   string
	smtp        string // host:port of a test SMTP server; "" = mailbox
	webhooks    bool
	noWelcome   bool
	clock       *clock
	passwordPol string
	simOpts     func(*officerndsim.Options)
	usernameFmt string
	simOf       *harness // share this harness's simulator (a fleet of boxes)
	memberTLS   bool     // member pages over TLS (default: insecure_http on loopback)
	updater     *update.Updater
	demo        bool // Options.DemoSwitches
}

type harness struct {
	t       testing.TB
	sim     *officerndsim.Sim
	simSrv  *httptest.Server
	clock   *clock
	dir     string
	cfgPath string
	hookURL string
	admin   *officernd.Client // writes to the simulator like a person would
	app     *App
	cancel  context.CancelFunc
	done    chan error
	slept   atomic.Int64
	// resolver gives portal clients on loopback a MAC (there is no ARP).
	resolver *portal.StaticResolver

	// memberURL is the base of the member pages (/wifi, /onboard).
	memberURL string
	// logs holds everything the daemon logged.
	logs logBuffer
	// updater: what a fleet rollout installs with (nil: none).
	updater *update.Updater
	demo    bool // Options.DemoSwitches
}

const testSecret = "sim-secret-for-tests"

// newHarness starts the OfficeRnD simulator on loopback and writes a
// config for a daemon pointed at it; start() runs the daemon.
func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	if o.clock == nil {
		o.clock = newClock(testepoch.Epoch())
	}
	if o.interval == 0 {
		o.interval = time.Hour
	}
	h := &harness{t: t, clock: o.clock, dir: t.TempDir(), resolver: &portal.StaticResolver{Derive: true}, updater: o.updater, demo: o.demo}
	so := officerndsim.Options{
		Seed: o.seed, ExtraMembers: o.extra, Now: o.clock.Now, ClientSecret: testSecret,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RetryDelay: 50 * time.Millisecond,
	}
	if o.simOpts != nil {
		o.simOpts(&so)
	}
	if o.simOf != nil {
		h.sim, h.simSrv = o.simOf.sim, o.simOf.simSrv
	} else {
		h.sim = officerndsim.New(so)
		h.simSrv = httptest.NewServer(h.sim)
		t.Cleanup(h.simSrv.Close)
	}

	secretFile := filepath.Join(h.dir, "officernd.secret")
	if err := os.WriteFile(secretFile, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hookAddr := freePort(t)
	h.hookURL = "http://" + hookAddr + "/webhooks/officernd"
	memberAddr := freePort(t)
	members := "members:\n  listen: " + memberAddr + "\n  insecure_http: true\n"
	h.memberURL = "http://" + memberAddr
	if o.memberTLS {
		members = "members:\n  listen: " + memberAddr + "\n"
		h.memberURL = "https://" + memberAddr
	}
	smtp := "  mailbox_dir: " + filepath.Join(h.dir, "mailbox") + "\n  from: wifi@example.com\n"
	if o.smtp != "" {
		host, port, _ := net.SplitHostPort(o.smtp)
		smtp = fmt.Sprintf("  host: %s\n  port: %s\n  tls: starttls\n  insecure_skip_verify: true\n  username: %s\n  password:\n    value: %s\n  from: wifi@example.com\n", host, port, notifytest.User, notifytest.Password)
	}
	webhooks := "false"
	public := ""
	if o.webhooks {
		webhooks = "true"
		public = "  webhook_public_url: " + h.hookURL + "\n"
	}
	welcome := "true"
	if o.noWelcome {
		welcome = "false"
	}
	pol := o.passwordPol
	if pol == "" {
		pol = "generate"
	}
	ufmt := o.usernameFmt
	if ufmt == "" {
		ufmt = "email"
	}
	yaml := fmt.Sprintf(`data_dir: %[1]s/data
log:
  level: warn
admin:
  listen: 127.0.0.1:0
  socket: %[1]s/deskgate.sock
officernd:
  client_id: %[2]s
  client_secret:
    file: %[3]s
  org_slug: %[4]s
  api_base: %[5]s/api/v2
  token_url: %[5]s/oauth/token
  request_timeout: 10s
  max_retries: 8
  scopes: [%[6]s]
sync:
  interval: %[7]s
  full_every: 24h
  webhooks: %[8]s
  webhook_listen: %[9]s
%[10]susers:
  username_format: %[14]q
  password_policy: %[13]s
  welcome_email: %[11]s
  onboarding_url: %[16]s/onboard
%[17]splans:
  - {plan: Hot Desk, group: standard}
  - {plan: Dedicated Desk, group: premium}
  - {plan: Private Office, group: premium, static_ip: true}
  - {plan: Virtual Office, group: minimal, enabled: false}
  - {plan: Day Pass, group: daypass, duration: 24h}
groups:
  - {name: standard, bandwidth_down: 20mbit, bandwidth_up: 5mbit, max_devices: 3}
  - {name: premium, bandwidth_down: 100mbit, bandwidth_up: 20mbit, max_devices: 5}
  - {name: minimal, bandwidth_down: 5mbit, bandwidth_up: 1mbit, max_devices: 1}
  - {name: daypass, bandwidth_down: 10mbit, bandwidth_up: 2mbit, max_devices: 2}
locations:
  - {location: Downtown, network: downtown-secure, vlan: 100, subnet: 10.100.0.0/22, static_pool: 10.100.3.0/24}
  - {location: Uptown, network: uptown-secure, vlan: 200, subnet: 10.200.0.0/22, static_pool: 10.200.3.0/24}
roaming:
  policy: single
smtp:
%[12]s%[15]s`, h.dir, officerndsim.DefaultClientID, secretFile, officerndsim.DefaultOrgSlug, h.simSrv.URL,
		strings.Join(officerndsim.AllScopes, ", "), o.interval, webhooks, hookAddr, public, welcome, smtp, pol, ufmt, o.extraYAML, h.memberURL, members)
	h.cfgPath = filepath.Join(h.dir, "deskgate.yaml")
	if err := os.WriteFile(h.cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	h.admin, err = officernd.New(context.Background(), officernd.Config{
		APIBase: h.simSrv.URL + "/api/v2", TokenURL: h.simSrv.URL + "/oauth/token",
		OrgSlug: officerndsim.DefaultOrgSlug, ClientID: officerndsim.DefaultClientID, ClientSecret: testSecret,
		Scopes: officerndsim.AllScopes, MaxRetries: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// sleep stands in for the OfficeRnD client's waits: simulated time passes
// at once, so backoff and rate-limit resets do not slow the tests down.
func (h *harness) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h.slept.Add(int64(d))
	h.clock.Jump(d)
	return nil
}

// start runs the daemon in-process until the test ends (or stop).
func (h *harness) start() *App {
	h.t.Helper()
	cfg, err := config.Load(h.cfgPath)
	if err != nil {
		h.t.Fatalf("load test config: %v", err)
	}
	lvl := slog.LevelWarn
	if os.Getenv("DESKGATE_TEST_LOG") != "" {
		lvl = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{h.t}, &h.logs), &slog.HandlerOptions{Level: lvl}))
	ctx, cancel := context.WithCancel(context.Background())
	app, err := New(ctx, h.cfgPath, cfg, log, Options{Now: h.clock.Now, APISleep: h.sleep, PortalResolver: h.resolver, FleetTakeoverEvery: 100 * time.Millisecond, Updater: h.updater, DemoSwitches: h.demo})
	if err != nil {
		cancel()
		h.t.Fatalf("new app: %v", err)
	}
	h.app, h.cancel, h.done = app, cancel, make(chan error, 1)
	go func() { h.done <- app.Run(ctx) }()
	h.t.Cleanup(h.stop)
	return app
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("daemon exited with %v", err)
		}
	case <-time.After(15 * time.Second):
		h.t.Errorf("daemon did not stop within 15s")
	}
	h.cancel = nil
}

// peerEnv is the environment for an external peer that checks the
// certificates the daemon issued (eapol_test, wpa_supplicant): its wall
// clock reads the harness clock, as a device's would on the box's network.
func (h *harness) peerEnv(t testing.TB) []string {
	t.Helper()
	env, err := testepoch.PeerEnv(h.clock.Now())
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return append(os.Environ(), env...)
}

// waitFor polls cond every 5 ms until it holds or d passes; it returns the
// time it took.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) waitImport(d time.Duration) {
	h.t.Helper()
	// Ready, not only ImportDone: the guest lifecycle's work after the
	// import (codes, audit entries) is done too.
	waitFor(h.t, d, "initial import", func() bool { return h.app.Ready() })
}

// logBuffer keeps the daemon's log lines for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func simDrop() officerndsim.Faults { return officerndsim.Faults{DropWebhooks: true} }

func simDown() officerndsim.Faults { return officerndsim.Faults{Down: true} }

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// qpDecode undoes quoted-printable soft line breaks and =XX escapes.
func qpDecode(s string) string {
	r := quotedprintable.NewReader(strings.NewReader(s))
	b, _ := io.ReadAll(r)
	return string(b)
}
