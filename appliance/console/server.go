package console

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is mounted on the admin listener.
const Prefix = "/console/"

const (
	sessionCookie = "dg_console"
	loginCookie   = "dg_console_login" // the login form's CSRF token (double submit)
)

// Options configure a Server; zero values mean the defaults.
type Options struct {
	Backend Backend
	Log     *slog.Logger
	// IdleTimeout ends a session unused this long (default 30m);
	// MaxSession ends any session this long after login (default 12h).
	IdleTimeout, MaxSession time.Duration
	// LockoutWindow, MaxFailsPerUser, MaxFailsPerSource: after this many
	// wrong passwords within the window, for one account or from one
	// address, logins are refused until the window has passed (defaults
	// 15m, 5, 20).
	LockoutWindow                      time.Duration
	MaxFailsPerUser, MaxFailsPerSource int
	// Version is shown on the dashboard.
	Version string
}

// Server is the operator console: an http.Handler for Prefix.
type Server struct {
	b     Backend
	log   *slog.Logger
	opts  Options
	pages map[string]*template.Template
	sess  sessions
	lock  lockout
	mux   *http.ServeMux
	// Routes is the route table (tests walk it).
	Routes []Route
}

// Route is one console route.
type Route struct {
	Method, Path string
	// Role is the least role that may use it; "" means no session needed
	// (login and static assets only).
	Role    string
	handler func(w http.ResponseWriter, r *http.Request, c *reqCtx)
}

// New builds the console.
func New(o Options) (*Server, error) {
	if o.Backend == nil {
		return nil, errors.New("console: no backend")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	o.IdleTimeout = cmpOr(o.IdleTimeout, 30*time.Minute)
	o.MaxSession = cmpOr(o.MaxSession, 12*time.Hour)
	o.LockoutWindow = cmpOr(o.LockoutWindow, 15*time.Minute)
	o.MaxFailsPerUser = cmpOr(o.MaxFailsPerUser, 5)
	o.MaxFailsPerSource = cmpOr(o.MaxFailsPerSource, 20)
	s := &Server{b: o.Backend, log: o.Log, opts: o, pages: map[string]*template.Template{},
		sess: sessions{byID: map[string]*session{}, idle: o.IdleTimeout, max: o.MaxSession},
		lock: lockout{window: o.LockoutWindow, perUser: o.MaxFailsPerUser, perSrc: o.MaxFailsPerSource, fails: map[string][]time.Time{}},
		mux:  http.NewServeMux()}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	s.Routes = []Route{
		{"GET", "/console/login", "", s.loginPage},
		{"POST", "/console/login", "", s.login},
		{"GET", "/console/static/", "", nil},
		{"GET", "/console/{$}", RoleOperator, func(w http.ResponseWriter, r *http.Request, c *reqCtx) {
			http.Redirect(w, r, "/console/dashboard", http.StatusSeeOther)
		}},
		{"POST", "/console/logout", RoleOperator, s.logout},
		{"GET", "/console/dashboard", RoleOperator, s.dashboard},
		{"GET", "/console/members", RoleOperator, s.members},
		{"GET", "/console/members/{id}", RoleOperator, s.member},
		{"POST", "/console/members/{id}/disconnect", RoleOperator, s.disconnect},
		{"POST", "/console/members/{id}/welcome", RoleAdmin, s.welcome},
		{"POST", "/console/members/{id}/reset-password", RoleAdmin, s.resetPassword},
		{"POST", "/console/members/{id}/revoke-cert", RoleAdmin, s.revokeCert},
		{"GET", "/console/guests", RoleOperator, s.guests},
		{"POST", "/console/guests/codes", RoleOperator, s.createCode},
		{"POST", "/console/guests/codes/{hint}/revoke", RoleOperator, s.revokeCode},
		{"GET", "/console/network", RoleOperator, s.network},
		{"GET", "/console/network/portal", RoleOperator, s.portalPreview},
		{"GET", "/console/audit", RoleOperator, s.audit},
		{"GET", "/console/audit.csv", RoleOperator, s.auditCSV},
	}
	static, _ := fs.Sub(staticFS, "static")
	for _, rt := range s.Routes {
		if rt.handler == nil {
			s.mux.Handle(rt.Method+" "+rt.Path, http.StripPrefix("/console/static/", staticHandler(http.FileServerFS(static))))
			continue
		}
		s.mux.Handle(rt.Method+" "+rt.Path, s.wrap(rt))
	}
	return s, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func staticHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// ServeHTTP serves the console with its security headers.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	s.mux.ServeHTTP(w, r)
}

// reqCtx is what a handler knows about the request.
type reqCtx struct {
	lang string
	op   *Operator
	sess *session
}

func (c *reqCtx) actor() string { return "console:" + c.op.Name }

// wrap authenticates the request for rt: a live session of an operator
// whose role suffices, and for POST a same-origin request with the
// session's CSRF token.
func (s *Server) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &reqCtx{lang: pickLang(r)}
		if l := r.URL.Query().Get("lang"); isLang(l) {
			http.SetCookie(w, &http.Cookie{Name: langCookie, Value: l, Path: Prefix, MaxAge: 365 * 24 * 3600,
				HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
		}
		if r.Method == http.MethodPost {
			if !sameOrigin(r) {
				s.fail(w, r, c, http.StatusForbidden, "forbidden", "cross-origin request refused")
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if err := r.ParseForm(); err != nil {
				s.fail(w, r, c, http.StatusBadRequest, "bad_request", "unreadable form")
				return
			}
		}
		if rt.Role == "" {
			rt.handler(w, r, c)
			return
		}
		now := s.b.Now()
		ck, err := r.Cookie(sessionCookie)
		var sess *session
		if err == nil {
			sess, _ = s.sess.get(ck.Value, now)
		}
		var op Operator
		if sess != nil {
			op, err = s.b.Operator(sess.operator)
			if err != nil || !op.Changed.Equal(sess.changed) {
				// Removed, or password or role changed since login.
				s.sess.endOperator(sess.operator)
				sess = nil
			}
		}
		if sess == nil {
			if r.Method == http.MethodGet {
				next := r.URL.Path
				if r.URL.RawQuery != "" {
					next += "?" + r.URL.RawQuery
				}
				http.Redirect(w, r, "/console/login?next="+url.QueryEscape(next), http.StatusSeeOther)
				return
			}
			s.fail(w, r, c, http.StatusUnauthorized, "expired", "")
			return
		}
		c.op, c.sess = &op, sess
		if r.Method == http.MethodPost && !equalToken(r.PostForm.Get("csrf"), sess.csrf) {
			s.fail(w, r, c, http.StatusForbidden, "csrf", "")
			return
		}
		if rt.Role == RoleAdmin && op.Role != RoleAdmin {
			s.fail(w, r, c, http.StatusForbidden, "forbidden", "forbidden_text")
			return
		}
		rt.handler(w, r, c)
	})
}

// sameOrigin refuses what a browser marks as cross-site, and an Origin
// that is not this very host (the admin listener checks Host itself).
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origins := r.Header.Values("Origin")
	if len(origins) == 0 {
		return true
	}
	if len(origins) > 1 {
		return false
	}
	u, err := url.Parse(origins[0])
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") {
		return false // includes "null"
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return u.Scheme == scheme && strings.EqualFold(u.Host, r.Host)
}

// page is what every template gets.
type page struct {
	Lang, OtherLang, SwitchURL string
	T                          map[string]string
	Title, Page                string
	Op                         *Operator
	RoleName                   string
	IsAdmin                    bool
	CSRF                       string
	Flash, Error               string
	Errs                       map[string]string // field -> message
	Data                       any
}

func (s *Server) newPage(r *http.Request, c *reqCtx, name, titleKey string) *page {
	t := catalogue[c.lang]
	other := "de"
	if c.lang == "de" {
		other = "en"
	}
	q := r.URL.Query()
	q.Set("lang", other)
	p := &page{Lang: c.lang, OtherLang: other, T: t, Title: t[titleKey], Page: name, Op: c.op, Errs: map[string]string{},
		SwitchURL: r.URL.Path + "?" + q.Encode()}
	if r.Method != http.MethodGet {
		p.SwitchURL = "/console/dashboard?lang=" + other
	}
	if c.op != nil {
		p.RoleName = t["role_"+c.op.Role]
		p.IsAdmin = c.op.Role == RoleAdmin
	}
	if c.sess != nil {
		p.CSRF = c.sess.csrf
	}
	if f := q.Get("done"); f != "" && strings.HasPrefix(f, "done_") {
		p.Flash = t[f]
	}
	return p
}

// fieldErrs turns parser error keys into messages in the page's language.
func (p *page) fieldErrs(errs map[string]string) {
	for f, k := range errs {
		p.Errs[f] = fieldMsgs[p.Lang][k]
	}
}

func (s *Server) render(w http.ResponseWriter, code int, name string, p *page) {
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "console: render "+name+": internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// fail renders an error page: titleKey and textKey are catalogue keys (or
// textKey is a literal when not one).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, c *reqCtx, code int, titleKey, textKey string) {
	p := s.newPage(r, c, "error", titleKey)
	text := p.T[textKey]
	if text == "" {
		text = textKey
	}
	p.Data = text
	s.render(w, code, "error", p)
}

// internal logs err and renders a 500 page without its details.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, c *reqCtx, what string, err error) {
	s.log.Error("console: "+what, "err", err)
	s.fail(w, r, c, http.StatusInternalServerError, "error_title", what+": "+err.Error())
}

// act runs an action and audits it with its outcome.
func (s *Server) act(c *reqCtx, action, member, subject string, fn func() error) error {
	err := fn()
	cause := "by " + c.op.Name + " in the console"
	if err != nil {
		cause += ": failed: " + err.Error()
	}
	if aerr := s.b.Audit(c.actor(), "console."+action, member, subject, cause); aerr != nil {
		s.log.Error("console: audit", "action", action, "err", aerr)
	}
	return err
}

func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) parseTemplates() error {
	funcs := template.FuncMap{
		"fmtTime":  fmtTime,
		"fmtDur":   fmtDur,
		"denyText": func(d string) string { return strings.ReplaceAll(d, "_", " ") },
		"word":     word,
		"kindText": func(t map[string]string, kind string, adhoc bool) string {
			if adhoc {
				return t["kind_adhoc"]
			}
			return t["kind_"+kind]
		},
		"field": func(p *page, name, typ, value, hintKey string) map[string]string {
			return map[string]string{"Name": name, "Type": typ, "Value": value, "Label": p.T[name], "Hint": p.T[hintKey], "Err": p.Errs[name]}
		},
	}
	for _, name := range []string{"login", "dashboard", "members", "member", "guests", "code", "network", "audit", "error"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/"+name+".html")
		if err != nil {
			return fmt.Errorf("console: parse %s: %w", name, err)
		}
		s.pages[name] = t
	}
	return nil
}

// word translates a state or phase word of an update ("in progress",
// "failed"); one the catalogue lacks is shown as it is.
func word(t map[string]string, w string) string {
	if s := t["st_"+strings.ReplaceAll(w, " ", "_")]; s != "" {
		return s
	}
	return w
}

func fmtTime(lang string, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	if lang == "de" {
		return t.Format("02.01.2006 15:04 MST")
	}
	return t.Format("2006-01-02 15:04 MST")
}

func fmtDur(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	return d.Round(time.Second).String()
}
