package eap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deskgate/deskgate/appliance/eap/certs"
)

// TestRejections: every refusal ends in eapol_test FAILURE, an Access-Reject, and a reason (never
// "unsupported": these methods are supported, the credentials or the membership are wrong).
func TestRejections(t *testing.T) {
	tb := newTestbed(t, nil)
	cf, kf, _ := tb.clientCert(t, "dave@example.com")
	if n, err := tb.ca.RevokeIdentity("dave@example.com"); err != nil || n != 1 {
		t.Fatalf("RevokeIdentity = %d, %v", n, err)
	}
	// A CA the client trusts that did not sign the server's certificate.
	other, err := certs.Open(certs.Config{Dir: filepath.Join(t.TempDir(), "other"), ServerName: testServerName})
	if err != nil {
		t.Fatal(err)
	}
	otherCA := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(otherCA, other.TrustAnchorPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cf2, kf2, _ := tb.clientCert(t, "erin@example.com")
	cases := []struct {
		name, net, reason string
	}{
		{"peap wrong password", peapNet(tb.caFile, "alice@example.com", "wrong"), "wrong password"},
		{"peap membership ended", peapNet(tb.caFile, "ended@example.com", "x"), "membership ended"},
		{"peap virtual office", peapNet(tb.caFile, "vo@example.com", "x"), "Virtual Office"},
		{"ttls-pap wrong password", ttlsNet(tb.caFile, "alice@example.com", "wrong", "PAP"), "wrong password"},
		{"ttls-pap membership ended", ttlsNet(tb.caFile, "ended@example.com", "x", "PAP"), "membership ended"},
		{"ttls-mschapv2 wrong password", ttlsNet(tb.caFile, "bob@example.com", "wrong", "MSCHAPV2"), "wrong password"},
		{"ttls-mschapv2 unknown", ttlsNet(tb.caFile, "nobody@example.com", "x", "MSCHAPV2"), "unknown identity"},
		{"peap-gtc wrong password", strings.Replace(peapNet(tb.caFile, "alice@example.com", "wrong"), "auth=MSCHAPV2", "auth=GTC", 1), "wrong password"},
		{"peap-gtc tls1.3 membership ended", tls13(strings.Replace(peapNet(tb.caFile, "ended@example.com", "x"), "auth=MSCHAPV2", "auth=GTC", 1)), "membership ended"},
		{"ttls-mschap wrong password", ttlsNet(tb.caFile, "bob@example.com", "wrong", "MSCHAP"), "wrong password"},
		{"ttls-mschap tls1.3 virtual office", tls13(ttlsNet(tb.caFile, "vo@example.com", "x", "MSCHAP")), "Virtual Office"},
		{"ttls-eap-mschapv2 wrong password", strings.Replace(ttlsNet(tb.caFile, "bob@example.com", "wrong", "MSCHAPV2"), "auth=", "autheap=", 1), "wrong password"},
		{"ttls-eap-gtc wrong password", strings.Replace(ttlsNet(tb.caFile, "bob@example.com", "wrong", "GTC"), "auth=", "autheap=", 1), "wrong password"},
		{"ttls-eap-gtc unknown", strings.Replace(ttlsNet(tb.caFile, "nobody@example.com", "x", "GTC"), "auth=", "autheap=", 1), "unknown identity"},
		{"tls revoked cert", tlsNet(tb.caFile, "dave@example.com", cf, kf, ""), "revoked"},
		{"tls1.3 revoked cert", tlsNet(tb.caFile, "dave@example.com", cf, kf, "tls_disable_tlsv1_3=0"), "revoked"},
		{"peap wrong CA on client", peapNet(otherCA, "alice@example.com", "correct horse"), "tls handshake"},
		{"tls wrong CA on client", tlsNet(otherCA, "erin@example.com", cf2, kf2, ""), "tls handshake"},
		{"peap wrong server name", strings.Replace(peapNet(tb.caFile, "alice@example.com", "correct horse"),
			testServerName, "evil.example.com", 1), "tls handshake"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(tb.front.all())
			r := runEapol(t, tb.front, c.net)
			if r.success || !strings.Contains(r.out, "FAILURE") {
				t.Fatalf("eapol_test succeeded, want FAILURE:\n%s", tail(r.out, 30))
			}
			res := tb.front.all()
			if len(res) != before+1 {
				t.Fatalf("server gave %d final answers, want 1", len(res)-before)
			}
			got := res[len(res)-1]
			if got.Action != Reject || !strings.Contains(got.Reason, c.reason) || got.MSK != nil || got.Unsupported {
				t.Fatalf("got %v reason %q, want Reject with reason containing %q", got.Action, got.Reason, c.reason)
			}
			if strings.HasPrefix(c.name, "peap") && c.reason != "tls handshake" && !strings.Contains(r.out, "TLV Result - Failure") {
				t.Errorf("PEAP refusal was not signalled inside the tunnel (no result TLV failure)")
			}
			t.Logf("reject reason: %s", got.Reason)
		})
	}
	if st := tb.srv.Stats(); st.Live != 0 || st.Rejected != uint64(len(cases)) {
		t.Errorf("stats after rejections: %+v, want no live conversations and %d rejected", st, len(cases))
	}
}
