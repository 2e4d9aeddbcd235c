// Package devices owns the PPSK device registry: devices without 802.1X
// (printers, TVs) registered to a member by the member on the setup page
// or by the operator (deskgate devices), within the member's device limit
// together with their live EAP-TLS certificates, and answered to the
// access points' MAC authentication with the member's or their Private
// Office's passphrase (radius.ppsk), the scope Scope decides.
package devices

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/deskgate/deskgate/appliance/access"
	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

// Registry registers, removes and lists PPSK devices.
type Registry struct {
	Store    *store.Store
	Resolver *access.Resolver
	Config   func() *config.Config
	Now      func() time.Time
	Log      *slog.Logger
	// LiveCerts counts a username's live EAP-TLS client certificates,
	// which share the device limit (nil: none).
	LiveCerts func(username string) int
	// Disconnect ends the sessions of a removed device (nil: none).
	Disconnect func(ctx context.Context, memberID, mac string) error
}

// Scope says whose passphrase a member's devices get: their Private
// Office's (radius.ppsk.offices lists their company), with its VLAN, or
// their own.
func (r *Registry) Scope(tx *store.Tx, memberID string) (string, int) {
	m, err := tx.GetMember(memberID)
	if err == nil && m.Company != "" {
		offices := r.Config().RADIUS.PPSK.Offices
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

// Refused is a registration or removal refused for a reason the caller
// can fix; Msg says it in words for an operator or a member.
type Refused struct{ Msg string }

func (e Refused) Error() string { return e.Msg }

// NormalizeMAC accepts aa:bb:cc:dd:ee:ff, AA-BB-..., aabb.ccdd.eeff
// or aabbccddeeff and returns aa:bb:cc:dd:ee:ff; a group (multicast)
// address is refused.
func NormalizeMAC(s string) (string, error) {
	hw, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil || len(hw) != 6 {
		clean := strings.NewReplacer(":", "", "-", "", ".", "").Replace(strings.ToLower(strings.TrimSpace(s)))
		if len(clean) != 12 {
			return "", Refused{fmt.Sprintf("%q is not a MAC address (write it like a4:83:e7:12:34:56)", s)}
		}
		if hw, err = net.ParseMAC(clean[0:2] + ":" + clean[2:4] + ":" + clean[4:6] + ":" + clean[6:8] + ":" + clean[8:10] + ":" + clean[10:12]); err != nil {
			return "", Refused{fmt.Sprintf("%q is not a MAC address (write it like a4:83:e7:12:34:56)", s)}
		}
	}
	if hw[0]&1 == 1 {
		return "", Refused{fmt.Sprintf("%s is a group address, not a device's", hw)}
	}
	return hw.String(), nil
}

func checkDeviceName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 64 {
		return "", Refused{"give the device a name of 1 to 64 characters (e.g. \"Office printer\")"}
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return "", Refused{"the device name has control characters"}
		}
	}
	return name, nil
}

// Register registers a device to a member (id): the member must have
// access, and the member's registered devices plus live EAP-TLS
// certificates stay within their device limit (max_devices).
func (r *Registry) Register(memberID, macIn, nameIn, actor string) (admin.Device, error) {
	mac, err := NormalizeMAC(macIn)
	if err != nil {
		return admin.Device{}, err
	}
	name, err := checkDeviceName(nameIn)
	if err != nil {
		return admin.Device{}, err
	}
	var out admin.Device
	err = r.Store.Update(func(tx *store.Tx) error {
		acct, err := tx.AccountOfMember(memberID)
		if err != nil {
			return Refused{"the member has no WiFi account"}
		}
		_, dec, err := r.Resolver.DecideMember(tx, memberID, r.Now())
		if err != nil {
			return err
		}
		if !dec.Allowed || acct.Disabled {
			return Refused{"the member has no WiFi access now (" + dec.Deny + ")"}
		}
		if old, err := tx.GetDevice(mac); err == nil {
			if old.MemberID != memberID {
				return Refused{mac + " is already registered to another member"}
			}
			return Refused{mac + " is already registered (as \"" + old.Name + "\")"}
		}
		have, err := tx.Devices(memberID)
		if err != nil {
			return err
		}
		certs := 0
		if r.LiveCerts != nil {
			certs = r.LiveCerts(acct.Username)
		}
		limit := dec.MaxDevices
		if limit <= 0 {
			limit = maxDevicesUnlimited
		}
		if len(have)+certs >= limit {
			return Refused{fmt.Sprintf("device limit reached: %d devices and %d certificates of %d allowed; remove one first", len(have), certs, limit)}
		}
		d := model.Device{MAC: mac, Name: name, MemberID: memberID, AddedBy: actor, CreatedAt: r.Now()}
		if err := tx.PutDevice(d); err != nil {
			return err
		}
		scope, vlan := r.Scope(tx, memberID)
		pass, err := tx.EnsurePPSKPassphrase(scope)
		if err != nil {
			return err
		}
		if err := tx.Audit(model.AuditEntry{Time: r.Now(), Actor: actor, Action: "device.registered", Member: memberID, Subject: acct.Username,
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

// Remove forgets a device (of onlyMember, when not "") and disconnects its sessions.
func (r *Registry) Remove(ctx context.Context, macIn, onlyMember, actor string) (admin.Device, error) {
	mac, err := NormalizeMAC(macIn)
	if err != nil {
		return admin.Device{}, err
	}
	var out admin.Device
	err = r.Store.Update(func(tx *store.Tx) error {
		d, err := tx.GetDevice(mac)
		if errors.Is(err, store.ErrNotFound) || (err == nil && onlyMember != "" && d.MemberID != onlyMember) {
			return Refused{mac + " is not registered"}
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
		return tx.Audit(model.AuditEntry{Time: r.Now(), Actor: actor, Action: "device.removed", Member: d.MemberID, Subject: user,
			Cause: "device " + mac + " (" + d.Name + ") removed"})
	})
	if err != nil {
		return out, err
	}
	if r.Disconnect != nil {
		if err := r.Disconnect(ctx, out.Member, mac); err != nil {
			r.Log.Warn("disconnect a removed device", "mac", mac, "err", err)
		}
	}
	return out, nil
}

// List lists the devices of member (id), or all with member "".
func (r *Registry) List(member string) ([]admin.Device, error) {
	out := []admin.Device{}
	err := r.Store.View(func(tx *store.Tx) error {
		ds, err := tx.Devices(member)
		if err != nil {
			return err
		}
		for _, d := range ds {
			user := ""
			if acct, err := tx.AccountOfMember(d.MemberID); err == nil {
				user = acct.Username
			}
			scope, vlan := r.Scope(tx, d.MemberID)
			pass, _ := tx.PPSKPassphrase(scope)
			out = append(out, deviceView(d, user, scope, vlan, pass))
		}
		return nil
	})
	return out, err
}

// IsDeviceOf reports whether mac (a session's User-Name) is a device
// registered to member.
func IsDeviceOf(tx *store.Tx, username, member string) bool {
	mac, err := NormalizeMAC(username)
	if err != nil {
		return false
	}
	d, err := tx.GetDevice(mac)
	return err == nil && d.MemberID == member
}

// FindMember resolves a username, email or member id to the member id; an
// unknown one is Refused.
func (r *Registry) FindMember(q string) (string, error) {
	var id string
	err := r.Store.View(func(tx *store.Tx) error {
		var err error
		id, err = access.FindMember(tx, q)
		return err
	})
	if err != nil {
		return "", Refused{"no member " + q}
	}
	return id, nil
}

// maxDevicesUnlimited bounds the devices of a plan without max_devices.
const maxDevicesUnlimited = 50
