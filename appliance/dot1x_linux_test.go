package appliance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/officernd"
)

// need returns the path of a tool, skipping (or failing under CI) without it.
func need(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root (network namespaces)")
		}
		t.Skip("needs root for network namespaces")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s missing", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 100; i++ {
		p := 20000 + rand.IntN(12000)
		c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			c.Close()
			return p
		}
	}
	t.Fatal("no free UDP port")
	return 0
}

// TestWired8021X: hostapd (driver=wired) as the authenticator on one end
// of a veth pair, wpa_supplicant in a network namespace on the other,
// authenticating through the daemon's RADIUS server with PEAP-MSCHAPv2;
// ending the member's membership in OfficeRnD makes deskgate send a
// Disconnect-Request to hostapd's DAE port and the supplicant is
// deauthorized.
func TestWired8021X(t *testing.T) {
	need(t, "hostapd", "hostapd_cli", "wpa_supplicant", "wpa_cli", "ip")
	das := freeUDPPort(t)
	h := newHarness(t, harnessOpts{seed: true, webhooks: true, extraYAML: radiusYAML(das)})
	app := h.start()
	h.waitImport(30 * time.Second)
	h.waitWebhookRegistered()
	waitFor(t, 5*time.Second, "radius listening", func() bool { a, b := app.radius.srv.Addrs(); return len(a) > 0 && len(b) > 0 })
	authAddrs, acctAddrs := app.radius.srv.Addrs()
	authPort := authAddrs[0].(*net.UDPAddr).Port
	acctPort := acctAddrs[0].(*net.UDPAddr).Port

	m, ms := createMember(t, h, "Wired Laptop", "wired.laptop@example.com", "Hot Desk", "Downtown")
	waitFor(t, 3*time.Second, "member allowed", func() bool { return h.allowed(m.Email) })
	pw := passwordFromMailbox(t, h, m.Email)

	// The link: dgw8021a (authenticator, this namespace) ↔ dgw8021b (supplicant namespace).
	suffix := fmt.Sprintf("%04x", rand.IntN(0xffff))
	ns := "dgsupp-" + suffix
	aIf, bIf := "dgwa"+suffix, "dgwb"+suffix
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "link", "add", aIf, "type", "veth", "peer", "name", bIf)
	t.Cleanup(func() { exec.Command("ip", "link", "del", aIf).Run() })
	run(t, "ip", "link", "set", bIf, "netns", ns)
	run(t, "ip", "link", "set", aIf, "up")
	run(t, "ip", "-n", ns, "link", "set", bIf, "up")

	dir := t.TempDir()
	hconf := filepath.Join(dir, "hostapd.conf")
	os.WriteFile(hconf, []byte(fmt.Sprintf(`interface=%s
driver=wired
ieee8021x=1
eapol_version=2
use_pae_group_addr=1
eap_reauth_period=0
nas_identifier=downtown-ap
auth_server_addr=127.0.0.1
auth_server_port=%d
auth_server_shared_secret=%s
acct_server_addr=127.0.0.1
acct_server_port=%d
acct_server_shared_secret=%s
radius_das_port=%d
radius_das_client=127.0.0.1 %s
ctrl_interface=%s/hostapd
logger_stdout=-1
logger_stdout_level=1
`, aIf, authPort, nasSecret, acctPort, nasSecret, das, nasSecret, dir)), 0o600)
	hostapd := exec.Command("hostapd", hconf)
	hostapd.Env = h.peerEnv(t) // it checks Disconnect's Event-Timestamp against its clock
	hlog := &strings.Builder{}
	hostapd.Stdout, hostapd.Stderr = hlog, hlog
	if err := hostapd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hostapd.Process.Kill(); hostapd.Wait() })

	ca := filepath.Join(app.Config().DataDir, "eap", "ca.pem")
	wconf := filepath.Join(dir, "wpas.conf")
	os.WriteFile(wconf, []byte(fmt.Sprintf(`ctrl_interface=%s/wpas
ap_scan=0
network={
	key_mgmt=IEEE8021X
	eapol_flags=0
	eap=PEAP
	identity=%q
	anonymous_identity="anonymous"
	password=%q
	ca_cert=%q
	domain_match=%q
	phase1="peaplabel=0"
	phase2="auth=MSCHAPV2"
}
`, dir, m.Email, pw, ca, app.Config().RADIUS.EAP.ServerName)), 0o600)
	wpas := exec.Command("ip", "netns", "exec", ns, "wpa_supplicant", "-D", "wired", "-i", bIf, "-c", wconf)
	wpas.Env = h.peerEnv(t)
	wlog := &strings.Builder{}
	wpas.Stdout, wpas.Stderr = wlog, wlog
	if err := wpas.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wpas.Process.Kill(); wpas.Wait() })

	field := func(key string) string {
		out, _ := exec.Command("ip", "netns", "exec", ns, "wpa_cli", "-p", dir+"/wpas", "-i", bIf, "status").CombinedOutput()
		for _, l := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(l, key+"="); ok {
				return v
			}
		}
		return ""
	}
	status := func() string { return field("suppPortStatus") }
	start := time.Now()
	deadline := time.Now().Add(20 * time.Second)
	for status() != "Authorized" {
		if time.Now().After(deadline) {
			t.Fatalf("supplicant not authorized within 20s\nhostapd:\n%s\nwpa_supplicant:\n%s", tailLines(hlog.String(), 30), tailLines(wlog.String(), 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("wpa_supplicant authorized over 802.1X (PEAP-MSCHAPv2) after %s", time.Since(start).Round(time.Millisecond))
	waitFor(t, 10*time.Second, "accounting session from hostapd", func() bool { return len(app.radius.srv.Sessions(m.ID)) > 0 })

	// The authenticator's view of the port: hostapd lists the station as
	// AUTHORIZED while the member may use the network.
	authorized := func() bool {
		out, _ := exec.Command("hostapd_cli", "-p", dir+"/hostapd", "-i", aIf, "all_sta").CombinedOutput()
		return strings.Contains(string(out), "[AUTHORIZED]")
	}
	if !authorized() {
		t.Fatalf("hostapd does not list the station as authorized")
	}

	yesterday := h.clock.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02")
	ended := time.Now()
	if _, err := officernd.Update[officernd.Membership](context.Background(), h.admin, "memberships", ms.ID, map[string]any{"endDate": yesterday + "T00:00:00.000Z", "type": "fixed"}); err != nil {
		t.Fatal(err)
	}
	for authorized() {
		if time.Since(ended) > 5*time.Second {
			t.Fatalf("port still authorized 5s after the membership ended\nhostapd:\n%s", tailLines(hlog.String(), 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(ended)
	t.Logf("membership ended → Disconnect-Request → hostapd deauthorized the port after %s", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("deauthorized after %s, want within 2s", took)
	}
	if !strings.Contains(hlog.String(), "AP-STA-DISCONNECTED") {
		t.Error("hostapd logged no AP-STA-DISCONNECTED")
	}
	// A wired supplicant hears nothing of the disconnect; when it tries
	// again, deskgate refuses it and it ends up unauthorized.
	exec.Command("ip", "netns", "exec", ns, "wpa_cli", "-p", dir+"/wpas", "-i", bIf, "logoff").Run()
	exec.Command("ip", "netns", "exec", ns, "wpa_cli", "-p", dir+"/wpas", "-i", bIf, "logon").Run()
	waitFor(t, 15*time.Second, "the retried login to fail", func() bool { return field("EAP state") == "FAILURE" })
	if status() != "Unauthorized" {
		t.Fatalf("supplicant %s after a failed login", status())
	}
	if authorized() {
		t.Fatal("hostapd authorized the station again after the membership ended")
	}
}
