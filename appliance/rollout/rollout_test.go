package rollout

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/peer"
	"github.com/deskgate/deskgate/appliance/store"
	"github.com/deskgate/deskgate/appliance/update"
	"github.com/deskgate/deskgate/internal/testepoch"
)

// events records what happened across the boxes, in order.
type events struct {
	mu sync.Mutex
	l  []string
	at []time.Time
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.l = append(e.l, s)
	e.at = append(e.at, time.Now())
	e.mu.Unlock()
}

func (e *events) time(s string) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	if i := slices.Index(e.l, s); i >= 0 {
		return e.at[i]
	}
	return time.Time{}
}

func (e *events) index(s string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Index(e.l, s)
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.l, "\n")
}

// box is one appliance as the rollout sees it: its store, fleet node,
// updater and rollout agent over a fake slot backend that survives its
// simulated reboots (the Fake is the disk: slots, grubenv). A reboot stops
// everything, lets "GRUB" pick the slot and starts again on the same data
// dir; the update gate runs at every boot, as init runs it on the image.
// A slot whose version ends in "-broken" holds a deskgated that exits at
// start: only the gate runs, and finds it unhealthy.
type box struct {
	t      *testing.T
	id     string
	dir    string
	listen string
	now    func() time.Time
	fake   *update.Fake
	ev     *events
	logs   *bytes.Buffer

	mu      sync.Mutex
	node    *peer.Node
	agent   *Agent
	upd     *update.Updater
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	st      *store.Store
	onChunk atomic.Pointer[func()] // called after each chunk stored
	boots   int
	bootErr error
}

// backend is the box's Fake with a reboot that really reboots the box.
type backend struct {
	*update.Fake
	b *box
}

func (k backend) Install(ctx context.Context, bundle string) error {
	err := k.Fake.Install(ctx, bundle)
	if err == nil {
		k.b.ev.add("install " + k.b.id)
	}
	return err
}

func (k backend) Reboot(ctx context.Context) error {
	_ = k.Fake.Reboot(ctx)
	go k.b.reboot()
	return nil
}

type syncBuf struct {
	mu sync.Mutex
	b  *bytes.Buffer
	t  *testing.T
	id string
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if testing.Verbose() {
		s.t.Logf("%s: %s", s.id, strings.TrimSpace(string(p)))
	}
	return s.b.Write(p)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newBox(t *testing.T, id string, now func() time.Time, ev *events, keyring string) *box {
	b := &box{t: t, id: id, dir: t.TempDir(), listen: freeAddr(t), now: now, ev: ev, logs: &bytes.Buffer{},
		fake: update.NewFake("deskgate-x86_64", keyring, "v1")}
	b.fake.Boot()
	b.start()
	t.Cleanup(b.stop)
	return b
}

// start is a boot's userland: deskgated (store, fleet, rollout) and the
// update gate.
func (b *box) start() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.boots++
	slots, _ := b.fake.Status(context.Background())
	version, _ := slots.Slot(slots.Booted)
	log := slog.New(slog.NewTextHandler(&syncBuf{b: b.logs, t: b.t, id: b.id}, nil)).With("box", b.id)
	b.upd = &update.Updater{Backend: backend{b.fake, b}, Dir: filepath.Join(b.dir, "update"), Now: b.now, Log: log, RunningVersion: version.Version}
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	health := func(context.Context) error {
		return errors.New("deskgated exited with status 3 (this build fails at start)")
	}
	if !strings.HasSuffix(version.Version, "-broken") {
		st, err := store.Open(filepath.Join(b.dir, "deskgate.db"), store.Options{Now: b.now})
		if err != nil {
			b.bootErr = err
			return
		}
		n, err := peer.New(peer.Options{Store: st, DataDir: b.dir, Listen: b.listen, Now: b.now, Log: log, PingInterval: 300 * time.Millisecond})
		if err != nil {
			st.Close()
			b.bootErr = err
			return
		}
		b.st, b.node = st, n
		b.agent = New(Options{Fleet: n, Updater: b.upd, Dir: filepath.Join(b.dir, "rollout"), Now: b.now, Log: log,
			Poll: 100 * time.Millisecond, Retry: 2 * time.Second, OnChunk: func(string, string) {
				if f := b.onChunk.Load(); f != nil {
					(*f)()
				}
			}})
		b.wg.Add(2)
		go func() { defer b.wg.Done(); _ = n.Run(ctx) }()
		go func() { defer b.wg.Done(); _ = b.agent.Run(ctx) }()
		// The gate's health: this box's fleet node reaches a peer (or the
		// box is in no fleet yet).
		health = func(context.Context) error {
			if n.BoxID() != "" && len(n.LinkedPeers()) == 0 {
				return errors.New("no fleet peer reachable")
			}
			return nil
		}
	} else {
		b.node, b.agent, b.st = nil, nil, nil
	}
	u := b.upd
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		res, err := u.Gate(ctx, health, time.Second, 50*time.Millisecond)
		if err != nil && ctx.Err() == nil {
			b.t.Errorf("%s: update gate: %v", b.id, err)
		}
		if res.Decided != nil {
			b.ev.add(fmt.Sprintf("gate %s %s %s", b.id, res.Decided.Version, res.Decided.Result))
		}
	}()
}

func (b *box) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cancel == nil {
		return
	}
	b.cancel()
	b.wg.Wait()
	if b.st != nil {
		b.st.Close()
	}
	b.cancel, b.node, b.agent, b.st = nil, nil, nil, nil
}

// reboot is a power cycle: stop, GRUB picks a slot, start.
func (b *box) reboot() {
	b.stop()
	slot := b.fake.Boot()
	_, vs, _, _ := b.disk()
	b.ev.add(fmt.Sprintf("boot %s %s %s", b.id, slot, vs[slot]))
	b.start()
}

func (b *box) current() (*peer.Node, *Agent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.node, b.agent
}

func (b *box) status() (Status, bool) {
	_, a := b.current()
	if a == nil {
		return Status{}, false
	}
	st, err := a.Status()
	return st, err == nil
}

// disk is the box's slots as the fake holds them: booted slot, version
// and good flag per slot, slot writes.
func (b *box) disk() (string, map[string]string, map[string]bool, int) {
	sl, _ := b.fake.Status(context.Background())
	vs, good := map[string]string{}, map[string]bool{}
	for _, x := range sl.Slots {
		vs[x.Name], good[x.Name] = x.Version, x.Good
	}
	w, _ := b.fake.Counts()
	return sl.Booted, vs, good, w
}

func (b *box) writes() int { w, _ := b.fake.Counts(); return w }

func (b *box) chunkFiles() []string {
	fs, _ := filepath.Glob(filepath.Join(b.dir, "rollout", "chunks", "*"))
	return slices.DeleteFunc(fs, func(f string) bool { return strings.HasPrefix(filepath.Base(f), ".") }) // atomicfile's temporaries
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// bundle writes a Fake bundle of version signed by signer with size bytes
// of payload.
func bundle(t *testing.T, version, signer string, size int) string {
	payload := make([]byte, size)
	r := rand.NewChaCha8([32]byte{byte(size), 1})
	_, _ = r.Read(payload)
	sum := sha256.Sum256(payload)
	p := filepath.Join(t.TempDir(), version+".raucb")
	body := append([]byte(fmt.Sprintf("deskgate-x86_64 %s %s %s\n", version, signer, hex.EncodeToString(sum[:]))), payload...)
	if err := os.WriteFile(p, body, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fleetOf3 starts box-a, box-b and box-c, each trusting the update key of
// keyrings (default "fleet-key"), and joins them.
func fleetOf3(t *testing.T, keyrings ...string) (*events, []*box) {
	t.Helper()
	base, epoch := time.Now(), testepoch.Epoch()
	now := func() time.Time { return epoch.Add(time.Since(base)) }
	ev := &events{}
	key := func(i int) string {
		if i < len(keyrings) {
			return keyrings[i]
		}
		return "fleet-key"
	}
	a, b, c := newBox(t, "box-a", now, ev, key(0)), newBox(t, "box-b", now, ev, key(1)), newBox(t, "box-c", now, ev, key(2))
	na, _ := a.current()
	if _, err := na.Init("box-a"); err != nil {
		t.Fatal(err)
	}
	for _, j := range []*box{b, c} {
		tok, _, err := na.Invite(time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := j.current()
		if _, err := n.Join(context.Background(), tok, j.id); err != nil {
			t.Fatalf("join %s: %v", j.id, err)
		}
	}
	boxes := []*box{a, b, c}
	waitFor(t, 10*time.Second, "a full mesh", func() bool {
		for _, x := range boxes {
			if n, _ := x.current(); n == nil || len(n.LinkedPeers()) != 2 {
				return false
			}
		}
		return true
	})
	return ev, boxes
}

// rolloutAt returns rollout id as box x sees it.
func rolloutAt(x *box, id string) (Report, bool) {
	st, ok := x.status()
	if !ok {
		return Report{}, false
	}
	for _, r := range st.Rollouts {
		if r.ID == id {
			return r, true
		}
	}
	return Report{}, false
}

// TestFleetRollout drives three boxes through three rollouts:
//
//  1. a good bundle (13 chunks) started at box-a: the canary is box-c (the
//     fewest live sessions), the others install only after box-c's gate
//     passed, and all three report v2; box-b loses power after its third
//     chunk and, restarted, fetches only the chunks it lacks; the chunks
//     are removed once the rollout is done;
//  2. a bundle whose deskgated exits at start, canary box-b (--canary): the
//     canary's gate fails and it rolls back to v2, box-a and box-c are never
//     installed (halted), and every box's status names box-b and the reason;
//  3. a bundle signed with another key: refused at box-a before any chunk is
//     written or a rollout published.
func TestFleetRollout(t *testing.T) {
	ev, boxes := fleetOf3(t)
	a, b, c := boxes[0], boxes[1], boxes[2]
	na, _ := a.current()
	nb, _ := b.current()
	// Live sessions at box-a and box-b: box-c has the fewest.
	if err := na.RecordSessions([]peer.LocalSession{{Key: "s1", Member: "m1", MAC: "02:00:00:00:00:01", Live: true}}); err != nil {
		t.Fatal(err)
	}
	if err := nb.RecordSessions([]peer.LocalSession{{Key: "s2", Member: "m2", MAC: "02:00:00:00:00:02", Live: true}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "sessions replicated to box-a", func() bool {
		live, _ := na.LiveSessions()
		return live["box-a"] == 1 && live["box-b"] == 1
	})

	// box-b stops (a power cut: its link drops mid-transfer) after its
	// third chunk of the first rollout.
	var cutOnce sync.Once
	cut := make(chan struct{})
	hook := func() {
		if len(b.chunkFiles()) >= 3 {
			cutOnce.Do(func() { close(cut) })
		}
	}
	b.onChunk.Store(&hook)
	go func() {
		<-cut
		b.onChunk.Store(nil)
		b.stop()
		ev.add("power cut box-b")
	}()

	good := bundle(t, "v2", "fleet-key", 3<<20)
	_, aa := a.current()
	t0 := time.Now()
	r, err := aa.Start(context.Background(), good, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Canary != "box-c" || r.Boxes[0] != "box-c" || !strings.Contains(r.CanaryWhy, "fewest live sessions (0)") || len(r.Chunks) != 13 {
		t.Fatalf("rollout: canary %s (%s), boxes %v, %d chunks; want canary box-c by sessions and 13 chunks", r.Canary, r.CanaryWhy, r.Boxes, len(r.Chunks))
	}
	select {
	case <-cut:
	case <-time.After(20 * time.Second):
		t.Fatal("box-b never got three chunks")
	}
	waitFor(t, 5*time.Second, "box-b stopped", func() bool { n, _ := b.current(); return n == nil })
	time.Sleep(200 * time.Millisecond) // a chunk being written as the power went
	held := len(b.chunkFiles())
	b.start()
	_, resumed := b.current() // box-b's userland after the power cut (until its update reboot)
	if held == 0 || held >= len(r.Chunks) {
		t.Fatalf("box-b held %d of %d chunks when its power was cut; want a part", held, len(r.Chunks))
	}
	waitFor(t, 60*time.Second, "the rollout done at every box", func() bool {
		for _, x := range boxes {
			rep, ok := rolloutAt(x, r.ID)
			if !ok || rep.State != StateDone {
				return false
			}
		}
		return true
	})
	for _, x := range boxes {
		if booted, vs, good, w := x.disk(); booted != "B" || vs["B"] != "v2" || !good["B"] || w != 1 {
			t.Fatalf("%s after the rollout: booted %s, B=%s good=%v, %d writes; want B v2 good, one write", x.id, booted, vs["B"], good["B"], w)
		}
		rep, _ := rolloutAt(x, r.ID)
		for _, y := range boxes {
			if p := rep.Progress[y.id]; p.Phase != peer.PhaseGood || p.Version != "v2" {
				t.Fatalf("%s's view of %s: %+v, want good v2", x.id, y.id, p)
			}
		}
	}
	// Canary first: box-a and box-b installed after box-c's gate passed.
	gc := ev.index("gate box-c v2 good")
	for _, id := range []string{"box-a", "box-b"} {
		if i := ev.index("install " + id); gc < 0 || i < gc {
			t.Fatalf("%s installed before the canary's gate passed:\n%s", id, ev)
		}
	}
	if ev.index("install box-c") > ev.index("install box-a") {
		t.Fatalf("the canary did not install first:\n%s", ev)
	}
	// box-b fetched after its restart only what it lacked.
	fetched, _ := resumed.Fetched(r.ID)
	if fetched != len(r.Chunks)-held {
		t.Fatalf("box-b fetched %d chunks after its restart, holding %d of %d: want only the %d missing", fetched, held, len(r.Chunks), len(r.Chunks)-held)
	}
	waitFor(t, 5*time.Second, "chunks removed after the rollout", func() bool {
		return len(a.chunkFiles())+len(b.chunkFiles())+len(c.chunkFiles()) == 0
	})
	rep, _ := rolloutAt(a, r.ID)
	t.Logf("BENCH rollout_bundle_bytes %d chunks %d", r.Size, len(r.Chunks))
	for _, x := range boxes {
		t.Logf("BENCH rollout_chunk_bytes_received %s %d (base64 on the wire: ~%d)", x.id, rep.Progress[x.id].ChunkBytes, rep.Progress[x.id].ChunkBytes*4/3)
	}
	done := time.Now()
	t.Logf("BENCH rollout_start_to_canary_good_seconds %.2f", ev.time("gate box-c v2 good").Sub(t0).Seconds())
	t.Logf("BENCH rollout_canary_good_to_done_seconds %.2f (polled every 20ms)", done.Sub(ev.time("gate box-c v2 good")).Seconds())
	if rep.Progress["box-a"].ChunkBytes != 0 || rep.Progress["box-c"].ChunkBytes != r.Size {
		t.Fatalf("chunk bytes: origin box-a received %d (want 0), box-c %d (want the bundle's %d)", rep.Progress["box-a"].ChunkBytes, rep.Progress["box-c"].ChunkBytes, r.Size)
	}

	// 2. A bundle whose deskgated fails at start, canary box-b.
	writes := map[string]int{}
	for _, x := range boxes {
		writes[x.id] = x.writes()
	}
	broken := bundle(t, "v3-broken", "fleet-key", 600<<10)
	_, aa = a.current()
	r2, err := aa.Start(context.Background(), broken, "box-b")
	if err != nil {
		t.Fatal(err)
	}
	if r2.Canary != "box-b" || r2.CanaryWhy != "chosen by the operator" {
		t.Fatalf("canary %s (%s), want box-b chosen by the operator", r2.Canary, r2.CanaryWhy)
	}
	waitFor(t, 60*time.Second, "the rollout halted at every box", func() bool {
		for _, x := range boxes {
			rep, ok := rolloutAt(x, r2.ID)
			if !ok || rep.State != StateHalted || !finished(rep.RolloutState) {
				return false
			}
		}
		return true
	})
	for _, x := range boxes {
		rep, _ := rolloutAt(x, r2.ID)
		if !strings.Contains(rep.Halted, "box box-b failed: deskgated was not healthy within 1s: deskgated exited with status 3") ||
			!strings.Contains(rep.Halted, "rolled back to slot B") {
			t.Fatalf("%s's status of the halted rollout: %q", x.id, rep.Halted)
		}
		for _, y := range []string{"box-a", "box-c"} {
			if p := rep.Progress[y]; p.Phase != peer.PhaseHalted || !strings.Contains(p.Reason, "not installed: box box-b failed") {
				t.Fatalf("%s's view of %s: %+v, want halted", x.id, y, p)
			}
		}
	}
	if booted, vs, _, w := b.disk(); w != writes["box-b"]+1 || booted != "B" || vs["B"] != "v2" {
		t.Fatalf("box-b: %d writes (before %d), booted %s (%s); want one write and back on B with v2", w, writes["box-b"], booted, vs[booted])
	}
	writes["box-b"]++
	for _, x := range []*box{a, c} {
		if x.writes() != writes[x.id] {
			t.Fatalf("%s was installed although the canary failed", x.id)
		}
	}

	waitFor(t, 5*time.Second, "chunks removed after the halted rollout", func() bool {
		return len(a.chunkFiles())+len(b.chunkFiles())+len(c.chunkFiles()) == 0
	})

	// 3. Signed with another key: refused at the origin, nothing spread.
	before := len(a.chunkFiles())
	st, _ := a.status()
	foreign := bundle(t, "v4", "other-key", 300<<10)
	_, aa = a.current()
	if _, err := aa.Start(context.Background(), foreign, ""); err == nil || !strings.Contains(err.Error(), "bundle refused at box-a, nothing sent: signature verification failed") {
		t.Fatalf("a bundle signed by another key: %v", err)
	}
	st2, _ := a.status()
	if len(st2.Rollouts) != len(st.Rollouts) || len(a.chunkFiles()) != before {
		t.Fatalf("a refused bundle left %d rollouts (before %d) and %d chunks (before %d)", len(st2.Rollouts), len(st.Rollouts), len(a.chunkFiles()), before)
	}
	time.Sleep(300 * time.Millisecond)
	for _, x := range boxes {
		if x.writes() != writes[x.id] {
			t.Fatalf("%s was written after the refused bundle", x.id)
		}
	}
}

// TestFleetRolloutCanaryRefusesSigner: every box verifies the bundle
// against its own keyring. box-c trusts another update key: as the canary
// it refuses the bundle before writing its slot, and the rollout halts
// with box-a and box-b never installed.
func TestFleetRolloutCanaryRefusesSigner(t *testing.T) {
	_, boxes := fleetOf3(t, "fleet-key", "fleet-key", "other-key")
	a, b, c := boxes[0], boxes[1], boxes[2]
	_, aa := a.current()
	r, err := aa.Start(context.Background(), bundle(t, "v2", "fleet-key", 400<<10), "box-c")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the rollout halted at every box", func() bool {
		for _, x := range boxes {
			rep, ok := rolloutAt(x, r.ID)
			if !ok || rep.State != StateHalted || !finished(rep.RolloutState) {
				return false
			}
		}
		return true
	})
	rep, _ := rolloutAt(b, r.ID)
	if !strings.Contains(rep.Halted, "box box-c failed: bundle refused, nothing written: signature verification failed") {
		t.Fatalf("halted: %q", rep.Halted)
	}
	for _, x := range []*box{a, b, c} {
		if w := x.writes(); w != 0 {
			t.Fatalf("%s: %d slot writes, want none", x.id, w)
		}
	}
}

// TestFleetRolloutWithoutRemovedBox: a box that went offline during a
// rollout holds it up until it is removed from the fleet: box-b is stopped,
// the rollout stays in progress after box-c (canary) and box-a run v2, and
// is done once box-b is removed.
func TestFleetRolloutWithoutRemovedBox(t *testing.T) {
	_, boxes := fleetOf3(t)
	a, b, c := boxes[0], boxes[1], boxes[2]
	b.stop()
	_, aa := a.current()
	r, err := aa.Start(context.Background(), bundle(t, "v2", "fleet-key", 300<<10), "box-c")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(r.Boxes, "box-b") {
		t.Fatalf("boxes %v, want box-b among them", r.Boxes)
	}
	waitFor(t, 30*time.Second, "box-a and box-c good", func() bool {
		rep, ok := rolloutAt(a, r.ID)
		return ok && rep.Progress["box-a"].Phase == peer.PhaseGood && rep.Progress["box-c"].Phase == peer.PhaseGood
	})
	if rep, _ := rolloutAt(a, r.ID); rep.State != StateRunning {
		t.Fatalf("with box-b offline the rollout is %s, want %s", rep.State, StateRunning)
	}
	na, _ := a.current() // box-a's userland after its update reboot
	if err := na.Remove("box-b"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the rollout done at box-a and box-c", func() bool {
		for _, x := range []*box{a, c} {
			if rep, ok := rolloutAt(x, r.ID); !ok || rep.State != StateDone || slices.Contains(rep.Boxes, "box-b") {
				return false
			}
		}
		return true
	})
	if b.writes() != 0 || a.writes() != 1 || c.writes() != 1 {
		t.Fatalf("slot writes a=%d b=%d c=%d, want 1, 0, 1", a.writes(), b.writes(), c.writes())
	}
}
