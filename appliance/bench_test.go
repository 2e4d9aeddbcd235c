package appliance

import (
	"bytes"
	"context"
	"fmt"
	"github.com/deskgate/deskgate/appliance/officernd"
	"io"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/officernd/officerndsim"
)

// BenchmarkImport10k: the initial import of 10,000 members with a
// membership each from the simulator on loopback (no artificial latency),
// with the API calls it used.
func BenchmarkImport10k(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		h := newHarness(b, harnessOpts{seed: true, extra: 10000, noWelcome: true})
		h.sim.ResetStats()
		b.StartTimer()
		start := time.Now()
		h.start()
		h.waitImport(5 * time.Minute)
		b.StopTimer()
		d := time.Since(start)
		st := h.sim.Stats()
		b.ReportMetric(d.Seconds(), "s/import")
		b.ReportMetric(float64(st.Requests), "api-calls")
		b.ReportMetric(float64(st.TokenRequests), "token-calls")
		h.stop()
	}
}

// BenchmarkPoll10Changes: API calls of one poll cycle after 10 changes in
// a 10,000-member space, with the memberships endpoint rejecting
// modifiedAt (as testers of the real API saw) and accepting it.
func BenchmarkPoll10Changes(b *testing.B) {
	for _, accept := range []bool{false, true} {
		name := "memberships-reject-modifiedAt"
		if accept {
			name = "memberships-accept-modifiedAt"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				h := newHarness(b, harnessOpts{seed: true, extra: 10000, noWelcome: true, simOpts: func(o *officerndsim.Options) { o.MembershipsModifiedFilter = accept }})
				h.start()
				h.waitImport(5 * time.Minute)
				ctx := context.Background()
				h.clock.Jump(5 * time.Minute)                     // polls run every 15 minutes in production
				if _, err := h.app.syncer.Poll(ctx); err != nil { // settle cursors and fallbacks
					b.Fatal(err)
				}
				ids := h.sim.Seeded().IDs
				h.clock.Jump(time.Minute)
				for k := 0; k < 10; k++ {
					switch k % 2 {
					case 0:
						if _, err := h.sim.Update("members", ids["member:hotdesk-downtown"], map[string]any{"phone": fmt.Sprintf("+1 555 %04d", k)}); err != nil {
							b.Fatal(err)
						}
					case 1:
						m, err := h.sim.Create("members", map[string]any{"name": fmt.Sprintf("New Member %d", k), "email": fmt.Sprintf("new%d@example.com", k), "location": ids["location:Downtown"]})
						if err != nil {
							b.Fatal(err)
						}
						if _, err := h.sim.Create("memberships", map[string]any{"name": "Hot Desk", "isPersonal": true, "member": m["_id"],
							"plan": ids["plan:Hot Desk"], "location": ids["location:Downtown"], "startDate": h.clock.Now().UTC().AddDate(0, -1, 0).Format("2006-01-02") + "T00:00:00.000Z"}); err != nil {
							b.Fatal(err)
						}
					}
				}
				h.sim.ResetStats()
				b.StartTimer()
				rl, err := h.app.syncer.Poll(ctx)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				if !h.allowed("new9@example.com") {
					b.Fatal("the poll missed a new member")
				}
				b.ReportMetric(float64(h.sim.Stats().Requests), "api-calls/poll")
				b.ReportMetric(float64(rl.Changed), "changed")
				h.stop()
			}
		})
	}
}

// BenchmarkWebhookAck: time from a delivery's POST to deskgate's 2xx.
func BenchmarkWebhookAck(b *testing.B) {
	h := newHarness(b, harnessOpts{seed: true, webhooks: true})
	h.start()
	h.waitImport(30 * time.Second)
	waitFor(b, 10*time.Second, "webhook registration", func() bool { return h.app.hooks.Registration().State == "registered" })
	secret := h.app.hooks.Secret()
	id := h.sim.Seeded().IDs["member:hotdesk-uptown"]
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev := []byte(fmt.Sprintf(`{"event":"%024x","eventType":"member.updated","data":{"object":{"_id":%q}},"createdAt":%q}`, i+1, id, stamp(h, 0)))
		req, _ := http.NewRequest(http.MethodPost, h.hookURL, bytes.NewReader(ev))
		req.Header.Set("officernd-signature", officernd.Sign(secret, ev, h.clock.Now()))
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(start))
		if resp.StatusCode != http.StatusAccepted {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "ms-p99")
}
