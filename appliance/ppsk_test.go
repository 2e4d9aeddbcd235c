package appliance

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/officernd"
)

// TestPPSKDeviceLifecycle: the operator registers a member's printer over
// the admin API (bad input refused, nothing changed); the access point's
// MAC authentication (radclient, as hostapd sends it) gets the member's
// passphrase, salt-encrypted, and VLAN; registrations beyond the member's
// device limit are refused; when the membership ends in OfficeRnD the
// printer's session is disconnected at the NAS within a second and its
// next MAC authentication is refused; the passphrase is not in the
// database file nor in the log.
func TestPPSKDeviceLifecycle(t *testing.T) {
	nas := startTestNAS(t)
	h := newHarness(t, harnessOpts{seed: true, webhooks: true, extraYAML: radiusYAML(nas.port())})
	app := h.start()
	h.waitImport(30 * time.Second)
	h.waitWebhookRegistered()
	waitFor(t, 5*time.Second, "radius listening", func() bool { a, b := app.radius.srv.Addrs(); return len(a) > 0 && len(b) > 0 })
	authAddrs, acctAddrs := app.radius.srv.Addrs()
	c := admin.Dial(app.Config().Admin.Socket)
	ctx := context.Background()

	m, ms := createMember(t, h, "Printer Owner", "printer.owner@example.com", "Hot Desk", "Downtown")
	waitFor(t, 3*time.Second, "member allowed", func() bool { return h.allowed(m.Email) })

	// Bad input: a clear error, nothing registered.
	var v []admin.Device
	for _, bad := range []url.Values{
		{"user": {m.Email}, "mac": {"not-a-mac"}, "name": {"printer"}},
		{"user": {m.Email}, "mac": {"01:00:5e:00:00:01"}, "name": {"printer"}},
		{"user": {m.Email}, "mac": {"aa:bb:cc:00:11:22"}, "name": {""}},
		{"user": {"nobody@example.com"}, "mac": {"aa:bb:cc:00:11:22"}, "name": {"printer"}},
	} {
		if err := c.Post(ctx, "/v1/devices", bad, &v); err == nil {
			t.Errorf("devices add %v: accepted", bad)
		}
	}
	if err := c.Get(ctx, "/v1/devices", nil, &v); err != nil || len(v) != 0 {
		t.Fatalf("after bad input: %v %v", v, err)
	}

	if err := c.Post(ctx, "/v1/devices", url.Values{"user": {m.Email}, "mac": {"AA-BB-CC-00-11-22"}, "name": {"Office printer"}}, &v); err != nil {
		t.Fatal(err)
	}
	if len(v) != 1 || v[0].MAC != "aa:bb:cc:00:11:22" || len(v[0].Passphrase) < 8 {
		t.Fatalf("registered: %+v", v)
	}
	pass := v[0].Passphrase

	// The access point's MAC authentication, as hostapd sends it.
	macReq := func(mac string) string {
		u := strings.ReplaceAll(mac, ":", "")
		return fmt.Sprintf("User-Name = %q\nUser-Password = %q\nCalling-Station-Id = %q\nCalled-Station-Id = \"02-00-00-00-03-00:downtown-iot\"\nNAS-Identifier = \"downtown-ap\"\nMessage-Authenticator = 0x00\n",
			u, u, strings.ToUpper(strings.ReplaceAll(mac, ":", "-")))
	}
	out, ok := radclient(t, authAddrs[0].String(), macReq("aa:bb:cc:00:11:22"))
	if !ok {
		t.Fatalf("MAC authentication of the registered printer:\n%s", out)
	}
	if !strings.Contains(out, "Tunnel-Password:0 = \""+pass+"\"") || !strings.Contains(out, "Tunnel-Private-Group-Id:0 = \"100\"") {
		t.Fatalf("accept lacks the member's passphrase or VLAN 100:\n%s", out)
	}
	if out, ok := radclient(t, authAddrs[0].String(), macReq("aa:bb:cc:00:99:99")); ok || !strings.Contains(out, "Device not registered") {
		t.Fatalf("unknown MAC:\n%s", out)
	}

	// The Hot Desk group allows 3 devices: two more register, the fourth is refused.
	for i, mac := range []string{"aa:bb:cc:00:11:23", "aa:bb:cc:00:11:24"} {
		if err := c.Post(ctx, "/v1/devices", url.Values{"user": {m.Email}, "mac": {mac}, "name": {fmt.Sprint("tv ", i)}}, &v); err != nil {
			t.Fatal(err)
		}
		if v[0].Passphrase != pass {
			t.Errorf("second device of the member got another passphrase")
		}
	}
	err := c.Post(ctx, "/v1/devices", url.Values{"user": {m.Email}, "mac": {"aa:bb:cc:00:11:25"}, "name": {"one too many"}}, &v)
	if err == nil || !strings.Contains(err.Error(), "device limit") {
		t.Fatalf("fourth device: %v, want a device-limit refusal", err)
	}

	// The printer's accounting session: User-Name its MAC, no Class (the
	// member is found through the registration).
	req := radius.New(radius.CodeAccountingRequest, []byte(nasSecret))
	rfc2865.UserName_SetString(req, "aabbcc001122")
	rfc2866.AcctStatusType_Set(req, rfc2866.AcctStatusType_Value_Start)
	rfc2866.AcctSessionID_SetString(req, "ppsk-1")
	rfc2865.CallingStationID_SetString(req, "AA-BB-CC-00-11-22")
	rfc2865.NASIdentifier_SetString(req, "downtown-ap")
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if resp, err := radius.Exchange(actx, req, acctAddrs[0].String()); err != nil || resp.Code != radius.CodeAccountingResponse {
		t.Fatalf("accounting start: %v %v", err, resp)
	}
	waitFor(t, 2*time.Second, "the printer's live session under its member", func() bool { return len(app.radius.srv.Sessions(m.ID)) == 1 })

	ended := time.Now()
	yesterday := h.clock.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02")
	if _, err := officernd.Update[officernd.Membership](ctx, h.admin, "memberships", ms.ID, map[string]any{"endDate": yesterday + "T00:00:00.000Z", "type": "fixed"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "Disconnect-Request at the NAS", func() bool { return nas.got.Load() != 0 })
	took := time.Duration(nas.got.Load() - ended.UnixNano())
	t.Logf("membership ended via the API → Disconnect-Request for the PPSK printer after %s", took)
	if took > time.Second {
		t.Errorf("Disconnect after %s, want within 1s", took)
	}
	if u, _ := nas.user.Load().(string); u != "" {
		t.Errorf("Disconnect-Request with User-Name %q; a MAC-authenticated device's is named by Acct-Session-Id and Calling-Station-Id only (hostapd's DAS finds no PSK station by User-Name)", u)
	}
	waitFor(t, 3*time.Second, "member no longer allowed", func() bool { return !h.allowed(m.Email) })
	if out, ok := radclient(t, authAddrs[0].String(), macReq("aa:bb:cc:00:11:22")); ok || strings.Contains(out, pass) {
		t.Fatalf("the ended member's printer still gets in:\n%s", out)
	}

	// Removing a device frees it; the passphrase is sealed at rest and never logged.
	if err := c.Post(ctx, "/v1/devices/remove", url.Values{"mac": {"aa:bb:cc:00:11:24"}}, &v); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, "/v1/devices", url.Values{"user": {m.Email}}, &v); err != nil || len(v) != 2 {
		t.Fatalf("after remove: %d devices, %v", len(v), err)
	}
	raw, err := os.ReadFile(h.app.Config().DataDir + "/deskgate.db")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), pass) {
		t.Error("the passphrase is in the database file in plaintext")
	}
	if strings.Contains(h.logs.String(), pass) {
		t.Error("the passphrase is in the log")
	}
}

// TestMemberDeviceForm: a member registers a device on the setup page
// (same-origin POST with the page's token and the browser's cookie) and
// sees the passphrase; a POST without the cookie, with a forged token or
// cross-origin registers nothing; bad input is refused with a message.
func TestMemberDeviceForm(t *testing.T) {
	nas := startTestNAS(t)
	h := newHarness(t, harnessOpts{seed: true, webhooks: true, extraYAML: radiusYAML(nas.port())})
	app := h.start()
	h.waitImport(30 * time.Second)
	m, _ := createMember(t, h, "Form Owner", "form.owner@example.com", "Hot Desk", "Downtown")
	waitFor(t, 3*time.Second, "member allowed", func() bool { return h.allowed(m.Email) })
	c := memberClient(t, app)
	link := app.ProfileURL(m.Email)
	addURL := h.memberURL + "/wifi/devices"
	origin := map[string]string{"Origin": h.memberURL}

	page := fetchPage(t, c, "GET", link, nil, nil)
	form := formFields(page.body, `action="/wifi/devices"`)
	if form == nil || form.Get("csrf") == "" {
		t.Fatalf("setup page has no device form with a token:\n%.2000s", page.body)
	}
	form.Set("name", "Living room TV")
	form.Set("mac", "a4:83:e7:12:34:56")
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("csrf", strings.Repeat("A", len(form.Get("csrf"))))
	for what, p := range map[string]pageResp{
		"without the cookie": fetchPage(t, &http.Client{Transport: c.Transport}, "POST", addURL, form, origin),
		"forged token":       fetchPage(t, c, "POST", addURL, bad, origin),
		"cross-origin":       fetchPage(t, c, "POST", addURL, form, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}),
	} {
		if p.code != http.StatusForbidden {
			t.Errorf("POST %s: %d, want 403", what, p.code)
		}
	}
	badMAC := url.Values{}
	for k, v := range form {
		badMAC[k] = v
	}
	badMAC.Set("mac", "12:34")
	if p := fetchPage(t, c, "POST", addURL, badMAC, origin); p.code != 400 || !strings.Contains(p.body, "not a MAC address") {
		t.Errorf("bad MAC: %d %.300s", p.code, p.body)
	}
	if ds, _ := app.ppsk.List(m.ID); len(ds) != 0 {
		t.Fatalf("refused POSTs registered %d devices", len(ds))
	}

	p := fetchPage(t, c, "POST", addURL, form, origin)
	if p.code != 200 || !strings.Contains(p.body, "Device registered") {
		t.Fatalf("register: %d %.500s", p.code, p.body)
	}
	ds, err := app.ppsk.List(m.ID)
	if err != nil || len(ds) != 1 || ds[0].MAC != "a4:83:e7:12:34:56" || ds[0].AddedBy != "member" {
		t.Fatalf("devices %+v %v", ds, err)
	}
	if !strings.Contains(p.body, ds[0].Passphrase) {
		t.Error("the answer does not show the passphrase")
	}
	if n := auditCount(t, app, "device.registered", m.Email); n != 1 {
		t.Errorf("%d device.registered audit entries, want 1", n)
	}
	// The setup page now lists it, with a remove form that works.
	page = fetchPage(t, c, "GET", link, nil, nil)
	if !strings.Contains(page.body, "Living room TV") || !strings.Contains(page.body, ds[0].Passphrase) {
		t.Fatal("setup page does not list the device and passphrase")
	}
	rm := formFields(page.body, `action="/wifi/devices/remove"`)
	if p := fetchPage(t, c, "POST", h.memberURL+"/wifi/devices/remove", rm, origin); p.code != 200 {
		t.Fatalf("remove: %d %.300s", p.code, p.body)
	}
	if ds, _ := app.ppsk.List(m.ID); len(ds) != 0 {
		t.Fatalf("after remove: %+v", ds)
	}

	// Devices take slots of the device limit (Hot Desk: 3): with three
	// registered, neither a certificate nor a certificate profile is issued.
	for _, mac := range []string{"02:00:00:00:aa:01", "02:00:00:00:aa:02", "02:00:00:00:aa:03"} {
		if _, err := app.ppsk.Register(m.ID, mac, "tv", "cli"); err != nil {
			t.Fatal(err)
		}
	}
	if p := postClientCert(t, c, link); p.code != http.StatusConflict {
		t.Errorf("certificate with the limit taken by devices: %d, want 409", p.code)
	}
	page = fetchPage(t, c, "GET", link, nil, nil)
	if p := fetchPage(t, c, "POST", h.memberURL+"/wifi/eaptls", formFields(page.body, `action="/wifi/eaptls"`), origin); p.code != http.StatusConflict {
		t.Errorf("certificate profile with the limit taken by devices: %d, want 409", p.code)
	}
	if n := len(app.radius.ca.ListIssued(m.Email)); n != 0 {
		t.Errorf("%d certificates issued beyond the device limit", n)
	}
}

// TestPPSKPrivateOffice: the members of a company listed under
// radius.ppsk.offices share one passphrase, and their devices are put on
// the office's VLAN; a member outside it has a passphrase of their own.
func TestPPSKPrivateOffice(t *testing.T) {
	nas := startTestNAS(t)
	yaml := radiusYAML(nas.port()) + "  ppsk:\n    offices:\n      - {company: Acme Robotics, vlan: 310}\n"
	h := newHarness(t, harnessOpts{seed: true, extraYAML: yaml})
	app := h.start()
	h.waitImport(30 * time.Second)
	waitFor(t, 5*time.Second, "radius listening", func() bool { a, _ := app.radius.srv.Addrs(); return len(a) > 0 })
	authAddrs, _ := app.radius.srv.Addrs()
	c := admin.Dial(app.Config().Admin.Socket)
	ctx := context.Background()
	add := func(user, mac string) admin.Device {
		t.Helper()
		var v []admin.Device
		if err := c.Post(ctx, "/v1/devices", url.Values{"user": {user}, "mac": {mac}, "name": {"printer"}}, &v); err != nil {
			t.Fatalf("register %s for %s: %v", mac, user, err)
		}
		return v[0]
	}
	radia := add("radia.perlman@example.com", "02:ac:00:00:00:01")
	ken := add("ken.thompson@example.com", "02:ac:00:00:00:02")
	ada := add("ada.lovelace@example.com", "02:ad:00:00:00:01")
	if !strings.HasPrefix(radia.Scope, "office:") || radia.Scope != ken.Scope || radia.Passphrase != ken.Passphrase || radia.VLAN != 310 {
		t.Fatalf("office members' devices: %+v %+v", radia, ken)
	}
	if ada.Scope != "member:"+ada.Member || ada.Passphrase == radia.Passphrase {
		t.Fatalf("a member outside the office: %+v", ada)
	}
	u := "02ac00000002"
	out, ok := radclient(t, authAddrs[0].String(), fmt.Sprintf("User-Name = %q\nUser-Password = %q\nNAS-Identifier = \"downtown-ap\"\nMessage-Authenticator = 0x00\n", u, u))
	if !ok || !strings.Contains(out, "Tunnel-Private-Group-Id:0 = \"310\"") || !strings.Contains(out, "Tunnel-Password:0 = \""+radia.Passphrase+"\"") {
		t.Fatalf("office device's accept lacks the office VLAN or passphrase:\n%s", out)
	}
}
