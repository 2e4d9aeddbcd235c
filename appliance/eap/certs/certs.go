// Package certs keeps deskgate's RADIUS/EAP certificates: a local CA and a server certificate created on
// first start (or an operator-provided certificate chain instead), member client certificates for
// EAP-TLS issued by the local CA, and a file-backed revocation list consulted on every EAP-TLS login.
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/deskgate/deskgate/internal/atomicfile"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config says where the certificates live and which name the server certificate carries.
type Config struct {
	Dir        string // state directory; files are written 0600
	ServerName string // DNS name of the RADIUS server certificate, e.g. "radius.example.com"
	// CertFile and KeyFile, when set, name an operator-provided PEM certificate chain (leaf first) and
	// its key; the local CA then only issues member client certificates.
	CertFile, KeyFile string
	// TrustFile optionally names the PEM CA that clients must trust for an operator-provided chain;
	// without it the last certificate of the chain is used.
	TrustFile string
	Now       func() time.Time
	// Fleet, when set, makes client certificates fleet-wide (fleet.go).
	Fleet *Fleet
}

// File names inside Config.Dir.
const (
	caCertFile     = "ca.pem"
	caKeyFile      = "ca.key"
	serverCertFile = "server.pem"
	serverKeyFile  = "server.key"
	revokedFile    = "revoked.json"
	issuedFile     = "issued.json"
)

// Authority is the local CA plus the server certificate and the revocation list.
type Authority struct {
	cfg    Config
	ca     *x509.Certificate
	caKey  crypto.Signer
	server tls.Certificate
	trust  *x509.Certificate // what clients must trust for the server certificate

	mu      sync.Mutex
	revoked map[string]time.Time    // serial (hex) -> revocation time
	issued  map[string]issuedRecord // serial (hex) -> what was issued, for RevokeIdentity and limits
}

// issuedRecord is one entry of issued.json. Files written before expiry
// was recorded hold only the identity as a JSON string.
type issuedRecord struct {
	Identity string    `json:"identity"`
	IssuedAt time.Time `json:"issuedAt,omitzero"`
	NotAfter time.Time `json:"notAfter,omitzero"`
}

func (r *issuedRecord) UnmarshalJSON(b []byte) error {
	var id string
	if err := json.Unmarshal(b, &id); err == nil {
		*r = issuedRecord{Identity: id}
		return nil
	}
	type plain issuedRecord
	return json.Unmarshal(b, (*plain)(r))
}

// Issued describes one member client certificate the local CA issued.
type Issued struct {
	Serial   string    `json:"serial"`
	Identity string    `json:"identity"`
	IssuedAt time.Time `json:"issuedAt,omitzero"`
	NotAfter time.Time `json:"notAfter,omitzero"` // zero: issued before expiry was recorded
	Revoked  time.Time `json:"revoked,omitzero"`
	// Current is Live at the moment ListIssued or RevokeSerial answered (the CA's clock).
	Current bool `json:"live"`
}

// Live reports whether the certificate is neither revoked nor expired at now.
func (i Issued) Live(now time.Time) bool {
	return i.Revoked.IsZero() && (i.NotAfter.IsZero() || now.Before(i.NotAfter))
}

// ErrLimit is returned by IssueClientUpTo when the identity already holds
// its limit of live certificates.
var ErrLimit = errors.New("certs: limit of live client certificates reached")

// ErrUnknownSerial is returned by RevokeSerial for a serial the local CA did not issue.
var ErrUnknownSerial = errors.New("certs: no client certificate with this serial was issued")

// Open loads the CA, server certificate and revocation list from cfg.Dir, creating what is missing.
func Open(cfg Config) (*Authority, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Dir == "" {
		return nil, errors.New("certs: open: no directory")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("certs: open: %w", err)
	}
	a := &Authority{cfg: cfg, revoked: map[string]time.Time{}, issued: map[string]issuedRecord{}}
	var err error
	a.ca, a.caKey, err = a.loadOrCreateCA()
	if err != nil {
		return nil, err
	}
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		if a.server, err = tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile); err != nil {
			return nil, fmt.Errorf("certs: load operator certificate: %w", err)
		}
		chain := a.server.Certificate
		a.trust, err = x509.ParseCertificate(chain[len(chain)-1])
		if err != nil {
			return nil, fmt.Errorf("certs: parse operator chain: %w", err)
		}
		if cfg.TrustFile != "" {
			if a.trust, err = readCert(cfg.TrustFile); err != nil {
				return nil, fmt.Errorf("certs: load operator trust anchor: %w", err)
			}
		}
	} else {
		if cfg.ServerName == "" {
			return nil, errors.New("certs: open: no ServerName for the server certificate")
		}
		if a.server, err = a.loadOrCreateServer(); err != nil {
			return nil, err
		}
		a.trust = a.ca
	}
	if err := a.loadRevoked(); err != nil {
		return nil, err
	}
	return a, nil
}

// ServerCertificate is the certificate (with chain and key) the EAP server presents.
func (a *Authority) ServerCertificate() tls.Certificate { return a.server }

// TrustAnchor is the CA certificate clients must trust to verify the server (for device profiles).
func (a *Authority) TrustAnchor() *x509.Certificate { return a.trust }

// TrustAnchorPEM is TrustAnchor in PEM.
func (a *Authority) TrustAnchorPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.trust.Raw})
}

// CA is the local CA that issues member client certificates.
func (a *Authority) CA() *x509.Certificate { return a.ca }

// ClientCAs is a pool holding the local CA, for verifying EAP-TLS client certificates.
func (a *Authority) ClientCAs() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.ca)
	if f := a.cfg.Fleet; f != nil {
		// The fleet CA, and the issuing CAs known now for devices that
		// present their certificate without its chain; CertIdentity then
		// checks the whole chain against the fleet CA.
		p.AddCert(f.Root)
		p.AddCert(f.Issuing)
		for _, c := range f.Registry.Issuers() {
			p.AddCert(c)
		}
	}
	return p
}

// ServerName is the DNS name clients check (domain_match, TLSTrustedServerNames).
func (a *Authority) ServerName() string {
	if leaf, err := x509.ParseCertificate(a.server.Certificate[0]); err == nil && len(leaf.DNSNames) > 0 {
		return leaf.DNSNames[0]
	}
	return a.cfg.ServerName
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func (a *Authority) loadOrCreateCA() (*x509.Certificate, crypto.Signer, error) {
	certPath, keyPath := filepath.Join(a.cfg.Dir, caCertFile), filepath.Join(a.cfg.Dir, caKeyFile)
	if _, err := os.Stat(certPath); err == nil {
		pair, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			return nil, nil, fmt.Errorf("certs: load CA: %w", err)
		}
		signer, ok := pair.PrivateKey.(crypto.Signer)
		if !ok {
			return nil, nil, errors.New("certs: load CA: key cannot sign")
		}
		return pair.Leaf, signer, nil
	}
	key, err := newKey()
	if err != nil {
		return nil, nil, fmt.Errorf("certs: create CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, fmt.Errorf("certs: create CA: %w", err)
	}
	now := a.cfg.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "deskgate local CA " + a.cfg.ServerName, Organization: []string{"deskgate"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: create CA: %w", err)
	}
	if err := writePair(certPath, keyPath, [][]byte{der}, key); err != nil {
		return nil, nil, fmt.Errorf("certs: create CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: create CA: %w", err)
	}
	return cert, key, nil
}

// renewBefore is how long before its end a server certificate is replaced
// at start.
const renewBefore = 30 * 24 * time.Hour

func (a *Authority) loadOrCreateServer() (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(a.cfg.Dir, serverCertFile), filepath.Join(a.cfg.Dir, serverKeyFile)
	if _, err := os.Stat(certPath); err == nil {
		pair, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("certs: load server certificate: %w", err)
		}
		now := a.cfg.Now()
		fresh := now.After(pair.Leaf.NotBefore) && now.Add(renewBefore).Before(pair.Leaf.NotAfter)
		if slices.Contains(pair.Leaf.DNSNames, a.cfg.ServerName) && pair.Leaf.CheckSignatureFrom(a.ca) == nil && fresh {
			return pair, nil
		}
		// The configured name changed, the CA did, or the certificate is
		// (nearly) out of its validity: issue a new certificate below.
	}
	key, err := newKey()
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: create server key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: create server certificate: %w", err)
	}
	now := a.cfg.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: a.cfg.ServerName},
		DNSNames:     []string{a.cfg.ServerName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(0, 0, 825),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.ca, key.Public(), a.caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: create server certificate: %w", err)
	}
	// The chain is the leaf alone: clients must already hold the local CA (from the profile or the
	// CA file) to verify it, and leaving the root out keeps the server's TLS flight within one EAP
	// fragment, saving a RADIUS round trip on every full handshake.
	if err := writePair(certPath, keyPath, [][]byte{der}, key); err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: create server certificate: %w", err)
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: reload server certificate: %w", err)
	}
	return pair, nil
}

// IssueClient issues a member client certificate (for EAP-TLS) with the identity as its common name,
// returning the certificate and its key in PEM. The key is not kept.
func (a *Authority) IssueClient(identity string, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	certPEM, keyPEM, _, err = a.IssueClientUpTo(identity, validFor, 0)
	return certPEM, keyPEM, err
}

// IssueClientUpTo is IssueClient for an identity that may hold at most limit live (unexpired,
// unrevoked) certificates at once (0: no limit); beyond it, it returns ErrLimit and issues nothing.
// It also returns the new certificate's serial (hex).
func (a *Authority) IssueClientUpTo(identity string, validFor time.Duration, limit int) (certPEM, keyPEM []byte, serialHex string, err error) {
	if identity == "" {
		return nil, nil, "", errors.New("certs: issue client certificate: empty identity")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.cfg.Now()
	if limit > 0 && a.liveLocked(identity, now) >= limit {
		return nil, nil, "", ErrLimit
	}
	key, err := newKey()
	if err != nil {
		return nil, nil, "", fmt.Errorf("certs: issue client certificate: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, "", fmt.Errorf("certs: issue client certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: identity},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	issuer, issuerKey := a.ca, a.caKey
	if f := a.cfg.Fleet; f != nil {
		issuer, issuerKey = f.Issuing, f.Key
		if tmpl.NotAfter.After(issuer.NotAfter) {
			tmpl.NotAfter = issuer.NotAfter
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), issuerKey)
	if err != nil {
		return nil, nil, "", fmt.Errorf("certs: issue client certificate: %w", err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, "", fmt.Errorf("certs: issue client certificate: %w", err)
	}
	serialHex = sn.Text(16)
	rec := issuedRecord{Identity: identity, IssuedAt: now.UTC(), NotAfter: tmpl.NotAfter.UTC()}
	if f := a.cfg.Fleet; f != nil {
		// The fleet hears of it first: a certificate other boxes do not
		// know of could not be revoked there by its serial.
		if err := f.Registry.RecordIssued(a.issuedLocked(serialHex, rec), fingerprint(der)); err != nil {
			return nil, nil, "", fmt.Errorf("certs: issue client certificate: %w", err)
		}
	}
	a.issued[serialHex] = rec
	if err := saveJSON(filepath.Join(a.cfg.Dir, issuedFile), a.issued); err != nil {
		delete(a.issued, serialHex)
		return nil, nil, "", fmt.Errorf("certs: issue client certificate: record: %w", err)
	}
	chain := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if issuer != a.ca {
		// The issuing CA too, so the device presents the whole chain up
		// to the fleet CA.
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuer.Raw})...)
	}
	return chain, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), serialHex, nil
}

func (a *Authority) liveLocked(identity string, now time.Time) int {
	n := 0
	for _, i := range a.allLocked(identity) {
		if i.Live(now) {
			n++
		}
	}
	return n
}

func (a *Authority) issuedLocked(serialHex string, r issuedRecord) Issued {
	i := Issued{Serial: serialHex, Identity: r.Identity, IssuedAt: r.IssuedAt, NotAfter: r.NotAfter, Revoked: a.revoked[serialHex]}
	if f := a.cfg.Fleet; f != nil && i.Revoked.IsZero() {
		i.Revoked, _ = f.Registry.Revoked(serialHex)
	}
	return i
}

// allLocked returns the certificates of identity (every identity when
// empty) this CA issued and, in a fleet, those the other boxes issued.
func (a *Authority) allLocked(identity string) []Issued {
	var out []Issued
	for sn, r := range a.issued {
		if identity == "" || r.Identity == identity {
			out = append(out, a.issuedLocked(sn, r))
		}
	}
	if f := a.cfg.Fleet; f != nil {
		for _, i := range f.Registry.Issued(identity) {
			if _, local := a.issued[i.Serial]; !local {
				out = append(out, i)
			}
		}
	}
	return out
}

// LiveCount is how many live (unexpired, unrevoked) client certificates identity holds.
func (a *Authority) LiveCount(identity string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.liveLocked(identity, a.cfg.Now())
}

// ListIssued returns the client certificates issued to identity (every identity when empty),
// newest first.
func (a *Authority) ListIssued(identity string) []Issued {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.cfg.Now()
	out := a.allLocked(identity)
	for k := range out {
		out[k].Current = out[k].Live(now)
	}
	slices.SortFunc(out, func(x, y Issued) int {
		if c := y.IssuedAt.Compare(x.IssuedAt); c != 0 {
			return c
		}
		return strings.Compare(x.Serial, y.Serial)
	})
	return out
}

// RevokeSerial revokes one client certificate by its serial (hex, as ListIssued shows it) and returns
// it; revoking a revoked certificate again changes nothing.
func (a *Authority) RevokeSerial(serialHex string) (Issued, error) {
	serialHex = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(serialHex), "0x"))
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.issued[serialHex]
	if !ok {
		return a.revokeFleetLocked(serialHex)
	}
	if _, done := a.revoked[serialHex]; !done {
		a.revoked[serialHex] = a.cfg.Now().UTC()
		if err := a.saveRevokedLocked(); err != nil {
			delete(a.revoked, serialHex)
			return Issued{}, fmt.Errorf("certs: revoke %s: %w", serialHex, err)
		}
	}
	if f := a.cfg.Fleet; f != nil {
		if err := f.Registry.RecordRevoked(serialHex, r.Identity); err != nil {
			return Issued{}, fmt.Errorf("certs: revoke %s: %w", serialHex, err)
		}
	}
	i := a.issuedLocked(serialHex, r)
	i.Current = i.Live(a.cfg.Now())
	return i, nil
}

// IssueServer issues a TLS server certificate for names (DNS names or IP addresses) from the local
// CA, kept in memory only (the member pages' listener when the operator configured no certificate).
func (a *Authority) IssueServer(names []string, validFor time.Duration) (tls.Certificate, error) {
	if len(names) == 0 {
		return tls.Certificate{}, errors.New("certs: issue server certificate: no name")
	}
	key, err := newKey()
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: issue server certificate: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: issue server certificate: %w", err)
	}
	now := a.cfg.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.ca, key.Public(), a.caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: issue server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: issue server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, a.ca.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// Revoke adds a certificate to the revocation list and saves it.
func (a *Authority) Revoke(cert *x509.Certificate) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.revoked[cert.SerialNumber.Text(16)] = a.cfg.Now().UTC()
	if err := a.saveRevokedLocked(); err != nil {
		return fmt.Errorf("certs: revoke %s: %w", cert.Subject.CommonName, err)
	}
	return nil
}

// RevokeIdentity revokes every client certificate issued to identity (when the member's access ends)
// and returns how many were newly revoked.
func (a *Authority) RevokeIdentity(identity string) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	var serials []string
	for serial, r := range a.issued {
		if _, done := a.revoked[serial]; r.Identity == identity && !done {
			a.revoked[serial] = a.cfg.Now().UTC()
			serials = append(serials, serial)
			n++
		}
	}
	if n > 0 {
		if err := a.saveRevokedLocked(); err != nil {
			return 0, fmt.Errorf("certs: revoke %s: %w", identity, err)
		}
	}
	if f := a.cfg.Fleet; f != nil {
		for _, i := range f.Registry.Issued(identity) {
			if _, local := a.issued[i.Serial]; !local && i.Revoked.IsZero() {
				serials = append(serials, i.Serial)
				n++
			}
		}
		for _, sn := range serials {
			if err := f.Registry.RecordRevoked(sn, identity); err != nil {
				return 0, fmt.Errorf("certs: revoke %s: %w", identity, err)
			}
		}
	}
	return n, nil
}

// IsRevoked reports whether the certificate is on the revocation list.
func (a *Authority) IsRevoked(cert *x509.Certificate) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	sn := cert.SerialNumber.Text(16)
	if _, ok := a.revoked[sn]; ok {
		return true
	}
	if f := a.cfg.Fleet; f != nil {
		_, ok := f.Registry.Revoked(sn)
		return ok
	}
	return false
}

// CertIdentity returns the member identity of a client certificate issued by the local CA, or an error
// when it was not issued by it or is revoked.
func (a *Authority) CertIdentity(cert *x509.Certificate) (string, error) {
	return a.certIdentity(cert, false)
}

// VerifiedCertIdentity is CertIdentity for a certificate the TLS stack has already verified against
// ClientCAs, with the chains it built (leaf first; eap.Authenticator.CertIdentity's arguments). When one
// of them is the leaf signed directly by the local CA, that signature was checked during the handshake
// and is not checked again (one public-key operation per EAP-TLS login); otherwise the leaf goes through
// CertIdentity's checks (the fleet's chain). Revocation and the common name are checked either way.
func (a *Authority) VerifiedCertIdentity(cert *x509.Certificate, chains [][]*x509.Certificate) (string, error) {
	for _, ch := range chains {
		if len(ch) == 2 && ch[0].Equal(cert) && ch[1].Equal(a.ca) {
			return a.certIdentity(cert, true)
		}
	}
	return a.certIdentity(cert, false)
}

func (a *Authority) certIdentity(cert *x509.Certificate, signedByCA bool) (string, error) {
	if !signedByCA {
		if err := cert.CheckSignatureFrom(a.ca); err != nil {
			if a.cfg.Fleet == nil {
				return "", fmt.Errorf("certificate not issued by the local CA: %w", err)
			}
			if ferr := a.fleetVerify(cert); ferr != nil {
				return "", fmt.Errorf("certificate issued neither by the local CA nor by an issuing CA of the fleet: %w", ferr)
			}
		}
	}
	if a.IsRevoked(cert) {
		return "", fmt.Errorf("certificate %s for %q is revoked", cert.SerialNumber.Text(16), cert.Subject.CommonName)
	}
	if cert.Subject.CommonName == "" {
		return "", errors.New("certificate has no common name")
	}
	return cert.Subject.CommonName, nil
}

func (a *Authority) loadRevoked() error {
	for name, v := range map[string]any{revokedFile: &a.revoked, issuedFile: &a.issued} {
		b, err := os.ReadFile(filepath.Join(a.cfg.Dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("certs: load %s: %w", name, err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			return fmt.Errorf("certs: parse %s: %w", name, err)
		}
	}
	return nil
}

func (a *Authority) saveRevokedLocked() error {
	return saveJSON(filepath.Join(a.cfg.Dir, revokedFile), a.revoked)
}

func saveJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o600)
}

func writePair(certPath, keyPath string, chain [][]byte, key *ecdsa.PrivateKey) error {
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		return err
	}
	var certs []byte
	for _, der := range chain {
		certs = append(certs, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return atomicfile.Write(certPath, certs, 0o600)
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return x509.ParseCertificate(blk.Bytes)
}
