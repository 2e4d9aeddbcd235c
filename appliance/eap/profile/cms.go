package profile

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"math/big"
	"sort"
	"time"
)

// A minimal CMS SignedData (RFC 5652) producer: one signer, SHA-256, content embedded, signed attributes
// contentType, signingTime and messageDigest — what iOS and macOS accept for signed profiles.

var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSigningTime   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	oidSHA256        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidECDSASHA256   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidRSASHA256     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
)

// tlv encodes one DER element with the given identifier octet.
func tlv(tag byte, parts ...[]byte) []byte {
	content := bytes.Join(parts, nil)
	n := len(content)
	var l []byte
	switch {
	case n < 0x80:
		l = []byte{byte(n)}
	case n < 0x100:
		l = []byte{0x81, byte(n)}
	case n < 0x10000:
		l = []byte{0x82, byte(n >> 8), byte(n)}
	default:
		l = []byte{0x83, byte(n >> 16), byte(n >> 8), byte(n)}
	}
	return append(append([]byte{tag}, l...), content...)
}

func mustMarshal(v any) []byte {
	b, err := asn1.Marshal(v)
	if err != nil {
		panic(err) // only fixed OIDs, integers and times are marshalled here
	}
	return b
}

func algID(oid asn1.ObjectIdentifier, nullParams bool) []byte {
	if nullParams {
		return tlv(0x30, mustMarshal(oid), []byte{0x05, 0x00})
	}
	return tlv(0x30, mustMarshal(oid))
}

// derSet encodes a SET OF with its elements sorted as DER requires.
func derSet(tag byte, elems ...[]byte) []byte {
	sorted := append([][]byte(nil), elems...)
	sort.Slice(sorted, func(i, j int) bool { return bytes.Compare(sorted[i], sorted[j]) < 0 })
	return tlv(tag, sorted...)
}

func signCMS(content []byte, s *Signer) ([]byte, error) {
	if s.Certificate == nil || s.Key == nil {
		return nil, errors.New("signer needs a certificate and a key")
	}
	digest := sha256.Sum256(content)
	var sigAlg []byte
	switch s.Key.Public().(type) {
	case *ecdsa.PublicKey:
		sigAlg = algID(oidECDSASHA256, false)
	case *rsa.PublicKey:
		sigAlg = algID(oidRSASHA256, true)
	default:
		return nil, errors.New("signer key must be ECDSA or RSA")
	}
	now := s.Now
	if now == nil {
		now = time.Now
	}
	attr := func(oid asn1.ObjectIdentifier, value []byte) []byte {
		return tlv(0x30, mustMarshal(oid), tlv(0x31, value))
	}
	attrs := [][]byte{
		attr(oidContentType, mustMarshal(oidData)),
		attr(oidSigningTime, mustMarshal(now().UTC().Truncate(time.Second))),
		attr(oidMessageDigest, tlv(0x04, digest[:])),
	}
	signedAttrs := derSet(0x31, attrs...) // signed as a SET
	h := sha256.Sum256(signedAttrs)
	sig, err := s.Key.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	sid := tlv(0x30, s.Certificate.RawIssuer, mustMarshal(new(big.Int).Set(s.Certificate.SerialNumber)))
	signerInfo := tlv(0x30,
		mustMarshal(1),
		sid,
		algID(oidSHA256, false),
		derSet(0xa0, attrs...), // [0] IMPLICIT
		sigAlg,
		tlv(0x04, sig),
	)
	certs := [][]byte{s.Certificate.Raw}
	for _, c := range s.Chain {
		certs = append(certs, c.Raw)
	}
	signedData := tlv(0x30,
		mustMarshal(1),
		tlv(0x31, algID(oidSHA256, false)),
		tlv(0x30, mustMarshal(oidData), tlv(0xa0, tlv(0x04, content))),
		tlv(0xa0, certs...),
		tlv(0x31, signerInfo),
	)
	return tlv(0x30, mustMarshal(oidSignedData), tlv(0xa0, signedData)), nil
}
