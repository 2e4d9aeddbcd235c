package appliance

import (
	"context"
	"testing"
	"time"
)

// BenchmarkPollQuiet10k: API calls of one poll of a quiet 10,000-member
// space (nothing changed since the last poll), with GET /memberships
// rejecting modifiedAt as the real service does (the simulator's default).
func BenchmarkPollQuiet10k(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		h := newHarness(b, harnessOpts{seed: true, extra: 10000, noWelcome: true})
		h.start()
		h.waitImport(5 * time.Minute)
		ctx := context.Background()
		h.clock.Jump(15 * time.Minute)
		if _, err := h.app.syncer.Poll(ctx); err != nil { // settle cursors and the modifiedAt fallback
			b.Fatal(err)
		}
		h.clock.Jump(15 * time.Minute)
		h.sim.ResetStats()
		b.StartTimer()
		if _, err := h.app.syncer.Poll(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		st := h.sim.Stats()
		b.ReportMetric(float64(st.Requests), "api-calls/quiet-poll")
		b.ReportMetric(float64(st.Paths["GET /memberships"]), "membership-list-calls")
		h.stop()
	}
}
