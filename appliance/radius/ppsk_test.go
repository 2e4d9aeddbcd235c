package radius

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
)

const testPassphrase = "k7mq-x3vh-9pr2-tc4w"

// macAuthAttrs is the MAC-authentication request hostapd (wpa_psk_radius,
// macaddr_acl=2) sends: User-Name and User-Password the station's MAC in
// lower-case hex, Calling-Station-Id as IEEE 802.1X writes it.
func macAuthAttrs(mac string) []string {
	u := strings.ReplaceAll(strings.ToLower(mac), ":", "")
	return []string{
		`User-Name = "` + u + `"`, `User-Password = "` + u + `"`,
		`Calling-Station-Id = "` + strings.ToUpper(strings.ReplaceAll(mac, ":", "-")) + `"`,
		`Called-Station-Id = "02-00-00-00-03-00:deskgate-iot"`,
		`Message-Authenticator = 0x00`,
	}
}

// TestPPSKVendorGolden checks, per vendor profile, the Access-Accept a
// registered device's MAC authentication gets, as radclient decodes it
// with FreeRADIUS's dictionaries (which also decrypts the salt-encrypted
// Tunnel-Password and Aruba-MPSK-Passphrase with the shared secret),
// against testdata/ppsk-<vendor>.golden.
func TestPPSKVendorGolden(t *testing.T) {
	t.Parallel()
	needRadclient(t)
	for _, vendor := range []string{VendorHostapd, VendorCisco, VendorAruba, VendorRuckus, VendorFortinet} {
		t.Run(vendor, func(t *testing.T) {
			cs := defaultClients()
			cs[0].Vendor = vendor
			e := startServer(t, cs, nil)
			e.dir.PutDevice("alice", Device{MAC: "aa:bb:cc:00:11:22", Name: "printer", Passphrase: testPassphrase, Scope: "member"})

			r := radclient(t, e.auth, "auth", testSecret, macAuthAttrs("aa:bb:cc:00:11:22")...)
			if r.Code != "Access-Accept" {
				t.Fatalf("code %q\n%s", r.Code, r.Out)
			}
			var got strings.Builder
			got.WriteString("# vendor profile " + vendor + ": MAC authentication of alice's registered printer (VLAN 100)\n")
			for _, a := range r.Attrs {
				if a[0] == "Message-Authenticator" {
					a[1] = "<per reply>"
				}
				got.WriteString(a[0] + " = " + a[1] + "\n")
			}
			path := filepath.Join("testdata", "ppsk-"+vendor+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestPPSKVendorGolden -update)", err)
			}
			if d := cmp.Diff(string(want), got.String()); d != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", path, d)
			}
			if vendor == VendorRuckus {
				// The PMK is the one wpa_supplicant derives for the SSID.
				out, err := exec.Command("wpa_passphrase", "deskgate-iot", testPassphrase).Output()
				if err != nil {
					t.Fatalf("wpa_passphrase: %v", err)
				}
				pmk, _ := r.get("Ruckus-Dpsk")
				if !strings.Contains(string(out), "\tpsk="+strings.TrimPrefix(pmk, "0x")+"\n") {
					t.Errorf("Ruckus-Dpsk %s is not wpa_passphrase's PMK:\n%s", pmk, out)
				}
			}
			if strings.Contains(e.logs.String(), testPassphrase) {
				t.Error("the passphrase reached the log")
			}
		})
	}
}

// TestWPAPMK checks the PMK derivation against IEEE 802.11-2020 J.4.2's
// first test vector.
func TestWPAPMK(t *testing.T) {
	got := hex.EncodeToString(wpaPMK("password", "IEEE"))
	if want := "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"; got != want {
		t.Fatalf("PMK %s, want %s", got, want)
	}
	if ssidOf([]byte("02-00-00-00-03-00:office:wifi")) != "office:wifi" || ssidOf([]byte("02-00-00-00-03-00")) != "" {
		t.Error("ssidOf")
	}
}

// TestPPSKRefusals: an unknown MAC is refused (or, configured so, put on
// the guest VLAN without a passphrase), a device beyond the member's
// device limit is refused, a device of a member whose membership ended is
// refused, and a request whose password is not the MAC is no MAC
// authentication at all.
func TestPPSKRefusals(t *testing.T) {
	t.Parallel()
	needRadclient(t)
	e := startServer(t, defaultClients(), nil)
	e.dir.PutDevice("alice", Device{MAC: "aa:bb:cc:00:11:22", Name: "printer", Passphrase: testPassphrase, Scope: "member"})
	e.dir.PutDevice("erin", Device{MAC: "aa:bb:cc:00:11:33", Name: "tv", Passphrase: "erin-pass-1234", Scope: "member"})

	r := radclient(t, e.auth, "auth", testSecret, macAuthAttrs("aa:bb:cc:99:99:99")...)
	if r.Code != "Access-Reject" {
		t.Fatalf("unknown MAC: %q\n%s", r.Code, r.Out)
	}
	if m, _ := r.get("Reply-Message"); m != "Device not registered" {
		t.Errorf("unknown MAC: Reply-Message %q", m)
	}
	if e.logs.count("unknown_device") == 0 {
		t.Error("unknown MAC: reason not logged")
	}

	r = radclient(t, e.auth, "auth", testSecret, macAuthAttrs("aa:bb:cc:00:11:33")...)
	if r.Code != "Access-Reject" {
		t.Fatalf("ended member's device: %q\n%s", r.Code, r.Out)
	}
	if _, ok := r.get("Tunnel-Password:0"); ok {
		t.Error("a reject carries the passphrase")
	}

	// Not MAC authentication: the password is not the MAC.
	attrs := macAuthAttrs("aa:bb:cc:00:11:22")
	attrs[1] = `User-Password = "` + testPassphrase + `"`
	r = radclient(t, e.auth, "auth", testSecret, attrs...)
	if r.Code != "Access-Reject" {
		t.Fatalf("password is not the MAC: %q\n%s", r.Code, r.Out)
	}
	if e.logs.count("reason=unknown_user") == 0 {
		t.Error("a PAP request with a MAC user name was not treated as PAP")
	}

	// alice's limit is 2 devices: two others online, the printer is refused.
	for i, mac := range []string{"02:00:00:00:00:01", "02:00:00:00:00:02"} {
		sendRaw(t, e.acct, acctReq(t, byte(i+1), "Start", "s"+mac, mac), time.Second)
	}
	waitUntil(t, func() bool { return len(e.srv.Sessions("m-alice")) == 2 })
	r = radclient(t, e.auth, "auth", testSecret, macAuthAttrs("aa:bb:cc:00:11:22")...)
	if r.Code != "Access-Reject" {
		t.Fatalf("device beyond the limit: %q\n%s", r.Code, r.Out)
	}
	if m, _ := r.get("Reply-Message"); !strings.Contains(m, "Device limit") {
		t.Errorf("device beyond the limit: Reply-Message %q", m)
	}
}

// TestPPSKUnknownGuest: with ppsk.unknown guest, an unknown MAC is
// accepted onto the guest VLAN, with no passphrase (the SSID's own applies).
func TestPPSKUnknownGuest(t *testing.T) {
	t.Parallel()
	needRadclient(t)
	e := startServer(t, defaultClients(), func(c *Config) { c.PPSKUnknown, c.PPSKGuestVLAN = PPSKGuest, 999 })
	r := radclient(t, e.auth, "auth", testSecret, macAuthAttrs("aa:bb:cc:99:99:99")...)
	if r.Code != "Access-Accept" {
		t.Fatalf("unknown MAC with ppsk.unknown=guest: %q\n%s", r.Code, r.Out)
	}
	if v, _ := r.get("Tunnel-Private-Group-Id:0"); v != "999" {
		t.Errorf("VLAN %q, want 999\n%s", v, r.Out)
	}
	if _, ok := r.get("Tunnel-Password:0"); ok {
		t.Error("a guest device got a passphrase")
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 3s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPPSKSessionWithoutAccess: an access point that lets a device back in
// without asking (hostapd's MAC ACL cache) reports its Accounting-Start;
// when the device's member has no access (or the MAC is no longer
// registered) deskgate answers with a Disconnect-Request naming the
// session by Acct-Session-Id and Calling-Station-Id, without User-Name.
// A device with access is left alone.
func TestPPSKSessionWithoutAccess(t *testing.T) {
	t.Parallel()
	nas := newTestNAS(t, func(int, *radius.Packet) radius.Code { return radius.CodeDisconnectACK })
	cs := defaultClients()
	cs[0].CoAPort = nas.port()
	e := startServer(t, cs, nil)
	e.dir.PutDevice("alice", Device{MAC: "aa:bb:cc:00:11:22", Name: "printer", Passphrase: testPassphrase, Scope: "member"})
	e.dir.PutDevice("erin", Device{MAC: "aa:bb:cc:00:11:33", Name: "tv", Passphrase: "erin-pass-1234", Scope: "member"})
	start := func(id byte, mac string) {
		t.Helper()
		p := radius.New(radius.CodeAccountingRequest, []byte(testSecret))
		p.Identifier = id
		_ = rfc2865.UserName_SetString(p, strings.ReplaceAll(mac, ":", ""))
		_ = rfc2866.AcctStatusType_Set(p, rfc2866.AcctStatusType_Value_Start)
		_ = rfc2866.AcctSessionID_SetString(p, "s-"+mac)
		_ = rfc2865.CallingStationID_SetString(p, strings.ToUpper(strings.ReplaceAll(mac, ":", "-")))
		if sendRaw(t, e.acct, must(p.Encode()), 2*time.Second) == nil {
			t.Fatalf("no Accounting-Response for %s", mac)
		}
	}
	start(1, "aa:bb:cc:00:11:22") // alice: allowed
	start(2, "aa:bb:cc:00:11:33") // erin: membership ended
	select {
	case p := <-nas.got:
		if rfc2865.CallingStationID_GetString(p) != "AA-BB-CC-00-11-33" || rfc2866.AcctSessionID_GetString(p) != "s-aa:bb:cc:00:11:33" {
			t.Fatalf("Disconnect-Request for %q/%q, want erin's TV", rfc2865.CallingStationID_GetString(p), rfc2866.AcctSessionID_GetString(p))
		}
		if _, err := rfc2865.UserName_Lookup(p); err == nil {
			t.Error("Disconnect-Request for a MAC-authenticated device carries User-Name")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no Disconnect-Request for the device of a member without access")
	}
	select {
	case p := <-nas.got:
		t.Fatalf("a second Disconnect-Request (for %q): the allowed member's device was disconnected", rfc2865.CallingStationID_GetString(p))
	case <-time.After(300 * time.Millisecond):
	}
}
