package radius

import (
	"bytes"
	"crypto/des"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"github.com/deskgate/deskgate/appliance/creds"
	"strings"
	"testing"
	"time"

	//lint:ignore SA1019 MS-CHAPv2 is defined on MD4 (RFC 2759)
	"golang.org/x/crypto/md4"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/vendors/microsoft"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// TestMSCHAPv2Vectors checks the server's MS-CHAPv2 and MPPE code against
// the published vectors of RFC 2759 9.2 and RFC 3079 3.5.3.
func TestMSCHAPv2Vectors(t *testing.T) {
	t.Parallel()
	user := []byte("User")
	nt := creds.NTHash("clientPass")
	if want := unhex("44EBBA8D5312B8D611474411F56989AE"); !bytes.Equal(nt, want) {
		t.Fatalf("NTHash = %X, want %X", nt, want)
	}
	authChal := unhex("5B5D7C7D7B3F2F3E3C2C602132262628")
	peerChal := unhex("21402324255E262A28295F2B3A337C7E")
	if got := challengeHash(peerChal, authChal, user); !bytes.Equal(got[:], unhex("D02E4386BCE91226")) {
		t.Errorf("ChallengeHash = %X", got)
	}
	resp := mschapNTResponse(authChal, peerChal, user, nt)
	wantResp := unhex("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
	if !bytes.Equal(resp[:], wantResp) {
		t.Errorf("NT-Response = %X, want %X", resp, wantResp)
	}
	if got := string(mschapAuthenticatorResponse(nt, wantResp, peerChal, authChal, user)); got != "S=407A5589115FD0D6209F510FE9C04566932CDA56" {
		t.Errorf("AuthenticatorResponse = %s", got)
	}
	send, _ := mppeKeys(nt, wantResp)
	if want := unhex("8B7CDC149B993A1BA118CB153F56DCCB"); !bytes.Equal(send[:], want) {
		t.Errorf("server send key = %X, want %X (RFC 3079 SendStartKey128)", send, want)
	}
}

// Client side of MS-CHAPv2, written for the test from RFC 2759 (layeh's
// rfc2759 needs golang.org/x/text, which go.mod does not carry).
type mschapClient struct {
	user, password string
	authChal       [16]byte
	peerChal       [16]byte
}

func (c *mschapClient) pwHash() []byte {
	var u []byte
	for _, r := range c.password {
		u = append(u, byte(r), byte(r>>8))
	}
	h := md4.New()
	h.Write(u)
	return h.Sum(nil)
}

func (c *mschapClient) challenge() []byte {
	h := sha1.New()
	h.Write(c.peerChal[:])
	h.Write(c.authChal[:])
	h.Write([]byte(c.user))
	return h.Sum(nil)[:8]
}

func expandDESKey(k7 []byte) []byte {
	// Take 7 bits at a time from the 56-bit key, each into the top of a byte.
	bits := func(i int) byte { return (k7[i/8] >> (7 - uint(i%8))) & 1 }
	out := make([]byte, 8)
	for i := 0; i < 8; i++ {
		var b byte
		for j := 0; j < 7; j++ {
			b = b<<1 | bits(i*7+j)
		}
		out[i] = b << 1
	}
	return out
}

func (c *mschapClient) ntResponse() []byte {
	z := make([]byte, 21)
	copy(z, c.pwHash())
	ch := c.challenge()
	var out []byte
	for i := 0; i < 3; i++ {
		blk, err := des.NewCipher(expandDESKey(z[i*7 : i*7+7]))
		if err != nil {
			panic(err)
		}
		b := make([]byte, 8)
		blk.Encrypt(b, ch)
		out = append(out, b...)
	}
	return out
}

func (c *mschapClient) expectedSuccess(ntResp []byte) string {
	h := md4.New()
	h.Write(c.pwHash())
	hh := h.Sum(nil)
	s := sha1.New()
	s.Write(hh)
	s.Write(ntResp)
	s.Write([]byte("Magic server to client signing constant"))
	d := s.Sum(nil)
	s = sha1.New()
	s.Write(d)
	s.Write(c.challenge())
	s.Write([]byte("Pad to make it do more than one iteration"))
	return "S=" + strings.ToUpper(hex.EncodeToString(s.Sum(nil)))
}

// mppeKey derives the client's view (RFC 3079 3.4): the server's send key
// is the client's receive key.
func (c *mschapClient) mppeKey(ntResp []byte, serverSend bool) []byte {
	h := md4.New()
	h.Write(c.pwHash())
	hh := h.Sum(nil)
	s := sha1.New()
	s.Write(hh)
	s.Write(ntResp)
	s.Write([]byte("This is the MPPE Master Key"))
	master := s.Sum(nil)[:16]
	magic := "On the client side, this is the send key; on the server side, it is the receive key."
	if serverSend {
		magic = "On the client side, this is the receive key; on the server side, it is the send key."
	}
	s = sha1.New()
	s.Write(master)
	s.Write(make([]byte, 40))
	s.Write([]byte(magic))
	s.Write(bytes.Repeat([]byte{0xf2}, 40))
	return s.Sum(nil)[:16]
}

func TestMSCHAPv2(t *testing.T) {
	t.Parallel()
	e := startServer(t, defaultClients(), nil)
	secret := []byte(testSecret)
	for _, tc := range []struct {
		name, password string
		accept         bool
	}{
		{"correct password", "correct horse", true},
		{"wrong password", "correct h0rse", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &mschapClient{user: "alice", password: tc.password}
			copy(c.authChal[:], "0123456789abcdef")
			copy(c.peerChal[:], "fedcba9876543210")
			ntResp := c.ntResponse()
			p := radius.New(radius.CodeAccessRequest, secret)
			_ = rfc2865.UserName_SetString(p, c.user)
			_ = microsoft.MSCHAPChallenge_Add(p, c.authChal[:])
			resp := make([]byte, 50)
			resp[0] = 42 // ident
			copy(resp[2:18], c.peerChal[:])
			copy(resp[26:], ntResp)
			_ = microsoft.MSCHAP2Response_Add(p, resp)
			p.Add(80, make(radius.Attribute, 16))
			b := must(p.Encode())
			signMA(b, secret, nil)
			out := sendRaw(t, e.auth, b, 2*time.Second)
			if out == nil {
				t.Fatal("no answer")
			}
			if !radius.IsAuthenticResponse(out, b, secret) {
				t.Fatal("reply authenticator invalid")
			}
			checkReplyMA(t, out, b[4:20], secret)
			reply := must(radius.Parse(out, secret))
			if !tc.accept {
				if reply.Code != radius.CodeAccessReject {
					t.Fatalf("code = %v, want Access-Reject", reply.Code)
				}
				if e := microsoft.MSCHAPError_GetString(reply); !strings.Contains(e, "E=691") || e[0] != 42 {
					t.Errorf("MS-CHAP-Error = %q, want ident 42 and E=691", e)
				}
				return
			}
			if reply.Code != radius.CodeAccessAccept {
				t.Fatalf("code = %v, want Access-Accept", reply.Code)
			}
			succ := microsoft.MSCHAP2Success_Get(reply)
			if len(succ) != 43 || succ[0] != 42 || string(succ[1:]) != c.expectedSuccess(ntResp) {
				t.Errorf("MS-CHAP2-Success = %q, want ident 42 + %s", succ, c.expectedSuccess(ntResp))
			}
			// Decrypt the MPPE keys with layeh's RFC 2868 routine.
			reply.Authenticator = [16]byte(b[4:20])
			for _, k := range []struct {
				name       string
				typ        byte
				serverSend bool
			}{{"MS-MPPE-Send-Key", 16, true}, {"MS-MPPE-Recv-Key", 17, false}} {
				raw := vendorAttr(out, 311, k.typ)
				if raw == nil {
					t.Fatalf("%s missing", k.name)
				}
				key, _, err := radius.TunnelPassword(raw, secret, b[4:20])
				if err != nil {
					t.Fatalf("%s: %v", k.name, err)
				}
				if want := c.mppeKey(ntResp, k.serverSend); !bytes.Equal(key, want) {
					t.Errorf("%s = %X, want %X", k.name, key, want)
				}
			}
		})
	}
}

// vendorAttr finds a vendor sub-attribute value in a raw packet.
func vendorAttr(b []byte, vendor uint32, typ byte) []byte {
	for i := 20; i+2 <= len(b); i += int(b[i+1]) {
		if b[i] == 26 && b[i+1] >= 8 {
			v := b[i+2 : i+int(b[i+1])]
			if uint32(v[0])<<24|uint32(v[1])<<16|uint32(v[2])<<8|uint32(v[3]) == vendor && v[4] == typ {
				return v[6 : v[5]+4]
			}
		}
	}
	return nil
}

// checkReplyMA asserts Message-Authenticator is the first attribute of a
// reply and valid (RFC 3579 3.2).
func checkReplyMA(t *testing.T, out, reqAuth, secret []byte) {
	t.Helper()
	if len(out) < 38 || out[20] != 80 || out[21] != 18 {
		t.Fatalf("first attribute is %d, want Message-Authenticator (80)", out[20])
	}
	tmp := append([]byte(nil), out...)
	copy(tmp[4:20], reqAuth)
	clear(tmp[22:38])
	m := hmac.New(md5.New, secret)
	m.Write(tmp)
	if !hmac.Equal(m.Sum(nil), out[22:38]) {
		t.Fatal("reply Message-Authenticator invalid")
	}
}
