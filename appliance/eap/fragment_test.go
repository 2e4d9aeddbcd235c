package eap

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/internal/rsasign"
)

// With an RSA-2048 certificate the server's first flight (ServerHello,
// Certificate, ServerKeyExchange, ServerHelloDone) is about 1.3 KB. When
// the NAS announces Framed-MTU 1400 (eapol_test, hostapd), it goes out in
// one EAP request, not two: one RADIUS round trip less per full login.
func TestServerFlightFitsFramedMTU(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now() // certificate validity for eapol_test, which reads the wall clock
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: testServerName}, DNSNames: []string{testServerName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	tb := newTestbed(t, func(c *Config) { c.Certificate = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key} })
	if err := os.WriteFile(tb.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runEapol(t, tb.front, peapNet(tb.caFile, "alice@example.com", "correct horse"))
	checkAccept(t, tb, r, "alice@example.com", "peap", 1)
	frags := strings.Count(r.out, "Flags 0xc0") + strings.Count(r.out, "Flags 0x40")
	largest := maxLen(eapLenRe.FindAllStringSubmatch(r.out, -1))
	t.Logf("largest EAP request %d bytes, %d server fragments", largest, frags)
	if largest <= 1024 {
		t.Fatalf("largest EAP request %d bytes: the RSA flight should exceed the old 1020-byte default, or this proves nothing", largest)
	}
	if frags != 0 {
		t.Errorf("server fragmented %d times under Framed-MTU 1400; want its flight in one request", frags)
	}
	if largest > 1400-4 {
		t.Errorf("EAP request of %d bytes exceeds Framed-MTU 1400", largest)
	}
}

// The server signs with the backend this build ships (internal/rsasign):
// OpenSSL under the openssl tag, crypto/rsa without it.
func TestServerKeyBackend(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tb := newTestbed(t, func(c *Config) { c.Certificate.PrivateKey = key })
	_, plain := tb.srv.tunnel.Certificates[0].PrivateKey.(*rsa.PrivateKey)
	if want := rsasign.Backend() == "go"; plain != want {
		t.Errorf("backend %s: tunnel key is %T", rsasign.Backend(), tb.srv.tunnel.Certificates[0].PrivateKey)
	}
	if tb.srv.eaptls.Certificates[0].PrivateKey != tb.srv.tunnel.Certificates[0].PrivateKey {
		t.Error("EAP-TLS and the tunnel methods sign with different keys")
	}
}
