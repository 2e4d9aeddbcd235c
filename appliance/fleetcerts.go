package appliance

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/deskgate/deskgate/appliance/eap/certs"
	"github.com/deskgate/deskgate/appliance/peer"
	"github.com/deskgate/deskgate/appliance/store"
)

// fleetCertRegistry shares client certificates through the fleet's
// replicated registers (docs/fleet.md, "EAP-TLS").
type fleetCertRegistry struct {
	n  *peer.Node
	st *store.Store
}

func (r fleetCertRegistry) Issuers() []*x509.Certificate { return r.n.Issuers() }

func (r fleetCertRegistry) RecordIssued(i certs.Issued, fp string) error {
	v := peer.CertValue{Identity: i.Identity, IssuedAt: i.IssuedAt, NotAfter: i.NotAfter, Fingerprint: fp}
	_ = r.st.View(func(tx *store.Tx) error {
		if acct, err := tx.GetAccount(i.Identity); err == nil {
			v.Member = acct.MemberID
		}
		return nil
	})
	return r.n.RecordCert(i.Serial, v)
}

func (r fleetCertRegistry) RecordRevoked(serial, identity string) error {
	return r.n.RevokeCert(serial, identity)
}

func (r fleetCertRegistry) Issued(identity string) []certs.Issued {
	var out []certs.Issued
	for _, c := range r.n.FleetCerts(identity) {
		out = append(out, certs.Issued{Serial: c.Serial, Identity: c.Identity, IssuedAt: c.IssuedAt, NotAfter: c.NotAfter, Revoked: c.Revoked})
	}
	return out
}

func (r fleetCertRegistry) Revoked(serial string) (time.Time, bool) { return r.n.CertRevoked(serial) }

// fleetIssuing loads this box's EAP-TLS issuing CA when the box is in a
// fleet that signed one (nil otherwise: the local CA issues, as on a box
// of its own). Like the fleet RADIUS certificate it takes effect at the
// next start of deskgated after fleet init or join.
func (a *App) fleetIssuing(dataDir string) (*certs.Fleet, error) {
	certFile, keyFile, rootFile, ok := peer.IssuingFiles(dataDir)
	if !ok {
		return nil, nil
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("fleet EAP-TLS issuing CA: %w", err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("fleet EAP-TLS issuing CA: key cannot sign")
	}
	b, err := os.ReadFile(rootFile)
	if err != nil {
		return nil, fmt.Errorf("fleet CA: %w", err)
	}
	root, err := parsePEMCert(b)
	if err != nil {
		return nil, fmt.Errorf("fleet CA %s: %w", rootFile, err)
	}
	if err := pair.Leaf.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("fleet EAP-TLS issuing CA is not signed by the fleet CA: %w", err)
	}
	return &certs.Fleet{Root: root, Issuing: pair.Leaf, Key: signer, Registry: fleetCertRegistry{n: a.fleet, st: a.store}}, nil
}

func parsePEMCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// fleetApplied hears which kinds of entries arrived from a peer: guest
// code news makes the guest manager reconcile (a delivery claimed
// elsewhere, a day pass first used elsewhere).
func (a *App) fleetApplied(kinds map[string]bool) {
	if !kinds[peer.KindGuestMail] && !kinds[peer.KindDayPass] {
		return
	}
	a.guests.mu.Lock()
	mgr := a.guests.mgr
	a.guests.mu.Unlock()
	if mgr != nil {
		mgr.Refresh()
	}
}
