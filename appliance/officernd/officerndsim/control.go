package officerndsim

import (
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// faultsJSON is Faults on the wire, with the latency as a duration string.
type faultsJSON struct {
	RateLimitPerMinute int    `json:"rateLimitPerMinute"`
	Fail500Every       int    `json:"fail500Every"`
	Latency            string `json:"latency"`
	DropWebhooks       bool   `json:"dropWebhooks"`
	Down               bool   `json:"down"`
	CloseConnections   bool   `json:"closeConnections"`
}

func toFaultsJSON(f Faults) faultsJSON {
	return faultsJSON{RateLimitPerMinute: f.RateLimitPerMinute, Fail500Every: f.Fail500Every,
		Latency: f.Latency.String(), DropWebhooks: f.DropWebhooks, Down: f.Down, CloseConnections: f.CloseConnections}
}

// serveControl serves the /_sim endpoints (see cmd/officernd-sim):
//
//	GET  /_sim/faults   POST /_sim/faults {"rateLimitPerMinute":..,"latency":"200ms",..}
//	                    (omitted fields keep their values)
//	GET  /_sim/stats    DELETE /_sim/stats (reset)
//	GET  /_sim/clock    POST /_sim/clock {"now":"<ISO>"} or {"advance":"24h"}
//	GET  /_sim/seed     GET /_sim/events
//
// They are not subject to faults, tokens or rate limits.
func (s *Sim) serveControl(w http.ResponseWriter, r *http.Request) {
	bad := func(msg string) { writeNest(w, http.StatusBadRequest, msg, "Bad Request") }
	switch r.URL.Path {
	case "/_sim/faults":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, toFaultsJSON(s.Faults()))
		case http.MethodPost, http.MethodPut:
			// Omitted fields keep their current values.
			fj := toFaultsJSON(s.Faults())
			if err := decodeStrict(r.Body, &fj); err != nil {
				bad("faults: " + err.Error())
				return
			}
			f := Faults{RateLimitPerMinute: fj.RateLimitPerMinute, Fail500Every: fj.Fail500Every,
				DropWebhooks: fj.DropWebhooks, Down: fj.Down, CloseConnections: fj.CloseConnections}
			if fj.Latency != "" {
				d, err := time.ParseDuration(fj.Latency)
				if err != nil || d < 0 {
					bad("faults: latency: want a duration like \"200ms\"")
					return
				}
				f.Latency = d
			}
			s.SetFaults(f)
			s.log.Info("faults set", "faults", toFaultsJSON(f))
			writeJSON(w, http.StatusOK, toFaultsJSON(f))
		default:
			methodNotAllowed(w)
		}
	case "/_sim/stats":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, s.Stats())
		case http.MethodDelete, http.MethodPost:
			s.ResetStats()
			writeJSON(w, http.StatusOK, s.Stats())
		default:
			methodNotAllowed(w)
		}
	case "/_sim/clock":
		switch r.Method {
		case http.MethodGet:
		case http.MethodPost:
			var body struct {
				Now     string `json:"now"`
				Advance string `json:"advance"`
			}
			if err := decodeStrict(r.Body, &body); err != nil {
				bad("clock: " + err.Error())
				return
			}
			if !s.ownClock {
				writeNest(w, http.StatusConflict, "the clock is driven by Options.Now", "Conflict")
				return
			}
			switch {
			case body.Now != "" && body.Advance == "":
				t, ok := parseInstant(body.Now)
				if !ok {
					bad("clock: now: want an ISO 8601 time")
					return
				}
				s.SetNow(t)
			case body.Advance != "" && body.Now == "":
				d, err := time.ParseDuration(body.Advance)
				if err != nil {
					bad("clock: advance: want a duration like \"24h\"")
					return
				}
				s.Advance(d)
			default:
				bad("clock: give exactly one of now, advance")
				return
			}
			s.log.Info("clock moved", "now", iso(s.now()))
		default:
			methodNotAllowed(w)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"now": iso(s.now()), "ownClock": s.ownClock})
	case "/_sim/seed":
		writeJSON(w, http.StatusOK, s.Seeded())
	case "/_sim/events":
		writeJSON(w, http.StatusOK, s.Events())
	default:
		writeNest(w, http.StatusNotFound, "Cannot "+r.Method+" "+r.URL.Path, "Not Found")
	}
}

func methodNotAllowed(w http.ResponseWriter) {
	writeNest(w, http.StatusMethodNotAllowed, "method not allowed", "Method Not Allowed")
}

func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(io.LimitReader(r, 1<<16))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
