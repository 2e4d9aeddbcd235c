package onboard

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
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
	"strconv"
	"strings"
	"time"

	"github.com/deskgate/deskgate/internal/keyfile"

	"github.com/deskgate/deskgate/appliance/eap/certs"
	"github.com/deskgate/deskgate/appliance/eap/profile"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

// Device onboarding: per-member pages with what a phone or laptop needs to
// join <location>-secure (Android 11+ refuses PEAP/TTLS without a CA and
// a domain): an Apple .mobileconfig, the CA file, and instructions. Links
// carry their expiry and an HMAC of username and expiry, so they can be
// neither guessed for others nor extended.

// Domain separation of the HMACs made with the profile key.
const (
	setupLinkDomain  = "deskgate setup link v2\x00"
	certFormDomain   = "deskgate client-cert form v1\x00"
	deviceFormDomain = "deskgate device form v1\x00"
)

// profileKeyPath is the key of the setup links' HMAC.
func (p *Pages) profileKeyPath() string { return filepath.Join(p.Config().DataDir, "profile.key") }

// profileKey returns the setup links' HMAC key. When it cannot be loaded
// every link is refused (fail closed): an HMAC with an empty key would let
// anyone forge links. Doctor reports the error.
func (p *Pages) profileKey() ([]byte, error) {
	p.profileKeyOnce.Do(func() {
		path := p.profileKeyPath()
		p.profileKeyBytes, p.profileKeyErr = loadProfileKey(path)
		if p.profileKeyErr != nil {
			p.log.Error("setup link key unusable: setup links are refused", "path", path, "err", p.profileKeyErr)
		}
	})
	return p.profileKeyBytes, p.profileKeyErr
}

// loadProfileKey reads the setup link key at path, creating it when
// missing; a file of another size is an error, not a reason to replace it.
func loadProfileKey(path string) ([]byte, error) { return keyfile.LoadOrCreate(path, "setup link key") }

func macB64(key []byte, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// setupSig signs a setup link: the username and the link's expiry.
func setupSig(key []byte, username string, expires int64) string {
	return macB64(key, setupLinkDomain+strings.ToLower(username)+"\x00"+strconv.FormatInt(expires, 10))
}

// PublicBase is where the member pages (onboarding, device setup) live:
// users.onboarding_url without /onboard, else the member listener.
func (p *Pages) PublicBase() string {
	cfg := p.Config()
	if u := cfg.Users.OnboardingURL; u != "" {
		return strings.TrimSuffix(strings.TrimSuffix(u, "/"), "/onboard")
	}
	return cfg.Members.BaseURL()
}

// ProfileURL is a fresh link to the member's device-setup page, valid for
// users.setup_link_ttl, for the welcome email, the portal and explain. It
// is "" when no link can be made (no CA, or the link key is unusable).
func (p *Pages) ProfileURL(username string) string {
	if p.ca == nil || username == "" {
		return ""
	}
	key, err := p.profileKey()
	if err != nil {
		return ""
	}
	exp := p.now().Add(p.Config().Users.SetupLinkTTL).Unix()
	e := strconv.FormatInt(exp, 10)
	return p.PublicBase() + "/wifi?" + url.Values{"u": {username}, "e": {e}, "s": {setupSig(key, username, exp)}}.Encode()
}

// setupRequest is a checked setup link and the member's access now.
type setupRequest struct {
	User, SSID, MemberID string
	Expires              int64
	Decision             model.Decision
	key                  []byte
}

// linkQuery is the link's parameters, for the pages' own links and forms.
func (s setupRequest) linkQuery() url.Values {
	return url.Values{"u": {s.User}, "e": {strconv.FormatInt(s.Expires, 10)}, "s": {setupSig(s.key, s.User, s.Expires)}}
}

// pageError is what a member page answers when it cannot serve a request.
type pageError struct {
	Code        int
	Title, Text string
}

func (e *pageError) Error() string { return e.Text }

var (
	errSetupInvalid = &pageError{Code: http.StatusNotFound, Title: "Link not valid",
		Text: "This setup link is not valid. Use the link from your latest WiFi email, or ask the front desk for a new one."}
	errSetupExpired = &pageError{Code: http.StatusNotFound, Title: "Link expired",
		Text: "This setup link has expired. Ask the front desk for a new one."}
	errSetupKey = &pageError{Code: http.StatusServiceUnavailable, Title: "Setup unavailable",
		Text: "Device setup is unavailable at the moment. Please ask the front desk."}
	errSetupNoAccess = &pageError{Code: http.StatusForbidden, Title: "No WiFi access",
		Text: "Your membership gives no WiFi access at the moment, so there is nothing to set up. Please ask the front desk if this is a mistake."}
)

// setupLink checks the link in r (query or form) with the injected clock
// and returns the member's setup facts. A member who lost access gets
// errSetupNoAccess.
func (p *Pages) setupLink(r *http.Request) (setupRequest, error) {
	if p.ca == nil {
		return setupRequest{}, errSetupInvalid
	}
	key, err := p.profileKey()
	if err != nil {
		return setupRequest{}, errSetupKey
	}
	u, e, s := r.FormValue("u"), r.FormValue("e"), r.FormValue("s")
	exp, perr := strconv.ParseInt(e, 10, 64)
	if u == "" || perr != nil || subtle.ConstantTimeCompare([]byte(s), []byte(setupSig(key, u, exp))) != 1 {
		return setupRequest{}, errSetupInvalid
	}
	now := p.now()
	if now.Unix() >= exp {
		return setupRequest{}, errSetupExpired
	}
	if time.Unix(exp, 0).After(now.Add(p.Config().Users.SetupLinkTTL)) {
		// Made under a longer setup_link_ttl than today's.
		return setupRequest{}, errSetupExpired
	}
	req := setupRequest{Expires: exp, key: key}
	err = p.store.View(func(tx *store.Tx) error {
		acct, err := tx.GetAccount(u)
		if err != nil {
			return err
		}
		_, dec, err := p.res.DecideMember(tx, acct.MemberID, now)
		if err != nil {
			return err
		}
		req.User, req.MemberID, req.Decision = acct.Username, acct.MemberID, dec
		if len(dec.Locations) > 0 {
			req.SSID = dec.Locations[0].Network
		}
		if acct.Disabled {
			req.Decision.Allowed = false
		}
		return nil
	})
	if err != nil {
		return setupRequest{}, errSetupInvalid
	}
	if !req.Decision.Allowed || req.SSID == "" {
		return req, errSetupNoAccess
	}
	return req, nil
}

var memberErrorTmpl = template.Must(template.New("err").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:1.5rem auto;padding:0 1rem;color:#1b1f24;line-height:1.5}</style></head>
<body><h1>{{.Title}}</h1><p>{{.Text}}</p></body></html>`))

// memberError answers a member page's refusal as a small HTML page.
func memberError(w http.ResponseWriter, err error) {
	var pe *pageError
	if !errors.As(err, &pe) {
		pe = &pageError{Code: http.StatusInternalServerError, Title: "Something went wrong", Text: "Something went wrong; please try again later."}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(pe.Code)
	_ = memberErrorTmpl.Execute(w, pe)
}

// memberHeaders gives every member page the portal's security headers.
func memberHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

func (p *Pages) profileSigner() (*profile.Signer, error) {
	e := p.Config().RADIUS.EAP
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
	return &profile.Signer{Certificate: certs[0], Chain: certs[1:], Key: cs, Now: p.now}, nil
}

func (p *Pages) handleWiFiProfile(w http.ResponseWriter, r *http.Request) {
	req, err := p.setupLink(r)
	if err != nil {
		memberError(w, err)
		return
	}
	e := p.Config().RADIUS.EAP
	signer, err := p.profileSigner()
	if err != nil {
		p.log.Error("profile signing", "err", err)
	}
	body, err := profile.Generate(profile.WiFi{
		SSID: req.SSID, Identifier: "lan.deskgate." + p.Config().OfficeRnD.OrgSlug, Organization: p.Config().OfficeRnD.OrgSlug,
		EAPTypes: []string{"peap", "ttls"}, UserName: req.User, OuterIdentity: "anonymous",
		CA: p.ca.TrustAnchor(), ServerNames: []string{e.ServerName},
	}, signer)
	if err != nil {
		p.log.Error("build profile", "user", req.User, "err", err)
		memberError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Content-Disposition", `attachment; filename="`+req.SSID+`.mobileconfig"`)
	w.Write(body)
}

func (p *Pages) handleCA(w http.ResponseWriter, r *http.Request) {
	if p.ca == nil {
		http.NotFound(w, r)
		return
	}
	if strings.HasSuffix(r.URL.Path, ".crt") {
		w.Header().Set("Content-Type", "application/x-x509-ca-cert")
		w.Write(p.ca.TrustAnchor().Raw)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write(p.ca.TrustAnchorPEM())
}

var wifiTmpl = template.Must(template.New("wifi").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Set up {{.SSID}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:1.5rem auto;padding:0 1rem;color:#1b1f24;line-height:1.5}
p.button{display:inline-block;background:#1d4ed8;color:#fff;padding:.7rem 1rem;border-radius:8px;text-decoration:none;font-weight:600}
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
<p>Laptops and managed devices can log in with a certificate instead of a password. Each certificate is for one device;
you hold {{.Live}} of the {{.Limit}} your plan allows. It stops working when your membership ends.</p>
{{if lt .Live .Limit}}<form method="post" action="/wifi/client-cert.pem">
<input type="hidden" name="u" value="{{.User}}"><input type="hidden" name="e" value="{{.Expires}}"><input type="hidden" name="s" value="{{.Sig}}"><input type="hidden" name="csrf" value="{{.CSRF}}">
<button type="submit">Create a certificate and key for a new device</button> (PEM; keep the file private)</form>
<form method="post" action="/wifi/eaptls">
<input type="hidden" name="u" value="{{.User}}"><input type="hidden" name="e" value="{{.Expires}}"><input type="hidden" name="s" value="{{.Sig}}"><input type="hidden" name="csrf" value="{{.CSRF}}">
<button type="submit">iPhone, iPad, Mac: install a certificate profile</button> (one tap; the page shows its password once)</form>
{{else}}<p>You hold as many certificates as your plan allows. Ask the front desk to revoke one you no longer use.</p>{{end}}
<h2>Printers, TVs and other devices without a login</h2>
<p>Devices that only take a WiFi password join with your personal passphrase once you register them here.
They count towards your plan's {{.Limit}} devices and stop working when your membership ends.</p>
{{if .Devices}}<p>Passphrase: <code>{{.Passphrase}}</code></p>
<ul>{{range .Devices}}<li>{{.Name}} <code>{{.MAC}}</code>
<form method="post" action="/wifi/devices/remove" style="display:inline">
<input type="hidden" name="u" value="{{$.User}}"><input type="hidden" name="e" value="{{$.Expires}}"><input type="hidden" name="s" value="{{$.Sig}}"><input type="hidden" name="csrf" value="{{$.DeviceCSRF}}">
<input type="hidden" name="mac" value="{{.MAC}}"><button type="submit">Remove</button></form></li>{{end}}</ul>{{end}}
<form method="post" action="/wifi/devices">
<input type="hidden" name="u" value="{{.User}}"><input type="hidden" name="e" value="{{.Expires}}"><input type="hidden" name="s" value="{{.Sig}}"><input type="hidden" name="csrf" value="{{.DeviceCSRF}}">
<label>Name <input name="name" maxlength="64" required placeholder="Office printer"></label>
<label>MAC address <input name="mac" required placeholder="a4:83:e7:12:34:56"></label>
<button type="submit">Register the device</button></form>
<h2>Windows and Linux</h2>
<p>Join <b>{{.SSID}}</b> with PEAP / MSCHAPv2 (or EAP-TTLS / PAP), identity <code>{{.User}}</code>. When asked about the server, check that it is <code>{{.Domain}}</code> and issued by the certificate at <a href="{{.CAPem}}">{{.CAPem}}</a>.</p>
</body></html>`))

// csrfCookie holds the per-browser nonce the certificate form's token is
// bound to.
const csrfCookie = "dg_wifi_csrf"

// certFormToken binds the certificate form to the setup link and to the
// browser's nonce cookie.
func certFormToken(key []byte, req setupRequest, nonce string) string {
	return macB64(key, certFormDomain+strings.ToLower(req.User)+"\x00"+strconv.FormatInt(req.Expires, 10)+"\x00"+nonce)
}

// deviceFormToken binds the device forms to the setup link and to the
// browser's nonce cookie.
func deviceFormToken(key []byte, req setupRequest, nonce string) string {
	return macB64(key, deviceFormDomain+strings.ToLower(req.User)+"\x00"+strconv.FormatInt(req.Expires, 10)+"\x00"+nonce)
}

// certLimit is how many live client certificates a member may hold: the
// decision's device limit.
func certLimit(d model.Decision) int { return max(d.MaxDevices, 1) }

func (p *Pages) handleWiFiPage(w http.ResponseWriter, r *http.Request) {
	req, err := p.setupLink(r)
	if err != nil {
		memberError(w, err)
		return
	}
	nonce := ""
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 24 {
		nonce = c.Value
	} else {
		b := make([]byte, 18)
		rand.Read(b)
		nonce = base64.RawURLEncoding.EncodeToString(b)
		http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: nonce, Path: "/wifi", HttpOnly: true,
			Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	}
	q := req.linkQuery()
	devs, _ := p.app.Devices(req.MemberID)
	pass := ""
	if len(devs) > 0 {
		pass = devs[0].Passphrase
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = wifiTmpl.Execute(w, map[string]any{
		"SSID": req.SSID, "User": req.User, "Domain": p.Config().RADIUS.EAP.ServerName,
		"Profile": "/wifi/profile.mobileconfig?" + q.Encode(), "CACrt": "/wifi/ca.crt", "CAPem": "/wifi/ca.pem",
		"Expires": req.Expires, "Sig": q.Get("s"), "CSRF": certFormToken(req.key, req, nonce),
		"Live": p.ca.LiveCount(req.User), "Limit": certLimit(req.Decision),
		"DeviceCSRF": deviceFormToken(req.key, req, nonce), "Devices": devs, "Passphrase": pass,
	})
}

var crossOrigin = http.NewCrossOriginProtection()

// handleClientCert issues the member an EAP-TLS client certificate (one
// year) from deskgate's CA and returns it with its key in one PEM file. It
// answers only a POST of the setup page's form (same origin, token bound
// to the link and the browser's cookie), and only while the member holds
// fewer live certificates than their device limit. The key is not kept;
// certificates are revoked when access ends.
func (p *Pages) handleClientCert(w http.ResponseWriter, r *http.Request) {
	req, ok := p.memberPost(w, r, "Certificates are issued", certFormToken)
	if !ok {
		return
	}
	cert, key, serial, ok := p.issueMemberCert(w, req)
	if !ok {
		return
	}
	p.audit("portal", "cert.issued", req.MemberID, req.User, "member created an EAP-TLS client certificate on the setup page (serial "+serial+")")
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="wifi-certificate.pem"`)
	w.Write(cert)
	w.Write(key)
}

// memberPost checks a form posted from a member's setup page: a bounded
// body, the same origin, a valid setup link, and the form's token bound to
// the link and the browser's cookie. On failure it has answered with a
// page; what names what the page does ("Certificates are issued").
func (p *Pages) memberPost(w http.ResponseWriter, r *http.Request, what string, token func([]byte, setupRequest, string) string) (setupRequest, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := crossOrigin.Check(r); err != nil {
		memberError(w, &pageError{Code: http.StatusForbidden, Title: "Request refused", Text: what + " only from your setup page."})
		return setupRequest{}, false
	}
	if err := r.ParseForm(); err != nil {
		memberError(w, &pageError{Code: http.StatusBadRequest, Title: "Request refused", Text: "The form could not be read."})
		return setupRequest{}, false
	}
	req, err := p.setupLink(r)
	if err != nil {
		memberError(w, err)
		return setupRequest{}, false
	}
	c, cerr := r.Cookie(csrfCookie)
	if cerr != nil || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(token(req.key, req, c.Value))) != 1 {
		memberError(w, &pageError{Code: http.StatusForbidden, Title: "Request refused",
			Text: "This form has expired. Open your setup link again and use the form on that page."})
		return setupRequest{}, false
	}
	return req, true
}

// issueMemberCert issues the member an EAP-TLS certificate while their
// live certificates and registered PPSK devices together stay within the
// device limit. On failure it has answered with a page.
func (p *Pages) issueMemberCert(w http.ResponseWriter, req setupRequest) (certPEM, keyPEM []byte, serial string, ok bool) {
	limit := certLimit(req.Decision)
	var devs []model.Device
	_ = p.store.View(func(tx *store.Tx) error { devs, _ = tx.Devices(req.MemberID); return nil })
	err := certs.ErrLimit
	if limit-len(devs) > 0 { // 0 would mean "no limit" to the CA
		certPEM, keyPEM, serial, err = p.ca.IssueClientUpTo(req.User, 365*24*time.Hour, limit-len(devs))
	}
	if errors.Is(err, certs.ErrLimit) {
		memberError(w, &pageError{Code: http.StatusConflict, Title: "Certificate limit reached",
			Text: fmt.Sprintf("Your certificates and registered devices are as many as your plan allows (%d devices). Ask the front desk to revoke a certificate or remove a device you no longer use, then try again.", limit)})
		return nil, nil, "", false
	}
	if err != nil {
		p.log.Error("issue client certificate", "user", req.User, "err", err)
		memberError(w, &pageError{Code: http.StatusInternalServerError, Title: "Something went wrong", Text: "A certificate cannot be issued now; please try again later."})
		return nil, nil, "", false
	}
	return certPEM, keyPEM, serial, true
}
