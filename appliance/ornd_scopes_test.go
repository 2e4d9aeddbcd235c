package appliance

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/appliance/mirror"
	"github.com/deskgate/deskgate/appliance/officernd/officerndsim"
)

func loadCfg(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestReadOnlyOfficeRnDApp: the OfficeRnD application is granted read
// scopes only and refuses any token request naming a write scope
// (invalid_scope). The daemon, configured to register its webhook, falls
// back to the read scopes, imports, turns auto-registration off (visible in
// status) and doctor prints the manual webhook steps.
func TestReadOnlyOfficeRnDApp(t *testing.T) {
	h := newHarness(t, harnessOpts{seed: true, webhooks: true,
		simOpts: func(o *officerndsim.Options) { o.Scopes = officerndsim.ReadScopes }})
	h.start()
	h.waitImport(30 * time.Second)
	seed := h.sim.Seeded()
	var active string
	for _, m := range seed.Members {
		if len(m.ActivePlans) > 0 && m.ActivePlans[0] == officerndsim.PlanHotDesk {
			active = m.Email
			break
		}
	}
	if active == "" || !h.allowed(active) {
		t.Fatalf("hot-desk member %q not allowed after a read-only import", active)
	}
	waitFor(t, 5*time.Second, "registration state manual", func() bool { return h.app.hooks.Registration().State == "manual" })
	st, err := adminAPI{h.app}.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Webhook.AutoRegister || !st.Webhook.ReadOnlyScopes || !strings.Contains(st.Webhook.Detail, "automatic registration off") {
		t.Errorf("status webhook %+v, want auto-registration off and read-only scopes", st.Webhook)
	}
	for _, sc := range h.app.api.Scopes() {
		if !strings.HasSuffix(sc, ".read") || strings.HasPrefix(sc, "flex.settings.webhooks.") {
			t.Errorf("client still asks for %s", sc)
		}
	}
	var steps bool
	for _, c := range h.app.Doctor(context.Background()) {
		if c.Name == "webhook" && strings.Contains(c.Fix, "Create the webhook in OfficeRnD by hand") && strings.Contains(c.Fix, h.hookURL) {
			steps = true
		}
	}
	if !steps {
		t.Errorf("doctor does not print the manual webhook steps: %+v", h.app.Doctor(context.Background()))
	}
}

// TestScopesFollowAutoRegistration: without a public webhook URL the
// daemon asks for no webhook scope at all; with one it asks for read,
// create and delete (the replace path deletes).
func TestScopesFollowAutoRegistration(t *testing.T) {
	h := newHarness(t, harnessOpts{seed: true})
	cfg := loadCfg(t, h.cfgPath)
	cfg.OfficeRnD.Scopes = []string{"flex.community.members.read"}
	scopes, read := mirror.APIScopes(cfg)
	if strings.Contains(strings.Join(scopes, " "), "webhooks") || read != nil {
		t.Errorf("no auto-registration: scopes %v read %v", scopes, read)
	}
	cfg.Sync.WebhookPublicURL = "https://gw.example.org/hook"
	on := true
	cfg.Sync.Webhooks = &on
	scopes, read = mirror.APIScopes(cfg)
	want := "flex.community.members.read flex.settings.webhooks.read flex.settings.webhooks.create flex.settings.webhooks.delete"
	if strings.Join(scopes, " ") != want || strings.Join(read, " ") != "flex.community.members.read" {
		t.Errorf("auto-registration: scopes %v read %v", scopes, read)
	}
}
