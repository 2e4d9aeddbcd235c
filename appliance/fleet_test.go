package appliance

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/peer"
	"github.com/deskgate/deskgate/appliance/store"
)

// fleetBox is one daemon of a test fleet.
type fleetBox struct {
	*harness
	id  string
	cli *admin.Client // the CLI's client, over the unix socket
}

// startFleet runs three daemons against one simulator and joins them the
// way an operator would (fleet init, invite, join over the admin API):
// box-a and box-b serve Downtown, box-c Uptown.
func startFleet(t *testing.T, o harnessOpts) []*fleetBox {
	t.Helper()
	nas := startTestNAS(t)
	o.seed = true
	var boxes []*fleetBox
	for i, loc := range []string{"Downtown", "Downtown", "Uptown"} {
		bo := o
		if i > 0 {
			// Only box-a has a public webhook URL (the others are behind NAT).
			bo.simOf, bo.clock, bo.webhooks = boxes[0].harness, boxes[0].clock, false
		}
		bo.extraYAML = radiusYAML(nas.port()) + fmt.Sprintf("fleet:\n  listen: %s\n  locations: [%s]\n", freePort(t), loc)
		h := newHarness(t, bo)
		h.start()
		boxes = append(boxes, &fleetBox{harness: h, id: "box-" + string(rune('a'+i)), cli: admin.Dial(filepath.Join(h.dir, "deskgate.sock"))})
	}
	ctx := context.Background()
	for _, b := range boxes {
		b.waitImport(30 * time.Second)
	}
	var id peer.Identity
	if err := boxes[0].cli.PostJSON(ctx, "/v1/fleet/init", map[string]string{"box": "box-a"}, &id); err != nil {
		t.Fatalf("fleet init: %v", err)
	}
	for _, b := range boxes[1:] {
		var inv struct{ Token string }
		if err := boxes[0].cli.PostJSON(ctx, "/v1/fleet/invite", map[string]string{"ttl": "10m"}, &inv); err != nil {
			t.Fatalf("fleet invite: %v", err)
		}
		if err := b.cli.PostJSON(ctx, "/v1/fleet/join", map[string]string{"token": inv.Token, "box": b.id}, &id); err != nil {
			t.Fatalf("fleet join %s: %v", b.id, err)
		}
	}
	waitLinks(t, boxes)
	return boxes
}

// waitLinks waits until every box reports both of its links up.
func waitLinks(t *testing.T, boxes []*fleetBox) {
	t.Helper()
	ctx := context.Background()
	waitFor(t, 5*time.Second, "every link up", func() bool {
		for _, b := range boxes {
			var st peer.Status
			if err := b.cli.Get(ctx, "/v1/fleet/status", nil, &st); err != nil {
				return false
			}
			up := 0
			for _, p := range st.Peers {
				if p.Link == "up" {
					up++
				}
			}
			if up != 2 {
				return false
			}
		}
		return true
	})
}

// syncAll makes every box poll OfficeRnD now and waits until each has an
// account for email.
func syncAll(t *testing.T, boxes []*fleetBox, email string) {
	t.Helper()
	for _, b := range boxes {
		b.app.syncer.SyncNow(false)
	}
	for _, b := range boxes {
		waitFor(t, 10*time.Second, b.id+" imports "+email, func() bool {
			ex, err := b.app.Explain(email, "")
			return err == nil && ex.Account != nil
		})
	}
}

// welcomes returns the welcome emails to email in every box's mailbox.
func welcomes(t *testing.T, boxes []*fleetBox, email string) []string {
	t.Helper()
	var out []string
	for _, b := range boxes {
		if err := b.app.sender.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(b.dir + "/mailbox/*.eml")
		for _, f := range files {
			body := qpDecode(readFile(t, f))
			if strings.Contains(body, "<"+email+">") || strings.Contains(body, "To: "+email) {
				out = append(out, b.id+": "+body)
			}
		}
	}
	return out
}

func papAccepted(t *testing.T, b *fleetBox, user, pw string) bool {
	t.Helper()
	auth, _ := b.app.radius.srv.Addrs()
	out, ok := radclient(t, auth[0].String(), fmt.Sprintf("User-Name = %q\nUser-Password = %q\nNAS-Identifier = \"downtown-ap\"\nCalling-Station-Id = \"AA-BB-CC-DD-EE-07\"\nMessage-Authenticator = 0x00\n", user, pw))
	if !ok && !strings.Contains(out, "Access-Reject") {
		t.Fatalf("radclient at %s: %s", b.id, out)
	}
	return ok
}

// TestFleetOneWelcomeOnePassword: three daemons in a fleet; a member
// created in the simulator gets exactly one welcome email across the
// fleet, and the password in it authenticates (radclient PAP) at all
// three boxes.
func TestFleetOneWelcomeOnePassword(t *testing.T) {
	boxes := startFleet(t, harnessOpts{})
	email := "mary.fleetwood@example.net"
	createMember(t, boxes[2].harness, "Mary Fleetwood", email, "Hot Desk", "Downtown")
	syncAll(t, boxes, email)
	time.Sleep(300 * time.Millisecond) // let any stray email be queued
	mails := welcomes(t, boxes, email)
	if len(mails) != 1 {
		t.Fatalf("%d welcome emails across the fleet, want 1:\n%s", len(mails), strings.Join(mails, "\n----\n"))
	}
	if !strings.HasPrefix(mails[0], "box-a: ") {
		t.Errorf("welcome sent by %s, want box-a (lowest id serving Downtown)", strings.SplitN(mails[0], ":", 2)[0])
	}
	var pw string
	for _, l := range strings.Split(mails[0], "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Password:"); ok {
			pw = strings.TrimSpace(v)
		}
	}
	if pw == "" {
		t.Fatal("no password in the welcome email")
	}
	for _, b := range boxes {
		if !papAccepted(t, b, email, pw) {
			t.Errorf("the emailed password is rejected at %s", b.id)
		}
		if papAccepted(t, b, email, pw+"x") {
			t.Errorf("a wrong password is accepted at %s", b.id)
		}
	}
	// Members imported before the fleet existed (each box emailed its own
	// password then) keep the password of the box that created the fleet.
	ada := "ada.lovelace@example.com"
	adaPW := passwordFromMailbox(t, boxes[0].harness, ada)
	waitFor(t, 2*time.Second, "box-a's passwords adopted fleet-wide", func() bool {
		auth, _ := boxes[2].app.radius.srv.Addrs()
		_, ok := radclient(t, auth[0].String(), fmt.Sprintf("User-Name = %q\nUser-Password = %q\nNAS-Identifier = \"downtown-ap\"\nMessage-Authenticator = 0x00\n", ada, adaPW))
		return ok
	})
	// PEAP-MSCHAPv2 with one supplicant configuration for every box: the
	// fleet CA and the shared server name (each box restarted after
	// joining, to present its fleet-signed RADIUS certificate).
	for _, b := range boxes {
		b.stop()
		b.start()
	}
	waitLinks(t, boxes)
	ca := filepath.Join(boxes[0].dir, "data", "fleet", "ca.crt")
	name := boxes[0].app.Config().RADIUS.EAP.ServerName
	peap := fmt.Sprintf("key_mgmt=IEEE8021X\neap=PEAP\nidentity=%q\nanonymous_identity=\"anonymous\"\npassword=%q\nca_cert=%q\ndomain_match=%q\nphase1=\"peaplabel=0\"\nphase2=\"auth=MSCHAPV2\"", email, pw, ca, name)
	for _, b := range boxes {
		waitFor(t, 5*time.Second, "radius listening", func() bool { a, _ := b.app.radius.srv.Addrs(); return len(a) > 0 })
		auth, _ := b.app.radius.srv.Addrs()
		if ok, out := eapol(t, b.harness, auth[0].String(), peap); !ok {
			t.Errorf("PEAP at %s with the fleet CA and name failed:\n%s", b.id, tailLines(out, 30))
		}
	}
}

var onboardLinkRe = regexp.MustCompile(`http://[^\s"<>]+/onboard\?t=[A-Za-z0-9_=\-]+`)

// TestFleetMemberPasswordEverywhere: with member-chosen passwords, the
// password a member sets on box A's onboarding page works at box C within
// a second (the NT hash replicates; the plaintext never leaves A).
func TestFleetMemberPasswordEverywhere(t *testing.T) {
	boxes := startFleet(t, harnessOpts{passwordPol: "member"})
	email := "dorothy.fleetwood@example.net"
	createMember(t, boxes[0].harness, "Dorothy Fleetwood", email, "Hot Desk", "Downtown")
	syncAll(t, boxes, email)
	mails := welcomes(t, boxes, email)
	if len(mails) != 1 {
		t.Fatalf("%d welcome emails across the fleet, want 1", len(mails))
	}
	link := onboardLinkRe.FindString(mails[0])
	u, err := url.Parse(link)
	if err != nil || link == "" {
		t.Fatalf("no onboarding link in %s", mails[0])
	}
	pw := "Correct-Horse-Battery-42"
	set := time.Now()
	resp, err := http.PostForm("http://"+u.Host+"/onboard", url.Values{"t": {u.Query().Get("t")}, "password": {pw}, "password2": {pw}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("onboarding: %s", resp.Status)
	}
	if !papAccepted(t, boxes[0], email, pw) {
		t.Fatal("the chosen password fails at box-a itself")
	}
	c := boxes[2]
	waitFor(t, time.Second, "password at box-c", func() bool {
		ex, err := c.app.Explain(email, "")
		return err == nil && ex.Account != nil && ex.Account.PasswordSource == "member" && ex.Account.PasswordSet
	})
	took := time.Since(set)
	t.Logf("member-chosen password set at box-a → usable at box-c after %s", took)
	for _, b := range boxes[1:] {
		if !papAccepted(t, b, email, pw) {
			t.Errorf("the chosen password is rejected at %s", b.id)
		}
	}
}

// TestFleetWelcomeTakeover: the owner box (box-a, lowest id serving
// Downtown) is down when a Downtown member is created; after 10 minutes
// box-b takes over and sends the one welcome email (with the password
// every box holds), and box-a, back up, never sends a second one.
func TestFleetWelcomeTakeover(t *testing.T) {
	boxes := startFleet(t, harnessOpts{})
	a := boxes[0]
	a.stop()
	email := "hedy.fleetwood@example.net"
	createMember(t, boxes[1].harness, "Hedy Fleetwood", email, "Hot Desk", "Downtown")
	syncAll(t, boxes[1:], email)
	time.Sleep(300 * time.Millisecond)
	if n := len(welcomes(t, boxes[1:], email)); n != 0 {
		t.Fatalf("%d welcome emails while the owner may still send it", n)
	}
	boxes[1].clock.Jump(11 * time.Minute)
	var mails []string
	waitFor(t, 3*time.Second, "takeover email", func() bool { mails = welcomes(t, boxes[1:], email); return len(mails) > 0 })
	time.Sleep(300 * time.Millisecond)
	if mails = welcomes(t, boxes[1:], email); len(mails) != 1 || !strings.HasPrefix(mails[0], "box-b: ") {
		t.Fatalf("want one welcome email from box-b, got %d:\n%s", len(mails), strings.Join(mails, "\n----\n"))
	}
	var pw string
	for _, l := range strings.Split(mails[0], "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Password:"); ok {
			pw = strings.TrimSpace(v)
		}
	}
	for _, b := range boxes[1:] {
		if !papAccepted(t, b, email, pw) {
			t.Errorf("the taken-over email's password is rejected at %s", b.id)
		}
	}
	// The owner comes back, hears of the mark and imports the member.
	a.start()
	waitFor(t, 5*time.Second, "box-a relinked", func() bool {
		var st peer.Status
		return a.cli.Get(context.Background(), "/v1/fleet/status", nil, &st) == nil && len(st.Peers) == 2 && st.Peers[0].Link == "up" && st.Peers[1].Link == "up"
	})
	syncAll(t, boxes[:1], email)
	time.Sleep(300 * time.Millisecond)
	if mails = welcomes(t, boxes, email); len(mails) != 1 {
		t.Fatalf("%d welcome emails after the owner came back, want 1", len(mails))
	}
	if !papAccepted(t, a, email, pw) {
		t.Error("the password is rejected at box-a")
	}
}

// TestFleetWebhookRelay: OfficeRnD delivers webhooks only to box-a; box-a
// relays the verified deliveries, and box-c (polling once an hour) has
// the new member within a second.
func TestFleetWebhookRelay(t *testing.T) {
	boxes := startFleet(t, harnessOpts{webhooks: true})
	boxes[0].waitWebhookRegistered()
	c := boxes[2]
	if c.app.Config().Sync.Interval < time.Hour {
		t.Fatalf("box-c polls every %s", c.app.Config().Sync.Interval)
	}
	email := "ada.relay@example.net"
	createMember(t, boxes[0].harness, "Ada Relay", email, "Hot Desk", "Uptown")
	took := waitFor(t, time.Second, "box-c allows the member", func() bool { return c.allowed(email) })
	t.Logf("OfficeRnD change → applied at box-c (relayed by box-a) in %s", took)
	if st := c.app.syncer.Status().WebhookStats; st.Applied == 0 {
		t.Errorf("box-c applied no relayed webhook: %+v", st)
	}
	if runs, _ := c.app.syncer.RunLogs(10); len(runs) > 1 {
		t.Logf("box-c sync runs: %d", len(runs))
	}
}

// acctAt sends an Accounting-Request (Start or Stop) for a device of user
// to box b, as the Downtown access point.
func acctAt(t *testing.T, b *fleetBox, user, class, session, mac string, status rfc2866.AcctStatusType) {
	t.Helper()
	req := radius.New(radius.CodeAccountingRequest, []byte(nasSecret))
	rfc2865.Class_Set(req, []byte(class))
	rfc2865.UserName_SetString(req, user)
	rfc2866.AcctStatusType_Set(req, status)
	rfc2866.AcctSessionID_SetString(req, session)
	rfc2865.CallingStationID_SetString(req, mac)
	rfc2865.NASIdentifier_SetString(req, "downtown-ap")
	_, acct := b.app.radius.srv.Addrs()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if resp, err := radius.Exchange(ctx, req, acct[0].String()); err != nil || resp.Code != radius.CodeAccountingResponse {
		t.Fatalf("accounting at %s: %v %v", b.id, err, resp)
	}
}

func papFrom(t *testing.T, b *fleetBox, user, pw, mac string) bool {
	t.Helper()
	auth, _ := b.app.radius.srv.Addrs()
	out, ok := radclient(t, auth[0].String(), fmt.Sprintf("User-Name = %q\nUser-Password = %q\nNAS-Identifier = \"downtown-ap\"\nCalling-Station-Id = %q\nMessage-Authenticator = 0x00\n", user, pw, mac))
	if !ok && !strings.Contains(out, "Access-Reject") {
		t.Fatalf("radclient at %s: %s", b.id, out)
	}
	return ok
}

// TestFleetDeviceLimit: a member with a limit of 3 devices has 3 online
// at box-a; a 4th device is refused at box-b while the links are up (one
// of the three roaming to box-b is fine), and admitted within a second of
// one of them going offline at box-a.
func TestFleetDeviceLimit(t *testing.T) {
	boxes := startFleet(t, harnessOpts{})
	a, b := boxes[0], boxes[1]
	email := "lin.devices@example.net"
	createMember(t, a.harness, "Lin Devices", email, "Hot Desk", "Downtown")
	syncAll(t, boxes, email)
	mails := welcomes(t, boxes, email)
	var pw string
	for _, l := range strings.Split(strings.Join(mails, "\n"), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Password:"); ok {
			pw = strings.TrimSpace(v)
		}
	}
	ex, err := a.app.Explain(email, "downtown-ap")
	if err != nil || ex.Decision.MaxDevices != 3 {
		t.Fatalf("explain: %v (max devices %d)", err, ex.Decision.MaxDevices)
	}
	var class string
	for _, l := range ex.Reply {
		if v, ok := strings.CutPrefix(l, "Class = "); ok {
			class = strings.Trim(v, `"`)
		}
	}
	macs := []string{"AA-BB-CC-00-00-01", "AA-BB-CC-00-00-02", "AA-BB-CC-00-00-03"}
	for i, m := range macs {
		if !papFrom(t, a, email, pw, m) {
			t.Fatalf("device %d refused at box-a", i+1)
		}
		acctAt(t, a, email, class, fmt.Sprintf("dl-%d", i), m, rfc2866.AcctStatusType_Value_Start)
	}
	waitFor(t, 2*time.Second, "box-b sees 3 devices", func() bool { return len(b.app.fleet.RemoteDevices(ex.Member.ID)) == 3 })
	if papFrom(t, b, email, pw, "AA-BB-CC-00-00-04") {
		t.Fatal("a 4th device was admitted at box-b with 3 online at box-a")
	}
	if !papFrom(t, b, email, pw, macs[0]) {
		t.Error("a device online at box-a was refused when roaming to box-b")
	}
	stopped := time.Now()
	acctAt(t, a, email, class, "dl-2", macs[2], rfc2866.AcctStatusType_Value_Stop)
	waitFor(t, time.Second, "the 4th device admitted at box-b", func() bool { return papFrom(t, b, email, pw, "AA-BB-CC-00-00-04") })
	t.Logf("device offline at box-a → a new device admitted at box-b after %s", time.Since(stopped))
}

// TestFleetAuditAndSentMarks: the audit trail of every box is at every
// box, with its origin box (what `deskgate audit` shows; HLC order is
// checked by appliance/peer's TestFleetAuditTrail);
// and an email with the same fleet-wide name queued at two boxes (an
// owner that queued it and a box that took it over) goes out once: the
// second box drops it unsent when the first box's "sent" mark is there.
func TestFleetAuditAndSentMarks(t *testing.T) {
	boxes := startFleet(t, harnessOpts{})
	email := "grace.fleetwood@example.net"
	createMember(t, boxes[0].harness, "Grace Fleetwood", email, "Hot Desk", "Uptown")
	syncAll(t, boxes, email)
	ctx := context.Background()
	var trail []struct {
		Action string
		Box    string
	}
	waitFor(t, 2*time.Second, "every box's account.created in box-c's trail", func() bool {
		if err := boxes[2].cli.Get(ctx, "/v1/audit", url.Values{"member": {email}}, &trail); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, e := range trail {
			if e.Action == "account.created" {
				seen[e.Box] = true
			}
		}
		return seen["box-a"] && seen["box-b"] && seen["box-c"]
	})

	once := "guest_code/test-once-1"
	for _, b := range boxes[1:] {
		if err := b.app.store.Update(func(tx *store.Tx) error {
			_, err := tx.EnqueueEmail(model.Email{Kind: "welcome", Once: once, To: "once@example.net", Username: "once",
				Data: map[string]string{"name": "Once"}, Secret: map[string]string{"password": "pw-" + b.id}})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(welcomes(t, boxes[1:2], "once@example.net")); n != 1 {
		t.Fatalf("box-b sent %d, want 1", n)
	}
	c := boxes[2]
	waitFor(t, time.Second, "box-b's mark at box-c", func() bool { by, _ := c.app.fleet.SentBy(once); return by == "box-b" })
	if n := len(welcomes(t, boxes, "once@example.net")); n != 1 {
		t.Fatalf("%d copies of one message across the fleet, want 1", n)
	}
	if n, _ := c.app.store.OutboxLen(); n != 0 {
		t.Errorf("box-c's outbox still holds %d", n)
	}
	if st := c.app.sender.Stats(); st.Skipped != 1 {
		t.Errorf("box-c skipped %d, want 1", st.Skipped)
	}
}

var uptownNAS = regexp.MustCompile(`(?s)    - name: uptown-ap\n.*?coa_port: \d+\n`)

// fleetCfg is a fleet document: the harness's plans, its Downtown
// location, Uptown unless dropped, and the standard group's device limit.
func fleetCfg(maxDevices int, uptown bool, planGroup string) string {
	doc := fmt.Sprintf(`plans:
  - {plan: Hot Desk, group: %s}
  - {plan: Dedicated Desk, group: premium}
  - {plan: Private Office, group: premium, static_ip: true}
  - {plan: Virtual Office, group: minimal, enabled: false}
  - {plan: Day Pass, group: daypass, duration: 24h}
groups:
  - {name: standard, bandwidth_down: 20mbit, bandwidth_up: 5mbit, max_devices: %d}
  - {name: premium, bandwidth_down: 100mbit, bandwidth_up: 20mbit, max_devices: 5}
  - {name: minimal, bandwidth_down: 5mbit, bandwidth_up: 1mbit, max_devices: 1}
  - {name: daypass, bandwidth_down: 10mbit, bandwidth_up: 2mbit, max_devices: 2}
locations:
  - {location: Downtown, network: downtown-secure, vlan: 100, subnet: 10.100.0.0/22, static_pool: 10.100.3.0/24}
`, planGroup, maxDevices)
	if uptown {
		doc += "  - {location: Uptown, network: uptown-secure, vlan: 200, subnet: 10.200.0.0/22, static_pool: 10.200.3.0/24}\n"
	}
	return doc + "roaming:\n  policy: single\n"
}

func standardMax(b *fleetBox) int {
	g, _ := b.app.Config().Group("standard")
	return g.MaxDevices
}

func fleetStatus(t *testing.T, b *fleetBox) peer.Status {
	t.Helper()
	var st peer.Status
	if err := b.cli.Get(context.Background(), "/v1/fleet/status", nil, &st); err != nil {
		t.Logf("%s: fleet status: %v", b.id, err) // e.g. still starting: an empty status
	}
	return st
}

// TestFleetConfigPush: `fleet config push` is two-phase. Box-a and box-b
// serve Downtown only (no Uptown NAS); box-c serves Uptown. A document
// without Uptown validates at a and b but not at c, so the push is
// refused, naming box-c, and changes nothing anywhere; one the pushing box
// itself refuses names it. A good one reaches all three. A box that was
// down gets the fleet's document by anti-entropy and applies it only if it
// validates there, else keeps its configuration and says so in fleet
// status and doctor; the next good push applies everywhere.
func TestFleetConfigPush(t *testing.T) {
	boxes := startFleet(t, harnessOpts{})
	a, c := boxes[0], boxes[2]
	for _, b := range boxes[:2] {
		raw := readFile(t, b.cfgPath)
		if !uptownNAS.MatchString(raw) {
			t.Fatal("no uptown-ap NAS in the test config")
		}
		if err := os.WriteFile(b.cfgPath, []byte(uptownNAS.ReplaceAllString(raw, "")), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	push := func(doc string) (peer.PushResult, error) {
		var res peer.PushResult
		err := a.cli.PostJSON(ctx, "/v1/fleet/config", map[string]string{"doc": doc}, &res)
		return res, err
	}
	unchanged := func(want int) {
		t.Helper()
		for _, b := range boxes {
			if got := standardMax(b); got != want {
				t.Errorf("%s: standard max_devices %d, want %d", b.id, got, want)
			}
		}
	}

	_, err := push(fleetCfg(4, false, "standard"))
	if err == nil || !strings.Contains(err.Error(), "box-c") || !strings.Contains(err.Error(), "Uptown") {
		t.Fatalf("push without Uptown: %v, want refused by box-c over Uptown", err)
	}
	_, err = push(fleetCfg(4, true, "no-such-group"))
	if err == nil || !strings.Contains(err.Error(), "by box-a") || !strings.Contains(err.Error(), "no-such-group") {
		t.Fatalf("push with an undefined group: %v, want refused by box-a", err)
	}
	if _, err := push("radius:\n  clients: []\n"); err == nil || !strings.Contains(err.Error(), "per box") {
		t.Fatalf("push of a per-box section: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	unchanged(3)
	for _, b := range boxes {
		if st := fleetStatus(t, b); st.Config != nil {
			t.Errorf("%s holds a fleet configuration after refused pushes: %+v", b.id, st.Config)
		}
	}

	res, err := push(fleetCfg(4, true, "standard"))
	if err != nil || res.Version != 1 || !res.Applied || len(res.Votes) != 3 {
		t.Fatalf("good push: %+v %v", res, err)
	}
	took := waitFor(t, 2*time.Second, "max_devices 4 everywhere", func() bool {
		return standardMax(boxes[0]) == 4 && standardMax(boxes[1]) == 4 && standardMax(boxes[2]) == 4
	})
	t.Logf("fleet configuration applied at all three boxes within %s", took)

	// box-c is down for the next push, which it cannot take.
	c.stop()
	res, err = push(fleetCfg(6, false, "standard"))
	if err != nil || res.Version != 2 || len(res.Unreachable) != 1 || res.Unreachable[0] != "box-c" {
		t.Fatalf("push with box-c down: %+v %v", res, err)
	}
	waitFor(t, 2*time.Second, "version 2 at a and b", func() bool { return standardMax(boxes[0]) == 6 && standardMax(boxes[1]) == 6 })
	c.start()
	waitFor(t, 5*time.Second, "box-c refuses version 2", func() bool {
		st := fleetStatus(t, c)
		return st.Config != nil && st.Config.Version == 2 && st.Config.State == "refused" && strings.Contains(st.Config.Reason, "Uptown")
	})
	if got := standardMax(c); got != 4 {
		t.Errorf("box-c: max_devices %d, want 4 (version 1 kept)", got)
	}
	if _, ok := c.app.Config().LocationFor("", "Uptown"); !ok {
		t.Error("box-c lost its location")
	}
	var checks []admin.Check
	if err := c.cli.Get(ctx, "/v1/doctor", nil, &checks); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ch := range checks {
		found = found || (ch.Name == "fleet configuration" && ch.Warn && strings.Contains(ch.Detail, "refused"))
	}
	if !found {
		t.Errorf("doctor does not say box-c refused the fleet configuration: %+v", checks)
	}

	waitLinks(t, boxes)
	if res, err = push(fleetCfg(5, true, "standard")); err != nil || res.Version != 3 {
		t.Fatalf("third push: %+v %v", res, err)
	}
	waitFor(t, 2*time.Second, "version 3 everywhere", func() bool {
		return standardMax(boxes[0]) == 5 && standardMax(boxes[1]) == 5 && standardMax(boxes[2]) == 5
	})
	waitFor(t, time.Second, "box-c's status says version 3 applied", func() bool {
		st := fleetStatus(t, c)
		return st.Config != nil && st.Config.State == "applied" && st.Config.Version == 3
	})
}

// TestFleetPartitionSwitch: the demo's partition switch. Without
// DESKGATE_DEMO_SWITCHES the route answers 404 and cuts nothing; with it,
// `fleet partition box-a box-b` on box-c takes box-c's links down on
// every box, a password set at box-a meanwhile is not at box-c, and
// `fleet heal` brings the links back and the password over.
func TestFleetPartitionSwitch(t *testing.T) {
	ctx := context.Background()
	off := startFleet(t, harnessOpts{})
	var v struct{ Cut []string }
	err := off[2].cli.PostJSON(ctx, "/v1/fleet/partition", map[string][]string{"cut": {"box-a"}}, &v)
	if err == nil || !strings.Contains(err.Error(), "DESKGATE_DEMO_SWITCHES") {
		t.Fatalf("partition without the demo switches: %v, want a refusal naming DESKGATE_DEMO_SWITCHES", err)
	}
	waitLinks(t, off) // nothing was cut

	boxes := startFleet(t, harnessOpts{demo: true})
	c := boxes[2]
	if err := c.cli.PostJSON(ctx, "/v1/fleet/partition", map[string][]string{"cut": {"bad id!"}}, &v); err == nil {
		t.Fatal("partition with a bad box id accepted")
	}
	if err := c.cli.PostJSON(ctx, "/v1/fleet/partition", map[string][]string{"cut": {"box-a", "box-b"}}, &v); err != nil || len(v.Cut) != 2 {
		t.Fatalf("partition: %+v %v", v, err)
	}
	linkTo := func(b *fleetBox, peerID string) string {
		var st peer.Status
		if err := b.cli.Get(ctx, "/v1/fleet/status", nil, &st); err != nil {
			t.Fatal(err)
		}
		for _, p := range st.Peers {
			if p.Box == peerID {
				return p.Link
			}
		}
		return ""
	}
	waitFor(t, 5*time.Second, "box-c's links down at every box", func() bool {
		return linkTo(boxes[0], "box-c") != "up" && linkTo(boxes[1], "box-c") != "up" &&
			linkTo(c, "box-a") != "up" && linkTo(c, "box-b") != "up"
	})
	// Stays down: box-a and box-b keep dialing, box-c refuses.
	time.Sleep(1500 * time.Millisecond)
	if linkTo(boxes[0], "box-c") == "up" {
		t.Fatal("box-a linked with box-c during the partition")
	}
	if linkTo(boxes[0], "box-b") != "up" {
		t.Fatal("the partition cut box-a from box-b too")
	}
	if err := c.cli.PostJSON(ctx, "/v1/fleet/partition", map[string][]string{"cut": nil}, &v); err != nil || len(v.Cut) != 0 {
		t.Fatalf("heal: %+v %v", v, err)
	}
	waitLinks(t, boxes)
}
