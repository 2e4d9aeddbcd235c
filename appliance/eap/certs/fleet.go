package certs

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Fleet makes member client certificates work at every box of a fleet
// (docs/fleet.md, "EAP-TLS"): they are issued by this box's issuing CA, an
// intermediate of the fleet CA, and a certificate chaining to the fleet
// CA through any box's issuing CA is accepted; what was issued and revoked
// anywhere is shared through Registry. Certificates the local CA issued
// before keep working at this box.
type Fleet struct {
	Root     *x509.Certificate // the fleet CA
	Issuing  *x509.Certificate // this box's issuing CA, signed by Root
	Key      crypto.Signer     // its key
	Registry Registry
}

// Registry is the fleet's shared record of client certificates.
type Registry interface {
	// Issuers returns the issuing CAs of the fleet's boxes.
	Issuers() []*x509.Certificate
	// RecordIssued shares a certificate this box issued (never its key).
	RecordIssued(i Issued, fingerprint string) error
	// RecordRevoked adds serial to the fleet's revocation set.
	RecordRevoked(serial, identity string) error
	// Issued returns the certificates of identity (every identity when
	// empty) issued at any box, with the fleet's revocations applied.
	Issued(identity string) []Issued
	// Revoked reports whether the fleet revoked serial, and when.
	Revoked(serial string) (time.Time, bool)
}

func fingerprint(der []byte) string {
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:])
}

// fleetVerify checks that cert chains to the fleet CA through the issuing
// CA of a box (a certificate the fleet CA signed directly, such as a box
// certificate, is no member's).
func (a *Authority) fleetVerify(cert *x509.Certificate) error {
	f := a.cfg.Fleet
	roots := x509.NewCertPool()
	roots.AddCert(f.Root)
	inter := x509.NewCertPool()
	inter.AddCert(f.Issuing)
	for _, c := range f.Registry.Issuers() {
		inter.AddCert(c)
	}
	chains, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: a.cfg.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return err
	}
	for _, ch := range chains {
		if len(ch) == 3 {
			return nil
		}
	}
	return errors.New("not issued by an issuing CA of the fleet")
}

// revokeFleetLocked revokes a certificate another box of the fleet issued.
func (a *Authority) revokeFleetLocked(serialHex string) (Issued, error) {
	f := a.cfg.Fleet
	if f == nil {
		return Issued{}, ErrUnknownSerial
	}
	for _, i := range f.Registry.Issued("") {
		if i.Serial != serialHex {
			continue
		}
		if i.Revoked.IsZero() {
			if err := f.Registry.RecordRevoked(serialHex, i.Identity); err != nil {
				return Issued{}, fmt.Errorf("certs: revoke %s: %w", serialHex, err)
			}
			i.Revoked, _ = f.Registry.Revoked(serialHex)
		}
		i.Current = i.Live(a.cfg.Now())
		return i, nil
	}
	return Issued{}, ErrUnknownSerial
}
