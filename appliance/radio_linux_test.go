package appliance

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/deskgate/deskgate/appliance/officernd"
)

// TestRadioUnderQEMU boots Debian's kernel (which has mac80211_hwsim, unlike
// the test host's) under qemu and runs TestRadioGuest inside it: real
// 802.11 association and 4-way handshakes between hostapd and
// wpa_supplicant on simulated radios, with deskgate as the RADIUS server.
func TestRadioUnderQEMU(t *testing.T) {
	for _, tool := range []string{"qemu-system-x86_64", "cpio", "busybox", "hostapd", "wpa_supplicant", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s missing (scripts/install-test-deps.sh)", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	if m, _ := filepath.Glob("/boot/vmlinuz-*-amd64"); len(m) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("no /boot/vmlinuz-*-amd64 (apt-get install linux-image-amd64)")
		}
		t.Skip("no /boot/vmlinuz-*-amd64 (apt-get install linux-image-amd64)")
	}
	if testing.Short() {
		t.Skip("boots a VM; skipped with -short")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "../scripts/vmtest/radio.sh").CombinedOutput()
	var result string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "DGVMTEST: ") {
			result = line
		}
		if strings.Contains(line, "radio_linux_test.go") || strings.HasPrefix(line, "--- ") || strings.HasPrefix(line, "RADIO: ") {
			t.Log("vm: " + strings.TrimSpace(line))
		}
	}
	t.Logf("%s (VM test took %v including build and boot)", result, time.Since(start).Round(time.Millisecond))
	if err != nil || result != "DGVMTEST: PASS" {
		t.Fatalf("VM test failed: %v\n%s", err, tailLines(string(out), 150))
	}
}

// lineLog collects a process's output and lets a test wait for a line.
type lineLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitLine waits until the log has a line containing one of subs and
// returns which one (or "" after d).
func (l *lineLog) waitLine(d time.Duration, subs ...string) string {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		s := l.String()
		for _, sub := range subs {
			if strings.Contains(s, sub) {
				return sub
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ""
}

// TestRadioGuest runs inside the VM: hostapd (driver=nl80211) on wlan0
// serves a WPA2/WPA3-Enterprise network and on wlan1 a WPA2-PSK network
// with wpa_psk_radius=2 (PPSK); wpa_supplicant on wlan2 completes real
// 4-way handshakes with PEAP, TTLS and EAP-TLS (WPA2 and WPA3), with a
// registered device's member passphrase (a wrong one is refused), and is
// disconnected by deskgate's Disconnect-Request when the membership ends.
func TestRadioGuest(t *testing.T) {
	if os.Getenv("DG_VMTEST_GUEST") != "1" {
		t.Skip("runs inside the qemu VM started by TestRadioUnderQEMU (scripts/vmtest/radio.sh)")
	}
	das, das2 := freeUDPPort(t), freeUDPPort(t)
	yaml := strings.Replace(radiusYAML(das), "vendor: mikrotik", "vendor: hostapd", 1) + fmt.Sprintf(`    - name: downtown-devices
      address: 127.0.0.1
      identifier: downtown-devices
      secret: {value: %s}
      location: Downtown
      vendor: hostapd
      coa: disconnect
      coa_port: %d
`, nasSecret, das2)
	h := newHarness(t, harnessOpts{seed: true, webhooks: true, extraYAML: yaml})
	// Peers check certificates against the system clock: the VM's clock is
	// the daemon's.
	tv := unix.NsecToTimeval(h.clock.Now().UnixNano())
	if err := unix.Settimeofday(&tv); err != nil {
		t.Fatalf("set the VM's clock: %v", err)
	}
	app := h.start()
	h.waitImport(60 * time.Second)
	h.waitWebhookRegistered()
	waitFor(t, 10*time.Second, "radius listening", func() bool { a, b := app.radius.srv.Addrs(); return len(a) > 0 && len(b) > 0 })
	authAddrs, acctAddrs := app.radius.srv.Addrs()
	authPort := authAddrs[0].(*net.UDPAddr).Port
	acctPort := acctAddrs[0].(*net.UDPAddr).Port

	m, ms := createMember(t, h, "Radio Laptop", "radio.laptop@example.com", "Hot Desk", "Downtown")
	waitFor(t, 5*time.Second, "member allowed", func() bool { return h.allowed(m.Email) })
	pw := passwordFromMailbox(t, h, m.Email)
	staMAC, err := os.ReadFile("/sys/class/net/wlan3/address")
	if err != nil {
		t.Fatalf("no fourth radio: %v", err)
	}
	dev, err := app.ppsk.Register(m.ID, strings.TrimSpace(string(staMAC)), "radio printer", "cli")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPEM, keyPEM, err := app.radius.ca.IssueClient(m.Email, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "client.pem"), certPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "client.key"), keyPEM, 0o600)

	radiusConf := fmt.Sprintf(`auth_server_addr=127.0.0.1
auth_server_port=%d
auth_server_shared_secret=%s
acct_server_addr=127.0.0.1
acct_server_port=%d
acct_server_shared_secret=%s
logger_stdout=-1
logger_stdout_level=2
hw_mode=g
channel=1
`, authPort, nasSecret, acctPort, nasSecret)
	startHostapd := func(name, conf string) *lineLog {
		path := filepath.Join(dir, name+".conf")
		os.WriteFile(path, []byte(conf+"nas_identifier="+name+"\n"+radiusConf), 0o600)
		l := &lineLog{}
		cmd := exec.Command("hostapd", path)
		cmd.Stdout, cmd.Stderr = l, l
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		if l.waitLine(15*time.Second, "AP-ENABLED") == "" {
			t.Fatalf("hostapd %s did not start:\n%s", name, l.String())
		}
		return l
	}
	ent := startHostapd("downtown-ap", fmt.Sprintf(`interface=wlan0
driver=nl80211
ssid=downtown-secure
ieee8021x=1
wpa=2
wpa_key_mgmt=WPA-EAP WPA-EAP-SHA256
rsn_pairwise=CCMP
ieee80211w=1
eap_reauth_period=0
radius_das_port=%d
radius_das_client=127.0.0.1 %s
`, das, nasSecret))
	ppskAP := startHostapd("downtown-devices", `interface=wlan1
driver=nl80211
ssid=downtown-devices
wpa=2
wpa_key_mgmt=WPA-PSK
rsn_pairwise=CCMP
wpa_passphrase=shared-ssid-passphrase-unused
macaddr_acl=2
wpa_psk_radius=2
radius_das_port=`+fmt.Sprint(das2)+`
radius_das_client=127.0.0.1 `+nasSecret+`
`)

	ca := filepath.Join(app.Config().DataDir, "eap", "ca.pem")
	server := app.Config().RADIUS.EAP.ServerName
	supplicant := func(name, iface, network string) (*lineLog, func()) {
		path := filepath.Join(dir, name+".wpas.conf")
		os.WriteFile(path, []byte("network={\n"+network+"\n}\n"), 0o600)
		l := &lineLog{}
		cmd := exec.Command("wpa_supplicant", "-D", "nl80211", "-i", iface, "-c", path)
		cmd.Stdout, cmd.Stderr = l, l
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stop := func() {
			cmd.Process.Signal(unix.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}
		return l, stop
	}
	eapNet := func(keyMgmt, eap, inner string) string {
		s := fmt.Sprintf("\tssid=\"downtown-secure\"\n\tkey_mgmt=%s\n\tieee80211w=2\n\teap=%s\n\tidentity=%q\n\tca_cert=%q\n\tdomain_match=%q\n\tscan_freq=2412", keyMgmt, eap, m.Email, ca, server)
		if keyMgmt == "WPA-EAP" {
			s = strings.Replace(s, "ieee80211w=2", "ieee80211w=1", 1)
		}
		switch eap {
		case "TLS":
			s += fmt.Sprintf("\n\tclient_cert=%q\n\tprivate_key=%q", filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key"))
		default:
			s += fmt.Sprintf("\n\tanonymous_identity=\"anonymous\"\n\tpassword=%q\n\tphase2=%q", pw, "auth="+inner)
		}
		return s
	}
	connect := func(what, iface, network string, wantOK bool) {
		t.Helper()
		l, stop := supplicant(what, iface, network)
		defer stop()
		start := time.Now()
		got := l.waitLine(30*time.Second, "CTRL-EVENT-CONNECTED", "reason=WRONG_KEY", "CTRL-EVENT-EAP-FAILURE", "CTRL-EVENT-ASSOC-REJECT", "CTRL-EVENT-AUTH-REJECT")
		took := time.Since(start).Round(time.Millisecond)
		switch {
		case wantOK && got == "CTRL-EVENT-CONNECTED":
			t.Logf("%s: 4-way handshake completed, connected after %s", what, took)
		case !wantOK && got != "" && got != "CTRL-EVENT-CONNECTED":
			t.Logf("%s: refused (%s) after %s", what, got, took)
		default:
			t.Fatalf("%s: got %q after %s, want connected=%v\nwpa_supplicant:\n%s", what, got, took, wantOK, tailLines(l.String(), 40))
		}
	}
	connect("WPA2-Enterprise PEAP-MSCHAPv2", "wlan2", eapNet("WPA-EAP", "PEAP", "MSCHAPV2"), true)
	connect("WPA2-Enterprise TTLS-PAP", "wlan2", eapNet("WPA-EAP", "TTLS", "PAP"), true)
	connect("WPA2-Enterprise EAP-TLS", "wlan2", eapNet("WPA-EAP", "TLS", ""), true)
	connect("WPA3-Enterprise EAP-TLS", "wlan2", eapNet("WPA-EAP-SHA256", "TLS", ""), true)
	connect("WPA3-Enterprise PEAP-MSCHAPv2", "wlan2", eapNet("WPA-EAP-SHA256", "PEAP", "MSCHAPV2"), true)
	psk := func(pass string) string {
		return fmt.Sprintf("\tssid=\"downtown-devices\"\n\tkey_mgmt=WPA-PSK\n\tpsk=%q\n\tscan_freq=2412", pass)
	}
	connect("PPSK with the member's passphrase", "wlan3", psk(dev.Passphrase), true)
	connect("PPSK with a wrong passphrase", "wlan3", psk("wrong-passphrase-2345"), false)

	// Disconnect on membership end: a PEAP station and the PPSK device
	// online, their accounting sessions at deskgate, then the membership
	// ends in OfficeRnD: both are deauthenticated.
	l, stop := supplicant("disconnect", "wlan2", eapNet("WPA-EAP", "PEAP", "MSCHAPV2"))
	defer stop()
	pl, pstop := supplicant("disconnect-ppsk", "wlan3", psk(dev.Passphrase))
	defer pstop()
	for _, x := range []*lineLog{l, pl} {
		if x.waitLine(30*time.Second, "CTRL-EVENT-CONNECTED") == "" {
			t.Fatalf("station did not connect:\n%s", tailLines(x.String(), 40))
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(app.radius.srv.Sessions(m.ID)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("accounting sessions: %+v, want the PEAP station's and the PPSK device's\nppsk hostapd:\n%s", app.radius.srv.Sessions(m.ID), tailLines(ppskAP.String(), 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
	yesterday := h.clock.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02")
	ended := time.Now()
	if _, err := officernd.Update[officernd.Membership](context.Background(), h.admin, "memberships", ms.ID, map[string]any{"endDate": yesterday + "T00:00:00.000Z", "type": "fixed"}); err != nil {
		t.Fatal(err)
	}
	for what, x := range map[string]*lineLog{"PEAP station": l, "PPSK device": pl} {
		if x.waitLine(10*time.Second, "CTRL-EVENT-DISCONNECTED") == "" {
			t.Fatalf("%s not disconnected 10s after the membership ended\nhostapd:\n%s\n%s\nwpa_supplicant:\n%s", what, tailLines(ent.String(), 30), tailLines(ppskAP.String(), 30), tailLines(x.String(), 30))
		}
		took := time.Since(ended)
		t.Logf("membership ended → Disconnect-Request → %s deauthenticated after %s", what, took.Round(time.Millisecond))
		if took > 3*time.Second {
			t.Errorf("%s disconnected after %s, want within 3s (TCG)", what, took)
		}
	}
	if !strings.Contains(ent.String(), "AP-STA-DISCONNECTED") {
		t.Error("hostapd logged no AP-STA-DISCONNECTED")
	}
	// wpa_supplicant tries again at once. hostapd answers a re-association
	// within 30 s from its MAC ACL cache without asking deskgate; deskgate
	// answers the Accounting-Start of such a session with another
	// Disconnect, so the device never stays on: each window closes within
	// a few seconds, and after the cache expires hostapd asks and is refused.
	time.Sleep(8 * time.Second)
	for what, x := range map[string]*lineLog{"PEAP station": l, "PPSK device": pl} {
		s := x.String()
		back := strings.Count(s, "CTRL-EVENT-CONNECTED") - 1
		if strings.LastIndex(s, "CTRL-EVENT-CONNECTED") > strings.LastIndex(s, "CTRL-EVENT-DISCONNECTED") {
			n := strings.Count(s, "CTRL-EVENT-DISCONNECTED")
			if !waitCond(5*time.Second, func() bool { return strings.Count(x.String(), "CTRL-EVENT-DISCONNECTED") > n }) {
				t.Errorf("%s stays connected after the membership ended:\n%s", what, tailLines(x.String(), 20))
			}
		}
		t.Logf("%s: re-admitted %d times by the access point's cache in the 8 s after the end, each time disconnected again", what, back)
	}
	fmt.Println("RADIO: PASS (PEAP, TTLS, EAP-TLS over WPA2 and WPA3-Enterprise; PPSK right and wrong passphrase; Disconnect on membership end)")
}

func waitCond(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
