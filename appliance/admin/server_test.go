package admin

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// noBackend is a Backend whose methods the mounted route never calls.
type noBackend struct{ Backend }

// TestMountBehindGuard: a handler added with Mount is in the route table
// and answers over TCP only with the token and a loopback Host, like the
// API's own routes.
func TestMountBehindGuard(t *testing.T) {
	dir := t.TempDir()
	s, err := NewServer(Options{Backend: noBackend{}, TokenFile: filepath.Join(dir, TokenFile)})
	if err != nil {
		t.Fatal(err)
	}
	s.Mount("GET /console/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "console") }))
	if !slices.Contains(s.Routes(), "GET /console/") {
		t.Fatalf("mounted route missing from %v", s.Routes())
	}
	tcp, sock, err := s.Listen("127.0.0.1:0", filepath.Join(dir, "admin.sock"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	srv := s.HTTPServer()
	go srv.Serve(tcp)
	defer srv.Shutdown(context.Background())
	tok, err := LoadOrCreateToken(filepath.Join(dir, TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	get := func(token, host string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+s.Addr("127.0.0.1:0")+"/console/x", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("", ""); code != http.StatusUnauthorized {
		t.Errorf("mounted route without token: %d, want 401", code)
	}
	if code, _ := get(tok, "evil.example:80"); code != http.StatusForbidden {
		t.Errorf("mounted route with a foreign Host: %d, want 403", code)
	}
	if code, body := get(tok, ""); code != http.StatusOK || body != "console" {
		t.Errorf("mounted route with the token: %d %q", code, body)
	}
}

// TestAdminToken: generated once (0600), reused on the next start, a too
// open file is narrowed, and a malformed one is an error, not replaced.
func TestAdminToken(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, TokenFile)
	tok, err := LoadOrCreateToken(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 43 { // 32 bytes, base64url without padding
		t.Errorf("token %d characters, want 43", len(tok))
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	again, err := LoadOrCreateToken(p)
	if err != nil || again != tok {
		t.Errorf("second start: %q %v, want the same token", again, err)
	}
	other, _ := LoadOrCreateToken(filepath.Join(dir, "other.token"))
	if other == tok {
		t.Error("two boxes got the same token")
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if again, err := LoadOrCreateToken(p); err != nil || again != tok {
		t.Errorf("open file: %q %v", again, err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("open file left at %v, want 0600", fi.Mode().Perm())
	}
	if err := os.WriteFile(p, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateToken(p); err == nil || !strings.Contains(err.Error(), "delete the file") {
		t.Errorf("malformed token file: %v, want an error", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "short\n" {
		t.Errorf("malformed token file rewritten to %q", b)
	}
}
