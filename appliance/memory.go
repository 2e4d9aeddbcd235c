package appliance

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// Memory on small routers (256–512 MB for everything). The daemon's own
// heap is small (the decision cache, a few MB at 50,000 members); what
// grows its resident set is the store: bbolt maps the database file, and
// every page a pass over the store touches (the import, the start-up
// evaluation, a full sync) stays mapped. trimMemory gives those pages
// back, and the heap's free spans with them; the soft memory limit (memory_limit_mib) makes the garbage
// collector work harder before the heap outgrows it.

// trimCheck is how often the resident set is looked at (one read of
// /proc/self/statm); trimGrowth is how much the file-backed part may grow
// before a trim; trimQuiet is how long the store must be quiet first: a
// trim while writes go on (accounting under load) would only make them
// fault the pages back in.
const (
	trimCheck  = 2 * time.Second
	trimQuiet  = 300 * time.Millisecond
	trimGrowth = 8 << 20
)

// applyMemoryLimit sets the runtime's soft memory limit from the config.
func (a *App) applyMemoryLimit() {
	if mib := a.Config().MemoryLimitMiB; mib > 0 {
		debug.SetMemoryLimit(int64(mib) << 20)
	}
}

// trimMemory releases the store's mapped pages and the heap's free
// memory when the file-backed resident set has grown by trimGrowth since
// the last trim and the store is quiet: after the start-up evaluation, an
// import, a full sync pass. It wakes every trimCheck and after each burst
// of changes.
func (a *App) trimMemory(ctx context.Context) error {
	tick := time.NewTicker(trimCheck)
	defer tick.Stop()
	ch, cancel := a.store.Subscribe(1)
	defer cancel()
	quiet := time.NewTimer(time.Hour)
	defer quiet.Stop()
	var lastChange time.Time // monotonic: when the store last changed
	base := -1 << 62
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-ch:
			if !ok {
				return nil
			}
			lastChange = time.Now() // monotonic elapsed time for the quiet check, not a decision: the daemon clock may stand still in tests
			quiet.Reset(trimQuiet)
			continue
		case <-quiet.C:
		case <-tick.C:
		}
		if time.Since(lastChange) < trimQuiet {
			continue // writes are going on
		}
		file, err := residentFileBytes()
		if err != nil {
			a.log.Warn("read resident memory; not trimming", "err", err)
			return nil
		}
		if file-base < trimGrowth {
			continue
		}
		a.trimNow()
		if base, err = residentFileBytes(); err != nil {
			return nil
		}
	}
}

// residentFileBytes is the process's shared (file-backed) resident
// memory, from /proc/self/statm.
func residentFileBytes() (int, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return 0, fmt.Errorf("/proc/self/statm: %q", b)
	}
	pages, err := strconv.Atoi(f[2])
	if err != nil {
		return 0, fmt.Errorf("/proc/self/statm: %w", err)
	}
	return pages * os.Getpagesize(), nil
}

var freeHeapSamples = []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}

func (a *App) trimNow() {
	if err := a.store.ReleaseMapped(); err != nil {
		a.log.Warn("release store pages", "err", err)
	}
	// Free heap spans not yet returned to the OS: return them now
	// rather than at the background scavenger's pace.
	metrics.Read(freeHeapSamples)
	if v := freeHeapSamples[0].Value; v.Kind() == metrics.KindUint64 && v.Uint64() > 4<<20 {
		debug.FreeOSMemory()
	}
}
