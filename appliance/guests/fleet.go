package guests

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/deskgate/deskgate/appliance/store"
)

// Fleet lets the boxes of a fleet act as one for guest codes
// (docs/fleet.md, "Guest codes and day passes"): every box derives the
// same code for a visitor's booking or a day pass from the fleet's key,
// one box delivers it, and device bindings and day-pass first logins are
// shared. The methods taking tx run inside the Manager's transaction;
// Nudge follows its commit. Nil (Config.Fleet) or a nil GuestCodeKey: a
// box on its own, with random codes.
type Fleet interface {
	// GuestCodeKey is the fleet's 32-byte key for guest codes; nil
	// outside a fleet.
	GuestCodeKey() []byte
	// ClaimGuestDelivery decides whether this box delivers the code of
	// seed (send); settled=false means no box has yet: ask again later.
	ClaimGuestDelivery(tx *store.Tx, seed, location string, created time.Time) (send, settled bool, err error)
	// GuestDevices returns the devices any box bound to the code of seed.
	GuestDevices(tx *store.Tx, seed string) ([]string, error)
	// AddGuestDevice binds device to the code of seed for the fleet.
	AddGuestDevice(tx *store.Tx, seed, device string) error
	// DayPassStart returns the earliest first login of a day-pass period.
	DayPassStart(tx *store.Tx, key string) (time.Time, bool, error)
	// RecordDayPassStart shares a first login of a day-pass period.
	RecordDayPassStart(tx *store.Tx, key string, at time.Time) error
	// Nudge says entries were committed.
	Nudge()
}

// hashFleet is a codeRecord.HashV: HMAC-SHA256 of the normalised code
// under a key derived from the fleet's (the same at every box).
const hashFleet = 2

// fleetKey returns the fleet's guest code key, nil outside a fleet.
func (m *Manager) fleetKey() []byte {
	if m.cfg.Fleet == nil {
		return nil
	}
	if k := m.cfg.Fleet.GuestCodeKey(); len(k) == 32 {
		return k
	}
	return nil
}

func subKey(key []byte, label string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(label))
	return mac.Sum(nil)
}

// fleetHasher hashes codes for storage under the fleet's key.
func fleetHasher(key []byte) codeHasher {
	return codeHasher{key: subKey(key, "deskgate guest code hash v1")}
}

// deriveCode is the code of seed (try attempt) under the fleet's key, in
// its normalised form: every box computes the same one.
func deriveCode(key []byte, seed string, attempt int) string {
	ck := subKey(key, "deskgate guest code v1")
	var out [CodeLen]byte
	n := 0
	limit := byte(256 - 256%len(Alphabet)) // rejection sampling: no modulo bias
	for block := uint32(0); n < CodeLen; block++ {
		mac := hmac.New(sha256.New, ck)
		mac.Write([]byte(seed))
		var ctr [8]byte
		binary.BigEndian.PutUint32(ctr[:4], uint32(attempt))
		binary.BigEndian.PutUint32(ctr[4:], block)
		mac.Write([]byte{0})
		mac.Write(ctr[:])
		for _, b := range mac.Sum(nil) {
			if b >= limit {
				continue
			}
			out[n] = Alphabet[int(b)%len(Alphabet)]
			if n++; n == CodeLen {
				break
			}
		}
	}
	return string(out[:])
}

// seedOf is what a code is derived from and known by in the fleet: its
// source, and for a day pass also its first pass (a later pass of the
// same member at the same location gets a new code).
func seedOf(rec *codeRecord) string {
	if rec.Kind == KindDayPass && len(rec.PassIDs) > 0 {
		return rec.Source + "/" + rec.PassIDs[0]
	}
	return rec.Source
}

// dayPassKey names the current period of a fleet day pass: it restarts
// when a new pass is bought after the last one was used up.
func dayPassKey(rec codeRecord) string {
	return rec.Seed + "/" + cmp.Or(rec.Period, first(rec.PassIDs))
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// newFleetRecord gives rec the code derived from its seed.
func (m *Manager) newFleetRecord(tx *store.Tx, rec *codeRecord, key []byte) error {
	seed := seedOf(rec)
	h := fleetHasher(key)
	for attempt := range 16 {
		code := deriveCode(key, seed, attempt)
		hash := h.hash(code)
		taken := false
		for _, k := range []string{hash, m.codes.hash(code), legacyHash(code)} {
			if _, err := getCode(tx, k); err == nil {
				taken = true
			} else if !notFound(err) {
				return err
			}
		}
		if taken {
			continue
		}
		sealed, err := m.seal.seal(code, hash)
		if err != nil {
			return err
		}
		rec.Hash, rec.HashV, rec.Sealed, rec.Seed = hash, hashFleet, sealed, seed
		return nil
	}
	return fmt.Errorf("no unique fleet code after 16 tries")
}

// claimDelivery asks the fleet whether this box delivers rec's code; it
// reports false when another box does or may (then rec is marked
// delivered when a box has claimed it, and asked again later if not).
func (m *Manager) claimDelivery(tx *store.Tx, fx *effects, rec *codeRecord) (bool, error) {
	if rec.Seed == "" || m.cfg.Fleet == nil {
		return true, nil
	}
	send, settled, err := m.cfg.Fleet.ClaimGuestDelivery(tx, rec.Seed, m.location(tx, rec.LocationID).Name, rec.CreatedAt)
	if err != nil {
		return false, fmt.Errorf("claim delivery of code %s: %w", rec.hint(), err)
	}
	fx.fleet = true
	if !send {
		rec.Delivered = settled
		if !settled {
			m.pendingClaims.Store(true)
		}
	}
	return send, nil
}

// fleetDayPass gives a fleet day pass the earliest first login any box
// knows of its period; it reports whether rec changed.
func (m *Manager) fleetDayPass(tx *store.Tx, rec *codeRecord) (bool, error) {
	if rec.Kind != KindDayPass || rec.Seed == "" || m.cfg.Fleet == nil || len(rec.PassIDs) == 0 {
		return false, nil
	}
	at, ok, err := m.cfg.Fleet.DayPassStart(tx, dayPassKey(*rec))
	if err != nil || !ok {
		return false, err
	}
	if !rec.FirstLogin.IsZero() && !at.Before(rec.FirstLogin) {
		return false, nil
	}
	if !rec.Until.IsZero() && rec.FirstLogin.IsZero() {
		return false, nil // FromPurchase: the end does not depend on a login
	}
	rec.FirstLogin, rec.Until = at, at.Add(rec.Granted)
	return true, nil
}

// syncFleet applies what the fleet knows to the local records: day passes
// first used at another box end when they end there.
func (m *Manager) syncFleet(tx *store.Tx, fx *effects, now time.Time) error {
	if m.fleetKey() == nil {
		return nil
	}
	var recs []codeRecord
	if err := forEach(tx, bucketCodes, func(_ string, r codeRecord) error {
		if r.Kind == KindDayPass && r.Seed != "" {
			recs = append(recs, r)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, rec := range recs {
		changed, err := m.fleetDayPass(tx, &rec)
		if err != nil || !changed {
			if err != nil {
				return err
			}
			continue
		}
		rec.ExpiredAudited = rec.ExpiredAudited && !now.Before(rec.Until)
		cause := fmt.Sprintf("first used at another box of the fleet; valid until %s", rec.Until.UTC().Format(time.RFC3339))
		if err := audit(tx, auditActor, "guest.daypass_started", rec.Member, "code "+rec.hint(), cause); err != nil {
			return err
		}
		if err := putCode(tx, rec); err != nil {
			return err
		}
		if err := m.resyncSessions(tx, fx, rec, false, cause, now); err != nil {
			return err
		}
	}
	return nil
}

// Refresh makes Run reconcile soon: the fleet applied entries that may
// concern guest codes.
func (m *Manager) Refresh() {
	select {
	case m.refresh <- struct{}{}:
	default:
	}
}
