package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
)

// Backend is what the admin API serves: the daemon's state and actions in
// the shapes of this package. The composition root implements it
// (appliance/adminapi.go). A method that fails with an *Error answers with
// that error's status; any other error answers with the route's default
// (mostly 500).
type Backend interface {
	Status() (Status, error)
	Members(q string, limit int) ([]MemberRow, error)
	// Explain returns the decision for a username, email or member id.
	Explain(query, nas string) (Explanation, error)
	// Sync runs a poll (or a full pass) now; run is the run's record,
	// answered also when err is not nil.
	Sync(ctx context.Context, full bool) (run any, err error)
	SyncLog(limit int) (any, error)
	Doctor(ctx context.Context) []Check
	// Audit returns the last entries of the trail, or of one member's
	// (member: a username, email or member id) when member is not "".
	Audit(member string, limit int) ([]model.AuditEntry, error)
	Reload() error
	NASCheck() any
	Sessions(member string) any
	NetPlan() (map[string]string, error)
	NetTeardown(ctx context.Context) (map[string]string, error)

	FleetStatus() (any, error)
	// FleetDump is the replicated state in canonical form (peer.Dump).
	FleetDump() (any, error)
	FleetInit(box string) (any, error)
	FleetInvite(ttl time.Duration) (token string, expires time.Time, err error)
	FleetJoin(ctx context.Context, token, box string) (any, error)
	FleetRemove(box string) error
	// FleetPartition cuts this box's links to boxes (none: heals); the
	// demo's partition switch. It fails with a 404 *Error unless the
	// daemon was started with DESKGATE_DEMO_SWITCHES=1.
	FleetPartition(boxes []string) ([]string, error)
	// FleetConfigPush pushes a fleet configuration document (plans,
	// groups, locations, roaming; "" = the box's own sections).
	FleetConfigPush(ctx context.Context, doc string) (any, error)

	// Certs lists the EAP-TLS client certificates (of user, when not "").
	Certs(user string) ([]ClientCert, error)
	// RevokeCerts revokes one certificate (target = its serial) or every
	// certificate of a member (target = username, email or member id); an
	// empty target is a 400 *Error.
	RevokeCerts(target string) ([]ClientCert, error)

	// Devices lists the PPSK devices (of user, when not "").
	Devices(user string) ([]Device, error)
	AddDevice(user, mac, name string) (Device, error)
	RemoveDevice(ctx context.Context, mac string) (Device, error)
}

// Error is a Backend failure with the HTTP status it answers with.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with status code.
func Errorf(code int, format string, args ...any) error {
	return &Error{Code: code, Err: fmt.Errorf(format, args...)}
}

// Options configure a Server.
type Options struct {
	Backend Backend
	// TokenFile keeps the TCP listener's bearer token (created, mode 0600,
	// when missing).
	TokenFile string
	// AllowedHosts returns admin.allowed_hosts (read at every request, so
	// a reload applies).
	AllowedHosts func() []string
	// Metrics serves GET /metrics (nil: not served).
	Metrics http.Handler
	// SelfSignedDir, when set, is where the self-signed certificate of the
	// TCP listener is kept for when no certificate is configured
	// (admin-tls.crt, admin-tls.key; see selfsigned.go); Now is the clock
	// that decides its renewal.
	SelfSignedDir string
	Now           func() time.Time
	// Operators, when set, serves the console's operator accounts
	// (/v1/operators; operators.go).
	Operators Operators
}

// Server is the admin API: its routes, the guard in front of them (see
// auth.go) and its listeners. Further operator-facing handlers (a web
// console) are added with Mount and sit behind the same guard.
type Server struct {
	b            Backend
	allowedHosts func() []string
	tokenFile    string
	token        string
	// port and tls describe the TCP listener (set by Listen).
	port       atomic.Pointer[string]
	tls        atomic.Bool
	selfSigned atomic.Bool
	routes     *routeMux

	selfSignedDir string
	now           func() time.Time
	ownAuth       sync.Map // patterns mounted with MountOwnAuth
	// fingerprint is the SHA-256 of the TCP listener's certificate.
	fingerprint atomic.Pointer[string]
}

// NewServer loads (or creates) the token and builds the route table.
func NewServer(o Options) (*Server, error) {
	tok, err := LoadOrCreateToken(o.TokenFile)
	if err != nil {
		return nil, err
	}
	s := &Server{b: o.Backend, allowedHosts: o.AllowedHosts, tokenFile: o.TokenFile, token: tok, routes: newRouteMux(),
		selfSignedDir: o.SelfSignedDir, now: o.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if s.allowedHosts == nil {
		s.allowedHosts = func() []string { return nil }
	}
	mux := s.routes
	mux.HandleFunc("GET /v1/status", s.handleStatus)
	mux.HandleFunc("GET /v1/members", s.handleMembers)
	mux.HandleFunc("GET /v1/explain", s.handleExplain)
	mux.HandleFunc("POST /v1/sync", s.handleSync)
	mux.HandleFunc("GET /v1/synclog", s.handleSyncLog)
	mux.HandleFunc("GET /v1/doctor", s.handleDoctor)
	mux.HandleFunc("GET /v1/audit", s.handleAudit)
	mux.HandleFunc("POST /v1/reload", s.handleReload)
	mux.HandleFunc("GET /v1/nas/check", func(w http.ResponseWriter, _ *http.Request) { WriteJSON(w, http.StatusOK, s.b.NASCheck()) })
	mux.HandleFunc("GET /v1/sessions", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, s.b.Sessions(r.URL.Query().Get("member")))
	})
	mux.HandleFunc("GET /v1/net/plan", s.handleNetPlan)
	mux.HandleFunc("POST /v1/net/teardown", s.handleNetTeardown)
	mux.HandleFunc("GET /v1/token", s.handleToken)
	s.fleetRoutes(mux)
	if o.Operators != nil {
		s.operatorRoutes(mux, o.Operators)
	}
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	// Profiles for performance work (go tool pprof), on the local API only
	// (the token guards TCP): stacks and sizes, never values.
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.Handle("GET /debug/pprof/heap", pprof.Handler("heap"))
	mux.Handle("GET /debug/pprof/allocs", pprof.Handler("allocs"))
	// Certificate listing and revocation, and PPSK devices, for the CLI;
	// member pages are on the member listener only.
	mux.HandleFunc("GET /v1/certs", s.handleCertList)
	mux.HandleFunc("POST /v1/certs/revoke", s.handleCertRevoke)
	mux.HandleFunc("GET /v1/devices", s.handleDevices)
	mux.HandleFunc("POST /v1/devices", s.handleDeviceAdd)
	mux.HandleFunc("POST /v1/devices/remove", s.handleDeviceRemove)
	return s, nil
}

// Mount serves h at pattern (http.ServeMux syntax) behind the same guard
// as the API: Host and Origin checked, the token required over TCP. This is
// where further operator-facing handlers (a web console) are added; call
// it before serving.
func (s *Server) Mount(pattern string, h http.Handler) { s.routes.Handle(pattern, h) }

// MountOwnAuth adds a handler that authenticates its users itself (the
// web console: sessions and CSRF tokens, since a browser has no bearer
// token). The guard still checks Host and Origin for it.
func (s *Server) MountOwnAuth(pattern string, h http.Handler) {
	s.ownAuth.Store(pattern, true)
	s.routes.Handle(pattern, h)
}

// Fingerprint is the SHA-256 fingerprint of the TCP listener's certificate
// ("" before Listen or without TLS) and whether it is the self-signed one.
func (s *Server) Fingerprint() (string, bool) {
	fp := s.fingerprint.Load()
	if fp == nil {
		return "", false
	}
	return *fp, s.selfSigned.Load()
}

// FromSocket reports whether r came over the unix socket (handlers added
// with Mount that only the box's root may use check it).
func FromSocket(r *http.Request) bool { return fromSocket(r) }

// Routes returns the patterns of every route, in registration order (a
// test walks them to prove none answers without the token by mistake).
func (s *Server) Routes() []string { return append([]string(nil), s.routes.patterns...) }

// HTTPServer returns an http.Server for one listener of s (each listener
// needs its own).
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{Handler: s, ConnContext: markSocket, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
}

// TokenFile is the name of the token's file in the daemon's data_dir.
const TokenFile = "admin.token"

// WriteJSON answers v as indented JSON with status code: the shape of
// every local API answer, also for handlers mounted from other packages.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// WriteError answers {"error": err} with status code.
func WriteError(w http.ResponseWriter, code int, err error) {
	WriteJSON(w, code, map[string]string{"error": err.Error()})
}

// fail answers err with its *Error status, else with code.
func fail(w http.ResponseWriter, code int, err error) {
	var e *Error
	if errors.As(err, &e) {
		code = e.Code
	}
	WriteError(w, code, err)
}

func (s *Server) handleStatus(w http.ResponseWriter, _ *http.Request) {
	st, err := s.b.Status()
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	WriteJSON(w, http.StatusOK, st)
}

func (s *Server) handleMembers(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 {
		limit = 200
	}
	rows, err := s.b.Members(r.URL.Query().Get("q"), limit)
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	WriteJSON(w, http.StatusOK, rows)
}

func (s *Server) handleExplain(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("user")
	if q == "" {
		WriteError(w, http.StatusBadRequest, errors.New("explain: user is required"))
		return
	}
	ex, err := s.b.Explain(q, r.URL.Query().Get("nas"))
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	WriteJSON(w, http.StatusOK, ex)
}

func (s *Server) handleSync(w http.ResponseWriter, r *http.Request) {
	full := r.URL.Query().Get("full") == "1" || r.URL.Query().Get("full") == "true"
	out, err := s.b.Sync(r.Context(), full)
	if err != nil {
		WriteJSON(w, http.StatusBadGateway, map[string]any{"error": err.Error(), "run": out})
		return
	}
	WriteJSON(w, http.StatusOK, out)
}

func (s *Server) handleSyncLog(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	logs, err := s.b.SyncLog(max(limit, 1))
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	WriteJSON(w, http.StatusOK, logs)
}

func (s *Server) handleDoctor(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, s.b.Doctor(r.Context()))
}

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 {
		limit = 50
	}
	entries, err := s.b.Audit(r.URL.Query().Get("member"), limit)
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	WriteJSON(w, http.StatusOK, entries)
}

func (s *Server) handleReload(w http.ResponseWriter, _ *http.Request) {
	if err := s.b.Reload(); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
}

func (s *Server) handleNetPlan(w http.ResponseWriter, _ *http.Request) {
	out, err := s.b.NetPlan()
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	WriteJSON(w, http.StatusOK, out)
}

func (s *Server) handleNetTeardown(w http.ResponseWriter, r *http.Request) {
	out, err := s.b.NetTeardown(r.Context())
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	WriteJSON(w, http.StatusOK, out)
}

// handleToken hands the token to the CLI (deskgate admin token); it
// answers only on the unix socket.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if !fromSocket(r) {
		WriteError(w, http.StatusForbidden, errors.New("the admin token is handed out only over the unix socket (run deskgate admin token on the box)"))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	WriteJSON(w, http.StatusOK, map[string]string{"token": s.token, "file": s.tokenFile})
}

// fleetRoutes serves `deskgate fleet ...` (docs/fleet.md).
func (s *Server) fleetRoutes(mux *routeMux) {
	mux.HandleFunc("GET /v1/fleet/status", func(w http.ResponseWriter, _ *http.Request) {
		st, err := s.b.FleetStatus()
		if err != nil {
			fail(w, http.StatusInternalServerError, err)
			return
		}
		WriteJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET /v1/fleet/dump", func(w http.ResponseWriter, _ *http.Request) {
		d, err := s.b.FleetDump()
		if err != nil {
			fail(w, http.StatusInternalServerError, err)
			return
		}
		WriteJSON(w, http.StatusOK, d)
	})
	mux.HandleFunc("POST /v1/fleet/init", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Box string `json:"box"`
		}
		if !decodeReq(w, r, &req) {
			return
		}
		id, err := s.b.FleetInit(req.Box)
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		WriteJSON(w, http.StatusOK, id)
	})
	mux.HandleFunc("POST /v1/fleet/invite", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			TTL string `json:"ttl"`
		}
		if !decodeReq(w, r, &req) {
			return
		}
		ttl := time.Hour
		if req.TTL != "" {
			d, err := time.ParseDuration(req.TTL)
			if err != nil {
				WriteError(w, http.StatusBadRequest, fmt.Errorf("ttl %q: %w", req.TTL, err))
				return
			}
			ttl = d
		}
		tok, exp, err := s.b.FleetInvite(ttl)
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		WriteJSON(w, http.StatusOK, map[string]any{"token": tok, "expires": exp})
	})
	mux.HandleFunc("POST /v1/fleet/join", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Token string `json:"token"`
			Box   string `json:"box"`
		}
		if !decodeReq(w, r, &req) {
			return
		}
		id, err := s.b.FleetJoin(r.Context(), req.Token, req.Box)
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		WriteJSON(w, http.StatusOK, id)
	})
	mux.HandleFunc("POST /v1/fleet/config", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Doc string `json:"doc"` // empty: the box's own fleet-wide sections
		}
		if !decodeReqN(w, r, &req, 128<<10) {
			return
		}
		res, err := s.b.FleetConfigPush(r.Context(), req.Doc)
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		WriteJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("POST /v1/fleet/remove", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Box string `json:"box"`
		}
		if !decodeReq(w, r, &req) {
			return
		}
		if err := s.b.FleetRemove(req.Box); err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"removed": req.Box})
	})
	mux.HandleFunc("POST /v1/fleet/partition", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Cut []string `json:"cut"` // empty: heal
		}
		if !decodeReq(w, r, &req) {
			return
		}
		cut, err := s.b.FleetPartition(req.Cut)
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		WriteJSON(w, http.StatusOK, map[string][]string{"cut": cut})
	})
}

func decodeReq(w http.ResponseWriter, r *http.Request, v any) bool {
	return decodeReqN(w, r, v, 16<<10)
}

func decodeReqN(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		WriteError(w, http.StatusBadRequest, fmt.Errorf("bad request body: %w", err))
		return false
	}
	return true
}

func (s *Server) handleCertList(w http.ResponseWriter, r *http.Request) {
	out, err := s.b.Certs(r.URL.Query().Get("user"))
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	WriteJSON(w, http.StatusOK, out)
}

func (s *Server) handleCertRevoke(w http.ResponseWriter, r *http.Request) {
	target := r.URL.Query().Get("target")
	out, err := s.b.RevokeCerts(target)
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	WriteJSON(w, http.StatusOK, out)
}

func (s *Server) handleDevices(w http.ResponseWriter, r *http.Request) {
	out, err := s.b.Devices(r.URL.Query().Get("user"))
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	WriteJSON(w, http.StatusOK, out)
}

func (s *Server) handleDeviceAdd(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d, err := s.b.AddDevice(q.Get("user"), q.Get("mac"), q.Get("name"))
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	WriteJSON(w, http.StatusOK, []Device{d})
}

func (s *Server) handleDeviceRemove(w http.ResponseWriter, r *http.Request) {
	d, err := s.b.RemoveDevice(r.Context(), r.URL.Query().Get("mac"))
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	WriteJSON(w, http.StatusOK, []Device{d})
}

// Check is doctor's line about the admin API: how TCP is protected, and
// whether the token file is still private. socket is the unix socket's
// path, addr the TCP address (Addr).
func (s *Server) Check(socket, addr string) Check {
	path := s.tokenFile
	fi, err := os.Stat(path)
	if err != nil {
		return Check{Name: "admin api", Detail: "token file: " + err.Error(), Fix: "restart deskgated to generate " + path}
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return Check{Name: "admin api", Detail: fmt.Sprintf("token file %s has mode %04o: other users can read the admin token", path, m),
			Fix: "chmod 600 " + path + ", then delete it and restart deskgated to get a new token (the old one may have leaked)"}
	}
	where := "http://" + addr
	if fp, self := s.Fingerprint(); fp != "" && self {
		where = "http://" + addr + " (loopback) and https://" + addr + " (self-signed certificate)"
	} else if fp != "" {
		where = "https://" + addr
	}
	return Check{Name: "admin api", OK: true, Detail: fmt.Sprintf("%s want the token from `deskgate admin token` (except /metrics, /healthz; /console/ has its own logins); socket %s (0600) needs none",
		where, socket)}
}

// Addr is the TCP listener's address with the host of listen (the
// configured admin.listen) once Listen ran, else "".
func (s *Server) Addr(listen string) string {
	if p := s.port.Load(); p != nil {
		host, _, _ := net.SplitHostPort(listen)
		return net.JoinHostPort(host, *p)
	}
	return ""
}
