package appliance

import (
	"context"
	"errors"

	"github.com/deskgate/deskgate/appliance/radius"
	"github.com/deskgate/deskgate/appliance/store"
)

// PPSK: devices without 802.1X, registered by a member on the setup page
// or by the operator (deskgate devices), answered to the access points'
// MAC authentication with the member's or their Private Office's
// passphrase (radius.ppsk).

// LookupDevice implements radius.DeviceDirectory.
func (d directory) LookupDevice(ctx context.Context, mac string) (radius.Device, radius.Subject, error) {
	var dev radius.Device
	var username, scope string
	err := d.a.store.View(func(tx *store.Tx) error {
		rec, err := tx.GetDevice(mac)
		if errors.Is(err, store.ErrNotFound) {
			return radius.ErrUnknownDevice
		}
		if err != nil {
			return err
		}
		acct, err := tx.AccountOfMember(rec.MemberID)
		if errors.Is(err, store.ErrNotFound) {
			return radius.ErrUnknownDevice // the member's account is gone
		}
		if err != nil {
			return err
		}
		username = acct.Username
		scope, dev.VLAN = d.a.ppsk.Scope(tx, rec.MemberID)
		dev.MAC, dev.Name, dev.Scope = rec.MAC, rec.Name, scope
		dev.Passphrase, err = tx.PPSKPassphrase(scope)
		return err
	})
	if errors.Is(err, store.ErrNotFound) && scope != "" {
		// The scope changed since registration (the company became a
		// listed office): its passphrase is made now.
		err = d.a.store.Update(func(tx *store.Tx) error {
			var err error
			dev.Passphrase, err = tx.EnsurePPSKPassphrase(scope)
			return err
		})
	}
	if err != nil {
		return radius.Device{}, radius.Subject{}, err
	}
	subj, err := d.Lookup(ctx, username)
	if errors.Is(err, radius.ErrUnknownUser) {
		return radius.Device{}, radius.Subject{}, radius.ErrUnknownDevice
	}
	if err != nil {
		return radius.Device{}, radius.Subject{}, err
	}
	return dev, subj, nil
}
