package rollout

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/peer"
)

// Mounter is where Mount adds the routes: the admin server (behind its
// guard: Host and Origin checked, the token required over TCP).
type Mounter interface {
	Mount(pattern string, h http.Handler)
}

// Mount serves `deskgate fleet update` (docs/fleet.md) on m: GET
// /v1/fleet/update is Status, POST /v1/fleet/update {bundle, canary}
// starts a rollout.
func (a *Agent) Mount(m Mounter) {
	m.Mount("GET /v1/fleet/update", http.HandlerFunc(a.handleStatus))
	m.Mount("POST /v1/fleet/update", http.HandlerFunc(a.handleStart))
}

func (a *Agent) handleStatus(w http.ResponseWriter, _ *http.Request) {
	st, err := a.Status()
	if err != nil {
		admin.WriteError(w, http.StatusInternalServerError, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, st)
}

func (a *Agent) handleStart(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Bundle string `json:"bundle"`
		Canary string `json:"canary"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		admin.WriteError(w, http.StatusBadRequest, fmt.Errorf("bad request body: %w", err))
		return
	}
	if !filepath.IsAbs(req.Bundle) {
		admin.WriteError(w, http.StatusBadRequest, fmt.Errorf("bundle %q: want an absolute path on this box", req.Bundle))
		return
	}
	v, err := a.Start(r.Context(), req.Bundle, req.Canary)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, peer.ErrNotInFleet) || errors.Is(err, ErrBusy) || errors.Is(err, ErrNoBackend) {
			code = http.StatusConflict
		}
		a.log.Warn("fleet update refused", "bundle", req.Bundle, "err", err)
		admin.WriteError(w, code, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, v)
}
