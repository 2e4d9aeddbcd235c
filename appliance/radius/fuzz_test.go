package radius

import (
	"context"
	"net/netip"
	"reflect"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/vendors/microsoft"
)

// fuzzServer is a server that is not listening: packets go straight to
// the handlers.
func fuzzServer(t testing.TB) (*Server, *MemSessionStore) {
	dir := NewMapDirectory()
	dir.Put(hotDesk("alice", "m-alice", "correct horse"))
	st := NewMemSessionStore()
	clients := []Client{{Name: "ap", Prefix: netip.MustParsePrefix("127.0.0.1/32"), Secret: []byte(testSecret), LocationID: "loc-a"}}
	s, err := New(Config{Clients: clients, StaticPools: map[string]netip.Prefix{"loc-a": netip.MustParsePrefix("10.9.0.0/24")}},
		dir, st, nil, nil, nil, func() timeT { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	s.panicOnBug = true
	return s, st
}

func seedPackets(t testing.TB) [][]byte {
	secret := []byte(testSecret)
	var seeds [][]byte
	pap := radius.New(radius.CodeAccessRequest, secret)
	_ = rfc2865.UserName_SetString(pap, "alice")
	_ = rfc2865.UserPassword_SetString(pap, "correct horse")
	_ = rfc2865.CallingStationID_SetString(pap, "AA-BB-CC-00-00-01")
	pap.Add(rfc2865.ProxyState_Type, radius.Attribute("ps"))
	pap.Add(80, make(radius.Attribute, 16))
	b := must(pap.Encode())
	signMA(b, secret, nil)
	seeds = append(seeds, b)

	ms := radius.New(radius.CodeAccessRequest, secret)
	_ = rfc2865.UserName_SetString(ms, "alice")
	_ = microsoft.MSCHAPChallenge_Add(ms, make([]byte, 16))
	_ = microsoft.MSCHAP2Response_Add(ms, make([]byte, 50))
	ms.Add(80, make(radius.Attribute, 16))
	b = must(ms.Encode())
	signMA(b, secret, nil)
	seeds = append(seeds, b)

	for _, st := range []rfc2866.AcctStatusType{rfc2866.AcctStatusType_Value_Start, rfc2866.AcctStatusType_Value_InterimUpdate, rfc2866.AcctStatusType_Value_Stop, rfc2866.AcctStatusType_Value_AccountingOn} {
		a := radius.New(radius.CodeAccountingRequest, secret)
		_ = rfc2865.UserName_SetString(a, "alice")
		_ = rfc2866.AcctStatusType_Set(a, st)
		_ = rfc2866.AcctSessionID_SetString(a, "f1")
		_ = rfc2865.CallingStationID_SetString(a, "AA-BB-CC-00-00-01")
		seeds = append(seeds, must(a.Encode()))
	}
	ss := radius.New(radius.CodeStatusServer, secret)
	ss.Add(80, make(radius.Attribute, 16))
	b = must(ss.Encode())
	signMA(b, secret, nil)
	seeds = append(seeds, b)
	return seeds
}

type stateSnapshot struct {
	Live   []Session
	Stored []Session
}

func snapshot(s *Server, st *MemSessionStore) stateSnapshot {
	return stateSnapshot{Live: s.Sessions(""), Stored: sortedSessions(st.All())}
}

// FuzzHandlePacket feeds arbitrary bytes to both request paths: nothing
// panics, and a packet that gets no answer (invalid, unauthenticated)
// changes no state.
func FuzzHandlePacket(f *testing.F) {
	for _, b := range seedPackets(f) {
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Add([]byte{1, 0, 0, 20}, false)
	f.Add(make([]byte, 20), true)
	f.Fuzz(func(t *testing.T, b []byte, acct bool) {
		s, st := fuzzServer(t)
		ctx := context.Background()
		w := newWorker()
		src := netip.MustParseAddrPort("127.0.0.1:40000")
		// A live session to be disturbed.
		_ = s.handleAcct(ctx, w, seedPackets(t)[2], src)
		before := snapshot(s, st)
		var out []byte
		if acct {
			out = s.handleAcct(ctx, w, append([]byte(nil), b...), src)
		} else {
			out = s.handleAuth(ctx, w, append([]byte(nil), b...), src)
		}
		if out == nil && !reflect.DeepEqual(before, snapshot(s, st)) {
			t.Fatalf("unanswered packet changed state")
		}
		if out != nil {
			if _, err := radius.Parse(out, []byte(testSecret)); err != nil {
				t.Fatalf("reply does not parse: %v", err)
			}
			if out[20] != 80 {
				t.Fatalf("reply's first attribute is %d", out[20])
			}
		}
	})
}

// TestPanicDropsPacket: in production a bug on one packet drops it and
// the server keeps answering.
func TestPanicDropsPacket(t *testing.T) {
	t.Parallel()
	dir := &panicDir{}
	s, err := New(Config{Clients: defaultClients()}, dir, nil, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorker()
	pkt := buildAccessRequest(t, []byte(testSecret), 1, "alice", "correct horse", true, nil)
	src := netip.MustParseAddrPort("127.0.0.1:4000")
	if out := s.handleAuth(context.Background(), w, pkt, src); out != nil {
		t.Fatal("answer despite a panic")
	}
	if s.Stats().Dropped.Load() != 1 {
		t.Error("panic not counted as a drop")
	}
	// The retransmission is evaluated again (not stuck in flight).
	dir.ok = true
	if out := s.handleAuth(context.Background(), w, pkt, src); out == nil {
		t.Fatal("retransmission after a panic not answered")
	}
}

type panicDir struct{ ok bool }

func (d *panicDir) Lookup(context.Context, string) (Subject, error) {
	if !d.ok {
		panic("boom")
	}
	return hotDesk("alice", "m-alice", "correct horse"), nil
}
