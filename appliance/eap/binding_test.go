package eap

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/deskgate/deskgate/appliance/creds"
)

// TestMSCHAPv1Vector: the NT-Response of RFC 2433 appendix B.2 verifies from the NT hash, a changed
// challenge or hash does not.
func TestMSCHAPv1Vector(t *testing.T) {
	h := func(s string) []byte { b, _ := hex.DecodeString(s); return b }
	hash := creds.NTHash("MyPw")
	if !bytes.Equal(hash, h("FC156AF7EDCD6C0EDDE3337D427F4EAC")) {
		t.Fatalf("NT hash %X", hash)
	}
	ch, resp := h("102DB5DF085D3041"), h("4E9D3C8F9CFD385D5BF4D3246791956CA4C351AB409A3D61")
	if !verifyMSCHAPv1(ch, resp, hash) {
		t.Fatal("RFC 2433 NT-Response does not verify")
	}
	if verifyMSCHAPv1(h("102DB5DF085D3042"), resp, hash) || verifyMSCHAPv1(ch, resp, creds.NTHash("MyPW")) {
		t.Fatal("NT-Response verifies with another challenge or password")
	}
}

// TestCryptoBindingVerify: a peer's Crypto-Binding response verifies only with our nonce and a compound
// MAC made with the same CMK; any changed byte is refused.
func TestCryptoBindingVerify(t *testing.T) {
	tk := bytes.Repeat([]byte{7}, 60)
	cb, err := newCryptoBinding(tk, bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	respond := func(cmk []byte) []byte {
		b := cb.request()
		b[7] = 1   // SubType response
		b[39] |= 1 // response nonce: least significant bit set
		peer := &cryptoBinding{cmk: cmk}
		copy(b[40:], peer.mac(b))
		return b
	}
	if err := cb.verify(respond(cb.cmk)); err != nil {
		t.Fatalf("valid response refused: %v", err)
	}
	other, _ := newCryptoBinding(tk, make([]byte, 32)) // same tunnel, another inner key
	if err := cb.verify(respond(other.cmk)); err == nil {
		t.Fatal("response with another inner method's CMK accepted")
	}
	good := respond(cb.cmk)
	for _, i := range []int{5, 7, 8, 38, 45} {
		b := append([]byte(nil), good...)
		b[i] ^= 0x10
		if err := cb.verify(b); err == nil {
			t.Fatalf("response with byte %d changed accepted", i)
		}
	}
	if bytes.Equal(cb.msk(), other.msk()) || len(cb.msk()) != 64 {
		t.Fatal("compound MSK does not depend on the inner key")
	}
}
