package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deskgate/deskgate/appliance/admin"
)

// TestCLIAdminAdd: deskgate admin add reads the password from stdin (not
// argv) and posts it over the unix socket with the role; over -addr it
// refuses; a missing name is a usage error.
func TestCLIAdminAdd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "deskgate.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]string
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/operators", func(w http.ResponseWriter, r *http.Request) {
		var v map[string]string
		json.NewDecoder(r.Body).Decode(&v)
		got = append(got, v)
		w.Write([]byte(`{"status":"ok"}`))
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	old := stdin
	t.Cleanup(func() { stdin = old })
	stdin = strings.NewReader("a long password 9\n")
	var out bytes.Buffer
	if code, err := run([]string{"-socket", sock, "admin", "add", "frontdesk", "--role", "admin"}, &out); code != 0 || err != nil {
		t.Fatalf("admin add: %d %v %s", code, err, out.String())
	}
	if len(got) != 1 || got[0]["name"] != "frontdesk" || got[0]["role"] != "admin" || got[0]["password"] != "a long password 9" {
		t.Fatalf("daemon got %v", got)
	}
	if code, err := run([]string{"-addr", "127.0.0.1:1", "-token", "x", "admin", "add", "frontdesk"}, &out); code != 2 || err == nil || !strings.Contains(err.Error(), "unix socket") {
		t.Errorf("admin add over -addr: %d %v", code, err)
	}
	if code, err := run([]string{"-socket", sock, "admin", "add"}, &out); code != 2 || err == nil {
		t.Errorf("admin add without a name: %d %v", code, err)
	}
}

// TestStatusShowsConsoleFingerprint: deskgate status prints the console's
// URL and the SHA-256 of its certificate, saying when it is self-signed.
func TestStatusShowsConsoleFingerprint(t *testing.T) {
	fp := strings.Repeat("AB:", 31) + "AB"
	var out bytes.Buffer
	printStatus(&out, admin.Status{Console: &admin.ConsoleStatus{URL: "https://127.0.0.1:8417/console/", Fingerprint: fp, SelfSigned: true}})
	want := "console    https://127.0.0.1:8417/console/ (self-signed certificate, SHA-256 " + fp + ")"
	if !strings.Contains(out.String(), want) {
		t.Fatalf("status lacks %q:\n%s", want, out.String())
	}
}
