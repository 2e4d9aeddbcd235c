package mirror

import (
	"errors"
	"fmt"

	"github.com/deskgate/deskgate/appliance/creds"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

// ErrNoWelcome: the member has no WiFi access, no account or no email, so
// there is nothing to send.
var ErrNoWelcome = errors.New("nothing to send: the member has no WiFi access, account or email address")

// ErrPasswordElsewhere: with password_policy property the password lives
// in the member's OfficeRnD profile; deskgate cannot reset it.
var ErrPasswordElsewhere = errors.New("the WiFi password is the member's OfficeRnD profile property: change it there")

// passwordRecorder is the fleet's side of a password the box sets
// (appliance/peer).
type passwordRecorder interface {
	RecordPassword(tx *store.Tx, memberID string, ntHash []byte) error
}

// ResendWelcome queues member's welcome email again, as an operator asks
// from the console. With reset, the member's WiFi password is replaced
// first: a new generated password goes into the email (password_policy
// generate), or the old password stops working and the email carries a new
// onboarding link (password_policy member). Without reset, a generated
// password is not repeated (only its NT hash is kept); a member who never
// set a password gets a fresh onboarding link. One transaction with its
// audit entry; actor is who asked.
func (s *Syncer) ResendWelcome(memberID, actor string, reset bool) error {
	cfg := s.cfg()
	now := s.now()
	err := s.st.Update(func(tx *store.Tx) error {
		m, dec, err := s.res.DecideMember(tx, memberID, now)
		if err != nil {
			return err
		}
		acct, err := tx.AccountOfMember(memberID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && (!dec.Allowed || acct.Disabled || m.Email == "")) {
			return ErrNoWelcome
		}
		if err != nil {
			return err
		}
		email := model.Email{
			Kind: "welcome", To: m.Email, Member: m.ID, Username: acct.Username, CreatedAt: now,
			Data: s.welcomeData(m, dec, acct.Username), Secret: map[string]string{},
		}
		what := "welcome email sent again"
		switch acct.PasswordSource {
		case model.PasswordProperty:
			if reset {
				return ErrPasswordElsewhere
			}
			email.Data["password_hint"] = "the WiFi password stored in your member profile (" + cfg.Users.PasswordProperty + ")"
		case model.PasswordMember:
			if reset || len(acct.NTHash) == 0 {
				tok, hash, err := creds.NewToken()
				if err != nil {
					return err
				}
				if reset {
					acct.NTHash = nil
					what = "password reset: old password no longer works, new onboarding link emailed"
				}
				acct.OnboardTokenHash, acct.OnboardExpires = hash, now.Add(cfg.Users.OnboardingLinkTTL)
				email.Secret["onboard_url"] = s.onboardURL(tok)
				email.Data["expires"] = acct.OnboardExpires.Format("2 Jan 2006")
			}
		default:
			if reset {
				pw, err := creds.GeneratePassword(cfg.Users.PasswordLength)
				if err != nil {
					return err
				}
				acct.NTHash = creds.NTHash(pw)
				email.Secret["password"] = pw
				what = "password reset: new password emailed"
				// In a fleet the other boxes take the new password too
				// (as a member-chosen one): no longer the derived one.
				if rec, ok := s.opts.Fleet.(passwordRecorder); ok {
					if err := rec.RecordPassword(tx, m.ID, acct.NTHash); err != nil {
						return err
					}
				}
			}
		}
		acct.UpdatedAt = now
		if err := tx.PutAccount(acct); err != nil {
			return fmt.Errorf("update account %s: %w", acct.Username, err)
		}
		if _, err := tx.EnqueueEmail(email); err != nil {
			return fmt.Errorf("queue welcome email for %s: %w", acct.Username, err)
		}
		action := "welcome.resent"
		if reset {
			action = "account.password_reset"
		}
		return s.audit(tx, actor, action, m.ID, acct.Username, what+" (by "+actor+")", now)
	})
	if err != nil {
		return fmt.Errorf("resend welcome to %s: %w", memberID, err)
	}
	if s.opts.KickMail != nil {
		s.opts.KickMail()
	}
	return nil
}
