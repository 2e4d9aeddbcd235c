// This test uses layeh.com/radius/rfc2759 and rfc3079 as an independent
// client side of MS-CHAPv2 (the issue asks for an implementation other
// than ours on the client side).

package radius

import (
	"bytes"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2759"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc3079"
	"layeh.com/radius/vendors/microsoft"
)

func TestMSCHAPv2LayehClient(t *testing.T) {
	t.Parallel()
	e := startServer(t, defaultClients(), nil)
	secret := []byte(testSecret)
	for _, tc := range []struct {
		password string
		accept   bool
	}{{"correct horse", true}, {"wrong horse", false}} {
		authChal := []byte("0123456789abcdef")
		peerChal := []byte("fedcba9876543210")
		user := []byte("alice")
		ntResp, err := rfc2759.GenerateNTResponse(authChal, peerChal, user, []byte(tc.password))
		if err != nil {
			t.Fatal(err)
		}
		p := radius.New(radius.CodeAccessRequest, secret)
		_ = rfc2865.UserName_Set(p, user)
		_ = microsoft.MSCHAPChallenge_Add(p, authChal)
		resp := make([]byte, 50)
		resp[0] = 7
		copy(resp[2:18], peerChal)
		copy(resp[26:], ntResp)
		_ = microsoft.MSCHAP2Response_Add(p, resp)
		p.Add(80, make(radius.Attribute, 16))
		b := must(p.Encode())
		signMA(b, secret, nil)
		out := sendRaw(t, e.auth, b, 2*time.Second)
		if out == nil {
			t.Fatal("no answer")
		}
		reply := must(radius.Parse(out, secret))
		if !tc.accept {
			if reply.Code != radius.CodeAccessReject {
				t.Errorf("wrong password: %v", reply.Code)
			}
			continue
		}
		if reply.Code != radius.CodeAccessAccept {
			t.Fatalf("code %v", reply.Code)
		}
		wantAuth, _ := rfc2759.GenerateAuthenticatorResponse(authChal, peerChal, ntResp, user, []byte(tc.password))
		if succ := microsoft.MSCHAP2Success_Get(reply); string(succ[1:]) != wantAuth {
			t.Errorf("MS-CHAP2-Success %q, want %q", succ[1:], wantAuth)
		}
		// The generated getters decrypt with the request's authenticator.
		req := must(radius.Parse(b, secret))
		send, _ := rfc3079.MakeKey(ntResp, []byte(tc.password), true)
		recv, _ := rfc3079.MakeKey(ntResp, []byte(tc.password), false)
		if got := microsoft.MSMPPESendKey_Get(reply, req); !bytes.Equal(got, send) {
			t.Errorf("MS-MPPE-Send-Key %x, want %x", got, send)
		}
		if got := microsoft.MSMPPERecvKey_Get(reply, req); !bytes.Equal(got, recv) {
			t.Errorf("MS-MPPE-Recv-Key %x, want %x", got, recv)
		}
	}
}
