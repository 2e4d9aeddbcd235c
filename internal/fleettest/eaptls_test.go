package fleettest

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/admin"
)

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-z]+)" value="([^"]*)">`)

// clientCert gets an EAP-TLS certificate (PEM: certificate, chain, key)
// for user from box b's member pages the way a member's browser does: the
// setup link (deskgate explain shows it), the page's certificate form, the
// PEM download; it returns the certificate's serial (hex) too.
func (b *box) clientCert(user string) (pemText, serial string, err error) {
	var ex admin.Explanation
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.admin().Get(ctx, "/v1/explain", url.Values{"user": {user}}, &ex); err != nil || ex.SetupURL == "" {
		return "", "", fmt.Errorf("%s: no setup link for %s: %v", b.id, user, err)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: b.dialContext, DisableKeepAlives: true}}
	resp, err := c.Get(ex.SetupURL)
	if err != nil {
		return "", "", err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	i := strings.Index(string(page), `action="/wifi/client-cert.pem"`)
	if resp.StatusCode != http.StatusOK || i < 0 {
		return "", "", fmt.Errorf("%s: setup page %s offers no certificate form: %.300s", b.id, resp.Status, page)
	}
	form := url.Values{}
	rest := string(page[i:])
	if j := strings.Index(rest, "</form>"); j >= 0 {
		rest = rest[:j]
	}
	for _, m := range hiddenRE.FindAllStringSubmatch(rest, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	req, _ := http.NewRequest("POST", b.members+"/wifi/client-cert.pem", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.members)
	resp, err = c.Do(req)
	if err != nil {
		return "", "", err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "PRIVATE KEY") {
		return "", "", fmt.Errorf("%s: client certificate: %s %.300s", b.id, resp.Status, body)
	}
	for blk, rest := pem.Decode(body); blk != nil; blk, rest = pem.Decode(rest) {
		if blk.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return "", "", err
			}
			return string(body), cert.SerialNumber.Text(16), nil
		}
	}
	return "", "", fmt.Errorf("%s: no certificate in the PEM", b.id)
}

// revokeCert revokes a certificate by serial at the box (deskgate certs
// revoke over the local API) and reports whether the box acknowledged it.
func (b *box) revokeCert(serial string) bool {
	var out []admin.ClientCert
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return b.admin().Post(ctx, "/v1/certs/revoke", url.Values{"target": {serial}}, &out) == nil && len(out) == 1
}

// eapTLS runs eapol_test (EAP-TLS) at the box with the fleet CA, the
// shared server name and the client certificate and key in pemFile.
func (b *box) eapTLS(caFile, user, pemFile string) (bool, string) {
	network := "key_mgmt=IEEE8021X\neap=TLS\nidentity=\"" + user + "\"\nca_cert=\"" + caFile + "\"\ndomain_match=\"" + serverName +
		"\"\nclient_cert=\"" + pemFile + "\"\nprivate_key=\"" + pemFile + "\""
	return b.eapol(network)
}

// TestFleetProcessesEAPTLS (issue 11 acceptance, first bullet): an
// EAP-TLS certificate issued on box-a's member page works at box-b (one
// supplicant configuration: fleet CA and shared server name) and fails at
// box-b within 1 s of its revocation at box-c (deskgate certs revoke).
func TestFleetProcessesEAPTLS(t *testing.T) {
	needTools(t, "eapol_test")
	f := startFleet(t, fleetOpts{})
	a, b, c := f.boxes[0], f.boxes[1], f.boxes[2]
	email := "tess.process@example.net"
	f.createMember("Tess Process", email, "Downtown")
	for _, x := range f.boxes {
		if err := x.sync(); err != nil {
			t.Fatal(err)
		}
	}
	pemText, serial, err := a.clientCert(email)
	if err != nil {
		t.Fatal(err)
	}
	pemFile := filepath.Join(t.TempDir(), "client.pem")
	if err := os.WriteFile(pemFile, []byte(pemText), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(a.dir, "data", "fleet", "ca.crt")
	if ok, out := b.eapTLS(ca, email, pemFile); !ok {
		t.Fatalf("EAP-TLS at box-b with a certificate issued at box-a fails:\n%s", tail(out, 30))
	}
	waitFor(t, time.Second, "box-c knows the certificate", func() bool {
		out, err := c.tryRun("certs", email)
		return err == nil && strings.Contains(out, serial)
	})
	revoked := time.Now()
	c.run("certs", "revoke", serial)
	took := waitFor(t, time.Second, "box-b refuses the certificate revoked at box-c", func() bool {
		ok, _ := b.eapTLS(ca, email, pemFile)
		return !ok
	})
	t.Logf("certificate revoked at box-c → refused at box-b (eapol_test) after %s (%s from the revoke)", took.Round(time.Millisecond), time.Since(revoked).Round(time.Millisecond))
}
