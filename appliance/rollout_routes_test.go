package appliance

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/peer"
	"github.com/deskgate/deskgate/appliance/rollout"
	"github.com/deskgate/deskgate/appliance/update"
	"github.com/deskgate/deskgate/internal/testepoch"
)

// TestFleetUpdateAdminAPI: `deskgate fleet update` through the daemon's
// local API: refused outside a fleet; in a (one-box) fleet a bundle signed
// by another key is refused with nothing published, and a good one starts
// a rollout that this box, its own canary, verifies and installs, with the
// status served to the CLI. (appliance/rollout's test drives three boxes
// through reboots.)
func TestFleetUpdateAdminAPI(t *testing.T) {
	fake := update.NewFake("deskgate-x86_64", "fleet-key", "v1")
	fake.Boot()
	clk := newClock(testepoch.Epoch())
	u := &update.Updater{Backend: fake, Dir: filepath.Join(t.TempDir(), "update"), Now: func() time.Time { return clk.Now() }, RunningVersion: "v1"}
	h := newHarness(t, harnessOpts{seed: true, clock: clk, updater: u, extraYAML: "fleet:\n  listen: " + freePort(t) + "\n"})
	h.start()
	h.waitImport(30 * time.Second)
	cli := admin.Dial(filepath.Join(h.dir, "deskgate.sock"))
	ctx := context.Background()
	dir := t.TempDir()
	good, foreign := filepath.Join(dir, "v2.raucb"), filepath.Join(dir, "foreign.raucb")
	for p, c := range map[string]string{good: "deskgate-x86_64 v2 fleet-key\n" + strings.Repeat("x", 300<<10), foreign: "deskgate-x86_64 v2 other-key\n"} {
		if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	post := func(bundle, canary string) (peer.RolloutValue, error) {
		var v peer.RolloutValue
		err := cli.PostJSON(ctx, "/v1/fleet/update", map[string]string{"bundle": bundle, "canary": canary}, &v)
		return v, err
	}
	if _, err := post(good, ""); err == nil || !strings.Contains(err.Error(), "in no fleet") {
		t.Fatalf("fleet update outside a fleet: %v", err)
	}
	var id peer.Identity
	if err := cli.PostJSON(ctx, "/v1/fleet/init", map[string]string{"box": "box-a"}, &id); err != nil {
		t.Fatal(err)
	}
	if _, err := post(foreign, ""); err == nil || !strings.Contains(err.Error(), "bundle refused at box-a, nothing sent: signature verification failed") {
		t.Fatalf("a bundle signed by another key: %v", err)
	}
	if _, err := post("relative.raucb", ""); err == nil || !strings.Contains(err.Error(), "absolute path") {
		t.Fatalf("a relative path: %v", err)
	}
	if _, err := post(good, "box-x"); err == nil || !strings.Contains(err.Error(), `canary "box-x" is not a box of this fleet`) {
		t.Fatalf("an unknown canary: %v", err)
	}
	var st rollout.Status
	if err := cli.Get(ctx, "/v1/fleet/update", nil, &st); err != nil || len(st.Rollouts) != 0 {
		t.Fatalf("refused bundles left rollouts: %v %+v", err, st)
	}
	v, err := post(good, "")
	if err != nil {
		t.Fatal(err)
	}
	if v.Canary != "box-a" || v.Version != "v2" || len(v.Chunks) != 2 {
		t.Fatalf("rollout: %+v", v)
	}
	if _, err := post(good, ""); err == nil || !strings.Contains(err.Error(), "a rollout is in progress") {
		t.Fatalf("a second rollout while one runs: %v", err)
	}
	waitFor(t, 10*time.Second, "box-a installs and reboots", func() bool {
		if cli.Get(ctx, "/v1/fleet/update", nil, &st) != nil || len(st.Rollouts) != 1 {
			return false
		}
		return st.Rollouts[0].Progress["box-a"].Phase == peer.PhaseRebooting
	})
	if w, reboots := fake.Counts(); w != 1 || reboots != 1 {
		t.Fatalf("box-a: %d slot writes, %d reboots; want 1 and 1", w, reboots)
	}
	if r := st.Rollouts[0]; r.State != rollout.StateRunning || r.ID != v.ID {
		t.Fatalf("status: %+v", r)
	}
	// The console's dashboard shows the same: the rollout with box-a's
	// phase, and this box's undecided attempt from the updater's state.
	d, err := consoleBackend{h.app}.Dashboard(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := d.Rollout; r == nil || r.ID != v.ID || r.Version != "v2" || r.State != rollout.StateRunning || len(r.Boxes) != 1 || r.Boxes[0].Box != "box-a" || r.Boxes[0].Phase != peer.PhaseRebooting {
		t.Fatalf("dashboard rollout: %+v", d.Rollout)
	}
	if s := d.Self; s == nil || s.Running != "v1" || s.Pending == nil || s.Pending.Version != "v2" || s.Pending.Result != update.Rebooting {
		t.Fatalf("dashboard self update: %+v", d.Self)
	}
}
