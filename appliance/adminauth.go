package appliance

// The admin API answers on two listeners. The unix socket (mode 0600) is
// the unauthenticated path: only root (or deskgate's user) can connect.
// Loopback is no such boundary, since every local user and every web page
// in a browser on the box can reach it, so requests over TCP must carry a
// known Host (DNS rebinding), no foreign Origin (browser CSRF) and the
// bearer token kept in <data_dir>/admin.token; only GET /metrics and GET
// /healthz answer without the token.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/internal/atomicfile"
)

// adminTokenFile holds the TCP admin API's bearer token, in data_dir.
const adminTokenFile = "admin.token"

// openAdminRoutes answer over TCP without the token (Host and Origin are
// still checked): what a local monitoring agent polls.
var openAdminRoutes = map[string]bool{"GET /metrics": true, "GET /healthz": true}

// consoleMount is the operator console's pattern on the admin listener: a
// browser has no bearer token, so the console authenticates with its own
// sessions (appliance/console), behind the same Host and Origin checks.
const consoleMount = "/console/"

// adminAuth is the state the admin API's guard needs.
type adminAuth struct {
	token string
	// port and tls describe the TCP listener (set by listenAdmin).
	port atomic.Pointer[string]
	tls  atomic.Bool
}

// loadOrCreateAdminToken returns the token kept in path, generating it
// (32 random bytes, base64url) when the file does not exist yet.
func loadOrCreateAdminToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		tok := strings.TrimSpace(string(b))
		if len(tok) < 32 || strings.ContainsAny(tok, " \t\r\n") {
			return "", fmt.Errorf("admin token in %s is malformed (want one line of at least 32 characters); delete the file to generate a new one", path)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(path, 0o600); err != nil {
				return "", fmt.Errorf("restrict admin token file %s to mode 0600: %w", path, err)
			}
		}
		return tok, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("read admin token %s: %w", path, err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate admin token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(raw)
	if err := atomicfile.Write(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	return tok, nil
}

// adminTLSListener wraps the admin TCP listener in TLS when the config
// names a certificate.
func adminTLSListener(cfg *config.Config, ln net.Listener) (net.Listener, error) {
	if cfg.Admin.TLSCertFile == "" {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.Admin.TLSCertFile, cfg.Admin.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("load admin TLS certificate %s: %w", cfg.Admin.TLSCertFile, err)
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), nil
}

// setListener records the TCP listener's port and scheme for the Host and
// Origin checks.
func (au *adminAuth) setListener(ln net.Listener, withTLS bool) {
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	au.port.Store(&port)
	au.tls.Store(withTLS)
}

type socketConnKey struct{}

// markSocket is the admin servers' ConnContext: it marks connections that
// arrived over the unix socket.
func markSocket(ctx context.Context, c net.Conn) context.Context {
	if c.LocalAddr().Network() == "unix" {
		return context.WithValue(ctx, socketConnKey{}, true)
	}
	return ctx
}

// fromSocket reports whether r came over the unix socket.
func fromSocket(r *http.Request) bool {
	v, _ := r.Context().Value(socketConnKey{}).(bool)
	return v
}

// routeMux is a ServeMux that remembers its patterns, so a test can walk
// every admin route and prove none answers without the token by mistake.
type routeMux struct {
	*http.ServeMux
	patterns []string
}

func newRouteMux() *routeMux { return &routeMux{ServeMux: http.NewServeMux()} }

func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.HandleFunc(pattern, h)
}

// adminGuard authenticates the admin API: every route needs the token over
// TCP unless openAdminRoutes names it, so a new route is closed by default.
type adminGuard struct {
	a      *App
	routes *routeMux
}

func (g *adminGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	au := &g.a.adminAuth
	sock := fromSocket(r)
	if !sock && !au.hostAllowed(r.Host, g.a.Config().Admin.AllowedHosts) {
		http.Error(w, fmt.Sprintf("admin API: host %q is not allowed; use 127.0.0.1:<port>, [::1]:<port> or localhost:<port>, or add the name to admin.allowed_hosts", r.Host), http.StatusForbidden)
		return
	}
	if !au.sameOrigin(r, sock) {
		http.Error(w, "admin API: cross-origin request refused", http.StatusForbidden)
		return
	}
	if !sock {
		if _, pattern := g.routes.Handler(r); !openAdminRoutes[pattern] && pattern != consoleMount && !au.validToken(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="deskgate"`)
			http.Error(w, "admin API: missing or wrong bearer token; send Authorization: Bearer <token> (`deskgate admin token` prints it), or use the unix socket", http.StatusUnauthorized)
			return
		}
	}
	g.routes.ServeHTTP(w, r)
}

// hostAllowed checks the Host header of a TCP request: a loopback literal
// or an allowed name, with the listener's port.
func (au *adminAuth) hostAllowed(host string, allowed []string) bool {
	p := au.port.Load()
	if p == nil {
		return false
	}
	name, port, err := net.SplitHostPort(host)
	if err != nil {
		// No port: the scheme's default.
		name, port = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), "80"
		if au.tls.Load() {
			port = "443"
		}
	}
	if port != *p || name == "" {
		return false
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	switch name {
	case "127.0.0.1", "::1", "localhost":
		return true
	}
	for _, h := range allowed {
		if strings.EqualFold(name, strings.TrimSuffix(h, ".")) {
			return true
		}
	}
	return false
}

// sameOrigin accepts a request without Origin, or whose Origin is this
// very host and scheme; a browser sends Origin on cross-site requests.
func (au *adminAuth) sameOrigin(r *http.Request, sock bool) bool {
	origins := r.Header.Values("Origin")
	if len(origins) == 0 {
		return true
	}
	if len(origins) > 1 {
		return false
	}
	u, err := url.Parse(origins[0])
	if err != nil || u.Host == "" || u.Path != "" || u.User != nil {
		return false // includes "null"
	}
	scheme := "http"
	if !sock && r.TLS != nil {
		scheme = "https"
	}
	if u.Scheme != scheme {
		return false
	}
	want := r.Host
	if u.Port() == "" {
		want = strings.TrimSuffix(want, ":"+map[string]string{"http": "80", "https": "443"}[scheme])
	}
	return strings.EqualFold(u.Host, want)
}

// validToken compares the bearer token in constant time (both sides are
// hashed first so the comparison does not depend on their lengths).
func (au *adminAuth) validToken(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || au.token == "" {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	want := sha256.Sum256([]byte(au.token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// handleAdminToken hands the token to the CLI (deskgate admin token); it
// answers only on the unix socket.
func (a *App) handleAdminToken(w http.ResponseWriter, r *http.Request) {
	if !fromSocket(r) {
		writeErr(w, http.StatusForbidden, errors.New("the admin token is handed out only over the unix socket (run deskgate admin token on the box)"))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]string{"token": a.adminAuth.token, "file": filepath.Join(a.Config().DataDir, adminTokenFile)})
}

// AdminAddr is the admin API's TCP address once Run listens ("" before).
func (a *App) AdminAddr() string {
	if p := a.adminAuth.port.Load(); p != nil {
		host, _, _ := net.SplitHostPort(a.Config().Admin.Listen)
		return net.JoinHostPort(host, *p)
	}
	return ""
}

// adminCheck is doctor's line about the admin API: how TCP is protected,
// and whether the token file is still private.
func (a *App) adminCheck() admin.Check {
	cfg := a.Config()
	path := filepath.Join(cfg.DataDir, adminTokenFile)
	fi, err := os.Stat(path)
	if err != nil {
		return admin.Check{Name: "admin api", Detail: "token file: " + err.Error(), Fix: "restart deskgated to generate " + path}
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return admin.Check{Name: "admin api", Detail: fmt.Sprintf("token file %s has mode %04o: other users can read the admin token", path, m),
			Fix: "chmod 600 " + path + ", then delete it and restart deskgated to get a new token (the old one may have leaked)"}
	}
	where := "https://" + a.AdminAddr()
	if cfg.Admin.TLSCertFile == "" { // see admintls.go
		where = "http://" + a.AdminAddr() + " (loopback) and https://" + a.AdminAddr() + " (self-signed certificate)"
	}
	return admin.Check{Name: "admin api", OK: true, Detail: fmt.Sprintf("%s want the token from `deskgate admin token` (except /metrics, /healthz; /console/ has its own logins); socket %s (0600) needs none",
		where, cfg.Admin.Socket)}
}
