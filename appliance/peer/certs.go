package peer

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/store"
	"github.com/deskgate/deskgate/internal/atomicfile"
)

// EAP-TLS across the fleet (docs/fleet.md, "EAP-TLS"): every box has its
// own issuing CA, an intermediate the fleet CA signs at init or join (the
// joiner sends a CSR in the join exchange, so no CA key leaves a box).
// Member client certificates chain fleet CA → issuing CA → client, so a
// certificate issued at one box verifies at every box. What was issued
// (serial, member, not-after, fingerprint; never a key) and what was
// revoked replicate; a revocation is a grow-only set.
const (
	KindIssuer      = "issuer"      // LWW register per box: its issuing CA certificate
	KindCert        = "cert"        // register per serial: a client certificate some box issued
	KindCertRevoked = "certrevoked" // grow-only set of revoked serials
)

// Files of this box's issuing CA under <data_dir>/fleet.
const (
	fileIssuingCert = "issuing.crt"
	fileIssuingKey  = "issuing.key"
)

// IssuerValue is a KindIssuer register: a box's issuing CA (DER).
type IssuerValue struct {
	Cert []byte `json:"cert"`
}

// CertValue is a KindCert register: one member client certificate.
type CertValue struct {
	Box         string    `json:"box"`      // the box that issued it
	Identity    string    `json:"identity"` // the username, the certificate's CommonName
	Member      string    `json:"member,omitempty"`
	IssuedAt    time.Time `json:"issuedAt"`
	NotAfter    time.Time `json:"notAfter"`
	Fingerprint string    `json:"fp"` // hex SHA-256 of the DER
}

// CertRevokedValue is a KindCertRevoked set element.
type CertRevokedValue struct {
	By       string    `json:"by"`
	At       time.Time `json:"at"`
	Identity string    `json:"identity,omitempty"`
}

// FleetCert is what the fleet knows of one client certificate.
type FleetCert struct {
	Serial string
	CertValue
	Revoked time.Time // zero: not revoked
}

func init() {
	for _, k := range []string{KindIssuer, KindCert, KindCertRevoked} {
		knownKinds[k] = true
	}
}

func checkSerial(s string) error {
	if s == "" || len(s) > 64 {
		return errors.New("serial of 1..64 hex digits")
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return errors.New("serial is not lower-case hex")
		}
	}
	return nil
}

// checkCertValue decodes a value of the certificate kinds strictly.
func checkCertValue(kind string, dec *json.Decoder) error {
	switch kind {
	case KindIssuer:
		var v IssuerValue
		if err := dec.Decode(&v); err != nil {
			return err
		}
		c, err := x509.ParseCertificate(v.Cert)
		if err != nil {
			return fmt.Errorf("issuing CA: %w", err)
		}
		if !c.IsCA {
			return errors.New("issuing CA certificate is not a CA")
		}
	case KindCert:
		var v CertValue
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if CheckBoxID(v.Box) != nil || v.Identity == "" || len(v.Identity) > 256 || len(v.Member) > maxIDLen || len(v.Fingerprint) != 64 {
			return errors.New("certificate record: bad box, identity, member or fingerprint")
		}
	case KindCertRevoked:
		var v CertRevokedValue
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if CheckBoxID(v.By) != nil || len(v.Identity) > 256 {
			return errors.New("revocation: bad box or identity")
		}
	default:
		return fmt.Errorf("unknown kind %q", kind)
	}
	return nil
}

// signIssuing makes boxID's issuing CA over pub: a CA that may sign only
// end-entity certificates (path length 0), valid as long as a box
// certificate.
func signIssuing(ca *x509.Certificate, caKey *ecdsa.PrivateKey, boxID string, pub any, now time.Time) (*x509.Certificate, error) {
	if k, ok := pub.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("sign issuing CA of %s: key is %T, want ECDSA P-256", boxID, pub)
	}
	if !canSignIntermediates(ca) {
		return nil, errors.New("the fleet CA was made before issuing CAs existed (path length 0): EAP-TLS stays per box until the fleet is created anew")
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "deskgate EAP-TLS issuing CA " + boxID, Organization: []string{"deskgate fleet"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign issuing CA of %s: %w", boxID, err)
	}
	return x509.ParseCertificate(der)
}

// canSignIntermediates reports whether ca's path length allows an
// intermediate below it.
func canSignIntermediates(ca *x509.Certificate) bool {
	return !(ca.MaxPathLen == 0 && ca.MaxPathLenZero)
}

// newIssuingCSR makes the key and CSR a joining box sends for its issuing CA.
func newIssuingCSR(boxID string) (*ecdsa.PrivateKey, []byte, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	csr, err := x509.CreateCertificateRequest(randReader, &x509.CertificateRequest{Subject: pkixName("deskgate EAP-TLS issuing CA " + boxID)}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("issuing CA certificate request: %w", err)
	}
	return key, csr, nil
}

// parseIssuingCSR checks a join request's issuing CSR (nil when absent).
func parseIssuingCSR(der []byte) (*x509.CertificateRequest, error) {
	if len(der) == 0 {
		return nil, nil
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil || csr.CheckSignature() != nil {
		return nil, errors.New("malformed issuing CA certificate request")
	}
	return csr, nil
}

// saveIssuing writes the issuing CA certificate (0644) and key (0600).
func (f files) saveIssuing(cert *x509.Certificate, key *ecdsa.PrivateKey) error {
	kp, err := pemKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", f.dir, err)
	}
	if err := atomicfile.Write(f.path(fileIssuingKey), kp, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", fileIssuingKey, err)
	}
	if err := atomicfile.Write(f.path(fileIssuingCert), pemCert(cert), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", fileIssuingCert, err)
	}
	return nil
}

// makeIssuing gives the box that creates the fleet its issuing CA.
func (n *Node) makeIssuing(ca *x509.Certificate, caKey *ecdsa.PrivateKey, boxID string, now time.Time) error {
	if !canSignIntermediates(ca) {
		return nil
	}
	key, err := newKey()
	if err != nil {
		return err
	}
	cert, err := signIssuing(ca, caKey, boxID, &key.PublicKey, now)
	if err != nil {
		return err
	}
	return n.files.saveIssuing(cert, key)
}

// saveJoinedIssuing keeps the issuing CA the CA box signed for a joiner;
// an answer without one (a CA box from before issuing CAs) leaves the box
// issuing client certificates from its own local CA.
func (n *Node) saveJoinedIssuing(raw []byte, key *ecdsa.PrivateKey, ca *x509.Certificate) error {
	if len(raw) == 0 {
		n.log.Warn("fleet join: the CA box signed no EAP-TLS issuing CA; client certificates stay per box")
		return nil
	}
	cert, err := parseCertPEM(raw)
	if err != nil || cert.CheckSignatureFrom(ca) != nil || !cert.IsCA {
		return errors.New("fleet join: the answer carries no valid issuing CA")
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return errors.New("fleet join: the issuing CA is not for this box's key")
	}
	return n.files.saveIssuing(cert, key)
}

// IssuingFiles returns the paths of this box's issuing CA certificate and
// key and of the fleet CA under dataDir, when the box is in a fleet that
// signed one.
func IssuingFiles(dataDir string) (cert, key, root string, ok bool) {
	f := files{dir: filepath.Join(dataDir, "fleet")}
	cert, key, root = f.path(fileIssuingCert), f.path(fileIssuingKey), f.path(fileCACert)
	for _, p := range []string{cert, key, root, f.path(fileIdentity)} {
		if _, err := os.Stat(p); err != nil {
			return "", "", "", false
		}
	}
	return cert, key, root, true
}

// announceIssuer originates this box's issuing CA register when it is new
// or changed.
func (n *Node) announceIssuer(k *keys) error {
	b, err := os.ReadFile(n.files.path(fileIssuingCert))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read issuing CA: %w", err)
	}
	cert, err := parseCertPEM(b)
	if err != nil {
		return fmt.Errorf("issuing CA: %w", err)
	}
	_, rep := n.current()
	return n.st.Update(func(tx *store.Tx) error {
		cur, ok, err := register(tx, KindIssuer, k.id.BoxID)
		if err != nil {
			return err
		}
		var v IssuerValue
		if ok && json.Unmarshal(cur.Value, &v) == nil && bytes.Equal(v.Cert, cert.Raw) {
			return nil
		}
		_, err = rep.originate(tx, KindIssuer, k.id.BoxID, IssuerValue{Cert: cert.Raw})
		return err
	})
}

// Issuers returns the issuing CAs of the fleet's boxes that are not
// removed and that the fleet CA signed; nil outside a fleet.
func (n *Node) Issuers() []*x509.Certificate {
	k, _ := n.current()
	if k == nil {
		return nil
	}
	var out []*x509.Certificate
	_ = n.st.View(func(tx *store.Tx) error {
		regs, err := registers(tx, KindIssuer)
		if err != nil {
			return err
		}
		for _, id := range sortedKeys(regs) {
			var v IssuerValue
			if n.isRemoved(id) || json.Unmarshal(regs[id].Value, &v) != nil {
				continue
			}
			c, err := x509.ParseCertificate(v.Cert)
			if err != nil || !c.IsCA || c.CheckSignatureFrom(k.ca) != nil {
				n.log.Warn("fleet: ignoring an issuing CA not signed by the fleet CA", "box", id)
				continue
			}
			out = append(out, c)
		}
		return nil
	})
	return out
}

// RecordCert originates the record of a client certificate this box
// issued. Outside a fleet it does nothing.
func (n *Node) RecordCert(serial string, v CertValue) error {
	k, rep := n.current()
	if k == nil {
		return nil
	}
	v.Box = k.id.BoxID
	err := n.st.Update(func(tx *store.Tx) error {
		_, err := rep.originate(tx, KindCert, serial, v)
		return err
	})
	if err != nil {
		return fmt.Errorf("fleet: record certificate %s: %w", serial, err)
	}
	n.nudgeAll()
	return nil
}

// RevokeCert adds serial to the fleet's revocation set (once; a serial
// already in it is left as it is). Outside a fleet it does nothing.
func (n *Node) RevokeCert(serial, identity string) error {
	k, rep := n.current()
	if k == nil {
		return nil
	}
	if err := checkSerial(serial); err != nil {
		return fmt.Errorf("fleet: revoke certificate: %w", err)
	}
	err := n.st.Update(func(tx *store.Tx) error {
		if _, ok, err := register(tx, KindCertRevoked, serial); err != nil || ok {
			return err
		}
		_, err := rep.originate(tx, KindCertRevoked, serial, CertRevokedValue{By: k.id.BoxID, At: n.now().UTC(), Identity: identity})
		return err
	})
	if err != nil {
		return fmt.Errorf("fleet: revoke certificate %s: %w", serial, err)
	}
	n.nudgeAll()
	return nil
}

// CertRevoked reports whether the fleet revoked serial, and when.
func (n *Node) CertRevoked(serial string) (time.Time, bool) {
	if k, _ := n.current(); k == nil {
		return time.Time{}, false
	}
	var at time.Time
	var ok bool
	_ = n.st.View(func(tx *store.Tx) error {
		e, found, err := register(tx, KindCertRevoked, serial)
		if err != nil || !found {
			return err
		}
		var v CertRevokedValue
		if json.Unmarshal(e.Value, &v) == nil {
			at, ok = v.At, true
		}
		return nil
	})
	return at, ok
}

// FleetCerts returns the client certificates the fleet knows of identity
// (every identity when empty), with revocations applied.
func (n *Node) FleetCerts(identity string) []FleetCert {
	if k, _ := n.current(); k == nil {
		return nil
	}
	var out []FleetCert
	_ = n.st.View(func(tx *store.Tx) error {
		certs, err := registers(tx, KindCert)
		if err != nil {
			return err
		}
		revoked, err := registers(tx, KindCertRevoked)
		if err != nil {
			return err
		}
		for _, sn := range sortedKeys(certs) {
			var v CertValue
			if json.Unmarshal(certs[sn].Value, &v) != nil || (identity != "" && v.Identity != identity) {
				continue
			}
			fc := FleetCert{Serial: sn, CertValue: v}
			if r, ok := revoked[sn]; ok {
				var rv CertRevokedValue
				if json.Unmarshal(r.Value, &rv) == nil {
					fc.Revoked = rv.At
				}
			}
			out = append(out, fc)
		}
		return nil
	})
	return out
}
