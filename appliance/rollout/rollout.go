// Package rollout spreads a signed update bundle over the fleet and
// installs it box by box (`deskgate fleet update BUNDLE`, docs/fleet.md
// "Updates across the fleet").
//
// The box where the command runs verifies the bundle against its own
// keyring, cuts it into content-addressed chunks (SHA-256 named, 256 KiB)
// in <data_dir>/rollout/chunks and publishes a manifest (chunk hashes,
// bundle hash, version, canary, order, the signer check) as a replicated
// register. Every box of the fleet then fetches the chunks it lacks from
// its linked peers over the fleet channel (a few in flight at a time; a
// box that reconnects or restarts asks only for what it does not hold),
// reassembles the bundle, checks its hash, and when its turn comes installs
// it with appliance/update, which verifies it again against this box's own
// keyring before writing anything. The canary goes first; the others
// install once the canary reports, after its reboot, that its health gate
// passed and it runs the new version. Any failure (refused, install
// failed, rolled back by the gate) halts the rollout: boxes that have not
// installed yet report "halted" and never install. Each box reports its
// progress as its own replicated register, so every box shows the same
// status. Chunks stay on disk until every box of the rollout is done.
//
// It imports peer and update; only the composition root imports it.
package rollout

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/deskgate/deskgate/appliance/peer"
	"github.com/deskgate/deskgate/appliance/update"
	"github.com/deskgate/deskgate/internal/atomicfile"
)

// Options configure an Agent.
type Options struct {
	Fleet *peer.Node
	// Updater installs on this box; nil: this box has no update backend
	// (it refuses to start a rollout and fails its turn in one).
	Updater *update.Updater
	// Dir holds chunks/ (on the data partition: they survive a restart).
	Dir string
	// BundleDir is where the bundle is reassembled for the install
	// (default Dir/bundles; the daemon uses a tmpfs, so the data
	// partition holds the bundle's bytes once, as chunks).
	BundleDir string
	Now       func() time.Time
	Log       *slog.Logger
	// Poll is how often the agent looks at the rollouts (default 1s).
	Poll time.Duration
	// Window is how many chunk requests may be in flight (default 4).
	Window int
	// Retry: a chunk asked for and not received within it is asked for
	// again, from the next box that holds it (default 10s).
	Retry time.Duration
	// OnChunk is called after a chunk from a peer was stored (tests).
	OnChunk func(rollout, hash string)
}

// Agent runs this box's part of every rollout.
type Agent struct {
	o    Options
	log  *slog.Logger
	kick chan struct{}

	mu        sync.Mutex
	want      map[string]*wanted // chunk hash -> request in flight
	received  map[string]int64   // rollout -> chunk bytes received from peers (this run)
	base      map[string]int64   // rollout -> chunk bytes reported by earlier runs
	fetched   map[string]int     // rollout -> chunks fetched by this run
	last      map[string]sent    // rollout -> last progress reported
	assembled map[string]bool    // rollout -> bundle assembled and checked
	cleaned   map[string]bool
	installMu sync.Mutex
	startMu   sync.Mutex // one Start at a time (the busy check and the publish)

	// life: ChunkReceived holds it shared; Run's end takes it to set
	// stopped, so no chunk is written after Run returned.
	life    sync.RWMutex
	stopped bool
}

type wanted struct {
	rollout string
	at      time.Time // monotonic: an elapsed-time bound for the retry
	tries   int
}

type sent struct {
	v  peer.RolloutBoxValue
	at time.Time // monotonic: throttles progress reports
}

// New makes an agent; Run starts it.
func New(o Options) *Agent {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Window <= 0 {
		o.Window = 4
	}
	if o.Retry <= 0 {
		o.Retry = 10 * time.Second
	}
	if o.BundleDir == "" {
		o.BundleDir = filepath.Join(o.Dir, "bundles")
	}
	a := &Agent{
		o: o, log: o.Log, kick: make(chan struct{}, 1),
		want: map[string]*wanted{}, received: map[string]int64{}, base: map[string]int64{}, fetched: map[string]int{},
		last: map[string]sent{}, assembled: map[string]bool{}, cleaned: map[string]bool{},
	}
	o.Fleet.SetChunkHandler(a)
	return a
}

func (a *Agent) chunkPath(hash string) string { return filepath.Join(a.o.Dir, "chunks", hash) }

// BundlePath is where a box assembles rollout id's bundle.
func (a *Agent) BundlePath(id string) string {
	return filepath.Join(a.o.BundleDir, id+".raucb")
}

// ErrBusy is returned by Start while another rollout is in progress.
var ErrBusy = errors.New("a rollout is in progress")

// ErrNoBackend is returned by Start on a box without an update backend.
var ErrNoBackend = errors.New("this box has no update backend (rauc): it cannot verify or install bundles")

// Start verifies bundle against this box's keyring, cuts it into chunks
// and publishes the rollout, with canary first ("" = the box with the
// fewest live sessions). A bundle that does not verify is refused before
// any chunk is written or anything is sent.
func (a *Agent) Start(ctx context.Context, bundle, canary string) (peer.RolloutValue, error) {
	self := a.o.Fleet.BoxID()
	if self == "" {
		return peer.RolloutValue{}, peer.ErrNotInFleet
	}
	a.startMu.Lock()
	defer a.startMu.Unlock()
	if a.o.Updater == nil {
		return peer.RolloutValue{}, ErrNoBackend
	}
	rs, err := a.o.Fleet.Rollouts()
	if err != nil {
		return peer.RolloutValue{}, err
	}
	for _, r := range rs {
		if st, _ := State(r); st == StateRunning {
			return peer.RolloutValue{}, fmt.Errorf("%w: %s (version %s) from %s; see deskgate fleet update status", ErrBusy, r.ID, r.Version, r.Origin)
		}
	}
	fi, err := os.Stat(bundle)
	if err != nil {
		return peer.RolloutValue{}, fmt.Errorf("reading bundle: %w", err)
	}
	if n := (fi.Size() + peer.ChunkSize - 1) / peer.ChunkSize; fi.Size() == 0 || n > peer.MaxRolloutChunks {
		return peer.RolloutValue{}, fmt.Errorf("bundle %s: %d bytes; a rollout carries 1 byte to %d MiB", bundle, fi.Size(), peer.MaxRolloutChunks*peer.ChunkSize>>20)
	}
	b, err := a.o.Updater.Backend.Verify(ctx, bundle)
	if err != nil {
		return peer.RolloutValue{}, fmt.Errorf("bundle refused at %s, nothing sent: %w", self, err)
	}
	slots, err := a.o.Updater.Backend.Status(ctx)
	if err != nil {
		return peer.RolloutValue{}, fmt.Errorf("reading slot status: %w", err)
	}
	if slots.Compatible != "" && b.Compatible != slots.Compatible {
		return peer.RolloutValue{}, fmt.Errorf("bundle refused at %s, nothing sent: it is for %q, this box is %q", self, b.Compatible, slots.Compatible)
	}
	boxes, err := a.o.Fleet.FleetBoxes()
	if err != nil {
		return peer.RolloutValue{}, err
	}
	why := "chosen by the operator"
	if canary == "" {
		live, err := a.o.Fleet.LiveSessions()
		if err != nil {
			return peer.RolloutValue{}, err
		}
		canary = boxes[0]
		for _, bx := range boxes[1:] {
			if live[bx] < live[canary] {
				canary = bx
			}
		}
		why = fmt.Sprintf("fewest live sessions (%d)", live[canary])
	} else if !slices.Contains(boxes, canary) {
		return peer.RolloutValue{}, fmt.Errorf("canary %q is not a box of this fleet (%s)", canary, strings.Join(boxes, ", "))
	}
	order := append([]string{canary}, slices.DeleteFunc(slices.Clone(boxes), func(x string) bool { return x == canary })...)
	chunks, sum, size, err := a.split(bundle)
	if err != nil {
		return peer.RolloutValue{}, err
	}
	id := make([]byte, 6)
	if _, err := rand.Read(id); err != nil {
		return peer.RolloutValue{}, err
	}
	v := peer.RolloutValue{
		ID: "r" + hex.EncodeToString(id), Version: b.Version, Compatible: b.Compatible,
		Size: size, SHA256: sum, ChunkSize: peer.ChunkSize, Chunks: chunks,
		Origin: self, Canary: canary, CanaryWhy: why, Boxes: order,
		Verified: "signature verified against " + self + "'s update keyring", Created: a.o.Now(),
	}
	if err := a.o.Fleet.PublishRollout(v); err != nil {
		return peer.RolloutValue{}, err
	}
	a.log.Info("fleet rollout started", "rollout", v.ID, "version", v.Version, "bytes", size, "chunks", len(chunks), "canary", canary, "why", why, "boxes", strings.Join(order, ","))
	a.nudge()
	return v, nil
}

// split writes bundle's chunks (those not held yet) and returns their
// hashes, the bundle's hash and size.
func (a *Agent) split(bundle string) ([]string, string, int64, error) {
	f, err := os.Open(bundle)
	if err != nil {
		return nil, "", 0, fmt.Errorf("reading bundle: %w", err)
	}
	defer f.Close()
	if err := os.MkdirAll(filepath.Join(a.o.Dir, "chunks"), 0o700); err != nil {
		return nil, "", 0, fmt.Errorf("chunk store: %w", err)
	}
	whole := sha256.New()
	buf := make([]byte, peer.ChunkSize)
	var hashes []string
	var size int64
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			whole.Write(buf[:n])
			s := sha256.Sum256(buf[:n])
			h := hex.EncodeToString(s[:])
			if _, serr := os.Stat(a.chunkPath(h)); serr != nil {
				if werr := atomicfile.Write(a.chunkPath(h), buf[:n], 0o600); werr != nil {
					return nil, "", 0, fmt.Errorf("chunk store: %w", werr)
				}
			}
			hashes = append(hashes, h)
			size += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, "", 0, fmt.Errorf("reading bundle: %w", err)
		}
	}
	return hashes, hex.EncodeToString(whole.Sum(nil)), size, nil
}

// Chunk implements peer.ChunkHandler.
func (a *Agent) Chunk(hash string) []byte {
	b, err := os.ReadFile(a.chunkPath(hash))
	if err != nil {
		return nil
	}
	return b
}

// ChunkReceived implements peer.ChunkHandler: a chunk this box asked for
// is stored; anything else is dropped.
func (a *Agent) ChunkReceived(box, rollout, hash string, data []byte) {
	a.life.RLock()
	defer a.life.RUnlock()
	if a.stopped {
		return
	}
	a.mu.Lock()
	w := a.want[hash]
	a.mu.Unlock()
	if w == nil || w.rollout != rollout {
		return
	}
	// The file first, then the request is done: request() never asks
	// again for a chunk that is neither in flight nor on disk.
	err := os.MkdirAll(filepath.Join(a.o.Dir, "chunks"), 0o700)
	if err == nil {
		err = atomicfile.Write(a.chunkPath(hash), data, 0o600)
	}
	if err != nil {
		a.log.Error("rollout: storing a chunk", "rollout", rollout, "from", box, "err", err)
		return
	}
	a.mu.Lock()
	if a.want[hash] == w {
		delete(a.want, hash)
		a.received[rollout] += int64(len(data))
		a.fetched[rollout]++
	}
	a.mu.Unlock()
	if a.o.OnChunk != nil {
		a.o.OnChunk(rollout, hash)
	}
	a.nudge()
}

// Fetched reports how many chunks of rollout this run fetched from peers
// and their bytes.
func (a *Agent) Fetched(rollout string) (int, int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fetched[rollout], a.received[rollout]
}

func (a *Agent) nudge() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Run takes part in rollouts until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	t := time.NewTicker(a.o.Poll)
	defer t.Stop()
	defer func() {
		a.life.Lock()
		a.stopped = true
		a.life.Unlock()
	}()
	for {
		a.step(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-a.kick:
		}
	}
}

func (a *Agent) step(ctx context.Context) {
	self := a.o.Fleet.BoxID()
	if self == "" {
		return
	}
	rs, err := a.o.Fleet.Rollouts()
	if err != nil {
		a.log.Error("rollout: reading rollouts", "err", err)
		return
	}
	for _, r := range rs {
		if ctx.Err() != nil {
			return
		}
		if slices.Contains(r.Boxes, self) {
			a.stepRollout(ctx, self, r, rs)
		}
	}
}

// Rollout states.
const (
	StateRunning = "in progress"
	StateDone    = "done"   // every box runs the new version
	StateHalted  = "halted" // a box failed; see the reason
)

// State says where rollout r stands and, when halted, which box failed
// and why.
func State(r peer.RolloutState) (string, string) {
	done := true
	for _, b := range r.Boxes {
		p := r.Progress[b]
		if p.Phase == peer.PhaseFailed {
			return StateHalted, fmt.Sprintf("box %s failed: %s", b, p.Reason)
		}
		if p.Phase != peer.PhaseGood {
			done = false
		}
	}
	if done {
		return StateDone, ""
	}
	return StateRunning, ""
}

// finished: every box is done with r (or r is done).
func finished(r peer.RolloutState) bool {
	for _, b := range r.Boxes {
		if !r.Progress[b].Terminal() {
			return false
		}
	}
	return true
}

func (a *Agent) stepRollout(ctx context.Context, self string, r peer.RolloutState, all []peer.RolloutState) {
	my := r.Progress[self]
	if my.Terminal() {
		if finished(r) {
			a.cleanup(r, all)
		}
		return
	}
	if my.Phase == peer.PhaseInstalling || my.Phase == peer.PhaseRebooting {
		a.checkAttempt(ctx, r, my)
		return
	}
	if st, why := State(r); st == StateHalted {
		a.report(r, peer.RolloutBoxValue{Phase: peer.PhaseHalted, Have: my.Have, Reason: "not installed: " + why}, true)
		return
	}
	missing := a.missing(r)
	have := len(r.Chunks) - len(missing)
	if len(missing) > 0 {
		a.report(r, peer.RolloutBoxValue{Phase: peer.PhaseFetching, Have: have}, false)
		a.request(r, missing)
		return
	}
	path, err := a.assemble(r)
	if err != nil {
		a.log.Warn("rollout: assembling the bundle", "rollout", r.ID, "err", err)
		return
	}
	a.report(r, peer.RolloutBoxValue{Phase: peer.PhaseFetching, Have: have}, false)
	canary := r.Progress[r.Canary]
	if self != r.Canary && (canary.Phase != peer.PhaseGood || canary.Version != r.Version) {
		return // wait for the canary
	}
	a.install(ctx, r, path, have)
}

func (a *Agent) install(ctx context.Context, r peer.RolloutState, path string, have int) {
	a.installMu.Lock()
	defer a.installMu.Unlock()
	u := a.o.Updater
	if u == nil {
		a.report(r, peer.RolloutBoxValue{Phase: peer.PhaseFailed, Have: have, Reason: ErrNoBackend.Error()}, true)
		return
	}
	a.report(r, peer.RolloutBoxValue{Phase: peer.PhaseInstalling, Have: have}, true)
	a.log.Info("rollout: installing", "rollout", r.ID, "version", r.Version)
	att, err := u.Install(ctx, path, false)
	if err != nil {
		reason := att.Reason
		if reason == "" {
			reason = err.Error()
		}
		a.report(r, peer.RolloutBoxValue{Phase: peer.PhaseFailed, Have: have, Version: u.RunningVersion, Reason: reason}, true)
		return
	}
	// Say so before rebooting: the register reaches the others now or,
	// by anti-entropy, after the reboot.
	a.report(r, peer.RolloutBoxValue{Phase: peer.PhaseRebooting, Have: have}, true)
	if err := u.Backend.Reboot(ctx); err != nil {
		a.report(r, peer.RolloutBoxValue{Phase: peer.PhaseFailed, Have: have, Version: u.RunningVersion, Reason: fmt.Sprintf("rebooting into slot %s: %v", att.To, err)}, true)
	}
}

// checkAttempt turns the health gate's verdict on this box's install
// (after its reboot) into its progress.
func (a *Agent) checkAttempt(ctx context.Context, r peer.RolloutState, my peer.RolloutBoxValue) {
	u := a.o.Updater
	if u == nil {
		return
	}
	st, err := u.LoadState()
	if err != nil {
		a.log.Error("rollout: reading update state", "err", err)
		return
	}
	src := a.BundlePath(r.ID)
	if p := st.Pending; p != nil && p.Source == src {
		return // written, or booted and on trial: the gate decides
	}
	l := st.Last
	if l == nil || l.Source != src {
		a.report(r, peer.RolloutBoxValue{Phase: peer.PhaseFailed, Have: my.Have, Version: u.RunningVersion,
			Reason: "the box restarted before it installed the bundle (no update attempt recorded)"}, true)
		return
	}
	rep, err := u.Status(ctx)
	if err != nil {
		a.log.Error("rollout: reading update status", "err", err)
		return
	}
	switch {
	case l.Result == update.Good && rep.RunningVersion == r.Version:
		a.report(r, peer.RolloutBoxValue{Phase: peer.PhaseGood, Have: my.Have, Version: rep.RunningVersion, Reason: l.Reason}, true)
	case l.Result == update.Good:
		a.report(r, peer.RolloutBoxValue{Phase: peer.PhaseFailed, Have: my.Have, Version: rep.RunningVersion,
			Reason: fmt.Sprintf("the health gate passed but the box runs %s, not %s", rep.RunningVersion, r.Version)}, true)
	case l.Result == update.Failed:
		a.report(r, peer.RolloutBoxValue{Phase: peer.PhaseFailed, Have: my.Have, Version: rep.RunningVersion, Reason: l.Reason}, true)
	}
}

// report originates this box's progress when it changed: at once when
// now is set or the phase changed, else (chunk counts) at most every 5s.
func (a *Agent) report(r peer.RolloutState, v peer.RolloutBoxValue, now bool) {
	a.mu.Lock()
	prev, ok := a.last[r.ID]
	if !ok {
		prev.v = r.Progress[a.o.Fleet.BoxID()]
		if _, seen := a.base[r.ID]; !seen {
			a.base[r.ID] = prev.v.ChunkBytes
		}
	}
	v.ChunkBytes = a.base[r.ID] + a.received[r.ID]
	a.mu.Unlock()
	same := prev.v.Phase == v.Phase && prev.v.Have == v.Have && prev.v.Reason == v.Reason && prev.v.Version == v.Version
	if same || (!now && prev.v.Phase == v.Phase && v.Have < len(r.Chunks) && time.Since(prev.at) < 5*time.Second) {
		return
	}
	if err := a.o.Fleet.ReportRollout(r.ID, v); err != nil {
		a.log.Error("rollout: reporting progress", "rollout", r.ID, "err", err)
		return
	}
	a.mu.Lock()
	a.last[r.ID] = sent{v: v, at: time.Now()} // throttling only: not the daemon's clock
	a.mu.Unlock()
	if v.Phase == peer.PhaseFailed {
		a.log.Warn("rollout: this box failed", "rollout", r.ID, "version", r.Version, "reason", v.Reason)
	} else if v.Phase != peer.PhaseFetching {
		a.log.Info("rollout: progress", "rollout", r.ID, "version", r.Version, "phase", v.Phase, "reason", v.Reason)
	}
}

// missing lists the chunks of r this box does not hold.
func (a *Agent) missing(r peer.RolloutState) []string {
	var out []string
	for _, h := range r.Chunks {
		if _, err := os.Stat(a.chunkPath(h)); err != nil && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// request asks linked peers for missing chunks, keeping Window requests
// in flight; one not answered within Retry is asked again from the next
// box that may hold it.
func (a *Agent) request(r peer.RolloutState, missing []string) {
	linked := a.o.Fleet.LinkedPeers()
	// Boxes that hold every chunk first (the origin, boxes done fetching),
	// then any other linked box.
	var full, other []string
	for _, b := range linked {
		if b == r.Origin || r.Progress[b].Have == len(r.Chunks) {
			full = append(full, b)
		} else if slices.Contains(r.Boxes, b) {
			other = append(other, b)
		}
	}
	sources := append(full, other...)
	if len(sources) == 0 {
		return
	}
	now := time.Now() // an elapsed-time bound for the retry, not the daemon's clock
	a.mu.Lock()
	inflight := 0
	for _, w := range a.want {
		if now.Sub(w.at) < a.o.Retry {
			inflight++
		}
	}
	ask := map[string][]string{}
	for _, h := range missing {
		if inflight >= a.o.Window {
			break
		}
		w := a.want[h]
		if w != nil && now.Sub(w.at) < a.o.Retry {
			continue
		}
		if _, err := os.Stat(a.chunkPath(h)); err == nil {
			continue // arrived since missing() looked
		}
		if w == nil {
			w = &wanted{rollout: r.ID}
			a.want[h] = w
		}
		src := sources[w.tries%len(sources)]
		w.at, w.tries = now, w.tries+1
		ask[src] = append(ask[src], h)
		inflight++
	}
	a.mu.Unlock()
	for src, hs := range ask {
		if !a.o.Fleet.WantChunks(src, r.ID, hs) {
			a.mu.Lock()
			for _, h := range hs {
				delete(a.want, h)
			}
			a.mu.Unlock()
		}
	}
}

// assemble writes the bundle from its chunks and checks its hash; a chunk
// whose bytes do not match its name is removed (and fetched again).
func (a *Agent) assemble(r peer.RolloutState) (string, error) {
	path := a.BundlePath(r.ID)
	a.mu.Lock()
	done := a.assembled[r.ID]
	a.mu.Unlock()
	if done {
		return path, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("assembling the bundle: %w", err)
	}
	tmp := path + ".part"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("assembling the bundle: %w", err)
	}
	defer os.Remove(tmp)
	whole := sha256.New()
	for _, h := range r.Chunks {
		b, err := os.ReadFile(a.chunkPath(h))
		if err != nil {
			f.Close()
			return "", fmt.Errorf("assembling the bundle: %w", err)
		}
		if s := sha256.Sum256(b); hex.EncodeToString(s[:]) != h {
			f.Close()
			os.Remove(a.chunkPath(h))
			return "", fmt.Errorf("assembling the bundle: chunk %s is damaged; fetching it again", h)
		}
		whole.Write(b)
		if _, err := f.Write(b); err != nil {
			f.Close()
			return "", fmt.Errorf("assembling the bundle: %w", err)
		}
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("assembling the bundle: %w", err)
	}
	if got := hex.EncodeToString(whole.Sum(nil)); got != r.SHA256 {
		return "", fmt.Errorf("assembling the bundle: its SHA-256 is %s, the manifest says %s", got, r.SHA256)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("assembling the bundle: %w", err)
	}
	a.mu.Lock()
	a.assembled[r.ID] = true
	a.mu.Unlock()
	return path, nil
}

// cleanup removes r's bundle and the chunks no unfinished rollout needs.
func (a *Agent) cleanup(r peer.RolloutState, all []peer.RolloutState) {
	a.mu.Lock()
	done := a.cleaned[r.ID]
	a.cleaned[r.ID] = true
	a.mu.Unlock()
	if done {
		return
	}
	keep := map[string]bool{}
	for _, o := range all {
		if o.ID != r.ID && !finished(o) {
			for _, h := range o.Chunks {
				keep[h] = true
			}
		}
	}
	n := 0
	for _, h := range r.Chunks {
		if !keep[h] {
			if err := os.Remove(a.chunkPath(h)); err == nil {
				n++
			}
		}
	}
	_ = os.Remove(a.BundlePath(r.ID))
	if n > 0 {
		a.log.Info("rollout ended: chunks removed", "rollout", r.ID, "chunks", n)
	}
}

// Status is `deskgate fleet update status`: the rollouts this box knows,
// newest first.
type Status struct {
	Box      string   `json:"box"`
	Rollouts []Report `json:"rollouts"`
}

// Report is one rollout with its state.
type Report struct {
	peer.RolloutState
	State  string `json:"state"`
	Halted string `json:"halted,omitempty"` // which box failed and why
}

// Status reports the rollouts, newest first.
func (a *Agent) Status() (Status, error) {
	rs, err := a.o.Fleet.Rollouts()
	if err != nil {
		return Status{}, err
	}
	st := Status{Box: a.o.Fleet.BoxID()}
	for i := len(rs) - 1; i >= 0; i-- {
		s, why := State(rs[i])
		st.Rollouts = append(st.Rollouts, Report{RolloutState: rs[i], State: s, Halted: why})
	}
	return st, nil
}
