package appliance

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"

	"github.com/deskgate/deskgate/appliance/officernd"
)

const nasSecret = "nas-shared-secret"

// testNAS is an access point's Dynamic Authorization port: it answers
// Disconnect-Requests with an ACK and records when they arrived.
type testNAS struct {
	conn   net.PacketConn
	got    atomic.Int64 // unix nanos of the first Disconnect-Request
	user   atomic.Value
	signed atomic.Bool
}

func startTestNAS(t *testing.T) *testNAS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &testNAS{conn: pc}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			p, err := radius.Parse(append([]byte(nil), buf[:k]...), []byte(nasSecret))
			if err != nil || p.Code != radius.CodeDisconnectRequest {
				continue
			}
			// A correctly signed request: the Request Authenticator checks
			// out under the shared secret.
			n.signed.Store(radius.IsAuthenticRequest(buf[:k], []byte(nasSecret)))
			n.got.CompareAndSwap(0, time.Now().UnixNano())
			n.user.Store(rfc2865.UserName_GetString(p))
			resp := p.Response(radius.CodeDisconnectACK)
			b, err := resp.Encode()
			if err == nil {
				pc.WriteTo(b, addr)
			}
		}
	}()
	return n
}

func (n *testNAS) port() int { return n.conn.LocalAddr().(*net.UDPAddr).Port }

func radiusYAML(coaPort int) string {
	return fmt.Sprintf(`radius:
  auth_listen: ["127.0.0.1:0"]
  acct_listen: ["127.0.0.1:0"]
  clients:
    - name: downtown-ap
      address: 127.0.0.1
      identifier: downtown-ap
      secret: {value: %[1]s}
      location: Downtown
      vendor: mikrotik
      coa: disconnect
      coa_port: %[2]d
    - name: uptown-ap
      address: 127.0.0.1
      identifier: uptown-ap
      secret: {value: %[1]s}
      location: Uptown
      vendor: wispr
      coa: disconnect
      coa_port: %[2]d
`, nasSecret, coaPort)
}

// TestDisconnectOnMembershipEnd: a member with a live session whose
// membership ends in OfficeRnD is disconnected at the NAS within a second
// of the webhook, and the ACK is recorded.
func TestDisconnectOnMembershipEnd(t *testing.T) {
	nas := startTestNAS(t)
	h := newHarness(t, harnessOpts{seed: true, webhooks: true, extraYAML: radiusYAML(nas.port())})
	app := h.start()
	h.waitImport(30 * time.Second)
	h.waitWebhookRegistered()
	waitFor(t, 5*time.Second, "radius listening", func() bool { a, b := app.radius.srv.Addrs(); return len(a) > 0 && len(b) > 0 })
	_, acctAddrs := app.radius.srv.Addrs()

	m, ms := createMember(t, h, "Roaming Laptop", "roaming.laptop@example.com", "Hot Desk", "Downtown")
	waitFor(t, 3*time.Second, "member allowed", func() bool { return h.allowed(m.Email) })

	// The access point reports the member's session, echoing the Class of
	// the Access-Accept (here: as explain shows it).
	ex, err := app.Explain(m.Email, "downtown-ap")
	if err != nil {
		t.Fatal(err)
	}
	var class string
	for _, l := range ex.Reply {
		if v, ok := strings.CutPrefix(l, "Class = "); ok {
			class = strings.Trim(v, `"`)
		}
	}
	if !strings.HasPrefix(class, "dg1;") {
		t.Fatalf("no Class in the reply: %v", ex.Reply)
	}
	req := radius.New(radius.CodeAccountingRequest, []byte(nasSecret))
	rfc2865.Class_Set(req, []byte(class))
	rfc2865.UserName_SetString(req, m.Email)
	rfc2866.AcctStatusType_Set(req, rfc2866.AcctStatusType_Value_Start)
	rfc2866.AcctSessionID_SetString(req, "sess-1")
	rfc2865.CallingStationID_SetString(req, "AA-BB-CC-00-11-22")
	rfc2865.NASIdentifier_SetString(req, "downtown-ap")
	rfc2869.AcctInterimInterval_Set(req, 300)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if resp, err := radius.Exchange(ctx, req, acctAddrs[0].String()); err != nil || resp.Code != radius.CodeAccountingResponse {
		t.Fatalf("accounting start: %v %v", err, resp)
	}
	waitFor(t, 2*time.Second, "live session", func() bool { return len(app.radius.srv.Sessions("")) == 1 })

	// A change that leaves access as it was disconnects nobody.
	if _, err := officernd.Update[officernd.Member](context.Background(), h.admin, "members", m.ID, map[string]any{"phone": "+1 212 555 0199"}); err != nil {
		t.Fatal(err)
	}
	before := h.app.syncer.Status().WebhookStats.Applied
	waitFor(t, 3*time.Second, "phone change applied", func() bool { return h.app.syncer.Status().WebhookStats.Applied > before })
	time.Sleep(200 * time.Millisecond)
	if nas.got.Load() != 0 {
		t.Fatal("a phone number change disconnected the member")
	}

	// End the membership in OfficeRnD; the webhook does the rest.
	ended := time.Now()
	yesterday := h.clock.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02")
	if _, err := officernd.Update[officernd.Membership](context.Background(), h.admin, "memberships", ms.ID, map[string]any{"endDate": yesterday + "T00:00:00.000Z", "type": "fixed"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "Disconnect-Request at the NAS", func() bool { return nas.got.Load() != 0 })
	took := time.Duration(nas.got.Load() - ended.UnixNano())
	t.Logf("membership ended via the API → Disconnect-Request at the NAS after %s", took)
	if took > time.Second {
		t.Errorf("Disconnect after %s, want within 1s", took)
	}
	if !nas.signed.Load() {
		t.Error("Disconnect-Request not correctly signed with the NAS secret")
	}
	if u, _ := nas.user.Load().(string); u != m.Email {
		t.Errorf("Disconnect-Request for %q, want %q", u, m.Email)
	}
	waitFor(t, 3*time.Second, "ACK recorded in the audit log", func() bool {
		es, _ := app.Store().AuditOf(m.ID, 50)
		for _, e := range es {
			if strings.Contains(strings.ToLower(e.Action+" "+e.Cause), "ack") {
				return true
			}
		}
		return false
	})
}

// passwordFromMailbox reads a member's generated password from their
// welcome email in the demo mailbox.
func passwordFromMailbox(t *testing.T, h *harness, email string) string {
	t.Helper()
	if err := h.app.sender.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(h.dir + "/mailbox/*.eml")
	for _, f := range files {
		b := qpDecode(readFile(t, f))
		if !strings.Contains(b, "To: "+email) && !strings.Contains(b, "<"+email+">") {
			continue
		}
		for _, l := range strings.Split(b, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Password:"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	t.Fatalf("no welcome email with a password for %s", email)
	return ""
}

// radclient sends one Access-Request with radclient (freeradius-utils) and
// returns its output and whether an Access-Accept came back.
func radclient(t *testing.T, addr string, attrs string) (string, bool) {
	t.Helper()
	bin, err := exec.LookPath("radclient")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("radclient missing (apt-get install freeradius-utils)")
		}
		t.Skip("radclient not installed")
	}
	cmd := exec.Command(bin, "-x", "-r", "1", "-t", "2", addr, "auth", nasSecret)
	cmd.Stdin = strings.NewReader(attrs)
	out, _ := cmd.CombinedOutput()
	return string(out), strings.Contains(string(out), "Received Access-Accept")
}

// TestRadiusWithStore: radclient against the daemon's RADIUS server with
// decisions from the imported space.
func TestRadiusWithStore(t *testing.T) {
	nas := startTestNAS(t)
	h := newHarness(t, harnessOpts{seed: true, extraYAML: radiusYAML(nas.port())})
	app := h.start()
	h.waitImport(30 * time.Second)
	waitFor(t, 5*time.Second, "radius listening", func() bool { a, _ := app.radius.srv.Addrs(); return len(a) > 0 })
	auth, _ := app.radius.srv.Addrs()
	addr := auth[0].String()
	ada := "ada.lovelace@example.com"
	pw := passwordFromMailbox(t, h, ada)
	req := func(user, pass, nasID string) string {
		return fmt.Sprintf("User-Name = %q\nUser-Password = %q\nNAS-Identifier = %q\nCalling-Station-Id = \"AA-BB-CC-DD-EE-01\"\nMessage-Authenticator = 0x00\n", user, pass, nasID)
	}
	out, ok := radclient(t, addr, req(ada, pw, "downtown-ap"))
	if !ok {
		t.Fatalf("Ada (Hot Desk, Downtown) rejected at Downtown:\n%s", out)
	}
	for _, want := range []string{"Tunnel-Type", "VLAN", "Tunnel-Private-Group-Id", "100", "Filter-Id", "standard", "Session-Timeout", "Mikrotik-Rate-Limit"} {
		if !strings.Contains(out, want) {
			t.Errorf("Accept lacks %q:\n%s", want, out)
		}
	}
	if out, ok := radclient(t, addr, req(ada, pw, "uptown-ap")); ok || !strings.Contains(out, "Access-Reject") {
		t.Errorf("Ada accepted at Uptown under roaming single:\n%s", out)
	}
	if out, ok := radclient(t, addr, req(ada, pw+"x", "downtown-ap")); ok || !strings.Contains(out, "Access-Reject") {
		t.Errorf("wrong password not rejected:\n%s", out)
	}
	if out, ok := radclient(t, addr, req("edsger.dijkstra@example.org", "whatever-pass", "uptown-ap")); ok || !strings.Contains(out, "Access-Reject") {
		t.Errorf("ended member (no account) not rejected:\n%s", out)
	}
	// Margaret has a Hot Desk at Uptown and a Dedicated Desk at Downtown:
	// under roaming "single" each location admits her with the membership
	// held there.
	margaret := "margaret.hamilton@example.com"
	mpw := passwordFromMailbox(t, h, margaret)
	if out, ok := radclient(t, addr, req(margaret, mpw, "downtown-ap")); !ok || !strings.Contains(out, `Filter-Id = "premium"`) {
		t.Errorf("Margaret at Downtown (Dedicated Desk) not accepted as premium:\n%s", out)
	}
	if out, ok := radclient(t, addr, req(margaret, mpw, "uptown-ap")); !ok || !strings.Contains(out, `Filter-Id = "standard"`) {
		t.Errorf("Margaret at Uptown (Hot Desk) not accepted as standard:\n%s", out)
	}

	// explain shows the same reply.
	ex, err := app.Explain(ada, "downtown-ap")
	if err != nil || len(ex.Reply) == 0 || ex.Reply[0] != "Access-Accept" {
		t.Fatalf("explain reply: %v %v", err, ex.Reply)
	}
}

// TestReloadAddsNAS: a NAS added to the config file is served after a
// reload, without a restart.
func TestReloadAddsNAS(t *testing.T) {
	nas := startTestNAS(t)
	one := strings.SplitN(radiusYAML(nas.port()), "    - name: uptown-ap", 2)[0]
	h := newHarness(t, harnessOpts{seed: true, extraYAML: one})
	app := h.start()
	h.waitImport(30 * time.Second)
	waitFor(t, 5*time.Second, "radius listening", func() bool { a, _ := app.radius.srv.Addrs(); return len(a) > 0 })
	auth, _ := app.radius.srv.Addrs()
	grace := "grace.hopper@example.com" // Hot Desk, Uptown
	pw := passwordFromMailbox(t, h, grace)
	req := fmt.Sprintf("User-Name = %q\nUser-Password = %q\nNAS-Identifier = \"uptown-ap\"\nMessage-Authenticator = 0x00\n", grace, pw)
	if out, ok := radclient(t, auth[0].String(), req); ok {
		t.Fatalf("accepted before the Uptown NAS exists (Downtown NAS, roaming single):\n%s", out)
	}
	cfg := readFile(t, h.cfgPath)
	cfg = strings.Replace(cfg, one, radiusYAML(nas.port()), 1)
	if err := os.WriteFile(h.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := app.Reload(); err != nil {
		t.Fatal(err)
	}
	if out, ok := radclient(t, auth[0].String(), req); !ok {
		t.Fatalf("Grace rejected at the Uptown NAS added by reload:\n%s", out)
	}
}
