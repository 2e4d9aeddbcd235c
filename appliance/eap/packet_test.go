package eap

import (
	"bytes"
	"context"
	"testing"
)

func TestSplitEAPMessage(t *testing.T) {
	for _, n := range []int{0, 1, 253, 254, 506, 1000} {
		p := bytes.Repeat([]byte{7}, n)
		chunks := SplitEAPMessage(p)
		if want := (n + 252) / 253; len(chunks) != want {
			t.Fatalf("%d bytes: %d chunks, want %d", n, len(chunks), want)
		}
		for _, c := range chunks {
			if len(c) > 253 || len(c) == 0 {
				t.Fatalf("%d bytes: chunk of %d", n, len(c))
			}
		}
		if !bytes.Equal(bytes.Join(chunks, nil), p) {
			t.Fatalf("%d bytes: chunks do not reassemble", n)
		}
	}
}

// FuzzHandle feeds arbitrary EAP messages (fresh, and inside a conversation in TLS stage) and
// checks that the server answers without panicking and never accepts.
func FuzzHandle(f *testing.F) {
	f.Add([]byte{2, 1, 0, 5, 1})
	f.Add([]byte{2, 1, 0, 6, 25, 0x80})
	f.Add([]byte{2, 1, 0, 10, 25, 0xc0, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{2, 1, 0, 6, 3, 13})
	f.Add([]byte{1, 1, 0, 4})
	f.Add([]byte{2, 1, 0, 3})
	tb := newTestbed(f, nil)
	f.Fuzz(func(t *testing.T, msg []byte) {
		ctx := context.Background()
		r := tb.srv.Handle(ctx, Request{EAPMessage: msg, NASKey: "f"})
		if r.Action == Accept {
			t.Fatal("accepted a fresh message")
		}
		r = tb.srv.Handle(ctx, Request{EAPMessage: identityResponse(1, "x"), NASKey: "f"})
		if len(msg) > 1 && r.Action == Challenge {
			msg = append([]byte(nil), msg...)
			msg[1] = r.EAPMessage[1]
			if x := tb.srv.Handle(ctx, Request{EAPMessage: msg, State: r.State, NASKey: "f"}); x.Action == Accept {
				t.Fatal("accepted garbage")
			}
		}
	})
}
