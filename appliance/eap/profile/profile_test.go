package profile

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/eap/certs"
)

// parsePlist is a strict XML property-list decoder: dict, array, string, integer, true, false, data.
func parsePlist(b []byte) (any, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	var next func(start xml.StartElement) (any, error)
	text := func() (string, error) {
		var s strings.Builder
		for {
			tok, err := d.Token()
			if err != nil {
				return "", err
			}
			switch t := tok.(type) {
			case xml.CharData:
				s.Write(t)
			case xml.EndElement:
				return s.String(), nil
			default:
				return "", fmt.Errorf("unexpected %T in scalar", tok)
			}
		}
	}
	element := func() (any, bool, error) {
		for {
			tok, err := d.Token()
			if err != nil {
				return nil, false, err
			}
			switch t := tok.(type) {
			case xml.StartElement:
				v, err := next(t)
				return v, false, err
			case xml.EndElement:
				return nil, true, nil
			}
		}
	}
	next = func(start xml.StartElement) (any, error) {
		switch start.Name.Local {
		case "dict":
			m := map[string]any{}
			for {
				k, end, err := element()
				if err != nil {
					return nil, err
				}
				if end {
					return m, nil
				}
				ks, ok := k.(key)
				if !ok {
					return nil, fmt.Errorf("dict entry without key: %v", k)
				}
				v, end, err := element()
				if err != nil || end {
					return nil, fmt.Errorf("key %q without value", ks)
				}
				m[string(ks)] = v
			}
		case "array":
			var a []any
			for {
				v, end, err := element()
				if err != nil {
					return nil, err
				}
				if end {
					return a, nil
				}
				a = append(a, v)
			}
		case "key":
			s, err := text()
			return key(s), err
		case "string":
			return text()
		case "integer":
			s, err := text()
			if err != nil {
				return nil, err
			}
			return strconv.Atoi(s)
		case "data":
			s, err := text()
			if err != nil {
				return nil, err
			}
			return base64.StdEncoding.DecodeString(strings.TrimSpace(s))
		case "true", "false":
			_, err := text()
			return start.Name.Local == "true", err
		}
		return nil, fmt.Errorf("unknown plist element %q", start.Name.Local)
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil, fmt.Errorf("no plist element")
		}
		if err != nil {
			return nil, err
		}
		if s, ok := tok.(xml.StartElement); ok && s.Name.Local == "plist" {
			v, end, err := element()
			if err != nil || end {
				return nil, fmt.Errorf("empty plist: %v", err)
			}
			return v, nil
		}
	}
}

type key string

func testAuthority(t *testing.T) *certs.Authority {
	ca, err := certs.Open(certs.Config{Dir: t.TempDir(), ServerName: "radius.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestPlist(t *testing.T) {
	ca := testAuthority(t)
	w := WiFi{SSID: "hub-secure", Identifier: "com.example.deskgate.hub", Organization: "Example Hub",
		EAPTypes: []string{"peap", "ttls"}, UserName: "alice@example.com", OuterIdentity: "anonymous",
		CA: ca.TrustAnchor(), ServerNames: []string{ca.ServerName()}}
	b, err := Generate(w, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := parsePlist(b)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, b)
	}
	root := v.(map[string]any)
	for _, k := range []string{"PayloadType", "PayloadVersion", "PayloadIdentifier", "PayloadUUID", "PayloadDisplayName", "PayloadContent"} {
		if root[k] == nil {
			t.Errorf("root has no %s", k)
		}
	}
	if root["PayloadType"] != "Configuration" {
		t.Errorf("PayloadType %v", root["PayloadType"])
	}
	payloads := root["PayloadContent"].([]any)
	byType := map[string]map[string]any{}
	for _, p := range payloads {
		m := p.(map[string]any)
		byType[m["PayloadType"].(string)] = m
	}
	caP, wifi := byType["com.apple.security.root"], byType["com.apple.wifi.managed"]
	if caP == nil || wifi == nil {
		t.Fatalf("payload types %v", byType)
	}
	// The CA payload is the certificate that verifies the server's certificate.
	caCert, err := x509.ParseCertificate(caP["PayloadContent"].([]byte))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	leaf, _ := x509.ParseCertificate(ca.ServerCertificate().Certificate[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "radius.example.com"}); err != nil {
		t.Fatalf("profile CA does not verify the server certificate: %v", err)
	}
	if wifi["SSID_STR"] != "hub-secure" || wifi["EncryptionType"] != "WPA2" || wifi["AutoJoin"] != true {
		t.Errorf("wifi payload %v", wifi)
	}
	eap := wifi["EAPClientConfiguration"].(map[string]any)
	if fmt.Sprint(eap["AcceptEAPTypes"]) != "[25 21]" || eap["UserName"] != "alice@example.com" ||
		fmt.Sprint(eap["TLSTrustedServerNames"]) != "[radius.example.com]" || eap["OuterIdentity"] != "anonymous" ||
		fmt.Sprint(eap["PayloadCertificateAnchorUUID"]) != "["+caP["PayloadUUID"].(string)+"]" {
		t.Errorf("EAP configuration %v", eap)
	}
	if _, ok := eap["UserPassword"]; ok {
		t.Error("password included though none was given")
	}
	// A second, independent parser when available.
	if py, err := exec.LookPath("python3"); err == nil {
		cmd := exec.Command(py, "-c", `import plistlib,sys; p=plistlib.loads(sys.stdin.buffer.read()); print(sorted(x["PayloadType"] for x in p["PayloadContent"]))`)
		cmd.Stdin = bytes.NewReader(b)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "['com.apple.security.root', 'com.apple.wifi.managed']" {
			t.Errorf("python plistlib: %v %s", err, out)
		}
	}
}

func TestSigned(t *testing.T) {
	ca := testAuthority(t)
	cp, kp, err := ca.IssueClient("profiles.example.com", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(cp)
	cert, _ := x509.ParseCertificate(blk.Bytes)
	blk, _ = pem.Decode(kp)
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	w := WiFi{SSID: "hub-secure", Identifier: "com.example.deskgate.hub", UserName: "alice@example.com",
		CA: ca.TrustAnchor(), ServerNames: []string{ca.ServerName()}}
	signed, err := Generate(w, &Signer{Certificate: cert, Chain: []*x509.Certificate{ca.CA()}, Key: key.(crypto.Signer)})
	if err != nil {
		t.Fatal(err)
	}
	ossl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	in, out, caf := filepath.Join(dir, "p.mobileconfig"), filepath.Join(dir, "out.plist"), filepath.Join(dir, "ca.pem")
	os.WriteFile(in, signed, 0o600)
	os.WriteFile(caf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.CA().Raw}), 0o600)
	// -purpose any: the test signer is a client certificate; the signature and chain are verified.
	res, err := exec.Command(ossl, "cms", "-verify", "-inform", "DER", "-in", in, "-CAfile", caf, "-purpose", "any", "-out", out).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl cms -verify: %v\n%s", err, res)
	}
	content, _ := os.ReadFile(out)
	if _, err := parsePlist(content); err != nil || !bytes.Contains(content, []byte("hub-secure")) {
		t.Fatalf("signed content is not the profile: %v", err)
	}
	// Tampering breaks the signature.
	bad := bytes.Replace(signed, []byte("hub-secure"), []byte("hub-sekure"), 1)
	os.WriteFile(in, bad, 0o600)
	if res, err := exec.Command(ossl, "cms", "-verify", "-inform", "DER", "-in", in, "-CAfile", caf, "-purpose", "any", "-out", out).CombinedOutput(); err == nil {
		t.Fatalf("tampered profile verified:\n%s", res)
	}
}

// TestPlistIdentity: with an Identity the profile carries it as a
// com.apple.security.pkcs12 payload (the bytes as given, no password),
// and the WiFi payload's EAP-TLS configuration names it by
// PayloadCertificateUUID; without one there is no such payload.
func TestPlistIdentity(t *testing.T) {
	ca := testAuthority(t)
	p12 := []byte{0x30, 0x82, 0x01, 0x02, 0xde, 0xad}
	w := WiFi{SSID: "hub-secure", Identifier: "com.example.deskgate.hub", EAPTypes: []string{"tls"}, UserName: "alice@example.com",
		CA: ca.TrustAnchor(), ServerNames: []string{ca.ServerName()}, Identity: p12}
	for _, withID := range []bool{true, false} {
		if !withID {
			w.Identity = nil
		}
		b, err := Generate(w, nil)
		if err != nil {
			t.Fatal(err)
		}
		v, err := parsePlist(b)
		if err != nil {
			t.Fatalf("parse: %v\n%s", err, b)
		}
		byType := map[string]map[string]any{}
		for _, p := range v.(map[string]any)["PayloadContent"].([]any) {
			m := p.(map[string]any)
			byType[m["PayloadType"].(string)] = m
		}
		id, wifi := byType["com.apple.security.pkcs12"], byType["com.apple.wifi.managed"]
		eap := wifi["EAPClientConfiguration"].(map[string]any)
		if !withID {
			if id != nil || eap["PayloadCertificateUUID"] != nil {
				t.Fatal("a profile without an identity has a pkcs12 payload or a PayloadCertificateUUID")
			}
			continue
		}
		if id == nil || !bytes.Equal(id["PayloadContent"].([]byte), p12) || id["Password"] != nil {
			t.Fatalf("pkcs12 payload %v", id)
		}
		if eap["PayloadCertificateUUID"] != id["PayloadUUID"] || fmt.Sprint(eap["AcceptEAPTypes"]) != "[13]" {
			t.Fatalf("EAP configuration %v, identity UUID %v", eap, id["PayloadUUID"])
		}
	}
}
