package appliance

import (
	"context"
	"time"
)

// Readiness: the daemon is ready once the initial import is done (in this
// run or an earlier one) and the guest lifecycle has reconciled what the
// import brought (codes created, emails queued). Until then, background
// work started by the import may still write to the audit trail; status,
// the health gate of an update and the tests all wait for it.

// Ready reports whether the daemon has settled after its start.
func (a *App) Ready() bool { return a.ready.Load() }

// becomeReady waits for the import and the guest lifecycle's first settle,
// then marks the daemon ready.
func (a *App) becomeReady(ctx context.Context) {
	t0 := time.Now() // a measurement for the log, not a decision
	select {
	case <-a.syncer.Imported():
	case <-ctx.Done():
		return
	}
	select {
	case <-a.guests.started:
	case <-ctx.Done():
		return
	}
	a.guests.mu.Lock()
	mgr := a.guests.mgr
	a.guests.mu.Unlock()
	if err := mgr.Settle(ctx); err != nil {
		return
	}
	a.ready.Store(true)
	a.log.Info("deskgated ready", "after", time.Since(t0).Round(time.Millisecond))
}
