package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/internal/atomicfile"

	"github.com/deskgate/deskgate/appliance/peer"
	"github.com/deskgate/deskgate/appliance/radius"
)

// fleetSessions is the RADIUS session store that also tells the fleet
// about devices coming and going (device limits across boxes). The fleet
// write follows the local one; if it fails, the lease of the last
// recorded state bounds the error.
type fleetSessions struct {
	radius.SessionStore
	a *App
}

func (f fleetSessions) SaveSessions(ctx context.Context, ss []radius.Session) error {
	if err := f.SessionStore.SaveSessions(ctx, ss); err != nil {
		return err
	}
	ls := make([]peer.LocalSession, 0, len(ss))
	for _, s := range ss {
		ls = append(ls, peer.LocalSession{Key: s.Key, Member: s.MemberID, MAC: s.MAC, Live: s.Live()})
	}
	if err := f.a.fleet.RecordSessions(ls); err != nil {
		f.a.log.Warn("fleet: sessions not shared", "err", err)
	}
	return nil
}

// fleetRoutes serves `deskgate fleet ...` (docs/fleet.md).
func (a *App) fleetRoutes(mux *routeMux) {
	mux.HandleFunc("GET /v1/fleet/status", func(w http.ResponseWriter, _ *http.Request) {
		st, err := a.fleet.Status()
		if err != nil {
			writeErr(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST /v1/fleet/init", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Box string `json:"box"`
		}
		if !decodeFleetReq(w, r, &req) {
			return
		}
		id, err := a.fleet.Init(req.Box)
		if err != nil {
			writeErr(w, fleetErrCode(err), err)
			return
		}
		a.log.Info("fleet init", "box", id.BoxID, "fleet", id.FleetID)
		writeJSON(w, http.StatusOK, id)
	})
	mux.HandleFunc("POST /v1/fleet/invite", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			TTL string `json:"ttl"`
		}
		if !decodeFleetReq(w, r, &req) {
			return
		}
		ttl := time.Hour
		if req.TTL != "" {
			d, err := time.ParseDuration(req.TTL)
			if err != nil {
				writeErr(w, http.StatusBadRequest, fmt.Errorf("ttl %q: %w", req.TTL, err))
				return
			}
			ttl = d
		}
		tok, exp, err := a.fleet.Invite(ttl)
		if err != nil {
			writeErr(w, fleetErrCode(err), err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"token": tok, "expires": exp})
	})
	mux.HandleFunc("POST /v1/fleet/join", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Token string `json:"token"`
			Box   string `json:"box"`
		}
		if !decodeFleetReq(w, r, &req) {
			return
		}
		id, err := a.fleet.Join(r.Context(), req.Token, req.Box)
		if err != nil {
			a.log.Warn("fleet join failed", "err", err)
			writeErr(w, fleetErrCode(err), err)
			return
		}
		writeJSON(w, http.StatusOK, id)
	})
	mux.HandleFunc("POST /v1/fleet/config", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Doc string `json:"doc"` // empty: this box's own fleet-wide sections
		}
		if !decodeFleetReqN(w, r, &req, 2*config.MaxFleetDoc) {
			return
		}
		doc := []byte(req.Doc)
		if len(doc) == 0 {
			base, err := os.ReadFile(a.cfgPath)
			if err == nil {
				doc, err = config.FleetSections(base)
			}
			if err != nil {
				writeErr(w, http.StatusInternalServerError, fmt.Errorf("read this box's fleet-wide sections: %w", err))
				return
			}
		}
		res, err := a.fleet.PushConfig(r.Context(), doc)
		if err != nil {
			code := fleetErrCode(err)
			if errors.Is(err, peer.ErrConfigRefused) {
				code = http.StatusConflict
			}
			writeJSON(w, code, map[string]any{"error": err.Error(), "votes": res.Votes})
			return
		}
		a.log.Info("fleet configuration pushed", "version", res.Version, "unreachable", res.Unreachable)
		writeJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("POST /v1/fleet/remove", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Box string `json:"box"`
		}
		if !decodeFleetReq(w, r, &req) {
			return
		}
		if err := a.fleet.Remove(req.Box); err != nil {
			writeErr(w, fleetErrCode(err), err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"removed": req.Box})
	})
}

func decodeFleetReq(w http.ResponseWriter, r *http.Request, v any) bool {
	return decodeFleetReqN(w, r, v, 16<<10)
}

func decodeFleetReqN(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("bad request body: %w", err))
		return false
	}
	return true
}

func fleetErrCode(err error) int {
	if errors.Is(err, peer.ErrNotInFleet) || errors.Is(err, peer.ErrInFleet) {
		return http.StatusConflict
	}
	return http.StatusBadRequest
}

// Fleet-wide configuration (docs/fleet.md): the fleet's document of
// plans, groups, locations and roaming, once applied, lives in
// <data_dir>/fleet/config.yaml and replaces those sections of the
// configuration file; everything else stays the box's own.

func (a *App) fleetDocPath(cfg *config.Config) string {
	return filepath.Join(cfg.DataDir, "fleet", "config.yaml")
}

// loadConfig reads the configuration file with the fleet's document, if
// this box applied one, in place of its fleet-wide sections.
func (a *App) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(a.cfgPath)
	if err != nil {
		return nil, err
	}
	doc, err := os.ReadFile(a.fleetDocPath(cfg))
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the fleet configuration: %w", err)
	}
	return a.parseWithFleet(doc)
}

// parseWithFleet validates the configuration file with doc's sections.
func (a *App) parseWithFleet(doc []byte) (*config.Config, error) {
	base, err := os.ReadFile(a.cfgPath)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", a.cfgPath, err)
	}
	merged, err := config.WithFleet(base, doc)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Parse(merged, a.cfgPath)
	if err != nil {
		return nil, fmt.Errorf("with the fleet configuration: %w", err)
	}
	return cfg, nil
}

// withFleetConfig is cfg with the fleet's document applied at start; a
// document that no longer validates with this box's file is ignored
// (logged) rather than keeping the daemon down.
func (a *App) withFleetConfig(cfg *config.Config) *config.Config {
	if a.cfgPath == "" {
		return cfg
	}
	if _, err := os.Stat(a.fleetDocPath(cfg)); err != nil {
		return cfg
	}
	c, err := a.loadConfig()
	if err != nil {
		a.log.Error("fleet configuration not applied: it does not validate with this box's configuration file", "err", err)
		return cfg
	}
	return c
}

func (a *App) checkFleetConfig(doc []byte) error {
	if a.cfgPath == "" {
		return errors.New("this box runs without a configuration file")
	}
	_, err := a.parseWithFleet(doc)
	return err
}

// applyFleetConfig stores doc as the box's fleet document and reloads.
func (a *App) applyFleetConfig(doc []byte) error {
	p := a.fleetDocPath(a.Config())
	old, oldErr := os.ReadFile(p)
	if err := atomicfile.Write(p, doc, 0o600); err != nil {
		return fmt.Errorf("store the fleet configuration: %w", err)
	}
	if err := a.Reload(); err != nil {
		// Keep the previous document, the one the running config has.
		if oldErr == nil {
			_ = atomicfile.Write(p, old, 0o600)
		} else {
			_ = os.Remove(p)
		}
		return err
	}
	return nil
}
