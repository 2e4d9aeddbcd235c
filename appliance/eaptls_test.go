package appliance

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"html"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEAPTLSMobileconfig: the setup page's certificate-profile button
// (same POST, token and device limit as the PEM certificate) answers a
// page with a one-time password and a one-time download; the profile is
// a property list whose WiFi payload accepts EAP type 13 (EAP-TLS) with
// PayloadCertificateUUID naming a com.apple.security.pkcs12 payload, and
// that PKCS#12 opens with openssl and the shown password (not with
// another) and holds the member's certificate and key. The password is
// not in the profile; the download works once.
func TestEAPTLSMobileconfig(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl missing (CI=true)")
		}
		t.Skip("openssl not installed")
	}
	nas := startTestNAS(t)
	h := newHarness(t, harnessOpts{seed: true, webhooks: true, extraYAML: radiusYAML(nas.port())})
	app := h.start()
	h.waitImport(30 * time.Second)
	m, _ := createMember(t, h, "Phone Owner", "phone.owner@example.com", "Hot Desk", "Downtown")
	waitFor(t, 3*time.Second, "member allowed", func() bool { return h.allowed(m.Email) })
	c := memberClient(t, app)
	link := app.ProfileURL(m.Email)
	origin := map[string]string{"Origin": h.memberURL}

	page := fetchPage(t, c, "GET", link, nil, nil)
	form := formFields(page.body, `action="/wifi/eaptls"`)
	if form == nil {
		t.Fatalf("setup page has no certificate-profile form")
	}
	if p := fetchPage(t, c, "GET", h.memberURL+"/wifi/eaptls?"+form.Encode(), nil, nil); p.code == 200 {
		t.Fatal("GET issued a profile")
	}
	p := fetchPage(t, c, "POST", h.memberURL+"/wifi/eaptls", form, origin)
	if p.code != 200 {
		t.Fatalf("POST: %d %.300s", p.code, p.body)
	}
	pm := regexp.MustCompile(`<code>([^<]+)</code>`).FindStringSubmatch(p.body)
	dm := regexp.MustCompile(`href="(/wifi/eaptls/profile\.mobileconfig\?t=[^"]+)"`).FindStringSubmatch(p.body)
	if pm == nil || dm == nil {
		t.Fatalf("answer lacks the password or the download:\n%s", p.body)
	}
	pass := html.UnescapeString(pm[1])
	dl := fetchPage(t, c, "GET", h.memberURL+html.UnescapeString(dm[1]), nil, nil)
	if dl.code != 200 || dl.header.Get("Content-Type") != "application/x-apple-aspen-config" {
		t.Fatalf("download: %d %s", dl.code, dl.header.Get("Content-Type"))
	}
	if again := fetchPage(t, c, "GET", h.memberURL+html.UnescapeString(dm[1]), nil, nil); again.code != 404 {
		t.Errorf("second download: %d, want 404", again.code)
	}
	if strings.Contains(dl.body, pass) {
		t.Error("the PKCS#12 password is in the profile")
	}
	root, err := parsePlist([]byte(dl.body))
	if err != nil {
		t.Fatalf("plist: %v\n%.500s", err, dl.body)
	}
	var p12 []byte
	var p12UUID, certUUID string
	var types []any
	for _, pl := range root.(map[string]any)["PayloadContent"].([]any) {
		d := pl.(map[string]any)
		switch d["PayloadType"] {
		case "com.apple.security.pkcs12":
			p12, p12UUID = d["PayloadContent"].([]byte), d["PayloadUUID"].(string)
		case "com.apple.wifi.managed":
			eap := d["EAPClientConfiguration"].(map[string]any)
			types, _ = eap["AcceptEAPTypes"].([]any)
			certUUID, _ = eap["PayloadCertificateUUID"].(string)
		}
	}
	if fmt.Sprint(types) != "[13]" || p12UUID == "" || certUUID != p12UUID {
		t.Fatalf("WiFi payload: EAP types %v, PayloadCertificateUUID %q, pkcs12 payload %q", types, certUUID, p12UUID)
	}
	f := filepath.Join(t.TempDir(), "id.p12")
	if err := os.WriteFile(f, p12, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(openssl, "pkcs12", "-info", "-in", f, "-passin", "pass:"+pass, "-nodes").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl pkcs12 -info with the shown password: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "BEGIN PRIVATE KEY") || !strings.Contains(string(out), "CN="+m.Email) && !strings.Contains(string(out), "CN = "+m.Email) {
		t.Fatalf("PKCS#12 lacks the key or the member's certificate:\n%s", out)
	}
	if out, err := exec.Command(openssl, "pkcs12", "-info", "-in", f, "-passin", "pass:wrong-password", "-nodes").CombinedOutput(); err == nil {
		t.Fatalf("PKCS#12 opened with a wrong password:\n%s", out)
	}
	if n := len(app.radius.ca.ListIssued(m.Email)); n != 1 {
		t.Errorf("%d certificates issued, want 1", n)
	}
}

// parsePlist decodes an XML property list into maps, slices, strings,
// ints, bools and []byte.
func parsePlist(b []byte) (any, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = false
	var value func(start xml.StartElement) (any, error)
	text := func() (string, error) {
		var s strings.Builder
		for {
			tok, err := d.Token()
			if err != nil {
				return "", err
			}
			switch x := tok.(type) {
			case xml.CharData:
				s.Write(x)
			case xml.EndElement:
				return s.String(), nil
			}
		}
	}
	value = func(start xml.StartElement) (any, error) {
		switch start.Name.Local {
		case "dict":
			m := map[string]any{}
			key := ""
			for {
				tok, err := d.Token()
				if err != nil {
					return nil, err
				}
				switch x := tok.(type) {
				case xml.StartElement:
					if x.Name.Local == "key" {
						if key, err = text(); err != nil {
							return nil, err
						}
						continue
					}
					v, err := value(x)
					if err != nil {
						return nil, err
					}
					m[key] = v
				case xml.EndElement:
					return m, nil
				}
			}
		case "array":
			var a []any
			for {
				tok, err := d.Token()
				if err != nil {
					return nil, err
				}
				switch x := tok.(type) {
				case xml.StartElement:
					v, err := value(x)
					if err != nil {
						return nil, err
					}
					a = append(a, v)
				case xml.EndElement:
					return a, nil
				}
			}
		case "string":
			return text()
		case "integer":
			s, err := text()
			if err != nil {
				return nil, err
			}
			return strconv.Atoi(strings.TrimSpace(s))
		case "data":
			s, err := text()
			if err != nil {
				return nil, err
			}
			return base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
		case "true", "false":
			_, err := text()
			return start.Name.Local == "true", err
		}
		return nil, fmt.Errorf("unknown plist element %s", start.Name.Local)
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil, fmt.Errorf("no plist")
		}
		if err != nil {
			return nil, err
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local != "plist" {
			return value(se)
		}
	}
}
