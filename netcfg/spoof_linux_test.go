package netcfg

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSpoofedAllowedIPStaysCaptive: the allow sets hold IP addresses only
// (this kernel has no hash:ip,mac), so netcfg binds each allowed address to
// its client's MAC. A second client (c2, another MAC) that takes the
// allowed client's address (c1's 10.77.0.10 / fd77::10) gets nothing
// forwarded to the internet, and its HTTP is sent to the portal, while c1
// itself stays online. Revoking c1 removes its binding rules.
func TestSpoofedAllowedIPStaysCaptive(t *testing.T) {
	needRoot(t)
	g := newGuestLab(t)
	log, _ := testLogger(t)
	m := g.manager(log, -1)
	ctx := context.Background()
	if err := m.Set(ctx, g.cfg); err != nil {
		t.Fatal(err)
	}
	if err := m.Allow(ctx, client1(time.Time{})); err != nil {
		t.Fatal(err)
	}

	// A UDP sink on the internet host records who got through.
	var mu sync.Mutex
	got := map[string]int{}
	for _, a := range []string{inet4 + ":9999", "[" + inet6 + "]:9999"} {
		var pc net.PacketConn
		var err error
		g.in("in", func() { pc, err = net.ListenPacket("udp", a) })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		go func() {
			b := make([]byte, 64)
			for {
				n, _, err := pc.ReadFrom(b)
				if err != nil {
					return
				}
				mu.Lock()
				got[string(b[:n])]++
				mu.Unlock()
			}
		}()
	}
	send := func(role, src, dst, payload string) {
		t.Helper()
		g.in(role, func() {
			la, _ := net.ResolveUDPAddr("udp", net.JoinHostPort(src, "0"))
			ra, _ := net.ResolveUDPAddr("udp", dst)
			c, err := net.DialUDP("udp", la, ra)
			if err != nil {
				t.Fatalf("udp from %s in %s: %v", src, role, err)
			}
			defer c.Close()
			for range 5 {
				c.Write([]byte(payload))
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	count := func(p string) int { mu.Lock(); defer mu.Unlock(); return got[p] }

	// The allowed client gets through, on both families.
	if g.captive("c1", "http://"+inet4+"/") || g.captive("c1", "http://["+inet6+"]/") {
		t.Fatal("allowed client c1 is captive")
	}
	send("c1", "10.77.0.10", inet4+":9999", "c1-v4")
	send("c1", "fd77::10", "["+inet6+"]:9999", "c1-v6")
	time.Sleep(100 * time.Millisecond)
	if count("c1-v4") == 0 || count("c1-v6") == 0 {
		t.Fatalf("the allowed client's datagrams did not arrive: %v", got)
	}

	// c2 takes c1's addresses (as a second device would that copied them).
	g.ip("c2", "addr", "flush", "dev", "eth0")
	g.addr("c2", "eth0", "10.77.0.10/24", "fd77::10/64")
	g.ip("c2", "route", "replace", "default", "via", "10.77.0.1")
	g.ip("c2", "-6", "route", "replace", "default", "via", "fd77::1")
	send("c2", "10.77.0.10", inet4+":9999", "spoof-v4")
	send("c2", "fd77::10", "["+inet6+"]:9999", "spoof-v6")
	// Its HTTP connection is sent to the portal: the gateway's conntrack
	// entry for it is DNATed to 10.77.0.1:8080. (Whether the answer
	// reaches c2 depends on whose MAC the gateway's ARP entry holds for the
	// shared address, so the test reads the gateway's decision.)
	g.in("c2", func() {
		d := net.Dialer{Timeout: 300 * time.Millisecond, LocalAddr: &net.TCPAddr{IP: net.ParseIP("10.77.0.10"), Port: 40123}}
		if c, err := d.Dial("tcp", inet4+":80"); err == nil {
			c.Close()
		}
	})
	time.Sleep(200 * time.Millisecond)
	if n := count("spoof-v4") + count("spoof-v6"); n != 0 {
		t.Errorf("%d datagrams of the spoofing client (c1's IP, c2's MAC) reached the internet (v4 %d, v6 %d); "+
			"the allow-list matches the IP only", n, count("spoof-v4"), count("spoof-v6"))
	}
	ct, _ := exec.Command("ip", "netns", "exec", g.ns["gw"], "cat", "/proc/net/nf_conntrack").CombinedOutput()
	intercepted := false
	for _, line := range strings.Split(string(ct), "\n") {
		if strings.Contains(line, "dport=80 ") && strings.Contains(line, "sport=40123 ") {
			intercepted = strings.Contains(line, "src=10.77.0.1 dst=10.77.0.10 sport=8080 dport=40123")
			t.Logf("spoofer's HTTP connection at the gateway: %s", strings.Join(strings.Fields(line), " "))
		}
	}
	if !intercepted {
		t.Errorf("the spoofing client's HTTP connection was not sent to the portal:\n%s", ct)
	}

	// Revoke removes the binding rules with the set entries.
	if err := m.Revoke(ctx, c1MAC); err != nil {
		t.Fatal(err)
	}
	for _, tb := range []string{"nat", "filter"} {
		out := g.exec("gw", "iptables-save", "-t", tb)
		if strings.Contains(strings.ToLower(out), strings.ToLower(c1MAC.String())) {
			t.Errorf("%s still binds the revoked client's MAC:\n%s", tb, out)
		}
	}
}
