package appliance

import (
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/eap/profile"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

// Device onboarding: per-member pages with what a phone or laptop needs to
// join <location>-secure (Android 11+ refuses PEAP/TTLS without a CA and
// a domain): an Apple .mobileconfig, the CA file, and instructions. Links
// carry an HMAC of the username, so they cannot be guessed for others.

func (a *App) profileKey() []byte {
	a.profileKeyOnce.Do(func() {
		k, err := loadOrCreateKey(filepath.Join(a.Config().DataDir, "profile.key"))
		if err != nil {
			a.log.Error("profile link key", "err", err)
			return
		}
		a.profileKeyBytes = k
	})
	return a.profileKeyBytes
}

func (a *App) profileSig(username string) string {
	m := hmac.New(sha256.New, a.profileKey())
	m.Write([]byte("wifi-profile:" + strings.ToLower(username)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// publicBase is where the box's public pages (onboarding, profiles) live.
func (a *App) publicBase() string {
	cfg := a.Config()
	if u := cfg.Users.OnboardingURL; u != "" {
		return strings.TrimSuffix(strings.TrimSuffix(u, "/"), "/onboard")
	}
	return "http://" + cfg.Sync.WebhookListen
}

// ProfileURL is the member's device-setup page, for the welcome email and
// the portal.
func (a *App) ProfileURL(username string) string {
	if a.radius.ca == nil || username == "" {
		return ""
	}
	return a.publicBase() + "/wifi?" + url.Values{"u": {username}, "s": {a.profileSig(username)}}.Encode()
}

// wifiRequest checks a profile link and returns the member's setup facts.
func (a *App) wifiRequest(r *http.Request) (username, ssid string, err error) {
	u, s := r.URL.Query().Get("u"), r.URL.Query().Get("s")
	if u == "" || subtle.ConstantTimeCompare([]byte(s), []byte(a.profileSig(u))) != 1 || a.radius.ca == nil {
		return "", "", errors.New("this setup link is not valid")
	}
	err = a.store.View(func(tx *store.Tx) error {
		acct, err := tx.GetAccount(u)
		if err != nil {
			return err
		}
		_, dec, err := a.res.DecideMember(tx, acct.MemberID, a.now())
		if err != nil {
			return err
		}
		if len(dec.Locations) > 0 {
			ssid = dec.Locations[0].Network
		}
		username = acct.Username
		return nil
	})
	if err != nil {
		return "", "", errors.New("this setup link is not valid")
	}
	return username, ssid, nil
}

func (a *App) profileSigner() (*profile.Signer, error) {
	e := a.Config().RADIUS.EAP
	if e.ProfileCertFile == "" {
		return nil, nil
	}
	certPEM, err := os.ReadFile(e.ProfileCertFile)
	if err != nil {
		return nil, fmt.Errorf("profile signing certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(e.ProfileKeyFile)
	if err != nil {
		return nil, fmt.Errorf("profile signing key: %w", err)
	}
	var certs []*x509.Certificate
	for b, rest := pem.Decode(certPEM); b != nil; b, rest = pem.Decode(rest) {
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("profile signing certificate: %w", err)
		}
		certs = append(certs, c)
	}
	kb, _ := pem.Decode(keyPEM)
	if len(certs) == 0 || kb == nil {
		return nil, errors.New("profile signing: no certificate or key in the PEM files")
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		if k, err2 := x509.ParseECPrivateKey(kb.Bytes); err2 == nil {
			key = k
		} else if k, err3 := x509.ParsePKCS1PrivateKey(kb.Bytes); err3 == nil {
			key = k
		} else {
			return nil, fmt.Errorf("profile signing key: %w", err)
		}
	}
	cs, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("profile signing key: not a signing key")
	}
	return &profile.Signer{Certificate: certs[0], Chain: certs[1:], Key: cs}, nil
}

func (a *App) handleWiFiProfile(w http.ResponseWriter, r *http.Request) {
	user, ssid, err := a.wifiRequest(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	e := a.Config().RADIUS.EAP
	signer, err := a.profileSigner()
	if err != nil {
		a.log.Error("profile signing", "err", err)
	}
	body, err := profile.Generate(profile.WiFi{
		SSID: ssid, Identifier: "lan.deskgate." + a.Config().OfficeRnD.OrgSlug, Organization: a.Config().OfficeRnD.OrgSlug,
		EAPTypes: []string{"peap", "ttls"}, UserName: user, OuterIdentity: "anonymous",
		CA: a.radius.ca.TrustAnchor(), ServerNames: []string{e.ServerName},
	}, signer)
	if err != nil {
		http.Error(w, "cannot build the profile", http.StatusInternalServerError)
		a.log.Error("build profile", "user", user, "err", err)
		return
	}
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Content-Disposition", `attachment; filename="`+ssid+`.mobileconfig"`)
	w.Write(body)
}

func (a *App) handleCA(w http.ResponseWriter, r *http.Request) {
	if a.radius.ca == nil {
		http.NotFound(w, r)
		return
	}
	if strings.HasSuffix(r.URL.Path, ".crt") {
		w.Header().Set("Content-Type", "application/x-x509-ca-cert")
		w.Write(a.radius.ca.TrustAnchor().Raw)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write(a.radius.ca.TrustAnchorPEM())
}

var wifiTmpl = template.Must(template.New("wifi").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Set up {{.SSID}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:1.5rem auto;padding:0 1rem;color:#1b1f24;line-height:1.5}
a.button{display:inline-block;background:#1d4ed8;color:#fff;padding:.7rem 1rem;border-radius:8px;text-decoration:none;font-weight:600}
code{background:#eef0f3;padding:.1rem .3rem;border-radius:4px} h2{font-size:1.15rem;margin-top:1.6rem}</style></head>
<body><h1>Connect to {{.SSID}}</h1>
<p>Username <code>{{.User}}</code> and your WiFi password.</p>
<h2>iPhone, iPad, Mac</h2>
<p><a class="button" href="{{.Profile}}">Install the WiFi profile</a></p>
<p>Open it, then Settings → Profile Downloaded → Install, and enter your password when asked.</p>
<h2>Android</h2>
<ol><li><a href="{{.CACrt}}">Download the certificate</a> and install it as a "Wi-Fi certificate" (Settings → Security → Encryption &amp; credentials → Install a certificate).</li>
<li>Join <b>{{.SSID}}</b>: EAP method <b>PEAP</b>, phase 2 <b>MSCHAPV2</b>, CA certificate: the one you installed, domain <code>{{.Domain}}</code>, identity <code>{{.User}}</code>, anonymous identity <code>anonymous</code>.</li></ol>
<h2>Certificate login (EAP-TLS)</h2>
<p>Laptops and managed devices can log in with a certificate instead of a password:
<a href="{{.ClientCert}}">download your certificate and key</a> (PEM; keep the file private). It stops working when your membership ends.</p>
<h2>Windows and Linux</h2>
<p>Join <b>{{.SSID}}</b> with PEAP / MSCHAPv2 (or EAP-TTLS / PAP), identity <code>{{.User}}</code>. When asked about the server, check that it is <code>{{.Domain}}</code> and issued by the certificate at <a href="{{.CAPem}}">{{.CAPem}}</a>.</p>
</body></html>`))

func (a *App) handleWiFiPage(w http.ResponseWriter, r *http.Request) {
	user, ssid, err := a.wifiRequest(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	q := r.URL.Query().Encode()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = wifiTmpl.Execute(w, map[string]string{
		"SSID": ssid, "User": user, "Domain": a.Config().RADIUS.EAP.ServerName,
		"Profile": "/wifi/profile.mobileconfig?" + q, "CACrt": "/wifi/ca.crt", "CAPem": "/wifi/ca.pem",
		"ClientCert": "/wifi/client-cert.pem?" + q,
	})
}

// handleClientCert issues the member an EAP-TLS client certificate (one
// year) from deskgate's CA and returns it with its key in one PEM file.
// The key is not kept; certificates are revoked when access ends.
func (a *App) handleClientCert(w http.ResponseWriter, r *http.Request) {
	user, _, err := a.wifiRequest(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	ex, err := a.Explain(user, "")
	if err != nil || !ex.Decision.Allowed {
		http.Error(w, "no WiFi access at the moment", http.StatusForbidden)
		return
	}
	cert, key, err := a.radius.ca.IssueClient(user, 365*24*time.Hour)
	if err != nil {
		a.log.Error("issue client certificate", "user", user, "err", err)
		http.Error(w, "cannot issue a certificate now", http.StatusInternalServerError)
		return
	}
	a.audit("portal", "cert.issued", ex.Member.ID, user, "member downloaded an EAP-TLS client certificate")
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="wifi-certificate.pem"`)
	w.Write(cert)
	w.Write(key)
}

// revokeCerts revokes the EAP-TLS certificates of an account whose access
// ended (disabled or deleted).
func (a *App) revokeCerts(username string) {
	if a.radius.ca == nil || username == "" {
		return
	}
	n, err := a.radius.ca.RevokeIdentity(username)
	if err != nil {
		a.log.Error("revoke client certificates", "user", username, "err", err)
		return
	}
	if n > 0 {
		a.audit("radius", "cert.revoked", "", username, fmt.Sprintf("%d client certificate(s) revoked: access ended", n))
	}
}

func (a *App) audit(actor, action, member, subject, cause string) {
	err := a.store.Update(func(tx *store.Tx) error {
		return tx.Audit(model.AuditEntry{Time: a.now(), Actor: actor, Action: action, Member: member, Subject: subject, Cause: cause})
	})
	if err != nil {
		a.log.Error("audit", "action", action, "err", err)
	}
}
