// Package mirror keeps the local store a mirror of OfficeRnD: the initial
// import, the periodic poll (incremental where the API allows, with a
// periodic full pass that notices deletions), and the webhook intake that
// verifies, deduplicates, acknowledges fast and applies events in order per
// member. Each entity change and the WiFi account changes it implies are
// written in one store transaction; OfficeRnD being unreachable never
// changes what is stored. Registrar registers deskgate's own webhook with
// OfficeRnD and keeps the secret that verifies its deliveries.
package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deskgate/deskgate/appliance/access"
	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/appliance/officernd"
	"github.com/deskgate/deskgate/appliance/store"
)

// Options configure a Syncer.
type Options struct {
	Client   *officernd.Client
	Store    *store.Store
	Resolver *access.Resolver
	Config   func() *config.Config // current config (reloadable)
	Log      *slog.Logger
	Now      func() time.Time
	// KickMail nudges the email sender after welcome emails were queued.
	KickMail func()
	// FingerprintKey keys the HMAC that notices member-property password
	// changes without storing the property.
	FingerprintKey []byte
	// WebhookSecret returns the secret that verifies deliveries ("" = none).
	WebhookSecret func() string
	Metrics       *Metrics
	SpaceName     string
	// ProfileURL gives a member's device-setup page for the welcome email.
	ProfileURL func(username string) string
	ServerName string // RADIUS server certificate name for the welcome email
	// Fleet, when set, makes account creation fleet-aware (docs/fleet.md).
	Fleet Fleet
	// Relay, when set, passes each verified, new webhook body on to the
	// fleet's other boxes.
	Relay func(body []byte)
}

// Fleet is what account creation asks the fleet (appliance/peer).
type Fleet interface {
	// DerivePassword returns the member's password derived from the fleet
	// secret; ok is false when the box is in no fleet.
	DerivePassword(memberID string, length int) (pw string, ok bool, err error)
	// ClaimWelcome reports, inside the account's transaction, whether this
	// box queues the member's welcome email (and marks it for the fleet).
	ClaimWelcome(tx *store.Tx, memberID, location string) (bool, error)
}

// Syncer runs import, poll and webhook intake.
type Syncer struct {
	opts  Options
	st    *store.Store
	res   *access.Resolver
	api   *officernd.Client
	log   *slog.Logger
	now   func() time.Time
	fpKey []byte

	mailQueued atomic.Bool
	runMu      sync.Mutex // one import/poll at a time
	kick       chan bool  // sync now (true = full)

	statusMu sync.Mutex
	status   Status
	// imported is closed once the initial import is done (in this run or
	// an earlier one).
	imported     chan struct{}
	importedOnce sync.Once

	hooks *webhookIntake

	schedule_ *schedule
}

// New returns a Syncer; Run starts it.
func New(o Options) *Syncer {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	s := &Syncer{
		opts: o, st: o.Store, res: o.Resolver, api: o.Client, log: o.Log, now: o.Now,
		fpKey: o.FingerprintKey, kick: make(chan bool, 1), schedule_: newSchedule(),
		imported: make(chan struct{}),
	}
	s.hooks = newWebhookIntake(s)
	return s
}

func (s *Syncer) cfg() *config.Config { return s.opts.Config() }

// RunLog is the record of one import, poll or full pass.
type RunLog struct {
	Kind      string        `json:"kind"` // import | poll | full
	Start     time.Time     `json:"start"`
	Duration  time.Duration `json:"duration"`
	Fetched   int           `json:"fetched"`
	Changed   int           `json:"changed"`
	Deleted   int           `json:"deleted"`
	Invalid   int           `json:"invalid"`
	Created   int           `json:"accountsCreated"`
	Updated   int           `json:"accountsUpdated"`
	Disabled  int           `json:"accountsDisabled"`
	Enabled   int           `json:"accountsEnabled"`
	Removed   int           `json:"accountsDeleted"`
	APICalls  int64         `json:"apiCalls"`
	FullScans []string      `json:"fullScans,omitempty"` // resources that ignored modifiedAt
	Errors    []string      `json:"errors,omitempty"`
	OK        bool          `json:"ok"`
}

func (rl *RunLog) count(o accountOutcome) {
	switch o {
	case acctCreated:
		rl.Created++
	case acctUpdated:
		rl.Updated++
	case acctDisabled:
		rl.Disabled++
	case acctEnabled:
		rl.Enabled++
	case acctDeleted:
		rl.Removed++
	}
}

// Status is the sync health the CLI's status shows.
type Status struct {
	LastSuccess  time.Time    `json:"lastSuccess,omitzero"`
	LastAttempt  time.Time    `json:"lastAttempt,omitzero"`
	LastError    string       `json:"lastError,omitempty"`
	Failures     int          `json:"consecutiveFailures"`
	ImportDone   bool         `json:"importDone"`
	LastRun      *RunLog      `json:"lastRun,omitempty"`
	WebhookStats WebhookStats `json:"webhooks"`
}

// Status returns a snapshot of sync health.
func (s *Syncer) Status() Status {
	s.statusMu.Lock()
	st := s.status
	s.statusMu.Unlock()
	st.WebhookStats = s.hooks.stats()
	return st
}

// Lag is the time since the last successful import or poll.
func (st Status) Lag(now time.Time) time.Duration {
	if st.LastSuccess.IsZero() {
		return 0
	}
	return now.Sub(st.LastSuccess)
}

const (
	stateImportDone = "sync:import-done"
	stateCursor     = "sync:cursor:"
	stateLastFull   = "sync:last-full"
	stateStatus     = "sync:status"
	bucketSyncLog   = "synclog"
	keepRunLogs     = 200
)

// Run imports on first start, then polls until ctx ends. Webhook events are
// applied by the intake's workers, which Run also owns.
func (s *Syncer) Run(ctx context.Context) error {
	s.loadStatus()
	if err := s.st.View(func(tx *store.Tx) error { return s.res.Rebuild(tx) }); err != nil {
		return fmt.Errorf("sync: load rules: %w", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.hooks.run(ctx) }()
	defer wg.Wait()

	// Time may have passed while the daemon was down: memberships that
	// ended or started since then take effect now, without OfficeRnD.
	if err := s.ReconcileAll("sync", "startup re-evaluation"); err != nil {
		s.log.Error("startup re-evaluation failed", "err", err)
	}
	cfg := s.cfg()
	initial := cfg.Sync.InitialImport == nil || *cfg.Sync.InitialImport
	if initial && !s.Status().ImportDone {
		s.retry(ctx, func() error { _, err := s.FullPass(ctx, "import"); return err })
	}
	if ctx.Err() != nil {
		return nil
	}
	interval := cfg.Sync.Interval
	poll := time.NewTimer(jitter(interval))
	defer poll.Stop()
	tick := time.NewTimer(time.Minute)
	defer tick.Stop()
	for {
		next := s.schedule_.next()
		if d := next.Sub(s.now()); !next.IsZero() && d < time.Minute {
			if d < 0 {
				d = 0
			}
			tick.Reset(d)
		}
		select {
		case <-ctx.Done():
			return nil
		case full := <-s.kick:
			s.runOnce(ctx, full)
		case <-poll.C:
			s.runOnce(ctx, false)
			poll.Reset(jitter(s.cfg().Sync.Interval))
		case <-tick.C:
			s.dueTransitions()
			tick.Reset(time.Minute)
		}
	}
}

// runOnce polls, or runs a full pass when asked or when one is due.
func (s *Syncer) runOnce(ctx context.Context, full bool) {
	var lastFull time.Time
	_ = s.st.View(func(tx *store.Tx) error { return tx.GetState(stateLastFull, &lastFull) })
	if full || s.now().Sub(lastFull) >= s.cfg().Sync.FullEvery || !s.Status().ImportDone {
		_, _ = s.FullPass(ctx, "full")
		return
	}
	_, _ = s.Poll(ctx)
}

// SyncNow asks Run for an immediate poll (or full pass).
func (s *Syncer) SyncNow(full bool) {
	select {
	case s.kick <- full:
	default:
	}
}

func (s *Syncer) retry(ctx context.Context, fn func() error) {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || ctx.Err() != nil {
			return
		}
		d := time.Duration(1<<min(attempt, 6)) * 5 * time.Second
		s.log.Warn("sync failed; will retry", "err", err, "in", d)
		select {
		case <-ctx.Done():
			return
		case full := <-s.kick:
			_ = full
		case <-time.After(d):
		}
	}
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		d = 15 * time.Minute
	}
	return d - d/10 + time.Duration(rand.Int64N(int64(d/5)+1))
}

func (s *Syncer) begin(kind string) *RunLog {
	return &RunLog{Kind: kind, Start: s.now(), APICalls: s.api.Stats().Requests}
}

// end records the run in the sync log and the status.
func (s *Syncer) end(rl *RunLog, err error) {
	rl.Duration = s.now().Sub(rl.Start)
	rl.APICalls = s.api.Stats().Requests - rl.APICalls
	rl.OK = err == nil
	if err != nil {
		rl.Errors = append(rl.Errors, err.Error())
	}
	s.statusMu.Lock()
	s.status.LastAttempt = rl.Start
	if err == nil {
		s.status.LastSuccess = rl.Start
		s.status.Failures = 0
		s.status.LastError = ""
		if rl.Kind == "import" || rl.Kind == "full" {
			s.status.ImportDone = true
			s.importedOnce.Do(func() { close(s.imported) })
		}
	} else {
		s.status.Failures++
		s.status.LastError = err.Error()
	}
	cp := *rl
	s.status.LastRun = &cp
	st := s.status
	s.statusMu.Unlock()
	werr := s.st.Update(func(tx *store.Tx) error {
		if err := tx.PutKV(bucketSyncLog, rl.Start.UTC().Format(time.RFC3339Nano), rl); err != nil {
			return err
		}
		if err := pruneLogs(tx); err != nil {
			return err
		}
		if st.ImportDone {
			if err := tx.PutState(stateImportDone, true); err != nil {
				return err
			}
		}
		return tx.PutState(stateStatus, st)
	})
	if werr != nil {
		s.log.Error("write sync log", "err", werr)
	}
	s.opts.Metrics.observeRun(rl, s.api.Stats())
	lvl := slog.LevelInfo
	if err != nil {
		lvl = slog.LevelWarn
	}
	s.log.Log(context.Background(), lvl, "sync run", "kind", rl.Kind, "duration", rl.Duration.Round(time.Millisecond),
		"fetched", rl.Fetched, "changed", rl.Changed, "deleted", rl.Deleted, "accounts_created", rl.Created,
		"accounts_disabled", rl.Disabled, "api_calls", rl.APICalls, "err", err)
}

func pruneLogs(tx *store.Tx) error {
	var keys []string
	if err := tx.ForEachKV(bucketSyncLog, "", func(k string, _ []byte) error { keys = append(keys, k); return nil }); err != nil {
		return err
	}
	for i := 0; i < len(keys)-keepRunLogs; i++ {
		if err := tx.DeleteKV(bucketSyncLog, keys[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *Syncer) loadStatus() {
	var st Status
	err := s.st.View(func(tx *store.Tx) error {
		if err := tx.GetState(stateStatus, &st); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		var done bool
		if err := tx.GetState(stateImportDone, &done); err == nil {
			st.ImportDone = done
		}
		return nil
	})
	if err != nil {
		s.log.Warn("load sync status", "err", err)
	}
	s.statusMu.Lock()
	s.status = st
	if st.ImportDone {
		s.importedOnce.Do(func() { close(s.imported) })
	}
	s.statusMu.Unlock()
}

// Imported is closed once the initial import is done: in this run, or in
// an earlier one whose data the store holds.
func (s *Syncer) Imported() <-chan struct{} { return s.imported }

// RunLogs returns the most recent sync runs, newest first.
func (s *Syncer) RunLogs(limit int) ([]RunLog, error) {
	var out []RunLog
	err := s.st.View(func(tx *store.Tx) error {
		return tx.ForEachKV(bucketSyncLog, "", func(_ string, raw []byte) error {
			var rl RunLog
			if err := json.Unmarshal(raw, &rl); err != nil {
				return err
			}
			out = append(out, rl)
			return nil
		})
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, err
}
