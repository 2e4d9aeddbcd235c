package guests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/deskgate/deskgate/appliance/store"
)

const portalActor = "portal"

func newSessionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// LoginCode logs client c in with a guest or day-pass code at locationID.
// It returns ErrBadCode, ErrWrongLocation, ErrNotYetValid, ErrExpired or
// ErrDeviceLimit when it refuses. The first login of a day pass starts its
// time (FromFirstLogin). A client already logged in with another code
// switches to this one. locationID must equal the code's location (an
// empty locationID matches no code).
func (m *Manager) LoginCode(ctx context.Context, code string, c Client, locationID string) (Session, error) {
	norm, ok := NormalizeCode(code)
	if !ok {
		return Session{}, ErrBadCode
	}
	key, err := clientKey(c)
	if err != nil {
		return Session{}, fmt.Errorf("login: %w", err)
	}
	var sess sessionRecord
	err = m.update(ctx, func(tx *store.Tx, fx *effects) error {
		now := m.now()
		rec, err := m.lookupCode(tx, norm)
		if notFound(err) {
			return ErrBadCode
		}
		if err != nil {
			return err
		}
		startedElsewhere, err := m.fleetDayPass(tx, &rec)
		if err != nil {
			return err
		}
		switch {
		case rec.LocationID != locationID:
			return ErrWrongLocation
		case now.Before(rec.From):
			return ErrNotYetValid
		case !rec.Until.IsZero() && !now.Before(rec.Until):
			return ErrExpired
		case rec.Until.IsZero() && !rec.ActivateBy.IsZero() && !now.Before(rec.ActivateBy):
			return ErrExpired
		}
		subject := "code " + rec.hint()
		dev := device(c)
		bound := rec.Devices
		if rec.Seed != "" && m.cfg.Fleet != nil {
			// The code's devices at every box of the fleet count.
			remote, err := m.cfg.Fleet.GuestDevices(tx, rec.Seed)
			if err != nil {
				return err
			}
			bound = slices.Clone(bound)
			for _, d := range remote {
				if !slices.Contains(bound, d) {
					bound = append(bound, d)
				}
			}
		}
		if !slices.Contains(bound, dev) {
			if len(bound) >= rec.deviceLimit(m.cfg.DevicesPerCode) {
				m.log.Info("guest login refused: device limit", "code", rec.hint(), "devices", len(bound))
				return ErrDeviceLimit
			}
			bound = append(bound, dev)
			if err := audit(tx, portalActor, "guest.device_added", rec.Member, subject,
				fmt.Sprintf("device %d of %d (%s)", len(bound), rec.deviceLimit(m.cfg.DevicesPerCode), dev)); err != nil {
				return err
			}
		}
		if !slices.Contains(rec.Devices, dev) {
			rec.Devices = append(rec.Devices, dev)
			if rec.Seed != "" && m.cfg.Fleet != nil {
				if err := m.cfg.Fleet.AddGuestDevice(tx, rec.Seed, dev); err != nil {
					return err
				}
				fx.fleet = true
			}
		}
		if startedElsewhere {
			if err := audit(tx, portalActor, "guest.daypass_started", rec.Member, subject,
				fmt.Sprintf("first used at another box of the fleet; valid until %s", rec.Until.UTC().Format(time.RFC3339))); err != nil {
				return err
			}
		}
		if rec.Until.IsZero() {
			rec.FirstLogin, rec.Until = now, now.Add(rec.Granted)
			if err := audit(tx, portalActor, "guest.daypass_started", rec.Member, subject,
				fmt.Sprintf("first login; valid %s until %s", fmtHours(rec.Granted), rec.Until.UTC().Format(time.RFC3339))); err != nil {
				return err
			}
			if rec.Seed != "" && m.cfg.Fleet != nil {
				if err := m.cfg.Fleet.RecordDayPassStart(tx, dayPassKey(rec), now); err != nil {
					return err
				}
				fx.fleet = true
			}
		}
		if err := putCode(tx, rec); err != nil {
			return err
		}
		sess = sessionRecord{
			Key: key, ID: newSessionID(), Kind: rec.Kind, CodeHash: rec.Hash, Name: rec.Name,
			LocationID: rec.LocationID, Started: now, Until: rec.Until,
		}
		if rec.Kind == KindDayPass {
			sess.MemberID = rec.Member
		}
		var old sessionRecord
		if err := tx.GetKV(bucketSessions, key, &old); err == nil {
			sess.ID, sess.TermsVersion = old.ID, old.TermsVersion
		}
		m.fillClient(&sess, c)
		if err := tx.PutKV(bucketSessions, key, sess); err != nil {
			return err
		}
		fx.allow = append(fx.allow, sess)
		m.log.Info("guest login", "code", rec.hint(), "kind", rec.Kind, "client", key)
		return audit(tx, portalActor, "guest.login", rec.Member, subject+" client "+key, cause(rec))
	})
	if err != nil {
		return Session{}, m.loginErr(ctx, key, err)
	}
	return sess.session(), nil
}

// loginErr passes refusals through and undoes a session whose Allow failed.
func (m *Manager) loginErr(ctx context.Context, key string, err error) error {
	if isRefusal(err) {
		return err
	}
	var ne *networkError
	if errors.As(err, &ne) {
		if derr := m.st.Update(func(tx *store.Tx) error { return tx.DeleteKV(bucketSessions, key) }); derr != nil {
			err = errors.Join(err, derr)
		}
	}
	return fmt.Errorf("login: %w", err)
}

func isRefusal(err error) bool {
	for _, e := range []error{ErrBadCode, ErrNotYetValid, ErrExpired, ErrWrongLocation, ErrDeviceLimit, ErrBadCredentials, ErrNoWiFi} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func cause(rec codeRecord) string {
	if rec.Kind == KindGuest {
		return fmt.Sprintf("booking %s visitor %s", short(rec.BookingID), short(rec.VisitorID))
	}
	return fmt.Sprintf("pass %s", short(last(rec.PassIDs)))
}

func (m *Manager) fillClient(s *sessionRecord, c Client) {
	if len(c.MAC) > 0 {
		s.MAC = c.MAC.String()
	}
	if c.IP.IsValid() {
		s.IP = c.IP.String()
	}
}

// LoginMember logs a member in on the guest network with their email and
// WiFi password, checked by Members.
func (m *Manager) LoginMember(ctx context.Context, email, password string, c Client, locationID string) (Session, error) {
	key, err := clientKey(c)
	if err != nil {
		return Session{}, fmt.Errorf("login: %w", err)
	}
	if m.members == nil {
		return Session{}, ErrBadCredentials
	}
	memberID, name, until, err := m.members.CheckMember(ctx, email, password, locationID)
	if err != nil {
		if isRefusal(err) {
			return Session{}, err
		}
		return Session{}, fmt.Errorf("login member: %w", err)
	}
	var sess sessionRecord
	err = m.update(ctx, func(tx *store.Tx, fx *effects) error {
		now := m.now()
		end := now.Add(m.cfg.MemberSession)
		if !until.IsZero() && until.Before(end) {
			end = until
		}
		if !now.Before(end) {
			return ErrNoWiFi
		}
		sess = sessionRecord{Key: key, ID: newSessionID(), Kind: KindMember, Name: name, MemberID: memberID,
			LocationID: locationID, Started: now, Until: end}
		m.fillClient(&sess, c)
		if err := tx.PutKV(bucketSessions, key, sess); err != nil {
			return err
		}
		fx.allow = append(fx.allow, sess)
		return audit(tx, portalActor, "guest.member_login", memberID, "client "+key, "member login on the guest network")
	})
	if err != nil {
		return Session{}, m.loginErr(ctx, key, err)
	}
	return sess.session(), nil
}

// SessionFor returns c's live session, if any. A client is known by its
// MAC (by its IP only when the MAC is unknown).
func (m *Manager) SessionFor(ctx context.Context, c Client) (Session, bool, error) {
	key, err := clientKey(c)
	if err != nil {
		return Session{}, false, nil
	}
	var s sessionRecord
	err = m.st.View(func(tx *store.Tx) error { return tx.GetKV(bucketSessions, key, &s) })
	if notFound(err) {
		return Session{}, false, nil
	}
	if err != nil {
		return Session{}, false, fmt.Errorf("session for %s: %w", key, err)
	}
	if !m.now().Before(s.Until) {
		return Session{}, false, nil
	}
	return s.session(), true, nil
}

// Logout ends c's session and closes the network for it.
func (m *Manager) Logout(ctx context.Context, c Client) error {
	key, err := clientKey(c)
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	err = m.update(ctx, func(tx *store.Tx, fx *effects) error {
		var s sessionRecord
		if err := tx.GetKV(bucketSessions, key, &s); notFound(err) {
			fx.revoke = append(fx.revoke, c)
			return nil
		} else if err != nil {
			return err
		}
		return m.endSession(tx, fx, s, "guest.logout", "logout by the client")
	})
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	return nil
}

// RecordTerms records that c accepted the terms of use termsVersion at
// locationID (audited, and kept per client).
func (m *Manager) RecordTerms(ctx context.Context, c Client, locationID, termsVersion string) error {
	key, err := clientKey(c)
	if err != nil {
		return fmt.Errorf("record terms: %w", err)
	}
	err = m.update(ctx, func(tx *store.Tx, _ *effects) error {
		now := m.now()
		if err := tx.PutKV(bucketTerms, key, termsRecord{Version: termsVersion, LocationID: locationID, At: now}); err != nil {
			return err
		}
		var s sessionRecord
		member := ""
		if err := tx.GetKV(bucketSessions, key, &s); err == nil {
			s.TermsVersion, member = termsVersion, s.MemberID
			if err := tx.PutKV(bucketSessions, key, s); err != nil {
				return err
			}
		}
		return audit(tx, portalActor, "guest.terms_accepted", member, "client "+key,
			fmt.Sprintf("terms %q at location %s", termsVersion, short(locationID)))
	})
	if err != nil {
		return fmt.Errorf("record terms: %w", err)
	}
	return nil
}

// Restore opens the network again for every live session, as after a
// daemon restart. Run calls it; call it yourself only without Run.
func (m *Manager) Restore(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var live []sessionRecord
	err := m.st.View(func(tx *store.Tx) error {
		return forEach(tx, bucketSessions, func(_ string, s sessionRecord) error {
			if now.Before(s.Until) {
				live = append(live, s)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("restore guest sessions: %w", err)
	}
	if err := m.apply(ctx, effects{allow: live}); err != nil {
		return fmt.Errorf("restore guest sessions: %w", err)
	}
	m.log.Info("guest sessions restored", "sessions", len(live))
	return nil
}
