package appliance

import (
	"context"
	"errors"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/devices"
	"github.com/deskgate/deskgate/appliance/onboard"
	"github.com/deskgate/deskgate/appliance/store"
)

// memberPages is the App as the member pages' onboard.App.
type memberPages struct{ a *App }

var _ onboard.App = memberPages{}

// ProfileURL is a fresh link to the member's device-setup page, valid for
// users.setup_link_ttl, for the welcome email, the portal and explain. It
// is "" when no link can be made (no CA, or the link key is unusable).
func (a *App) ProfileURL(username string) string { return a.pages.ProfileURL(username) }

func (m memberPages) RecordPassword(tx *store.Tx, memberID string, ntHash []byte) error {
	return m.a.fleet.RecordPassword(tx, memberID, ntHash)
}

func (m memberPages) Network(username string) string {
	if ex, err := m.a.Explain(username, ""); err == nil && len(ex.Decision.Locations) > 0 {
		return ex.Decision.Locations[0].Network
	}
	return ""
}

func (m memberPages) Devices(memberID string) ([]admin.Device, error) { return m.a.ppsk.List(memberID) }

// refused turns a device refusal into words for the member.
func refused(d admin.Device, err error) (admin.Device, error) {
	var de devices.Refused
	if errors.As(err, &de) {
		return d, onboard.Refused(de.Msg)
	}
	return d, err
}

func (m memberPages) RegisterDevice(memberID, mac, name string) (admin.Device, error) {
	return refused(m.a.ppsk.Register(memberID, mac, name, "member"))
}

func (m memberPages) RemoveDevice(ctx context.Context, mac, memberID string) (admin.Device, error) {
	return refused(m.a.ppsk.Remove(ctx, mac, memberID, "member"))
}
