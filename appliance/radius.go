package appliance

import (
	"context"
	"net/http"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/config"
)

// radiusPart holds the RADIUS server once wired (see radius_wire.go).
type radiusPart struct{}

func (a *App) newRadius() error                                                 { return nil }
func (a *App) runRadius(ctx context.Context) error                              { <-ctx.Done(); return nil }
func (a *App) reloadRadius(*config.Config)                                      {}
func (a *App) radiusStatus() *admin.RADIUSStatus                                { return nil }
func (a *App) radiusChecks() []admin.Check                                      { return nil }
func (a *App) radiusReply(string, string, admin.Explanation) (string, []string) { return "", nil }
func (a *App) watchChanges(ctx context.Context) error                           { <-ctx.Done(); return nil }
func (a *App) handleNASCheck(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "RADIUS not wired"})
}
func (a *App) handleSessions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "RADIUS not wired"})
}
