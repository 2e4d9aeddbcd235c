package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/officernd/officerndsim"
)

// rssMB reads a process's resident set size from /proc.
func rssMB(pid int) float64 { return statusMB(pid, "VmRSS:") }

// statusMB reads one field of /proc/<pid>/status in MiB (VmRSS:, RssAnon:,
// RssFile:).
func statusMB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field) {
			f := strings.Fields(l)
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	return -1
}

// BenchmarkDaemonCached measures, for a real deskgated process with N
// members in its store: RSS after the import, then — restarted with
// OfficeRnD down — the time from process start until a decision is served
// from the cache, and RSS then (2 s after serving, split into anonymous
// and file-backed, and the lowest over the following 10 s).
func BenchmarkDaemonCached(b *testing.B) {
	for _, n := range []int{10000, 50000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				d := newDaemonEnvB(b, n)
				start := time.Now()
				d.start()
				d.waitStatus(10*time.Minute, "import", func(st admin.Status) bool { return st.Sync.ImportDone })
				importTime := time.Since(start)
				time.Sleep(500 * time.Millisecond)
				rssImport := rssMB(d.cmd.Process.Pid)
				d.kill(syscall.SIGTERM)

				d.sim.SetFaults(officerndsim.Faults{Down: true})
				who := d.sim.Seeded().Members[0].Email
				start = time.Now()
				d.start()
				var served time.Duration
				for {
					var ex admin.Explanation
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					err := admin.Dial(d.sock).Get(ctx, "/v1/explain", url.Values{"user": {who}}, &ex)
					cancel()
					if err == nil && ex.Decision.Allowed {
						served = time.Since(start)
						break
					}
					if time.Since(start) > time.Minute {
						b.Fatalf("no decision served within a minute: %v", err)
					}
					time.Sleep(2 * time.Millisecond)
				}
				time.Sleep(2 * time.Second) // startup re-evaluation settles
				rssCached := rssMB(d.cmd.Process.Pid)
				anonCached, fileCached := statusMB(d.cmd.Process.Pid, "RssAnon:"), statusMB(d.cmd.Process.Pid, "RssFile:")
				// The daemon gives back the store pages the start-up
				// evaluation touched once the store is quiet: the lowest
				// RSS over the next 10 s.
				settled := rssCached
				for range 40 {
					time.Sleep(250 * time.Millisecond)
					settled = min(settled, rssMB(d.cmd.Process.Pid))
				}
				d.kill(syscall.SIGTERM)
				b.ReportMetric(importTime.Seconds(), "s-import")
				b.ReportMetric(rssImport, "MB-rss-after-import")
				b.ReportMetric(float64(served.Milliseconds()), "ms-start-to-serve")
				b.ReportMetric(rssCached, "MB-rss-cached")
				b.ReportMetric(anonCached, "MB-anon-cached")
				b.ReportMetric(fileCached, "MB-file-cached")
				b.ReportMetric(settled, "MB-rss-settled")
			}
		})
	}
}
