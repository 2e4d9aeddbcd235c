package peer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/store"
)

// Guest codes and day passes across the fleet (docs/fleet.md, "Guest
// codes"): every box derives the same code for a visitor's booking or a
// day pass from the fleet secret (nothing about a code replicates but
// these registers, keyed by the code's seed: "b/<booking>/<visitor>" or
// "p/<member>/<location>/<first pass>"; never the code).
const (
	KindGuestMail   = "guestmail" // LWW register per code: the box that delivers it
	KindGuestDevice = "guestdev"  // grow-only set: "<seed>/<device>" bound to a code
	KindDayPass     = "daypass"   // minimum register per pass period: its first login anywhere
)

// GuestMailValue is a KindGuestMail register.
type GuestMailValue struct {
	Box string `json:"box"`
}

// GuestDeviceValue is a KindGuestDevice set element.
type GuestDeviceValue struct {
	Box string `json:"box"`
}

// DayPassValue is a KindDayPass register: the first login of a pass
// period at box At.
type DayPassValue struct {
	At  time.Time `json:"at"`
	Box string    `json:"box"`
}

func init() {
	for _, k := range []string{KindGuestMail, KindGuestDevice, KindDayPass} {
		knownKinds[k] = true
	}
}

// checkExtValue decodes a value of the kinds of certs.go and guests.go
// strictly (checkValue's cases for them).
func checkExtValue(kind string, dec *json.Decoder) error {
	switch kind {
	case KindIssuer, KindCert, KindCertRevoked:
		return checkCertValue(kind, dec)
	case KindGuestMail, KindGuestDevice:
		var v GuestMailValue
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if CheckBoxID(v.Box) != nil {
			return errors.New("bad box id")
		}
	case KindDayPass:
		var v DayPassValue
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if CheckBoxID(v.Box) != nil || v.At.IsZero() {
			return errors.New("day pass start without a box or a time")
		}
	default:
		return fmt.Errorf("unknown kind %q", kind)
	}
	return nil
}

// mergeWins reports whether entry e replaces the register cur. Sets keep
// their earliest element (by HLC, then origin), so every box holds the
// same one whatever the arrival order; a day-pass start keeps the
// earliest first login (ties by HLC); everything else is LWW.
func mergeWins(e, cur Entry) bool {
	switch e.Kind {
	case KindCertRevoked, KindGuestDevice, KindSent:
		return wins(cur, e) // the first element or claim stays
	case KindDayPass:
		var a, b DayPassValue
		if json.Unmarshal(e.Value, &a) == nil && json.Unmarshal(cur.Value, &b) == nil && !a.At.Equal(b.At) {
			return a.At.Before(b.At)
		}
		return wins(cur, e)
	}
	return wins(e, cur)
}

// GuestCodeKey is the key guest codes are derived and hashed under in a
// fleet (from the fleet secret, so every box computes the same code);
// nil outside a fleet.
func (n *Node) GuestCodeKey() []byte {
	k, _ := n.current()
	if k == nil {
		return nil
	}
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte("deskgate guest codes v1"))
	return m.Sum(nil)
}

func checkSeed(seed string) error {
	if seed == "" || len(seed) > 160 {
		return fmt.Errorf("guest code seed of %d bytes, want 1..160", len(seed))
	}
	return nil
}

// ClaimGuestDelivery decides, inside tx, whether this box delivers the
// code of seed (email and SMS): outside a fleet always; when a box has
// claimed it, only that box (settled); otherwise the owner (the lowest
// box id serving location, else the lowest live box) claims it, and
// after TakeoverAfter from created the lowest live box other than an
// owner that is not linked takes it over. send=false, settled=false means
// ask again later. A claim originates the replicated mark in tx.
func (n *Node) ClaimGuestDelivery(tx *store.Tx, seed, location string, created time.Time) (send, settled bool, err error) {
	k, rep := n.current()
	if k == nil {
		return true, true, nil
	}
	if err := checkSeed(seed); err != nil {
		return false, false, err
	}
	self := k.id.BoxID
	if e, ok, err := register(tx, KindGuestMail, seed); err != nil || ok {
		if err != nil {
			return false, false, err
		}
		var v GuestMailValue
		if err := json.Unmarshal(e.Value, &v); err != nil {
			return false, false, fmt.Errorf("decode guest mail mark %s: %w", seed, err)
		}
		return v.Box == self, true, nil
	}
	all, _, err := boxes(tx)
	if err != nil {
		return false, false, err
	}
	owner := ""
	for id, b := range all {
		if location != "" && slices.Contains(b.Locations, location) && (owner == "" || id < owner) {
			owner = id
		}
	}
	live := append(n.livePeers(), self)
	takeover := false
	switch {
	case owner == self:
	case owner == "" && slices.Min(live) == self:
	case owner == "" || slices.Contains(live, owner):
		return false, false, nil
	default:
		live = slices.DeleteFunc(live, func(id string) bool { return id == owner })
		if slices.Min(live) != self || n.now().Sub(created) < n.opts.TakeoverAfter {
			return false, false, nil
		}
		takeover = true
	}
	if _, err := rep.originate(tx, KindGuestMail, seed, GuestMailValue{Box: self}); err != nil {
		return false, false, err
	}
	if takeover {
		n.log.Info("fleet: taking over a guest code delivery", "owner", owner, "location", location)
	}
	return true, true, nil
}

// GuestDevices returns the devices any box bound to the code of seed.
func (n *Node) GuestDevices(tx *store.Tx, seed string) ([]string, error) {
	if k, _ := n.current(); k == nil {
		return nil, nil
	}
	var out []string
	prefix := regKey(KindGuestDevice, seed+"/")
	err := tx.ForEachKV(bucketReg, prefix, func(key string, _ []byte) error {
		out = append(out, strings.TrimPrefix(key, prefix))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fleet: devices of a guest code: %w", err)
	}
	return out, nil
}

// AddGuestDevice binds device to the code of seed for the fleet, in tx.
func (n *Node) AddGuestDevice(tx *store.Tx, seed, device string) error {
	k, rep := n.current()
	if k == nil {
		return nil
	}
	if err := checkSeed(seed); err != nil {
		return err
	}
	key := seed + "/" + device
	if _, ok, err := register(tx, KindGuestDevice, key); err != nil || ok {
		return err
	}
	if _, err := rep.originate(tx, KindGuestDevice, key, GuestDeviceValue{Box: k.id.BoxID}); err != nil {
		return fmt.Errorf("fleet: bind a device to a guest code: %w", err)
	}
	return nil
}

// DayPassStart returns the earliest first login the fleet knows of the
// day-pass period key.
func (n *Node) DayPassStart(tx *store.Tx, key string) (time.Time, bool, error) {
	if k, _ := n.current(); k == nil {
		return time.Time{}, false, nil
	}
	e, ok, err := register(tx, KindDayPass, key)
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	var v DayPassValue
	if err := json.Unmarshal(e.Value, &v); err != nil {
		return time.Time{}, false, fmt.Errorf("decode day pass start %s: %w", key, err)
	}
	return v.At, true, nil
}

// RecordDayPassStart originates, in tx, a first login of the day-pass
// period key at at (the earliest one wins everywhere).
func (n *Node) RecordDayPassStart(tx *store.Tx, key string, at time.Time) error {
	k, rep := n.current()
	if k == nil {
		return nil
	}
	if err := checkSeed(key); err != nil {
		return err
	}
	if _, err := rep.originate(tx, KindDayPass, key, DayPassValue{At: at.UTC(), Box: k.id.BoxID}); err != nil {
		return fmt.Errorf("fleet: record a day pass start: %w", err)
	}
	return nil
}

// Nudge tells the links that entries were committed (after a transaction
// that originated some through the methods taking a tx).
func (n *Node) Nudge() { n.nudgeAll() }

// notifyApplied tells Options.OnApplied which kinds of entries arrived.
func (n *Node) notifyApplied(es []Entry) {
	if n.opts.OnApplied == nil || len(es) == 0 {
		return
	}
	kinds := map[string]bool{}
	for _, e := range es {
		kinds[e.Kind] = true
	}
	n.opts.OnApplied(kinds)
}
