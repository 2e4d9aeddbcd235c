package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/officernd"
	"github.com/deskgate/deskgate/appliance/officernd/officerndsim"
)

const fleetNASSecret = "fleet-nas-secret"

// fleetPort returns a loopback address below the ephemeral range that was
// free a moment ago.
func fleetPort(t *testing.T) string {
	t.Helper()
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			if pc, err := net.ListenPacket("udp", addr); err == nil {
				pc.Close()
				return addr
			}
		}
	}
	t.Fatal("no free port")
	return ""
}

// fleetDaemon is one box: a real deskgated process.
type fleetDaemon struct {
	*daemonEnv
	id     string
	radius string
}

func (d *fleetDaemon) cli() *admin.Client { return admin.Dial(d.sock) }

// TestFleetProcesses: three deskgated processes against one simulator,
// joined with the fleet API the CLI uses. A member created in OfficeRnD
// gets one welcome email across the fleet and its password works (PAP,
// radclient) at every box; box-c killed with SIGKILL misses a member
// created meanwhile and, restarted, relinks and lets that member in with
// the password box-a emailed, and nobody sends a second email.
func TestFleetProcesses(t *testing.T) {
	sim := officerndsim.New(officerndsim.Options{Seed: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	var boxes []*fleetDaemon
	for i, loc := range []string{"Downtown", "Downtown", "Uptown"} {
		dir := t.TempDir()
		d := &fleetDaemon{daemonEnv: &daemonEnv{t: t, dir: dir, sim: sim, sock: filepath.Join(dir, "deskgate.sock")}, id: "box-" + string(rune('a'+i)), radius: fleetPort(t)}
		secret := filepath.Join(dir, "officernd.secret")
		if err := os.WriteFile(secret, []byte(officerndsim.DefaultClientSecret), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := fmt.Sprintf(`data_dir: %[1]s/data
log: {level: warn}
admin: {listen: "127.0.0.1:0", socket: %[2]s}
officernd:
  client_id: %[3]s
  client_secret: {file: %[4]s}
  org_slug: demo-space
  api_base: %[5]s/api/v2
  token_url: %[5]s/oauth/token
sync: {interval: 1h, webhooks: false}
users: {welcome_email: true}
plans:
  - {plan: Hot Desk, group: standard}
groups:
  - {name: standard}
locations:
  - {location: Downtown, network: downtown-secure, vlan: 100, subnet: 10.100.0.0/22}
  - {location: Uptown, network: uptown-secure, vlan: 200, subnet: 10.200.0.0/22}
roaming: {policy: all}
smtp: {mailbox_dir: %[1]s/mailbox, from: wifi@example.com}
radius:
  auth_listen: ["%[6]s"]
  acct_listen: ["127.0.0.1:0"]
  clients:
    - {name: ap, address: 127.0.0.1, secret: {value: %[7]s}, location: %[8]s}
fleet: {listen: "%[9]s", locations: [%[8]s]}
members: {listen: "%[10]s", insecure_http: true}
`, dir, d.sock, officerndsim.DefaultClientID, secret, srv.URL, d.radius, fleetNASSecret, loc, fleetPort(t), fleetPort(t))
		d.cfgPath = filepath.Join(dir, "deskgate.yaml")
		if err := os.WriteFile(d.cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		d.start()
		boxes = append(boxes, d)
	}
	for _, d := range boxes {
		d.waitStatus(30*time.Second, d.id+" ready", func(st admin.Status) bool { return st.Ready })
	}
	ctx := context.Background()
	if err := boxes[0].cli().PostJSON(ctx, "/v1/fleet/init", map[string]string{"box": "box-a"}, nil); err != nil {
		t.Fatalf("fleet init: %v", err)
	}
	for _, d := range boxes[1:] {
		var inv struct{ Token string }
		if err := boxes[0].cli().PostJSON(ctx, "/v1/fleet/invite", map[string]string{"ttl": "5m"}, &inv); err != nil {
			t.Fatal(err)
		}
		if err := d.cli().PostJSON(ctx, "/v1/fleet/join", map[string]string{"token": inv.Token, "box": d.id}, nil); err != nil {
			t.Fatalf("join %s: %v", d.id, err)
		}
	}
	linked := func(d *fleetDaemon) bool {
		var st struct {
			Peers []struct{ Link string }
		}
		if d.cli().Get(ctx, "/v1/fleet/status", nil, &st) != nil || len(st.Peers) != 2 {
			return false
		}
		return st.Peers[0].Link == "up" && st.Peers[1].Link == "up"
	}
	waitUntil(t, 5*time.Second, "every box linked", func() bool { return linked(boxes[0]) && linked(boxes[1]) && linked(boxes[2]) })

	client, err := officernd.New(ctx, officernd.Config{
		APIBase: srv.URL + "/api/v2", TokenURL: srv.URL + "/oauth/token", OrgSlug: "demo-space",
		ClientID: officerndsim.DefaultClientID, ClientSecret: officerndsim.DefaultClientSecret, Scopes: officerndsim.AllScopes,
	})
	if err != nil {
		t.Fatal(err)
	}
	create := func(name, email string) {
		t.Helper()
		ids := sim.Seeded().IDs
		m, err := officernd.Create[officernd.Member](ctx, client, "members", map[string]any{"name": name, "email": email, "location": ids["location:Downtown"]})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02")
		if _, err := officernd.Create[officernd.Membership](ctx, client, "memberships", map[string]any{
			"name": "Hot Desk", "isPersonal": true, "member": m.ID, "plan": ids["plan:Hot Desk"],
			"location": ids["location:Downtown"], "startDate": start + "T00:00:00.000Z",
		}); err != nil {
			t.Fatal(err)
		}
	}
	syncNow := func(ds ...*fleetDaemon) {
		for _, d := range ds {
			if err := d.cli().Post(ctx, "/v1/sync", nil, nil); err != nil {
				t.Fatalf("sync %s: %v", d.id, err)
			}
		}
	}
	passwordOf := func(email string, ds []*fleetDaemon) (string, int) {
		var pw string
		n := 0
		for _, d := range ds {
			files, _ := filepath.Glob(filepath.Join(d.dir, "mailbox", "*.eml"))
			for _, f := range files {
				b, _ := os.ReadFile(f)
				if !strings.Contains(string(b), email) {
					continue
				}
				n++
				for _, l := range strings.Split(string(b), "\n") {
					if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Password:"); ok {
						pw = strings.TrimSpace(v)
					}
				}
			}
		}
		return pw, n
	}

	create("Ida Process", "ida.process@example.net")
	syncNow(boxes...)
	waitUntil(t, 5*time.Second, "the welcome email", func() bool { _, n := passwordOf("ida.process@example.net", boxes); return n > 0 })
	time.Sleep(300 * time.Millisecond) // a second one would be out by now
	pw, n := passwordOf("ida.process@example.net", boxes)
	if n != 1 || pw == "" {
		t.Fatalf("%d welcome emails across three processes, want 1 with a password", n)
	}
	for _, d := range boxes {
		if !fleetPAP(t, d.radius, "ida.process@example.net", pw) {
			t.Errorf("the emailed password is rejected at %s", d.id)
		}
	}

	// kill -9 box-c; a member created meanwhile; box-c comes back.
	c := boxes[2]
	c.kill(syscall.SIGKILL)
	create("Joan Killed", "joan.killed@example.net")
	syncNow(boxes[:2]...)
	waitUntil(t, 5*time.Second, "the second welcome email", func() bool { _, n := passwordOf("joan.killed@example.net", boxes); return n > 0 })
	time.Sleep(300 * time.Millisecond)
	pw2, n2 := passwordOf("joan.killed@example.net", boxes)
	if n2 != 1 {
		t.Fatalf("%d welcome emails for the second member, want 1", n2)
	}
	c.start()
	c.waitStatus(30*time.Second, "box-c ready again", func(st admin.Status) bool { return st.Ready })
	syncNow(c)
	waitUntil(t, 5*time.Second, "box-c relinked", func() bool { return linked(c) })
	if !fleetPAP(t, c.radius, "joan.killed@example.net", pw2) {
		t.Error("after kill -9 and restart, box-c rejects the fleet's password")
	}
	time.Sleep(300 * time.Millisecond)
	if _, n := passwordOf("joan.killed@example.net", boxes); n != 1 {
		t.Errorf("%d welcome emails after box-c's restart, want 1", n)
	}
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fleetPAP asks for user with radclient (PAP) and reports an Accept.
func fleetPAP(t *testing.T, addr, user, pw string) bool {
	t.Helper()
	bin, err := exec.LookPath("radclient")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("radclient missing (apt-get install freeradius-utils)")
		}
		t.Skip("radclient not installed")
	}
	cmd := exec.Command(bin, "-x", "-r", "1", "-t", "2", addr, "auth", fleetNASSecret)
	cmd.Stdin = strings.NewReader(fmt.Sprintf("User-Name = %q\nUser-Password = %q\nNAS-Identifier = \"ap\"\nMessage-Authenticator = 0x00\n", user, pw))
	out, _ := cmd.CombinedOutput()
	return strings.Contains(string(out), "Received Access-Accept")
}
