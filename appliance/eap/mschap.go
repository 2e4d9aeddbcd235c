package eap

import (
	"crypto/des"
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
	ch := challengeHash(peerChallenge, authChallenge, user)
	var z [21]byte
	copy(z[:], ntHash)
	out := make([]byte, 24)
	for i := 0; i < 3; i++ {
		c, _ := des.NewCipher(desKey(z[7*i : 7*i+7])) // 8-byte key never fails
		c.Encrypt(out[8*i:8*i+8], ch)
	}
	return out
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

// verifyMSCHAPv2 checks an NT-Response and returns the authenticator response on success.
func verifyMSCHAPv2(authChallenge, peerChallenge, ntResp []byte, user string, ntHash []byte) (string, bool) {
	want := ntResponse(authChallenge, peerChallenge, user, ntHash)
	if subtle.ConstantTimeCompare(want, ntResp) != 1 {
		return "", false
	}
	return authenticatorResponse(authChallenge, peerChallenge, ntResp, user, ntHash), true
}
