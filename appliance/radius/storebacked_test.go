package radius

import (
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(dir, "deskgate.db"), store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestStoreBackedRestart: sessions and static IPs written through the
// store survive a restart; the device limit still counts the sessions.
func TestStoreBackedRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	pools := map[string]netip.Prefix{"loc-a": netip.MustParsePrefix("10.30.0.0/29")}
	src := netip.MustParseAddrPort("127.0.0.1:5000")

	run := func(fn func(s *Server, w *worker)) {
		st := openStore(t, dir)
		defer st.Close()
		pool, err := NewStorePool(st)
		if err != nil {
			t.Fatal(err)
		}
		dirc := NewMapDirectory()
		s0 := hotDesk("alice", "m-alice", "correct horse")
		s0.Decision.StaticIP = true
		dirc.Put(s0)
		s, err := New(Config{Clients: defaultClients(), StaticPools: pools}, dirc, NewStoreSessions(st), pool, NewStoreAuditor(st), slog.New(slog.DiscardHandler), func() time.Time { return t0 })
		if err != nil {
			t.Fatal(err)
		}
		if err := s.LoadSessions(ctx); err != nil {
			t.Fatal(err)
		}
		fn(s, newWorker())
	}
	var ip netip.Addr
	run(func(s *Server, w *worker) {
		for i, mac := range []string{"AA-BB-CC-00-00-01", "AA-BB-CC-00-00-02"} {
			out := s.handleAcct(ctx, w, acctReq(t, byte(i), "Start", "r"+mac, mac), src)
			if out == nil {
				t.Fatal("no accounting response")
			}
		}
		out := s.handleAuth(ctx, w, buildAccessRequest(t, []byte(testSecret), 1, "alice", "correct horse", true, nil, callingStation("aa:bb:cc:00:00:02")), src)
		if out == nil || out[0] != codeAccessAccept {
			t.Fatal("login from a known device rejected")
		}
		ip = vendorlessAttr(out, attrFramedIPAddress)
		if !ip.IsValid() {
			t.Fatal("no Framed-IP-Address")
		}
	})
	run(func(s *Server, w *worker) {
		if n := len(s.Sessions("m-alice")); n != 2 {
			t.Fatalf("after restart: %d live sessions, want 2", n)
		}
		pkt := buildAccessRequest(t, []byte(testSecret), 2, "alice", "correct horse", true, nil, callingStation("AA-BB-CC-00-00-03"))
		if out := s.handleAuth(ctx, w, pkt, src); out == nil || out[0] != codeAccessReject {
			t.Fatal("third device admitted after restart")
		}
		pkt = buildAccessRequest(t, []byte(testSecret), 3, "alice", "correct horse", true, nil, callingStation("AA-BB-CC-00-00-01"))
		out := s.handleAuth(ctx, w, pkt, src)
		if out == nil || out[0] != codeAccessAccept {
			t.Fatal("known device rejected after restart")
		}
		if got := vendorlessAttr(out, attrFramedIPAddress); got != ip {
			t.Errorf("static IP after restart = %v, want %v", got, ip)
		}
		// A Stop, then a late Interim for the same session: the Stop wins.
		if s.handleAcct(ctx, w, acctReq(t, 10, "Stop", "rAA-BB-CC-00-00-01", "AA-BB-CC-00-00-01"), src) == nil {
			t.Fatal("stop unanswered")
		}
	})
	run(func(s *Server, w *worker) {
		if n := len(s.Sessions("m-alice")); n != 1 {
			t.Fatalf("after stop and restart: %d live sessions, want 1", n)
		}
	})
	// Stale writes lose against newer ones in the store.
	st := openStore(t, dir)
	defer st.Close()
	ss := NewStoreSessions(st)
	if err := ss.SaveSessions(ctx, []Session{{Key: "k", Seq: 5, Username: "new"}}); err != nil {
		t.Fatal(err)
	}
	if err := ss.SaveSessions(ctx, []Session{{Key: "k", Seq: 4, Username: "old"}}); err != nil {
		t.Fatal(err)
	}
	live, err := ss.LoadSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range live {
		if x.Key == "k" && x.Username != "new" {
			t.Errorf("older write replaced a newer one: %+v", x)
		}
	}
	a := NewStoreAuditor(st)
	if err := a.Audit(ctx, model.AuditEntry{Time: t0, Actor: "radius", Action: "radius.disconnect.ack", Member: "m-alice", Cause: "test"}); err != nil {
		t.Fatal(err)
	}
	entries, err := st.AuditLog(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 || entries[len(entries)-1].Action != "radius.disconnect.ack" {
		t.Errorf("audit log = %+v", entries)
	}
}

func callingStation(mac string) func(*radiusPacket) {
	return func(p *radiusPacket) { _ = rfc2865CallingStationSet(p, mac) }
}

// vendorlessAttr returns an IPv4 attribute from a raw packet.
func vendorlessAttr(b []byte, typ byte) netip.Addr {
	for i := 20; i+2 <= len(b); i += int(b[i+1]) {
		if b[i] == typ && b[i+1] == 6 {
			return netip.AddrFrom4([4]byte(b[i+2 : i+6]))
		}
	}
	return netip.Addr{}
}

// With an interim cadence, a counters-only Interim-Update within it is
// answered from memory (no write); a change of who or where, an Interim
// past the cadence, a Start and a Stop are written before the answer.
func TestStoreSessionsInterimCadence(t *testing.T) {
	t.Parallel()
	st := openStore(t, t.TempDir())
	defer st.Close()
	ctx := context.Background()
	ss := NewStoreSessions(st)
	ss.SetInterimCadence(time.Minute)
	stored := func() Session {
		t.Helper()
		got, err := NewStoreSessions(st).LoadSessions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("%d stored sessions, want 1", len(got))
		}
		return got[0]
	}
	base := Session{Key: "ap/1", NAS: "ap", AcctSessionID: "1", MemberID: "m-alice", Username: "alice",
		MAC: "aa:bb:cc:00:00:01", Start: t0, LastUpdate: t0, Seq: 1}
	save := func(x Session) {
		t.Helper()
		if err := ss.SaveSessions(ctx, []Session{x}); err != nil {
			t.Fatal(err)
		}
	}
	save(base) // Start
	interim := base
	interim.Seq, interim.LastUpdate, interim.InputOctets = 2, t0.Add(10*time.Second), 1000
	save(interim)
	if got := stored(); got.InputOctets != 0 || got.Seq != 1 {
		t.Errorf("counters-only interim 10s after the stored copy was written: stored %+v", got)
	}
	withIP := interim
	withIP.Seq, withIP.LastUpdate, withIP.IP = 3, t0.Add(20*time.Second), netip.MustParseAddr("10.0.0.7")
	save(withIP)
	if got := stored(); got.IP != withIP.IP || got.Seq != 3 || got.InputOctets != 1000 {
		t.Errorf("interim with a new address: stored %+v, want it written", got)
	}
	late := withIP
	late.Seq, late.LastUpdate, late.InputOctets = 4, t0.Add(50*time.Second), 2000
	save(late) // 30s after the last write: remembered
	older := withIP
	older.Seq, older.IP = 3, netip.MustParseAddr("10.0.0.9") // a write older than the remembered one
	save(older)
	if got := stored(); got.IP != withIP.IP || got.InputOctets != 1000 {
		t.Errorf("a write older than a remembered interim was stored: %+v", got)
	}
	past := late
	past.Seq, past.LastUpdate, past.InputOctets = 5, t0.Add(81*time.Second), 3000
	save(past) // 61s after the last write: written
	if got := stored(); got.InputOctets != 3000 || got.Seq != 5 {
		t.Errorf("interim past the cadence: stored %+v, want it written", got)
	}
	stop := past
	stop.Seq, stop.LastUpdate, stop.Stopped = 6, t0.Add(85*time.Second), t0.Add(85*time.Second)
	save(stop)
	if got, _ := NewStoreSessions(st).LoadSessions(ctx); len(got) != 0 {
		t.Errorf("after Stop: %d stored live sessions, want 0", len(got))
	}
}
