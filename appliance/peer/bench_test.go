package peer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
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
