package guests

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Alphabet holds the code characters: digits and uppercase letters without
// the look-alikes 0, O, 1, I and L.
const Alphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

// CodeLen is the number of code characters (log2(31)*9 = 44.6 bits); a
// code prints as three groups of three.
const CodeLen = 9

// newCode returns a fresh random code in its normalised form.
func newCode() (string, error) {
	var out [CodeLen]byte
	var buf [32]byte
	n := 0
	limit := byte(256 - 256%len(Alphabet)) // rejection sampling: no modulo bias
	for n < CodeLen {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", fmt.Errorf("generate code: %w", err)
		}
		for _, b := range buf {
			if b >= limit {
				continue
			}
			out[n] = Alphabet[int(b)%len(Alphabet)]
			if n++; n == CodeLen {
				break
			}
		}
	}
	return string(out[:]), nil
}

// FormatCode groups a normalised code for reading aloud: "K7M-QX3-VH9".
func FormatCode(norm string) string {
	var b strings.Builder
	for i, r := range norm {
		if i > 0 && i%3 == 0 {
			b.WriteByte('-')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// NormalizeCode turns what a guest typed into the normalised code: case,
// spaces, dashes, dots and underscores do not matter. ok is false when the
// result cannot be a code (wrong length or a character outside Alphabet).
func NormalizeCode(in string) (norm string, ok bool) {
	var b strings.Builder
	for _, r := range strings.ToUpper(in) {
		switch r {
		case ' ', '-', '.', '_', '\t', '\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2212':
			continue
		}
		if r > 127 || strings.IndexByte(Alphabet, byte(r)) < 0 {
			return "", false
		}
		b.WriteRune(r)
	}
	if b.Len() != CodeLen {
		return "", false
	}
	return b.String(), true
}

// Hash versions of a code record (codeRecord.HashV).
const (
	// hashLegacy is the unkeyed hex SHA-256 of the normalised code that
	// deskgate wrote before codes were keyed. Such records are still
	// accepted until they end, and re-keyed as soon as the plaintext is
	// at hand (at startup from the sealed copy, or at the first login).
	hashLegacy = 0
	// hashKeyed is hex HMAC-SHA256 of the normalised code under
	// Config.CodeKey: without the key file a copy of the database cannot
	// test a single guess.
	hashKeyed = 1
)

// codeHasher computes the stored key of a normalised code.
type codeHasher struct{ key []byte }

// hash returns the keyed hash (hashKeyed) of a normalised code.
func (h codeHasher) hash(norm string) string {
	mac := hmac.New(sha256.New, h.key)
	mac.Write([]byte("deskgate guest code v1\x00"))
	mac.Write([]byte(norm))
	return hex.EncodeToString(mac.Sum(nil))
}

// legacyHash is the unkeyed hash (hashLegacy) of a normalised code; it is
// only ever looked up, never written.
func legacyHash(norm string) string {
	h := sha256.Sum256([]byte(norm))
	return hex.EncodeToString(h[:])
}

// hint is the short, log-safe name of a code: the first 8 hex digits of its
// stored hash (keyed, so it says nothing about the code without the key).
func hint(hash string) string {
	if len(hash) < 8 {
		return hash
	}
	return hash[:8]
}

// sealer keeps code plaintexts for re-delivery, bound to the code hash.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (sealer, bool, error) {
	ephemeral := false
	if len(key) != 32 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return sealer{}, false, fmt.Errorf("seal key: %w", err)
		}
		ephemeral = true
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return sealer{}, false, fmt.Errorf("seal key: %w", err)
	}
	aead, err := cipher.NewGCM(blk)
	if err != nil {
		return sealer{}, false, fmt.Errorf("seal key: %w", err)
	}
	return sealer{aead}, ephemeral, nil
}

func (s sealer) seal(code, hash string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal code: %w", err)
	}
	return s.aead.Seal(nonce, nonce, []byte(code), []byte(hash)), nil
}

func (s sealer) open(sealed []byte, hash string) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return "", fmt.Errorf("open code %s: short", hint(hash))
	}
	p, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(hash))
	if err != nil {
		return "", fmt.Errorf("open code %s: %w", hint(hash), err)
	}
	return string(p), nil
}
