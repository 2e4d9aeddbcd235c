package appliance

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"layeh.com/radius/rfc2866"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/guests"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/officernd"
	"github.com/deskgate/deskgate/appliance/officernd/officerndsim"
	"github.com/deskgate/deskgate/appliance/store"
)

// TestFleetEAPTLSAcrossBoxes: a member's EAP-TLS certificate issued at
// box-a (from box-a's issuing CA, an intermediate of the fleet CA) works
// at box-b with one supplicant configuration (fleet CA + shared server
// name); box-c lists it; the operator revokes it at box-c, box-b knows
// within a second and refuses it.
func TestFleetEAPTLSAcrossBoxes(t *testing.T) {
	boxes := startFleet(t, harnessOpts{})
	// The fleet RADIUS certificate and the issuing CA take effect at the
	// next start, as after fleet init or join.
	for _, b := range boxes {
		b.stop()
		b.start()
	}
	waitLinks(t, boxes)
	a, b, c := boxes[0], boxes[1], boxes[2]
	email := "tess.certwood@example.net"
	createMember(t, a.harness, "Tess Certwood", email, "Hot Desk", "Downtown")
	syncAll(t, boxes, email)
	waitFor(t, 3*time.Second, "member allowed at box-a", func() bool { return a.allowed(email) })

	p := postClientCert(t, memberClient(t, a.app), a.app.ProfileURL(email))
	if p.code != 200 || !strings.Contains(p.body, "PRIVATE KEY") {
		t.Fatalf("client certificate at box-a: %d %.300s", p.code, p.body)
	}
	var chain []*x509.Certificate
	for blk, rest := pem.Decode([]byte(p.body)); blk != nil; blk, rest = pem.Decode(rest) {
		if blk.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			chain = append(chain, cert)
		}
	}
	fleetCA := filepath.Join(a.dir, "data", "fleet", "ca.crt")
	if len(chain) != 2 || !chain[1].IsCA || chain[1].Subject.CommonName != "deskgate EAP-TLS issuing CA box-a" {
		t.Fatalf("want the certificate and box-a's issuing CA, got %d certificates", len(chain))
	}
	serial := chain[0].SerialNumber.Text(16)
	pemFile := filepath.Join(t.TempDir(), "client.pem")
	if err := os.WriteFile(pemFile, []byte(p.body), 0o600); err != nil {
		t.Fatal(err)
	}
	network := fmt.Sprintf("key_mgmt=IEEE8021X\neap=TLS\nidentity=%q\nca_cert=%q\ndomain_match=%q\nclient_cert=%q\nprivate_key=%q",
		email, fleetCA, a.app.Config().RADIUS.EAP.ServerName, pemFile, pemFile)
	authB, _ := b.app.radius.srv.Addrs()
	if ok, out := eapol(t, b.harness, authB[0].String(), network); !ok {
		t.Fatalf("EAP-TLS at box-b with a certificate issued at box-a failed:\n%s", tailLines(out, 40))
	}

	// box-c knows the certificate (replicated: serial, identity, expiry,
	// fingerprint; never the key) and revokes it by its serial.
	ctx := context.Background()
	var listed []admin.ClientCert
	waitFor(t, time.Second, "box-c lists the certificate", func() bool {
		listed = nil
		return c.cli.Get(ctx, "/v1/certs", url.Values{"user": {email}}, &listed) == nil && len(listed) == 1
	})
	if listed[0].Serial != serial || !listed[0].Live {
		t.Fatalf("box-c lists %+v, want serial %s live", listed[0], serial)
	}
	if fc := c.app.fleet.FleetCerts(email); len(fc) != 1 || fc[0].Box != "box-a" || fc[0].Member == "" || fc[0].Fingerprint != fmt.Sprintf("%x", sha256.Sum256(chain[0].Raw)) {
		t.Fatalf("box-c's record of the certificate: %+v", fc)
	}
	revoked := time.Now()
	var out []admin.ClientCert
	if err := c.cli.Post(ctx, "/v1/certs/revoke", url.Values{"target": {serial}}, &out); err != nil {
		t.Fatalf("revoke at box-c: %v", err)
	}
	if len(out) != 1 || out[0].Live || out[0].Revoked.IsZero() {
		t.Fatalf("revoke at box-c answered %+v", out)
	}
	waitFor(t, time.Second, "box-b refuses the revoked certificate", func() bool {
		_, err := b.app.radius.ca.CertIdentity(chain[0])
		return err != nil && strings.Contains(err.Error(), "revoked")
	})
	t.Logf("certificate revoked at box-c → refused at box-b after %s", time.Since(revoked))
	if ok, _ := eapol(t, b.harness, authB[0].String(), network); ok {
		t.Fatal("EAP-TLS at box-b succeeded with a certificate revoked at box-c")
	}
	for _, x := range boxes {
		if l := x.app.radius.ca.ListIssued(email); len(l) != 1 || l[0].Current {
			t.Errorf("%s lists %+v, want the one revoked certificate", x.id, l)
		}
	}
}

// guestMails returns the guest code emails to email in every box's
// mailbox, as "box-x: <code>".
func guestMails(t *testing.T, boxes []*fleetBox, email string) []string {
	t.Helper()
	var out []string
	for _, b := range boxes {
		if err := b.app.sender.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(b.dir + "/mailbox/*.eml")
		for _, f := range files {
			body := qpDecode(readFile(t, f))
			if (strings.Contains(body, "<"+email+">") || strings.Contains(body, "To: "+email)) && strings.Contains(body, "WiFi guest code") {
				out = append(out, b.id+": "+codeRE.FindString(body))
			}
		}
	}
	return out
}

// codesOf returns what box b's guest manager holds for member (host or
// holder) of kind.
func codesOf(t *testing.T, b *fleetBox, member, kind string) []guests.CodeInfo {
	t.Helper()
	b.app.guests.mu.Lock()
	mgr := b.app.guests.mgr
	b.app.guests.mu.Unlock()
	if mgr == nil {
		return nil
	}
	all, err := mgr.Codes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []guests.CodeInfo
	for _, c := range all {
		if c.Member == member && c.Kind == kind {
			out = append(out, c)
		}
	}
	return out
}

func guestLogin(t *testing.T, b *fleetBox, code, mac, location string) (guests.Session, error) {
	t.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	loc, ok := b.app.res.LocationID(location)
	if !ok {
		t.Fatalf("%s knows no location %s", b.id, location)
	}
	return b.app.guests.mgr.LoginCode(context.Background(), code, guests.Client{MAC: hw}, loc)
}

// TestFleetGuestCodes: a meeting-room visitor gets one code email for
// the whole fleet (from box-a, the lowest box serving the booking's
// location), and that code works at box-a and box-b (Downtown) but not
// at box-c (Uptown); its device limit (2) holds across boxes; a day pass
// first used at box-a has the same end at box-b.
func TestFleetGuestCodes(t *testing.T) {
	boxes := startFleet(t, harnessOpts{})
	a, b, c := boxes[0], boxes[1], boxes[2]
	ctx := context.Background()
	ids := a.sim.Seeded().IDs
	visitorEmail := "grace.guestwood@example.net"
	v, err := officernd.Create[officernd.Visitor](ctx, a.admin, "visitors", map[string]any{
		"name": "Grace Guestwood", "email": visitorEmail, "member": ids["member:hotdesk-downtown"], "type": "preregistration"})
	if err != nil {
		t.Fatal(err)
	}
	start := a.clock.Now().Add(10 * time.Minute).Truncate(time.Minute)
	if _, err := officernd.Create[officernd.Booking](ctx, a.admin, "bookings", map[string]any{
		"title": "Fleet review", "resource": ids["resource:Boardroom"], "member": ids["member:hotdesk-downtown"],
		"start": start.UTC().Format(time.RFC3339), "end": start.Add(time.Hour).UTC().Format(time.RFC3339), "visitors": []string{v.ID}}); err != nil {
		t.Fatal(err)
	}
	for _, x := range boxes {
		x.app.syncer.SyncNow(false)
	}
	host := ids["member:hotdesk-downtown"]
	for _, x := range boxes {
		waitFor(t, 10*time.Second, x.id+" holds the visitor's code", func() bool { return hasVisitorCode(t, x, host, v.ID) })
	}
	time.Sleep(300 * time.Millisecond) // let any stray email be queued
	mails := guestMails(t, boxes, visitorEmail)
	if len(mails) != 1 || !strings.HasPrefix(mails[0], "box-a: ") {
		t.Fatalf("want one guest code email, from box-a; got %q", mails)
	}
	code := strings.TrimPrefix(mails[0], "box-a: ")
	if _, err := guestLogin(t, a, code, "02:00:00:00:0a:01", "Downtown"); err != nil {
		t.Fatalf("code at box-a: %v", err)
	}
	if _, err := guestLogin(t, c, code, "02:00:00:00:0a:02", "Uptown"); !errors.Is(err, guests.ErrWrongLocation) {
		t.Fatalf("code at box-c (Uptown): %v, want %v", err, guests.ErrWrongLocation)
	}
	seed := "b/" + findBooking(t, b, host, v.ID) + "/" + v.ID
	waitFor(t, time.Second, "box-b knows box-a's device", func() bool { return len(fleetDevices(t, b, seed)) == 1 })
	if _, err := guestLogin(t, b, code, "02:00:00:00:0a:02", "Downtown"); err != nil {
		t.Fatalf("code at box-b: %v", err)
	}
	if _, err := guestLogin(t, b, code, "02:00:00:00:0a:03", "Downtown"); !errors.Is(err, guests.ErrDeviceLimit) {
		t.Fatalf("a third device at box-b: %v, want %v", err, guests.ErrDeviceLimit)
	}
	waitFor(t, time.Second, "box-a knows box-b's device", func() bool { return len(fleetDevices(t, a, seed)) == 2 })
	if _, err := guestLogin(t, a, code, "02:00:00:00:0a:03", "Downtown"); !errors.Is(err, guests.ErrDeviceLimit) {
		t.Fatalf("a third device at box-a: %v, want %v", err, guests.ErrDeviceLimit)
	}
	if _, err := guestLogin(t, b, code, "02:00:00:00:0a:01", "Downtown"); err != nil {
		t.Fatalf("box-a's device roaming to box-b: %v", err)
	}

	// A day pass bought now, first used at box-a, ends at the same
	// moment at box-b where it is used an hour later.
	annie := ids["member:hotdesk-downtown-2"]
	now := a.clock.Now()
	if _, err := officernd.Create[officernd.Pass](ctx, a.admin, "passes", map[string]any{
		"member": annie, "plan": ids["plan:"+officerndsim.PlanDayPass], "count": 1, "resourceType": "hotdesk",
		"startDate": now.UTC().Format("2006-01-02"), "validFrom": now.Add(-time.Hour).UTC().Format(time.RFC3339),
		"validTo": now.Add(7 * 24 * time.Hour).UTC().Format(time.RFC3339), "properties": map[string]any{"location": ids["location:Downtown"]}}); err != nil {
		t.Fatal(err)
	}
	for _, x := range boxes {
		x.app.syncer.SyncNow(false)
	}
	for _, x := range boxes[:2] {
		waitFor(t, 10*time.Second, x.id+" holds Annie's day pass", func() bool { return len(codesOf(t, x, annie, guests.KindDayPass)) == 1 })
	}
	annieEmail := annieAddress(t, a, annie)
	var passMails []string
	waitFor(t, 3*time.Second, "the day pass email", func() bool { passMails = guestMails(t, boxes, annieEmail); return len(passMails) > 0 })
	time.Sleep(300 * time.Millisecond)
	if passMails = guestMails(t, boxes, annieEmail); len(passMails) != 1 {
		t.Fatalf("want one day pass email, got %q", passMails)
	}
	passCode := passMails[0][strings.Index(passMails[0], ": ")+2:]
	before := a.clock.Now()
	sa, err := guestLogin(t, a, passCode, "02:00:00:00:0b:01", "Downtown")
	if err != nil {
		t.Fatalf("day pass at box-a: %v", err)
	}
	if sa.Until.Before(before.Add(24*time.Hour)) || sa.Until.After(a.clock.Now().Add(24*time.Hour)) {
		t.Fatalf("day pass at box-a ends %s, want 24 hours after its first use at %s", sa.Until, before)
	}
	waitFor(t, time.Second, "box-b learns the first use", func() bool {
		cs := codesOf(t, b, annie, guests.KindDayPass)
		return len(cs) == 1 && cs[0].Until.Equal(sa.Until)
	})
	a.clock.Jump(time.Hour)
	sb, err := guestLogin(t, b, passCode, "02:00:00:00:0b:02", "Downtown")
	if err != nil {
		t.Fatalf("day pass at box-b: %v", err)
	}
	if !sb.Until.Equal(sa.Until) {
		t.Fatalf("day pass ends %s at box-b, %s at box-a", sb.Until, sa.Until)
	}
}

func fleetDevices(t *testing.T, b *fleetBox, seed string) []string {
	t.Helper()
	var out []string
	if err := b.app.Store().View(func(tx *store.Tx) error {
		var err error
		out, err = b.app.fleet.GuestDevices(tx, seed)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func findBooking(t *testing.T, b *fleetBox, host, visitor string) string {
	t.Helper()
	for _, ci := range codesOf(t, b, host, guests.KindGuest) {
		if ci.VisitorID == visitor {
			return ci.BookingID
		}
	}
	t.Fatalf("%s holds no code for visitor %s", b.id, visitor)
	return ""
}

func annieAddress(t *testing.T, b *fleetBox, member string) string {
	t.Helper()
	var email string
	if err := b.app.Store().View(func(tx *store.Tx) error {
		m, err := tx.GetMember(member)
		email = m.Email
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return email
}

// TestFleetGuestCodeTakeover: the owner of a Downtown visitor's code
// (box-a) is down when the booking is made; the others wait, and 10
// minutes on box-b takes over and sends the one email; box-a, back up,
// never sends a second, and the code works at box-a.
func TestFleetGuestCodeTakeover(t *testing.T) {
	boxes := startFleet(t, harnessOpts{})
	a, b := boxes[0], boxes[1]
	a.stop()
	ctx := context.Background()
	ids := b.sim.Seeded().IDs
	visitorEmail := "hedy.guestwood@example.net"
	v, err := officernd.Create[officernd.Visitor](ctx, b.admin, "visitors", map[string]any{
		"name": "Hedy Guestwood", "email": visitorEmail, "member": ids["member:hotdesk-downtown"], "type": "preregistration"})
	if err != nil {
		t.Fatal(err)
	}
	start := b.clock.Now().Add(2 * time.Hour).Truncate(time.Minute)
	if _, err := officernd.Create[officernd.Booking](ctx, b.admin, "bookings", map[string]any{
		"title": "While box-a is down", "resource": ids["resource:Boardroom"], "member": ids["member:hotdesk-downtown"],
		"start": start.UTC().Format(time.RFC3339), "end": start.Add(time.Hour).UTC().Format(time.RFC3339), "visitors": []string{v.ID}}); err != nil {
		t.Fatal(err)
	}
	host := ids["member:hotdesk-downtown"]
	for _, x := range boxes[1:] {
		x.app.syncer.SyncNow(false)
		waitFor(t, 10*time.Second, x.id+" holds the visitor's code", func() bool { return hasVisitorCode(t, x, host, v.ID) })
	}
	time.Sleep(300 * time.Millisecond)
	if m := guestMails(t, boxes[1:], visitorEmail); len(m) != 0 {
		t.Fatalf("sent while the owner may still send it: %q", m)
	}
	b.clock.Jump(11 * time.Minute)
	var mails []string
	waitFor(t, 3*time.Second, "the taken-over email", func() bool { mails = guestMails(t, boxes[1:], visitorEmail); return len(mails) > 0 })
	time.Sleep(300 * time.Millisecond)
	if mails = guestMails(t, boxes[1:], visitorEmail); len(mails) != 1 || !strings.HasPrefix(mails[0], "box-b: ") {
		t.Fatalf("want one email from box-b, got %q", mails)
	}
	a.start()
	waitLinks(t, boxes)
	a.app.syncer.SyncNow(false)
	waitFor(t, 10*time.Second, "box-a holds the visitor's code", func() bool { return hasVisitorCode(t, a, host, v.ID) })
	time.Sleep(300 * time.Millisecond)
	if mails = guestMails(t, boxes, visitorEmail); len(mails) != 1 {
		t.Fatalf("%d emails after the owner came back, want 1: %q", len(mails), mails)
	}
	a.clock.Jump(start.Add(-5 * time.Minute).Sub(a.clock.Now()))
	if _, err := guestLogin(t, a, strings.TrimPrefix(mails[0], "box-b: "), "02:00:00:00:0c:01", "Downtown"); err != nil {
		t.Fatalf("the taken-over code at box-a: %v", err)
	}
}

func hasVisitorCode(t *testing.T, b *fleetBox, host, visitor string) bool {
	t.Helper()
	for _, ci := range codesOf(t, b, host, guests.KindGuest) {
		if ci.VisitorID == visitor {
			return true
		}
	}
	return false
}

// TestFleetMemberDayPass: a member's day pass first used by WiFi at
// box-a (RADIUS accounting) ends at the same moment at box-b, also when
// the member logs in at box-b an hour later: the earliest first use wins.
func TestFleetMemberDayPass(t *testing.T) {
	a, b, email, class, firstUse := dayPassFleet(t)
	ctx := context.Background()
	acctAt(t, a, email, class, "dp-a", "AA-BB-CC-00-0D-01", rfc2866.AcctStatusType_Value_Start)
	a.app.activateDayPasses(ctx) // what its 15 s ticker does
	first := firstUse(a)
	if first.IsZero() {
		t.Fatal("box-a did not start the pass at the first WiFi login")
	}
	waitFor(t, time.Second, "box-b learns the first use", func() bool { return firstUse(b).Equal(first) })
	a.clock.Jump(time.Hour)
	acctAt(t, b, email, class, "dp-b", "AA-BB-CC-00-0D-02", rfc2866.AcctStatusType_Value_Start)
	b.app.activateDayPasses(ctx)
	if got := firstUse(b); !got.Equal(first) {
		t.Fatalf("box-b moved the first use to %s (box-a's was %s)", got, first)
	}
	exA, _ := a.app.Explain(email, "downtown-ap")
	exB, _ := b.app.Explain(email, "downtown-ap")
	if want := first.Add(24 * time.Hour); !exA.Decision.ValidUntil.Equal(want) || !exB.Decision.ValidUntil.Equal(want) {
		t.Fatalf("the pass ends %s at box-a and %s at box-b, want %s at both", exA.Decision.ValidUntil, exB.Decision.ValidUntil, want)
	}
}

// TestFleetMemberDayPassLaterLoginTicksFirst: a login at box-b a minute
// after box-a's reaches the fleet first (box-b's 15 s tick came first);
// box-a's tick then moves the pass's first use back to its earlier login,
// at both boxes (found by the process-level Jepsen test).
func TestFleetMemberDayPassLaterLoginTicksFirst(t *testing.T) {
	a, b, email, class, firstUse := dayPassFleet(t)
	ctx := context.Background()
	acctAt(t, a, email, class, "dp-a", "AA-BB-CC-00-0E-01", rfc2866.AcctStatusType_Value_Start)
	early := a.clock.Now()
	a.clock.Jump(time.Minute)
	acctAt(t, b, email, class, "dp-b", "AA-BB-CC-00-0E-02", rfc2866.AcctStatusType_Value_Start)
	b.app.activateDayPasses(ctx) // box-b's tick first
	late := firstUse(b)
	if late.IsZero() || !late.After(early) {
		t.Fatalf("box-b's first use %s, want its own login after %s", late, early)
	}
	waitFor(t, time.Second, "box-a learns box-b's first use", func() bool { return firstUse(a).Equal(late) })
	a.app.activateDayPasses(ctx)
	got := firstUse(a)
	if !got.Before(late) || got.After(early) {
		t.Fatalf("box-a's first use %s after its own tick, want its login (at or before %s, not box-b's %s)", got, early, late)
	}
	waitFor(t, time.Second, "box-b learns the earlier first use", func() bool { return firstUse(b).Equal(got) })
}

// dayPassFleet starts two boxes for the day-pass tests: the member with
// the seeded, unused day pass, the Class box-a's decision gives her, and
// a reader of the pass's first use at a box.
func dayPassFleet(t *testing.T) (a, b *fleetBox, email, class string, firstUse func(*fleetBox) time.Time) {
	t.Helper()
	boxes := startFleet(t, harnessOpts{})
	a, b = boxes[0], boxes[1]
	email = "frances.allen@example.org"
	passID := a.sim.Seeded().IDs["pass:valid"]
	firstUse = func(x *fleetBox) time.Time {
		var p model.Pass
		if err := x.app.Store().View(func(tx *store.Tx) error { var err error; p, err = tx.GetPass(passID); return err }); err != nil {
			t.Fatal(err)
		}
		return p.FirstUse
	}
	if !firstUse(a).IsZero() || !firstUse(b).IsZero() {
		t.Fatal("the pass is used before the test")
	}
	ex, err := a.app.Explain(email, "downtown-ap")
	if err != nil || !ex.Decision.Allowed {
		t.Fatalf("explain at box-a: %v %+v", err, ex.Decision)
	}
	for _, l := range ex.Reply {
		if v, ok := strings.CutPrefix(l, "Class = "); ok {
			class = strings.Trim(v, `"`)
		}
	}
	return a, b, email, class, firstUse
}
