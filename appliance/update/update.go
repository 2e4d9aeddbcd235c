// Package update installs signed software bundles into the inactive root
// slot of an A/B box and decides, after the reboot, whether the new slot
// is kept: the health gate marks it good only when deskgated serves within
// a deadline, and otherwise marks it bad and reboots so that the boot
// loader (GRUB's boot counting) falls back to the old slot.
//
// The slot machinery is behind Backend: on the box that is RAUC (Rauc, which
// shells out to the rauc tool), in tests a fake. Every attempt is recorded
// in a small JSON file on the data partition, so that `deskgate update
// status` can say what happened also after a power cut or a fallback, when
// the slot that failed never got to say so itself.
//
// A fleet rollout drives one box through the same three calls: Install
// (with a local file or URL), then, after the box's reboot, Status until
// its LastAttempt is finished; the result is good or failed with a reason.
package update

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/deskgate/deskgate/internal/atomicfile"
)

// Slot is one root slot as the backend reports it.
type Slot struct {
	Name    string `json:"name"`             // boot name: "A" or "B"
	Device  string `json:"device,omitempty"` // block device
	Booted  bool   `json:"booted"`
	Good    bool   `json:"good"`              // the boot loader may boot it (marked good, not on trial)
	Version string `json:"version,omitempty"` // of the bundle installed into it; "" when unknown
	// Installed is when the bundle was written (zero for the factory image).
	Installed time.Time `json:"installed,omitzero"`
}

// Slots is the backend's view of the box.
type Slots struct {
	Compatible string `json:"compatible,omitempty"`
	Booted     string `json:"booted"`
	Primary    string `json:"primary,omitempty"` // the slot the next boot tries first
	Slots      []Slot `json:"slots"`
}

// Slot returns the slot with that name.
func (s Slots) Slot(name string) (Slot, bool) {
	for _, sl := range s.Slots {
		if sl.Name == name {
			return sl, true
		}
	}
	return Slot{}, false
}

// Other returns the slot that is not booted (the one an install writes).
func (s Slots) Other() (Slot, bool) {
	for _, sl := range s.Slots {
		if sl.Name != s.Booted {
			return sl, true
		}
	}
	return Slot{}, false
}

// Bundle is what a bundle says about itself once its signature checked out.
type Bundle struct {
	Compatible string `json:"compatible"`
	Version    string `json:"version"`
}

// Backend is the slot machinery.
type Backend interface {
	Status(ctx context.Context) (Slots, error)
	// Verify checks the bundle's signature against the box's keyring and
	// returns its manifest; it writes nothing.
	Verify(ctx context.Context, bundle string) (Bundle, error)
	// Install writes the bundle into the inactive slot and makes it the
	// one the next boot tries first.
	Install(ctx context.Context, bundle string) error
	MarkGood(ctx context.Context) error // the booted slot
	MarkBad(ctx context.Context) error  // the booted slot
	Reboot(ctx context.Context) error
}

// Results of an attempt.
const (
	Installing = "installing" // writing the other slot
	Rebooting  = "rebooting"  // written; the next boot tries it
	Trial      = "trial"      // booted into it; the health gate is deciding
	Good       = "good"       // healthy and kept
	Failed     = "failed"     // refused, failed to install, or rolled back: see Reason
)

// Attempt is one update, from the install to the health gate's verdict.
type Attempt struct {
	Source   string    `json:"source"` // file or URL
	Version  string    `json:"version,omitempty"`
	From     string    `json:"from"` // slot booted when it started
	To       string    `json:"to,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	Result   string    `json:"result"`
	Reason   string    `json:"reason,omitempty"`
}

// State is what the updater keeps on the data partition.
type State struct {
	// Pending is the attempt not yet decided (nil when none).
	Pending *Attempt `json:"pending,omitempty"`
	// Last is the most recent decided attempt.
	Last *Attempt `json:"last,omitempty"`
}

// Report is `deskgate update status`.
type Report struct {
	Slots
	// RunningVersion is the version of the software running now.
	RunningVersion string   `json:"runningVersion"`
	Pending        *Attempt `json:"pending,omitempty"`
	Last           *Attempt `json:"last,omitempty"`
}

// Updater installs bundles and runs the health gate.
type Updater struct {
	Backend Backend
	// Dir holds state.json and downloaded bundles (on the data partition).
	Dir string
	// Now is the clock; the product's one clock is passed in.
	Now func() time.Time
	Log *slog.Logger
	// RunningVersion is reported by Status for the booted slot when the
	// backend does not know its version (the factory image).
	RunningVersion string
	// HTTP fetches bundles given by URL (nil: http.DefaultClient).
	HTTP *http.Client
}

func (u *Updater) now() time.Time { return u.Now() }

func (u *Updater) log() *slog.Logger {
	if u.Log != nil {
		return u.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (u *Updater) statePath() string { return filepath.Join(u.Dir, "state.json") }

// LoadState reads the state (empty when none was written yet).
func (u *Updater) LoadState() (State, error) {
	var st State
	b, err := os.ReadFile(u.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("reading update state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("reading update state %s: %w", u.statePath(), err)
	}
	return st, nil
}

func (u *Updater) saveState(st State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(u.Dir, 0o700); err != nil {
		return fmt.Errorf("saving update state: %w", err)
	}
	if err := atomicfile.Write(u.statePath(), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("saving update state: %w", err)
	}
	return nil
}

// finish records a as decided.
func (u *Updater) finish(st *State, a Attempt, result, reason string) error {
	a.Result, a.Reason, a.Finished = result, reason, u.now()
	st.Pending, st.Last = nil, &a
	if result == Good {
		u.log().Info("update attempt finished", "version", a.Version, "slot", a.To, "result", result)
	} else {
		u.log().Warn("update attempt finished", "version", a.Version, "slot", a.To, "result", result, "reason", reason)
	}
	return u.saveState(*st)
}

// Status reports the slots and the attempts.
func (u *Updater) Status(ctx context.Context) (Report, error) {
	slots, err := u.Backend.Status(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("reading slot status: %w", err)
	}
	st, err := u.LoadState()
	if err != nil {
		return Report{}, err
	}
	for i := range slots.Slots {
		if slots.Slots[i].Booted && slots.Slots[i].Version == "" {
			slots.Slots[i].Version = u.RunningVersion
		}
	}
	return Report{Slots: slots, RunningVersion: u.RunningVersion, Pending: st.Pending, Last: st.Last}, nil
}

// ErrBusy is returned when an attempt is still undecided.
var ErrBusy = errors.New("an update is already in progress")

// Install verifies the bundle at src (a file or an http(s) URL), writes
// it into the inactive slot and, when reboot is set, reboots into it. A
// bundle that fails verification is refused before anything is written.
// The returned attempt says what happened (also when err is not nil).
func (u *Updater) Install(ctx context.Context, src string, reboot bool) (Attempt, error) {
	st, err := u.LoadState()
	if err != nil {
		return Attempt{}, err
	}
	slots, err := u.Backend.Status(ctx)
	if err != nil {
		return Attempt{}, fmt.Errorf("reading slot status: %w", err)
	}
	if p := st.Pending; p != nil && p.Result != Installing {
		return *p, fmt.Errorf("%w: %s into slot %s is %s", ErrBusy, p.Version, p.To, p.Result)
	}
	a := Attempt{Source: src, From: slots.Booted, Started: u.now(), Result: Installing}
	if o, ok := slots.Other(); ok {
		a.To = o.Name
	}
	fail := func(reason string, err error) (Attempt, error) {
		if serr := u.finish(&st, a, Failed, reason); serr != nil {
			return *st.Last, errors.Join(err, serr)
		}
		return *st.Last, err
	}
	path := src
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		path = filepath.Join(u.Dir, "download.raucb")
		if err := u.download(ctx, src, path); err != nil {
			return fail(err.Error(), err)
		}
		defer os.Remove(path)
	} else if _, err := os.Stat(src); err != nil {
		err = fmt.Errorf("reading bundle: %w", err)
		return fail(err.Error(), err)
	}
	b, err := u.Backend.Verify(ctx, path)
	if err != nil {
		err = fmt.Errorf("bundle refused, nothing written: %w", err)
		return fail(err.Error(), err)
	}
	if slots.Compatible != "" && b.Compatible != slots.Compatible {
		err := fmt.Errorf("bundle refused, nothing written: it is for %q, this box is %q", b.Compatible, slots.Compatible)
		return fail(err.Error(), err)
	}
	a.Version = b.Version
	st.Pending = &a
	if err := u.saveState(st); err != nil {
		return a, err
	}
	u.log().Info("installing update", "version", a.Version, "from", a.From, "to", a.To, "source", src)
	if err := u.Backend.Install(ctx, path); err != nil {
		err = fmt.Errorf("installing into slot %s: %w", a.To, err)
		return fail(err.Error(), err)
	}
	a.Result = Rebooting
	st.Pending = &a
	if err := u.saveState(st); err != nil {
		return a, err
	}
	if reboot {
		if err := u.Backend.Reboot(ctx); err != nil {
			return a, fmt.Errorf("rebooting into slot %s: %w", a.To, err)
		}
	}
	return a, nil
}

func (u *Updater) download(ctx context.Context, url, dst string) error {
	c := u.HTTP
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("downloading bundle: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("downloading bundle: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("downloading bundle %s: %s", url, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("downloading bundle: %w", err)
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("downloading bundle: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("downloading bundle %s: %w", url, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("downloading bundle: %w", err)
	}
	return nil
}

// Health reports nil when deskgated serves, else why not.
type Health func(ctx context.Context) error

// GateResult is what the gate decided at this boot.
type GateResult struct {
	// Decided is the attempt the gate finished now (nil when none).
	Decided *Attempt
	// Rebooting: the slot was marked bad and the box reboots to fall back.
	Rebooting bool
}

// Gate runs once per boot. After an update into the booted slot it waits
// up to deadline for health to pass, polling every interval: then it marks
// the slot good, else it records why, marks the slot bad and reboots (so
// the boot loader falls back). When an attempt's slot is not the booted
// one, the new slot never got this far (an interrupted install, or a boot
// that failed before the gate ran): that is recorded as the reason. Any
// other boot marks the booted slot good at once: it got to userland, which
// is what boot counting guards.
func (u *Updater) Gate(ctx context.Context, health Health, deadline, interval time.Duration) (GateResult, error) {
	// At boot the slot service may still be starting: retry for a while
	// (an elapsed-time bound on the monotonic clock, not a decision).
	var slots Slots
	var err error
	for start := time.Now(); ; {
		if slots, err = u.Backend.Status(ctx); err == nil {
			break
		}
		if time.Since(start) > deadline {
			return GateResult{}, fmt.Errorf("reading slot status: %w", err)
		}
		select {
		case <-ctx.Done():
			return GateResult{}, fmt.Errorf("reading slot status: %w", err)
		case <-time.After(interval):
		}
	}
	st, err := u.LoadState()
	if err != nil {
		return GateResult{}, err
	}
	var res GateResult
	if p := st.Pending; p != nil && p.To != slots.Booted {
		reason := fmt.Sprintf("slot %s never came up; the box booted %s instead (the boot failed before the health gate ran, so GRUB fell back)", p.To, slots.Booted)
		if p.Result == Installing {
			reason = fmt.Sprintf("the install into slot %s was interrupted (power loss or crash while writing); slot %s stays in use", p.To, slots.Booted)
		}
		if err := u.finish(&st, *p, Failed, reason); err != nil {
			return res, err
		}
		res.Decided = st.Last
	}
	p := st.Pending
	if p == nil {
		if b, ok := slots.Slot(slots.Booted); !ok || !b.Good {
			if err := u.Backend.MarkGood(ctx); err != nil {
				return res, fmt.Errorf("marking slot %s good: %w", slots.Booted, err)
			}
		}
		return res, nil
	}
	// On trial: this boot is the first into the new slot.
	p.Result = Trial
	if err := u.saveState(st); err != nil {
		return res, err
	}
	u.log().Info("update health gate: waiting for deskgated", "slot", slots.Booted, "version", p.Version, "deadline", deadline)
	start := u.now()
	hctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	var lastErr error
	for {
		if lastErr = health(hctx); lastErr == nil {
			break
		}
		select {
		case <-hctx.Done():
		case <-time.After(interval):
			continue
		}
		break
	}
	if lastErr == nil {
		if err := u.Backend.MarkGood(ctx); err != nil {
			return res, fmt.Errorf("marking slot %s good: %w", slots.Booted, err)
		}
		a := *p
		if err := u.finish(&st, a, Good, fmt.Sprintf("deskgated healthy after %s", u.now().Sub(start).Round(time.Second))); err != nil {
			return res, err
		}
		res.Decided = st.Last
		return res, nil
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	reason := fmt.Sprintf("deskgated was not healthy within %s: %v", deadline, lastErr)
	other, ok := slots.Other()
	if !ok || !other.Good {
		// Nothing to fall back to: keep running what there is, say why.
		if err := u.finish(&st, *p, Failed, reason+"; no other good slot to fall back to, so this one stays"); err != nil {
			return res, err
		}
		res.Decided = st.Last
		return res, u.Backend.MarkGood(ctx)
	}
	if err := u.finish(&st, *p, Failed, reason+fmt.Sprintf("; rolled back to slot %s", other.Name)); err != nil {
		return res, err
	}
	res.Decided = st.Last
	if err := u.Backend.MarkBad(ctx); err != nil {
		return res, fmt.Errorf("marking slot %s bad: %w", slots.Booted, err)
	}
	res.Rebooting = true
	if err := u.Backend.Reboot(ctx); err != nil {
		return res, fmt.Errorf("rebooting to fall back to slot %s: %w", other.Name, err)
	}
	return res, nil
}
