package radius

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestRadclientAuth(t *testing.T) {
	t.Parallel()
	e := startServer(t, append(defaultClients(), Client{
		// A legacy NAS on another loopback address (Linux routes 127/8 to lo).
		Name: "old-ap", Prefix: netip.MustParsePrefix("127.0.0.2/32"), Secret: []byte(testSecret), LocationID: "loc-a", Legacy: true,
	}), nil)
	ma := `Message-Authenticator = 0x00`
	mac := `Calling-Station-Id = "AA-BB-CC-00-00-01"`
	tests := []struct {
		name   string
		secret string
		attrs  []string
		code   string // "" = no answer
		reply  string // Reply-Message on reject
	}{
		{"hot desk accepted", testSecret, []string{`User-Name = "alice"`, `User-Password = "correct horse"`, mac, ma}, "Access-Accept", ""},
		{"username case-insensitive", testSecret, []string{`User-Name = "Alice"`, `User-Password = "correct horse"`, mac, ma}, "Access-Accept", ""},
		{"unknown user", testSecret, []string{`User-Name = "mallory"`, `User-Password = "x"`, ma}, "Access-Reject", "Invalid username or password"},
		{"wrong password", testSecret, []string{`User-Name = "alice"`, `User-Password = "battery staple"`, ma}, "Access-Reject", "Invalid username or password"},
		{"virtual office", testSecret, []string{`User-Name = "victor"`, `User-Password = "pw-victor"`, ma}, "Access-Reject", "Plan does not include WiFi"},
		{"membership ended", testSecret, []string{`User-Name = "erin"`, `User-Password = "pw-erin"`, ma}, "Access-Reject", "Membership has ended"},
		{"other location", testSecret, []string{`User-Name = "bob"`, `User-Password = "pw-bob"`, ma}, "Access-Reject", "No WiFi access at this location"},
		{"no message-authenticator", testSecret, []string{`User-Name = "alice"`, `User-Password = "correct horse"`}, "", ""},
		{"wrong shared secret", "not-the-secret", []string{`User-Name = "alice"`, `User-Password = "correct horse"`, ma}, "", ""},
		{"chap unsupported", testSecret, []string{`User-Name = "alice"`, `CHAP-Password = "correct horse"`, ma}, "Access-Reject", "Authentication method not supported"},
	}
	t.Run("table", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				r := radclient(t, e.auth, "auth", tc.secret, tc.attrs...)
				if r.Code != tc.code {
					t.Fatalf("code = %q, want %q\n%s", r.Code, tc.code, r.Out)
				}
				if tc.code == "" {
					return
				}
				if len(r.Attrs) == 0 || r.Attrs[0][0] != "Message-Authenticator" {
					t.Errorf("first attribute = %v, want Message-Authenticator", r.Attrs)
				}
				if tc.reply != "" {
					if got, _ := r.get("Reply-Message"); got != tc.reply {
						t.Errorf("Reply-Message = %q, want %q", got, tc.reply)
					}
				}
			})
		}
	})

	t.Run("accept attributes", func(t *testing.T) {
		r := radclient(t, e.auth, "auth", testSecret, `User-Name = "alice"`, `User-Password = "correct horse"`, mac, ma,
			`Proxy-State = 0x0102`, `Proxy-State = 0x0304`)
		want := map[string]string{
			"Tunnel-Type:0":             "VLAN",
			"Tunnel-Medium-Type:0":      "IEEE-802",
			"Tunnel-Private-Group-Id:0": "100",
			"Session-Timeout":           "43200",
			"Acct-Interim-Interval":     "300",
			"Filter-Id":                 "hotdesk",
			"WISPr-Bandwidth-Max-Down":  "50000000",
			"WISPr-Bandwidth-Max-Up":    "10000000",
		}
		for k, v := range want {
			if got, ok := r.get(k); !ok || got != v {
				t.Errorf("%s = %q (present %v), want %q\n%s", k, got, ok, v, r.Out)
			}
		}
		class, _ := r.get("Class")
		wantClass := fmt.Sprintf("0x%x", "dg1;m-alice;ms-m-alice;plan-hotdesk;loc-a;"+fmt.Sprint(t0.Unix()))
		if class != wantClass {
			t.Errorf("Class = %s, want %s", class, wantClass)
		}
		if ps := r.all("Proxy-State"); strings.Join(ps, ",") != "0x0102,0x0304" {
			t.Errorf("Proxy-State = %v, want both, in order", ps)
		}
	})

	t.Run("session timeout capped by validity", func(t *testing.T) {
		s := hotDesk("dana", "m-dana", "pw-dana")
		s.Decision.ValidUntil = t0.Add(3 * time.Hour)
		e.dir.Put(s)
		r := radclient(t, e.auth, "auth", testSecret, `User-Name = "dana"`, `User-Password = "pw-dana"`, ma)
		if got, _ := r.get("Session-Timeout"); got != "10800" {
			t.Errorf("Session-Timeout = %s, want 10800 (3 h left of a 12 h plan)\n%s", got, r.Out)
		}
	})

	t.Run("validity already over", func(t *testing.T) {
		s := hotDesk("paula", "m-paula", "pw-paula")
		s.Decision.ValidUntil = t0.Add(-time.Minute) // a day pass that ended
		e.dir.Put(s)
		r := radclient(t, e.auth, "auth", testSecret, `User-Name = "paula"`, `User-Password = "pw-paula"`, ma)
		if r.Code != "Access-Reject" {
			t.Fatalf("code %q, want Access-Reject", r.Code)
		}
	})

	t.Run("legacy nas without message-authenticator", func(t *testing.T) {
		// radclient cannot pick its source address; send by hand from 127.0.0.2.
		pkt := buildAccessRequest(t, []byte(testSecret), 7, "alice", "correct horse", false, nil)
		if got := sendRawFrom(t, "127.0.0.2", e.auth, pkt, time.Second); got == nil || got[0] != codeAccessAccept {
			t.Fatalf("legacy NAS: got %v, want Access-Accept", got)
		}
		// ... but a Proxy-State without Message-Authenticator is dropped.
		pkt = buildAccessRequest(t, []byte(testSecret), 8, "alice", "correct horse", false, [][]byte{{1, 2}})
		if got := sendRawFrom(t, "127.0.0.2", e.auth, pkt, 300*time.Millisecond); got != nil {
			t.Fatalf("legacy NAS with Proxy-State, no MA: got code %d, want no answer", got[0])
		}
	})

	t.Run("nas check", func(t *testing.T) {
		reps := e.srv.NASWithoutMessageAuthenticator()
		got := map[string]NASReport{}
		for _, r := range reps {
			got[r.Name] = r
		}
		if r := got["ap-alpha"]; r.Count != 1 || r.Dropped != 1 {
			t.Errorf("ap-alpha report = %+v, want 1 request, 1 dropped", r)
		}
		if r := got["old-ap"]; r.Count != 2 || !r.Legacy {
			t.Errorf("old-ap report = %+v, want 2 requests, legacy", r)
		}
	})

	t.Run("rejects audited", func(t *testing.T) {
		deadline := time.Now().Add(2 * time.Second)
		for {
			ent, ok := e.audit.find("radius.reject")
			if ok {
				if ent.Actor != "radius" {
					t.Errorf("actor = %q", ent.Actor)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no radius.reject audit entry")
			}
			time.Sleep(10 * time.Millisecond)
		}
		var causes []string
		e.audit.mu.Lock()
		for _, en := range e.audit.es {
			causes = append(causes, en.Cause)
		}
		e.audit.mu.Unlock()
		all := strings.Join(causes, "\n")
		for _, reason := range []string{"unknown_user", "wrong_password", "plan_no_wifi", "membership_ended", "wrong_location"} {
			if !strings.Contains(all, reason) {
				t.Errorf("no audit entry with %s in:\n%s", reason, all)
			}
		}
	})
}
