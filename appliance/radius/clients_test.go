package radius

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

func nasIdentifier(id string) func(*radius.Packet) {
	return func(p *radius.Packet) { _ = rfc2865.NASIdentifier_SetString(p, id) }
}

func calledStation(id string) func(*radius.Packet) {
	return func(p *radius.Packet) { _ = rfc2865.CalledStationID_SetString(p, id) }
}

// TestLocationFromNAS: a controller at one address serves two locations;
// NAS-Identifier or the SSID in Called-Station-Id picks the entry, and so
// the secret and the location.
func TestLocationFromNAS(t *testing.T) {
	t.Parallel()
	cs := []Client{
		{Name: "ctrl-alpha", Prefix: netip.MustParsePrefix("127.0.0.0/8"), Secret: []byte(testSecret), LocationID: "loc-a", Identifier: "alpha-ctrl"},
		{Name: "ctrl-beta", Prefix: netip.MustParsePrefix("127.0.0.0/8"), Secret: []byte("beta-secret"), LocationID: "loc-b", Identifier: "Beta-WiFi"},
	}
	e := startServer(t, cs, nil)
	tests := []struct {
		name   string
		secret string
		opt    func(*radius.Packet)
		want   byte
	}{
		{"alpha by NAS-Identifier: bob is a beta member", testSecret, nasIdentifier("alpha-ctrl"), codeAccessReject},
		{"beta by NAS-Identifier", "beta-secret", nasIdentifier("beta-ctrl-x"), 0}, // unknown identifier: no entry, dropped
		{"beta by SSID", "beta-secret", calledStation("AA-BB-CC-DD-EE-FF:Beta-WiFi"), codeAccessAccept},
		{"beta by SSID, alpha secret", testSecret, calledStation("AA-BB-CC-DD-EE-FF:Beta-WiFi"), 0},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkt := buildAccessRequest(t, []byte(tc.secret), byte(i), "bob", "pw-bob", true, nil, tc.opt)
			out := sendRaw(t, e.auth, pkt, 300*time.Millisecond)
			var got byte
			if out != nil {
				got = out[0]
			}
			if got != tc.want {
				t.Fatalf("code %d, want %d", got, tc.want)
			}
		})
	}
}

func TestUnknownSourceAndReload(t *testing.T) {
	t.Parallel()
	e := startServer(t, defaultClients(), nil)
	pkt := buildAccessRequest(t, []byte(testSecret), 1, "alice", "correct horse", true, nil)
	for range 3 {
		if out := sendRawFrom(t, "127.0.0.3", e.auth, pkt, 200*time.Millisecond); out != nil {
			t.Fatal("unknown source answered")
		}
	}
	if n := e.srv.Stats().UnknownSources.Load(); n != 3 {
		t.Errorf("unknown sources = %d, want 3", n)
	}
	if n := e.logs.count("request from unknown client dropped"); n != 1 {
		t.Errorf("unknown source logged %d times, want once", n)
	}
	// Logged once per source per minute.
	var l sourceLimiter
	l.every = time.Minute
	a := netip.MustParseAddr("192.0.2.1")
	if !l.allow(a, t0) || l.allow(a, t0.Add(30*time.Second)) || !l.allow(a, t0.Add(61*time.Second)) {
		t.Error("source limiter does not allow exactly once a minute")
	}
	// Reload without restart picks up a new NAS.
	cs := append(defaultClients(), Client{Name: "new-ap", Prefix: netip.MustParsePrefix("127.0.0.3/32"), Secret: []byte("new-secret"), LocationID: "loc-a"})
	if err := e.srv.SetClients(cs); err != nil {
		t.Fatal(err)
	}
	pkt = buildAccessRequest(t, []byte("new-secret"), 2, "alice", "correct horse", true, nil)
	if out := sendRawFrom(t, "127.0.0.3", e.auth, pkt, time.Second); out == nil || out[0] != codeAccessAccept {
		t.Fatal("new NAS not served after SetClients")
	}
	// An invalid list is refused and the old one stays.
	if err := e.srv.SetClients([]Client{{Name: "x"}}); err == nil {
		t.Error("invalid client list accepted")
	}
	if out := sendRawFrom(t, "127.0.0.3", e.auth, buildAccessRequest(t, []byte("new-secret"), 3, "alice", "correct horse", true, nil), time.Second); out == nil {
		t.Error("old list lost after a refused reload")
	}
}

func TestIPv6AndStatusServer(t *testing.T) {
	t.Parallel()
	ln, err := net.ListenPacket("udp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback")
	}
	ln.Close()
	cs := []Client{{Name: "v6", Prefix: netip.MustParsePrefix("::1/128"), Secret: []byte(testSecret), LocationID: "loc-a"}}
	e := startServer(t, cs, func(c *Config) { c.AuthAddrs = []string{"[::1]:0"}; c.AcctAddrs = []string{"[::1]:0"} })
	if !strings.HasPrefix(e.auth, "[::1]:") {
		t.Fatalf("auth addr %s", e.auth)
	}
	r := radclient(t, e.auth, "auth", testSecret, `User-Name = "alice"`, `User-Password = "correct horse"`, `Message-Authenticator = 0x00`)
	if r.Code != "Access-Accept" {
		t.Fatalf("IPv6: %q\n%s", r.Code, r.Out)
	}
	r = radclient(t, e.auth, "status", testSecret, `Message-Authenticator = 0x00`)
	if r.Code != "Access-Accept" {
		t.Fatalf("Status-Server: %q\n%s", r.Code, r.Out)
	}
}

func TestExplain(t *testing.T) {
	t.Parallel()
	e := startServer(t, defaultClients(), nil)
	ctx := context.Background()
	res, err := e.srv.Explain(ctx, "erin", "ap-alpha")
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != "Access-Reject" || res.Deny != "membership_ended" || len(res.Attributes) != 1 || res.Attributes[0].Value != `"Membership has ended"` {
		t.Errorf("ended member: %+v", res)
	}
	if _, err := e.srv.Explain(ctx, "alice", "no-such-nas"); err == nil {
		t.Error("unknown NAS: no error")
	}
	res, err = e.srv.Explain(ctx, "mallory", "")
	if err != nil || res.Deny != "unknown_user" {
		t.Errorf("unknown user: %+v, %v", res, err)
	}
	// Device limit reached: Explain says a new device would be rejected.
	for i, m := range []string{"AA-BB-CC-00-00-01", "AA-BB-CC-00-00-02"} {
		if r := radclient(t, e.acct, "acct", testSecret, acctAttrs("Start", "e"+string(rune('0'+i)), m)...); r.Code != "Accounting-Response" {
			t.Fatal(r.Code)
		}
	}
	res, err = e.srv.Explain(ctx, "alice", "ap-alpha")
	if err != nil || res.Deny != "device_limit" {
		t.Errorf("device limit: %+v, %v", res, err)
	}
	if !strings.Contains(res.String(), "Device limit reached") {
		t.Errorf("String():\n%s", res)
	}
}

func TestClientPrefix(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"10.0.0.5": "10.0.0.5/32", "10.0.10.7/24": "10.0.10.0/24", "fd00::5": "fd00::5/128", "::ffff:10.1.2.3": "10.1.2.3/32"} {
		p, err := ClientPrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("ClientPrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	if _, err := ClientPrefix("ap.example"); err == nil {
		t.Error("hostname accepted")
	}
}

// TestDualStack: ":0" binds IPv4 and IPv6 on one socket; IPv4 NAS appear
// as v4-mapped addresses and still match their IPv4 client entry.
func TestDualStack(t *testing.T) {
	t.Parallel()
	e := startServer(t, defaultClients(), func(c *Config) { c.AuthAddrs = []string{":0"}; c.AcctAddrs = []string{":0"} })
	_, port, _ := net.SplitHostPort(e.auth)
	pkt := buildAccessRequest(t, []byte(testSecret), 1, "alice", "correct horse", true, nil)
	if out := sendRaw(t, "127.0.0.1:"+port, pkt, time.Second); out == nil || out[0] != codeAccessAccept {
		t.Fatalf("IPv4 request to a dual-stack socket: %v", out)
	}
	_, aport, _ := net.SplitHostPort(e.acct)
	if r := radclient(t, "127.0.0.1:"+aport, "acct", testSecret, acctAttrs("Start", "ds1", "AA-BB-CC-00-00-09")...); r.Code != "Accounting-Response" {
		t.Fatalf("accounting over dual-stack: %q", r.Code)
	}
	if ss := e.srv.Sessions("m-alice"); len(ss) != 1 || ss[0].NASAddr != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("sessions = %+v, want NAS address 127.0.0.1 (unmapped)", ss)
	}
}
