package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

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
	mux.HandleFunc("GET /v1/fleet/dump", func(w http.ResponseWriter, _ *http.Request) {
		d, err := a.fleet.Dump()
		if err != nil {
			writeErr(w, fleetErrCode(err), err)
			return
		}
		writeJSON(w, http.StatusOK, d)
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
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
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
