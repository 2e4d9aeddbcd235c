package eap

import (
	"fmt"
	"strings"
	"testing"
)

// TestMethods authenticates with every method through eapol_test, which verifies the server certificate
// against the CA and the configured name, and compares the MSK it derives with Result.MSK and with the
// MS-MPPE keys in the Access-Accept.
func TestMethods(t *testing.T) {
	for _, mtu := range []int{0, 500} {
		tb := newTestbed(t, nil)
		tb.front.mtu.Store(int32(mtu))
		cf, kf, _ := tb.clientCert(t, "carol@example.com")
		cases := []struct {
			name, net, identity, method string
		}{
			{"peap-mschapv2", peapNet(tb.caFile, "alice@example.com", "correct horse"), "alice@example.com", "peap"},
			{"ttls-pap", ttlsNet(tb.caFile, "alice@example.com", "correct horse", "PAP"), "alice@example.com", "ttls-pap"},
			{"ttls-mschapv2", ttlsNet(tb.caFile, "bob@example.com", "battery staple", "MSCHAPV2"), "bob@example.com", "ttls-mschapv2"},
			{"tls1.2", tlsNet(tb.caFile, "carol@example.com", cf, kf, ""), "carol@example.com", "tls"},
			{"tls1.3", tlsNet(tb.caFile, "carol@example.com", cf, kf, "tls_disable_tlsv1_3=0"), "carol@example.com", "tls"},
		}
		for _, c := range cases {
			name := c.name
			if mtu > 0 {
				name += "/mtu500"
			}
			t.Run(name, func(t *testing.T) {
				netw := c.net
				if mtu > 0 {
					netw += fmt.Sprintf("\nfragment_size=%d", mtu-mtuOverhead) // the peer fragments too
				}
				r := runEapol(t, tb.front, netw)
				checkAccept(t, tb, r, c.identity, c.method, 1)
				if strings.HasPrefix(c.name, "tls1.3") != (tlsVersion(r.out) == "TLSv1.3") {
					t.Errorf("TLS version %q not as expected for %s", tlsVersion(r.out), c.name)
				}
				if mtu > 0 {
					// every EAP packet eapol_test received fits the MTU (EAPOL header excluded)
					all := eapLenRe.FindAllStringSubmatch(r.out, -1)
					frags := strings.Count(r.out, "Flags 0xc0") + strings.Count(r.out, "Flags 0x40")
					t.Logf("%d EAP requests, %d server fragments, %d bytes largest", len(all), frags, maxLen(all))
					if frags == 0 {
						t.Fatal("no fragmented server message seen")
					}
					for _, m := range all {
						if n := atoi(m[1]); n > mtu-4 {
							t.Fatalf("EAP packet of %d bytes exceeds Framed-MTU %d", n, mtu)
						}
					}
				}
			})
		}
	}
}
