package radius

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
)

// udpPeer is a NAS with one fixed source port: what it sends twice is a
// retransmission as far as the server's duplicate cache can tell.
type udpPeer struct {
	t *testing.T
	c *net.UDPConn
}

func newUDPPeer(t *testing.T, addr string) *udpPeer {
	t.Helper()
	ra, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, ra)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpPeer{t: t, c: c}
}

// exchange sends pkt and returns the answer, nil when none comes within d.
func (p *udpPeer) exchange(pkt []byte, d time.Duration) []byte {
	p.t.Helper()
	if _, err := p.c.Write(pkt); err != nil {
		p.t.Fatal(err)
	}
	_ = p.c.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, 4096)
	n, err := p.c.Read(b)
	if err != nil {
		return nil
	}
	return b[:n]
}

// maOffset is the offset of the Message-Authenticator value in pkt, or -1.
func maOffset(pkt []byte) int {
	for i := 20; i+2 <= len(pkt); i += int(pkt[i+1]) {
		if pkt[i] == 80 && pkt[i+1] == 18 {
			return i + 2
		}
		if pkt[i+1] < 2 {
			break
		}
	}
	return -1
}

// TestForgedRetransmissionNotAnsweredFromCache: after a genuine
// Access-Request was answered, a copy from the same source with the same
// identifier and authenticator but a bad or no Message-Authenticator is
// dropped (and counted), not answered with the cached Access-Accept; the
// genuine retransmission still is. On the accounting port likewise.
func TestForgedRetransmissionNotAnsweredFromCache(t *testing.T) {
	t.Parallel()
	e := startServer(t, defaultClients(), nil)
	secret := []byte(testSecret)
	nas := newUDPPeer(t, e.auth)

	genuine := buildAccessRequest(t, secret, 42, "alice", "correct horse", true, nil)
	first := nas.exchange(genuine, 2*time.Second)
	if first == nil || first[0] != codeAccessAccept {
		t.Fatalf("genuine request: got %v, want Access-Accept", first)
	}

	badMA := bytes.Clone(genuine)
	badMA[maOffset(badMA)] ^= 0xff
	// No Message-Authenticator, other credentials, same id and
	// authenticator as the genuine request.
	noMA := buildAccessRequest(t, secret, 42, "mallory", "guess", false, nil)
	copy(noMA[4:20], genuine[4:20])
	for _, f := range []struct {
		name string
		pkt  []byte
	}{{"bad message-authenticator", badMA}, {"no message-authenticator", noMA}} {
		if got := nas.exchange(f.pkt, 300*time.Millisecond); got != nil {
			t.Errorf("forged copy with %s answered with code %d (the cached reply)", f.name, got[0])
		}
	}
	st := e.srv.Stats()
	if n := st.Drops(DropBadAuthenticator); n != 1 {
		t.Errorf("bad_authenticator drops = %d, want 1", n)
	}
	if n := st.Drops(DropNoMessageAuthenticator); n != 1 {
		t.Errorf("missing_message_authenticator drops = %d, want 1", n)
	}
	if n := st.Duplicates.Load(); n != 0 {
		t.Errorf("duplicates = %d after forged copies only, want 0", n)
	}

	// The genuine retransmission is answered from the cache, byte for byte.
	if again := nas.exchange(genuine, 2*time.Second); !bytes.Equal(again, first) {
		t.Fatalf("genuine retransmission: got %x, want the cached %x", again, first)
	}
	if n := st.Duplicates.Load(); n != 1 {
		t.Errorf("duplicates = %d, want 1", n)
	}

	// Accounting: a copy whose attributes were changed under the same
	// authenticator fails the Request Authenticator check.
	acct := newUDPPeer(t, e.acct)
	req := acctReq(t, 43, "Start", "forge-1", "AA-BB-CC-00-00-09")
	if got := acct.exchange(req, 2*time.Second); got == nil || got[0] != codeAcctResponse {
		t.Fatalf("accounting start: got %v, want Accounting-Response", got)
	}
	forged := bytes.Clone(req)
	i := bytes.Index(forged, []byte("forge-1"))
	forged[i] = 'F'
	if got := acct.exchange(forged, 300*time.Millisecond); got != nil {
		t.Errorf("forged accounting copy answered with code %d", got[0])
	}
	if n := st.Drops(DropBadAuthenticator); n != 2 {
		t.Errorf("bad_authenticator drops = %d, want 2", n)
	}
}

// radtest runs freeradius-utils' radtest, which sends MS-CHAPv1 for
// -t mschap (MS-CHAP-Challenge and MS-CHAP-Response, vendor 311).
func radtest(t *testing.T, kind, user, password, addr, secret string) radReply {
	t.Helper()
	needRadclient(t)
	bin, err := exec.LookPath("radtest")
	if err != nil {
		t.Skip("radtest not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-t", kind, user, password, addr, "0", secret, "0", "127.0.0.1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // exit status 1 on reject
	return parseRadclient(out.String())
}

// TestMSCHAPv1Unsupported: a correct MS-CHAPv1 login is answered as an
// unsupported method, not as a wrong password, in the reply, the log and
// the audit trail.
func TestMSCHAPv1Unsupported(t *testing.T) {
	t.Parallel()
	e := startServer(t, defaultClients(), nil)
	r := radtest(t, "mschap", "alice", "correct horse", e.auth, testSecret)
	if !strings.Contains(r.Out, "MS-CHAP-Response") {
		t.Fatalf("radtest did not send MS-CHAPv1:\n%s", r.Out)
	}
	if r.Code != "Access-Reject" {
		t.Fatalf("code = %q, want Access-Reject\n%s", r.Code, r.Out)
	}
	if got, _ := r.get("Reply-Message"); got != "Authentication method not supported" {
		t.Errorf("Reply-Message = %q, want \"Authentication method not supported\"", got)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "method=mschapv1 reason=unsupported_method") {
		t.Errorf("log lacks method=mschapv1 reason=unsupported_method:\n%s", logs)
	}
	if strings.Contains(logs, "wrong_password") {
		t.Errorf("a correct MS-CHAPv1 login was logged as a wrong password:\n%s", logs)
	}
	waitAudit(t, e, func(cause string) bool {
		return strings.HasPrefix(cause, "unsupported_method at ap-alpha") && strings.Contains(cause, "MS-CHAPv1 is not supported")
	})

	// radtest itself is fine: PAP through it is accepted.
	if r := radtest(t, "pap", "alice", "correct horse", e.auth, testSecret); r.Code != "Access-Accept" {
		t.Errorf("PAP via radtest: %q\n%s", r.Code, r.Out)
	}
}

func waitAudit(t *testing.T, e *testEnv, ok func(cause string) bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		e.audit.mu.Lock()
		for _, en := range e.audit.es {
			if en.Action == "radius.reject" && ok(en.Cause) {
				e.audit.mu.Unlock()
				return
			}
		}
		e.audit.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	e.audit.mu.Lock()
	defer e.audit.mu.Unlock()
	t.Errorf("no matching radius.reject audit entry in %+v", e.audit.es)
}

// TestStatusServerOnAcctPort: radclient's Status-Server to the accounting
// port gets an Accounting-Response with Message-Authenticator first
// (RFC 5997 3); without Message-Authenticator, or under the wrong secret,
// it gets nothing.
func TestStatusServerOnAcctPort(t *testing.T) {
	t.Parallel()
	e := startServer(t, defaultClients(), nil)
	ma := `Message-Authenticator = 0x00`
	r := radclient(t, e.acct, "status", testSecret, ma, `Proxy-State = 0x0a0b`, `Proxy-State = 0x0c`)
	if r.Code != "Accounting-Response" {
		t.Fatalf("code = %q, want Accounting-Response\n%s", r.Code, r.Out)
	}
	if len(r.Attrs) == 0 || r.Attrs[0][0] != "Message-Authenticator" {
		t.Errorf("first attribute = %v, want Message-Authenticator", r.Attrs)
	}
	if ps := r.all("Proxy-State"); strings.Join(ps, ",") != "0x0a0b,0x0c" {
		t.Errorf("Proxy-State = %v, want both, in order", ps)
	}
	if r := radclient(t, e.acct, "status", testSecret, `NAS-Identifier = "ap"`); r.Code != "" {
		t.Errorf("Status-Server without Message-Authenticator answered: %q", r.Code)
	}
	if r := radclient(t, e.acct, "status", "not-the-secret", ma); r.Code != "" {
		t.Errorf("Status-Server under the wrong secret answered: %q", r.Code)
	}
	st := e.srv.Stats()
	if n := st.Requests(PortAcct, codeStatusServer); n != 3 {
		t.Errorf("acct Status-Server requests = %d, want 3", n)
	}
	if a, b := st.Drops(DropNoMessageAuthenticator), st.Drops(DropBadAuthenticator); a != 1 || b != 1 {
		t.Errorf("drops: missing_message_authenticator %d, bad_authenticator %d; want 1, 1", a, b)
	}
	if n := len(e.sessions.All()); n != 0 {
		t.Errorf("Status-Server recorded %d sessions", n)
	}

	// The reply's authenticators, checked independently of radclient:
	// Response Authenticator (RFC 2865 3) and Message-Authenticator over the
	// reply with the request's authenticator in place (RFC 5997 3, as
	// FreeRADIUS computes it).
	secret := []byte(testSecret)
	p := radius.New(radius.CodeStatusServer, secret)
	p.Identifier = 9
	p.Add(80, make(radius.Attribute, 16))
	req := must(p.Encode())
	signMA(req, secret, nil)
	out := newUDPPeer(t, e.acct).exchange(req, 2*time.Second)
	if out == nil || out[0] != codeAcctResponse || out[1] != 9 {
		t.Fatalf("raw Status-Server: got %x", out)
	}
	if !radius.IsAuthenticResponse(out, req, secret) {
		t.Error("Response Authenticator does not verify")
	}
	if maOffset(out) != 22 {
		t.Fatalf("Message-Authenticator not first in %x", out)
	}
	tmp := bytes.Clone(out)
	copy(tmp[4:20], req[4:20])
	clear(tmp[22:38])
	m := hmac.New(md5.New, secret)
	m.Write(tmp)
	if !hmac.Equal(m.Sum(nil), out[22:38]) {
		t.Error("reply Message-Authenticator does not verify")
	}
}

// TestDropCounters: N garbage datagrams and N Access-Requests from an
// unknown address are each counted exactly, per reason, while the log
// holds one line per source.
func TestDropCounters(t *testing.T) {
	t.Parallel()
	e := startServer(t, defaultClients(), nil)
	const n = 200
	garbage := newUDPPeer(t, e.auth)
	for i := range n {
		// Length field 0xffff: always malformed, whatever the code byte.
		b := []byte{byte(i), byte(i), 0xff, 0xff, 1, 2, 3}
		if _, err := garbage.c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	la := &net.UDPAddr{IP: net.ParseIP("127.0.0.3")}
	ra, _ := net.ResolveUDPAddr("udp", e.acct)
	unknown, err := net.DialUDP("udp", la, ra)
	if err != nil {
		t.Fatal(err)
	}
	defer unknown.Close()
	for i := range n {
		if _, err := unknown.Write(acctReq(t, byte(i), "Start", "u", "AA-BB-CC-00-00-01")); err != nil {
			t.Fatal(err)
		}
	}
	st := e.srv.Stats()
	deadline := time.Now().Add(5 * time.Second)
	for (st.Drops(DropMalformed) < n || st.Drops(DropUnknownClient) < n) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // anything over n would show now
	c := st.Counters()
	if c.Drops["malformed"] != n || c.Drops["unknown_client"] != n {
		t.Fatalf("drops = %v, want malformed %d and unknown_client %d (UDP on loopback loses nothing at this rate)", c.Drops, n, n)
	}
	for _, r := range DropReasons() {
		if r != DropMalformed && r != DropUnknownClient && c.Drops[r.String()] != 0 {
			t.Errorf("drops[%s] = %d, want 0", r, c.Drops[r.String()])
		}
	}
	if got := st.Requests(PortAcct, codeAcctRequest); got != n {
		t.Errorf("acct Accounting-Request requests = %d, want %d", got, n)
	}
	if len(c.Requests) != 1 || c.Requests[0] != (CodeCount{Port: "acct", Code: "Accounting-Request", Count: n}) {
		t.Errorf("requests = %+v, want only %d acct Accounting-Request (malformed ones have no code)", c.Requests, n)
	}
	if got := e.logs.count("malformed packet dropped"); got != 1 {
		t.Errorf("malformed logged %d times, want once (rate-limited)", got)
	}
}

// TestDropPathAllocs: counting a dropped datagram allocates nothing.
func TestDropPathAllocs(t *testing.T) {
	s, _ := fuzzServer(t)
	w := newWorker()
	ctx := context.Background()
	garbage := []byte{1, 2, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	unknown := buildAccessRequest(t, []byte(testSecret), 1, "alice", "correct horse", true, nil)
	noMA := buildAccessRequest(t, []byte(testSecret), 2, "alice", "correct horse", false, nil)
	known := netip.MustParseAddrPort("127.0.0.1:4000")
	stranger := netip.MustParseAddrPort("127.0.0.9:4000")
	for _, c := range []struct {
		name string
		pkt  []byte
		src  netip.AddrPort
	}{{"malformed", garbage, known}, {"unknown client", unknown, stranger}, {"no message-authenticator", noMA, known}} {
		if a := testing.AllocsPerRun(1000, func() { s.handleAuth(ctx, w, c.pkt, c.src) }); a != 0 {
			t.Errorf("%s: %.1f allocations per packet, want 0", c.name, a)
		}
	}
	if n := s.Stats().Drops(DropMalformed); n != 1001 {
		t.Errorf("malformed drops = %d, want 1001", n)
	}
}
