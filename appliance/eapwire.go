package appliance

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/deskgate/deskgate/appliance/eap"
	"github.com/deskgate/deskgate/appliance/eap/certs"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/peer"
	"github.com/deskgate/deskgate/appliance/radius"
)

// eapAuth gives the EAP methods their credentials and decisions: the
// inner identity's NT hash, refused when the member's decision denies
// access at the NAS's location, so a denied member fails inside the
// tunnel; and the identity behind an EAP-TLS client certificate.
//
// The NT hash and the decision come from the RADIUS server's caching
// directory (dropped on every store change, as for PAP and MS-CHAPv2),
// so a login reads and evaluates the member once, not once inside the
// tunnel and again for the Access-Accept.
type eapAuth struct {
	a  *App
	ca *certs.Authority
}

func (e eapAuth) NTHash(ctx context.Context, identity string) ([]byte, error) {
	var lookup func(context.Context, string) (radius.Subject, error) = directory{e.a}.Lookup
	if e.a.radius.dir != nil {
		lookup = e.a.radius.dir.Lookup
	}
	subj, err := lookup(ctx, identity)
	switch {
	case errors.Is(err, radius.ErrUnknownUser):
		return nil, fmt.Errorf("unknown user %q", identity)
	case err != nil:
		return nil, fmt.Errorf("decide %s: %w", identity, err)
	}
	dec := subj.Decision
	if !dec.Allowed {
		return nil, fmt.Errorf("%s: %s", dec.Deny, firstReason(dec.Reasons))
	}
	// A cached decision never outlives its recorded end (the same
	// margin as the Access-Accept's check).
	if !dec.ValidUntil.IsZero() && !e.a.now().Before(dec.ValidUntil.Add(-time.Second)) {
		return nil, fmt.Errorf("%s: access ended %s", model.DenyEnded, dec.ValidUntil.UTC().Format(time.RFC3339))
	}
	if loc := radius.LocationFromContext(ctx); loc != "" {
		if _, ok := dec.At(loc); !ok {
			return nil, fmt.Errorf("wrong_location: no access at this location")
		}
	}
	if len(subj.Account.NTHash) != 16 {
		return nil, errors.New("no password set")
	}
	return subj.Account.NTHash, nil
}

func (e eapAuth) CertIdentity(ctx context.Context, cert *x509.Certificate, chains [][]*x509.Certificate) (string, error) {
	return e.ca.VerifiedCertIdentity(cert, chains)
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
