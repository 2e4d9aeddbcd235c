package mirror

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/deskgate/deskgate/appliance/creds"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

// welcomeTaker is the fleet's side of a welcome takeover (appliance/peer).
type welcomeTaker interface {
	TakeOverWelcome(tx *store.Tx, memberID, location string) (bool, error)
}

var errNoTakeover = errors.New("no takeover")

// TakeOverWelcome queues member's welcome email on this box when the
// fleet says its owner box did not (docs/fleet.md): the password is the
// one derived from the fleet secret (or a fresh onboarding link), and the
// fleet's mark is written in the same transaction, so it is sent once.
// It reports whether an email was queued.
func (s *Syncer) TakeOverWelcome(memberID string) (bool, error) {
	tk, ok := s.opts.Fleet.(welcomeTaker)
	if !ok {
		return false, nil
	}
	cfg := s.cfg()
	now := s.now()
	err := s.st.Update(func(tx *store.Tx) error {
		m, dec, err := s.res.DecideMember(tx, memberID, now)
		if errors.Is(err, store.ErrNotFound) || (err == nil && (!dec.Allowed || m.Email == "" || !welcomeOn(cfg))) {
			return errNoTakeover
		}
		if err != nil {
			return err
		}
		acct, err := tx.AccountOfMember(memberID)
		if err != nil {
			return err
		}
		email := model.Email{
			Kind: "welcome", To: m.Email, Member: m.ID, Username: acct.Username, CreatedAt: now,
			Data: s.welcomeData(m, dec, acct.Username), Secret: map[string]string{},
		}
		switch acct.PasswordSource {
		case model.PasswordGenerated:
			pw, ok, err := s.opts.Fleet.DerivePassword(m.ID, cfg.Users.PasswordLength)
			if err != nil {
				return err
			}
			if !ok || !bytes.Equal(creds.NTHash(pw), acct.NTHash) {
				return errNoTakeover // not the fleet's password: not ours to send
			}
			email.Secret["password"] = pw
		case model.PasswordMember:
			if len(acct.NTHash) > 0 {
				return errNoTakeover // the member already chose one, so got the link
			}
			tok, hash, err := creds.NewToken()
			if err != nil {
				return err
			}
			acct.OnboardTokenHash, acct.OnboardExpires, acct.UpdatedAt = hash, now.Add(cfg.Users.OnboardingLinkTTL), now
			if err := tx.PutAccount(acct); err != nil {
				return fmt.Errorf("new onboarding link for %s: %w", acct.Username, err)
			}
			email.Secret["onboard_url"] = s.onboardURL(tok)
			email.Data["expires"] = acct.OnboardExpires.Format("2 Jan 2006")
		case model.PasswordProperty:
			email.Data["password_hint"] = "the WiFi password stored in your member profile (" + cfg.Users.PasswordProperty + ")"
		}
		loc := ""
		if len(dec.Locations) > 0 {
			loc = dec.Locations[0].Name
		}
		claimed, err := tk.TakeOverWelcome(tx, memberID, loc)
		if err != nil || !claimed {
			if err == nil {
				err = errNoTakeover
			}
			return err
		}
		if _, err := tx.EnqueueEmail(email); err != nil {
			return fmt.Errorf("queue welcome email for %s: %w", acct.Username, err)
		}
		return s.audit(tx, "fleet", "welcome.takeover", m.ID, acct.Username, "the owner box did not send the welcome email → sent by this box", now)
	})
	if errors.Is(err, errNoTakeover) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("take over welcome of %s: %w", memberID, err)
	}
	if s.opts.KickMail != nil {
		s.opts.KickMail()
	}
	return true, nil
}
