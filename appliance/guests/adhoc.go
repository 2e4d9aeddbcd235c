package guests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/store"
)

// Ad-hoc codes are created by an operator for a walk-in (the console's
// Guests page): no booking or pass behind them, so Reconcile leaves them
// alone (their source starts with adHocPrefix); they end at From+Duration,
// can be revoked, and are cleaned up at local midnight like the others.
const adHocPrefix = "a/"

// Ad-hoc code limits.
const (
	MinAdHocDuration = 15 * time.Minute
	MaxAdHocDuration = 7 * 24 * time.Hour
	MaxAdHocDevices  = 10
)

// AdHoc asks for a code for a walk-in.
type AdHoc struct {
	Name       string // shown in the console and the email; may be empty
	Email      string // the code is emailed here when set
	LocationID string
	Duration   time.Duration
	Devices    int    // distinct devices the code admits (1..MaxAdHocDevices)
	Actor      string // who created it, for the audit trail
}

// AdHocError is a field of an AdHoc request that is not acceptable.
type AdHocError struct {
	Field, Msg string
}

func (e *AdHocError) Error() string { return "ad-hoc code: " + e.Field + ": " + e.Msg }

// Check validates a; the error is an *AdHocError naming the field.
func (a AdHoc) Check() error {
	switch {
	case strings.TrimSpace(a.LocationID) == "":
		return &AdHocError{"location", "choose a location"}
	case a.Duration < MinAdHocDuration || a.Duration > MaxAdHocDuration:
		return &AdHocError{"duration", fmt.Sprintf("between %v and %v", MinAdHocDuration, MaxAdHocDuration)}
	case a.Devices < 1 || a.Devices > MaxAdHocDevices:
		return &AdHocError{"devices", fmt.Sprintf("between 1 and %d", MaxAdHocDevices)}
	case len(a.Name) > 100 || strings.ContainsAny(a.Name, "\r\n\x00"):
		return &AdHocError{"name", "at most 100 characters on one line"}
	}
	if a.Email != "" {
		if addr, err := mail.ParseAddress(a.Email); err != nil || addr.Address != a.Email {
			return &AdHocError{"email", "not an email address"}
		}
	}
	return nil
}

// CreateAdHoc creates a code valid at a.LocationID from now for
// a.Duration, for up to a.Devices devices, emails it when a.Email is set,
// and returns it (the only time the plaintext leaves the manager besides
// the email) with its description.
func (m *Manager) CreateAdHoc(ctx context.Context, a AdHoc) (string, CodeInfo, error) {
	if err := a.Check(); err != nil {
		return "", CodeInfo{}, err
	}
	var id [8]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand)
	var code string
	var info CodeInfo
	err := m.update(ctx, func(tx *store.Tx, fx *effects) error {
		if _, err := tx.GetLocation(a.LocationID); err != nil {
			if notFound(err) {
				return &AdHocError{"location", "no such location"}
			}
			return err
		}
		now := m.now()
		rec := codeRecord{
			Kind: KindGuest, Source: adHocPrefix + hex.EncodeToString(id[:]), Name: a.Name, Email: a.Email,
			LocationID: a.LocationID, From: now, Until: now.Add(a.Duration), MaxDevices: a.Devices, CreatedAt: now,
		}
		if err := m.newRecord(tx, &rec); err != nil {
			return err
		}
		var err error
		if code, err = m.seal.open(rec.Sealed, rec.Hash); err != nil {
			return err
		}
		cause := fmt.Sprintf("ad-hoc code by %s for %q, %v, %d device(s)", a.Actor, a.Name, a.Duration, a.Devices)
		if err := m.save(tx, fx, &rec, "guest.code_created", cause, true); err != nil {
			return err
		}
		info = CodeInfo{Hint: rec.hint(), Kind: rec.Kind, Name: rec.Name, LocationID: rec.LocationID, From: rec.From, Until: rec.Until, AdHoc: true}
		return nil
	})
	if err != nil {
		return "", CodeInfo{}, fmt.Errorf("create ad-hoc code: %w", err)
	}
	m.wake()
	return FormatCode(code), info, nil
}

// ErrNoSuchCode: no live code has the hint given to RevokeCode.
var ErrNoSuchCode = errors.New("no live code with this hint")

// RevokeCode ends the live code whose hint (CodeInfo.Hint) is hint and
// the sessions using it, as an operator does for a code that leaked. A
// booking's code comes back at the next reconcile only if the booking still
// asks for it; revoke the booking in OfficeRnD for good.
func (m *Manager) RevokeCode(ctx context.Context, hint, actor string) error {
	if len(hint) != 8 || strings.Trim(hint, "0123456789abcdef") != "" {
		return fmt.Errorf("revoke code %q: %w", hint, ErrNoSuchCode)
	}
	err := m.update(ctx, func(tx *store.Tx, fx *effects) error {
		var found []codeRecord
		if err := forEach(tx, bucketCodes, func(_ string, r codeRecord) error {
			if r.hint() == hint {
				found = append(found, r)
			}
			return nil
		}); err != nil {
			return err
		}
		if len(found) != 1 {
			return ErrNoSuchCode
		}
		return m.revoke(tx, fx, found[0], "revoked by "+actor)
	})
	if err != nil {
		return fmt.Errorf("revoke code %s: %w", hint, err)
	}
	return nil
}
