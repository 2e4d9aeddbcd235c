package mirror

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/deskgate/deskgate/appliance/officernd"
)

// Metrics are the sync's Prometheus collectors. Register them with
// (*Metrics).Register; the appliance adds gauges computed at scrape time
// (lag, accounts by group).
type Metrics struct {
	Runs            *prometheus.CounterVec
	RunDuration     *prometheus.HistogramVec
	Failures        prometheus.Counter
	APICalls        prometheus.Gauge
	RateLimitWaits  prometheus.Gauge
	Webhooks        *prometheus.CounterVec
	WebhookApplyLat prometheus.Histogram
}

// NewMetrics returns unregistered collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		Runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskgate_sync_runs_total", Help: "Sync runs by kind (import, poll, full) and result.",
		}, []string{"kind", "result"}),
		RunDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "deskgate_sync_run_seconds", Help: "Duration of sync runs.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
		}, []string{"kind"}),
		Failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deskgate_sync_failures_total", Help: "Failed sync runs.",
		}),
		APICalls: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deskgate_officernd_api_requests", Help: "HTTP requests made to the OfficeRnD API since start.",
		}),
		RateLimitWaits: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deskgate_officernd_ratelimit_waits", Help: "Waits caused by OfficeRnD rate limiting since start.",
		}),
		Webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskgate_webhook_events_total", Help: "Webhook deliveries by outcome.",
		}, []string{"outcome"}),
		WebhookApplyLat: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "deskgate_webhook_apply_seconds", Help: "Time from webhook arrival to its change committed.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
}

// Register adds the collectors to r.
func (m *Metrics) Register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.Runs, m.RunDuration, m.Failures, m.APICalls, m.RateLimitWaits, m.Webhooks, m.WebhookApplyLat} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *Metrics) observeRun(rl *RunLog, st officernd.Stats) {
	result := "ok"
	if !rl.OK {
		result = "error"
		m.Failures.Inc()
	}
	m.Runs.WithLabelValues(rl.Kind, result).Inc()
	m.RunDuration.WithLabelValues(rl.Kind).Observe(rl.Duration.Seconds())
	m.APICalls.Set(float64(st.Requests))
	m.RateLimitWaits.Set(float64(st.RateLimitWaits))
}
