package admin

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"slices"
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
