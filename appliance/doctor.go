package appliance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/mirror"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/notify"
	"github.com/deskgate/deskgate/appliance/officernd"
	"github.com/deskgate/deskgate/appliance/store"
)

// Doctor walks the troubleshooting list an operator would otherwise follow
// by hand and says what to fix.
func (a *App) Doctor(ctx context.Context) []admin.Check {
	cfg := a.Config()
	var out []admin.Check
	add := func(c admin.Check) { out = append(out, c) }

	// 1. OfficeRnD credentials, scopes and organization.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := a.api.Check(cctx)
	cancel()
	switch {
	case err == nil:
		add(admin.Check{Name: "officernd credentials", OK: true, Detail: "token issued for client " + cfg.OfficeRnD.ClientID})
		if a.api.ScopesReduced() {
			add(admin.Check{Name: "officernd scopes", OK: true, Warn: true,
				Detail: "OfficeRnD refused the webhook scopes (invalid_scope): syncing with read scopes only: " + strings.Join(a.api.Scopes(), " "),
				Fix:    "grant the application flex.settings.webhooks.read, .create and .delete in OfficeRnD to let deskgate register its webhook, or create the webhook by hand (see the webhook check)"})
		} else {
			add(admin.Check{Name: "officernd scopes", OK: true, Detail: strings.Join(a.api.Scopes(), " ")})
		}
		add(admin.Check{Name: "officernd organization", OK: true, Detail: "organization " + cfg.OfficeRnD.OrgSlug + " answers"})
	case errors.Is(err, officernd.ErrCredentials):
		add(admin.Check{Name: "officernd credentials", Detail: err.Error(),
			Fix: "copy the client id and secret from OfficeRnD Settings → Developer Tools → Applications → View into officernd.client_id and the client_secret file"})
	case errors.Is(err, officernd.ErrScope):
		add(admin.Check{Name: "officernd credentials", OK: true, Detail: "client accepted"})
		add(admin.Check{Name: "officernd scopes", Detail: err.Error(),
			Fix: "grant the app these scopes in OfficeRnD, or remove the ungranted ones from officernd.scopes: " + strings.Join(cfg.OfficeRnD.Scopes, " ")})
	case errors.Is(err, officernd.ErrOrgNotFound):
		add(admin.Check{Name: "officernd credentials", OK: true, Detail: "client accepted"})
		add(admin.Check{Name: "officernd organization", Detail: err.Error(),
			Fix: "set officernd.org_slug to the <slug> in https://app.officernd.com/admin/<slug>"})
	default:
		add(admin.Check{Name: "officernd reachable", Detail: err.Error(),
			Fix: "check the uplink, DNS and officernd.api_base / token_url; members keep their cached access meanwhile"})
	}

	// 2. Sync health.
	ss := a.syncer.Status()
	lag := ss.Lag(a.now())
	switch {
	case !ss.ImportDone:
		add(admin.Check{Name: "initial import", Detail: "not completed yet: " + ss.LastError, Fix: "fix the OfficeRnD checks above, then `deskgate sync now --full`"})
	case ss.Failures > 0:
		add(admin.Check{Name: "sync", Warn: true, Detail: fmt.Sprintf("%d failures since the last success %s ago: %s", ss.Failures, lag.Round(time.Second), ss.LastError),
			Fix: "cached decisions keep working; fix the cause above"})
	default:
		add(admin.Check{Name: "sync", OK: true, Detail: fmt.Sprintf("last success %s ago", lag.Round(time.Second))})
	}

	// 3. Webhook registered and recently delivered.
	reg := a.hooks.Registration()
	wh := ss.WebhookStats
	webhooksOn := cfg.Sync.Webhooks == nil || *cfg.Sync.Webhooks
	switch {
	case !webhooksOn:
		add(admin.Check{Name: "webhook", OK: true, Warn: true, Detail: "realtime webhooks are off; changes arrive with the poll every " + cfg.Sync.Interval.String()})
	case a.api.ScopesReduced() && mirror.AutoRegister(cfg):
		ok := a.hooks.Secret() != ""
		detail := "automatic registration is off: the OfficeRnD application is read-only"
		if ok {
			detail += "; a webhook secret is set, so deliveries are verified"
		} else {
			detail += "; no webhook secret: deliveries cannot be verified"
		}
		add(admin.Check{Name: "webhook", OK: ok, Warn: true, Detail: detail, Fix: mirror.ManualWebhookSteps(cfg.Sync.WebhookPublicURL)})
	case a.hooks.Secret() == "":
		url := cfg.Sync.WebhookPublicURL
		if url == "" {
			url = "https://<this box's public name>" + cfg.Sync.WebhookPath
		}
		add(admin.Check{Name: "webhook", Detail: "no webhook secret: deliveries cannot be verified (state: " + reg.State + ")", Fix: mirror.ManualWebhookSteps(url)})
	case wh.LastAccepted.IsZero():
		add(admin.Check{Name: "webhook", OK: true, Warn: true, Detail: "secret set (" + reg.State + "), but no delivery received since start",
			Fix: "make a change in OfficeRnD and run doctor again; check that OfficeRnD can reach " + cfg.Sync.WebhookPublicURL})
	default:
		add(admin.Check{Name: "webhook", OK: true, Detail: fmt.Sprintf("last delivery %s ago; %d accepted, %d bad signatures, %d duplicates",
			a.now().Sub(wh.LastAccepted).Round(time.Second), wh.Accepted, wh.BadSignature, wh.Duplicate)})
	}

	// 4. Mapping: plans and locations.
	if up := a.res.UnmappedPlans(); len(up) > 0 {
		names := make([]string, len(up))
		for i, p := range up {
			names[i] = p.Name
		}
		add(admin.Check{Name: "plan mapping", Warn: true, OK: true, Detail: "plans without a mapping (their members get no WiFi): " + strings.Join(names, ", "),
			Fix: "add them under plans: in the config (enabled: false for plans without WiFi)"})
	} else {
		add(admin.Check{Name: "plan mapping", OK: true, Detail: "every OfficeRnD plan is mapped"})
	}
	if un := a.res.Unresolved(); len(un) > 0 {
		add(admin.Check{Name: "location mapping", Detail: "config locations that match no OfficeRnD location: " + strings.Join(un, ", "),
			Fix: "use the location's exact name or id from OfficeRnD"})
	} else {
		add(admin.Check{Name: "location mapping", OK: true, Detail: fmt.Sprintf("%d locations mapped", len(cfg.Locations))})
	}

	// 5. A member's decision, as a smoke test of the whole path.
	var sample model.Account
	_ = a.store.View(func(tx *store.Tx) error {
		return tx.ForEachAccount(func(ac model.Account) error {
			if !ac.Disabled {
				sample = ac
				return errStop
			}
			return nil
		})
	})
	if sample.Username == "" {
		add(admin.Check{Name: "member decision", Warn: true, OK: true, Detail: "no enabled account yet", Fix: "run `deskgate members` after the import"})
	} else if ex, err := a.Explain(sample.Username, ""); err != nil {
		add(admin.Check{Name: "member decision", Detail: err.Error()})
	} else {
		add(admin.Check{Name: "member decision", OK: ex.Decision.Allowed, Detail: fmt.Sprintf("%s: %s", sample.Username, strings.Join(ex.Decision.Reasons, "; "))})
	}

	// 6. Store consistency.
	if err := a.store.Check(); err != nil {
		add(admin.Check{Name: "store", Detail: err.Error(), Fix: "stop deskgated, move deskgate.db aside and restart: it re-imports from OfficeRnD"})
	} else {
		add(admin.Check{Name: "store", OK: true, Detail: "consistent"})
	}

	// 7. Email.
	pending, _ := a.store.OutboxLen()
	switch m := a.mailer.(type) {
	case *notify.SMTPMailer:
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := m.Check(cctx)
		cancel()
		if err != nil {
			add(admin.Check{Name: "smtp", Detail: err.Error(), Fix: "check smtp.host, port, tls, username and password; " + fmt.Sprint(pending) + " emails are waiting"})
		} else {
			add(admin.Check{Name: "smtp", OK: true, Detail: fmt.Sprintf("%s:%d accepts us; %d emails waiting", cfg.SMTP.Host, cfg.SMTP.Port, pending)})
		}
	case *notify.Mailbox:
		if fi, err := os.Stat(m.Dir()); err != nil && !errors.Is(err, os.ErrNotExist) {
			add(admin.Check{Name: "mailbox", Detail: err.Error()})
		} else {
			_ = fi
			add(admin.Check{Name: "mailbox", OK: true, Warn: true, Detail: "emails go to the local folder " + m.Dir() + " (demo mode), not to members"})
		}
	}

	// 8. RADIUS.
	out = append(out, a.radiusChecks()...)
	// 9. The admin API's exposure.
	add(a.adminSrv.Check(cfg.Admin.Socket, a.AdminAddr()))

	// 10. Member pages.
	out = append(out, a.pages.Checks(a.membersOff)...)

	// 11. The captive portal's RFC 8908 API.
	if c, ok := portalAPICheck(cfg.Portal.Enabled, cfg.Portal.ListenTLS, cfg.Portal.CertFile, cfg.Portal.PublicURL); ok {
		add(c)
	}
	return out
}

var errStop = errors.New("stop")

// portalAPICheck: RFC 8908 (section 2) asks for the Captive Portal API and
// the user portal over https; over plain http a client cannot trust what
// it reads. It reports false when the portal is off.
func portalAPICheck(enabled bool, listenTLS, certFile, publicURL string) (admin.Check, bool) {
	if !enabled {
		return admin.Check{}, false
	}
	if listenTLS != "" && certFile != "" {
		return admin.Check{Name: "captive portal api", OK: true, Detail: "RFC 8908 API served over https on " + listenTLS}, true
	}
	return admin.Check{Name: "captive portal api", Warn: true,
		Detail: "the RFC 8908 API (DHCP option 114) is announced as " + strings.TrimRight(publicURL, "/") + "/captive-portal/api over plain http; RFC 8908 requires https, and clients may ignore it",
		Fix:    "set portal.listen_tls (e.g. :8443), portal.cert_file and portal.key_file with a certificate for the public_url host that guests' devices trust (a public CA); the API is then announced as https"}, true
}
