package radius

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDisconnectHostapd sends a Disconnect-Request to a real NAS: hostapd
// (driver=wired, RFC 5176 DAS) in a network namespace. No station is
// connected, so a correctly signed request is answered with Disconnect-NAK
// and Error-Cause 503 (Session-Context-Not-Found); a request hostapd could
// not authenticate (authenticator, Message-Authenticator, Event-Timestamp)
// would get no answer at all. Needs root, ip and hostapd.
func TestDisconnectHostapd(t *testing.T) {
	t.Parallel()
	hostapd, err := exec.LookPath("hostapd")
	if err != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: need root and hostapd (%v)", err)
		}
		t.Skip("needs root and hostapd")
	}
	id := os.Getpid() % 200
	ns := fmt.Sprintf("dgrad%d", os.Getpid())
	hostIf, nasIf := fmt.Sprintf("dgr%da", os.Getpid()%100000), fmt.Sprintf("dgr%db", os.Getpid()%100000)
	hostIP, nasIP := fmt.Sprintf("10.213.%d.1", id), fmt.Sprintf("10.213.%d.2", id)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run("link", "add", hostIf, "type", "veth", "peer", "name", nasIf)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", hostIf).Run() })
	run("link", "set", nasIf, "netns", ns)
	run("addr", "add", hostIP+"/30", "dev", hostIf)
	run("link", "set", hostIf, "up")
	run("-n", ns, "addr", "add", nasIP+"/30", "dev", nasIf)
	run("-n", ns, "link", "set", nasIf, "up")

	dir := t.TempDir()
	conf := filepath.Join(dir, "hostapd.conf")
	cfg := strings.Join([]string{
		"interface=" + nasIf, "driver=wired", "ieee8021x=1", "eap_server=0",
		"own_ip_addr=" + nasIP, "nas_identifier=hapd-test",
		"auth_server_addr=" + hostIP, "auth_server_port=1812", "auth_server_shared_secret=" + testSecret,
		"radius_das_port=3799", "radius_das_client=" + hostIP + " " + testSecret,
		"radius_das_require_event_timestamp=1", "radius_das_time_window=300",
	}, "\n") + "\n"
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, hostapd, conf)
	var hlog strings.Builder
	cmd.Stdout, cmd.Stderr = &hlog, &hlog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	for i := 0; ; i++ {
		out, _ := exec.Command("ip", "netns", "exec", ns, "ss", "-lun").CombinedOutput()
		if strings.Contains(string(out), ":3799") {
			break
		}
		if i > 50 {
			t.Fatalf("hostapd DAS not listening:\n%s", hlog.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	clients := []Client{{Name: "hapd", Prefix: netip.MustParsePrefix(nasIP + "/32"), Secret: []byte(testSecret), LocationID: "loc-a", CoAPort: 3799}}
	audit := &memAuditor{}
	s, err := New(Config{Clients: clients}, NewMapDirectory(), nil, nil, audit, nil, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	s.panicOnBug = true
	s.coaTries = []time.Duration{300 * time.Millisecond, 600 * time.Millisecond}
	// The NAS reported a session (accounting from its address).
	w := newWorker()
	src := netip.MustParseAddrPort(nasIP + ":40000")
	if out := s.handleAcct(context.Background(), w, acctReq(t, 1, "Start", "hapd-sess-1", "02-00-00-00-00-01"), src); out == nil {
		t.Fatal("accounting start not answered")
	}
	s.idx.mu.Lock()
	for _, x := range s.idx.live {
		x.MemberID = "m-alice"
		s.idx.put(x)
	}
	s.idx.mu.Unlock()

	err = s.Reauthorize(context.Background(), "m-alice")
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Reauthorize = %v, want a refusal (NAK) from hostapd\n%s", err, hlog.String())
	}
	ent, ok := audit.find("radius.disconnect.nak")
	if !ok || !strings.Contains(ent.Cause, "error-cause 503") {
		t.Fatalf("audit = %+v (found %v), want a NAK with Error-Cause 503\n%s", ent, ok, hlog.String())
	}
	t.Logf("hostapd answered: %s", ent.Cause)
}
