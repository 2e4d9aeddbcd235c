package mirror

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/appliance/creds"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

// accountOutcome says what reconcileMember did, for the run log.
type accountOutcome int

const (
	acctNone accountOutcome = iota
	acctCreated
	acctUpdated
	acctDisabled
	acctEnabled
	acctDeleted
)

// reconcileMember brings member id's WiFi account in line with its current
// decision, inside tx (the same transaction as the entity change that
// caused it, so a crash leaves the old state or the new one). cause is the
// operator-readable reason recorded in the audit log.
func (s *Syncer) reconcileMember(tx *store.Tx, id, actor, cause string, now time.Time) (accountOutcome, error) {
	m, dec, err := s.res.DecideMember(tx, id, now)
	acct, aerr := tx.AccountOfMember(id)
	hasAcct := aerr == nil
	if aerr != nil && !errors.Is(aerr, store.ErrNotFound) {
		return acctNone, fmt.Errorf("account of member %s: %w", id, aerr)
	}
	if errors.Is(err, store.ErrNotFound) {
		if !hasAcct {
			return acctNone, nil
		}
		if err := tx.DeleteAccount(acct.Username); err != nil {
			return acctNone, fmt.Errorf("delete account %s: %w", acct.Username, err)
		}
		return acctDeleted, s.audit(tx, actor, "account.deleted", id, acct.Username, cause+" → member removed, account "+acct.Username+" deleted", now)
	}
	if err != nil {
		return acctNone, err
	}
	s.schedule(id, dec, now)
	if !dec.Allowed {
		if !hasAcct {
			return acctNone, nil
		}
		if acct.Disabled && acct.DisabledReason == dec.Deny {
			return acctNone, nil
		}
		wasDisabled := acct.Disabled
		acct.Disabled, acct.DisabledReason, acct.UpdatedAt = true, dec.Deny, now
		if err := tx.PutAccount(acct); err != nil {
			return acctNone, fmt.Errorf("disable account %s: %w", acct.Username, err)
		}
		if wasDisabled {
			return acctNone, nil
		}
		return acctDisabled, s.audit(tx, actor, "account.disabled", id, acct.Username,
			fmt.Sprintf("%s → account %s disabled (%s)", cause, acct.Username, firstReason(dec)), now)
	}
	if !hasAcct {
		return s.createAccount(tx, m, dec, actor, cause, now)
	}
	changed := false
	outcome := acctNone
	var notes []string
	if acct.Disabled {
		acct.Disabled, acct.DisabledReason = false, ""
		changed, outcome = true, acctEnabled
		notes = append(notes, "re-enabled")
	}
	if acct.Group != dec.Group {
		notes = append(notes, fmt.Sprintf("group %q → %q", acct.Group, dec.Group))
		acct.Group = dec.Group
		changed = true
		if outcome == acctNone {
			outcome = acctUpdated
		}
	}
	if s.cfg().Users.PasswordPolicy == model.PasswordProperty {
		if pw := m.Properties[s.cfg().Users.PasswordProperty]; pw != "" {
			fp := creds.Fingerprint(s.fpKey, pw)
			if string(fp) != string(acct.PropertyDigest) {
				acct.NTHash, acct.PropertyDigest, acct.PasswordSource = creds.NTHash(pw), fp, model.PasswordProperty
				changed = true
				notes = append(notes, "password changed in OfficeRnD")
				if outcome == acctNone {
					outcome = acctUpdated
				}
			}
		}
	}
	if !changed {
		return acctNone, nil
	}
	acct.UpdatedAt = now
	if err := tx.PutAccount(acct); err != nil {
		return acctNone, fmt.Errorf("update account %s: %w", acct.Username, err)
	}
	action := "account.updated"
	if outcome == acctEnabled {
		action = "account.enabled"
	}
	return outcome, s.audit(tx, actor, action, id, acct.Username, fmt.Sprintf("%s → account %s %s", cause, acct.Username, strings.Join(notes, ", ")), now)
}

func (s *Syncer) createAccount(tx *store.Tx, m model.Member, dec model.Decision, actor, cause string, now time.Time) (accountOutcome, error) {
	cfg := s.cfg()
	base := creds.Username(cfg.Users.UsernameFormat, m)
	if base == "" {
		// The format needs something the member lacks (no email): fall back
		// to the member id, which always exists.
		base = creds.Username(config.UsernameMemberID, m)
	}
	username := base
	for n := 1; ; n++ {
		other, err := tx.GetAccount(username)
		if errors.Is(err, store.ErrNotFound) || (err == nil && other.MemberID == m.ID) {
			break
		}
		if err != nil {
			return acctNone, fmt.Errorf("check username %s: %w", username, err)
		}
		if n > 20 {
			return acctNone, fmt.Errorf("no free username for member %s from %q", m.ID, base)
		}
		username = creds.WithSuffix(base, m.ID, n)
	}
	acct := model.Account{
		Username: username, MemberID: m.ID, Group: dec.Group,
		PasswordSource: cfg.Users.PasswordPolicy, CreatedAt: now, UpdatedAt: now,
	}
	email := model.Email{
		Kind: "welcome", To: m.Email, Member: m.ID, Username: username, CreatedAt: now,
		Data:   s.welcomeData(m, dec, username),
		Secret: map[string]string{},
	}
	switch cfg.Users.PasswordPolicy {
	case model.PasswordProperty:
		pw := m.Properties[cfg.Users.PasswordProperty]
		if pw != "" {
			acct.NTHash = creds.NTHash(pw)
			acct.PropertyDigest = creds.Fingerprint(s.fpKey, pw)
		}
		email.Data["password_hint"] = "the WiFi password stored in your member profile (" + cfg.Users.PasswordProperty + ")"
	case model.PasswordMember:
		tok, hash, err := creds.NewToken()
		if err != nil {
			return acctNone, err
		}
		acct.OnboardTokenHash, acct.OnboardExpires = hash, now.Add(cfg.Users.OnboardingLinkTTL)
		email.Secret["onboard_url"] = s.onboardURL(tok)
		email.Data["expires"] = acct.OnboardExpires.Format("2 Jan 2006")
	default:
		pw, err := s.newPassword(m.ID, cfg.Users.PasswordLength)
		if err != nil {
			return acctNone, err
		}
		acct.NTHash = creds.NTHash(pw)
		email.Secret["password"] = pw
	}
	if err := tx.PutAccount(acct); err != nil {
		return acctNone, fmt.Errorf("create account %s: %w", username, err)
	}
	send := welcomeOn(cfg) && m.Email != ""
	if send && s.opts.Fleet != nil {
		loc := ""
		if len(dec.Locations) > 0 {
			loc = dec.Locations[0].Name
		}
		var err error
		if send, err = s.opts.Fleet.ClaimWelcome(tx, m.ID, loc); err != nil {
			return acctNone, fmt.Errorf("claim welcome email for %s: %w", username, err)
		}
	}
	if send {
		if _, err := tx.EnqueueEmail(email); err != nil {
			return acctNone, fmt.Errorf("queue welcome email for %s: %w", username, err)
		}
		s.mailQueued.Store(true)
	}
	return acctCreated, s.audit(tx, actor, "account.created", m.ID, username,
		fmt.Sprintf("%s → account %s created (%s, group %s)", cause, username, dec.PlanName, dec.Group), now)
}

// newPassword generates a password, or derives it from the fleet secret
// when the box is in a fleet, so every box holds the same one.
func (s *Syncer) newPassword(memberID string, n int) (string, error) {
	if s.opts.Fleet != nil {
		pw, ok, err := s.opts.Fleet.DerivePassword(memberID, n)
		if err != nil || ok {
			return pw, err
		}
	}
	return creds.GeneratePassword(n)
}

func (s *Syncer) welcomeData(m model.Member, dec model.Decision, username string) map[string]string {
	d := map[string]string{"name": m.Name, "username": username, "space_name": s.opts.SpaceName}
	if len(dec.Locations) > 0 {
		d["location"] = dec.Locations[0].Name
		d["network"] = dec.Locations[0].Network
	}
	if s.opts.ServerName != "" {
		d["server_name"] = s.opts.ServerName
	}
	if s.opts.ProfileURL != nil {
		if u := s.opts.ProfileURL(username); u != "" {
			d["profile_url"] = u
		}
	}
	return d
}

func (s *Syncer) onboardURL(token string) string {
	base := s.cfg().Users.OnboardingURL
	if base == "" {
		base = s.cfg().Members.BaseURL() + "/onboard"
	}
	return base + "?t=" + token
}

func welcomeOn(cfg *config.Config) bool {
	return cfg.Users.WelcomeEmail == nil || *cfg.Users.WelcomeEmail
}

func (s *Syncer) audit(tx *store.Tx, actor, action, member, subject, cause string, now time.Time) error {
	if err := tx.Audit(model.AuditEntry{Time: now, Actor: actor, Action: action, Member: member, Subject: subject, Cause: cause}); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

func firstReason(d model.Decision) string {
	if len(d.Reasons) > 0 {
		return d.Reasons[0]
	}
	return d.Deny
}
