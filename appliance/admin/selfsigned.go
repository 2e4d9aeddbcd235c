package admin

// The TCP listener's TLS. With admin.tls_cert_file the listener speaks
// TLS only, with that certificate. Without one, deskgated creates a
// self-signed certificate on first start (data_dir/admin-tls.crt and
// admin-tls.key, 0600) and the listener answers both: TLS with that
// certificate (the browser's console; `deskgate status` prints its SHA-256
// fingerprint to compare with the browser's warning), and plain HTTP from
// loopback peers only (the CLI, a local /metrics scraper); a plain request
// from any other address is redirected to https.

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/deskgate/deskgate/internal/atomicfile"
)

// The self-signed certificate's files in Options.SelfSignedDir.
const (
	SelfSignedCertFile = "admin-tls.crt"
	SelfSignedKeyFile  = "admin-tls.key"
)

// selfSignedListener serves TLS with the self-signed certificate and
// plain HTTP to loopback peers on one port.
func (s *Server) selfSignedListener(ln net.Listener, addr string) (net.Listener, error) {
	cert, err := loadOrCreateSelfSigned(s.selfSignedDir, certNames(addr, s.allowedHosts()), s.now())
	if err != nil {
		return nil, err
	}
	fp := CertFingerprint(cert)
	s.fingerprint.Store(&fp)
	s.selfSigned.Store(true)
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	return &sniffListener{Listener: ln, tls: tc}, nil
}

// CertFingerprint is the SHA-256 of the leaf certificate, as browsers
// show it (colon-separated hex).
func CertFingerprint(c tls.Certificate) string {
	if len(c.Certificate) == 0 {
		return ""
	}
	sum := sha256.Sum256(c.Certificate[0])
	hex := make([]string, len(sum))
	for i, b := range sum {
		hex[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(hex, ":")
}

// certNames are the names the self-signed certificate is for: loopback,
// the listen address's host and the allowed host names.
func certNames(listen string, allowed []string) []string {
	names := []string{"localhost", "127.0.0.1", "::1"}
	if host, _, err := net.SplitHostPort(listen); err == nil && host != "" {
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			names = append(names, host)
		}
	}
	for _, h := range allowed {
		names = append(names, strings.TrimSuffix(h, "."))
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// loadOrCreateSelfSigned returns the self-signed admin certificate,
// creating a new one when there is none, it has expired (on the daemon's
// clock) or it lacks a name the configuration now needs.
func loadOrCreateSelfSigned(dir string, names []string, now time.Time) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, SelfSignedCertFile), filepath.Join(dir, SelfSignedKeyFile)
	if c, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err == nil && now.Before(leaf.NotAfter.Add(-24*time.Hour)) && !now.Before(leaf.NotBefore) && coversNames(leaf, names) {
			return c, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return tls.Certificate{}, fmt.Errorf("load self-signed admin certificate %s: %w (delete both files to get a new one)", certPath, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("admin certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("admin certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "deskgate console", Organization: []string{"deskgate"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(397 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("admin certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("admin certificate: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	if err := atomicfile.Write(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("write %s: %w", keyPath, err)
	}
	if err := atomicfile.Write(certPath, certPEM, 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("write %s: %w", certPath, err)
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

func coversNames(c *x509.Certificate, names []string) bool {
	for _, n := range names {
		if c.VerifyHostname(n) != nil {
			return false
		}
	}
	return true
}

// sniffListener serves TLS and plain HTTP on one port: a connection whose
// first byte is a TLS handshake record gets TLS (a *tls.Conn, so requests
// carry r.TLS); any other is plain HTTP, which only loopback peers may use.
// Each new connection is sniffed in its own goroutine, so a silent client
// holds up nobody.
type sniffListener struct {
	net.Listener
	tls   *tls.Config
	once  sync.Once
	shut  sync.Once
	conns chan net.Conn
	errc  chan error
	done  chan struct{}
}

func (l *sniffListener) start() {
	l.conns, l.errc, l.done = make(chan net.Conn), make(chan error, 1), make(chan struct{})
	go func() {
		for {
			c, err := l.Listener.Accept()
			if err != nil {
				l.errc <- err
				return
			}
			go l.sniff(c)
		}
	}()
}

func (l *sniffListener) sniff(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // an I/O deadline, not a decision
	r := bufio.NewReader(c)
	first, err := r.Peek(1)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return
	}
	var out net.Conn = &peekedConn{Conn: c, r: r}
	switch {
	case first[0] == 0x16:
		out = tls.Server(out, l.tls)
	case !isLoopbackPeer(c):
		redirectToTLS(out)
		return
	}
	select {
	case l.conns <- out:
	case <-l.done:
		c.Close()
	}
}

func isLoopbackPeer(c net.Conn) bool {
	a, ok := c.RemoteAddr().(*net.TCPAddr)
	return ok && a.IP.IsLoopback()
}

func (l *sniffListener) Accept() (net.Conn, error) {
	l.once.Do(l.start)
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errc:
		l.errc <- err
		return nil, err
	}
}

func (l *sniffListener) Close() error {
	l.once.Do(l.start)
	l.shut.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// redirectToTLS answers one plain request with a redirect to https.
func redirectToTLS(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second)) // an I/O deadline, not a decision
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return
	}
	body := "the admin listener wants https from other hosts\n"
	fmt.Fprintf(c, "HTTP/1.1 308 Permanent Redirect\r\nLocation: https://%s%s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		req.Host, req.URL.RequestURI(), len(body), body)
	c.Close()
}

// peekedConn reads through the buffered reader that peeked.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
