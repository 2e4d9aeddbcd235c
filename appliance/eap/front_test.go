package eap

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/deskgate/deskgate/appliance/creds"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/eap/certs"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/vendors/microsoft"
)

const (
	testSecret     = "testing123"
	testServerName = "radius.test.deskgate.example"
)

// memberAuth is the test Authenticator: members with passwords, denied members, and the CA.
type memberAuth struct {
	mu       sync.Mutex
	password map[string]string
	denied   map[string]string // identity -> reason
	endAfter map[string]int    // identity -> lookups allowed before "membership ended"
	ca       *certs.Authority
}

func (m *memberAuth) NTHash(ctx context.Context, identity string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.denied[identity]; ok {
		return nil, errors.New(r)
	}
	if n, ok := m.endAfter[identity]; ok {
		if n == 0 {
			return nil, errors.New("membership ended")
		}
		m.endAfter[identity] = n - 1
	}
	pw, ok := m.password[identity]
	if !ok {
		return nil, fmt.Errorf("unknown identity %q", identity)
	}
	return creds.NTHash(pw), nil
}

func (m *memberAuth) CertIdentity(ctx context.Context, cert *x509.Certificate, chains [][]*x509.Certificate) (string, error) {
	id, err := m.ca.VerifiedCertIdentity(cert, chains)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.denied[id]; ok {
		return "", errors.New(r)
	}
	if n, ok := m.endAfter[id]; ok {
		if n == 0 {
			return "", errors.New("membership ended")
		}
		m.endAfter[id] = n - 1
	}
	return id, nil
}

// front is a minimal RADIUS server in front of the EAP server, as the lead's appliance/radius will be.
type front struct {
	t    testing.TB
	srv  *Server
	addr string
	mtu  atomic.Int32 // overrides the request's Framed-MTU when set

	mu      sync.Mutex
	results []Result // every Accept and Reject
}

func newFront(t testing.TB, srv *Server) *front {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &front{t: t, srv: srv, addr: pc.LocalAddr().String()}
	ps := &radius.PacketServer{
		SecretSource: radius.StaticSecretSource([]byte(testSecret)),
		Handler:      radius.HandlerFunc(f.serve),
	}
	go ps.Serve(pc)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		ps.Shutdown(ctx)
	})
	return f
}

func (f *front) serve(w radius.ResponseWriter, r *radius.Request) {
	var eapMsg []byte
	for _, a := range r.Attributes {
		if a.Type == rfc2869.EAPMessage_Type {
			eapMsg = append(eapMsg, a.Attribute...)
		}
	}
	mtu := int(rfc2865.FramedMTU_Get(r.Packet))
	if m := int(f.mtu.Load()); m > 0 {
		mtu = m
	}
	res := f.srv.Handle(r.Context(), Request{
		EAPMessage: eapMsg,
		State:      rfc2865.State_Get(r.Packet),
		FramedMTU:  mtu,
		UserName:   rfc2865.UserName_GetString(r.Packet),
		NASKey:     r.RemoteAddr.String() + "|" + rfc2865.CallingStationID_GetString(r.Packet),
	})
	var resp *radius.Packet
	switch res.Action {
	case Challenge:
		resp = r.Response(radius.CodeAccessChallenge)
		rfc2865.State_Set(resp, res.State)
	case Accept:
		resp = r.Response(radius.CodeAccessAccept)
		rfc2865.UserName_SetString(resp, res.Identity)
		microsoft.MSMPPERecvKey_Add(resp, res.MSK[:32])
		microsoft.MSMPPESendKey_Add(resp, res.MSK[32:64])
	default:
		resp = r.Response(radius.CodeAccessReject)
	}
	if res.Action != Challenge {
		f.mu.Lock()
		f.results = append(f.results, res)
		f.mu.Unlock()
	}
	for _, c := range SplitEAPMessage(res.EAPMessage) {
		resp.Add(rfc2869.EAPMessage_Type, c)
	}
	signResponse(resp)
	w.Write(resp)
}

// signResponse adds Message-Authenticator (RFC 3579 3.2), computed with the request authenticator.
func signResponse(p *radius.Packet) {
	rfc2869.MessageAuthenticator_Set(p, make([]byte, 16))
	b, err := p.MarshalBinary()
	if err != nil {
		panic(err)
	}
	h := hmac.New(md5.New, p.Secret)
	h.Write(b)
	rfc2869.MessageAuthenticator_Set(p, h.Sum(nil))
}

func (f *front) all() []Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Result(nil), f.results...)
}

// eapolTest finds eapol_test or skips (fails under CI=true).
func eapolTest(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"eapol_test", "/usr/sbin/eapol_test", "/usr/bin/eapol_test"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("eapol_test not installed (Debian package eapoltest) and CI=true")
	}
	t.Skip("eapol_test not installed (Debian package eapoltest)")
	return ""
}

// eapolRun is one eapol_test invocation's outcome.
type eapolRun struct {
	success bool
	msks    [][]byte // every "MSK - hexdump" eapol_test printed
	mppeOK  int
	mppeBad int
	resumed int // handshakes OpenSSL reported as resumed
	out     string
}

var (
	mskRe  = regexp.MustCompile(`EAP-[A-Z]+: Derived key - hexdump\(len=64\):((?: [0-9a-f]{2})+)`)
	mppeRe = regexp.MustCompile(`MPPE keys OK: (\d+)\s+mismatch: (\d+)`)
)

// runEapol runs eapol_test with the given network block against the front.
func runEapol(t testing.TB, f *front, network string, args ...string) eapolRun {
	t.Helper()
	bin := eapolTest(t)
	conf := filepath.Join(t.TempDir(), "eapol.conf")
	if err := os.WriteFile(conf, []byte("network={\n"+network+"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(f.addr)
	argv := append([]string{"-c", conf, "-a", host, "-p", port, "-s", testSecret, "-t", "10"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, argv...).CombinedOutput()
	r := eapolRun{out: string(out)}
	if os.Getenv("EAPOL_DEBUG") != "" {
		t.Log(r.out)
	}
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	r.success = len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "SUCCESS"
	// One segment per successful authentication; the MSK is the last one derived in it (with TLS 1.3
	// eapol_test prints it more than once).
	segs := strings.Split(r.out, "CTRL-EVENT-EAP-SUCCESS")
	for _, seg := range segs[:len(segs)-1] {
		ms := mskRe.FindAllStringSubmatch(seg, -1)
		if len(ms) == 0 {
			continue
		}
		b, err := hex.DecodeString(strings.ReplaceAll(ms[len(ms)-1][1], " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		r.msks = append(r.msks, b)
		if strings.Contains(seg, "Handshake finished - resumed=1") {
			r.resumed++
		}
	}
	if m := mppeRe.FindStringSubmatch(r.out); m != nil {
		fmt.Sscan(m[1], &r.mppeOK)
		fmt.Sscan(m[2], &r.mppeBad)
	}
	return r
}

// testbed is a server with certificates and members, and files eapol_test needs.
type testbed struct {
	dir    string
	ca     *certs.Authority
	auth   *memberAuth
	srv    *Server
	front  *front
	caFile string
}

func newTestbed(t testing.TB, mod func(*Config)) *testbed {
	t.Helper()
	dir := t.TempDir()
	ca, err := certs.Open(certs.Config{Dir: filepath.Join(dir, "pki"), ServerName: testServerName})
	if err != nil {
		t.Fatal(err)
	}
	auth := &memberAuth{
		password: map[string]string{"alice@example.com": "correct horse", "bob@example.com": "battery staple"},
		denied:   map[string]string{"ended@example.com": "membership ended", "vo@example.com": "plan Virtual Office has no WiFi"},
		ca:       ca,
	}
	cfg := Config{Certificate: ca.ServerCertificate(), ClientCAs: ca.ClientCAs()}
	cfg.SessionTicketKey[0] = 1
	if mod != nil {
		mod(&cfg)
	}
	var h slog.Handler = slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})
	if _, fuzz := t.(*testing.F); fuzz {
		h = slog.DiscardHandler // a fuzz target must not log through F
	}
	srv, err := New(cfg, auth, slog.New(h))
	if err != nil {
		t.Fatal(err)
	}
	tb := &testbed{dir: dir, ca: ca, auth: auth, srv: srv, front: newFront(t, srv)}
	tb.caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(tb.caFile, ca.TrustAnchorPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return tb
}

// clientCert issues a client certificate and writes it for eapol_test.
func (tb *testbed) clientCert(t testing.TB, identity string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	cp, kp, err := tb.ca.IssueClient(identity, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile = filepath.Join(tb.dir, identity+".pem")
	keyFile = filepath.Join(tb.dir, identity+".key")
	if err := os.WriteFile(certFile, cp, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, kp, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err = parsePEMCert(cp)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func peapNet(caFile, identity, password string) string {
	return fmt.Sprintf(`key_mgmt=IEEE8021X
eap=PEAP
identity="%s"
anonymous_identity="anonymous"
password="%s"
ca_cert="%s"
domain_match="%s"
phase1="peaplabel=0 tls_disable_session_ticket=0"
phase2="auth=MSCHAPV2"`, identity, password, caFile, testServerName)
}

func ttlsNet(caFile, identity, password, inner string) string {
	return fmt.Sprintf(`key_mgmt=IEEE8021X
eap=TTLS
identity="%s"
anonymous_identity="anonymous"
password="%s"
ca_cert="%s"
domain_match="%s"
phase1="tls_disable_session_ticket=0"
phase2="auth=%s"`, identity, password, caFile, testServerName, inner)
}

func tlsNet(caFile, identity, certFile, keyFile, phase1 string) string {
	return fmt.Sprintf(`key_mgmt=IEEE8021X
eap=TLS
identity="%s"
ca_cert="%s"
domain_match="%s"
client_cert="%s"
private_key="%s"
phase1="tls_disable_session_ticket=0 %s"`, identity, caFile, testServerName, certFile, keyFile, phase1)
}

// checkAccept asserts eapol_test succeeded and that every MSK it derived equals the server's.
func checkAccept(t *testing.T, tb *testbed, r eapolRun, wantIdentity, wantMethod string, n int) {
	t.Helper()
	if !r.success {
		t.Fatalf("eapol_test did not succeed:\n%s", tail(r.out, 60))
	}
	if r.mppeBad != 0 || r.mppeOK != n {
		t.Fatalf("eapol_test MPPE keys OK %d mismatch %d, want %d/0", r.mppeOK, r.mppeBad, n)
	}
	res := tb.front.all()
	if len(res) < n || len(r.msks) < n {
		t.Fatalf("got %d server results and %d eapol_test MSKs, want %d\n%s", len(res), len(r.msks), n, tail(r.out, 400))
	}
	res = res[len(res)-n:]
	for i, x := range res {
		if x.Action != Accept || x.Identity != wantIdentity || x.Method != wantMethod {
			t.Fatalf("result %d = %v %q %q (%s), want Accept %q %q", i, x.Action, x.Identity, x.Method, x.Reason, wantIdentity, wantMethod)
		}
		if !bytes.Equal(x.MSK, r.msks[len(r.msks)-n+i]) {
			t.Fatalf("result %d: server MSK %x != eapol_test MSK %x", i, x.MSK, r.msks[len(r.msks)-n+i])
		}
	}
}

func tail(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
