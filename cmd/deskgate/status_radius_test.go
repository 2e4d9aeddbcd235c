package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/deskgate/deskgate/appliance/admin"
)

// TestStatusPrintsRadiusCounters: `deskgate status` prints the RADIUS
// request, reply and drop counters the daemon reports, drops by reason.
func TestStatusPrintsRadiusCounters(t *testing.T) {
	st := admin.Status{Version: "test", RADIUS: &admin.RADIUSStatus{
		AuthAddrs: []string{"127.0.0.1:1812"}, AcctAddrs: []string{"127.0.0.1:1813"}, NAS: 2,
		Requests:   []admin.RADIUSCount{{Port: "auth", Code: "Access-Request", Count: 12}, {Port: "acct", Code: "Status-Server", Count: 1}},
		Responses:  []admin.RADIUSCount{{Code: "Access-Accept", Count: 9}, {Code: "Accounting-Response", Count: 1}},
		Drops:      map[string]uint64{"unknown_client": 10000, "malformed": 7, "bad_authenticator": 0},
		Duplicates: 3,
	}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(st) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var out bytes.Buffer
	if code, err := run([]string{"-addr", strings.TrimPrefix(srv.URL, "http://"), "status"}, &out); code != 0 || err != nil {
		t.Fatalf("status: %d %v\n%s", code, err, out.String())
	}
	for _, want := range []string{
		"requests: auth Access-Request 12, acct Status-Server 1\n",
		"replies: Access-Accept 9, Accounting-Response 1; duplicates 3\n",
		"dropped: malformed 7, unknown_client 10000\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
}
