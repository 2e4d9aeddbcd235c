// Package creds owns how WiFi credentials are made: usernames by the
// configured format (with deterministic collision suffixes), generated
// passwords that are easy to type and read aloud, the NT hash deskgate
// stores instead of any plaintext, single-use onboarding tokens, and the
// strength check for member-chosen passwords.
//
// It is pure apart from crypto/rand and imports only the standard library,
// golang.org/x/crypto/md4 and appliance/model.
package creds

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"unicode"
	"unicode/utf16"

	//lint:ignore SA1019 MD4 is what MS-CHAPv2 and the NT hash are defined over.
	"golang.org/x/crypto/md4"

	"github.com/deskgate/deskgate/appliance/model"
)

// Alphabet is the generated-password alphabet: lower-case letters and
// digits without the look-alikes 0/o, 1/l/i. 31 symbols ≈ 4.95 bits each.
const Alphabet = "abcdefghjkmnpqrstuvwxyz23456789"

// MinGeneratedLength is the shortest generated password giving ≥ 64 bits.
var MinGeneratedLength = int(math.Ceil(64 / math.Log2(float64(len(Alphabet)))))

// GeneratePassword returns a random password of n symbols from Alphabet,
// grouped in fours with dashes for readability ("k7mq-x3vh-…"). The dashes
// are part of the password (they are easy to type on a phone keyboard).
func GeneratePassword(n int) (string, error) {
	if n < MinGeneratedLength {
		return "", fmt.Errorf("generate password: length %d gives fewer than 64 bits (need %d)", n, MinGeneratedLength)
	}
	var b strings.Builder
	max := big.NewInt(int64(len(Alphabet)))
	for i := 0; i < n; i++ {
		if i > 0 && i%4 == 0 {
			b.WriteByte('-')
		}
		k, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("generate password: %w", err)
		}
		b.WriteByte(Alphabet[k.Int64()])
	}
	return b.String(), nil
}

// DerivePassword returns the password of memberID at generation gen
// derived from key (a fleet's secret): n symbols of Alphabet, grouped like
// GeneratePassword's. Every box holding key computes the same password, so
// a fleet needs no round trip to agree on it. Symbols come from an
// HMAC-SHA256 counter stream with rejection sampling (no modulo bias).
func DerivePassword(key []byte, memberID string, gen, n int) (string, error) {
	if n < MinGeneratedLength {
		return "", fmt.Errorf("derive password: length %d gives fewer than 64 bits (need %d)", n, MinGeneratedLength)
	}
	if len(key) < 32 || memberID == "" || gen < 0 {
		return "", errors.New("derive password: need a 32-byte key, a member id and a generation ≥ 0")
	}
	limit := byte(256 - 256%len(Alphabet)) // bytes ≥ limit are rejected
	var b strings.Builder
	count := 0
	for block := uint32(0); count < n; block++ {
		mac := hmac.New(sha256.New, key)
		var hdr [8]byte
		binary.BigEndian.PutUint32(hdr[:4], uint32(gen))
		binary.BigEndian.PutUint32(hdr[4:], block)
		mac.Write([]byte("deskgate wifi password v1\x00"))
		mac.Write([]byte(memberID))
		mac.Write([]byte{0})
		mac.Write(hdr[:])
		for _, c := range mac.Sum(nil) {
			if c >= limit || count == n {
				continue
			}
			if count > 0 && count%4 == 0 {
				b.WriteByte('-')
			}
			b.WriteByte(Alphabet[int(c)%len(Alphabet)])
			count++
		}
	}
	return b.String(), nil
}

// EntropyBits returns the entropy of a generated password of n symbols.
func EntropyBits(n int) float64 { return float64(n) * math.Log2(float64(len(Alphabet))) }

// NTHash returns MD4(UTF-16LE(password)), the hash MS-CHAPv2 works from.
func NTHash(password string) []byte {
	u := utf16.Encode([]rune(password))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	h := md4.New()
	h.Write(b)
	return h.Sum(nil)
}

// VerifyPassword checks a cleartext password (PAP) against an NT hash in
// constant time.
func VerifyPassword(ntHash []byte, password string) bool {
	if len(ntHash) != 16 {
		return false
	}
	return subtle.ConstantTimeCompare(ntHash, NTHash(password)) == 1
}

// NewToken returns a URL-safe random token (256 bits) and its SHA-256,
// which is what gets stored.
func NewToken() (token string, hash []byte, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, fmt.Errorf("new token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token), nil
}

// HashToken returns the stored form of a token.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Fingerprint returns an HMAC of a value under key: enough to notice that a
// member property changed without storing it.
func Fingerprint(key []byte, value string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(value))
	return m.Sum(nil)
}

// ErrWeakPassword is returned by CheckStrength; its message says why.
var ErrWeakPassword = errors.New("password too weak")

// CheckStrength enforces the member-defined password policy: at least 10
// characters, not all one character class unless 16 or longer, not a
// well-known password, and not containing the username or email local part.
func CheckStrength(password, username string) error {
	n := len([]rune(password))
	if n < 10 {
		return fmt.Errorf("%w: use at least 10 characters", ErrWeakPassword)
	}
	if n > 128 {
		return fmt.Errorf("%w: use at most 128 characters", ErrWeakPassword)
	}
	var lower, upper, digit, other bool
	for _, r := range password {
		switch {
		case unicode.IsLower(r):
			lower = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsDigit(r):
			digit = true
		default:
			other = true
		}
	}
	classes := 0
	for _, c := range []bool{lower, upper, digit, other} {
		if c {
			classes++
		}
	}
	if classes < 2 && n < 16 {
		return fmt.Errorf("%w: mix letters with digits or symbols, or use 16 or more characters", ErrWeakPassword)
	}
	pl := strings.ToLower(password)
	for _, common := range commonPasswords {
		if strings.Contains(pl, common) && n-len(common) < 6 {
			return fmt.Errorf("%w: it is built on a common password", ErrWeakPassword)
		}
	}
	if u := strings.ToLower(username); u != "" {
		local, _, _ := strings.Cut(u, "@")
		if len(local) >= 4 && strings.Contains(pl, local) {
			return fmt.Errorf("%w: do not include your username", ErrWeakPassword)
		}
	}
	return nil
}

var commonPasswords = []string{
	"password", "123456", "12345678", "qwerty", "letmein", "welcome", "iloveyou",
	"admin", "abc123", "football", "monkey", "dragon", "coworking", "wifi", "internet",
}

// Username formats.
const (
	FormatEmail    = "email"
	FormatMemberID = "member_id"
)

// Placeholders a username template may use.
var Placeholders = []string{"{first}", "{last}", "{email_local}", "{id}"}

// Username derives the base username for m by format: "email",
// "member_id", or a template such as "{first}.{last}". The result is lower
// case, without spaces or characters outside [a-z0-9._@+-]. It returns ""
// when the member lacks what the format needs (e.g. no email).
func Username(format string, m model.Member) string {
	switch format {
	case "", FormatEmail:
		return clean(m.Email, true)
	case FormatMemberID:
		return clean(m.ID, false)
	}
	first, last := splitName(m.Name)
	local, _, _ := strings.Cut(m.Email, "@")
	r := strings.NewReplacer("{first}", first, "{last}", last, "{email_local}", local, "{id}", m.ID)
	u := clean(r.Replace(format), true)
	u = strings.Trim(u, ".-_")
	return u
}

// WithSuffix returns base disambiguated for member id at attempt n (n ≥ 1):
// a suffix from the member id, longer on each attempt, so the same member
// always gets the same username whatever order members arrive in.
func WithSuffix(base, memberID string, n int) string {
	id := strings.ToLower(memberID)
	k := 3 + n
	if k > len(id) {
		k = len(id)
	}
	suffix := id[len(id)-k:]
	if at := strings.IndexByte(base, '@'); at >= 0 {
		return base[:at] + "+" + suffix + base[at:]
	}
	return base + "-" + suffix
}

func splitName(name string) (first, last string) {
	f := strings.Fields(name)
	switch len(f) {
	case 0:
		return "", ""
	case 1:
		return f[0], ""
	}
	return f[0], f[len(f)-1]
}

func clean(s string, allowAt bool) string {
	s = strings.ToLower(strings.TrimSpace(s))
	var b strings.Builder
	for _, r := range s {
		r = fold(r)
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '-', r == '_', r == '+':
			b.WriteRune(r)
		case r == '@' && allowAt:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// fold maps common accented Latin letters to ASCII so "José Núñez" becomes
// "jose.nunez".
func fold(r rune) rune {
	if r < 0x80 {
		return r
	}
	const from = "àáâãäåçèéêëìíîïñòóôõöøùúûüýÿ"
	const to = "aaaaaaceeeeiiiinoooooouuuuyy"
	fr := []rune(from)
	for i, c := range fr {
		if c == r {
			return rune(to[i])
		}
	}
	return -1
}
