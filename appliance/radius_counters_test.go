package appliance

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"

	"github.com/deskgate/deskgate/appliance/admin"
)

// TestRadiusCountersOnMetricsAndStatus: N garbage datagrams and N
// Access-Requests from an address that is no NAS, on loopback, show as
// exactly N per reason on /metrics and in /v1/status (the daemon logs one
// line per source for them).
func TestRadiusCountersOnMetricsAndStatus(t *testing.T) {
	nas := startTestNAS(t)
	h := newHarness(t, harnessOpts{seed: true, extraYAML: radiusYAML(nas.port())})
	app := h.start()
	waitFor(t, 5*time.Second, "radius listening", func() bool { a, _ := app.radius.srv.Addrs(); return len(a) > 0 })
	auth, _ := app.radius.srv.Addrs()
	const n = 500

	garbage, err := net.Dial("udp", auth[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer garbage.Close()
	for i := range n {
		// A length field past the datagram: malformed, whatever else.
		if _, err := garbage.Write([]byte{1, byte(i), 0x10, 0x00, byte(i >> 8), 7, 7, 7}); err != nil {
			t.Fatal(err)
		}
	}
	// 127.0.0.9 is on loopback but is no configured NAS.
	unknown, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.9")}, auth[0].(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer unknown.Close()
	for i := range n {
		p := radius.New(radius.CodeAccessRequest, []byte(nasSecret))
		p.Identifier = byte(i)
		_ = rfc2865.UserName_SetString(p, "ada.lovelace@example.com")
		_ = rfc2865.UserPassword_SetString(p, "whatever")
		p.Add(rfc2869.MessageAuthenticator_Type, make(radius.Attribute, 16))
		b, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := unknown.Write(b); err != nil {
			t.Fatal(err)
		}
	}

	c := admin.Dial(app.Config().Admin.Socket)
	ctx := context.Background()
	var st admin.Status
	waitFor(t, 5*time.Second, "counters to reach N", func() bool {
		if err := c.Get(ctx, "/v1/status", nil, &st); err != nil || st.RADIUS == nil {
			return false
		}
		return st.RADIUS.Drops["malformed"] >= n && st.RADIUS.Drops["unknown_client"] >= n
	})
	time.Sleep(200 * time.Millisecond) // more than N would show by now
	if err := c.Get(ctx, "/v1/status", nil, &st); err != nil {
		t.Fatal(err)
	}
	r := st.RADIUS
	for reason, want := range map[string]uint64{
		"malformed": n, "unknown_client": n, "bad_authenticator": 0, "missing_message_authenticator": 0,
		"unexpected_code": 0, "overloaded": 0, "error": 0,
	} {
		if got, ok := r.Drops[reason]; !ok || got != want {
			t.Errorf("status drops[%s] = %d (present %v), want %d", reason, got, ok, want)
		}
	}
	if len(r.Requests) != 1 || r.Requests[0] != (admin.RADIUSCount{Port: "auth", Code: "Access-Request", Count: n}) {
		t.Errorf("status requests = %+v, want auth Access-Request %d", r.Requests, n)
	}
	if len(r.Responses) != 0 {
		t.Errorf("status responses = %+v, want none", r.Responses)
	}

	// /metrics on the daemon's own TCP admin listener, as a scraper reads it
	// (no token needed there).
	resp, err := http.Get("http://" + app.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	lines := map[string]bool{}
	for _, l := range strings.Split(string(body), "\n") {
		lines[l] = true
	}
	for _, want := range []string{
		`deskgate_radius_dropped_total{reason="malformed"} 500`,
		`deskgate_radius_dropped_total{reason="unknown_client"} 500`,
		`deskgate_radius_dropped_total{reason="bad_authenticator"} 0`,
		`deskgate_radius_dropped_total{reason="missing_message_authenticator"} 0`,
		`deskgate_radius_requests_total{code="Access-Request",port="auth"} 500`,
		`deskgate_radius_duplicates_total 0`,
		`# TYPE deskgate_radius_dropped_total counter`,
	} {
		if !lines[want] {
			t.Errorf("/metrics lacks the line %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}
