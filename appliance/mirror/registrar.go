package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/deskgate/deskgate/internal/atomicfile"

	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/appliance/officernd"
)

// webhookEvents are the event types deskgate registers for.
var webhookEvents = []string{
	"member.created", "member.updated", "member.removed",
	"company.created", "company.updated", "company.removed",
	"membership.created", "membership.updated", "membership.removed",
	"booking.created", "booking.updated", "booking.removed",
	"pass.created", "pass.updated",
	// The occurrences of recurring bookings.
	"occupancyslot.created", "occupancyslot.removed",
}

// Registration is what the registration attempt found, for status and
// doctor.
type Registration struct {
	State  string    `json:"state"` // registered | manual | failed | disabled
	ID     string    `json:"id,omitempty"`
	URL    string    `json:"url,omitempty"`
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at,omitzero"`
}

// Registrar keeps deskgate's OfficeRnD webhook: it registers the webhook
// itself when sync.webhook_public_url is set and the API grants the
// webhook scopes, keeps the delivery secret (configured, or the one
// OfficeRnD returned, stored 0600 in data_dir/webhook.secret) and says
// what it found for status and doctor.
type Registrar struct {
	config func() *config.Config
	now    func() time.Time
	log    *slog.Logger

	mu     sync.RWMutex
	secret string
	reg    Registration
	// denied: OfficeRnD refused the webhook scopes (invalid_scope), so
	// automatic registration is off for this run.
	denied bool
}

// NewRegistrar returns a Registrar with the secret loaded.
func NewRegistrar(cfg func() *config.Config, now func() time.Time, log *slog.Logger) *Registrar {
	r := &Registrar{config: cfg, now: now, log: log}
	r.loadSecret()
	return r
}

func (w *Registrar) secretPath() string { return filepath.Join(w.config().DataDir, "webhook.secret") }

// loadSecret prefers the configured secret (a manually created webhook);
// otherwise the one deskgate stored when it registered itself.
func (w *Registrar) loadSecret() {
	cfg := w.config()
	secret := cfg.Sync.WebhookSecret.Reveal()
	if secret == "" {
		if b, err := os.ReadFile(w.secretPath()); err == nil {
			secret = strings.TrimSpace(string(b))
		}
	}
	w.mu.Lock()
	w.secret = secret
	w.mu.Unlock()
}

// Secret is the secret that verifies deliveries ("" = none).
func (w *Registrar) Secret() string {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.secret
}

func (w *Registrar) setRegistration(r Registration) {
	w.mu.Lock()
	r.At = w.now()
	w.reg = r
	w.mu.Unlock()
}

// Registration is what the last registration attempt found.
func (w *Registrar) Registration() Registration {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.reg
}

// AutoRegister reports whether deskgate registers its own webhook.
func AutoRegister(cfg *config.Config) bool {
	return cfg.Sync.WebhookPublicURL != "" && (cfg.Sync.Webhooks == nil || *cfg.Sync.Webhooks)
}

// APIScopes returns the scopes the OfficeRnD client asks for, and the
// read-only set it falls back to when OfficeRnD refuses them. The write
// scopes of webhook registration are asked for only while deskgate
// registers its webhook itself: OfficeRnD refuses a whole token request
// that names one ungranted scope, so asking for them by default would stop
// a read-only application from ever syncing.
func APIScopes(cfg *config.Config) (scopes, read []string) {
	scopes = slices.Clone(cfg.OfficeRnD.Scopes)
	if AutoRegister(cfg) {
		for _, sc := range officernd.WebhookScopes {
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	read = officernd.ReadOnlyScopes(scopes)
	if len(read) == 0 || slices.Equal(read, scopes) {
		read = nil // nothing to fall back to
	}
	return scopes, read
}

// ScopesRefused records that OfficeRnD refused the webhook scopes: the
// application is read-only, so the webhook has to be created by hand.
func (w *Registrar) ScopesRefused(refused error) {
	w.mu.Lock()
	w.denied = true
	w.mu.Unlock()
	url := w.config().Sync.WebhookPublicURL
	w.setRegistration(Registration{State: "manual", URL: url,
		Detail: "automatic registration off: the OfficeRnD application has no webhook write grant (" + refused.Error() + "); syncing with read scopes"})
	w.log.Warn("OfficeRnD refused the webhook scopes; automatic webhook registration is off", "err", refused)
	w.log.Warn(ManualWebhookSteps(url))
}

// AutoActive reports whether automatic registration is configured and was
// not turned off by a scope refusal.
func (w *Registrar) AutoActive() bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return AutoRegister(w.config()) && !w.denied
}

// ManualWebhookSteps tells an operator how to create the webhook by hand
// when the app's scopes do not allow deskgate to do it.
func ManualWebhookSteps(url string) string {
	return fmt.Sprintf(`Create the webhook in OfficeRnD by hand:
  1. Settings → Data & Extensibility → Developer Tools → Webhooks → Add webhook.
  2. URL: %s
  3. Events: %s
  4. Save, copy the webhook's secret into a file readable only by root
     (chmod 600), and set sync.webhook_secret.file to that path.
  5. Reload deskgate (deskgate reload, or SIGHUP).`, url, strings.Join(webhookEvents, ", "))
}

// Ensure registers deskgate's webhook through api when the API scope
// allows, retrying while OfficeRnD is unreachable; otherwise it logs the
// manual steps.
func (w *Registrar) Ensure(ctx context.Context, api *officernd.Client) {
	url := w.config().Sync.WebhookPublicURL
	for attempt := 0; ; attempt++ {
		err := w.register(ctx, api, url)
		if err == nil {
			return
		}
		if api.ScopesReduced() {
			return // ScopesRefused recorded the state and logged the steps
		}
		if errors.Is(err, officernd.ErrScope) || errors.Is(err, officernd.ErrCredentials) {
			w.setRegistration(Registration{State: "manual", URL: url, Detail: err.Error()})
			w.log.Warn("cannot register the OfficeRnD webhook automatically", "err", err)
			w.log.Warn(ManualWebhookSteps(url))
			return
		}
		w.setRegistration(Registration{State: "failed", URL: url, Detail: err.Error()})
		d := time.Duration(1<<min(attempt, 6)) * 10 * time.Second
		w.log.Warn("webhook registration failed; will retry", "err", err, "in", d)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

func (w *Registrar) register(ctx context.Context, api *officernd.Client, url string) error {
	hooks, err := api.ListWebhooks(ctx)
	if err != nil {
		return fmt.Errorf("list webhooks: %w", err)
	}
	have := w.Secret() != ""
	for _, h := range hooks {
		if h.URL != url {
			continue
		}
		if have {
			w.setRegistration(Registration{State: "registered", ID: h.ID, URL: url})
			return nil
		}
		// Registered earlier but the secret is lost: replace it.
		if err := api.DeleteWebhook(ctx, h.ID); err != nil {
			return fmt.Errorf("replace webhook %s: %w", h.ID, err)
		}
	}
	h, err := api.RegisterWebhook(ctx, url, webhookEvents, "deskgate "+w.config().OfficeRnD.OrgSlug)
	if err != nil {
		return fmt.Errorf("register webhook: %w", err)
	}
	if h.Secret == "" {
		return fmt.Errorf("register webhook: OfficeRnD returned no secret")
	}
	if err := atomicfile.Write(w.secretPath(), []byte(h.Secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("store webhook secret: %w", err)
	}
	if w.config().Sync.WebhookSecret.Reveal() == "" {
		w.mu.Lock()
		w.secret = h.Secret
		w.mu.Unlock()
	}
	w.setRegistration(Registration{State: "registered", ID: h.ID, URL: url})
	w.log.Info("registered OfficeRnD webhook", "id", h.ID, "url", url)
	return nil
}
