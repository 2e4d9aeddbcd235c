package onboard

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"sync"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/deskgate/deskgate/appliance/eap/profile"
	"github.com/deskgate/deskgate/appliance/store"
)

// iOS EAP-TLS in one profile: the setup page's button issues the member a
// client certificate (through the same POST, token and device limit as
// the PEM download), wraps it with its key in a PKCS#12 encrypted with a
// one-time passphrase, and puts that in a .mobileconfig whose WiFi payload
// uses it for EAP-TLS. The passphrase is shown once on the answer page
// (it is not in the profile, so the device asks for it); the profile can
// be downloaded once, within 10 minutes, and is then forgotten.

// oneTimeProfiles holds profiles until their single download.
type oneTimeProfiles struct {
	mu sync.Mutex
	m  map[string]oneTimeProfile
}

type oneTimeProfile struct {
	body     []byte
	filename string
	expires  time.Time
}

const oneTimeTTL = 10 * time.Minute

func (o *oneTimeProfiles) put(p oneTimeProfile, now time.Time) string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[string]oneTimeProfile{}
	}
	for k, v := range o.m {
		if !now.Before(v.expires) {
			delete(o.m, k)
		}
	}
	o.m[tok] = p
	return tok
}

func (o *oneTimeProfiles) take(tok string, now time.Time) (oneTimeProfile, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p, ok := o.m[tok]
	delete(o.m, tok)
	return p, ok && now.Before(p.expires)
}

var eapTLSTmpl = template.Must(template.New("eaptls").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Certificate profile for {{.SSID}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:1.5rem auto;padding:0 1rem;color:#1b1f24;line-height:1.5}
p.button{display:inline-block;background:#1d4ed8;color:#fff;padding:.7rem 1rem;border-radius:8px;text-decoration:none;font-weight:600}
code{background:#eef0f3;padding:.2rem .4rem;border-radius:4px;font-size:1.15rem}</style></head>
<body><h1>Your certificate profile</h1>
<p>Certificate password (shown only now; the device asks for it when installing):</p>
<p><code>{{.Passphrase}}</code></p>
<p><a class="button" href="{{.Download}}">Install the profile</a></p>
<p>The download works once, within 10 minutes. Then Settings → Profile Downloaded → Install, and enter the password above.
The device then joins <b>{{.SSID}}</b> with its certificate, no WiFi password needed.</p>
</body></html>`))

// handleEAPTLSProfile answers the setup page's "certificate profile"
// button (POST /wifi/eaptls).
func (p *Pages) handleEAPTLSProfile(w http.ResponseWriter, r *http.Request) {
	req, ok := p.memberPost(w, r, "Certificates are issued", certFormToken)
	if !ok {
		return
	}
	certPEM, keyPEM, serial, ok := p.issueMemberCert(w, req)
	if !ok {
		return
	}
	pass, body, err := p.eapTLSProfile(req, certPEM, keyPEM)
	if err != nil {
		p.log.Error("build EAP-TLS profile", "user", req.User, "err", err)
		if _, rerr := p.ca.RevokeSerial(serial); rerr != nil {
			p.log.Error("revoke the unused certificate", "serial", serial, "err", rerr)
		}
		memberError(w, &pageError{Code: http.StatusInternalServerError, Title: "Something went wrong", Text: "The profile cannot be made now; please try again later."})
		return
	}
	p.audit("portal", "cert.issued", req.MemberID, req.User, "member created an EAP-TLS certificate profile (PKCS#12) on the setup page (serial "+serial+")")
	tok := p.oneTime.put(oneTimeProfile{body: body, filename: req.SSID + "-certificate.mobileconfig", expires: p.now().Add(oneTimeTTL)}, p.now())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = eapTLSTmpl.Execute(w, map[string]string{"SSID": req.SSID, "Passphrase": pass, "Download": "/wifi/eaptls/profile.mobileconfig?t=" + tok})
}

// eapTLSProfile builds the .mobileconfig with the identity as PKCS#12.
// The PKCS#12 uses go-pkcs12's LegacyDES (3DES, HMAC-SHA-1): iOS and
// macOS before 18/15 cannot read the AES (PBES2) form; the one-time
// passphrase (79 random bits) is what protects it, and the file travels
// over TLS once.
func (p *Pages) eapTLSProfile(req setupRequest, certPEM, keyPEM []byte) (string, []byte, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return "", nil, errors.New("issued certificate or key is not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return "", nil, fmt.Errorf("parse issued certificate: %w", err)
	}
	key, err := parsePrivateKey(kb.Bytes)
	if err != nil {
		return "", nil, err
	}
	pass, err := store.NewPassphrase()
	if err != nil {
		return "", nil, err
	}
	p12, err := pkcs12.LegacyDES.Encode(key, cert, nil, pass)
	if err != nil {
		return "", nil, fmt.Errorf("encode pkcs12: %w", err)
	}
	signer, err := p.profileSigner()
	if err != nil {
		p.log.Error("profile signing", "err", err)
	}
	cfg := p.Config()
	body, err := profile.Generate(profile.WiFi{
		SSID: req.SSID, Identifier: "lan.deskgate." + cfg.OfficeRnD.OrgSlug + ".tls", Organization: cfg.OfficeRnD.OrgSlug,
		DisplayName: req.SSID + " WiFi (certificate)", EAPTypes: []string{"tls"}, UserName: req.User,
		CA: p.ca.TrustAnchor(), ServerNames: []string{cfg.RADIUS.EAP.ServerName},
		Identity: p12, IdentityName: "WiFi certificate for " + req.User,
	}, signer)
	if err != nil {
		return "", nil, fmt.Errorf("build profile: %w", err)
	}
	return pass, body, nil
}

func parsePrivateKey(der []byte) (any, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("issued key: not PKCS#8, EC or PKCS#1")
}

// handleEAPTLSDownload serves a profile made by handleEAPTLSProfile, once.
func (p *Pages) handleEAPTLSDownload(w http.ResponseWriter, r *http.Request) {
	prof, ok := p.oneTime.take(r.URL.Query().Get("t"), p.now())
	if !ok {
		memberError(w, &pageError{Code: http.StatusNotFound, Title: "Download expired",
			Text: "This download works once, within 10 minutes. Open your setup link again to make a new certificate profile."})
		return
	}
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Content-Disposition", `attachment; filename="`+prof.filename+`"`)
	w.Write(prof.body)
}
