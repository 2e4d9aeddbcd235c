//go:build cgo && openssl

package rsasign

import (
	"strings"
	"testing"
)

// In the shipped build an RSA key signs through OpenSSL, not crypto/rsa.
func TestOpenSSLBackend(t *testing.T) {
	if b := Backend(); !strings.HasPrefix(b, "openssl (OpenSSL 3") {
		t.Errorf("Backend() = %q, want OpenSSL 3", b)
	}
	if _, ok := wrapped(t).(*signer); !ok {
		t.Errorf("Wrap(RSA key) = %T, want the OpenSSL signer", wrapped(t))
	}
}
