package appliance

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/admin"
)

// TestFleetEAPTLSAcrossBoxes: a member's EAP-TLS certificate issued at
// box-a (from box-a's issuing CA, an intermediate of the fleet CA) works
// at box-b with one supplicant configuration (fleet CA + shared server
// name); box-c lists it; the operator revokes it at box-c, box-b knows
// within a second and refuses it.
func TestFleetEAPTLSAcrossBoxes(t *testing.T) {
	boxes := startFleet(t, harnessOpts{})
	// The fleet RADIUS certificate and the issuing CA take effect at the
	// next start, as after fleet init or join.
	for _, b := range boxes {
		b.stop()
		b.start()
	}
	waitLinks(t, boxes)
	a, b, c := boxes[0], boxes[1], boxes[2]
	email := "tess.certwood@example.net"
	createMember(t, a.harness, "Tess Certwood", email, "Hot Desk", "Downtown")
	syncAll(t, boxes, email)
	waitFor(t, 3*time.Second, "member allowed at box-a", func() bool { return a.allowed(email) })

	p := postClientCert(t, memberClient(t, a.app), a.app.ProfileURL(email))
	if p.code != 200 || !strings.Contains(p.body, "PRIVATE KEY") {
		t.Fatalf("client certificate at box-a: %d %.300s", p.code, p.body)
	}
	var chain []*x509.Certificate
	for blk, rest := pem.Decode([]byte(p.body)); blk != nil; blk, rest = pem.Decode(rest) {
		if blk.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			chain = append(chain, cert)
		}
	}
	fleetCA := filepath.Join(a.dir, "data", "fleet", "ca.crt")
	if len(chain) != 2 || !chain[1].IsCA || chain[1].Subject.CommonName != "deskgate EAP-TLS issuing CA box-a" {
		t.Fatalf("want the certificate and box-a's issuing CA, got %d certificates", len(chain))
	}
	serial := chain[0].SerialNumber.Text(16)
	pemFile := filepath.Join(t.TempDir(), "client.pem")
	if err := os.WriteFile(pemFile, []byte(p.body), 0o600); err != nil {
		t.Fatal(err)
	}
	network := fmt.Sprintf("key_mgmt=IEEE8021X\neap=TLS\nidentity=%q\nca_cert=%q\ndomain_match=%q\nclient_cert=%q\nprivate_key=%q",
		email, fleetCA, a.app.Config().RADIUS.EAP.ServerName, pemFile, pemFile)
	authB, _ := b.app.radius.srv.Addrs()
	if ok, out := eapol(t, b.harness, authB[0].String(), network); !ok {
		t.Fatalf("EAP-TLS at box-b with a certificate issued at box-a failed:\n%s", tailLines(out, 40))
	}

	// box-c knows the certificate (replicated: serial, identity, expiry,
	// fingerprint; never the key) and revokes it by its serial.
	ctx := context.Background()
	var listed []admin.ClientCert
	waitFor(t, time.Second, "box-c lists the certificate", func() bool {
		listed = nil
		return c.cli.Get(ctx, "/v1/certs", url.Values{"user": {email}}, &listed) == nil && len(listed) == 1
	})
	if listed[0].Serial != serial || !listed[0].Live {
		t.Fatalf("box-c lists %+v, want serial %s live", listed[0], serial)
	}
	revoked := time.Now()
	var out []admin.ClientCert
	if err := c.cli.Post(ctx, "/v1/certs/revoke", url.Values{"target": {serial}}, &out); err != nil {
		t.Fatalf("revoke at box-c: %v", err)
	}
	if len(out) != 1 || out[0].Live || out[0].Revoked.IsZero() {
		t.Fatalf("revoke at box-c answered %+v", out)
	}
	waitFor(t, time.Second, "box-b refuses the revoked certificate", func() bool {
		_, err := b.app.radius.ca.CertIdentity(chain[0])
		return err != nil && strings.Contains(err.Error(), "revoked")
	})
	t.Logf("certificate revoked at box-c → refused at box-b after %s", time.Since(revoked))
	if ok, _ := eapol(t, b.harness, authB[0].String(), network); ok {
		t.Fatal("EAP-TLS at box-b succeeded with a certificate revoked at box-c")
	}
	for _, x := range boxes {
		if l := x.app.radius.ca.ListIssued(email); len(l) != 1 || l[0].Current {
			t.Errorf("%s lists %+v, want the one revoked certificate", x.id, l)
		}
	}
}
