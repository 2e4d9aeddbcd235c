package appliance

import (
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deskgate/deskgate/appliance/access"
	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

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
