package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestFleetUpdateCLI: `fleet update BUNDLE --canary BOX` posts the
// bundle's absolute path and the canary; `fleet update status` prints the
// newest rollout with each box's phase and which box failed and why.
func TestFleetUpdateCLI(t *testing.T) {
	var posted map[string]string
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/fleet/update", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&posted)
		w.Write([]byte(`{"id":"r1","version":"v3","chunks":["a","b"],"canary":"box-b","boxes":["box-b","box-a","box-c"]}`))
	})
	mux.HandleFunc("GET /v1/fleet/update", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"box":"box-a","rollouts":[{"id":"r2","version":"v3","size":614400,"sha256":"` + strings.Repeat("ab", 32) + `",
			"chunks":["x","y","z"],"origin":"box-a","canary":"box-b","canaryWhy":"chosen by the operator","boxes":["box-b","box-a","box-c"],
			"verified":"signature verified against box-a's update keyring","created":"2030-01-01T10:00:00Z",
			"progress":{"box-b":{"phase":"failed","have":3,"version":"v2","reason":"deskgated was not healthy within 2m0s: deskgated exited with status 3; rolled back to slot B","at":"2030-01-01T10:02:00Z"},
			"box-a":{"phase":"halted","have":3,"reason":"not installed: box box-b failed: deskgated was not healthy","at":"2030-01-01T10:02:01Z"}},
			"state":"halted","halted":"box box-b failed: deskgated was not healthy within 2m0s: deskgated exited with status 3; rolled back to slot B"},
			{"id":"r1","version":"v2","boxes":["box-c"],"state":"done"}]}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	cli := func(args ...string) (string, int, error) {
		var out bytes.Buffer
		code, err := run(append([]string{"-addr", addr, "-token", testToken, "fleet", "update"}, args...), &out)
		return out.String(), code, err
	}
	out, code, err := cli("--canary", "box-b", "v3.raucb")
	abs, _ := filepath.Abs("v3.raucb")
	if code != 0 || err != nil || posted["bundle"] != abs || posted["canary"] != "box-b" || !strings.Contains(out, "rollout r1 of v3 started: 2 chunks; canary box-b, then box-a, box-c") {
		t.Fatalf("fleet update: %d %v, posted %v\n%s", code, err, posted, out)
	}
	out, code, err = cli("status")
	if code != 0 || err != nil {
		t.Fatalf("fleet update status: %d %v", code, err)
	}
	for _, want := range []string{
		`rollout r2: v3 from box-a, started .*: halted: box box-b failed: deskgated was not healthy within 2m0s: deskgated exited with status 3; rolled back to slot B`,
		`canary box-b \(chosen by the operator\)`,
		`(?m)^box-b +failed +3/3 +v2 .*rolled back to slot B`,
		`(?m)^box-a +halted +3/3 +- .*not installed: box box-b failed`,
		`(?m)^box-c +not started +0/3`,
		`1 earlier rollouts`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Fatalf("fleet update status does not match %q:\n%s", want, out)
		}
	}
	if _, code, err := cli(); code != 2 || err == nil {
		t.Fatalf("fleet update without a bundle: %d %v", code, err)
	}
}
