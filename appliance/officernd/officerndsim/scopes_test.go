package officerndsim

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/deskgate/deskgate/appliance/officernd"
)

// The client's default scopes are read scopes only, so a read-only
// application can sync with them.
func TestDefaultScopesFitReadOnlyApp(t *testing.T) {
	e := newEnv(t, Options{Seed: true, Scopes: ReadScopes})
	cfg := e.sim.ClientConfig(e.srv.URL)
	cfg.HTTPClient, cfg.Now = e.srv.Client(), e.clock.Now
	c, err := officernd.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Members(context.Background(), officernd.Query{}); err != nil {
		t.Fatalf("read-only app with default scopes: %v", err)
	}
	for _, sc := range officernd.DefaultScopes {
		if !slices.Contains(ReadScopes, sc) {
			t.Errorf("default scope %s is not a read scope", sc)
		}
	}
}

// Asking a read-only application for the webhook write scopes fails the
// token with invalid_scope; the client asks once more with the read scopes,
// syncs, reports the fallback once, and registration fails with ErrScope.
func TestScopeFallbackOnInvalidScope(t *testing.T) {
	e := newEnv(t, Options{Seed: true, Scopes: ReadScopes})
	ctx := context.Background()
	cfg := e.sim.ClientConfig(e.srv.URL)
	cfg.HTTPClient, cfg.Now = e.srv.Client(), e.clock.Now
	cfg.Scopes = append(slices.Clone(officernd.DefaultScopes), officernd.WebhookScopes...)
	cfg.ReadScopes = officernd.ReadOnlyScopes(cfg.Scopes)
	called := make(chan error, 2)
	cfg.OnScopesReduced = func(err error) { called <- err }
	c, err := officernd.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	members, _, err := c.Members(ctx, officernd.Query{})
	if err != nil || len(members) == 0 {
		t.Fatalf("members after fallback: %d %v", len(members), err)
	}
	if !c.ScopesReduced() || !slices.Equal(c.Scopes(), officernd.DefaultScopes) {
		t.Errorf("reduced %v scopes %v", c.ScopesReduced(), c.Scopes())
	}
	if err := <-called; !errors.Is(err, officernd.ErrScope) {
		t.Errorf("callback error %v, want ErrScope", err)
	}
	// Two token requests: the refused one and the read-only one.
	if st := e.sim.Stats(); st.TokenRequests != 2 {
		t.Errorf("token requests %d, want 2", st.TokenRequests)
	}
	if _, err := c.RegisterWebhook(ctx, "https://gw.example.org/hook", []string{"member.updated"}, ""); !errors.Is(err, officernd.ErrScope) {
		t.Errorf("register with read scopes: %v, want ErrScope", err)
	}
	select {
	case err := <-called:
		t.Errorf("callback called twice: %v", err)
	default:
	}

	// Without ReadScopes there is no fallback: the refusal is the error.
	cfg.ReadScopes, cfg.OnScopesReduced = nil, nil
	c2, _ := officernd.New(ctx, cfg)
	if _, _, err := c2.Members(ctx, officernd.Query{}); !errors.Is(err, officernd.ErrScope) {
		t.Errorf("no fallback: %v, want ErrScope", err)
	}
}
