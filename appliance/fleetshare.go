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
	"github.com/deskgate/deskgate/appliance/model"
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

// fleetApplied hears which kinds of entries arrived from a peer: a day
// pass first used elsewhere starts here too, and guest code news makes the
// guest manager reconcile (a delivery claimed elsewhere, a day-pass code
// first used elsewhere).
func (a *App) fleetApplied(kinds map[string]bool) {
	if kinds[peer.KindDayPass] {
		a.fleetPassStarts()
	}
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

// passKey names a member day pass's first WiFi login in the fleet's
// daypass registers (guest codes use their seeds there).
func passKey(id string) string { return "pass/" + id }

// passStartFromFleet returns when the fleet says pass p was first used,
// if that is earlier than what p holds (or p is unused here).
func (a *App) passStartFromFleet(tx *store.Tx, p model.Pass) (time.Time, bool, error) {
	at, ok, err := a.fleet.DayPassStart(tx, passKey(p.ID))
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	return at, p.FirstUse.IsZero() || at.Before(p.FirstUse), nil
}

// fleetPassStarts gives member day passes the earliest first WiFi login
// any box of the fleet recorded (docs/fleet.md), so a pass first used at
// box A ends at the same moment at box B.
func (a *App) fleetPassStarts() {
	if a.fleet.BoxID() == "" {
		return
	}
	due := false
	_ = a.store.View(func(tx *store.Tx) error {
		return tx.ForEachPass(func(p model.Pass) error {
			if _, ok, err := a.passStartFromFleet(tx, p); err == nil && ok {
				due = true
			}
			return nil
		})
	})
	if !due {
		return
	}
	err := a.store.Update(func(tx *store.Tx) error {
		var ps []model.Pass
		if err := tx.ForEachPass(func(p model.Pass) error { ps = append(ps, p); return nil }); err != nil {
			return err
		}
		for _, p := range ps {
			at, ok, err := a.passStartFromFleet(tx, p)
			if err != nil || !ok {
				if err != nil {
					return err
				}
				continue
			}
			p.FirstUse = at
			if err := tx.PutPass(p); err != nil {
				return err
			}
			if err := tx.Audit(model.AuditEntry{Time: a.now(), Actor: "fleet", Action: "daypass.activated", Member: p.Member,
				Cause: "day pass " + p.ID + " first used at another box of the fleet at " + at.UTC().Format(time.RFC3339)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		a.log.Warn("fleet: day pass starts", "err", err)
	}
}
