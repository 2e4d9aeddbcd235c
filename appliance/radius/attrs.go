package radius

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
)

// attr is one reply attribute; vendor is 0 for standard attributes.
type attr struct {
	typ    byte
	vendor uint32
	val    []byte
}

func (a attr) encode(w *replyWriter) {
	if a.vendor != 0 {
		w.vendor(a.vendor, a.typ, a.val)
		return
	}
	w.attr(a.typ, a.val)
}

// Tunnel attribute values (RFC 2868, RFC 3580).
const (
	tunnelTypeVLAN     = 13
	tunnelMediumIEEE80 = 6
)

const (
	wisprMaxUp      = 7
	wisprMaxDown    = 8
	mikrotikRateLim = 8
	ciscoAVPair     = 1
)

// appendDecisionAttrs translates an allowed decision at one location into
// reply attributes for the NAS's vendor profile: one policy, spelled per
// vendor. Values are appended to arena, which the returned attrs alias.
func appendDecisionAttrs(attrs []attr, arena []byte, vendor string, subj Subject, la model.LocationAccess, location string, ip netip.Addr, interim time.Duration, now time.Time) ([]attr, []byte) {
	d := subj.Decision
	add := func(typ byte, vendor uint32, v []byte) {
		attrs = append(attrs, attr{typ: typ, vendor: vendor, val: v})
	}
	u32 := func(v uint32) []byte {
		start := len(arena)
		arena = binary.BigEndian.AppendUint32(arena, v)
		return arena[start:len(arena):len(arena)]
	}
	str := func(parts ...string) []byte {
		start := len(arena)
		for _, p := range parts {
			arena = append(arena, p...)
		}
		if len(arena)-start > 247 {
			arena = arena[:start+247]
		}
		return arena[start:len(arena):len(arena)]
	}
	if la.VLAN > 0 {
		// Tag 0 in the first octet, then the 24-bit value.
		add(attrTunnelType, 0, u32(tunnelTypeVLAN))
		add(attrTunnelMediumType, 0, u32(tunnelMediumIEEE80))
		add(attrTunnelPrivGroup, 0, str(strconv.Itoa(la.VLAN)))
	}
	if st := sessionTimeout(d, now); st > 0 {
		add(attrSessionTimeout, 0, u32(st))
	}
	if interim > 0 {
		add(attrAcctInterim, 0, u32(uint32(interim/time.Second)))
	}
	group := d.Group
	if group == "" {
		group = subj.Account.Group
	}
	if group != "" {
		add(attrFilterID, 0, str(group))
	}
	add(attrClass, 0, str(classToken(subj, location, now)))
	if ip.IsValid() && ip.Is4() {
		b := ip.As4()
		start := len(arena)
		arena = append(arena, b[:]...)
		add(attrFramedIPAddress, 0, arena[start:len(arena):len(arena)])
	}
	bw := d.Bandwidth
	if bw.DownKbps > 0 || bw.UpKbps > 0 {
		switch vendor {
		case VendorMikroTik:
			// rx-rate/tx-rate from the router's side: rx is the client's
			// upload, tx its download; 0 means unlimited.
			add(mikrotikRateLim, vendorMikroTik, str(kbps(bw.UpKbps), "/", kbps(bw.DownKbps)))
		case VendorCisco:
			// Named policy maps the operator defines on the controller
			// (deskgate-up-<rate>, deskgate-down-<rate>).
			if bw.UpKbps > 0 {
				add(ciscoAVPair, vendorCisco, str("ip:sub-qos-policy-in=deskgate-up-", kbps(bw.UpKbps)))
			}
			if bw.DownKbps > 0 {
				add(ciscoAVPair, vendorCisco, str("ip:sub-qos-policy-out=deskgate-down-", kbps(bw.DownKbps)))
			}
		default: // wispr, ubiquiti: UniFi reads the WISPr attributes
			if bw.DownKbps > 0 {
				add(wisprMaxDown, vendorWISPr, u32(uint32(min(int64(bw.DownKbps)*1000, 1<<32-1))))
			}
			if bw.UpKbps > 0 {
				add(wisprMaxUp, vendorWISPr, u32(uint32(min(int64(bw.UpKbps)*1000, 1<<32-1))))
			}
		}
	}
	return attrs, arena
}

func kbps(v int) string {
	if v <= 0 {
		return "0"
	}
	return strconv.Itoa(v) + "k"
}

// sessionTimeout is the session length in seconds: the plan's, cut to
// what is left of the validity; 0 means none.
func sessionTimeout(d model.Decision, now time.Time) uint32 {
	st := d.SessionTimeout
	if !d.ValidUntil.IsZero() {
		left := d.ValidUntil.Sub(now)
		if st <= 0 || left < st {
			st = left
		}
	}
	if st < time.Second {
		return 0
	}
	return uint32(min(st/time.Second, 1<<31-1))
}

// classToken ties accounting back to the decision: opaque to the NAS, it
// comes back in every Accounting-Request.
func classToken(subj Subject, location string, now time.Time) string {
	d := subj.Decision
	return "dg1;" + subj.Account.MemberID + ";" + d.MembershipID + ";" + d.PlanID + ";" + location + ";" + strconv.FormatInt(now.Unix(), 10)
}

// parseClass extracts the member and location from a class token.
func parseClass(b []byte) (member, location string, ok bool) {
	s := string(b)
	if !strings.HasPrefix(s, "dg1;") {
		return "", "", false
	}
	f := strings.Split(s, ";")
	if len(f) != 6 {
		return "", "", false
	}
	return f[1], f[4], true
}

// attrName and attrValue render an attribute the way radclient prints it,
// for Explain and the golden files.
func (a attr) name() string {
	switch a.vendor {
	case 0:
		switch a.typ {
		case attrTunnelType:
			return "Tunnel-Type"
		case attrTunnelMediumType:
			return "Tunnel-Medium-Type"
		case attrTunnelPrivGroup:
			return "Tunnel-Private-Group-Id"
		case attrSessionTimeout:
			return "Session-Timeout"
		case attrAcctInterim:
			return "Acct-Interim-Interval"
		case attrFilterID:
			return "Filter-Id"
		case attrClass:
			return "Class"
		case attrFramedIPAddress:
			return "Framed-IP-Address"
		case attrReplyMessage:
			return "Reply-Message"
		}
	case vendorWISPr:
		switch a.typ {
		case wisprMaxUp:
			return "WISPr-Bandwidth-Max-Up"
		case wisprMaxDown:
			return "WISPr-Bandwidth-Max-Down"
		}
	case vendorMikroTik:
		if a.typ == mikrotikRateLim {
			return "Mikrotik-Rate-Limit"
		}
	case vendorCisco:
		if a.typ == ciscoAVPair {
			return "Cisco-AVPair"
		}
	}
	return fmt.Sprintf("Attr-26.%d.%d", a.vendor, a.typ)
}

func (a attr) value() string {
	switch {
	case a.vendor == 0 && a.typ == attrTunnelType && len(a.val) == 4:
		if a.val[3] == tunnelTypeVLAN {
			return "VLAN"
		}
	case a.vendor == 0 && a.typ == attrTunnelMediumType && len(a.val) == 4:
		if a.val[3] == tunnelMediumIEEE80 {
			return "IEEE-802"
		}
	case a.vendor == 0 && a.typ == attrFramedIPAddress && len(a.val) == 4:
		return netip.AddrFrom4([4]byte(a.val)).String()
	}
	isInt := (a.vendor == 0 && (a.typ == attrSessionTimeout || a.typ == attrAcctInterim)) ||
		(a.vendor == vendorWISPr && (a.typ == wisprMaxUp || a.typ == wisprMaxDown))
	if isInt && len(a.val) == 4 {
		return strconv.FormatUint(uint64(binary.BigEndian.Uint32(a.val)), 10)
	}
	return strconv.Quote(string(a.val))
}
