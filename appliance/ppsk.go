package appliance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/deskgate/deskgate/appliance/access"
	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/model"
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
		scope, dev.VLAN = d.a.ppskScope(tx, rec.MemberID)
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

// ppskScope says whose passphrase a member's devices get: their Private
// Office's (radius.ppsk.offices lists their company), with its VLAN, or
// their own.
func (a *App) ppskScope(tx *store.Tx, memberID string) (string, int) {
	m, err := tx.GetMember(memberID)
	if err == nil && m.Company != "" {
		offices := a.Config().RADIUS.PPSK.Offices
		if len(offices) > 0 {
			c, _ := tx.GetCompany(m.Company)
			for _, o := range offices {
				if o.Company == m.Company || (c.Name != "" && strings.EqualFold(o.Company, c.Name)) {
					return "office:" + m.Company, o.VLAN
				}
			}
		}
	}
	return "member:" + memberID, 0
}

// errDevice is a registration refused for a reason the caller can fix.
type errDevice struct{ msg string }

func (e errDevice) Error() string { return e.msg }

// normalizeDeviceMAC accepts aa:bb:cc:dd:ee:ff, AA-BB-..., aabb.ccdd.eeff
// or aabbccddeeff and returns aa:bb:cc:dd:ee:ff; a group (multicast)
// address is refused.
func normalizeDeviceMAC(s string) (string, error) {
	hw, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil || len(hw) != 6 {
		clean := strings.NewReplacer(":", "", "-", "", ".", "").Replace(strings.ToLower(strings.TrimSpace(s)))
		if len(clean) != 12 {
			return "", errDevice{fmt.Sprintf("%q is not a MAC address (write it like a4:83:e7:12:34:56)", s)}
		}
		if hw, err = net.ParseMAC(clean[0:2] + ":" + clean[2:4] + ":" + clean[4:6] + ":" + clean[6:8] + ":" + clean[8:10] + ":" + clean[10:12]); err != nil {
			return "", errDevice{fmt.Sprintf("%q is not a MAC address (write it like a4:83:e7:12:34:56)", s)}
		}
	}
	if hw[0]&1 == 1 {
		return "", errDevice{fmt.Sprintf("%s is a group address, not a device's", hw)}
	}
	return hw.String(), nil
}

func checkDeviceName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 64 {
		return "", errDevice{"give the device a name of 1 to 64 characters (e.g. \"Office printer\")"}
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return "", errDevice{"the device name has control characters"}
		}
	}
	return name, nil
}

// registerDevice registers a device to a member (id): the member must have
// access, and the member's registered devices plus live EAP-TLS
// certificates stay within their device limit (max_devices).
func (a *App) registerDevice(memberID, macIn, nameIn, actor string) (admin.Device, error) {
	mac, err := normalizeDeviceMAC(macIn)
	if err != nil {
		return admin.Device{}, err
	}
	name, err := checkDeviceName(nameIn)
	if err != nil {
		return admin.Device{}, err
	}
	var out admin.Device
	err = a.store.Update(func(tx *store.Tx) error {
		acct, err := tx.AccountOfMember(memberID)
		if err != nil {
			return errDevice{"the member has no WiFi account"}
		}
		_, dec, err := a.res.DecideMember(tx, memberID, a.now())
		if err != nil {
			return err
		}
		if !dec.Allowed || acct.Disabled {
			return errDevice{"the member has no WiFi access now (" + dec.Deny + ")"}
		}
		if old, err := tx.GetDevice(mac); err == nil {
			if old.MemberID != memberID {
				return errDevice{mac + " is already registered to another member"}
			}
			return errDevice{mac + " is already registered (as \"" + old.Name + "\")"}
		}
		have, err := tx.Devices(memberID)
		if err != nil {
			return err
		}
		certs := 0
		if a.radius.ca != nil {
			certs = a.radius.ca.LiveCount(acct.Username)
		}
		limit := dec.MaxDevices
		if limit <= 0 {
			limit = maxDevicesUnlimited
		}
		if len(have)+certs >= limit {
			return errDevice{fmt.Sprintf("device limit reached: %d devices and %d certificates of %d allowed; remove one first", len(have), certs, limit)}
		}
		d := model.Device{MAC: mac, Name: name, MemberID: memberID, AddedBy: actor, CreatedAt: a.now()}
		if err := tx.PutDevice(d); err != nil {
			return err
		}
		scope, vlan := a.ppskScope(tx, memberID)
		pass, err := tx.EnsurePPSKPassphrase(scope)
		if err != nil {
			return err
		}
		if err := tx.Audit(model.AuditEntry{Time: a.now(), Actor: actor, Action: "device.registered", Member: memberID, Subject: acct.Username,
			Cause: "device " + mac + " (" + name + ") registered for PPSK (" + scope + ")"}); err != nil {
			return err
		}
		out = deviceView(d, acct.Username, scope, vlan, pass)
		return nil
	})
	return out, err
}

func deviceView(d model.Device, user, scope string, vlan int, pass string) admin.Device {
	return admin.Device{MAC: d.MAC, Name: d.Name, Member: d.MemberID, Username: user, AddedBy: d.AddedBy, CreatedAt: d.CreatedAt,
		Scope: scope, VLAN: vlan, Passphrase: pass}
}

// removeDevice forgets a device and disconnects its sessions.
func (a *App) removeDevice(ctx context.Context, macIn, onlyMember, actor string) (admin.Device, error) {
	mac, err := normalizeDeviceMAC(macIn)
	if err != nil {
		return admin.Device{}, err
	}
	var out admin.Device
	err = a.store.Update(func(tx *store.Tx) error {
		d, err := tx.GetDevice(mac)
		if errors.Is(err, store.ErrNotFound) || (err == nil && onlyMember != "" && d.MemberID != onlyMember) {
			return errDevice{mac + " is not registered"}
		}
		if err != nil {
			return err
		}
		if _, err := tx.DeleteDevice(mac); err != nil {
			return err
		}
		user := ""
		if acct, err := tx.AccountOfMember(d.MemberID); err == nil {
			user = acct.Username
		}
		out = deviceView(d, user, "", 0, "")
		return tx.Audit(model.AuditEntry{Time: a.now(), Actor: actor, Action: "device.removed", Member: d.MemberID, Subject: user,
			Cause: "device " + mac + " (" + d.Name + ") removed"})
	})
	if err != nil {
		return out, err
	}
	if a.radius.srv != nil {
		if err := a.radius.srv.DisconnectMAC(ctx, out.Member, mac); err != nil {
			a.log.Warn("disconnect a removed device", "mac", mac, "err", err)
		}
	}
	return out, nil
}

// devices lists the devices of member (id), or all with member "".
func (a *App) devices(member string) ([]admin.Device, error) {
	out := []admin.Device{}
	err := a.store.View(func(tx *store.Tx) error {
		ds, err := tx.Devices(member)
		if err != nil {
			return err
		}
		for _, d := range ds {
			user := ""
			if acct, err := tx.AccountOfMember(d.MemberID); err == nil {
				user = acct.Username
			}
			scope, vlan := a.ppskScope(tx, d.MemberID)
			pass, _ := tx.PPSKPassphrase(scope)
			out = append(out, deviceView(d, user, scope, vlan, pass))
		}
		return nil
	})
	return out, err
}

// isDeviceOf reports whether mac (a session's User-Name) is a device
// registered to member.
func isDeviceOf(tx *store.Tx, username, member string) bool {
	mac, err := normalizeDeviceMAC(username)
	if err != nil {
		return false
	}
	d, err := tx.GetDevice(mac)
	return err == nil && d.MemberID == member
}

func (a *App) findMemberID(q string) (string, error) {
	var id string
	err := a.store.View(func(tx *store.Tx) error {
		var err error
		id, err = access.FindMember(tx, q)
		return err
	})
	if err != nil {
		return "", errDevice{"no member " + q}
	}
	return id, nil
}

// maxDevicesUnlimited bounds the devices of a plan without max_devices.
const maxDevicesUnlimited = 50
