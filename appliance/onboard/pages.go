package onboard

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/deskgate/deskgate/appliance/access"
	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/appliance/eap/certs"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

// App is what the member pages ask of the rest of the daemon; the
// composition root implements it.
type App interface {
	// RecordPassword shares a member's new NT hash with the fleet, in the
	// transaction that stores it.
	RecordPassword(tx *store.Tx, memberID string, ntHash []byte) error
	// Network is the WiFi network (SSID) the account's access is for, ""
	// when none.
	Network(username string) string
	// Devices lists the member's PPSK devices.
	Devices(memberID string) ([]admin.Device, error)
	// RegisterDevice and RemoveDevice act for the member themself; a
	// refusal the member should read is a Refused.
	RegisterDevice(memberID, mac, name string) (admin.Device, error)
	RemoveDevice(ctx context.Context, mac, memberID string) (admin.Device, error)
}

// Refused is a device form's refusal, in words for the member.
type Refused string

func (r Refused) Error() string { return string(r) }

// Options configure the member pages.
type Options struct {
	Store    *store.Store
	Resolver *access.Resolver
	// CA is the EAP CA (nil when EAP is off: no setup pages then).
	CA     *certs.Authority
	Config func() *config.Config
	Now    func() time.Time
	Log    *slog.Logger
	App    App
}

// Pages are the member pages.
type Pages struct {
	store  *store.Store
	res    *access.Resolver
	ca     *certs.Authority
	config func() *config.Config
	now    func() time.Time
	log    *slog.Logger
	app    App

	profileKeyOnce  sync.Once
	profileKeyBytes []byte
	profileKeyErr   error
	// oneTime holds EAP-TLS profiles made on the setup page until their one
	// download (eaptls.go).
	oneTime oneTimeProfiles
}

// New returns the member pages.
func New(o Options) *Pages {
	return &Pages{store: o.Store, res: o.Resolver, ca: o.CA, config: o.Config, now: o.Now, log: o.Log, app: o.App}
}

// Config returns the current configuration.
func (p *Pages) Config() *config.Config { return p.config() }

// Server serves the pages members reach from their emails: onboarding
// (setting a WiFi password) and device setup, with the portal's security
// headers. It runs on the member listener only.
func (p *Pages) Server() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /wifi", p.handleWiFiPage)
	mux.HandleFunc("GET /wifi/profile.mobileconfig", p.handleWiFiProfile)
	mux.HandleFunc("GET /wifi/ca.pem", p.handleCA)
	mux.HandleFunc("GET /wifi/ca.crt", p.handleCA)
	mux.HandleFunc("POST /wifi/client-cert.pem", p.handleClientCert)
	mux.HandleFunc("POST /wifi/devices", p.handleMemberDevice)
	mux.HandleFunc("POST /wifi/eaptls", p.handleEAPTLSProfile)
	mux.HandleFunc("GET /wifi/eaptls/profile.mobileconfig", p.handleEAPTLSDownload)
	mux.HandleFunc("POST /wifi/devices/remove", p.handleMemberDevice)
	mux.HandleFunc("GET /onboard", p.handleOnboard)
	mux.HandleFunc("POST /onboard", p.handleOnboard)
	return &http.Server{
		Handler: memberHeaders(mux), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 15 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 32 << 10,
		// TLS handshake failures are anyone's to cause: debug, not stderr.
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
}

// Listen opens the member pages' listener: TLS with the operator's
// certificate, or with one issued from the EAP CA for the host name of the
// member pages' URL; plain HTTP only with members.insecure_http (which the
// config check allows on loopback only).
func (p *Pages) Listen(cfg *config.Config) (net.Listener, error) {
	m := cfg.Members
	var cert tls.Certificate
	if !m.InsecureHTTP {
		var err error
		if cert, err = p.certificate(cfg); err != nil {
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

// ErrNoCert: neither a configured certificate nor the EAP CA to issue one.
// The daemon then runs without member pages (a box that is not set up yet
// must still start); doctor says what to do.
var ErrNoCert = errors.New("member pages off: no TLS certificate: set members.tls_cert_file and tls_key_file " +
	"(deskgate issues one itself only from its EAP CA, which runs when radius.clients are configured and radius.eap is enabled)")

func (p *Pages) certificate(cfg *config.Config) (tls.Certificate, error) {
	m := cfg.Members
	if m.TLSCertFile != "" {
		c, err := tls.LoadX509KeyPair(m.TLSCertFile, m.TLSKeyFile)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("member pages: load members.tls_cert_file: %w", err)
		}
		return c, nil
	}
	if p.ca == nil {
		return tls.Certificate{}, ErrNoCert
	}
	var names []string
	if u, err := url.Parse(p.PublicBase()); err == nil && u.Hostname() != "" {
		names = append(names, u.Hostname())
	}
	if host, _, err := net.SplitHostPort(m.Listen); err == nil && host != "" && !slices.Contains(names, host) {
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			names = append(names, host)
		}
	}
	if len(names) == 0 {
		names = []string{"localhost"}
	}
	c, err := p.ca.IssueServer(names, 397*24*time.Hour)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("member pages: %w", err)
	}
	return c, nil
}

// Checks are doctor's checks of the member pages; off says the pages run
// without a listener (ErrNoCert).
func (p *Pages) Checks(off bool) []admin.Check {
	var out []admin.Check
	if off {
		out = append(out, admin.Check{Name: "member pages", Detail: ErrNoCert.Error(),
			Fix: "configure radius.clients (the EAP CA then issues the certificate) or members.tls_cert_file/tls_key_file, and restart deskgated"})
	}
	return append(out, p.setupKeyCheck())
}

func (p *Pages) setupKeyCheck() admin.Check {
	path := p.profileKeyPath()
	if _, err := p.profileKey(); err != nil {
		return admin.Check{Name: "setup link key", Detail: "setup links are refused: " + err.Error(),
			Fix: "move " + path + " aside (deskgated creates a new 32-byte key, mode 0600; links sent before stop working) and restart deskgated"}
	}
	return admin.Check{Name: "setup link key", OK: true, Detail: path + " loaded; links valid for " + config.FormatDuration(p.Config().Users.SetupLinkTTL)}
}

func (p *Pages) audit(actor, action, member, subject, cause string) {
	err := p.store.Update(func(tx *store.Tx) error {
		return tx.Audit(model.AuditEntry{Time: p.now(), Actor: actor, Action: action, Member: member, Subject: subject, Cause: cause})
	})
	if err != nil {
		p.log.Error("audit", "action", action, "err", err)
	}
}

var deviceDoneTmpl = template.Must(template.New("dev").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:1.5rem auto;padding:0 1rem;color:#1b1f24;line-height:1.5}
code{background:#eef0f3;padding:.1rem .3rem;border-radius:4px}</style></head>
<body><h1>{{.Title}}</h1><p>{{.Text}}</p>
{{if .Passphrase}}<p>On the device, join the WiFi network with the passphrase <code>{{.Passphrase}}</code>.</p>{{end}}
<p><a href="{{.Back}}">Back to your setup page</a></p></body></html>`))

// handleMemberDevice registers (POST /wifi/devices) or removes (POST
// /wifi/devices/remove) a device from the member's setup page: same
// origin, a token bound to the link and the browser's cookie, like the
// certificate form.
func (p *Pages) handleMemberDevice(w http.ResponseWriter, r *http.Request) {
	req, ok := p.memberPost(w, r, "Devices are registered", deviceFormToken)
	if !ok {
		return
	}
	back := "/wifi?" + req.linkQuery().Encode()
	var d admin.Device
	var err error
	title := "Device registered"
	if strings.HasSuffix(r.URL.Path, "/remove") {
		d, err = p.app.RemoveDevice(r.Context(), r.PostForm.Get("mac"), req.MemberID)
		title = "Device removed"
	} else {
		d, err = p.app.RegisterDevice(req.MemberID, r.PostForm.Get("mac"), r.PostForm.Get("name"))
	}
	var refused Refused
	if errors.As(err, &refused) {
		memberError(w, &pageError{Code: http.StatusBadRequest, Title: "Not done", Text: string(refused) + "."})
		return
	}
	if err != nil {
		p.log.Error("member device form", "user", req.User, "err", err)
		memberError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = deviceDoneTmpl.Execute(w, map[string]string{"Title": title, "Text": d.Name + " (" + d.MAC + ")", "Passphrase": d.Passphrase, "Back": back})
}
