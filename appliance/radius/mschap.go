package radius

import (
	"crypto/des"
	"crypto/sha1"

	//lint:ignore SA1019 MS-CHAPv2 is defined on MD4 (RFC 2759)
	"golang.org/x/crypto/md4"
)

// MS-CHAPv2 (RFC 2759) and MPPE key derivation (RFC 3079) from the stored
// NT hash; the plaintext password is never needed.

var (
	magic1 = []byte("Magic server to client signing constant")
	magic2 = []byte("Pad to make it do more than one iteration")
	// RFC 3079 3.4 magic constants.
	mppeMagic1 = []byte("This is the MPPE Master Key")
	mppeMagic2 = []byte("On the client side, this is the send key; on the server side, it is the receive key.")
	mppeMagic3 = []byte("On the client side, this is the receive key; on the server side, it is the send key.")
	shsPad1    = make([]byte, 40)
	shsPad2    = func() []byte {
		b := make([]byte, 40)
		for i := range b {
			b[i] = 0xf2
		}
		return b
	}()
)

// challengeHash is RFC 2759 8.2.
func challengeHash(peerChallenge, authChallenge, user []byte) [8]byte {
	h := sha1.New()
	h.Write(peerChallenge)
	h.Write(authChallenge)
	h.Write(user)
	var sum [20]byte
	return [8]byte(h.Sum(sum[:0]))
}

// mschapNTResponse is RFC 2759 8.1 GenerateNTResponse with the hash given.
func mschapNTResponse(authChallenge, peerChallenge, user, ntHash []byte) [24]byte {
	ch := challengeHash(peerChallenge, authChallenge, user)
	var z [21]byte
	copy(z[:], ntHash)
	var out [24]byte
	for i := range 3 {
		desEncrypt(out[i*8:i*8+8], z[i*7:i*7+7], ch[:])
	}
	return out
}

// desEncrypt encrypts one block with a 56-bit key spread over 8 bytes
// (RFC 2759 8.6 DesEncrypt).
func desEncrypt(dst, key7, block []byte) {
	var k [8]byte
	k[0] = key7[0]
	k[1] = key7[0]<<7 | key7[1]>>1
	k[2] = key7[1]<<6 | key7[2]>>2
	k[3] = key7[2]<<5 | key7[3]>>3
	k[4] = key7[3]<<4 | key7[4]>>4
	k[5] = key7[4]<<3 | key7[5]>>5
	k[6] = key7[5]<<2 | key7[6]>>6
	k[7] = key7[6] << 1
	c, err := des.NewCipher(k[:])
	if err != nil {
		panic(err) // an 8-byte key never fails
	}
	c.Encrypt(dst, block)
}

func md4Sum(b []byte) []byte {
	h := md4.New()
	h.Write(b)
	return h.Sum(nil)
}

// mschapAuthenticatorResponse is RFC 2759 8.7: "S=" and 40 hex digits.
func mschapAuthenticatorResponse(ntHash, ntResponse, peerChallenge, authChallenge, user []byte) []byte {
	hh := md4Sum(ntHash)
	h := sha1.New()
	h.Write(hh)
	h.Write(ntResponse)
	h.Write(magic1)
	digest := h.Sum(nil)
	ch := challengeHash(peerChallenge, authChallenge, user)
	h.Reset()
	h.Write(digest)
	h.Write(ch[:])
	h.Write(magic2)
	digest = h.Sum(digest[:0])
	out := make([]byte, 0, 42)
	out = append(out, 'S', '=')
	return appendHexUpper(out, digest)
}

// mppeKeys derives the server's 128-bit MPPE send and receive keys (RFC
// 3079 3.4), as carried in MS-MPPE-Send-Key and MS-MPPE-Recv-Key.
func mppeKeys(ntHash, ntResponse []byte) (send, recv [16]byte) {
	hh := md4Sum(ntHash)
	h := sha1.New()
	h.Write(hh)
	h.Write(ntResponse)
	h.Write(mppeMagic1)
	master := h.Sum(nil)[:16]
	derive := func(magic []byte) [16]byte {
		h.Reset()
		h.Write(master)
		h.Write(shsPad1)
		h.Write(magic)
		h.Write(shsPad2)
		var sum [20]byte
		return [16]byte(h.Sum(sum[:0]))
	}
	return derive(mppeMagic3), derive(mppeMagic2)
}
