// Package profile generates Apple configuration profiles (.mobileconfig) that set up a member's device
// for deskgate's WPA-Enterprise network: a WiFi payload (SSID, EAP types, username, trusted server names)
// and the CA that signed the RADIUS server's certificate, as an XML property list, signed with CMS
// (PKCS#7 SignedData) when a signing certificate is configured.
package profile

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// WiFi describes one member's WiFi profile.
type WiFi struct {
	SSID          string
	Identifier    string // reverse-DNS prefix for payload identifiers, e.g. "com.example.deskgate"
	Organization  string
	DisplayName   string   // default "<SSID> WiFi"
	EAPTypes      []string // "peap", "ttls", "tls"; default peap and ttls
	TTLSInner     string   // "MSCHAPv2" (default) or "PAP"
	UserName      string
	Password      string            // optional; left out when empty (the device asks)
	OuterIdentity string            // e.g. "anonymous"; optional
	CA            *x509.Certificate // trusted CA for the server certificate
	ServerNames   []string          // TLSTrustedServerNames, e.g. "radius.example.com"
	// Identity is the member's EAP-TLS client certificate and key as a
	// password-protected PKCS#12 file; with it the profile carries a
	// com.apple.security.pkcs12 payload the WiFi payload names as its
	// PayloadCertificateUUID, and the device asks for the password when
	// installing (it is not in the profile).
	Identity     []byte
	IdentityName string // the payload's display name, default "WiFi certificate"
}

// Signer signs profiles.
type Signer struct {
	Certificate *x509.Certificate
	Chain       []*x509.Certificate // intermediates to include
	Key         crypto.Signer
	// Now is the clock for the signing time; nil means time.Now.
	Now func() time.Time
}

var eapTypeNumbers = map[string]int{"peap": 25, "ttls": 21, "tls": 13}

// Generate returns the .mobileconfig: the XML property list, or CMS SignedData (DER) around it when
// signer is not nil.
func Generate(w WiFi, signer *Signer) ([]byte, error) {
	pl, err := Plist(w)
	if err != nil {
		return nil, err
	}
	if signer == nil {
		return pl, nil
	}
	signed, err := signCMS(pl, signer)
	if err != nil {
		return nil, fmt.Errorf("profile: sign: %w", err)
	}
	return signed, nil
}

// Plist returns the unsigned XML property list.
func Plist(w WiFi) ([]byte, error) {
	if w.SSID == "" || w.Identifier == "" || w.CA == nil || len(w.ServerNames) == 0 {
		return nil, errors.New("profile: generate: SSID, Identifier, CA and ServerNames are required")
	}
	if len(w.EAPTypes) == 0 {
		w.EAPTypes = []string{"peap", "ttls"}
	}
	if w.TTLSInner == "" {
		w.TTLSInner = "MSCHAPv2"
	}
	if w.DisplayName == "" {
		w.DisplayName = w.SSID + " WiFi"
	}
	var types []any
	for _, t := range w.EAPTypes {
		n, ok := eapTypeNumbers[t]
		if !ok {
			return nil, fmt.Errorf("profile: generate: unknown EAP type %q", t)
		}
		types = append(types, n)
	}
	caUUID, wifiUUID, profUUID := newUUID(), newUUID(), newUUID()
	names := make([]any, len(w.ServerNames))
	for i, n := range w.ServerNames {
		names[i] = n
	}
	eap := dict{
		"AcceptEAPTypes":               types,
		"TLSTrustedServerNames":        names,
		"PayloadCertificateAnchorUUID": []any{caUUID},
		"TTLSInnerAuthentication":      w.TTLSInner,
	}
	if w.UserName != "" {
		eap["UserName"] = w.UserName
	}
	if w.Password != "" {
		eap["UserPassword"] = w.Password
	}
	if w.OuterIdentity != "" {
		eap["OuterIdentity"] = w.OuterIdentity
	}
	var idPayload dict
	if len(w.Identity) > 0 {
		idUUID := newUUID()
		eap["PayloadCertificateUUID"] = idUUID
		name := w.IdentityName
		if name == "" {
			name = "WiFi certificate"
		}
		idPayload = dict{
			"PayloadType":                "com.apple.security.pkcs12",
			"PayloadVersion":             1,
			"PayloadIdentifier":          w.Identifier + ".identity",
			"PayloadUUID":                idUUID,
			"PayloadDisplayName":         name,
			"PayloadCertificateFileName": "wifi-identity.p12",
			"PayloadContent":             w.Identity,
		}
	}
	ca := dict{
		"PayloadType":                "com.apple.security.root",
		"PayloadVersion":             1,
		"PayloadIdentifier":          w.Identifier + ".ca",
		"PayloadUUID":                caUUID,
		"PayloadDisplayName":         w.CA.Subject.CommonName,
		"PayloadCertificateFileName": "deskgate-ca.cer",
		"PayloadContent":             w.CA.Raw,
	}
	wifi := dict{
		"PayloadType":            "com.apple.wifi.managed",
		"PayloadVersion":         1,
		"PayloadIdentifier":      w.Identifier + ".wifi",
		"PayloadUUID":            wifiUUID,
		"PayloadDisplayName":     w.DisplayName,
		"SSID_STR":               w.SSID,
		"HIDDEN_NETWORK":         false,
		"AutoJoin":               true,
		"EncryptionType":         "WPA2",
		"EAPClientConfiguration": eap,
	}
	root := dict{
		"PayloadType":        "Configuration",
		"PayloadVersion":     1,
		"PayloadIdentifier":  w.Identifier,
		"PayloadUUID":        profUUID,
		"PayloadDisplayName": w.DisplayName,
		"PayloadContent":     []any{ca, wifi},
	}
	if idPayload != nil {
		root["PayloadContent"] = []any{ca, idPayload, wifi}
	}
	if w.Organization != "" {
		root["PayloadOrganization"] = w.Organization
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	b.WriteString(`<plist version="1.0">` + "\n")
	if err := encode(&b, root, 0); err != nil {
		return nil, err
	}
	b.WriteString("</plist>\n")
	return b.Bytes(), nil
}

type dict map[string]any

func encode(b *bytes.Buffer, v any, depth int) error {
	ind := strings.Repeat("\t", depth)
	switch x := v.(type) {
	case dict:
		b.WriteString(ind + "<dict>\n")
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b.WriteString(ind + "\t<key>")
			xml.EscapeText(b, []byte(k))
			b.WriteString("</key>\n")
			if err := encode(b, x[k], depth+1); err != nil {
				return err
			}
		}
		b.WriteString(ind + "</dict>\n")
	case []any:
		b.WriteString(ind + "<array>\n")
		for _, e := range x {
			if err := encode(b, e, depth+1); err != nil {
				return err
			}
		}
		b.WriteString(ind + "</array>\n")
	case string:
		b.WriteString(ind + "<string>")
		xml.EscapeText(b, []byte(x))
		b.WriteString("</string>\n")
	case int:
		fmt.Fprintf(b, "%s<integer>%d</integer>\n", ind, x)
	case bool:
		if x {
			b.WriteString(ind + "<true/>\n")
		} else {
			b.WriteString(ind + "<false/>\n")
		}
	case []byte:
		b.WriteString(ind + "<data>" + base64.StdEncoding.EncodeToString(x) + "</data>\n")
	default:
		return fmt.Errorf("profile: encode: unsupported value %T", v)
	}
	return nil
}

func newUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}
