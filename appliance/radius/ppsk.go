package radius

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"errors"
	"net/netip"
	"strconv"
	"time"

	"layeh.com/radius"

	"github.com/deskgate/deskgate/appliance/model"
)

// PPSK: per-member WPA passphrases for devices without 802.1X (printers,
// TVs, consoles). The access point asks with a MAC-authentication
// Access-Request (User-Name = the station's MAC, no password or the MAC
// again as password) and gets the passphrase and VLAN of the member (or
// Private Office) the device is registered to, in its vendor's form.

// ErrUnknownDevice is what a DeviceDirectory returns for a MAC no member
// registered.
var ErrUnknownDevice = errors.New("unknown device")

// Device is a registered device as the RADIUS server needs it.
type Device struct {
	MAC  string // aa:bb:cc:dd:ee:ff
	Name string
	// Passphrase is the WPA passphrase (8..63 characters) of the member or
	// of their Private Office.
	Passphrase string
	// VLAN, when > 0, replaces the decision's VLAN (a Private Office's own
	// VLAN).
	VLAN int
	// Scope says whose passphrase it is: "member" or "office:<company>".
	Scope string
}

// DeviceDirectory is implemented by Directories that know registered
// devices; the server answers MAC authentication only with one.
type DeviceDirectory interface {
	// LookupDevice returns the device with this MAC (aa:bb:cc:dd:ee:ff),
	// and the subject (account and decision) of the member it belongs
	// to, or ErrUnknownDevice.
	LookupDevice(ctx context.Context, mac string) (Device, Subject, error)
}

// What happens to a MAC the server does not know (Config.PPSKUnknown).
const (
	PPSKReject = "reject"
	PPSKGuest  = "guest"
)

// Vendors whose PPSK form differs from the RFC 2868 Tunnel-Password.
const (
	VendorHostapd  = "hostapd" // hostapd wpa_psk_radius, OpenWrt ppsk
	VendorAruba    = "aruba"
	VendorRuckus   = "ruckus"
	VendorFortinet = "fortinet"
)

const (
	attrTunnelPassword = 69

	vendorAruba  = 14823
	vendorRuckus = 25053

	// Aruba-MPSK-Passphrase, salt-encrypted like Tunnel-Password but
	// without a tag (FreeRADIUS dictionary.aruba: 44, encrypt=2).
	arubaMPSKPassphrase = 44
	// Ruckus-Dpsk carries the PMK, PBKDF2-SHA1(passphrase, SSID, 4096,
	// 32), as PacketFence's Ruckus module sends it
	// (lib/pf/Switch/Ruckus.pm, generate_dpsk_attribute_value).
	ruckusDPSK = 142

	denyUnknownDevice = "unknown_device"
)

func init() {
	replyMessages[denyUnknownDevice] = "Device not registered"
}

// macAuth reports whether r is a MAC-authentication request: User-Name a
// MAC address, and no password, or the same MAC as the password (hostapd,
// Cisco MAB, Aruba, Ruckus and FortiGate send it so), and a
// Calling-Station-Id, if any, naming the same station.
func (s *Server) macAuth(w *worker, nas *nasState, r *request) (string, bool) {
	if r.eap || r.msCHAP2Resp != nil || r.msCHAP1Resp != nil || r.chapPassword != nil || r.msChallenge != nil {
		return "", false
	}
	mac, ok := normalizeMAC(r.userName)
	if !ok {
		return "", false
	}
	if len(r.callingStation) > 0 {
		if cs, ok := normalizeMAC(r.callingStation); ok && cs != mac {
			return "", false
		}
	}
	if r.userPassword == nil {
		return mac, true
	}
	pw, ok := w.c.papPassword(w.pw, r.userPassword, nas.Secret, r.authenticator())
	if !ok {
		return "", false
	}
	w.pw = pw
	pm, ok := normalizeMAC(pw)
	return mac, ok && pm == mac
}

// authenticateDevice answers a MAC-authentication request.
func (s *Server) authenticateDevice(ctx context.Context, w *worker, nas *nasState, r *request, src netip.AddrPort, now time.Time, dd DeviceDirectory, mac string) []byte {
	ev := evaluation{nas: nas, username: mac, now: now, method: "mac", mac: mac, location: nas.LocationID}
	dev, subj, err := dd.LookupDevice(WithLocation(ctx, ev.location), mac)
	switch {
	case errors.Is(err, ErrUnknownDevice):
		if s.cfg.PPSKUnknown == PPSKGuest && s.cfg.PPSKGuestVLAN > 0 {
			s.stats.Accepts.Add(1)
			s.log.Info("unknown device sent to the guest vlan", "mac", mac, "nas", nas.Name, "vlan", s.cfg.PPSKGuestVLAN)
			return s.encodeGuestDevice(w, nas, r)
		}
		ev.deny, ev.detail = denyUnknownDevice, "no member registered this MAC"
	case err != nil:
		s.log.Error("device lookup failed, request dropped", "mac", mac, "err", err)
		s.stats.drop(DropError)
		return nil
	default:
		ev.subj = subj
		ev.device = &dev
		if subj.Account.Disabled {
			ev.deny, ev.detail = model.DenyAccountDisabled, subj.Account.DisabledReason
		} else {
			s.decide(&ev)
		}
	}
	if ev.deny != "" {
		s.stats.Rejects.Add(1)
		s.logReject(&ev, src)
		return s.encodeReject(w, nas, r, &ev)
	}
	if dev.VLAN > 0 {
		ev.access.VLAN = dev.VLAN
	}
	s.stats.Accepts.Add(1)
	s.log.Info("access-accept for a registered device", "mac", mac, "device", dev.Name, "member", subj.Account.MemberID, "nas", nas.Name, "scope", dev.Scope, "vlan", ev.access.VLAN)
	return s.encodeAccept(ctx, w, nas, r, &ev)
}

// encodeGuestDevice accepts an unknown device onto the guest VLAN without
// a passphrase of its own (the SSID's common one applies, hostapd
// wpa_psk_radius=1).
func (s *Server) encodeGuestDevice(w *worker, nas *nasState, r *request) []byte {
	w.w.reset(w.out, codeAccessAccept, r.id, r.authenticator())
	w.w.integer(attrTunnelType, tunnelTypeVLAN)
	w.w.integer(attrTunnelMediumType, tunnelMediumIEEE80)
	w.w.str(attrTunnelPrivGroup, strconv.Itoa(s.cfg.PPSKGuestVLAN))
	w.w.str(attrFilterID, "guest")
	for i := range min(r.nProxy, maxProxyStates) {
		w.w.attr(attrProxyState, r.proxyStates[i])
	}
	return w.w.sign(w.c, nas.Secret, signReply)
}

// ppskAttrs appends the passphrase in the NAS vendor's form.
func (s *Server) ppskAttrs(w *worker, nas *nasState, r *request, dev *Device) {
	pass := []byte(dev.Passphrase)
	salted := func() []byte {
		var salt [2]byte
		_, _ = rand.Read(salt[:])
		salt[0] |= 0x80 // RFC 2868 3.5: the salt's high bit is set
		enc, err := radius.NewTunnelPassword(pass, salt[:], nas.Secret, r.authenticator())
		if err != nil {
			w.w.err = true
			return nil
		}
		return enc
	}
	switch nas.Vendor {
	case VendorCisco:
		// Cisco iPSK: the controller reads the passphrase from two
		// cisco-av-pairs (AireOS 8.5 Identity PSK Feature Deployment
		// Guide, https://www.cisco.com/c/en/us/td/docs/wireless/controller/technotes/8-5/b_Identity_PSK_Feature_Deployment_Guide.html).
		w.w.vendor(vendorCisco, ciscoAVPair, []byte("psk-mode=ascii"))
		w.w.vendor(vendorCisco, ciscoAVPair, append([]byte("psk="), pass...))
	case VendorAruba:
		// Aruba MPSK (InstantOS 8.4+, with ClearPass as the model):
		// Aruba-MPSK-Passphrase, vendor 14823 type 44, salt-encrypted.
		if enc := salted(); enc != nil {
			w.w.vendor(vendorAruba, arubaMPSKPassphrase, enc)
		}
	case VendorRuckus:
		// Ruckus DPSK with an external RADIUS server: the PMK for the
		// SSID the station associates to (Called-Station-Id "BSSID:SSID").
		ssid := ssidOf(r.calledStation)
		if ssid == "" {
			s.log.Warn("ruckus dpsk: no SSID in Called-Station-Id, no PMK sent", "nas", nas.Name, "mac", dev.MAC)
			return
		}
		w.w.vendor(vendorRuckus, ruckusDPSK, wpaPMK(dev.Passphrase, ssid))
	default:
		// hostapd wpa_psk_radius / OpenWrt ppsk, FortiGate
		// radius-mac-mpsk-auth ("The RADIUS server returns a
		// Tunnel-Password for that user device or group",
		// https://docs.fortinet.com/document/fortigate/7.0.0/new-features/139640/wireless-client-mac-authentication-and-mpsk-returned-through-radius-7-0-2),
		// and the RFC 2868 form for the others: Tunnel-Password, tag 0,
		// salt-encrypted with the shared secret.
		if enc := salted(); enc != nil {
			w.w.attr(attrTunnelPassword, append([]byte{0}, enc...))
		}
	}
}

// ssidOf returns the SSID part of a Called-Station-Id "AA-BB-CC-DD-EE-FF:SSID".
func ssidOf(called []byte) string {
	if len(called) > 18 && called[17] == ':' {
		if _, ok := normalizeMAC(called[:17]); ok {
			return string(called[18:])
		}
	}
	return ""
}

// wpaPMK is the WPA2-Personal PMK of a passphrase for an SSID (IEEE
// 802.11-2020 J.4.1).
func wpaPMK(passphrase, ssid string) []byte {
	k, err := pbkdf2.Key(sha1.New, passphrase, []byte(ssid), 4096, 32)
	if err != nil {
		return nil
	}
	return k
}
