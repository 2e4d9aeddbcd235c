package eap

import (
	"strings"
	"testing"
)

// TestResumption: eapol_test -r 1 authenticates twice on one TLS session; the second resumes it from the
// ticket (one round trip fewer), skips the inner authentication, and still yields matching MSKs.
func TestResumption(t *testing.T) {
	tb := newTestbed(t, nil)
	cf, kf, _ := tb.clientCert(t, "carol@example.com")
	cases := []struct {
		name, net, identity, method string
	}{
		{"peap", peapNet(tb.caFile, "alice@example.com", "correct horse"), "alice@example.com", "peap"},
		{"ttls-pap", ttlsNet(tb.caFile, "alice@example.com", "correct horse", "PAP"), "alice@example.com", "ttls-pap"},
		{"ttls-mschapv2", ttlsNet(tb.caFile, "bob@example.com", "battery staple", "MSCHAPV2"), "bob@example.com", "ttls-mschapv2"},
		{"tls1.2", tlsNet(tb.caFile, "carol@example.com", cf, kf, ""), "carol@example.com", "tls"},
		{"tls1.3", tlsNet(tb.caFile, "carol@example.com", cf, kf, "tls_disable_tlsv1_3=0"), "carol@example.com", "tls"},
		{"peap tls1.3", tls13(peapNet(tb.caFile, "alice@example.com", "correct horse")), "alice@example.com", "peap"},
		{"peap-gtc", strings.Replace(peapNet(tb.caFile, "alice@example.com", "correct horse"), "auth=MSCHAPV2", "auth=GTC", 1), "alice@example.com", "peap-gtc"},
		{"ttls-pap tls1.3", tls13(ttlsNet(tb.caFile, "alice@example.com", "correct horse", "PAP")), "alice@example.com", "ttls-pap"},
		{"ttls-eap-mschapv2 tls1.3", tls13(strings.Replace(ttlsNet(tb.caFile, "bob@example.com", "battery staple", "MSCHAPV2"), "auth=", "autheap=", 1)), "bob@example.com", "ttls-eap-mschapv2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := tb.srv.Stats().Resumed
			r := runEapol(t, tb.front, c.net, "-r", "1")
			checkAccept(t, tb, r, c.identity, c.method, 2)
			res := tb.front.all()
			if res[len(res)-2].Resumed || !res[len(res)-1].Resumed {
				t.Fatalf("resumed flags %v %v, want false true", res[len(res)-2].Resumed, res[len(res)-1].Resumed)
			}
			if strings.Contains(c.name, "tls1.3") != (tlsVersion(r.out) == "TLSv1.3") {
				t.Fatalf("eapol_test negotiated %s", tlsVersion(r.out))
			}
			if n := strings.Count(r.out, "EAP-PEAP: Valid cryptobinding TLV received"); strings.HasPrefix(c.method, "peap") && n != 2 {
				t.Fatalf("eapol_test verified %d crypto bindings, want 2 (full login and fast reconnect)", n)
			}
			if r.resumed != 1 {
				t.Fatalf("eapol_test reported %d resumed handshakes, want 1", r.resumed)
			}
			if got := tb.srv.Stats().Resumed - before; got != 1 {
				t.Fatalf("Stats.Resumed grew by %d, want 1", got)
			}
		})
	}
	// A member whose membership ends between two logins cannot resume: the access check runs again.
	t.Run("ended member cannot resume", func(t *testing.T) {
		tb.auth.mu.Lock()
		tb.auth.password["frank@example.com"] = "pw"
		tb.auth.endAfter = map[string]int{"frank@example.com": 1} // the second lookup says "ended"
		tb.auth.mu.Unlock()
		before := len(tb.front.all())
		r := runEapol(t, tb.front, peapNet(tb.caFile, "frank@example.com", "pw"), "-r", "1")
		res := tb.front.all()[before:]
		if r.success || len(res) != 2 || res[0].Action != Accept || res[1].Action != Reject ||
			!strings.Contains(res[1].Reason, "resumed session") || !strings.Contains(res[1].Reason, "membership ended") {
			t.Fatalf("got %+v, want Accept then Reject of the resumed session for membership ended", res)
		}
	})
	t.Run("ended member cannot resume eap-tls", func(t *testing.T) {
		cf, kf, _ := tb.clientCert(t, "grace@example.com")
		tb.auth.mu.Lock()
		tb.auth.endAfter["grace@example.com"] = 1
		tb.auth.mu.Unlock()
		before := len(tb.front.all())
		r := runEapol(t, tb.front, tlsNet(tb.caFile, "grace@example.com", cf, kf, ""), "-r", "1")
		res := tb.front.all()[before:]
		if r.success || len(res) != 2 || res[0].Action != Accept || res[1].Action != Reject ||
			!strings.Contains(res[1].Reason, "membership ended") {
			t.Fatalf("got %+v, want Accept then Reject of the resumed session for membership ended", res)
		}
	})
}

// tls13 lets a PEAP or TTLS network block from peapNet or ttlsNet negotiate TLS 1.3.
func tls13(network string) string {
	return strings.Replace(network, `tls_disable_session_ticket=0"`, `tls_disable_session_ticket=0 tls_disable_tlsv1_3=0"`, 1)
}
