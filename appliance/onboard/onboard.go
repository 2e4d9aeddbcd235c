package onboard

import (
	"crypto/subtle"
	"embed"
	"errors"
	"html/template"
	"net/http"
	"time"

	"github.com/deskgate/deskgate/appliance/creds"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
)

//go:embed web/onboard.html
var webFS embed.FS

var onboardTmpl = template.Must(template.ParseFS(webFS, "web/onboard.html"))

type onboardPage struct {
	Title, Error, Token, Name, Username, Network string
	Done                                         bool
}

var errLinkInvalid = errors.New("this link is not valid any more: it was already used or it expired. Ask the front desk to send a new one")

// handleOnboard serves the single-use page where a member sets their WiFi
// password (password policy "member"). The link's token is the only
// credential; it is stored hashed, expires, and is cleared on use. The
// password is hashed (NT hash) at once and never stored or emailed.
func (p *Pages) handleOnboard(w http.ResponseWriter, r *http.Request) {
	// Security headers: memberHeaders (Pages.Server).
	page := onboardPage{Title: "Set your WiFi password"}
	render := func(code int) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(code)
		_ = onboardTmpl.Execute(w, page)
	}
	if err := r.ParseForm(); err != nil {
		page.Error = "The form could not be read."
		render(http.StatusBadRequest)
		return
	}
	token := r.Form.Get("t")
	now := p.now()
	var acct model.Account
	var member model.Member
	err := p.store.View(func(tx *store.Tx) error {
		var err error
		acct, err = tx.AccountByOnboardToken(creds.HashToken(token))
		if err != nil {
			return err
		}
		member, _ = tx.GetMember(acct.MemberID)
		return nil
	})
	if token == "" || err != nil || now.After(acct.OnboardExpires) {
		page.Error = errLinkInvalid.Error()
		render(http.StatusNotFound)
		return
	}
	page.Token, page.Name, page.Username = token, member.Name, acct.Username
	if r.Method == http.MethodGet {
		render(http.StatusOK)
		return
	}
	pw, pw2 := r.PostForm.Get("password"), r.PostForm.Get("password2")
	if subtle.ConstantTimeCompare([]byte(pw), []byte(pw2)) != 1 {
		page.Error = "The two passwords differ."
		render(http.StatusUnprocessableEntity)
		return
	}
	if err := creds.CheckStrength(pw, acct.Username); err != nil {
		page.Error = "Please choose another password: " + err.Error() + "."
		render(http.StatusUnprocessableEntity)
		return
	}
	err = p.store.Update(func(tx *store.Tx) error {
		cur, err := tx.AccountByOnboardToken(creds.HashToken(token))
		if err != nil {
			return errLinkInvalid // used concurrently
		}
		cur.NTHash = creds.NTHash(pw)
		cur.PasswordSource = model.PasswordMember
		cur.OnboardTokenHash, cur.OnboardExpires, cur.UpdatedAt = nil, time.Time{}, now
		if err := tx.PutAccount(cur); err != nil {
			return err
		}
		if err := p.app.RecordPassword(tx, cur.MemberID, cur.NTHash); err != nil {
			return err
		}
		return tx.Audit(model.AuditEntry{Time: now, Actor: "onboarding", Action: "account.password_set",
			Member: cur.MemberID, Subject: cur.Username, Cause: "member set their WiFi password through the onboarding link"})
	})
	if err != nil {
		page.Error = errLinkInvalid.Error()
		if !errors.Is(err, errLinkInvalid) {
			p.log.Error("onboarding: set password", "user", acct.Username, "err", err)
			page.Error = "Something went wrong; please try again."
		}
		page.Token = ""
		render(http.StatusConflict)
		return
	}
	page.Done, page.Token = true, ""
	page.Network = p.app.Network(acct.Username)
	render(http.StatusOK)
}
