package rsasign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

var testKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

func wrapped(t testing.TB) crypto.Signer {
	t.Helper()
	w, err := Wrap(testKey)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := w.(crypto.Signer)
	if !ok {
		t.Fatalf("Wrap returned %T, not a crypto.Signer", w)
	}
	return s
}

// Every signature crypto/tls asks for verifies with crypto/rsa.
func TestSignaturesVerify(t *testing.T) {
	s := wrapped(t)
	t.Logf("backend %s, signer %T", Backend(), s)
	msg := []byte("ServerKeyExchange params")
	digest := func(h crypto.Hash) []byte {
		switch h {
		case crypto.SHA1:
			d := sha1.Sum(msg)
			return d[:]
		case crypto.SHA256:
			d := sha256.Sum256(msg)
			return d[:]
		case crypto.SHA384:
			d := sha512.Sum384(msg)
			return d[:]
		default:
			d := sha512.Sum512(msg)
			return d[:]
		}
	}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		d := digest(h)
		sig, err := s.Sign(rand.Reader, d, h)
		if err != nil {
			t.Fatalf("PKCS #1 v1.5 %v: %v", h, err)
		}
		if err := rsa.VerifyPKCS1v15(&testKey.PublicKey, h, d, sig); err != nil {
			t.Errorf("PKCS #1 v1.5 %v: %v", h, err)
		}
		if h == crypto.SHA1 {
			continue
		}
		for _, salt := range []int{rsa.PSSSaltLengthEqualsHash, rsa.PSSSaltLengthAuto, 20} {
			o := &rsa.PSSOptions{SaltLength: salt, Hash: h}
			sig, err := s.Sign(rand.Reader, d, o)
			if err != nil {
				t.Fatalf("PSS %v salt %d: %v", h, salt, err)
			}
			// Verify with the salt length the signer was asked for, not Auto:
			// a signer that ignored it fails here.
			want := salt
			if salt == rsa.PSSSaltLengthAuto {
				want = testKey.Size() - 2 - h.Size()
			}
			if err := rsa.VerifyPSS(&testKey.PublicKey, h, d, sig, &rsa.PSSOptions{SaltLength: want}); err != nil {
				t.Errorf("PSS %v salt %d: %v", h, salt, err)
			}
		}
		// A signature over another digest must not verify (the test can fail).
		other := digest(h)
		other[0] ^= 1
		if rsa.VerifyPKCS1v15(&testKey.PublicKey, h, other, sig) == nil {
			t.Errorf("%v: signature verifies for another digest", h)
		}
	}
}

func TestBadInput(t *testing.T) {
	s := wrapped(t)
	if _, err := s.Sign(rand.Reader, make([]byte, 31), crypto.SHA256); err == nil {
		t.Error("a 31-byte SHA-256 digest was signed")
	}
	if _, err := s.Sign(rand.Reader, make([]byte, 32), &rsa.PSSOptions{SaltLength: -7, Hash: crypto.SHA256}); err == nil {
		t.Error("PSS salt length -7 was accepted")
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if w, err := Wrap(ec); err != nil || w != crypto.PrivateKey(ec) {
		t.Errorf("Wrap(ECDSA key) = %T, %v; want the key itself", w, err)
	}
	broken := *testKey
	broken.Primes = []*big.Int{big.NewInt(7), big.NewInt(11)}
	if Backend() != "go" {
		if _, err := Wrap(&broken); err == nil {
			t.Error("Wrap accepted an inconsistent RSA key")
		}
	}
}

// A TLS 1.2 (ECDHE-RSA, ServerKeyExchange) and a TLS 1.3
// (CertificateVerify, PSS) handshake with the wrapped key, verified by
// crypto/tls's client.
func TestTLSHandshake(t *testing.T) {
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "radius.test"}, DNSNames: []string{"radius.test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &testKey.PublicKey, testKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: wrapped(t)}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		c1, c2 := net.Pipe()
		srv := tls.Server(c1, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: v, MaxVersion: v})
		cli := tls.Client(c2, &tls.Config{RootCAs: roots, ServerName: "radius.test", MinVersion: v, MaxVersion: v})
		errc := make(chan error, 1)
		go func() { errc <- srv.Handshake() }()
		if err := cli.Handshake(); err != nil {
			t.Fatalf("%s: client handshake: %v", tls.VersionName(v), err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("%s: server handshake: %v", tls.VersionName(v), err)
		}
		if got := cli.ConnectionState().Version; got != v {
			t.Errorf("negotiated %s, want %s", tls.VersionName(got), tls.VersionName(v))
		}
		c1.Close()
		c2.Close()
	}
}

func BenchmarkSignPSS(b *testing.B) {
	d := sha256.Sum256([]byte("x"))
	o := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	b.Run("crypto-rsa", func(b *testing.B) {
		for b.Loop() {
			if _, err := testKey.Sign(rand.Reader, d[:], o); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wrapped", func(b *testing.B) {
		s := wrapped(b)
		for b.Loop() {
			if _, err := s.Sign(rand.Reader, d[:], o); err != nil {
				b.Fatal(err)
			}
		}
	})
}
