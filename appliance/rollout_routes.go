package appliance

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/deskgate/deskgate/appliance/peer"
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

// rolloutRoutes mount `deskgate fleet update` on the admin API
// (docs/fleet.md), behind its guard.
func (a *App) rolloutRoutes() {
	a.adminSrv.Mount("GET /v1/fleet/update", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		st, err := a.rollout.Status()
		if err != nil {
			rolloutErr(w, http.StatusInternalServerError, err)
			return
		}
		rolloutJSON(w, http.StatusOK, st)
	}))
	a.adminSrv.Mount("POST /v1/fleet/update", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Bundle string `json:"bundle"`
			Canary string `json:"canary"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			rolloutErr(w, http.StatusBadRequest, fmt.Errorf("bad request body: %w", err))
			return
		}
		if !filepath.IsAbs(req.Bundle) {
			rolloutErr(w, http.StatusBadRequest, fmt.Errorf("bundle %q: want an absolute path on this box", req.Bundle))
			return
		}
		v, err := a.rollout.Start(r.Context(), req.Bundle, req.Canary)
		if err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, peer.ErrNotInFleet) || errors.Is(err, rollout.ErrBusy) || errors.Is(err, rollout.ErrNoBackend) {
				code = http.StatusConflict
			}
			a.log.Warn("fleet update refused", "bundle", req.Bundle, "err", err)
			rolloutErr(w, code, err)
			return
		}
		rolloutJSON(w, http.StatusOK, v)
	}))
}

func rolloutJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func rolloutErr(w http.ResponseWriter, code int, err error) {
	rolloutJSON(w, code, map[string]string{"error": err.Error()})
}
