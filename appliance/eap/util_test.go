package eap

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"regexp"
	"strconv"
)

func parsePEMCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	return x509.ParseCertificate(blk.Bytes)
}

var eapLenRe = regexp.MustCompile(`decapsulated EAP packet \(code=\d+ id=\d+ len=(\d+)\)`)

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func maxLen(ms [][]string) int {
	n := 0
	for _, m := range ms {
		n = max(n, atoi(m[1]))
	}
	return n
}

var tlsVersionRe = regexp.MustCompile(`SSL: Using TLS version (TLSv1\.\d)`)

// tlsVersion is the TLS version eapol_test's last handshake negotiated (it also prints the version it
// starts with, before the server answers).
func tlsVersion(out string) string {
	m := tlsVersionRe.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1][1]
}
