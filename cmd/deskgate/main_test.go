package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/model"
)

// testToken is the fake daemon's admin token.
const testToken = "tok-0123456789abcdef0123456789abcdef0123456"

// fakeDaemon answers the local API with canned shapes, so the CLI's
// parsing and printing are tested without a daemon (the daemon's side is
// tested in package appliance over the real socket and TCP). Like the
// daemon's TCP listener it wants Authorization: Bearer testToken.
func fakeDaemon(t *testing.T) string {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/explain", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("user") != "ada@example.com" || r.URL.Query().Get("nas") != "ap1" {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]string{"error": "no member, account or email matches"})
			return
		}
		json.NewEncoder(w).Encode(admin.Explanation{Query: "ada@example.com",
			Member:   &model.Member{ID: "m1", Name: "Ada", Email: "ada@example.com"},
			Decision: model.Decision{Allowed: true, Group: "standard", PlanName: "Hot Desk", Reasons: []string{"allowed: Hot Desk"}},
			Reply:    []string{"Access-Accept", "Filter-Id = \"standard\""}, NAS: "ap1"})
	})
	mux.HandleFunc("GET /v1/doctor", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode([]admin.Check{{Name: "store", OK: true, Detail: "consistent"}, {Name: "smtp", Detail: "refused", Fix: "check smtp.host"}})
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			http.Error(w, "admin API: missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestCLI(t *testing.T) {
	addr := fakeDaemon(t)
	var out bytes.Buffer
	code, err := run([]string{"-addr", addr, "-token", testToken, "explain", "ada@example.com", "--nas", "ap1"}, &out)
	if err != nil || code != 0 || !strings.Contains(out.String(), "ALLOWED") || !strings.Contains(out.String(), "RADIUS reply for NAS ap1") {
		t.Fatalf("explain: %d %v\n%s", code, err, out.String())
	}
	out.Reset()
	if code, err := run([]string{"-addr", addr, "-token", testToken, "explain", "nobody"}, &out); code != 1 || err == nil || !strings.Contains(err.Error(), "no member") {
		t.Fatalf("unknown user: %d %v", code, err)
	}
	out.Reset()
	code, _ = run([]string{"-addr", addr, "-token", testToken, "doctor"}, &out)
	if code != 1 || !strings.Contains(out.String(), "[FAIL] smtp") || !strings.Contains(out.String(), "fix: check smtp.host") {
		t.Fatalf("doctor: exit %d\n%s", code, out.String())
	}
	if code, err := run([]string{"frobnicate"}, &out); code != 2 || err == nil {
		t.Fatalf("unknown command: %d %v", code, err)
	}
}

// TestCLIToken: with -addr the CLI sends the token from -token,
// -token-file or DESKGATE_TOKEN; without it the daemon's 401 comes through.
func TestCLIToken(t *testing.T) {
	addr := fakeDaemon(t)
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tokFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DESKGATE_TOKEN", "")
	ok := func(name string, args ...string) {
		t.Helper()
		var out bytes.Buffer
		code, err := run(append(args, "explain", "ada@example.com", "--nas", "ap1"), &out)
		if err != nil || code != 0 || !strings.Contains(out.String(), "ALLOWED") {
			t.Errorf("%s: %d %v\n%s", name, code, err, out.String())
		}
	}
	ok("-token", "-addr", addr, "-token", testToken)
	ok("-token-file", "-addr", addr, "-token-file", tokFile)
	t.Setenv("DESKGATE_TOKEN", testToken)
	ok("DESKGATE_TOKEN", "-addr", addr)
	t.Setenv("DESKGATE_TOKEN", "")

	var out bytes.Buffer
	if code, err := run([]string{"-addr", addr, "doctor"}, &out); code != 1 || err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("no token: %d %v, want exit 1 with the 401", code, err)
	}
	if code, err := run([]string{"-addr", addr, "-token", "wrong", "doctor"}, &out); code != 1 || err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong token: %d %v, want exit 1 with the 401", code, err)
	}
	if code, err := run([]string{"-addr", addr, "-token", testToken, "-token-file", tokFile, "doctor"}, &out); code != 2 || err == nil {
		t.Errorf("both -token and -token-file: %d %v, want usage error", code, err)
	}
	if code, err := run([]string{"-addr", addr, "-token-file", filepath.Join(dir, "missing"), "doctor"}, &out); code != 2 || err == nil {
		t.Errorf("missing -token-file: %d %v, want usage error", code, err)
	}
	if code, err := run([]string{"-addr", addr, "-token", testToken, "admin", "token"}, &out); code != 2 || err == nil || !strings.Contains(err.Error(), "unix socket") {
		t.Errorf("admin token over -addr: %d %v, want a refusal", code, err)
	}
}

// TestCLIAdminToken: deskgate admin token asks the daemon over the unix
// socket and prints the token alone on a line.
func TestCLIAdminToken(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "deskgate.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/token", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"token": testToken, "file": "/var/lib/deskgate/admin.token"})
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	var out bytes.Buffer
	if code, err := run([]string{"-socket", sock, "admin", "token"}, &out); code != 0 || err != nil || out.String() != testToken+"\n" {
		t.Fatalf("admin token: %d %v %q", code, err, out.String())
	}
}

func TestCLIConfigCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("officernd:\n  client_id: x\n  bogus_key: 1\n"), 0o600)
	var out bytes.Buffer
	code, err := run([]string{"config", "check", bad}, &out)
	if code != 1 || err == nil || !strings.Contains(err.Error(), "bogus_key") || !strings.Contains(err.Error(), "bad.yaml:3") {
		t.Fatalf("config check: %d %v", code, err)
	}
	out.Reset()
	if code, err := run([]string{"config", "example"}, &out); code != 0 || err != nil || !strings.Contains(out.String(), "Hot Desk") {
		t.Fatalf("config example: %d %v", code, err)
	}
}

// TestCLICerts: deskgate certs lists a member's certificates and certs
// revoke sends the target to the revoke route (the daemon's side is
// TestClientCertIssuance in package appliance).
func TestCLICerts(t *testing.T) {
	var revoked string
	issued := time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/certs", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode([]admin.ClientCert{
			{Serial: "ab12", Identity: r.URL.Query().Get("user"), IssuedAt: issued, NotAfter: issued.AddDate(1, 0, 0), Live: true},
			{Serial: "cd34", Identity: r.URL.Query().Get("user"), IssuedAt: issued, NotAfter: issued.AddDate(1, 0, 0), Revoked: issued.AddDate(0, 0, 1)},
		})
	})
	mux.HandleFunc("POST /v1/certs/revoke", func(w http.ResponseWriter, r *http.Request) {
		revoked = r.URL.Query().Get("target")
		json.NewEncoder(w).Encode([]admin.ClientCert{{Serial: revoked, Identity: "ada@example.com", Revoked: issued}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	var out bytes.Buffer
	if code, err := run([]string{"-addr", addr, "certs", "ada@example.com"}, &out); code != 0 || err != nil {
		t.Fatalf("certs: %d %v", code, err)
	}
	for _, want := range []string{"ab12", "ada@example.com", "live", "cd34", "revoked 2030-01-03"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("certs output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code, err := run([]string{"-addr", addr, "certs", "revoke", "ab12"}, &out); code != 0 || err != nil || revoked != "ab12" {
		t.Fatalf("certs revoke: %d %v, daemon got %q", code, err, revoked)
	}
	if code, err := run([]string{"-addr", addr, "certs", "revoke"}, &out); code != 2 || err == nil {
		t.Fatalf("certs revoke without a target: %d %v", code, err)
	}
}
