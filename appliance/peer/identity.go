package peer

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/deskgate/deskgate/internal/atomicfile"
)

// Identity is what a box knows about itself once it is in a fleet.
type Identity struct {
	BoxID   string `json:"boxId"`
	FleetID string `json:"fleetId"`
	// Joined is when the box joined (or created) the fleet: accounts
	// created before are not the fleet's to welcome.
	Joined time.Time `json:"joined,omitzero"`
}

// files holds the paths of the fleet's files under <data_dir>/fleet.
type files struct{ dir string }

func (f files) path(name string) string { return filepath.Join(f.dir, name) }

const (
	fileIdentity = "identity.json"
	fileCACert   = "ca.crt"
	fileCAKey    = "ca.key"
	fileBoxCert  = "box.crt"
	fileBoxKey   = "box.key"
	fileSecret   = "fleet.secret"
	// The RADIUS/EAP server certificate for the fleet's shared server
	// name, signed by the fleet CA (leaf only, like the local one).
	fileRadiusCert = "radius.pem"
	fileRadiusKey  = "radius.key"
)

// RadiusFiles returns the fleet-signed RADIUS server certificate, its key
// and the fleet CA under dataDir, when the box is in a fleet that issued
// one; the EAP server then presents it, so one device profile (fleet CA +
// shared server name) works at every box.
func RadiusFiles(dataDir string) (cert, key, ca string, ok bool) {
	f := files{dir: filepath.Join(dataDir, "fleet")}
	cert, key, ca = f.path(fileRadiusCert), f.path(fileRadiusKey), f.path(fileCACert)
	for _, p := range []string{cert, key, ca, f.path(fileIdentity)} {
		if _, err := os.Stat(p); err != nil {
			return "", "", "", false
		}
	}
	return cert, key, ca, true
}

// signRadius issues the RADIUS server certificate for name over pub.
func signRadius(ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, pub any, now time.Time) (*x509.Certificate, error) {
	if k, ok := pub.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("sign radius certificate: key is %T, want ECDSA P-256", pub)
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(0, 0, 825),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign radius certificate for %s: %w", name, err)
	}
	return x509.ParseCertificate(der)
}

// saveRadius writes the RADIUS certificate and key (0600).
func (f files) saveRadius(cert *x509.Certificate, key *ecdsa.PrivateKey) error {
	kp, err := pemKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", f.dir, err)
	}
	if err := atomicfile.Write(f.path(fileRadiusKey), kp, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", fileRadiusKey, err)
	}
	if err := atomicfile.Write(f.path(fileRadiusCert), pemCert(cert), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", fileRadiusCert, err)
	}
	return nil
}

var boxIDRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

// CheckBoxID reports whether id is a valid box id: lower-case letters,
// digits and inner dashes, at most 40 characters.
func CheckBoxID(id string) error {
	if !boxIDRe.MatchString(id) {
		return fmt.Errorf("box id %q: use 1-40 lower-case letters, digits and inner dashes", id)
	}
	return nil
}

// keys is a loaded identity: certificates, keys and the fleet secret.
type keys struct {
	id      Identity
	ca      *x509.Certificate
	caKey   *ecdsa.PrivateKey // nil unless this box ran init
	boxCert *x509.Certificate
	boxKey  *ecdsa.PrivateKey
	secret  []byte
}

func newKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate P-256 key: %w", err)
	}
	return k, nil
}

func serial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certificate serial: %w", err)
	}
	return s, nil
}

// newCA makes the fleet root CA.
func newCA(fleetID string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "deskgate fleet CA " + fleetID, Organization: []string{"deskgate"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// One level below: the boxes' EAP-TLS issuing CAs (certs.go).
		MaxPathLen: 1,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create fleet CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse fleet CA: %w", err)
	}
	return cert, key, nil
}

// signBox issues a box certificate (client and server auth) for boxID
// over pub.
func signBox(ca *x509.Certificate, caKey *ecdsa.PrivateKey, boxID string, pub any, now time.Time) (*x509.Certificate, error) {
	if _, ok := pub.(*ecdsa.PublicKey); !ok {
		return nil, fmt.Errorf("sign box %s: key is %T, want ECDSA P-256", boxID, pub)
	}
	if pub.(*ecdsa.PublicKey).Curve != elliptic.P256() {
		return nil, fmt.Errorf("sign box %s: key is not P-256", boxID)
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: boxID, Organization: []string{"deskgate fleet"}},
		DNSNames:     []string{boxID},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(5, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign box %s: %w", boxID, err)
	}
	return x509.ParseCertificate(der)
}

// Fingerprint is the hex SHA-256 of a certificate's DER.
func Fingerprint(c *x509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	return hex.EncodeToString(s[:])
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func pemKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

func parseKeyPEM(b []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "EC PRIVATE KEY" {
		return nil, errors.New("no PEM EC private key")
	}
	return x509.ParseECPrivateKey(blk.Bytes)
}

// save writes the identity's files: keys and the secret 0600.
func (f files) save(k *keys) error {
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", f.dir, err)
	}
	boxKey, err := pemKey(k.boxKey)
	if err != nil {
		return err
	}
	idJSON, err := json.Marshal(k.id)
	if err != nil {
		return err
	}
	writes := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{fileCACert, pemCert(k.ca), 0o644},
		{fileBoxCert, pemCert(k.boxCert), 0o644},
		{fileBoxKey, boxKey, 0o600},
		{fileSecret, []byte(hex.EncodeToString(k.secret) + "\n"), 0o600},
	}
	if k.caKey != nil {
		caKey, err := pemKey(k.caKey)
		if err != nil {
			return err
		}
		writes = append(writes, struct {
			name string
			data []byte
			mode os.FileMode
		}{fileCAKey, caKey, 0o600})
	}
	for _, w := range writes {
		if err := atomicfile.Write(f.path(w.name), w.data, w.mode); err != nil {
			return fmt.Errorf("write %s: %w", w.name, err)
		}
	}
	// identity.json last: its presence means the rest is complete.
	if err := atomicfile.Write(f.path(fileIdentity), idJSON, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", fileIdentity, err)
	}
	return nil
}

// load reads the identity; (nil, nil) when the box is in no fleet.
func (f files) load() (*keys, error) {
	raw, err := os.ReadFile(f.path(fileIdentity))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read fleet identity: %w", err)
	}
	k := &keys{}
	if err := json.Unmarshal(raw, &k.id); err != nil {
		return nil, fmt.Errorf("decode %s: %w", f.path(fileIdentity), err)
	}
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(f.path(name))
		if err != nil {
			return nil, fmt.Errorf("read fleet %s: %w", name, err)
		}
		return b, nil
	}
	b, err := read(fileCACert)
	if err != nil {
		return nil, err
	}
	if k.ca, err = parseCertPEM(b); err != nil {
		return nil, fmt.Errorf("fleet %s: %w", fileCACert, err)
	}
	if b, err = read(fileBoxCert); err != nil {
		return nil, err
	}
	if k.boxCert, err = parseCertPEM(b); err != nil {
		return nil, fmt.Errorf("fleet %s: %w", fileBoxCert, err)
	}
	if b, err = read(fileBoxKey); err != nil {
		return nil, err
	}
	if k.boxKey, err = parseKeyPEM(b); err != nil {
		return nil, fmt.Errorf("fleet %s: %w", fileBoxKey, err)
	}
	if b, err = read(fileSecret); err != nil {
		return nil, err
	}
	if k.secret, err = hex.DecodeString(strings.TrimSpace(string(b))); err != nil || len(k.secret) != 32 {
		return nil, fmt.Errorf("fleet %s: not 32 hex-encoded bytes", fileSecret)
	}
	if b, err = os.ReadFile(f.path(fileCAKey)); err == nil {
		if k.caKey, err = parseKeyPEM(b); err != nil {
			return nil, fmt.Errorf("fleet %s: %w", fileCAKey, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read fleet %s: %w", fileCAKey, err)
	}
	return k, nil
}

// Token is a decoded join token.
type Token struct {
	CAFingerprint string `json:"fp"`
	Addr          string `json:"addr"` // host:port of the inviting box's fleet listener
	ID            string `json:"id"`
	Secret        []byte `json:"s"`
	// Inviter, Expires (Unix seconds) and Sig: a token made by a box
	// without the CA key, signed with its box key (invite.go); Addr is
	// then the CA box's.
	Inviter string `json:"by,omitempty"`
	Expires int64  `json:"exp,omitempty"`
	Sig     []byte `json:"sig,omitempty"`
}

const tokenPrefix = "dgf1."

// Encode renders t as the string `fleet invite` prints.
func (t Token) Encode() string {
	b, _ := json.Marshal(t)
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ParseToken decodes a join token, checking its shape.
func ParseToken(s string) (Token, error) {
	var t Token
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), tokenPrefix)
	if !ok {
		return t, errors.New("join token: not a deskgate fleet token (want dgf1.…)")
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return t, errors.New("join token: damaged (not base64url)")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return t, errors.New("join token: damaged (bad JSON)")
	}
	if len(t.CAFingerprint) != 64 || len(t.Secret) != 32 || len(t.ID) != 16 || t.Addr == "" {
		return t, errors.New("join token: damaged (missing fields)")
	}
	if t.Inviter != "" && (len(t.Sig) == 0 || len(t.Sig) > maxSigLen || t.Expires == 0) {
		return t, errors.New("join token: damaged (inviter without signature)")
	}
	return t, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
