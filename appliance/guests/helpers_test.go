package guests

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/notify"
	"github.com/deskgate/deskgate/appliance/notify/notifytest"
	"github.com/deskgate/deskgate/appliance/store"
)

var (
	testKey     = []byte("0123456789abcdef0123456789abcdef")
	testCodeKey = []byte("code-key-0123456789abcdef-012345")
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// fakeNet records the Network calls.
type fakeNet struct {
	mu      sync.Mutex
	allowed map[string]time.Time
	allows  []string // "mac@until"
	revokes []string // mac
}

func newFakeNet() *fakeNet { return &fakeNet{allowed: map[string]time.Time{}} }

func (f *fakeNet) Allow(_ context.Context, c Client, until time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.allowed[device(c)] = until
	f.allows = append(f.allows, device(c)+"@"+until.UTC().Format(time.RFC3339))
	return nil
}

func (f *fakeNet) Revoke(_ context.Context, c Client) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.allowed, device(c))
	f.revokes = append(f.revokes, device(c))
	return nil
}

func (f *fakeNet) Revokes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.revokes...)
}

func (f *fakeNet) Allows() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.allows...)
}

func (f *fakeNet) Until(mac string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.allowed[mac]
	return t, ok
}

func openStore(t *testing.T, dir string, clk *clock) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(dir, "deskgate.db"), store.Options{SealKey: testKey, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

type env struct {
	t   *testing.T
	dir string
	clk *clock
	st  *store.Store
	net *fakeNet
	m   *Manager
	cfg Config
}

func newEnv(t *testing.T, start time.Time, cfg Config) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), clk: newClock(start), net: newFakeNet(), cfg: cfg}
	e.st = openStore(t, e.dir, e.clk)
	t.Cleanup(func() {
		if err := e.st.Close(); err != nil {
			t.Error(err)
		}
	})
	if cfg.SealKey == nil {
		e.cfg.SealKey = testKey
	}
	if cfg.CodeKey == nil {
		e.cfg.CodeKey = testCodeKey
	}
	e.m = New(e.cfg, e.st, e.net, nil, nil, e.clk.Now)
	return e
}

func (e *env) put(fn func(tx *store.Tx) error) {
	e.t.Helper()
	if err := e.st.Update(fn); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) reconcile() {
	e.t.Helper()
	if err := e.m.Reconcile(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) codes() []CodeInfo {
	e.t.Helper()
	cs, err := e.m.Codes(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return cs
}

// outbox returns the pending guest_code emails with their secrets opened.
func (e *env) outbox() []model.Email {
	e.t.Helper()
	es, err := e.st.PendingEmails(e.clk.Now().Add(time.Hour), 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return es
}

func (e *env) audit(action string) []model.AuditEntry {
	e.t.Helper()
	all, err := e.st.AuditLog(0, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []model.AuditEntry
	for _, a := range all {
		if a.Action == action {
			out = append(out, a)
		}
	}
	return out
}

func client(n int) Client {
	return Client{
		MAC: net.HardwareAddr{0x02, 0, 0, 0, 0, byte(n)},
		IP:  netip.AddrFrom4([4]byte{10, 0, 0, byte(n)}),
	}
}

func mac(n int) string { return client(n).MAC.String() }

// seedRoom stores a location (with timezone) and a meeting room there.
func seedRoom(tx *store.Tx, loc, tz, room, typ string) error {
	if err := tx.PutLocation(model.Location{ID: loc, Name: "Space " + loc, Timezone: tz}); err != nil {
		return err
	}
	return tx.PutResource(model.Resource{ID: room, Name: "Room " + room, Type: typ, Location: loc})
}

var codeRE = regexp.MustCompile(`\b[` + Alphabet + `]{3}-[` + Alphabet + `]{3}-[` + Alphabet + `]{3}\b`)

// smtpDeliver drains the store's outbox into a real SMTP server and returns
// the messages it accepted.
func smtpDeliver(t *testing.T, st *store.Store, srv *notifytest.Server) []notifytest.Message {
	t.Helper()
	host, port, _ := strings.Cut(srv.Addr, ":")
	p, _ := strconv.Atoi(port)
	mailer := notify.NewSMTPMailer(notify.SMTPConfig{
		Host: host, Port: p, Username: notifytest.User, Password: notifytest.Password,
		TLS: notify.TLSStartTLS, InsecureSkipVerify: true, HelloName: "deskgate.test", Timeout: 5 * time.Second,
	})
	tmpl, err := notify.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	s := notify.NewSender(st, mailer, tmpl, "WiFi <wifi@space.test>", nil)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return srv.Messages()
}
