package appliance

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/deskgate/deskgate/appliance/rollout"
	"github.com/deskgate/deskgate/appliance/update"
)

// boxUpdater is the updater a fleet rollout drives on this box: RAUC when
// the rauc tool is installed (the image), with its state where `deskgate
// update` keeps it (DESKGATE_UPDATE_DIR, default /data/update); nil
// elsewhere (such a box refuses to start a rollout and fails its turn).
func boxUpdater(log *slog.Logger, now func() time.Time) *update.Updater {
	if _, err := exec.LookPath("rauc"); err != nil {
		return nil
	}
	dir := os.Getenv("DESKGATE_UPDATE_DIR")
	if dir == "" {
		dir = "/data/update"
	}
	return &update.Updater{Backend: update.Rauc{}, Dir: dir, Now: now, Log: log, RunningVersion: Version}
}

func newRollout(a *App, dataDir string, u *update.Updater) *rollout.Agent {
	return rollout.New(rollout.Options{Fleet: a.fleet, Updater: u, Dir: filepath.Join(dataDir, "rollout"),
		BundleDir: filepath.Join(os.TempDir(), "deskgate-rollout"), Now: a.now, Log: a.log.With("component", "rollout")})
}
