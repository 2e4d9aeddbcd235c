package console

import (
	"encoding/csv"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
)

type loginData struct{ Next, Name string }

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		if _, ok := s.sess.get(ck.Value, s.b.Now()); ok {
			http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
			return
		}
	}
	s.renderLogin(w, r, c, http.StatusOK, loginData{Next: safeNext(r.URL.Query().Get("next"))}, "")
}

// renderLogin shows the login form with a fresh double-submit token.
func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, c *reqCtx, code int, d loginData, msg string) {
	tok := randomToken()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: tok, Path: "/console/login", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	p := s.newPage(r, c, "login", "login_title")
	p.CSRF, p.Error, p.Data = tok, msg, d
	s.render(w, code, "login", p)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	d := loginData{Next: safeNext(r.PostForm.Get("next")), Name: r.PostForm.Get("name")}
	t := catalogue[c.lang]
	ck, err := r.Cookie(loginCookie)
	if err != nil || !equalToken(ck.Value, r.PostForm.Get("csrf")) {
		s.renderLogin(w, r, c, http.StatusForbidden, d, t["csrf"])
		return
	}
	name, pw := d.Name, r.PostForm.Get("password")
	if len(name) > 64 || len(pw) > maxPasswordLen {
		s.renderLogin(w, r, c, http.StatusUnauthorized, d, t["bad_login"])
		return
	}
	now, src := s.b.Now(), sourceIP(r)
	if until, locked := s.lock.lockedUntil(name, src, now); locked {
		_ = s.b.Audit("console", "console.login_refused", "", name, "locked out after wrong passwords; from "+src)
		s.renderLogin(w, r, c, http.StatusTooManyRequests, d, fmt.Sprintf(t["locked"], fmtTime(c.lang, until)))
		return
	}
	op, err := s.b.Operator(name)
	hash := op.Hash
	if err != nil {
		hash = dummyHash
	}
	if !VerifyPassword(hash, pw) || err != nil {
		s.lock.fail(name, src, now)
		_ = s.b.Audit("console", "console.login_failed", "", name, "wrong username or password from "+src)
		s.renderLogin(w, r, c, http.StatusUnauthorized, d, t["bad_login"])
		return
	}
	s.lock.success(name)
	x := s.sess.create(op, now)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: x.id, Path: Prefix, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/console/login", MaxAge: -1})
	_ = s.b.Audit("console:"+op.Name, "console.login", "", op.Name, "logged in from "+src+" as "+op.Role)
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	s.sess.end(c.sess.id)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	_ = s.b.Audit(c.actor(), "console.logout", "", c.op.Name, "logged out")
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

type dashData struct {
	D                        Dashboard
	AcceptsNow, RejectsNow   int
	AcceptChart, OnlineChart template.HTML
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	d, err := s.b.Dashboard(r.Context())
	if err != nil {
		s.internal(w, r, c, "dashboard", err)
		return
	}
	if d.Version == "" {
		d.Version = s.opts.Version
	}
	t := catalogue[c.lang]
	dd := dashData{D: d,
		AcceptChart: chart(t["radius_logins"], false, []string{"a", "r"}, d.Accepts, d.Rejects),
		OnlineChart: chart(t["sessions"], true, []string{"o"}, d.Online)}
	if n := len(d.Accepts); n > 0 {
		dd.AcceptsNow = d.Accepts[n-1]
	}
	if n := len(d.Rejects); n > 0 {
		dd.RejectsNow = d.Rejects[n-1]
	}
	p := s.newPage(r, c, "dashboard", "dashboard")
	p.Data = dd
	s.render(w, http.StatusOK, "dashboard", p)
}

type membersData struct {
	Query string
	Rows  []MemberRow
}

func (s *Server) members(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	q := r.URL.Query().Get("q")
	if len(q) > 200 {
		q = q[:200]
	}
	var rows []MemberRow
	if q != "" {
		var err error
		if rows, err = s.b.SearchMembers(r.Context(), q, 100); err != nil {
			s.internal(w, r, c, "member search", err)
			return
		}
	}
	p := s.newPage(r, c, "members", "members")
	p.Data = membersData{Query: q, Rows: rows}
	s.render(w, http.StatusOK, "members", p)
}

type auditView struct {
	Rows []model.AuditEntry
	T    map[string]string
	Lang string
}

type memberData struct {
	M     MemberPage
	Audit auditView
}

func (s *Server) member(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	s.renderMember(w, r, c, r.PathValue("id"), http.StatusOK, "")
}

func (s *Server) renderMember(w http.ResponseWriter, r *http.Request, c *reqCtx, id string, code int, msg string) {
	m, err := s.b.Member(r.Context(), id)
	if errors.Is(err, ErrNotFound) {
		s.fail(w, r, c, http.StatusNotFound, "not_found", "no member with id "+id)
		return
	}
	if err != nil {
		s.internal(w, r, c, "member", err)
		return
	}
	p := s.newPage(r, c, "members", "members")
	p.Title, p.Error = m.Name, msg
	p.Data = memberData{M: m, Audit: auditView{Rows: m.Audit, T: p.T, Lang: p.Lang}}
	s.render(w, code, "member", p)
}

// memberAction runs an action on the member in the path and shows the
// member page again: with done on success, with the error otherwise.
func (s *Server) memberAction(w http.ResponseWriter, r *http.Request, c *reqCtx, action, subject, done string, fn func(id string) error) {
	id := r.PathValue("id")
	if err := s.act(c, action, id, subject, func() error { return fn(id) }); err != nil {
		code := http.StatusBadGateway
		var fe *FieldError
		if errors.As(err, &fe) || errors.Is(err, ErrNotFound) {
			code = http.StatusBadRequest
		}
		s.renderMember(w, r, c, id, code, err.Error())
		return
	}
	http.Redirect(w, r, "/console/members/"+url.PathEscape(id)+"?done="+done, http.StatusSeeOther)
}

func (s *Server) disconnect(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	key := r.PostForm.Get("session")
	s.memberAction(w, r, c, "disconnect", "session "+key, "done_disconnect", func(id string) error {
		if key == "" || len(key) > 300 {
			return &FieldError{"session", "no session given"}
		}
		return s.b.Disconnect(r.Context(), c.actor(), id, key)
	})
}

func (s *Server) welcome(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	s.memberAction(w, r, c, "welcome_resent", "", "done_welcome", func(id string) error {
		return s.b.ResendWelcome(r.Context(), c.actor(), id, false)
	})
}

func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	s.memberAction(w, r, c, "password_reset", "", "done_reset", func(id string) error {
		return s.b.ResendWelcome(r.Context(), c.actor(), id, true)
	})
}

func (s *Server) revokeCert(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	serial := r.PostForm.Get("serial")
	s.memberAction(w, r, c, "cert_revoked", "certificate "+serial, "done_cert", func(id string) error {
		if serial == "" || len(serial) > 80 {
			return &FieldError{"serial", "no certificate given"}
		}
		return s.b.RevokeCert(r.Context(), c.actor(), id, serial)
	})
}

type guestsData struct {
	P    GuestsPage
	Form codeForm
}

func (s *Server) guests(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	gp, err := s.b.Guests(r.Context())
	if err != nil {
		s.internal(w, r, c, "guests", err)
		return
	}
	p := s.newPage(r, c, "guests", "guests")
	f := codeForm{Duration: "2h", Devices: "2"}
	if len(gp.Locations) > 0 {
		f.Location = gp.Locations[0].ID
	}
	p.Data = guestsData{P: gp, Form: f}
	s.render(w, http.StatusOK, "guests", p)
}

func (s *Server) createCode(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	gp, err := s.b.Guests(r.Context())
	if err != nil {
		s.internal(w, r, c, "guests", err)
		return
	}
	f, req, errs := parseCodeForm(r.PostForm, gp.Locations)
	p := s.newPage(r, c, "guests", "guests")
	if len(errs) == 0 {
		var nc NewCode
		err = s.act(c, "guest_code_created", "", "ad-hoc code for "+strconv.Quote(req.Name), func() error {
			var err error
			nc, err = s.b.CreateCode(r.Context(), c.actor(), req)
			return err
		})
		var fe *FieldError
		switch {
		case err == nil:
			p.Title = p.T["guest_code"]
			p.Data = nc
			s.render(w, http.StatusOK, "code", p)
			return
		case errors.As(err, &fe):
			errs[fe.Field] = fe.Field
		default:
			p.Error = err.Error()
		}
	}
	p.fieldErrs(errs)
	p.Data = guestsData{P: gp, Form: f}
	s.render(w, http.StatusBadRequest, "guests", p)
}

func (s *Server) revokeCode(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	hint := r.PathValue("hint")
	err := s.act(c, "guest_code_revoked", "", "code "+hint, func() error { return s.b.RevokeCode(r.Context(), c.actor(), hint) })
	if err != nil {
		gp, gerr := s.b.Guests(r.Context())
		if gerr != nil {
			s.internal(w, r, c, "guests", gerr)
			return
		}
		p := s.newPage(r, c, "guests", "guests")
		p.Error = err.Error()
		p.Data = guestsData{P: gp, Form: codeForm{Duration: "2h", Devices: "2"}}
		s.render(w, http.StatusBadRequest, "guests", p)
		return
	}
	http.Redirect(w, r, "/console/guests?done=done_revoke_code", http.StatusSeeOther)
}

func (s *Server) network(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	n, err := s.b.Network(r.Context())
	if err != nil {
		s.internal(w, r, c, "network", err)
		return
	}
	p := s.newPage(r, c, "network", "network")
	p.Data = n
	s.render(w, http.StatusOK, "network", p)
}

func (s *Server) portalPreview(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	loc, lang := r.URL.Query().Get("location"), r.URL.Query().Get("lang")
	n, err := s.b.Network(r.Context())
	if err != nil {
		s.internal(w, r, c, "network", err)
		return
	}
	known := false
	for _, l := range n.Location {
		known = known || l.ID == loc
	}
	if !known || !isLang(lang) || !n.Portal {
		s.fail(w, r, c, http.StatusBadRequest, "bad_request", "unknown location or language")
		return
	}
	body, err := s.b.PortalPreview(r.Context(), loc, lang)
	if err != nil {
		s.internal(w, r, c, "portal preview", err)
		return
	}
	// The portal's page, inert: no scripts, no forms that could submit.
	w.Header().Set("Content-Security-Policy", "sandbox; default-src 'none'; style-src * 'unsafe-inline'; img-src * data:")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(body)
}

type auditData struct {
	Form  auditForm
	Query string
	Audit auditView
}

func (s *Server) auditQuery(w http.ResponseWriter, r *http.Request, c *reqCtx) (auditForm, []model.AuditEntry, map[string]string, bool) {
	f, af, errs := parseAuditForm(r.URL.Query(), time.Local)
	if len(errs) > 0 {
		return f, nil, errs, true
	}
	af.Limit = 200
	if r.URL.Path == "/console/audit.csv" {
		af.Limit = 100000
	}
	rows, err := s.b.AuditTrail(r.Context(), af)
	if errors.Is(err, ErrNotFound) {
		return f, nil, map[string]string{"member": "member"}, true
	}
	if err != nil {
		s.internal(w, r, c, "audit", err)
		return f, nil, nil, false
	}
	return f, rows, nil, true
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	f, rows, errs, ok := s.auditQuery(w, r, c)
	if !ok {
		return
	}
	p := s.newPage(r, c, "audit", "audit")
	code := http.StatusOK
	if len(errs) > 0 {
		code = http.StatusBadRequest
		p.fieldErrs(errs)
	}
	q := url.Values{"member": {f.Member}, "kind": {f.Kind}, "from": {f.From}, "to": {f.To}}
	p.Data = auditData{Form: f, Query: q.Encode(), Audit: auditView{Rows: rows, T: p.T, Lang: p.Lang}}
	s.render(w, code, "audit", p)
}

func (s *Server) auditCSV(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	_, rows, errs, ok := s.auditQuery(w, r, c)
	if !ok {
		return
	}
	if len(errs) > 0 {
		var msgs []string
		for f, k := range errs {
			msgs = append(msgs, f+": "+fieldMsgs[c.lang][k])
		}
		http.Error(w, fmt.Sprint(msgs), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="deskgate-audit.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"seq", "time", "actor", "action", "member", "subject", "cause"})
	for _, e := range rows {
		_ = cw.Write([]string{strconv.FormatUint(e.Seq, 10), e.Time.UTC().Format(time.RFC3339), csvSafe(e.Actor), csvSafe(e.Action),
			csvSafe(e.Member), csvSafe(e.Subject), csvSafe(e.Cause)})
	}
	cw.Flush()
	_ = s.b.Audit(c.actor(), "console.audit_exported", "", "", fmt.Sprintf("%d entries exported as CSV", len(rows)))
}

// csvSafe keeps a spreadsheet from reading a cell as a formula.
func csvSafe(v string) string {
	if v != "" && (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@' || v[0] == '\t' || v[0] == '\r') {
		return "'" + v
	}
	return v
}
