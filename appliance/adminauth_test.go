package appliance

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/admin"
)

// adminGet sends one request to the daemon's TCP admin API as a plain HTTP
// client would; token "" sends no Authorization, host "" the address.
func adminDo(t *testing.T, hc *http.Client, base, method, path, token, host, origin string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if host != "" {
		req.Host = host
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startAdminHarness runs a seeded daemon and returns it with the admin
// token, fetched from the unix socket the way `deskgate admin token` does.
func startAdminHarness(t *testing.T, h *harness) string {
	t.Helper()
	h.start()
	h.waitImport(30 * time.Second)
	sock := admin.Dial(h.app.Config().Admin.Socket)
	var tok struct{ Token, File string }
	waitFor(t, 5*time.Second, "admin socket", func() bool { return sock.Get(context.Background(), "/v1/token", nil, &tok) == nil })
	if len(tok.Token) < 43 {
		t.Fatalf("token from the socket: %q", tok.Token)
	}
	// These tests send POST /v1/net/teardown expecting 401. Should the
	// guard regress, the handler must not remove the host's dg- state (the
	// tests may run as root): with gateway.enabled it answers 409 instead.
	// Only the in-memory config changes; runNet has already started.
	cfg := *h.app.Config()
	cfg.Gateway.Enabled = true
	h.app.cfg.Store(&cfg)
	return tok.Token
}

// TestAdminAPIOverTCP: over TCP the admin API wants the bearer token (but
// for /metrics and /healthz), a loopback Host and no foreign Origin; the
// unix socket needs no token.
func TestAdminAPIOverTCP(t *testing.T) {
	h := newHarness(t, harnessOpts{seed: true})
	token := startAdminHarness(t, h)
	addr := h.app.AdminAddr()
	_, port, _ := net.SplitHostPort(addr)
	base := "http://" + addr
	hc := &http.Client{Timeout: time.Minute}

	// The token file: in data_dir, 0600, the same token the socket gave.
	tokFile := filepath.Join(h.app.Config().DataDir, admin.TokenFile)
	fi, err := os.Stat(tokFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	if got := strings.TrimSpace(readFile(t, tokFile)); got != token {
		t.Errorf("token file holds %q, the socket said %q", got, token)
	}

	wrong := []byte(token)
	wrong[0] ^= 1
	// Teardown comes before reload: a reload (were the guard broken) would
	// restore gateway.enabled: false from the file.
	private := []struct{ method, path string }{
		{"POST", "/v1/net/teardown"},
		{"GET", "/v1/members"},
		{"GET", "/v1/explain?user=ada.lovelace%40example.com"},
		{"GET", "/v1/status"},
		{"POST", "/v1/sync"},
		{"POST", "/v1/reload"},
	}
	for _, r := range private {
		for name, tok := range map[string]string{"no token": "", "wrong token": string(wrong), "token of another box": strings.Repeat("A", len(token))} {
			code, body := adminDo(t, hc, base, r.method, r.path, tok, "", "")
			if code != http.StatusUnauthorized || strings.Contains(body, "lovelace") {
				t.Errorf("%s %s with %s: %d %.200s, want 401 without data", r.method, r.path, name, code, body)
			}
		}
	}
	// Basic auth with the token as password is not a bearer token.
	req, _ := http.NewRequest("GET", base+"/v1/members", nil)
	req.SetBasicAuth("admin", token)
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("basic auth: %v %v, want 401", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}

	// The right token opens the same routes (teardown is left alone: it
	// would touch the host's network).
	for _, r := range private[1:] {
		code, body := adminDo(t, hc, base, r.method, r.path, token, "", "")
		if code != http.StatusOK {
			t.Errorf("%s %s with the token: %d %.300s", r.method, r.path, code, body)
		}
		if r.path == "/v1/members" && !strings.Contains(body, "lovelace") {
			t.Errorf("members with the token lack Ada: %.300s", body)
		}
	}
	// The admin client (what the CLI's -addr uses) sends it too.
	var rows []admin.MemberRow
	if err := admin.Dial(addr).WithToken(token).Get(context.Background(), "/v1/members", url.Values{"q": {"lovelace"}}, &rows); err != nil || len(rows) != 1 {
		t.Errorf("admin client with token: %v %+v", err, rows)
	}
	if err := admin.Dial(addr).Get(context.Background(), "/v1/members", nil, &rows); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("admin client without token: %v, want 401", err)
	}

	// Monitoring needs no token.
	if code, body := adminDo(t, hc, base, "GET", "/metrics", "", "", ""); code != 200 || !strings.Contains(body, "deskgate_sync_lag_seconds") {
		t.Errorf("/metrics without token: %d %.200s", code, body)
	}
	if code, body := adminDo(t, hc, base, "GET", "/healthz", "", "", ""); code != 200 || body != "ok\n" {
		t.Errorf("/healthz without token: %d %q", code, body)
	}

	// Host: loopback literals with our port pass; anything else is refused
	// even with the token (DNS rebinding), /metrics included.
	for _, host := range []string{"127.0.0.1:" + port, "[::1]:" + port, "localhost:" + port, "LOCALHOST:" + port} {
		if code, body := adminDo(t, hc, base, "GET", "/v1/status", token, host, ""); code != 200 {
			t.Errorf("Host %q: %d %.200s", host, code, body)
		}
	}
	for _, host := range []string{"evil.example:" + port, "evil.example", "127.0.0.1:1", "127.0.0.2:" + port, "localhost.evil.example:" + port, "127.0.0.1"} {
		for _, path := range []string{"/v1/members", "/metrics", "/healthz"} {
			if code, body := adminDo(t, hc, base, "GET", path, token, host, ""); code != http.StatusForbidden || strings.Contains(body, "lovelace") {
				t.Errorf("Host %q %s: %d %.200s, want 403", host, path, code, body)
			}
		}
	}
	// Origin: a page of another site is refused, even with the token; the
	// API's own origin passes.
	for _, origin := range []string{"http://evil.example", "null", "https://127.0.0.1:" + port, "http://127.0.0.1:1", "http://localhost:" + port} {
		for _, r := range []struct{ method, path string }{{"GET", "/v1/members"}, {"POST", "/v1/reload"}, {"GET", "/metrics"}} {
			if code, _ := adminDo(t, hc, base, r.method, r.path, token, "", origin); code != http.StatusForbidden {
				t.Errorf("Origin %q %s %s: %d, want 403", origin, r.method, r.path, code)
			}
		}
	}
	if code, _ := adminDo(t, hc, base, "GET", "/v1/status", token, "", "http://"+addr); code != 200 {
		t.Errorf("same-origin request: %d, want 200", code)
	}

	// The token is handed out only over the socket.
	if code, body := adminDo(t, hc, base, "GET", "/v1/token", token, "", ""); code != http.StatusForbidden || strings.Contains(body, token) {
		t.Errorf("/v1/token over TCP: %d %.200s, want 403 without the token", code, body)
	}

	// doctor names the admin API's protection, and a token file others can
	// read.
	doctorAdmin := func() admin.Check {
		for _, c := range h.app.Doctor(context.Background()) {
			if c.Name == "admin api" {
				return c
			}
		}
		t.Fatal("doctor has no admin api check")
		return admin.Check{}
	}
	if c := doctorAdmin(); !c.OK || !strings.Contains(c.Detail, "http://"+addr) || strings.Contains(c.Detail, token) {
		t.Errorf("doctor admin api: %+v", c)
	}
	if err := os.Chmod(tokFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if c := doctorAdmin(); c.OK || !strings.Contains(c.Fix, "chmod 600 "+tokFile) {
		t.Errorf("doctor with a readable token file: %+v", c)
	}
	os.Chmod(tokFile, 0o600)

	// The socket needs no token.
	sock := admin.Dial(h.app.Config().Admin.Socket)
	if err := sock.Get(context.Background(), "/v1/members", url.Values{"q": {"lovelace"}}, &rows); err != nil || len(rows) != 1 {
		t.Errorf("members over the socket: %v %+v", err, rows)
	}
	if err := sock.Post(context.Background(), "/v1/reload", nil, nil); err != nil {
		t.Errorf("reload over the socket: %v", err)
	}
}

// TestAdminRoutesNeedToken walks the admin mux's route table: every route
// but GET /metrics and GET /healthz answers 401 over TCP without the token,
// so a route added later cannot be open by mistake.
func TestAdminRoutesNeedToken(t *testing.T) {
	h := newHarness(t, harnessOpts{seed: true})
	token := startAdminHarness(t, h)
	base := "http://" + h.app.AdminAddr()
	hc := &http.Client{Timeout: time.Minute}
	routes := h.app.adminSrv.Routes()
	wild := regexp.MustCompile(`\{[^}]*\}`)
	var open []string
	// Reload last: it would re-read gateway.enabled: false (see above).
	patterns := append([]string(nil), routes...)
	sort.SliceStable(patterns, func(i, j int) bool { return patterns[j] == "POST /v1/reload" && patterns[i] != patterns[j] })
	for _, p := range patterns {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			method, path = "GET", p
		}
		path = wild.ReplaceAllString(path, "x")
		code, body := adminDo(t, hc, base, method, path, "", "", "")
		if admin.OpenRoute(p) {
			open = append(open, p)
			if code != 200 {
				t.Errorf("%s without token: %d, want 200", p, code)
			}
			continue
		}
		if code != http.StatusUnauthorized {
			t.Errorf("%s without token: %d %.200s, want 401", p, code, body)
		}
		if method == "GET" && p != "GET /v1/token" {
			if code, body := adminDo(t, hc, base, method, path, token, "", ""); code == http.StatusUnauthorized || code == http.StatusForbidden {
				t.Errorf("%s with the token: %d %.200s", p, code, body)
			}
		}
	}
	sort.Strings(open)
	if strings.Join(open, ",") != "GET /healthz,GET /metrics" {
		t.Errorf("routes open without token: %v, want exactly GET /healthz and GET /metrics", open)
	}
	if len(routes) < 10 {
		t.Errorf("route table has %d routes; the walk saw too few", len(routes))
	}
}

// TestAdminAPIOverTLS: with admin.tls_cert_file/tls_key_file the TCP API
// speaks only HTTPS, and still wants the token.
func TestAdminAPIOverTLS(t *testing.T) {
	h := newHarness(t, harnessOpts{seed: true})
	certFile, keyFile, pool := writeTestCert(t, h.dir)
	cfg := readFile(t, h.cfgPath)
	cfg = strings.Replace(cfg, "admin:\n", "admin:\n  tls_cert_file: "+certFile+"\n  tls_key_file: "+keyFile+"\n", 1)
	if err := os.WriteFile(h.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	token := startAdminHarness(t, h)
	addr := h.app.AdminAddr()
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if code, _ := adminDo(t, hc, "https://"+addr, "GET", "/v1/members", "", "", ""); code != http.StatusUnauthorized {
		t.Errorf("https without token: %d, want 401", code)
	}
	if code, body := adminDo(t, hc, "https://"+addr, "GET", "/v1/members", token, "", ""); code != 200 || !strings.Contains(body, "lovelace") {
		t.Errorf("https with token: %d %.200s", code, body)
	}
	if code, _ := adminDo(t, hc, "https://"+addr, "GET", "/v1/status", token, "", "https://"+addr); code != 200 {
		t.Errorf("https same origin: %d", code)
	}
	if code, _ := adminDo(t, hc, "https://"+addr, "GET", "/v1/status", token, "", "http://"+addr); code != http.StatusForbidden {
		t.Errorf("http origin against https API: %d, want 403", code)
	}
	// Plain HTTP to the TLS port gets no API answer.
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("plain http on the TLS port answered: %s", b)
		}
	}
	rows := []admin.MemberRow{}
	c := admin.Dial("https://" + addr).WithToken(token)
	c.SetTLSConfig(&tls.Config{RootCAs: pool})
	if err := c.Get(context.Background(), "/v1/members", url.Values{"q": {"lovelace"}}, &rows); err != nil || len(rows) != 1 {
		t.Errorf("admin client over https: %v %+v", err, rows)
	}
}

// writeTestCert writes a self-signed certificate for 127.0.0.1 and ::1.
func writeTestCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now() // certificate validity is checked by crypto/tls against the wall clock
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "deskgate admin test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "admin.pem"), filepath.Join(dir, "admin.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
