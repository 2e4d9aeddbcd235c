package eap

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/creds"
)

// A Go EAP peer for PEAP/MS-CHAPv2 (with crypto binding), TTLS/PAP and EAP-TLS over TLS 1.2 that calls
// Server.Handle directly: a full login per iteration, without RADIUS, sockets or another process, so
// the server's own per-login CPU and allocations can be measured and compared change by change
// (BenchmarkLogin). eapol_test remains the interoperability check (front_test.go, matrix_test.go).

var discardLog = slog.New(slog.DiscardHandler)

// goPeer is the peer's end of one conversation and the net.Conn its TLS client runs over: Write
// collects the TLS bytes of the next EAP-Response; Read sends them (none: an acknowledgement) and
// returns the server's next TLS message, reassembled from its fragments.
type goPeer struct {
	srv   *Server
	typ   uint8
	state []byte
	id    uint8
	out   []byte
	in    []byte
	res   *Result
	trips int // Access-Request/answer round trips
}

func (p *goPeer) handle(msg []byte) (Result, error) {
	p.trips++
	r := p.srv.Handle(context.Background(), Request{EAPMessage: msg, State: p.state, FramedMTU: 1400, NASKey: "bench|02:00:00:00:00:01"})
	if r.Action != Challenge {
		p.res = &r
		return r, nil
	}
	p.state = r.State
	if len(r.EAPMessage) < 5 || r.EAPMessage[0] != codeRequest {
		return r, fmt.Errorf("server sent % x", r.EAPMessage)
	}
	p.id = r.EAPMessage[1]
	return r, nil
}

func peerResponse(id, typ uint8, data ...[]byte) []byte {
	b := buildRequest(id, typ, data...)
	b[0] = codeResponse
	return b
}

// start sends the outer identity and checks that the server proposes the peer's method.
func (p *goPeer) start() error {
	r, err := p.handle(peerResponse(0, typeIdentity, []byte("anonymous")))
	if err != nil {
		return err
	}
	if p.res != nil || r.EAPMessage[4] != p.typ {
		// The server proposes its first method: NAK it for ours.
		if p.res != nil {
			return fmt.Errorf("identity answered with %v", r.Action)
		}
		if r, err = p.handle(peerResponse(p.id, typeNak, []byte{p.typ})); err != nil {
			return err
		}
		if p.res != nil || r.EAPMessage[4] != p.typ {
			return fmt.Errorf("server did not start type %d after the NAK", p.typ)
		}
	}
	return nil
}

func (p *goPeer) Write(b []byte) (int, error) { p.out = append(p.out, b...); return len(b), nil }

func (p *goPeer) Read(b []byte) (int, error) {
	for len(p.in) == 0 {
		if p.res != nil {
			return 0, io.EOF
		}
		msg := peerResponse(p.id, p.typ, []byte{0}, p.out)
		p.out = p.out[:0]
		for {
			r, err := p.handle(msg)
			if err != nil {
				return 0, err
			}
			if p.res != nil {
				break
			}
			d := r.EAPMessage[5:]
			flags := d[0]
			d = d[1:]
			if flags&flagLength != 0 {
				d = d[4:]
			}
			p.in = append(p.in, d...)
			if flags&flagMore == 0 {
				break
			}
			msg = peerResponse(p.id, p.typ, []byte{0})
		}
	}
	n := copy(b, p.in)
	p.in = p.in[n:]
	return n, nil
}

func (p *goPeer) Close() error                      { return nil }
func (p *goPeer) LocalAddr() net.Addr               { return eapAddr{} }
func (p *goPeer) RemoteAddr() net.Addr              { return eapAddr{} }
func (p *goPeer) SetDeadline(time.Time) error       { return nil }
func (p *goPeer) SetReadDeadline(time.Time) error   { return nil }
func (p *goPeer) SetWriteDeadline(time.Time) error  { return nil }
func (p *goPeer) final() (*Result, error)           { _, _ = p.Read(make([]byte, 1)); return p.res, nil }
func (p *goPeer) tlsClient(c *tls.Config) *tls.Conn { return tls.Client(p, c) }

// loginBed is a server with one member, its client certificate for EAP-TLS, and the TLS client config
// (TLS 1.2, no session tickets: every login is a full handshake, as eapol_test's in the benchmark).
type loginBed struct {
	srv      *Server
	client   *tls.Config
	tlsCert  tls.Certificate // EAP-TLS client certificate
	user, pw string
}

func newLoginBed(t testing.TB, key string) *loginBed {
	t.Helper()
	tb := newTestbed(t, nil)
	srv := tb.srv
	roots := x509.NewCertPool()
	roots.AddCert(tb.ca.TrustAnchor())
	if key == "rsa2048" {
		cert, root := rsaServerCert(t)
		roots = x509.NewCertPool()
		roots.AddCert(root)
		cfg := Config{Certificate: cert, ClientCAs: tb.ca.ClientCAs()}
		var err error
		if srv, err = New(cfg, tb.auth, nil); err != nil {
			t.Fatal(err)
		}
	}
	srv.log = discardLog // a benchmark measures the server, not the test log
	cp, kp, err := tb.ca.IssueClient("alice@example.com", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := tls.X509KeyPair(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	return &loginBed{
		srv: srv, tlsCert: cc, user: "alice@example.com", pw: "correct horse",
		client: &tls.Config{RootCAs: roots, ServerName: testServerName, MaxVersion: tls.VersionTLS12, SessionTicketsDisabled: true},
	}
}

// rsaServerCert is an RSA-2048 server certificate for testServerName and the self-signed CA that issued it.
func rsaServerCert(t testing.TB) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now() // a test certificate's validity window, not a decision of the daemon
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench rsa CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: testServerName},
		DNSNames: []string{testServerName}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, ca
}

// login runs one full login of method ("peap", "ttls", "tls") and checks the Accept: identity, method
// and an MSK the peer derives the same way.
func (lb *loginBed) login(method string) (*goPeer, error) {
	typ := map[string]uint8{"peap": typePEAP, "ttls": typeTTLS, "tls": typeTLS}[method]
	p := &goPeer{srv: lb.srv, typ: typ}
	if err := p.start(); err != nil {
		return p, err
	}
	cfg := lb.client
	if method == "tls" {
		cfg = cfg.Clone()
		cfg.Certificates = []tls.Certificate{lb.tlsCert}
	}
	tc := p.tlsClient(cfg)
	if err := tc.Handshake(); err != nil {
		return p, fmt.Errorf("handshake: %w (server: %+v)", err, p.res)
	}
	cs := tc.ConnectionState()
	var wantMSK []byte
	var wantMethod string
	switch method {
	case "peap":
		keys, err := cs.ExportKeyingMaterial(labelClientEAP, nil, 128)
		if err != nil {
			return p, err
		}
		if wantMSK, err = lb.peapInner(tc, keys[:60]); err != nil {
			return p, err
		}
		wantMethod = "peap"
	case "ttls":
		keys, err := cs.ExportKeyingMaterial(labelTTLSKeys, nil, 64)
		if err != nil {
			return p, err
		}
		wantMSK, wantMethod = keys, "ttls-pap"
		pw := []byte(lb.pw)
		pw = append(pw, make([]byte, 16-len(pw)%16)...)
		avps := appendAVP(appendAVP(nil, 0, avpUserName, []byte(lb.user)), 0, avpUserPassword, pw)
		if _, err := tc.Write(avps); err != nil {
			return p, err
		}
	case "tls":
		keys, err := cs.ExportKeyingMaterial(labelClientEAP, nil, 128)
		if err != nil {
			return p, err
		}
		wantMSK, wantMethod = keys[:64], "tls"
	}
	res, _ := p.final()
	switch {
	case res == nil || res.Action != Accept:
		return p, fmt.Errorf("login ended with %+v", res)
	case res.Identity != lb.user || res.Method != wantMethod:
		return p, fmt.Errorf("accepted %q with %q, want %q with %q", res.Identity, res.Method, lb.user, wantMethod)
	case !bytes.Equal(res.MSK, wantMSK):
		return p, errors.New("server's MSK differs from the peer's")
	}
	return p, nil
}

// peapInner runs the peer's phase 2: inner identity, EAP-MSCHAPv2 and the result TLV with the crypto
// binding answered; it returns the compound MSK the server must report.
func (lb *loginBed) peapInner(tc *tls.Conn, tk []byte) ([]byte, error) {
	buf := make([]byte, 4096)
	read := func(want uint8) ([]byte, error) {
		n, err := tc.Read(buf)
		if err != nil {
			return nil, fmt.Errorf("read tunnelled request: %w", err)
		}
		b := buf[:n]
		if len(b) >= 5 && b[0] == codeRequest && b[4] == typeExtensions {
			b = b[4:] // the extensions method keeps its header
		}
		if len(b) < 1 || b[0] != want {
			return nil, fmt.Errorf("tunnelled request % x, want type %d", b, want)
		}
		return b[1:], nil
	}
	if _, err := read(typeIdentity); err != nil {
		return nil, err
	}
	if _, err := tc.Write(append([]byte{typeIdentity}, lb.user...)); err != nil {
		return nil, err
	}
	ch, err := read(typeMSCHAPv2)
	if err != nil {
		return nil, err
	}
	if len(ch) < 5+16 || ch[0] != 1 {
		return nil, fmt.Errorf("mschapv2 challenge % x", ch)
	}
	msid, auth := ch[1], bytes.Clone(ch[5:21])
	peerChal := make([]byte, 16)
	_, _ = rand.Read(peerChal)
	hash := creds.NTHash(lb.pw)
	nt := ntResponse(auth, peerChal, lb.user, hash)
	val := append(append(append([]byte{}, peerChal...), make([]byte, 8)...), nt...)
	val = append(val, 0)
	body := append(append([]byte{49}, val...), lb.user...)
	if _, err := tc.Write(append([]byte{typeMSCHAPv2}, append(mschapHeader(2, msid, len(body)), body...)...)); err != nil {
		return nil, err
	}
	succ, err := read(typeMSCHAPv2)
	if err != nil {
		return nil, err
	}
	want := authenticatorResponse(auth, peerChal, nt, lb.user, hash)
	if len(succ) < 4 || succ[0] != 3 || !bytes.HasPrefix(succ[4:], []byte(want)) {
		return nil, fmt.Errorf("mschapv2 success % x", succ)
	}
	if _, err := tc.Write([]byte{typeMSCHAPv2, 3}); err != nil {
		return nil, err
	}
	n, err := tc.Read(buf)
	if err != nil {
		return nil, err
	}
	ext := buf[:n]
	if len(ext) < 5 || ext[0] != codeRequest || ext[4] != typeExtensions {
		return nil, fmt.Errorf("result request % x", ext)
	}
	var binding []byte
	for d := ext[5:]; len(d) >= 4; {
		l := int(binary.BigEndian.Uint16(d[2:]))
		if binary.BigEndian.Uint16(d)&0x3fff == tlvCryptoBinding && 4+l <= len(d) {
			binding = d[:4+l]
		}
		d = d[min(4+l, len(d)):]
	}
	if len(binding) != cbTLVLen {
		return nil, errors.New("no crypto binding request")
	}
	cb, err := newCryptoBinding(tk, mschapv2MSK(hash, nt))
	if err != nil {
		return nil, err
	}
	copy(cb.nonce[:], binding[8:40])
	resp := append([]byte{0, tlvCryptoBinding, 0, 56, 0, 0, 0, 1}, cb.nonce[:]...)
	resp[8+31] |= 1 // the response's nonce has its least significant bit set
	resp = append(resp, make([]byte, 20)...)
	copy(resp[cbTLVLen-20:], cb.mac(resp))
	tlvs := append([]byte{0x80, tlvResult, 0, 2, 0, peapResultOK}, resp...)
	if _, err := tc.Write(peerResponse(ext[1], typeExtensions, tlvs)); err != nil {
		return nil, err
	}
	return cb.msk(), nil
}

// TestGoPeerLogins: the Go peer completes full PEAP, TTLS/PAP and EAP-TLS logins with a P-256 and an
// RSA-2048 server certificate, in the expected number of round trips, with matching MSKs.
func TestGoPeerLogins(t *testing.T) {
	for _, key := range []string{"p256", "rsa2048"} {
		lb := newLoginBed(t, key)
		for _, m := range []struct {
			method string
			trips  int
		}{{"peap", 8}, {"ttls", 5}, {"tls", 5}} { // TTLS and TLS: a NAK of the PEAP proposal first
			p, err := lb.login(m.method)
			if err != nil {
				t.Fatalf("%s %s: %v", m.method, key, err)
			}
			if p.trips != m.trips {
				t.Errorf("%s %s: %d round trips, want %d", m.method, key, p.trips, m.trips)
			}
		}
	}
}

// BenchmarkLogin is one full login per op, peer and server together (the peer's share is the same on
// both sides of an A/B comparison): go test -run X -bench Login -benchmem ./appliance/eap/
func BenchmarkLogin(b *testing.B) {
	for _, key := range []string{"p256", "rsa2048"} {
		lb := newLoginBed(b, key)
		for _, m := range []string{"peap", "ttls", "tls"} {
			b.Run(m+"-"+key, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := lb.login(m); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
