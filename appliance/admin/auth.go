package admin

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

	"github.com/deskgate/deskgate/internal/atomicfile"
)

// openRoutes answer over TCP without the token (Host and Origin are still
// checked): what a local monitoring agent polls.
var openRoutes = map[string]bool{"GET /metrics": true, "GET /healthz": true}

// OpenRoute reports whether the route pattern answers over TCP without the
// token.
func OpenRoute(pattern string) bool { return openRoutes[pattern] }

// LoadOrCreateToken returns the token kept in path, generating it (32
// random bytes, base64url) when the file does not exist yet.
func LoadOrCreateToken(path string) (string, error) {
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

// Listen opens the TCP listener on addr (TLS when certFile is set; token
// required) and the unix socket at socket (0600, no token) of the API, and
// records the TCP listener's port and scheme for the Host and Origin
// checks.
func (s *Server) Listen(addr, socket, certFile, keyFile string) (tcpLn, sockLn net.Listener, err error) {
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen for admin API on %s: %w", addr, err)
	}
	ln, err := tlsListener(tcp, certFile, keyFile)
	if err != nil {
		tcp.Close()
		return nil, nil, err
	}
	s.setListener(ln, ln != tcp)
	_ = os.Remove(socket)
	if err := os.MkdirAll(filepath.Dir(socket), 0o755); err != nil {
		ln.Close()
		return nil, nil, fmt.Errorf("create socket dir: %w", err)
	}
	sock, err := net.Listen("unix", socket)
	if err != nil {
		ln.Close()
		return nil, nil, fmt.Errorf("listen on %s: %w", socket, err)
	}
	if err := os.Chmod(socket, 0o600); err != nil {
		ln.Close()
		sock.Close()
		return nil, nil, fmt.Errorf("chmod %s: %w", socket, err)
	}
	return ln, sock, nil
}

// tlsListener wraps the TCP listener in TLS when a certificate is named.
func tlsListener(ln net.Listener, certFile, keyFile string) (net.Listener, error) {
	if certFile == "" {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load admin TLS certificate %s: %w", certFile, err)
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), nil
}

// setListener records the TCP listener's port and scheme for the Host and
// Origin checks.
func (s *Server) setListener(ln net.Listener, withTLS bool) {
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	s.port.Store(&port)
	s.tls.Store(withTLS)
}

type socketConnKey struct{}

// markSocket is the servers' ConnContext: it marks connections that
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

// ServeHTTP is the guard: every route needs the token over TCP unless
// openRoutes names it, so a new route is closed by default.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sock := fromSocket(r)
	if !sock && !s.hostAllowed(r.Host, s.allowedHosts()) {
		http.Error(w, fmt.Sprintf("admin API: host %q is not allowed; use 127.0.0.1:<port>, [::1]:<port> or localhost:<port>, or add the name to admin.allowed_hosts", r.Host), http.StatusForbidden)
		return
	}
	if !s.sameOrigin(r, sock) {
		http.Error(w, "admin API: cross-origin request refused", http.StatusForbidden)
		return
	}
	if !sock {
		if _, pattern := s.routes.Handler(r); !openRoutes[pattern] && !s.validToken(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="deskgate"`)
			http.Error(w, "admin API: missing or wrong bearer token; send Authorization: Bearer <token> (`deskgate admin token` prints it), or use the unix socket", http.StatusUnauthorized)
			return
		}
	}
	s.routes.ServeHTTP(w, r)
}

// hostAllowed checks the Host header of a TCP request: a loopback literal
// or an allowed name, with the listener's port.
func (s *Server) hostAllowed(host string, allowed []string) bool {
	p := s.port.Load()
	if p == nil {
		return false
	}
	name, port, err := net.SplitHostPort(host)
	if err != nil {
		// No port: the scheme's default.
		name, port = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), "80"
		if s.tls.Load() {
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
func (s *Server) sameOrigin(r *http.Request, sock bool) bool {
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
	if !sock && s.tls.Load() {
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
func (s *Server) validToken(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || s.token == "" {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	want := sha256.Sum256([]byte(s.token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}
