package eap

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"
)

// clientHello captures a real TLS 1.2 ClientHello from crypto/tls.
func clientHello(t testing.TB) []byte {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go tls.Client(a, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}).Handshake()
	buf := make([]byte, 4096)
	n, err := b.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

func identityResponse(id uint8, name string) []byte {
	b := []byte{codeResponse, id, 0, byte(5 + len(name)), typeIdentity}
	return append(b, name...)
}

func tlsResponse(id, typ uint8, data []byte) []byte {
	n := 6 + len(data)
	b := []byte{codeResponse, id, byte(n >> 8), byte(n), typ, 0}
	return append(b, data...)
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestFlood: 5,000 abandoned conversations, half of them with a TLS handshake under way, keep the
// conversation table at MaxConversations and the heap bounded; a real login still works afterwards.
func TestFlood(t *testing.T) {
	const max, flood = 1000, 5000
	tb := newTestbed(t, func(c *Config) { c.MaxConversations = max })
	hello := clientHello(t)
	ctx := context.Background()
	heap0, gor0 := heapInuse(), runtime.NumGoroutine()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < flood; i += 4 {
				nas := fmt.Sprintf("nas|02:00:00:%02x:%02x:%02x", i>>16, byte(i>>8), byte(i))
				r := tb.srv.Handle(ctx, Request{EAPMessage: identityResponse(1, "anonymous"), NASKey: nas})
				// Under the flood even a brand-new conversation can be evicted
				// before its first step takes its lock (a preempted worker).
				if r.Action == Reject && r.Reason == "conversation evicted" {
					continue
				}
				if r.Action != Challenge {
					t.Errorf("identity: got %v (%s)", r.Action, r.Reason)
					return
				}
				if i%2 == 1 {
					r = tb.srv.Handle(ctx, Request{EAPMessage: tlsResponse(r.EAPMessage[1], typePEAP, hello), State: r.State, NASKey: nas})
					// A conversation may be evicted by the other workers' flood
					// between its two steps: then its State is unknown, it is
					// found closed when its step starts ("conversation evicted"),
					// or its TLS engine was closed under it. Anything else is a bug.
					evicted := strings.Contains(r.Reason, errEngineClosed.Error()) || strings.Contains(r.Reason, "unknown or expired State") ||
						strings.Contains(r.Reason, "conversation evicted")
					if r.Action != Challenge && !evicted {
						t.Errorf("client hello: got %v (%s)", r.Action, r.Reason)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	st := tb.srv.Stats()
	time.Sleep(50 * time.Millisecond) // let evicted engines' goroutines exit
	heap1, gor1 := heapInuse(), runtime.NumGoroutine()
	t.Logf("%d abandoned conversations in %v: live %d, evicted %d; heap %+.1f MB; goroutines %d -> %d",
		flood, elapsed.Round(time.Millisecond), st.Live, st.Evicted, float64(int64(heap1)-int64(heap0))/1e6, gor0, gor1)
	if st.Live > max || st.Evicted < flood-max {
		t.Fatalf("live %d evicted %d, want live <= %d and evicted >= %d", st.Live, st.Evicted, max, flood-max)
	}
	if gor1-gor0 > st.Live+10 { // at most one engine goroutine per live conversation
		var sb strings.Builder
		pprof.Lookup("goroutine").WriteTo(&sb, 1)
		t.Fatalf("goroutines grew by %d; evicted TLS engines did not stop\n%s", gor1-gor0, tail(sb.String(), 40)[:3000])
	}
	// A bound of 40 KB per live conversation; without eviction 5,000 would exceed it.
	if grow := int64(heap1) - int64(heap0); grow > max*40<<10 {
		t.Fatalf("heap grew %d bytes for %d live conversations", grow, st.Live)
	}
	r := runEapol(t, tb.front, peapNet(tb.caFile, "alice@example.com", "correct horse"))
	checkAccept(t, tb, r, "alice@example.com", "peap", 1)
}

// TestConversationBounds: idle conversations expire; a State is only valid from the NAS that got it.
func TestConversationBounds(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	tb := newTestbed(t, func(c *Config) { c.Now = clock; c.ConversationTTL = 30 * time.Second })
	ctx := context.Background()
	r := tb.srv.Handle(ctx, Request{EAPMessage: identityResponse(1, "anonymous"), NASKey: "a"})
	if r.Action != Challenge || len(r.State) < 16 {
		t.Fatalf("got %v state %x", r.Action, r.State)
	}
	next := tlsResponse(r.EAPMessage[1], typePEAP, clientHello(t))
	if x := tb.srv.Handle(ctx, Request{EAPMessage: next, State: r.State, NASKey: "b"}); x.Action != Reject {
		t.Fatalf("State from NAS a accepted from NAS b: %v", x.Action)
	}
	mu.Lock()
	now = now.Add(31 * time.Second)
	mu.Unlock()
	if x := tb.srv.Handle(ctx, Request{EAPMessage: next, State: r.State, NASKey: "a"}); x.Action != Reject || x.Reason != "unknown or expired State" {
		t.Fatalf("expired conversation answered %v (%s)", x.Action, x.Reason)
	}
	if st := tb.srv.Stats(); st.Live != 0 || st.Expired != 1 {
		t.Fatalf("stats %+v, want 0 live, 1 expired", st)
	}
}

// TestNak: a peer that refuses PEAP gets the next configured method it asks for.
func TestNak(t *testing.T) {
	tb := newTestbed(t, func(c *Config) { c.Methods = []string{"peap", "ttls"} })
	ctx := context.Background()
	r := tb.srv.Handle(ctx, Request{EAPMessage: identityResponse(1, "anonymous"), NASKey: "a"})
	if r.EAPMessage[4] != typePEAP {
		t.Fatalf("first offer type %d, want PEAP", r.EAPMessage[4])
	}
	nak := []byte{codeResponse, r.EAPMessage[1], 0, 7, typeNak, typeTLS, typeTTLS}
	r = tb.srv.Handle(ctx, Request{EAPMessage: nak, State: r.State, NASKey: "a"})
	if r.Action != Challenge || r.EAPMessage[4] != typeTTLS || r.EAPMessage[5] != flagStart {
		t.Fatalf("after NAK: %v type %d", r.Action, r.EAPMessage[4])
	}
	nak = []byte{codeResponse, r.EAPMessage[1], 0, 6, typeNak, typeTLS}
	if r = tb.srv.Handle(ctx, Request{EAPMessage: nak, State: r.State, NASKey: "a"}); r.Action != Reject {
		t.Fatalf("NAK for an unoffered method: %v", r.Action)
	}
	// and through eapol_test: a TTLS-only client against a PEAP-first server
	res := runEapol(t, tb.front, ttlsNet(tb.caFile, "alice@example.com", "correct horse", "PAP"))
	checkAccept(t, tb, res, "alice@example.com", "ttls-pap", 1)
}

// TestStartAndRetransmit: EAP-Start gets an Identity request; a retransmitted response gets the same
// request again rather than advancing the conversation.
func TestStartAndRetransmit(t *testing.T) {
	tb := newTestbed(t, nil)
	ctx := context.Background()
	r := tb.srv.Handle(ctx, Request{NASKey: "a"})
	if r.Action != Challenge || r.EAPMessage[0] != codeRequest || r.EAPMessage[4] != typeIdentity {
		t.Fatalf("EAP-Start answered %v %x", r.Action, r.EAPMessage)
	}
	idResp := identityResponse(r.EAPMessage[1], "anonymous")
	r2 := tb.srv.Handle(ctx, Request{EAPMessage: idResp, State: r.State, NASKey: "a"})
	if r2.Action != Challenge || r2.EAPMessage[4] != typePEAP || r2.EAPMessage[5] != flagStart {
		t.Fatalf("identity answered %v %x", r2.Action, r2.EAPMessage)
	}
	r3 := tb.srv.Handle(ctx, Request{EAPMessage: idResp, State: r.State, NASKey: "a"})
	if r3.Action != Challenge || string(r3.EAPMessage) != string(r2.EAPMessage) {
		t.Fatalf("retransmitted identity answered %v %x, want the same PEAP Start", r3.Action, r3.EAPMessage)
	}
}
