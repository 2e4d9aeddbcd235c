package appliance

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/deskgate/deskgate/appliance/access"
	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/appliance/store"
)

// listenMembers opens the member pages' listener: TLS with the operator's
// certificate, or with one issued from the EAP CA for the host name of the
// member pages' URL; plain HTTP only with members.insecure_http (which the
// config check allows on loopback only).
func (a *App) listenMembers(cfg *config.Config) (net.Listener, error) {
	m := cfg.Members
	var cert tls.Certificate
	if !m.InsecureHTTP {
		var err error
		if cert, err = a.memberCertificate(cfg); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", m.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen for member pages on %s: %w", m.Listen, err)
	}
	if m.InsecureHTTP {
		return ln, nil
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), nil
}

// errNoMemberCert: neither a configured certificate nor the EAP CA to
// issue one. The daemon then runs without member pages (a box that is not
// set up yet must still start); doctor says what to do.
var errNoMemberCert = errors.New("member pages off: no TLS certificate: set members.tls_cert_file and tls_key_file " +
	"(deskgate issues one itself only from its EAP CA, which runs when radius.clients are configured and radius.eap is enabled)")

func (a *App) memberCertificate(cfg *config.Config) (tls.Certificate, error) {
	m := cfg.Members
	if m.TLSCertFile != "" {
		c, err := tls.LoadX509KeyPair(m.TLSCertFile, m.TLSKeyFile)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("member pages: load members.tls_cert_file: %w", err)
		}
		return c, nil
	}
	if a.radius.ca == nil {
		return tls.Certificate{}, errNoMemberCert
	}
	var names []string
	if u, err := url.Parse(a.publicBase()); err == nil && u.Hostname() != "" {
		names = append(names, u.Hostname())
	}
	if host, _, err := net.SplitHostPort(m.Listen); err == nil && host != "" && !containsStr(names, host) {
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			names = append(names, host)
		}
	}
	if len(names) == 0 {
		names = []string{"localhost"}
	}
	c, err := a.radius.ca.IssueServer(names, 397*24*time.Hour)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("member pages: %w", err)
	}
	return c, nil
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// certIdentity resolves a username, email or member id to the account's
// username; an unknown one is taken as a username (certificates outlive
// deleted accounts).
func (a *App) certIdentity(q string) string {
	user := q
	_ = a.store.View(func(tx *store.Tx) error {
		id, err := access.FindMember(tx, q)
		if err != nil {
			return nil
		}
		if ac, err := tx.AccountOfMember(id); err == nil {
			user = ac.Username
		}
		return nil
	})
	return user
}

// memberChecks are doctor's checks of the member pages.
func (a *App) memberChecks() []admin.Check {
	var out []admin.Check
	if a.membersOff {
		out = append(out, admin.Check{Name: "member pages", Detail: errNoMemberCert.Error(),
			Fix: "configure radius.clients (the EAP CA then issues the certificate) or members.tls_cert_file/tls_key_file, and restart deskgated"})
	}
	return append(out, a.setupKeyCheck())
}

func (a *App) setupKeyCheck() admin.Check {
	path := a.profileKeyPath()
	if _, err := a.profileKey(); err != nil {
		return admin.Check{Name: "setup link key", Detail: "setup links are refused: " + err.Error(),
			Fix: "move " + path + " aside (deskgated creates a new 32-byte key, mode 0600; links sent before stop working) and restart deskgated"}
	}
	return admin.Check{Name: "setup link key", OK: true, Detail: path + " loaded; links valid for " + config.FormatDuration(a.Config().Users.SetupLinkTTL)}
}
