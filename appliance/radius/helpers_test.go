package radius

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"fmt"
	"github.com/deskgate/deskgate/appliance/creds"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"

	"github.com/deskgate/deskgate/appliance/model"
)

const testSecret = "s3cret-testing"

// needRadclient skips without radclient, unless CI=true.
func needRadclient(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("radclient")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("radclient not installed (CI=true): %v", err)
		}
		t.Skip("radclient not installed (apt-get install freeradius-utils)")
	}
	return p
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// memAuditor records audit entries.
type memAuditor struct {
	mu sync.Mutex
	es []model.AuditEntry
}

func (a *memAuditor) Audit(_ context.Context, e model.AuditEntry) error {
	a.mu.Lock()
	a.es = append(a.es, e)
	a.mu.Unlock()
	return nil
}

func (a *memAuditor) find(action string) (model.AuditEntry, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.es {
		if e.Action == action {
			return e, true
		}
	}
	return model.AuditEntry{}, false
}

var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

// hotDesk is an active Hot Desk member's subject at loc-a.
func hotDesk(user, member, password string) Subject {
	return Subject{
		Account: model.Account{Username: user, MemberID: member, NTHash: creds.NTHash(password), Group: "hotdesk"},
		Decision: model.Decision{
			Allowed: true, Reasons: []string{"Hot Desk membership ms-" + member + " active"},
			MembershipID: "ms-" + member, PlanID: "plan-hotdesk", PlanName: "Hot Desk", Group: "hotdesk",
			Bandwidth:      model.Bandwidth{DownKbps: 50000, UpKbps: 10000},
			Locations:      []model.LocationAccess{{LocationID: "loc-a", Name: "Alpha", VLAN: 100}},
			ValidUntil:     t0.Add(30 * 24 * time.Hour),
			SessionTimeout: 12 * time.Hour,
			MaxDevices:     2,
		},
	}
}

type testEnv struct {
	logs     *logBuffer
	srv      *Server
	dir      *MapDirectory
	sessions *MemSessionStore
	audit    *memAuditor
	clock    *fakeClock
	auth     string // host:port
	acct     string
	cancel   context.CancelFunc
	done     chan error
}

func defaultClients() []Client {
	return []Client{{
		Name: "ap-alpha", Prefix: netip.MustParsePrefix("127.0.0.1/32"), Secret: []byte(testSecret),
		LocationID: "loc-a", Vendor: VendorWISPr,
	}}
}

func startServer(t *testing.T, clients []Client, mod func(*Config)) *testEnv {
	t.Helper()
	e := &testEnv{dir: NewMapDirectory(), sessions: NewMemSessionStore(), audit: &memAuditor{}, clock: &fakeClock{t: t0}}
	e.dir.Put(hotDesk("alice", "m-alice", "correct horse"))
	vo := hotDesk("victor", "m-victor", "pw-victor")
	vo.Decision = model.Decision{Allowed: false, Deny: model.DenyPlanNoWiFi, Reasons: []string{"Virtual Office has no WiFi"}, PlanName: "Virtual Office"}
	e.dir.Put(vo)
	ended := hotDesk("erin", "m-erin", "pw-erin")
	ended.Decision = model.Decision{Allowed: false, Deny: model.DenyEnded, Reasons: []string{"membership ended 2026-11-26"}}
	e.dir.Put(ended)
	beta := hotDesk("bob", "m-bob", "pw-bob")
	beta.Decision.Locations = []model.LocationAccess{{LocationID: "loc-b", Name: "Beta", VLAN: 200}}
	e.dir.Put(beta)
	cfg := Config{
		AuthAddrs: []string{"127.0.0.1:0"}, AcctAddrs: []string{"127.0.0.1:0"},
		Clients: clients, InterimInterval: 5 * time.Minute, DedupWindow: 30 * time.Second, Workers: 2,
	}
	if mod != nil {
		mod(&cfg)
	}
	e.logs = &logBuffer{t: t}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(cfg, e.dir, e.sessions, nil, e.audit, log, e.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	srv.panicOnBug = true
	e.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.Listen(ctx); err != nil {
		t.Fatal(err)
	}
	a, b := srv.Addrs()
	e.auth, e.acct = a[0].String(), b[0].String()
	e.cancel = cancel
	e.done = make(chan error, 1)
	go func() { e.done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-e.done; err != nil {
			t.Errorf("serve: %v", err)
		}
		// Secrets and passwords never reach the log.
		all := e.logs.String()
		for _, secret := range []string{testSecret, "correct horse", "pw-victor", "pw-erin", "pw-bob", "new-secret", "beta-secret"} {
			if strings.Contains(all, secret) {
				t.Errorf("log contains the secret %q", secret)
			}
		}
	})
	return e
}

// logBuffer keeps the server's log and mirrors it to the test log.
type logBuffer struct {
	t  *testing.T
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.b.Write(p)
	l.mu.Unlock()
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) count(s string) int { return strings.Count(l.String(), s) }

// radReply is radclient's view of one answer.
type radReply struct {
	Code  string // Access-Accept, Access-Reject, Accounting-Response, "" (no answer)
	Attrs [][2]string
	Out   string
}

func (r radReply) get(name string) (string, bool) {
	for _, a := range r.Attrs {
		if a[0] == name {
			return a[1], true
		}
	}
	return "", false
}

func (r radReply) all(name string) []string {
	var out []string
	for _, a := range r.Attrs {
		if a[0] == name {
			out = append(out, a[1])
		}
	}
	return out
}

// radclient sends attrs (radclient's "Name = value" lines) and parses the
// -x output.
func radclient(t *testing.T, addr, kind, secret string, attrs ...string) radReply {
	t.Helper()
	bin := needRadclient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-x", "-r", "1", "-t", "1", addr, kind, secret)
	cmd.Stdin = strings.NewReader(strings.Join(attrs, "\n") + "\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // exit status 1 on reject or no answer
	return parseRadclient(out.String())
}

func parseRadclient(s string) radReply {
	r := radReply{Out: s}
	in := false
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "Received ") {
			f := strings.Fields(line)
			r.Code = f[1]
			in = true
			continue
		}
		if !in {
			continue
		}
		if !strings.HasPrefix(line, "\t") && !strings.HasPrefix(line, "  ") {
			in = false
			continue
		}
		name, val, ok := strings.Cut(strings.TrimSpace(line), " = ")
		if !ok {
			continue
		}
		r.Attrs = append(r.Attrs, [2]string{name, strings.Trim(val, `"`)})
	}
	return r
}

func sendRaw(t *testing.T, addr string, pkt []byte, timeout time.Duration) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return v
}

// buildAccessRequest builds a PAP Access-Request with layeh.com/radius and
// crypto/hmac (independently of the server's wire code).
func buildAccessRequest(t testing.TB, secret []byte, id byte, user, password string, withMA bool, proxy [][]byte, extra ...func(*radius.Packet)) []byte {
	t.Helper()
	p := radius.New(radius.CodeAccessRequest, secret)
	p.Identifier = id
	if err := rfc2865.UserName_SetString(p, user); err != nil {
		t.Fatal(err)
	}
	if password != "" {
		if err := rfc2865.UserPassword_SetString(p, password); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range extra {
		f(p)
	}
	for _, ps := range proxy {
		p.Add(rfc2865.ProxyState_Type, radius.Attribute(ps))
	}
	if withMA {
		p.Add(rfc2869.MessageAuthenticator_Type, make(radius.Attribute, 16))
	}
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if withMA {
		signMA(b, secret, nil)
	}
	return b
}

// signMA fills the Message-Authenticator attribute in b (HMAC-MD5 over the
// packet with the attribute zeroed; auth replaces the authenticator field
// when not nil).
func signMA(b, secret, auth []byte) {
	for i := 20; i+2 <= len(b); i += int(b[i+1]) {
		if b[i] == 80 && b[i+1] == 18 {
			tmp := append([]byte(nil), b...)
			if auth != nil {
				copy(tmp[4:20], auth)
			}
			clear(tmp[i+2 : i+18])
			m := hmac.New(md5.New, secret)
			m.Write(tmp)
			copy(b[i+2:i+18], m.Sum(nil))
			return
		}
	}
}

// sendRawFrom sends pkt from the given local IP and waits for one answer.
func sendRawFrom(t *testing.T, local, addr string, pkt []byte, timeout time.Duration) []byte {
	t.Helper()
	la := &net.UDPAddr{IP: net.ParseIP(local)}
	ra, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", la, ra)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

type timeT = time.Time

func sortedSessions(ss []Session) []Session {
	sort.Slice(ss, func(i, j int) bool { return ss[i].Key < ss[j].Key })
	return ss
}

type radiusPacket = radius.Packet

func rfc2865CallingStationSet(p *radius.Packet, mac string) error {
	return rfc2865.CallingStationID_SetString(p, mac)
}

// acctPacket builds a signed Accounting-Request for alice.
func acctReq(t testing.TB, id byte, status, sessionID, mac string) []byte {
	p := radius.New(radius.CodeAccountingRequest, []byte(testSecret))
	p.Identifier = id
	_ = rfc2865.UserName_SetString(p, "alice")
	st := map[string]rfc2866.AcctStatusType{"Start": 1, "Stop": 2, "Interim-Update": 3, "Accounting-On": 7}[status]
	_ = rfc2866.AcctStatusType_Set(p, st)
	_ = rfc2866.AcctSessionID_SetString(p, sessionID)
	_ = rfc2865.CallingStationID_SetString(p, mac)
	return must(p.Encode())
}
