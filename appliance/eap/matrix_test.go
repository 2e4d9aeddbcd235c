package eap

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestMethodMatrix runs eapol_test for every phase-1/phase-2 combination real clients offer, over TLS 1.2
// and TLS 1.3 (RFC 9427), and names the expected outcome of each: the supported ones log in with the
// server's MSK equal to the one eapol_test derives (and "MPPE keys OK"), the ones that cannot be verified
// from the stored NT hash are refused as unsupported with a reason that says why.
func TestMethodMatrix(t *testing.T) {
	tb := newTestbed(t, nil)
	cf, kf, _ := tb.clientCert(t, "carol@example.com")
	type tcase struct {
		name   string
		net    string
		method string // Result.Method on Accept; "" when the login must fail
		reason string // on failure: part of the Reject reason
	}
	netw := func(eap, phase1, phase2 string) string {
		return fmt.Sprintf(`key_mgmt=IEEE8021X
eap=%s
identity="alice@example.com"
anonymous_identity="anonymous"
password="correct horse"
ca_cert="%s"
domain_match="%s"
phase1="%s"
phase2="%s"`, eap, tb.caFile, testServerName, phase1, phase2)
	}
	var cases []tcase
	for _, v := range []struct{ name, phase1 string }{
		{"tls1.2", "tls_disable_tlsv1_3=1"},
		{"tls1.3", "tls_disable_tlsv1_3=0"},
	} {
		peap := "peaplabel=0 " + v.phase1
		cases = append(cases,
			tcase{"peap/mschapv2", netw("PEAP", peap, "auth=MSCHAPV2"), "peap", ""},
			tcase{"peap/mschapv2 crypto_binding=2", netw("PEAP", peap+" crypto_binding=2", "auth=MSCHAPV2"), "peap", ""},
			tcase{"peap/mschapv2 crypto_binding=0", netw("PEAP", peap+" crypto_binding=0", "auth=MSCHAPV2"), "peap", ""},
			tcase{"peap/gtc", netw("PEAP", peap, "auth=GTC"), "peap-gtc", ""},
			tcase{"peap/gtc crypto_binding=2", netw("PEAP", peap+" crypto_binding=2", "auth=GTC"), "peap-gtc", ""},
			tcase{"peap/md5", netw("PEAP", peap, "auth=MD5"), "", "unsupported_method: peer refused inner EAP-MSCHAPv2 and EAP-GTC and asked for EAP-MD5"},
			tcase{"ttls/pap", netw("TTLS", v.phase1, "auth=PAP"), "ttls-pap", ""},
			tcase{"ttls/mschap", netw("TTLS", v.phase1, "auth=MSCHAP"), "ttls-mschap", ""},
			tcase{"ttls/mschapv2", netw("TTLS", v.phase1, "auth=MSCHAPV2"), "ttls-mschapv2", ""},
			tcase{"ttls/eap-mschapv2", netw("TTLS", v.phase1, "autheap=MSCHAPV2"), "ttls-eap-mschapv2", ""},
			tcase{"ttls/eap-gtc", netw("TTLS", v.phase1, "autheap=GTC"), "ttls-eap-gtc", ""},
			tcase{"ttls/chap", netw("TTLS", v.phase1, "auth=CHAP"), "", "unsupported_method: inner CHAP needs the cleartext password"},
			tcase{"ttls/eap-md5", netw("TTLS", v.phase1, "autheap=MD5"), "", "unsupported_method: peer refused inner EAP-MSCHAPv2 and EAP-GTC and asked for EAP-MD5"},
			tcase{"tls", tlsNet(tb.caFile, "carol@example.com", cf, kf, v.phase1), "tls", ""},
		)
		for i := len(cases) - 14; i < len(cases); i++ {
			cases[i].name = v.name + "/" + cases[i].name
		}
	}
	cases = append(cases, tcase{"md5 (no tunnel)", netw("MD5", "", ""), "", "unsupported_method: peer refused every offered method (PEAP, EAP-TTLS, EAP-TLS) and asked for EAP-MD5"})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFront(t, tb.srv) // one front per case: its results are this case's alone
			r := runEapol(t, f, c.net)
			res := f.all()
			if len(res) != 1 {
				t.Fatalf("server gave %d final answers, want 1\n%s", len(res), tail(r.out, 60))
			}
			got := res[0]
			if c.method == "" {
				if r.success || got.Action != Reject || !got.Unsupported || !strings.Contains(got.Reason, c.reason) {
					t.Fatalf("eapol_test success=%v, server %v unsupported=%v reason %q; want FAILURE, Reject, unsupported, reason containing %q\n%s",
						r.success, got.Action, got.Unsupported, got.Reason, c.reason, tail(r.out, 40))
				}
				// The inner identity the tunnel got to names the refusal in the audit trail.
				if wantID := map[bool]string{true: "", false: "alice@example.com"}[strings.HasPrefix(c.name, "md5")]; got.Identity != wantID {
					t.Fatalf("refusal names identity %q, want %q", got.Identity, wantID)
				}
				t.Logf("refused: %s", got.Reason)
				return
			}
			if !r.success || got.Action != Accept {
				t.Fatalf("eapol_test success=%v, server %v (%s), want SUCCESS and Accept\n%s", r.success, got.Action, got.Reason, tail(r.out, 60))
			}
			if got.Method != c.method || got.Identity != map[bool]string{true: "carol@example.com", false: "alice@example.com"}[c.method == "tls"] {
				t.Fatalf("server accepted %q with method %q, want %q", got.Identity, got.Method, c.method)
			}
			if r.mppeOK != 1 || r.mppeBad != 0 || len(r.msks) != 1 || !bytes.Equal(r.msks[0], got.MSK) {
				t.Fatalf("MPPE keys OK %d mismatch %d; eapol_test MSKs %x, server MSK %x", r.mppeOK, r.mppeBad, r.msks, got.MSK)
			}
			want := map[bool]string{true: "TLSv1.3", false: "TLSv1.2"}[strings.HasPrefix(c.name, "tls1.3")]
			if v := tlsVersion(r.out); v != want {
				t.Fatalf("eapol_test negotiated %q, want %s", v, want)
			}
			if strings.HasPrefix(got.Method, "peap") {
				bound := strings.Contains(r.out, "EAP-PEAP: Valid cryptobinding TLV received")
				if want := !strings.Contains(c.name, "crypto_binding=0"); bound != want {
					t.Fatalf("crypto binding verified by eapol_test: %v, want %v", bound, want)
				}
			}
		})
	}
}

// TestMethodNotOffered: a peer that asks only for a method the server is configured not to offer is
// refused as unsupported, and the reason says it is not offered (not that it cannot be verified).
func TestMethodNotOffered(t *testing.T) {
	tb := newTestbed(t, func(c *Config) { c.Methods = []string{"peap"} })
	r := runEapol(t, tb.front, ttlsNet(tb.caFile, "alice@example.com", "correct horse", "PAP"))
	res := tb.front.all()
	if r.success || len(res) != 1 || res[0].Action != Reject || !res[0].Unsupported ||
		!strings.Contains(res[0].Reason, "asked for EAP-TTLS, which this server does not offer") {
		t.Fatalf("eapol_test success=%v, results %+v; want FAILURE and an unsupported Reject naming EAP-TTLS", r.success, res)
	}
}
