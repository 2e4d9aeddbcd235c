package portal

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

const apiPath = "/captive-portal/api"

// probe is one OS's captive-network check: before login any probe is
// redirected to the portal, after login it gets body (or 204).
type probe struct {
	os     string
	status int
	ctype  string
	body   string
}

const appleSuccess = "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"

// firefoxCanonical is what detectportal.firefox.com/canonical.html serves.
const firefoxCanonical = `<meta http-equiv="refresh" content="0;url=https://support.mozilla.org/kb/captive-portal"/>`

var probes = map[string]probe{
	"/hotspot-detect.html":       {"apple", http.StatusOK, "text/html", appleSuccess},
	"/library/test/success.html": {"apple", http.StatusOK, "text/html", appleSuccess},
	"/generate_204":              {"android", http.StatusNoContent, "", ""},
	"/gen_204":                   {"android", http.StatusNoContent, "", ""},
	"/connecttest.txt":           {"windows", http.StatusOK, "text/plain", "Microsoft Connect Test"},
	"/ncsi.txt":                  {"windows", http.StatusOK, "text/plain", "Microsoft NCSI"},
	"/success.txt":               {"firefox", http.StatusOK, "text/plain", "success\n"},
	"/canonical.html":            {"firefox", http.StatusOK, "text/html", firefoxCanonical},
	"/redirect":                  {"windows", 0, "", ""}, // where Windows opens its browser: always the portal
	"/check_network_status.txt":  {"gnome", http.StatusOK, "text/plain", "NetworkManager is online\n"},
	"/nm-check.txt":              {"arch", http.StatusOK, "text/plain", "NetworkManager is online\n"},
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	s.mux = mux
	mux.HandleFunc("GET /{$}", s.handleIndex)
	mux.HandleFunc("GET /status", s.handleStatus)
	mux.HandleFunc("POST /login/code", s.handleLoginCode)
	mux.HandleFunc("POST /login/member", s.handleLoginMember)
	mux.HandleFunc("POST /logout", s.handleLogout)
	mux.HandleFunc("GET /brand/{file}", s.handleBrandCSS)
	mux.Handle("GET /static/", s.static)
	mux.HandleFunc("GET /login/", s.redirectHome)
	mux.HandleFunc("GET /logout", s.redirectHome)
	mux.HandleFunc("/", s.handleNotFound)

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		if ok, wait := s.limiter.allow(remoteIP(r)); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int((wait+time.Second-1)/time.Second))))
			http.Error(w, s.tr(s.lang(nil, r), "err_rate"), http.StatusTooManyRequests)
			return
		}
		if p, ok := probes[r.URL.Path]; ok && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			s.handleProbe(w, r, p)
			return
		}
		if r.URL.Path == apiPath {
			s.handleAPI(w, r)
			return
		}
		// Anything else for a foreign host came through the DNAT: send the
		// browser to the portal's own name.
		if s.portalHost != "" && !s.ownHost(r.Host) {
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, s.publicURL+"/", http.StatusFound)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Handle mounts another page on the portal, e.g. member onboarding
// ("GET /onboard"), so that it is reachable from the guest network and gets
// the portal's rate limit, security headers and host redirect. Call it
// before serving; like http.ServeMux.Handle it panics on a pattern that
// conflicts with the portal's own routes.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

func (s *Server) ownHost(hostport string) bool {
	h := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		h = hh
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	return h == s.portalHost || (s.apiHost != "" && h == s.apiHost)
}

func remoteIP(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// session returns the client's live session (ok false when none or over).
func (s *Server) session(ctx context.Context, c Client) (Session, bool, error) {
	sess, ok, err := s.backend.SessionFor(ctx, c)
	if err != nil || !ok {
		return Session{}, false, err
	}
	if !sess.Until.IsZero() && !s.now().Before(sess.Until) {
		return Session{}, false, nil
	}
	return sess, true, nil
}

func (s *Server) handleProbe(w http.ResponseWriter, r *http.Request, p probe) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	loggedIn := false
	if p.status != 0 {
		if c, err := s.resolver.Resolve(r); err == nil {
			sess, ok, err := s.session(r.Context(), c)
			if err != nil {
				s.log.Warn("portal: probe: session lookup", "client", c.String(), "err", err)
			}
			if ok {
				// The client is logged in but still intercepted (e.g. the
				// allow-list was lost in a restart): allow it again.
				if err := s.net.Allow(r.Context(), c, sess.Until); err != nil {
					s.log.Warn("portal: probe: re-allow", "client", c.String(), "err", err)
				} else {
					loggedIn = true
				}
			}
		}
	}
	if !loggedIn {
		target := s.publicURL + "/"
		if s.publicURL == "" {
			target = "/"
		}
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	if p.ctype != "" {
		h.Set("Content-Type", p.ctype)
	}
	w.WriteHeader(p.status)
	if r.Method != http.MethodHead {
		w.Write([]byte(p.body))
	}
}

// captiveAPI is the RFC 8908 JSON object.
type captiveAPI struct {
	Captive          bool   `json:"captive"`
	UserPortalURL    string `json:"user-portal-url,omitempty"`
	VenueInfoURL     string `json:"venue-info-url,omitempty"`
	CanExtendSession *bool  `json:"can-extend-session,omitempty"`
	SecondsRemaining *int64 `json:"seconds-remaining,omitempty"`
}

func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	res := captiveAPI{Captive: true}
	loc := s.locs[s.cfg.DefaultLocation]
	if c, err := s.resolver.Resolve(r); err == nil {
		loc = s.locationFor(c)
		sess, ok, err := s.session(r.Context(), c)
		if err != nil {
			s.log.Warn("portal: api: session lookup", "client", c.String(), "err", err)
		}
		if ok {
			res.Captive = false
			ext := sess.CanExtend
			res.CanExtendSession = &ext
			if !sess.Until.IsZero() {
				secs := int64(sess.Until.Sub(s.now()) / time.Second)
				res.SecondsRemaining = &secs
			}
		}
	}
	if s.publicURL != "" {
		res.UserPortalURL = s.publicURL + "/"
		if r.TLS != nil && s.apiHost != "" && strings.HasPrefix(s.apiURL, "https://") {
			// RFC 8908 wants an https portal URL; the TLS listener serves the pages too.
			u, _ := url.Parse(s.apiURL)
			res.UserPortalURL = "https://" + u.Host + "/"
		}
	}
	res.VenueInfoURL = s.absURL(loc.b.VenueInfoURL)
	b, _ := json.Marshal(res)
	h := w.Header()
	h.Set("Content-Type", "application/captive+json")
	h.Set("Cache-Control", "private, no-store")
	w.Write(b)
}

// absURL makes a configured /path absolute against PublicURL.
func (s *Server) absURL(u string) string {
	if strings.HasPrefix(u, "/") && s.publicURL != "" {
		return s.publicURL + u
	}
	return u
}

func (s *Server) handleBrandCSS(w http.ResponseWriter, r *http.Request) {
	for id, l := range s.locs {
		if brandFile(id) == r.PathValue("file") {
			w.Header().Set("Content-Type", "text/css; charset=utf-8")
			w.Header().Set("Cache-Control", "public, max-age=300")
			w.Write([]byte(l.brand))
			return
		}
	}
	http.NotFound(w, r)
}

func (s *Server) redirectHome(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	v := s.newView(w, r, s.locationOf(r), "title_error")
	v.Error = s.tr(v.Lang, "err_not_found")
	s.render(w, "page", http.StatusNotFound, v)
}

// safeNext returns p if it is a same-origin path ("/x", not "//host",
// "/\host", "http:…" or anything with control characters), else "".
func safeNext(p string) string {
	if p == "" || len(p) > 1024 || p[0] != '/' || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return ""
	}
	for _, r := range p {
		if unicode.IsControl(r) || r == '\\' {
			return ""
		}
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return ""
	}
	return p
}

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	c, err := s.resolver.Resolve(r)
	if err != nil {
		s.log.Warn("portal: resolve client", "remote", r.RemoteAddr, "err", err)
		s.showLogin(w, r, s.locs[s.cfg.DefaultLocation], http.StatusOK, "", nil)
		return
	}
	loc := s.locationFor(c)
	if _, ok, _ := s.session(r.Context(), c); ok {
		target := "/status"
		if n := safeNext(r.URL.Query().Get("next")); n != "" {
			target += "?next=" + url.QueryEscape(n)
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}
	notice := ""
	if r.URL.Query().Get("out") == "1" {
		notice = "logged_out"
	}
	s.showLogin(w, r, loc, http.StatusOK, notice, nil)
}

// loginForm carries a re-rendered form's values and error.
type loginForm struct {
	errKey  string
	errArgs []any
	code    string
	email   string
	member  bool
}

func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, loc location, status int, notice string, f *loginForm) {
	v := s.newView(w, r, loc, "title_login")
	v.Terms = s.termsOf(loc, v.Lang)
	v.TermsVersion = loc.b.TermsVersion
	if notice != "" {
		v.Notice = s.tr(v.Lang, notice)
	}
	v.Next = safeNext(r.FormValue("next"))
	if f != nil {
		if f.errKey != "" {
			v.Error = s.tr(v.Lang, f.errKey, f.errArgs...)
		}
		v.Code, v.Email, v.MemberOpen = f.code, f.email, f.member
	}
	s.render(w, "login", status, v)
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	c, err := s.resolver.Resolve(r)
	if err != nil {
		s.showError(w, r, http.StatusServiceUnavailable, "err_client")
		return
	}
	sess, ok, err := s.session(r.Context(), c)
	if err != nil {
		s.log.Error("portal: status: session lookup", "client", c.String(), "err", err)
		s.showError(w, r, http.StatusServiceUnavailable, "err_internal")
		return
	}
	if !ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	loc := s.locationFor(c)
	v := s.newView(w, r, loc, "title_status")
	sv := &statusView{Kind: sess.Kind, CanExtend: sess.CanExtend}
	if sess.Name != "" {
		sv.Greeting = s.tr(v.Lang, "status_hello", sess.Name)
	} else {
		sv.Greeting = s.tr(v.Lang, "status_anon")
	}
	if !sess.Until.IsZero() {
		sv.Left = s.duration(v.Lang, sess.Until.Sub(s.now()))
		until, now := sess.Until.In(loc.tz), s.now().In(loc.tz)
		layout := s.tr(v.Lang, "layout_date")
		if until.YearDay() == now.YearDay() && until.Year() == now.Year() {
			layout = s.tr(v.Lang, "layout_today")
		}
		sv.Until = until.Format(layout)
		sv.UntilISO = sess.Until.Format(time.RFC3339)
	}
	if n := safeNext(r.URL.Query().Get("next")); n != "" {
		sv.Continue = n
	}
	if sess.Kind == KindMember && s.cfg.OnboardURL != nil && sess.MemberID != "" {
		sv.OfferURL = s.cfg.OnboardURL(sess.MemberID)
	}
	v.Session = sv
	s.render(w, "status", http.StatusOK, v)
}

func (s *Server) showError(w http.ResponseWriter, r *http.Request, status int, key string) {
	v := s.newView(w, r, s.locationOf(r), "title_error")
	v.Error = s.tr(v.Lang, key)
	s.render(w, "page", status, v)
}

const maxForm = 8 << 10

// preparePost parses the form and checks its CSRF token and the client;
// it writes the response and returns false when the request goes no further.
func (s *Server) preparePost(w http.ResponseWriter, r *http.Request) (Client, location, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		s.showError(w, r, http.StatusBadRequest, "err_csrf")
		return Client{}, location{}, false
	}
	c, err := s.resolver.Resolve(r)
	if err != nil {
		s.log.Warn("portal: resolve client", "remote", r.RemoteAddr, "err", err)
		s.showError(w, r, http.StatusServiceUnavailable, "err_client")
		return Client{}, location{}, false
	}
	loc := s.locationFor(c)
	if !s.csrf.valid(r) {
		s.log.Info("portal: form rejected: bad CSRF token", "client", c.String(), "path", r.URL.Path)
		s.showLogin(w, r, loc, http.StatusForbidden, "", &loginForm{errKey: "err_csrf"})
		return Client{}, location{}, false
	}
	return c, loc, true
}

func lockKeys(c Client) []string {
	keys := []string{"ip:" + c.IP.String()}
	if len(c.MAC) > 0 {
		keys = append(keys, "mac:"+c.MAC.String())
	}
	return keys
}

func (s *Server) handleLoginCode(w http.ResponseWriter, r *http.Request) {
	c, loc, ok := s.preparePost(w, r)
	if !ok {
		return
	}
	code := strings.TrimSpace(r.PostFormValue("code"))
	f := &loginForm{code: code}
	if len(code) > 64 {
		f.code = ""
	}
	s.login(w, r, c, loc, f, func(ctx context.Context) (Session, error) {
		if code == "" {
			return Session{}, errEmpty
		}
		if len(code) > 64 {
			return Session{}, ErrBadCode // no code is that long
		}
		return s.backend.LoginCode(ctx, code, c, loc.id)
	})
}

func (s *Server) handleLoginMember(w http.ResponseWriter, r *http.Request) {
	c, loc, ok := s.preparePost(w, r)
	if !ok {
		return
	}
	email := strings.TrimSpace(r.PostFormValue("email"))
	pw := r.PostFormValue("password")
	f := &loginForm{email: email, member: true}
	s.login(w, r, c, loc, f, func(ctx context.Context) (Session, error) {
		if email == "" || pw == "" {
			return Session{}, errEmpty
		}
		if len(email) > 254 || len(pw) > 256 {
			return Session{}, ErrBadCredentials
		}
		return s.backend.LoginMember(ctx, email, pw, c, loc.id)
	})
}

var errEmpty = errors.New("empty form")

// login runs one login attempt: lockout, terms, the Backend, recording the
// terms, opening the network, and a 303 to the status page.
func (s *Server) login(w http.ResponseWriter, r *http.Request, c Client, loc location, f *loginForm, do func(context.Context) (Session, error)) {
	method := "code"
	if f.member {
		method = "member"
	}
	log := s.log.With("client", c.String(), "location", loc.id, "method", method)
	keys := lockKeys(c)
	if left := s.lockouts.locked(keys...); left > 0 {
		log.Info("portal: login refused: locked out", "left", left.Round(time.Second))
		w.Header().Set("Retry-After", strconv.Itoa(int(left/time.Second)+1))
		f.errKey, f.errArgs = "err_locked", []any{minutesUp(left)}
		s.showLogin(w, r, loc, http.StatusTooManyRequests, "", f)
		return
	}
	if r.PostFormValue("terms") != loc.b.TermsVersion {
		f.errKey = "err_terms"
		s.showLogin(w, r, loc, http.StatusUnprocessableEntity, "", f)
		return
	}
	bud, busyKey := s.codes, "err_busy_codes"
	if f.member {
		bud, busyKey = s.members, "err_busy_members"
	}
	if ok, left := bud.take(); !ok {
		// Logged once per window by the budget (with counts), not per
		// refusal: a flood must not flood the log.
		log.Debug("portal: login refused: guessing budget spent", "left", left.Round(time.Second))
		w.Header().Set("Retry-After", strconv.Itoa(int(left/time.Second)+1))
		f.errKey, f.errArgs = busyKey, []any{minutesUp(left)}
		s.showLogin(w, r, loc, http.StatusTooManyRequests, "", f)
		return
	}
	sess, err := do(r.Context())
	bud.done(errors.Is(err, ErrBadCode) || errors.Is(err, ErrBadCredentials), c.String())
	if err != nil {
		status := http.StatusUnprocessableEntity
		switch {
		case errors.Is(err, errEmpty):
			f.errKey = "err_empty_code"
			if f.member {
				f.errKey = "err_empty_member"
			}
		case errors.Is(err, ErrBadCode), errors.Is(err, ErrBadCredentials):
			left, lock := s.lockouts.fail(keys...)
			f.errKey = "err_bad_code"
			if f.member {
				f.errKey = "err_bad_credentials"
			} else if left == 1 {
				f.errKey = "err_bad_code_last"
			} else if left > 1 {
				f.errKey, f.errArgs = "err_bad_code_left", []any{left}
			}
			if lock > 0 {
				log.Warn("portal: client locked out after wrong attempts", "attempts", s.cfg.MaxAttempts, "for", lock)
				f.errKey, f.errArgs = "err_locked", []any{minutesUp(lock)}
				w.Header().Set("Retry-After", strconv.Itoa(int(lock/time.Second)))
				status = http.StatusTooManyRequests
			}
			f.code = ""
		case errors.Is(err, ErrNotYetValid):
			f.errKey = "err_not_yet_valid"
		case errors.Is(err, ErrExpired):
			f.errKey = "err_expired"
		case errors.Is(err, ErrWrongLocation):
			f.errKey = "err_wrong_location"
		case errors.Is(err, ErrDeviceLimit):
			f.errKey, status = "err_device_limit", http.StatusForbidden
		case errors.Is(err, ErrNoWiFi):
			f.errKey, status = "err_no_wifi", http.StatusForbidden
		default:
			log.Error("portal: login failed", "err", err)
			f.errKey, status = "err_internal", http.StatusServiceUnavailable
		}
		if f.errKey != "err_internal" {
			log.Info("portal: login refused", "reason", f.errKey)
		}
		s.showLogin(w, r, loc, status, "", f)
		return
	}
	s.lockouts.reset(keys...)
	if err := s.backend.RecordTerms(r.Context(), c, loc.id, loc.b.TermsVersion); err != nil {
		log.Error("portal: record terms acceptance", "err", err)
		if err := s.backend.Logout(r.Context(), c); err != nil {
			log.Error("portal: undo login", "err", err)
		}
		f.errKey = "err_internal"
		s.showLogin(w, r, loc, http.StatusServiceUnavailable, "", f)
		return
	}
	if err := s.net.Allow(r.Context(), c, sess.Until); err != nil {
		log.Error("portal: allow client", "err", err)
		f.errKey = "err_internal"
		s.showLogin(w, r, loc, http.StatusServiceUnavailable, "", f)
		return
	}
	log.Info("portal: login", "session", sess.ID, "kind", sess.Kind, "member", sess.MemberID, "until", sess.Until)
	target := "/status"
	if n := safeNext(r.PostFormValue("next")); n != "" {
		target += "?next=" + url.QueryEscape(n)
	}
	// A full navigation (not a pop-up or script) so iOS re-probes.
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func minutesUp(d time.Duration) int {
	return int((d + time.Minute - 1) / time.Minute)
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	c, _, ok := s.preparePost(w, r)
	if !ok {
		return
	}
	log := s.log.With("client", c.String())
	var failed bool
	if err := s.net.Revoke(r.Context(), c); err != nil {
		log.Error("portal: logout: revoke", "err", err)
		failed = true
	}
	if err := s.backend.Logout(r.Context(), c); err != nil {
		log.Error("portal: logout: backend", "err", err)
		failed = true
	}
	if failed {
		s.showError(w, r, http.StatusServiceUnavailable, "err_internal")
		return
	}
	log.Info("portal: logout")
	http.Redirect(w, r, "/?out=1", http.StatusSeeOther)
}
