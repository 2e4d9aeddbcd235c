package main

import (
	"bytes"
	"encoding/json"
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

// fakeDaemon answers the local API with canned shapes, so the CLI's
// parsing and printing are tested without a daemon (the daemon's side is
// tested in package appliance over the real socket).
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
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestCLI(t *testing.T) {
	addr := fakeDaemon(t)
	var out bytes.Buffer
	code, err := run([]string{"-addr", addr, "explain", "ada@example.com", "--nas", "ap1"}, &out)
	if err != nil || code != 0 || !strings.Contains(out.String(), "ALLOWED") || !strings.Contains(out.String(), "RADIUS reply for NAS ap1") {
		t.Fatalf("explain: %d %v\n%s", code, err, out.String())
	}
	out.Reset()
	if code, err := run([]string{"-addr", addr, "explain", "nobody"}, &out); code != 1 || err == nil || !strings.Contains(err.Error(), "no member") {
		t.Fatalf("unknown user: %d %v", code, err)
	}
	out.Reset()
	code, _ = run([]string{"-addr", addr, "doctor"}, &out)
	if code != 1 || !strings.Contains(out.String(), "[FAIL] smtp") || !strings.Contains(out.String(), "fix: check smtp.host") {
		t.Fatalf("doctor: exit %d\n%s", code, out.String())
	}
	if code, err := run([]string{"frobnicate"}, &out); code != 2 || err == nil {
		t.Fatalf("unknown command: %d %v", code, err)
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
