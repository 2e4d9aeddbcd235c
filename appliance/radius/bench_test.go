package radius

import (
	"context"
	"net/netip"
	"testing"
)

// BenchmarkHandleAuth measures the authentication packet path without
// sockets: a PAP Access-Accept (the duplicate cache is bypassed by a
// fresh identifier and source port per request), and the drop paths a
// flood of garbage or of requests from unknown addresses takes.
func BenchmarkHandleAuth(b *testing.B) {
	s, _ := fuzzServer(b)
	ctx := context.Background()
	pap := make([][]byte, 256)
	for i := range pap {
		pap[i] = buildAccessRequest(b, []byte(testSecret), byte(i), "alice", "correct horse", true, nil)
	}
	garbage := []byte{1, 2, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	for _, c := range []struct {
		name string
		pkt  func(i int) []byte
		src  func(i int) netip.AddrPort
		code byte
	}{
		{"pap-accept", func(i int) []byte { return pap[i%256] }, func(i int) netip.AddrPort {
			return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(1024+i/256%60000))
		}, codeAccessAccept},
		{"malformed", func(int) []byte { return garbage }, func(int) netip.AddrPort { return netip.MustParseAddrPort("127.0.0.1:4000") }, 0},
		{"unknown-client", func(i int) []byte { return pap[i%256] }, func(int) netip.AddrPort { return netip.MustParseAddrPort("127.0.0.9:4000") }, 0},
	} {
		b.Run(c.name, func(b *testing.B) {
			w := newWorker()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				out := s.handleAuth(ctx, w, c.pkt(i), c.src(i))
				if (c.code == 0) != (out == nil) || (out != nil && out[0] != c.code) {
					b.Fatalf("request %d: got %v, want code %d", i, out, c.code)
				}
			}
		})
	}
}
