package radius

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	"github.com/deskgate/deskgate/appliance/model"
)

func acctAttrs(status, sessionID, mac string, extra ...string) []string {
	return append([]string{
		`User-Name = "alice"`,
		`Acct-Status-Type = ` + status,
		`Acct-Session-Id = "` + sessionID + `"`,
		`Calling-Station-Id = "` + mac + `"`,
		`NAS-Identifier = "ap-alpha"`,
		`Framed-IP-Address = 10.0.100.23`,
	}, extra...)
}

func login(t *testing.T, e *testEnv, mac string) radReply {
	t.Helper()
	return radclient(t, e.auth, "auth", testSecret, `User-Name = "alice"`, `User-Password = "correct horse"`,
		`Calling-Station-Id = "`+mac+`"`, `Message-Authenticator = 0x00`)
}

func TestRadclientAccounting(t *testing.T) {
	t.Parallel()
	e := startServer(t, defaultClients(), nil)
	mac1 := "AA-BB-CC-00-00-01"

	acc := login(t, e, mac1)
	class, _ := acc.get("Class")
	r := radclient(t, e.acct, "acct", testSecret, acctAttrs("Start", "s1", mac1, "Class = "+class)...)
	if r.Code != "Accounting-Response" {
		t.Fatalf("Start: code %q\n%s", r.Code, r.Out)
	}
	ss := e.srv.Sessions("m-alice")
	if len(ss) != 1 {
		t.Fatalf("after Start: %d sessions, want 1: %+v", len(ss), ss)
	}
	s := ss[0]
	if s.MAC != "aa:bb:cc:00:00:01" || s.Username != "alice" || s.NAS != "ap-alpha" || s.IP != netip.MustParseAddr("10.0.100.23") ||
		s.Location != "loc-a" || !s.Start.Equal(t0) || s.NASAddr != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("session after Start = %+v", s)
	}

	e.clock.Add(5 * time.Minute)
	r = radclient(t, e.acct, "acct", testSecret, acctAttrs("Interim-Update", "s1", mac1,
		"Acct-Input-Octets = 1000", "Acct-Input-Gigawords = 1", "Acct-Output-Octets = 5000", "Acct-Output-Gigawords = 2", "Acct-Session-Time = 300")...)
	if r.Code != "Accounting-Response" {
		t.Fatalf("Interim: code %q", r.Code)
	}
	s = e.srv.Sessions("m-alice")[0]
	if s.InputOctets != 1<<32+1000 || s.OutputOctets != 2<<32+5000 || !s.LastUpdate.Equal(t0.Add(5*time.Minute)) || s.MemberID != "m-alice" {
		t.Errorf("session after Interim = %+v", s)
	}
	stored := e.sessions.All()
	if len(stored) != 1 || stored[0].InputOctets != s.InputOctets {
		t.Errorf("stored = %+v, want the interim state", stored)
	}

	r = radclient(t, e.acct, "acct", testSecret, acctAttrs("Stop", "s1", mac1, "Acct-Terminate-Cause = User-Request", "Acct-Input-Octets = 2000")...)
	if r.Code != "Accounting-Response" {
		t.Fatalf("Stop: code %q", r.Code)
	}
	if ss := e.srv.Sessions(""); len(ss) != 0 {
		t.Errorf("after Stop: live sessions %+v", ss)
	}
	stored = e.sessions.All()
	if len(stored) != 1 || stored[0].Live() || stored[0].StopCause != "User-Request" || stored[0].InputOctets != 2000 {
		t.Errorf("stored after Stop = %+v", stored)
	}

	// Two sessions, then Accounting-On from the NAS closes both.
	for _, id := range []string{"s2", "s3"} {
		if r := radclient(t, e.acct, "acct", testSecret, acctAttrs("Start", id, mac1)...); r.Code != "Accounting-Response" {
			t.Fatalf("Start %s: %q", id, r.Code)
		}
	}
	if n := len(e.srv.Sessions("")); n != 2 {
		t.Fatalf("live = %d, want 2", n)
	}
	if r := radclient(t, e.acct, "acct", testSecret, `Acct-Status-Type = Accounting-On`, `NAS-Identifier = "ap-alpha"`); r.Code != "Accounting-Response" {
		t.Fatalf("Accounting-On: %q", r.Code)
	}
	if n := len(e.srv.Sessions("")); n != 0 {
		t.Errorf("after Accounting-On: %d live sessions, want 0", n)
	}
	for _, st := range e.sessions.All() {
		if st.Live() {
			t.Errorf("stored session still live after Accounting-On: %+v", st)
		}
	}

	// Wrong secret: no answer, nothing recorded.
	if r := radclient(t, e.acct, "acct", "wrong", acctAttrs("Start", "s9", mac1)...); r.Code != "" {
		t.Errorf("wrong secret: got %q", r.Code)
	}
	if n := len(e.srv.Sessions("")); n != 0 {
		t.Errorf("wrong secret created a session")
	}
}

func TestDeviceLimit(t *testing.T) {
	t.Parallel()
	e := startServer(t, defaultClients(), nil) // alice: MaxDevices 2
	macs := []string{"AA-BB-CC-00-00-01", "AA-BB-CC-00-00-02", "AA-BB-CC-00-00-03"}
	for i, m := range macs[:2] {
		if r := login(t, e, m); r.Code != "Access-Accept" {
			t.Fatalf("device %d: %s", i+1, r.Code)
		}
		if r := radclient(t, e.acct, "acct", testSecret, acctAttrs("Start", "d"+strconv.Itoa(i+1), m)...); r.Code != "Accounting-Response" {
			t.Fatalf("start %d: %s", i+1, r.Code)
		}
	}
	r := login(t, e, macs[2])
	if r.Code != "Access-Reject" {
		t.Fatalf("third device: %s, want Access-Reject", r.Code)
	}
	if msg, _ := r.get("Reply-Message"); msg != replyMessage(model.DenyDeviceLimit) {
		t.Errorf("Reply-Message = %q", msg)
	}
	// The first device roaming to another AP (same MAC) is not a new device.
	if r := login(t, e, "aa:bb:cc:00:00:01"); r.Code != "Access-Accept" {
		t.Errorf("same device again: %s, want Access-Accept", r.Code)
	}
	if r := radclient(t, e.acct, "acct", testSecret, acctAttrs("Stop", "d1", macs[0])...); r.Code != "Accounting-Response" {
		t.Fatal(r.Code)
	}
	if r := login(t, e, macs[2]); r.Code != "Access-Accept" {
		t.Errorf("third device after a Stop: %s, want Access-Accept", r.Code)
	}
}

func TestStaleSessionsClosed(t *testing.T) {
	t.Parallel()
	e := startServer(t, defaultClients(), nil)
	if r := radclient(t, e.acct, "acct", testSecret, acctAttrs("Start", "x1", "AA-BB-CC-00-00-01")...); r.Code != "Accounting-Response" {
		t.Fatal(r.Code)
	}
	e.clock.Add(9 * time.Minute) // < 2 × 5 min
	if n, err := e.srv.CloseStale(context.Background()); err != nil || n != 0 {
		t.Fatalf("CloseStale at 9m = %d, %v; want 0", n, err)
	}
	e.clock.Add(2 * time.Minute)
	if n, err := e.srv.CloseStale(context.Background()); err != nil || n != 1 {
		t.Fatalf("CloseStale at 11m = %d, %v; want 1", n, err)
	}
	if st := e.sessions.All(); len(st) != 1 || st[0].StopCause != causeStale {
		t.Errorf("stored = %+v", st)
	}
}

// TestRetransmission sends the same raw packet twice: the second answer is
// the cached one, byte for byte (the MS-MPPE salts and Class timestamp
// would differ on a second evaluation), and the request is evaluated once.
func TestRetransmission(t *testing.T) {
	t.Parallel()
	e := startServer(t, defaultClients(), nil)
	secret := []byte(testSecret)
	pkt := buildAccessRequest(t, secret, 99, "alice", "correct horse", true, nil)
	c, err := net.Dial("udp", e.auth)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	read := func() []byte {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		b := make([]byte, 4096)
		n, err := c.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		return b[:n]
	}
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	first := read()
	e.clock.Add(10 * time.Second) // a re-evaluation would put a new time in Class
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	second := read()
	if !bytes.Equal(first, second) {
		t.Fatalf("retransmission answered differently:\n%x\n%x", first, second)
	}
	if got := e.srv.Stats().Accepts.Load(); got != 1 {
		t.Errorf("accepts = %d, want 1 (evaluated once)", got)
	}
	if got := e.srv.Stats().Duplicates.Load(); got != 1 {
		t.Errorf("duplicates = %d, want 1", got)
	}
	// After the window, the same bytes are a new request.
	e.clock.Add(31 * time.Second)
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	third := read()
	if bytes.Equal(first, third) {
		t.Error("after the dedup window the reply was still the cached one")
	}

	// Accounting: a duplicate Stop is answered from cache, recorded once.
	ap := radius.New(radius.CodeAccountingRequest, secret)
	ap.Identifier = 5
	_ = rfc2865.UserName_SetString(ap, "alice")
	_ = rfc2866.AcctStatusType_Set(ap, rfc2866.AcctStatusType_Value_Start)
	_ = rfc2866.AcctSessionID_SetString(ap, "dup-1")
	ab := must(ap.Encode())
	ac, err := net.Dial("udp", e.acct)
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	exchange := func() []byte {
		if _, err := ac.Write(ab); err != nil {
			t.Fatal(err)
		}
		_ = ac.SetReadDeadline(time.Now().Add(2 * time.Second))
		b := make([]byte, 4096)
		n, err := ac.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		return b[:n]
	}
	r1, r2 := exchange(), exchange()
	if r1 == nil || !bytes.Equal(r1, r2) {
		t.Fatalf("accounting retransmission: %x vs %x", r1, r2)
	}
	if got := e.srv.Stats().AcctResponses.Load(); got != 1 {
		t.Errorf("accounting responses computed = %d, want 1", got)
	}
}
