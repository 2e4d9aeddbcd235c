package portal

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// selfSigned writes a certificate for portal.deskgate.lan and 127.0.0.1.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "portal.deskgate.lan"},
		DNSNames: []string{"portal.deskgate.lan"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// TestRun serves plain HTTP and, with a certificate, the RFC 8908 API over
// HTTPS on real loopback listeners, then shuts down cleanly on cancel.
func TestRun(t *testing.T) {
	plain, secure := freeAddr(t), freeAddr(t)
	cert, key := selfSigned(t)
	e := newEnv(t, func(c *Config) {
		c.Listen, c.ListenTLS, c.CertFile, c.KeyFile = plain, secure, cert, key
	})
	_, tlsPort, _ := net.SplitHostPort(secure)
	if want := "https://portal.deskgate.lan:" + tlsPort + "/captive-portal/api"; e.srv.APIURL() != want {
		t.Errorf("APIURL %q, want %q", e.srv.APIURL(), want)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.srv.Run(ctx) }()

	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(cert)
	pool.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "portal.deskgate.lan"}}
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer tr.CloseIdleConnections()
	get := func(url string) *http.Response {
		t.Helper()
		var res *http.Response
		var err error
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if res, err = client.Get(url); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := get("http://" + plain + "/generate_204")
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		t.Errorf("generate_204 over the listener: %d", res.StatusCode)
	}
	res = get("https://" + secure + apiPath)
	var api map[string]any
	err := json.NewDecoder(res.Body).Decode(&api)
	res.Body.Close()
	if err != nil || res.Header.Get("Content-Type") != "application/captive+json" || api["captive"] != true ||
		api["user-portal-url"] != "https://portal.deskgate.lan:"+tlsPort+"/" {
		t.Errorf("API over TLS: %v %q %v", err, res.Header.Get("Content-Type"), api)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := net.DialTimeout("tcp", plain, time.Second); err == nil {
		t.Error("listener still open after Run returned")
	}
	// A second server on a taken port fails fast with an error.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	e2 := newEnv(t, func(c *Config) { c.Listen = ln.Addr().String() })
	if err := e2.srv.Run(context.Background()); err == nil {
		t.Error("Run on a busy port returned nil")
	}
}
