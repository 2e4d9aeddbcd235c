// Package rsasign owns the RSA private-key operation of deskgate's EAP
// server: the one signature per full TLS handshake (ServerKeyExchange in
// TLS 1.2, CertificateVerify in TLS 1.3) that a server with an RSA
// certificate makes.
//
// Built with cgo and the openssl build tag (as the Makefile, the image
// and the benchmarks build deskgated: scripts/gobuild.sh), Wrap hands
// crypto/tls a crypto.Signer that signs through OpenSSL's libcrypto,
// linked statically. Go's constant-time RSA-2048 signature costs about
// three times OpenSSL's on the boxes' x86-64 CPUs (0.87 ms against 0.27 ms
// on the test machine), and with an RSA certificate that signature is most
// of a full PEAP login's server CPU. Everything else in the handshake
// stays in crypto/tls. Without the tag, Wrap returns the key unchanged.
//
// The OpenSSL signer keeps the key in libcrypto's memory (freed when the
// signer is collected), uses OpenSSL's blinding and its check of every
// CRT result against the public key, and never reads openssl.cnf or loads
// providers from disk.
package rsasign
