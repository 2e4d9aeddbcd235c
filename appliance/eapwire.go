package appliance

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/deskgate/deskgate/appliance/eap"
	"github.com/deskgate/deskgate/appliance/eap/certs"
	"github.com/deskgate/deskgate/appliance/peer"
	"github.com/deskgate/deskgate/appliance/radius"
	"github.com/deskgate/deskgate/appliance/store"
)

// eapAuth gives the EAP methods their credentials and decisions: the
// inner identity's NT hash, refused when the member's decision denies
// access at the NAS's location, so a denied member fails inside the
// tunnel; and the identity behind an EAP-TLS client certificate.
type eapAuth struct {
	a  *App
	ca *certs.Authority
}

func (e eapAuth) NTHash(ctx context.Context, identity string) ([]byte, error) {
	var hash []byte
	err := e.a.store.View(func(tx *store.Tx) error {
		acct, err := tx.GetAccount(identity)
		if err != nil {
			return fmt.Errorf("unknown user %q", identity)
		}
		_, dec, err := e.a.res.DecideMemberAt(tx, acct.MemberID, radius.LocationFromContext(ctx), e.a.now())
		if err != nil {
			return fmt.Errorf("decide %s: %w", identity, err)
		}
		if !dec.Allowed {
			return fmt.Errorf("%s: %s", dec.Deny, firstReason(dec.Reasons))
		}
		if loc := radius.LocationFromContext(ctx); loc != "" {
			if _, ok := dec.At(loc); !ok {
				return fmt.Errorf("wrong_location: no access at this location")
			}
		}
		if len(acct.NTHash) != 16 {
			return errors.New("no password set")
		}
		hash = acct.NTHash
		return nil
	})
	return hash, err
}

func (e eapAuth) CertIdentity(ctx context.Context, cert *x509.Certificate) (string, error) {
	return e.ca.CertIdentity(cert)
}

// newEAP builds the EAP server with deskgate's CA (or the operator's
// certificate).
func (a *App) newEAP() (*eap.Server, *certs.Authority, error) {
	cfg := a.Config()
	e := cfg.RADIUS.EAP
	if e.Enabled != nil && !*e.Enabled {
		return nil, nil, nil
	}
	certFile, keyFile, trustFile := e.CertFile, e.KeyFile, e.TrustFile
	if certFile == "" {
		// In a fleet: the server certificate the fleet CA signed for the
		// shared server name (docs/fleet.md), so one profile fits all boxes.
		if c, k, t, ok := peer.RadiusFiles(cfg.DataDir); ok {
			certFile, keyFile, trustFile = c, k, t
		}
	}
	fleetCA, err := a.fleetIssuing(cfg.DataDir)
	if err != nil {
		return nil, nil, err
	}
	ca, err := certs.Open(certs.Config{
		Dir: filepath.Join(cfg.DataDir, "eap"), ServerName: e.ServerName,
		// The one clock: certificates are issued, and checked during
		// EAP-TLS handshakes, against the daemon's clock.
		CertFile: certFile, KeyFile: keyFile, TrustFile: trustFile, Now: a.now,
		Fleet: fleetCA,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("eap certificates: %w", err)
	}
	key, err := loadOrCreateKey(filepath.Join(cfg.DataDir, "eap", "ticket.key"))
	if err != nil {
		return nil, nil, err
	}
	ec := eap.Config{Methods: e.Methods, Certificate: ca.ServerCertificate(), ClientCAs: ca.ClientCAs(), Now: a.now}
	copy(ec.SessionTicketKey[:], key)
	srv, err := eap.New(ec, eapAuth{a: a, ca: ca}, a.log.With("component", "eap"))
	if err != nil {
		return nil, nil, fmt.Errorf("eap: %w", err)
	}
	return srv, ca, nil
}
