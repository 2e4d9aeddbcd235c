package eap

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"runtime"
	"testing"

	"github.com/deskgate/deskgate/appliance/creds"
)

// TestPeapPRF: PRF+ (MS-PEAP 3.1.5.5.2) against a block-by-block reference, with one HMAC per call
// rather than one per 20-byte block.
func TestPeapPRF(t *testing.T) {
	key, seed := bytes.Repeat([]byte{0x5a}, 40), creds.NTHash("isk")
	for _, n := range []int{20, 40, 60, 64, 128} {
		var want, prev []byte
		for i := byte(1); len(want) < n; i++ {
			m := hmac.New(sha1.New, key)
			m.Write(prev)
			m.Write([]byte("Inner Methods Compound Keys"))
			m.Write(seed)
			m.Write([]byte{i, 0, 0})
			prev = m.Sum(nil)
			want = append(want, prev...)
		}
		if got := peapPRF(key, "Inner Methods Compound Keys", seed, n); !bytes.Equal(got, want[:n]) {
			t.Fatalf("peapPRF(%d) = %x, want %x", n, got, want[:n])
		}
	}
	// 128 bytes are 7 blocks: a new HMAC per block allocated about 30 times; one HMAC about 9.
	if a := testing.AllocsPerRun(50, func() { peapPRF(key, "Session Key Generating Function", []byte{0}, 128) }); a > 12 {
		t.Errorf("peapPRF(128) allocates %.0f times, want at most 12", a)
	}
}

// TestLoginAllocations: the heap bytes of one full login, peer and server together (the peer's share
// is crypto/tls's client). Allocation is what drives the daemon's garbage collection under EAP load;
// a new 4 KiB buffer per tunnelled message and an HMAC per PRF block made a PEAP login allocate about
// 94 KB here (TTLS/PAP 59 KB).
func TestLoginAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation budget: not in -short")
	}
	lb := newLoginBed(t, "p256")
	for _, c := range []struct {
		method string
		max    uint64
	}{{"peap", 82 << 10}, {"ttls", 56 << 10}} {
		if _, err := lb.login(c.method); err != nil { // warm the pools
			t.Fatal(err)
		}
		const n = 50
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range n {
			if _, err := lb.login(c.method); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		if per := (after.TotalAlloc - before.TotalAlloc) / n; per > c.max {
			t.Errorf("%s login allocates %d bytes (peer and server), want at most %d", c.method, per, c.max)
		} else {
			t.Logf("%s login allocates %d bytes (peer and server)", c.method, per)
		}
	}
}
