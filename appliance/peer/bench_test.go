package peer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/creds"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

func registerHash(st *store.Store, member string) []byte {
	var h []byte
	_ = st.View(func(tx *store.Tx) error {
		e, ok, err := register(tx, KindPassword, member)
		if ok {
			var v PasswordValue
			if json.Unmarshal(e.Value, &v) == nil {
				h = v.NTHash
			}
		}
		return err
	})
	return h
}

// BenchmarkFleetReplicationLatency: a member-chosen password set at box-a
// until its register is visible at box-c (3 boxes on loopback, full
// mesh); reports p50 and p99.
func BenchmarkFleetReplicationLatency(b *testing.B) {
	quietLogs = true
	a, _, c := fleet3(b)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		member := fmt.Sprintf("lat%d", i)
		pw := fmt.Sprintf("pw-%d", i)
		start := time.Now()
		setPassword(b, a, member, pw)
		want := creds.NTHash(pw)
		for !bytes.Equal(registerHash(c.st, member), want) {
			if time.Since(start) > 5*time.Second {
				b.Fatalf("change %d not at box-c after 5s", i)
			}
			time.Sleep(200 * time.Microsecond)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkFleetCatchUp10k: box-c is cut off while 10,000 member
// passwords change at box-a; after healing, the time until box-c holds
// them all and the bytes box-c received doing so.
func BenchmarkFleetCatchUp10k(b *testing.B) {
	quietLogs = true
	a, bb, c := fleet3(b)
	const n = 10000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for _, x := range []*testNode{a, bb} {
			x.setCut("box-c")
		}
		c.setCut("box-a", "box-b")
		for lo := 0; lo < n; lo += 1000 {
			err := a.st.Update(func(tx *store.Tx) error {
				for j := lo; j < lo+1000; j++ {
					m := fmt.Sprintf("cu%d", j)
					acct := model.Account{Username: m + "@example.com", MemberID: m, NTHash: creds.NTHash(fmt.Sprintf("r%d-%d", i, j)), PasswordSource: model.PasswordMember, CreatedAt: a.now()}
					if err := tx.PutAccount(acct); err != nil {
						return err
					}
					if err := a.RecordPassword(tx, m, acct.NTHash); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		var target uint64
		_ = a.st.View(func(tx *store.Tx) error { target, _ = seqOf(tx, "box-a"); return nil })
		b.StartTimer()
		start := time.Now()
		for _, x := range []*testNode{a, bb, c} {
			x.setCut()
		}
		for {
			var got uint64
			_ = c.st.View(func(tx *store.Tx) error { got, _ = seqOf(tx, "box-a"); return nil })
			if got >= target {
				break
			}
			if time.Since(start) > time.Minute {
				b.Fatalf("box-c at %d of %d after a minute", got, target)
			}
			time.Sleep(time.Millisecond)
		}
		took := time.Since(start)
		b.StopTimer()
		st, _ := c.Status()
		var in int64
		for _, p := range st.Peers {
			in += p.BytesIn
		}
		b.ReportMetric(took.Seconds(), "catchup-s")
		b.ReportMetric(float64(in)/1e6, "catchup-MB")
		b.StartTimer()
	}
}

// BenchmarkFleetMemoryPerPeer: heap held per link end: three linked
// nodes, then every link cut; the heap difference over the six link ends.
func BenchmarkFleetMemoryPerPeer(b *testing.B) {
	quietLogs = true
	for i := 0; i < b.N; i++ {
		a, bb, c := fleet3(b)
		heap := func() uint64 {
			var m runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m)
			return m.HeapInuse
		}
		linked := heap()
		a.setCut("box-b", "box-c")
		bb.setCut("box-a", "box-c")
		c.setCut("box-a", "box-b")
		waitFor(b, 5*time.Second, "links down", func() bool { return !a.linkUp("box-b") && !a.linkUp("box-c") && !bb.linkUp("box-c") })
		time.Sleep(100 * time.Millisecond)
		apart := heap()
		b.ReportMetric((float64(linked)-float64(apart))/6/1024, "KiB-per-link-end")
	}
}

// BenchmarkFleetSteadyBytes: the steady replication traffic of a fleet
// holding 10,000 member passwords and 1,000 live sessions at box-a whose
// RADIUS interim updates arrive every minute: an hour of the fleet's
// clock (stepped a minute at a time) after everything has caught up;
// reports the message bytes per second per link (both directions, all
// three links averaged; websocket pings and TLS framing not included,
// about 25 B/s per link at the 5 s ping interval).
func BenchmarkFleetSteadyBytes(b *testing.B) {
	quietLogs = true
	var off atomic.Int64
	wall := testClock()
	now := func() time.Time { return wall().Add(time.Duration(off.Load())) }
	a, bb, c := fleet3With(b, now)
	const members, sessions = 10000, 1000
	for lo := 0; lo < members; lo += 1000 {
		err := a.st.Update(func(tx *store.Tx) error {
			for j := lo; j < lo+1000; j++ {
				m := fmt.Sprintf("st%05d", j)
				acct := model.Account{Username: m + "@example.com", MemberID: m, NTHash: creds.NTHash("pw-" + m), PasswordSource: model.PasswordMember, CreatedAt: a.now()}
				if err := tx.PutAccount(acct); err != nil {
					return err
				}
				if err := a.RecordPassword(tx, m, acct.NTHash); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	live := make([]LocalSession, sessions)
	for i := range live {
		live[i] = LocalSession{Key: fmt.Sprintf("ap/s%04d", i), Member: fmt.Sprintf("st%05d", i*7), MAC: fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8, i&0xff), Live: true}
	}
	if err := a.RecordSessions(live); err != nil {
		b.Fatal(err)
	}
	caughtUp := func() bool {
		var top uint64
		_ = a.st.View(func(tx *store.Tx) error { top, _ = seqOf(tx, "box-a"); return nil })
		for _, x := range []*testNode{bb, c} {
			var got uint64
			_ = x.st.View(func(tx *store.Tx) error { got, _ = seqOf(tx, "box-a"); return nil })
			if got < top {
				return false
			}
		}
		return true
	}
	waitFor(b, time.Minute, "box-b and box-c caught up", caughtUp)
	sent := func() int64 {
		var n int64
		for _, x := range []*testNode{a, bb, c} {
			st, _ := x.Status()
			for _, p := range st.Peers {
				n += p.BytesOut
			}
		}
		return n
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		before := sent()
		const steps = 60
		for range steps {
			off.Add(int64(time.Minute))
			if err := a.RecordSessions(live); err != nil { // the interim updates of that minute
				b.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		waitFor(b, 10*time.Second, "renewals replicated", caughtUp)
		time.Sleep(100 * time.Millisecond)
		b.ReportMetric(float64(sent()-before)/3/(steps*60), "B/s-per-link")
	}
}

// fleet3With is fleet3 on the clock now.
func fleet3With(t testing.TB, now func() time.Time) (a, b, c *testNode) {
	a, b, c = startNode(t, now, "Downtown"), startNode(t, now, "Downtown"), startNode(t, now, "Uptown")
	if _, err := a.Init("box-a"); err != nil {
		t.Fatal(err)
	}
	for _, j := range []struct {
		n  *testNode
		id string
	}{{b, "box-b"}, {c, "box-c"}} {
		tok, _, err := a.Invite(time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := j.n.Join(context.Background(), tok, j.id); err != nil {
			t.Fatalf("join %s: %v", j.id, err)
		}
	}
	waitFor(t, 5*time.Second, "full mesh", func() bool {
		return a.linkUp("box-b") && a.linkUp("box-c") && b.linkUp("box-c") && b.linkUp("box-a") && c.linkUp("box-a") && c.linkUp("box-b")
	})
	return a, b, c
}
