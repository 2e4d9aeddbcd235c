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
)

// TestFleetCLI: the fleet subcommands send what the daemon's routes take
// (flags before or after the token) and print status and errors.
func TestFleetCLI(t *testing.T) {
	var got []string
	mux := http.NewServeMux()
	body := func(r *http.Request) map[string]string {
		var m map[string]string
		_ = json.NewDecoder(r.Body).Decode(&m)
		return m
	}
	mux.HandleFunc("POST /v1/fleet/init", func(w http.ResponseWriter, r *http.Request) {
		got = append(got, "init "+body(r)["box"])
		json.NewEncoder(w).Encode(map[string]string{"boxId": "box-a", "fleetId": "f1"})
	})
	mux.HandleFunc("POST /v1/fleet/invite", func(w http.ResponseWriter, r *http.Request) {
		got = append(got, "invite "+body(r)["ttl"])
		json.NewEncoder(w).Encode(map[string]any{"token": "dgf1.abc", "expires": "2030-01-01T00:00:00Z"})
	})
	mux.HandleFunc("POST /v1/fleet/join", func(w http.ResponseWriter, r *http.Request) {
		b := body(r)
		got = append(got, "join "+b["token"]+" "+b["box"])
		if b["token"] == "dgf1.used" {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": "fleet join via 127.0.0.1:8443: 403 Forbidden: join refused: join token already used"})
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"boxId": b["box"], "fleetId": "f1"})
	})
	mux.HandleFunc("POST /v1/fleet/remove", func(w http.ResponseWriter, r *http.Request) {
		got = append(got, "remove "+body(r)["box"])
		json.NewEncoder(w).Encode(map[string]string{"removed": "box-c"})
	})
	mux.HandleFunc("GET /v1/fleet/status", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"inFleet":true,"box":"box-a","fleet":"f1","caFingerprint":"` + strings.Repeat("ab", 32) + `","listen":"127.0.0.1:8443","locations":["Downtown"],
			"peers":[{"box":"box-b","url":"wss://127.0.0.1:8444","link":"up","dialedBy":"box-a","lag":3},{"box":"box-c","link":"down","lastError":"connection refused"}],"removed":["box-x"]}`))
	})
	mux.HandleFunc("GET /v1/fleet/dump", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"box":"box-a","versionVector":{"box-a":3,"box-b":1},"digest":"d1","registersDigest":"r1",
			"registers":[{"kind":"pw","key":"m1","origin":"box-b","seq":1,"time":{"w":5,"l":1},"value":{"password":"ab12","src":""}}],
			"accounts":[{"member":"m1","username":"ann@example.com","password":"ab12","source":"member"}]}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	cli := func(args ...string) (string, int, error) {
		var out bytes.Buffer
		code, err := run(append([]string{"-addr", addr, "-token", testToken, "fleet"}, args...), &out)
		return out.String(), code, err
	}
	for _, args := range [][]string{
		{"init", "--id", "box-a"},
		{"invite", "--ttl", "30m"},
		{"join", "dgf1.tok", "--id", "box-b"},
		{"join", "--id", "box-c", "dgf1.tok2"},
		{"remove", "box-c"},
	} {
		if out, code, err := cli(args...); code != 0 || err != nil {
			t.Fatalf("fleet %v: %d %v\n%s", args, code, err, out)
		}
	}
	want := []string{"init box-a", "invite 30m", "join dgf1.tok box-b", "join dgf1.tok2 box-c", "remove box-c"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("requests %q, want %q", got, want)
	}
	out, code, err := cli("status")
	if code != 0 || err != nil || !strings.Contains(out, "box-b") || !strings.Contains(out, "up") || !strings.Contains(out, "connection refused") || !strings.Contains(out, "removed: box-x") {
		t.Errorf("status: %d %v\n%s", code, err, out)
	}
	out, code, err = cli("dump")
	for _, want := range []string{"box box-a digest d1 (registers r1)", "vv box-a 3\nvv box-b 1\n", "reg pw m1 box-b/1 5.1 {\"password\":\"ab12\",\"src\":\"\"}", "acct m1 ann@example.com ab12 member"} {
		if code != 0 || err != nil || !strings.Contains(out, want) {
			t.Errorf("dump: %d %v, want %q in\n%s", code, err, want, out)
		}
	}
	if _, code, err := cli("join", "dgf1.used", "--id", "box-d"); code != 1 || err == nil || !strings.Contains(err.Error(), "already used") {
		t.Errorf("refused join: %d %v", code, err)
	}
	for _, bad := range [][]string{{}, {"join"}, {"remove"}, {"frobnicate"}, {"init", "extra"}} {
		if _, code, err := cli(bad...); code != 2 || err == nil || !strings.Contains(err.Error(), "usage: deskgate fleet") {
			t.Errorf("fleet %v: %d %v, want usage", bad, code, err)
		}
	}
}

// TestFleetConfigPushCLI: `fleet config push FILE` sends the file's text
// (without FILE: an empty document, the daemon's own sections), prints
// the version and the boxes that were unreachable, and a refusal as an
// error naming the box; status shows a refused fleet configuration.
func TestFleetConfigPushCLI(t *testing.T) {
	var docs []string
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/fleet/config", func(w http.ResponseWriter, r *http.Request) {
		var m map[string]string
		_ = json.NewDecoder(r.Body).Decode(&m)
		docs = append(docs, m["doc"])
		if strings.Contains(m["doc"], "bad") {
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error":"fleet configuration refused: [box-c: location \"Uptown\" is not in locations]"}`))
			return
		}
		w.Write([]byte(`{"applied":true,"version":4,"unreachable":["box-d"]}`))
	})
	mux.HandleFunc("GET /v1/fleet/status", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"inFleet":true,"box":"box-c","fleet":"f1","caFingerprint":"` + strings.Repeat("ab", 32) + `","config":{"version":4,"by":"box-a","state":"refused","reason":"location \"Uptown\" is not in locations"}}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	cli := func(args ...string) (string, int, error) {
		var out bytes.Buffer
		code, err := run(append([]string{"-addr", addr, "-token", testToken, "fleet"}, args...), &out)
		return out.String(), code, err
	}
	good := filepath.Join(t.TempDir(), "fleet.yaml")
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(good, []byte("groups: []\n"), 0o600)
	os.WriteFile(bad, []byte("groups: [bad]\n"), 0o600)
	out, code, err := cli("config", "push", good)
	if code != 0 || err != nil || !strings.Contains(out, "version 4") || !strings.Contains(out, "box-d") {
		t.Errorf("push: %d %v\n%s", code, err, out)
	}
	if _, code, err := cli("config", "push"); code != 0 || err != nil {
		t.Errorf("push without a file: %d %v", code, err)
	}
	if _, code, err := cli("config", "push", bad); code != 1 || err == nil || !strings.Contains(err.Error(), "box-c") {
		t.Errorf("refused push: %d %v", code, err)
	}
	if _, code, err := cli("config", "push", filepath.Join(t.TempDir(), "missing.yaml")); code != 1 || err == nil {
		t.Errorf("missing file: %d %v", code, err)
	}
	if want := []string{"groups: []\n", "", "groups: [bad]\n"}; strings.Join(docs, "|") != strings.Join(want, "|") {
		t.Errorf("documents sent %q, want %q", docs, want)
	}
	out, _, _ = cli("status")
	if !strings.Contains(out, "version 4 (pushed by box-a) refused") || !strings.Contains(out, "keeps its previous configuration") {
		t.Errorf("status:\n%s", out)
	}
	if _, code, _ := cli("config", "pull"); code != 2 {
		t.Errorf("config pull: code %d, want usage", code)
	}
}

// TestAuditBoxColumn: in a fleet, `deskgate audit` prints the box each
// change was made at; outside one there is no such column.
func TestAuditBoxColumn(t *testing.T) {
	body := `[{"time":"2026-01-01T10:00:00Z","actor":"sync","action":"account.created","cause":"new member","box":"box-b"},
		{"time":"2026-01-01T10:00:01Z","actor":"cli","action":"account.disabled","cause":"by hand"}]`
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/audit", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	var out bytes.Buffer
	if code, err := run([]string{"-addr", strings.TrimPrefix(srv.URL, "http://"), "-token", testToken, "audit"}, &out); code != 0 || err != nil {
		t.Fatalf("audit: %d %v", code, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "box-b") || !strings.Contains(lines[0], "account.created") || strings.Contains(lines[1], "box-") {
		t.Errorf("audit output:\n%s", out.String())
	}
}

// TestFleetPartitionCLI: `fleet partition BOX...` sends the boxes to cut,
// `fleet heal` an empty list; both print what the daemon answered, and a
// daemon without the demo switches refuses with its reason.
func TestFleetPartitionCLI(t *testing.T) {
	var got []string
	refuse := false
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/fleet/partition", func(w http.ResponseWriter, r *http.Request) {
		var m struct{ Cut []string }
		_ = json.NewDecoder(r.Body).Decode(&m)
		got = append(got, strings.Join(m.Cut, ","))
		if refuse {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"the partition switch is for demos and tests: start deskgated with DESKGATE_DEMO_SWITCHES=1"}`))
			return
		}
		json.NewEncoder(w).Encode(map[string][]string{"cut": m.Cut})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	cli := func(args ...string) (string, int, error) {
		var out bytes.Buffer
		code, err := run(append([]string{"-addr", addr, "-token", testToken, "fleet"}, args...), &out)
		return out.String(), code, err
	}
	if out, code, err := cli("partition", "box-a", "box-b"); code != 0 || err != nil || !strings.Contains(out, "cut off from box-a, box-b") {
		t.Errorf("partition: %d %v\n%s", code, err, out)
	}
	if out, code, err := cli("heal"); code != 0 || err != nil || !strings.Contains(out, "partition healed") {
		t.Errorf("heal: %d %v\n%s", code, err, out)
	}
	if _, code, err := cli("partition"); code != 2 || err == nil || !strings.Contains(err.Error(), "usage: deskgate fleet partition") {
		t.Errorf("partition without boxes: %d %v", code, err)
	}
	refuse = true
	if _, code, err := cli("partition", "box-c"); code != 1 || err == nil || !strings.Contains(err.Error(), "DESKGATE_DEMO_SWITCHES") {
		t.Errorf("refused partition: %d %v", code, err)
	}
	if want := []string{"box-a,box-b", "", "box-c"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("requests %q, want %q", got, want)
	}
}
