package guests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/access"
	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/appliance/mirror"
	"github.com/deskgate/deskgate/appliance/notify/notifytest"
	"github.com/deskgate/deskgate/appliance/officernd"
	"github.com/deskgate/deskgate/appliance/officernd/officerndsim"
)

// simEnv runs the OfficeRnD simulator and the real sync into a real store.
type simEnv struct {
	*env
	sim    *officerndsim.Sim
	srv    *httptest.Server
	syncer *mirror.Syncer
}

func newSimEnv(t *testing.T) *simEnv {
	t.Helper()
	start := time.Date(2026, 11, 27, 14, 30, 0, 0, time.UTC)
	e := newEnv(t, start, Config{Locations: map[string]Location{}})
	quiet := slog.New(slog.DiscardHandler)
	sim := officerndsim.New(officerndsim.Options{Seed: true, Now: e.clk.Now, Logger: quiet})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	yaml := fmt.Sprintf(`data_dir: %[1]s/data
officernd:
  client_id: %[2]s
  client_secret:
    env: GUESTS_TEST_ORND_SECRET
  org_slug: %[4]s
  api_base: %[5]s/api/v2
  token_url: %[5]s/oauth/token
sync:
  webhooks: false
users:
  username_format: email
  password_policy: generate
  welcome_email: false
plans:
  - {plan: Hot Desk, group: standard}
  - {plan: Day Pass, group: daypass, duration: 24h}
groups:
  - {name: standard, max_devices: 3}
  - {name: daypass, max_devices: 2}
locations:
  - {location: Downtown, network: downtown-secure, vlan: 100, subnet: 10.100.0.0/22}
  - {location: Uptown, network: uptown-secure, vlan: 200, subnet: 10.200.0.0/22}
smtp:
  mailbox_dir: %[1]s/mailbox
  from: wifi@example.com
`, t.TempDir(), officerndsim.DefaultClientID, "", officerndsim.DefaultOrgSlug, srv.URL)
	t.Setenv("GUESTS_TEST_ORND_SECRET", sim.ClientConfig(srv.URL).ClientSecret)
	cfg, err := config.Parse([]byte(yaml), filepath.Join(t.TempDir(), "deskgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ccfg := sim.ClientConfig(srv.URL)
	ccfg.Now = e.clk.Now
	client, err := officernd.New(context.Background(), ccfg)
	if err != nil {
		t.Fatal(err)
	}
	syncer := mirror.New(mirror.Options{
		Client: client, Store: e.st, Resolver: access.New(cfg), Config: func() *config.Config { return cfg },
		Log: quiet, Now: e.clk.Now, FingerprintKey: testKey,
	})
	return &simEnv{env: e, sim: sim, srv: srv, syncer: syncer}
}

// sync runs a full pass of the real sync, then the guests reconcile.
func (s *simEnv) sync() {
	s.t.Helper()
	if _, err := s.syncer.FullPass(context.Background(), "full"); err != nil {
		s.t.Fatal(err)
	}
	s.reconcile()
}

// api calls the simulator's OfficeRnD API as an admin would.
func (s *simEnv) api(method, path string, body any) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, s.srv.URL+s.sim.BasePath()+path, rd)
	req.Header.Set("Authorization", "Bearer "+s.sim.IssueToken())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(resp.Body)
		s.t.Fatalf("%s %s: %s %s", method, path, resp.Status, msg)
	}
}

func (s *simEnv) guestCodes() []CodeInfo {
	var out []CodeInfo
	for _, c := range s.codes() {
		if c.Kind == KindGuest {
			out = append(out, c)
		}
	}
	return out
}

// The acceptance path end to end: bookings created through the simulated
// OfficeRnD API, imported by the real sync, codes mailed through a real
// SMTP server, moved and cancelled through the API.
func TestSimulatorBookingLifecycle(t *testing.T) {
	s := newSimEnv(t)
	ids := s.sim.Seeded().IDs
	s.sync()

	// The seed has: two visitors on a Boardroom booking today, one visitor
	// tomorrow, a booking without visitors and a cancelled one.
	var passes int
	for _, c := range s.codes() {
		if c.Kind == KindDayPass {
			passes++
		}
	}
	guests := s.guestCodes()
	var two []CodeInfo
	for _, c := range guests {
		if c.BookingID == ids["booking:two-visitors"] {
			two = append(two, c)
		}
	}
	if passes != 2 {
		t.Errorf("day-pass codes = %d, want 2 (the seed's valid and used passes)", passes)
	}
	if len(guests) != 3 || len(two) != 2 {
		t.Fatalf("guest codes: %+v, want 3 (2 for booking:two-visitors)", guests)
	}
	srv := notifytest.Start(t)
	mail := codesFromMail(t, s.env, srv)
	charles, mary := mail["charles.babbage@example.org"], mail["mary.somerville@example.org"]
	if charles == "" || mary == "" || charles == mary || mail["emmy.noether@example.org"] == "" {
		t.Fatalf("codes by mail: %v", mail)
	}
	for _, m := range srv.Messages() {
		if strings.Contains(string(m.Data), "Downtown") && strings.Contains(m.To[0], "charles") {
			goto located
		}
	}
	t.Errorf("Charles's email does not name the location")
located:

	downtown, uptown := ids["location:Downtown"], ids["location:Uptown"]
	ctx := context.Background()
	from, until := two[0].From, two[0].Until
	s.clk.Set(from.Add(-time.Minute))
	if _, err := s.m.LoginCode(ctx, charles, client(1), downtown); !errors.Is(err, ErrNotYetValid) {
		t.Fatalf("before the window: %v", err)
	}
	s.clk.Set(from.Add(time.Minute))
	if _, err := s.m.LoginCode(ctx, charles, client(1), uptown); !errors.Is(err, ErrWrongLocation) {
		t.Fatalf("at Uptown: %v", err)
	}
	if _, err := s.m.LoginCode(ctx, charles, client(1), downtown); err != nil {
		t.Fatalf("inside the window: %v", err)
	}
	if _, err := s.m.LoginCode(ctx, mary, client(2), downtown); err != nil {
		t.Fatalf("inside the window: %v", err)
	}

	// Move the booking three hours later through the API.
	bid := ids["booking:two-visitors"]
	start := from.Add(s.m.cfg.BufferBefore)
	s.api(http.MethodPatch, "/bookings/"+bid, map[string]any{
		"start": start.Add(3 * time.Hour).Format(time.RFC3339), "end": start.Add(4 * time.Hour).Format(time.RFC3339),
	})
	s.sync()
	moved := s.guestCodes()
	for _, c := range moved {
		if c.BookingID == bid && (!c.From.Equal(from.Add(3*time.Hour)) || !c.Until.Equal(until.Add(3*time.Hour))) {
			t.Fatalf("window not moved: %+v", c)
		}
	}
	if got := s.net.Revokes(); len(got) != 2 {
		t.Fatalf("live sessions outside the moved window: revokes %v", got)
	}
	again := codesFromMail(t, s.env, srv)
	if again["charles.babbage@example.org"] != charles {
		t.Fatalf("moved booking: code changed or not re-sent: %v", again)
	}
	if _, err := s.m.LoginCode(ctx, charles, client(1), downtown); !errors.Is(err, ErrNotYetValid) {
		t.Fatalf("old window after move: %v", err)
	}
	s.clk.Set(from.Add(3*time.Hour + time.Minute))
	for i, c := range []string{charles, mary} {
		if _, err := s.m.LoginCode(ctx, c, client(i+1), downtown); err != nil {
			t.Fatalf("new window: %v", err)
		}
	}

	// Cancel it through the API: both codes go, Revoke for both clients.
	s.api(http.MethodPost, "/bookings/"+bid+"/cancel", nil)
	s.sync()
	if got := s.net.Revokes(); len(got) != 4 || !slices.Contains(got[2:], mac(1)) || !slices.Contains(got[2:], mac(2)) {
		t.Fatalf("after cancel: revokes %v", got)
	}
	if _, err := s.m.LoginCode(ctx, charles, client(1), downtown); !errors.Is(err, ErrBadCode) {
		t.Fatalf("cancelled code: %v", err)
	}
	if len(s.guestCodes()) != 1 {
		t.Fatalf("guest codes after cancel: %+v", s.guestCodes())
	}
	var cancelled int
	for _, a := range s.audit("guest.code_revoked") {
		if strings.Contains(a.Cause, "cancelled") {
			cancelled++
		}
	}
	if cancelled != 2 {
		t.Errorf("audit: %d cancellations, want 2", cancelled)
	}
}
