//go:build !(cgo && openssl)

package rsasign

import "crypto"

// Wrap returns key unchanged: this build signs with Go's crypto/rsa.
func Wrap(key crypto.PrivateKey) (crypto.PrivateKey, error) { return key, nil }

// Backend names what signs with RSA keys in this build.
func Backend() string { return "go" }
