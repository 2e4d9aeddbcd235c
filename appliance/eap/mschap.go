package eap

import (
	"bytes"
	"crypto/des"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"strings"

	"golang.org/x/crypto/md4" //lint:ignore SA1019 MS-CHAPv2 (RFC 2759) is defined on MD4
)

// MS-CHAPv2 (RFC 2759) computed from the NT hash, which is all deskgate stores.

// mschapUser strips a "DOMAIN\" prefix, as RFC 2759's UserName is the name without the domain.
func mschapUser(name string) string {
	if i := strings.LastIndexByte(name, '\\'); i >= 0 {
		return name[i+1:]
	}
	return name
}

func challengeHash(peerChallenge, authChallenge []byte, user string) []byte {
	h := sha1.New()
	h.Write(peerChallenge)
	h.Write(authChallenge)
	h.Write([]byte(mschapUser(user)))
	return h.Sum(nil)[:8]
}

// desKey expands 7 key bytes to a DES key (parity bits left zero; DES ignores them).
func desKey(k []byte) []byte {
	return []byte{
		k[0] & 0xfe,
		(k[0]<<7 | k[1]>>1) & 0xfe,
		(k[1]<<6 | k[2]>>2) & 0xfe,
		(k[2]<<5 | k[3]>>3) & 0xfe,
		(k[3]<<4 | k[4]>>4) & 0xfe,
		(k[4]<<3 | k[5]>>5) & 0xfe,
		(k[5]<<2 | k[6]>>6) & 0xfe,
		k[6] << 1,
	}
}

// ntResponse computes the 24-byte NT-Response from the NT hash (RFC 2759 GenerateNTResponse).
func ntResponse(authChallenge, peerChallenge []byte, user string, ntHash []byte) []byte {
	return challengeResponse(challengeHash(peerChallenge, authChallenge, user), ntHash)
}

// challengeResponse encrypts an 8-byte challenge with the NT hash (RFC 2759 ChallengeResponse; for
// MS-CHAPv1, RFC 2433 NtChallengeResponse, the challenge is the authenticator's own).
func challengeResponse(challenge, ntHash []byte) []byte {
	var z [21]byte
	copy(z[:], ntHash)
	out := make([]byte, 24)
	for i := 0; i < 3; i++ {
		c, _ := des.NewCipher(desKey(z[7*i : 7*i+7])) // 8-byte key never fails
		c.Encrypt(out[8*i:8*i+8], challenge)
	}
	return out
}

// verifyMSCHAPv1 checks an MS-CHAPv1 NT-Response (RFC 2433) against the 8-byte challenge.
func verifyMSCHAPv1(challenge, ntResp, ntHash []byte) bool {
	return subtle.ConstantTimeCompare(challengeResponse(challenge, ntHash), ntResp) == 1
}

var (
	magic1 = []byte("Magic server to client signing constant")
	magic2 = []byte("Pad to make it do more than one iteration")
)

// authenticatorResponse computes "S=<40 hex>" (RFC 2759 GenerateAuthenticatorResponse).
func authenticatorResponse(authChallenge, peerChallenge, ntResp []byte, user string, ntHash []byte) string {
	h := md4.New()
	h.Write(ntHash)
	hh := h.Sum(nil)
	d := sha1.New()
	d.Write(hh)
	d.Write(ntResp)
	d.Write(magic1)
	digest := d.Sum(nil)
	d = sha1.New()
	d.Write(digest)
	d.Write(challengeHash(peerChallenge, authChallenge, user))
	d.Write(magic2)
	return "S=" + strings.ToUpper(hex.EncodeToString(d.Sum(nil)))
}

// mschapv2MSK is the key EAP-MSCHAPv2 exports (RFC 3079 section 3.4): the peer's send key, then its
// receive key, 16 bytes each. PEAP's crypto binding uses it as the inner session key (ISK).
func mschapv2MSK(ntHash, ntResp []byte) []byte {
	h := md4.New()
	h.Write(ntHash)
	d := sha1.New()
	d.Write(h.Sum(nil))
	d.Write(ntResp)
	d.Write([]byte("This is the MPPE Master Key"))
	master := d.Sum(nil)[:16]
	half := func(magic string) []byte {
		d := sha1.New()
		d.Write(master)
		d.Write(make([]byte, 40))
		d.Write([]byte(magic))
		d.Write(bytes.Repeat([]byte{0xf2}, 40))
		return d.Sum(nil)[:16]
	}
	return append(half("On the client side, this is the send key; on the server side, it is the receive key."),
		half("On the client side, this is the receive key; on the server side, it is the send key.")...)
}

// peapPRF is PEAPv0's PRF+ (MS-PEAP 3.1.5.5.2.2): T(i) = HMAC-SHA1(key, T(i-1) | label | seed | i | 0 | 0).
func peapPRF(key []byte, label string, seed []byte, n int) []byte {
	// One HMAC reset per block and one input buffer, rather than a new HMAC (and its allocations) per
	// 20-byte block.
	out := make([]byte, 0, n+sha1.Size)
	in := make([]byte, 0, sha1.Size+len(label)+len(seed)+3)
	m := hmac.New(sha1.New, key)
	var t []byte
	for i := byte(1); len(out) < n; i++ {
		in = append(append(append(append(in[:0], t...), label...), seed...), i, 0, 0)
		m.Reset()
		m.Write(in)
		out = m.Sum(out)
		t = out[len(out)-sha1.Size:]
	}
	return out[:n]
}

// verifyMSCHAPv2 checks an NT-Response and returns the authenticator response on success.
func verifyMSCHAPv2(authChallenge, peerChallenge, ntResp []byte, user string, ntHash []byte) (string, bool) {
	want := ntResponse(authChallenge, peerChallenge, user, ntHash)
	if subtle.ConstantTimeCompare(want, ntResp) != 1 {
		return "", false
	}
	return authenticatorResponse(authChallenge, peerChallenge, ntResp, user, ntHash), true
}
