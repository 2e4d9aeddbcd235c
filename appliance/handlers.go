package appliance

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/deskgate/deskgate/appliance/access"
	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/policy"
	"github.com/deskgate/deskgate/appliance/store"
)

// adminServer serves the local API on the TCP listener and on the unix
// socket; adminGuard decides what each may do (see adminauth.go).
func (a *App) adminServer() *http.Server {
	mux := newRouteMux()
	mux.HandleFunc("GET /v1/status", a.handleStatus)
	mux.HandleFunc("GET /v1/members", a.handleMembers)
	mux.HandleFunc("GET /v1/explain", a.handleExplain)
	mux.HandleFunc("POST /v1/sync", a.handleSync)
	mux.HandleFunc("GET /v1/synclog", a.handleSyncLog)
	mux.HandleFunc("GET /v1/doctor", a.handleDoctor)
	mux.HandleFunc("GET /v1/audit", a.handleAudit)
	mux.HandleFunc("POST /v1/reload", a.handleReload)
	mux.HandleFunc("GET /v1/nas/check", a.handleNASCheck)
	mux.HandleFunc("GET /v1/sessions", a.handleSessions)
	mux.HandleFunc("GET /v1/net/plan", a.handleNetPlan)
	mux.HandleFunc("POST /v1/net/teardown", a.handleNetTeardown)
	mux.HandleFunc("GET /v1/token", a.handleAdminToken)
	a.fleetRoutes(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	// Profiles for performance work (go tool pprof), on the local API only
	// (the token guards TCP): stacks and sizes, never values.
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.Handle("GET /debug/pprof/heap", pprof.Handler("heap"))
	mux.Handle("GET /debug/pprof/allocs", pprof.Handler("allocs"))
	// Certificate listing and revocation for the CLI; member pages are on
	// the member listener only.
	certRoutes(a, mux)
	deviceRoutes(a, mux)
	operatorRoutes(a, mux)
	// The operator console does its own authentication (sessions); the
	// guard still checks Host and Origin for it (see consoleMount).
	mux.Handle(consoleMount, a.console.srv)
	return &http.Server{Handler: &adminGuard{a: a, routes: mux}, ConnContext: markSocket, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
}

// publicServer serves what OfficeRnD reaches: the webhook. The member
// pages are on memberServer only.
func (a *App) publicServer() *http.Server {
	mux := http.NewServeMux()
	mux.Handle("POST "+a.Config().Sync.WebhookPath, a.syncer.WebhookHandler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	return &http.Server{
		Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 15 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 32 << 10,
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeErr(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func (a *App) status() (admin.Status, error) {
	now := a.now()
	ss := a.syncer.Status()
	st := admin.Status{Version: Version, Started: a.started, Now: now, Ready: a.Ready(), Groups: map[string]int{}}
	st.Sync = admin.SyncStatus{
		LastSuccess: ss.LastSuccess, LastAttempt: ss.LastAttempt, LagSeconds: ss.Lag(now).Seconds(),
		Failures: ss.Failures, LastError: ss.LastError, ImportDone: ss.ImportDone,
		APICalls: a.api.Stats().Requests, RateWaits: a.api.Stats().RateLimitWaits,
	}
	if ss.LastRun != nil {
		st.Sync.LastRun, _ = json.Marshal(ss.LastRun)
	}
	err := a.store.View(func(tx *store.Tx) error {
		c, err := tx.Counts()
		if err != nil {
			return err
		}
		st.Counts = c
		return tx.ForEachAccount(func(ac model.Account) error {
			if ac.Disabled {
				st.Disabled++
			} else {
				st.Groups[ac.Group]++
			}
			return nil
		})
	})
	if err != nil {
		return st, err
	}
	st.Outbox, _ = a.store.OutboxLen()
	reg := a.registration()
	st.Webhook = admin.Webhook{Registration: reg.State, URL: reg.URL, Detail: reg.Detail, SecretSet: a.webhookSecret() != "",
		AutoRegister: a.autoRegActive(), ReadOnlyScopes: a.api.ScopesReduced()}
	if st.Webhook.Registration == "" {
		st.Webhook.Registration = "none"
		if a.Config().Sync.WebhookSecret.IsSet() {
			st.Webhook.Registration = "configured"
		}
	}
	st.Webhook.Stats, _ = json.Marshal(ss.WebhookStats)
	for _, p := range a.res.UnmappedPlans() {
		st.Unmapped = append(st.Unmapped, p.Name)
	}
	st.Unresolved = a.res.Unresolved()
	st.RADIUS = a.radiusStatus()
	st.Console = a.consoleStatus()
	return st, nil
}

func (a *App) handleStatus(w http.ResponseWriter, r *http.Request) {
	st, err := a.status()
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *App) handleMembers(w http.ResponseWriter, r *http.Request) {
	q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 {
		limit = 200
	}
	now := a.now()
	var rows []admin.MemberRow
	err := a.store.View(func(tx *store.Tx) error {
		return tx.ForEachMember(func(m model.Member) error {
			if q != "" && !strings.Contains(strings.ToLower(m.Name+" "+m.Email+" "+m.ID), q) {
				return nil
			}
			in, err := a.res.Input(tx, &m, now)
			if err != nil {
				return err
			}
			d := policy.Decide(a.res.Rules(), in)
			row := admin.MemberRow{ID: m.ID, Name: m.Name, Email: m.Email, Allowed: d.Allowed, Group: d.Group, Plan: d.PlanName, Deny: d.Deny}
			if ac, err := tx.AccountOfMember(m.ID); err == nil {
				row.Username, row.Disabled = ac.Username, ac.Disabled
			}
			rows = append(rows, row)
			return nil
		})
	})
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	if len(rows) > limit {
		rows = rows[:limit]
	}
	writeJSON(w, http.StatusOK, rows)
}

// Explain returns the decision for a username, email or member id.
func (a *App) Explain(query, nas string) (admin.Explanation, error) {
	now := a.now()
	ex := admin.Explanation{Query: query, At: now}
	err := a.store.View(func(tx *store.Tx) error {
		id, err := access.FindMember(tx, query)
		if err != nil {
			return err
		}
		m, d, err := a.res.DecideMember(tx, id, now)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err == nil {
			ex.Member = &m
		}
		ex.Decision = d
		if ac, err := tx.AccountOfMember(id); err == nil {
			ex.Account = &admin.AccountView{
				Username: ac.Username, Group: ac.Group, Disabled: ac.Disabled, DisabledReason: ac.DisabledReason,
				PasswordSource: ac.PasswordSource, PasswordSet: len(ac.NTHash) == 16, CreatedAt: ac.CreatedAt, UpdatedAt: ac.UpdatedAt,
			}
			if !ac.Disabled && len(ac.NTHash) != 16 && d.Allowed {
				ex.Decision.Reasons = append(ex.Decision.Reasons, "no WiFi password set yet (waiting for the member to use the onboarding link)")
			}
		}
		return nil
	})
	if err != nil {
		return ex, err
	}
	if ex.Member != nil {
		ex.Audit, _ = a.store.AuditOf(ex.Member.ID, 10)
	}
	ex.NAS, ex.Reply = a.radiusReply(query, nas, ex)
	if ex.Account != nil {
		ex.SetupURL = a.ProfileURL(ex.Account.Username)
	}
	return ex, nil
}

func (a *App) handleExplain(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("user")
	if q == "" {
		writeErr(w, http.StatusBadRequest, errors.New("explain: user is required"))
		return
	}
	ex, err := a.Explain(q, r.URL.Query().Get("nas"))
	if errors.Is(err, store.ErrNotFound) {
		writeErr(w, http.StatusNotFound, errors.New("no member, account or email matches "+strconv.Quote(q)))
		return
	}
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, ex)
}

func (a *App) handleSync(w http.ResponseWriter, r *http.Request) {
	full := r.URL.Query().Get("full") == "1" || r.URL.Query().Get("full") == "true"
	var err error
	var out any
	if full {
		rl, e := a.syncer.FullPass(r.Context(), "full")
		out, err = rl, e
	} else {
		rl, e := a.syncer.Poll(r.Context())
		out, err = rl, e
	}
	a.sender.Kick()
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]any{"error": err.Error(), "run": out})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *App) handleSyncLog(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	logs, err := a.syncer.RunLogs(max(limit, 1))
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, logs)
}

func (a *App) handleAudit(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 {
		limit = 50
	}
	var entries []model.AuditEntry
	var err error
	if q := r.URL.Query().Get("member"); q != "" {
		var id string
		err = a.store.View(func(tx *store.Tx) error { var e error; id, e = access.FindMember(tx, q); return e })
		if err == nil {
			entries, err = a.store.AuditOf(id, limit)
		}
	} else {
		entries, err = a.store.AuditTail(limit)
	}
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, entries)
}

func (a *App) handleReload(w http.ResponseWriter, r *http.Request) {
	if err := a.Reload(); err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
}

// appCollector exports gauges computed at scrape time.
type appCollector struct{ a *App }

var (
	descLag      = prometheus.NewDesc("deskgate_sync_lag_seconds", "Seconds since the last successful sync.", nil, nil)
	descFailures = prometheus.NewDesc("deskgate_sync_consecutive_failures", "Sync failures since the last success.", nil, nil)
	descAccounts = prometheus.NewDesc("deskgate_accounts", "WiFi accounts by group (disabled ones under group=\"disabled\").", []string{"group"}, nil)
	descOutbox   = prometheus.NewDesc("deskgate_email_outbox", "Emails waiting in the outbox.", nil, nil)
	descWait     = prometheus.NewDesc("deskgate_officernd_ratelimit_wait_seconds", "Time spent waiting for OfficeRnD rate limits since start.", nil, nil)
)

func (c *appCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descLag
	ch <- descFailures
	ch <- descAccounts
	ch <- descOutbox
	ch <- descWait
}

func (c *appCollector) Collect(ch chan<- prometheus.Metric) {
	ss := c.a.syncer.Status()
	ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, ss.Lag(c.a.now()).Seconds())
	ch <- prometheus.MustNewConstMetric(descFailures, prometheus.GaugeValue, float64(ss.Failures))
	groups := map[string]int{}
	_ = c.a.store.View(func(tx *store.Tx) error {
		return tx.ForEachAccount(func(ac model.Account) error {
			if ac.Disabled {
				groups["disabled"]++
			} else {
				groups[ac.Group]++
			}
			return nil
		})
	})
	for g, n := range groups {
		ch <- prometheus.MustNewConstMetric(descAccounts, prometheus.GaugeValue, float64(n), g)
	}
	n, _ := c.a.store.OutboxLen()
	ch <- prometheus.MustNewConstMetric(descOutbox, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(descWait, prometheus.GaugeValue, c.a.api.Stats().RateLimitWaitTime.Seconds())
}

// memberServer serves the pages members reach from their emails:
// onboarding (setting a WiFi password) and device setup, with the portal's
// security headers. It runs on the member listener only.
func (a *App) memberServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /wifi", a.handleWiFiPage)
	mux.HandleFunc("GET /wifi/profile.mobileconfig", a.handleWiFiProfile)
	mux.HandleFunc("GET /wifi/ca.pem", a.handleCA)
	mux.HandleFunc("GET /wifi/ca.crt", a.handleCA)
	mux.HandleFunc("POST /wifi/client-cert.pem", a.handleClientCert)
	mux.HandleFunc("POST /wifi/devices", a.handleMemberDevice)
	mux.HandleFunc("POST /wifi/eaptls", a.handleEAPTLSProfile)
	mux.HandleFunc("GET /wifi/eaptls/profile.mobileconfig", a.handleEAPTLSDownload)
	mux.HandleFunc("POST /wifi/devices/remove", a.handleMemberDevice)
	mux.HandleFunc("GET /onboard", a.handleOnboard)
	mux.HandleFunc("POST /onboard", a.handleOnboard)
	return &http.Server{
		Handler: memberHeaders(mux), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 15 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 32 << 10,
		// TLS handshake failures are anyone's to cause: debug, not stderr.
		ErrorLog: slog.NewLogLogger(a.log.With("component", "members").Handler(), slog.LevelDebug),
	}
}
