package appliance

import (
	"context"
	"errors"
	"fmt"
	"github.com/deskgate/deskgate/internal/atomicfile"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

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

// webhookRegistration is what the registration attempt found, for status
// and doctor.
type webhookRegistration struct {
	State  string    `json:"state"` // registered | manual | failed | disabled
	ID     string    `json:"id,omitempty"`
	URL    string    `json:"url,omitempty"`
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at,omitzero"`
}

func (a *App) secretPath() string { return filepath.Join(a.Config().DataDir, "webhook.secret") }

// loadWebhookSecret prefers the configured secret (a manually created
// webhook); otherwise the one deskgate stored when it registered itself.
func (a *App) loadWebhookSecret() {
	cfg := a.Config()
	secret := cfg.Sync.WebhookSecret.Reveal()
	if secret == "" {
		if b, err := os.ReadFile(a.secretPath()); err == nil {
			secret = strings.TrimSpace(string(b))
		}
	}
	a.hookSecretMu.Lock()
	a.hookSecret = secret
	a.hookSecretMu.Unlock()
}

func (a *App) webhookSecret() string {
	a.hookSecretMu.RLock()
	defer a.hookSecretMu.RUnlock()
	return a.hookSecret
}

func (a *App) setRegistration(r webhookRegistration) {
	a.hookSecretMu.Lock()
	r.At = a.now()
	a.hookReg = r
	a.hookSecretMu.Unlock()
}

func (a *App) registration() webhookRegistration {
	a.hookSecretMu.RLock()
	defer a.hookSecretMu.RUnlock()
	return a.hookReg
}

// autoRegister reports whether deskgate registers its own webhook.
func autoRegister(cfg *config.Config) bool {
	return cfg.Sync.WebhookPublicURL != "" && (cfg.Sync.Webhooks == nil || *cfg.Sync.Webhooks)
}

// apiScopes returns the scopes the OfficeRnD client asks for, and the
// read-only set it falls back to when OfficeRnD refuses them. The write
// scopes of webhook registration are asked for only while deskgate
// registers its webhook itself: OfficeRnD refuses a whole token request
// that names one ungranted scope, so asking for them by default would stop
// a read-only application from ever syncing.
func apiScopes(cfg *config.Config) (scopes, read []string) {
	scopes = slices.Clone(cfg.OfficeRnD.Scopes)
	if autoRegister(cfg) {
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

// autoRegOff records that OfficeRnD refused the webhook scopes: the
// application is read-only, so the webhook has to be created by hand.
func (a *App) autoRegOff(refused error) {
	a.hookSecretMu.Lock()
	a.autoRegDenied = true
	a.hookSecretMu.Unlock()
	url := a.Config().Sync.WebhookPublicURL
	a.setRegistration(webhookRegistration{State: "manual", URL: url,
		Detail: "automatic registration off: the OfficeRnD application has no webhook write grant (" + refused.Error() + "); syncing with read scopes"})
	a.log.Warn("OfficeRnD refused the webhook scopes; automatic webhook registration is off", "err", refused)
	a.log.Warn(ManualWebhookSteps(url))
}

// autoRegActive reports whether automatic registration is configured and
// was not turned off by a scope refusal.
func (a *App) autoRegActive() bool {
	a.hookSecretMu.RLock()
	defer a.hookSecretMu.RUnlock()
	return autoRegister(a.Config()) && !a.autoRegDenied
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

// ensureWebhook registers deskgate's webhook when the API scope allows,
// retrying while OfficeRnD is unreachable; otherwise it logs the manual
// steps.
func (a *App) ensureWebhook(ctx context.Context) {
	url := a.Config().Sync.WebhookPublicURL
	for attempt := 0; ; attempt++ {
		err := a.registerWebhook(ctx, url)
		if err == nil {
			return
		}
		if a.api.ScopesReduced() {
			return // autoRegOff recorded the state and logged the steps
		}
		if errors.Is(err, officernd.ErrScope) || errors.Is(err, officernd.ErrCredentials) {
			a.setRegistration(webhookRegistration{State: "manual", URL: url, Detail: err.Error()})
			a.log.Warn("cannot register the OfficeRnD webhook automatically", "err", err)
			a.log.Warn(ManualWebhookSteps(url))
			return
		}
		a.setRegistration(webhookRegistration{State: "failed", URL: url, Detail: err.Error()})
		d := time.Duration(1<<min(attempt, 6)) * 10 * time.Second
		a.log.Warn("webhook registration failed; will retry", "err", err, "in", d)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

func (a *App) registerWebhook(ctx context.Context, url string) error {
	hooks, err := a.api.ListWebhooks(ctx)
	if err != nil {
		return fmt.Errorf("list webhooks: %w", err)
	}
	have := a.webhookSecret() != ""
	for _, h := range hooks {
		if h.URL != url {
			continue
		}
		if have {
			a.setRegistration(webhookRegistration{State: "registered", ID: h.ID, URL: url})
			return nil
		}
		// Registered earlier but the secret is lost: replace it.
		if err := a.api.DeleteWebhook(ctx, h.ID); err != nil {
			return fmt.Errorf("replace webhook %s: %w", h.ID, err)
		}
	}
	h, err := a.api.RegisterWebhook(ctx, url, webhookEvents, "deskgate "+a.Config().OfficeRnD.OrgSlug)
	if err != nil {
		return fmt.Errorf("register webhook: %w", err)
	}
	if h.Secret == "" {
		return fmt.Errorf("register webhook: OfficeRnD returned no secret")
	}
	if err := atomicfile.Write(a.secretPath(), []byte(h.Secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("store webhook secret: %w", err)
	}
	if a.Config().Sync.WebhookSecret.Reveal() == "" {
		a.hookSecretMu.Lock()
		a.hookSecret = h.Secret
		a.hookSecretMu.Unlock()
	}
	a.setRegistration(webhookRegistration{State: "registered", ID: h.ID, URL: url})
	a.log.Info("registered OfficeRnD webhook", "id", h.ID, "url", url)
	return nil
}
