package portal

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

//go:embed templates/*.html static
var embedded embed.FS

// Page templates; each is parsed together with layout.html, which defines
// the document around the page's "content" block.
var pageNames = []string{"login", "status", "page"}

func (s *Server) loadTemplates() error {
	read := func(name string) (string, error) {
		if s.cfg.TemplatesDir != "" {
			b, err := os.ReadFile(filepath.Join(s.cfg.TemplatesDir, name))
			if err == nil {
				return string(b), nil
			}
			if !errors.Is(err, os.ErrNotExist) {
				return "", fmt.Errorf("portal: template override: %w", err)
			}
		}
		b, err := embedded.ReadFile("templates/" + name)
		return string(b), err
	}
	layout, err := read("layout.html")
	if err != nil {
		return err
	}
	s.tmpl = make(map[string]*template.Template)
	for _, p := range pageNames {
		body, err := read(p + ".html")
		if err != nil {
			return err
		}
		t, err := template.New("layout").Parse(layout)
		if err == nil {
			_, err = t.New(p).Parse(body)
		}
		if err != nil {
			return fmt.Errorf("portal: template %s: %w", p, err)
		}
		if t.Lookup("content") == nil {
			return fmt.Errorf("portal: template %s.html defines no \"content\" block", p)
		}
		s.tmpl[p] = t
	}
	sub, _ := fs.Sub(embedded, "static")
	var files http.FileSystem = http.FS(sub)
	if s.cfg.TemplatesDir != "" {
		files = overlayFS{http.Dir(filepath.Join(s.cfg.TemplatesDir, "static")), files}
	}
	s.static = http.StripPrefix("/static/", http.FileServer(noDirs{files}))
	return nil
}

// overlayFS serves the operator's file when there is one, else the default.
type overlayFS struct{ top, bottom http.FileSystem }

func (o overlayFS) Open(name string) (http.File, error) {
	if f, err := o.top.Open(name); err == nil {
		return f, nil
	}
	return o.bottom.Open(name)
}

// noDirs hides directory listings.
type noDirs struct{ fs http.FileSystem }

func (n noDirs) Open(name string) (http.File, error) {
	f, err := n.fs.Open(name)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || st.IsDir() {
		f.Close()
		return nil, os.ErrNotExist
	}
	return f, nil
}

// view is what every template gets.
type view struct {
	Lang     string
	Langs    []langLink
	T        map[string]string // messages in Lang, e.g. {{.T.connect}}
	Title    string
	Brand    brandView
	CSRF     string
	Error    string
	Notice   string
	Next     string
	Location string

	// login
	Code         string
	Email        string
	Terms        []string
	TermsVersion string
	MemberOpen   bool

	// status
	Session *statusView

	// RenderPage
	Body template.HTML
}

type langLink struct {
	Code, Name, URL string
	Current         bool
}

type brandView struct {
	Name, LogoURL, CSSURL, VenueInfoURL string
}

type statusView struct {
	Kind      string
	Greeting  string
	Left      string
	Until     string
	UntilISO  string
	Continue  string // same-origin path to continue to, or ""
	OfferURL  string // members: set up the secure network
	CanExtend bool
}

// newView fills the common fields for r.
func (s *Server) newView(w http.ResponseWriter, r *http.Request, loc location, titleKey string) *view {
	lang := s.lang(w, r)
	v := &view{
		Lang:     lang,
		T:        s.msgs[lang],
		Title:    s.tr(lang, titleKey),
		CSRF:     s.csrf.token(w, r),
		Location: loc.id,
		Brand: brandView{
			Name:         loc.b.Name,
			LogoURL:      loc.b.LogoURL,
			CSSURL:       "/brand/" + brandFile(loc.id),
			VenueInfoURL: loc.b.VenueInfoURL,
		},
	}
	path := r.URL.Path
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		path = "/"
	}
	for _, l := range s.langs {
		v.Langs = append(v.Langs, langLink{Code: l, Name: s.tr(l, "lang_name"), URL: path + "?lang=" + l, Current: l == lang})
	}
	return v
}

// brandFile names a location's stylesheet; ids are escaped so any id works.
func brandFile(id string) string {
	return fmt.Sprintf("%x.css", id)
}

func (s *Server) render(w http.ResponseWriter, name string, status int, v *view) {
	var buf bytes.Buffer
	if err := s.tmpl[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		s.log.Error("portal: render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Language", v.Lang)
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// RenderPage writes a page in the portal's look (layout, branding of the
// client's location, language, stylesheet, security headers) around body,
// with the given status code. Pages that share the look, such as member
// onboarding, use it; body must be trusted HTML. Forms in body that post
// back to the portal's handler can include the token from CSRFToken.
func (s *Server) RenderPage(w http.ResponseWriter, r *http.Request, status int, title string, body template.HTML) {
	setSecurityHeaders(w.Header())
	v := s.newView(w, r, s.locationOf(r), "title_login")
	v.Title = title
	v.Body = body
	s.render(w, "page", status, v)
}

// Lang returns the language the portal would use for r ("en", "de", …),
// for pages rendered with RenderPage.
func (s *Server) Lang(r *http.Request) string { return s.lang(nil, r) }

// CSRFToken returns the CSRF form token for r (setting its cookie on w) and
// CheckCSRF validates a posted form field named "csrf" against it; pages
// rendered with RenderPage may use them for their own forms.
func (s *Server) CSRFToken(w http.ResponseWriter, r *http.Request) string { return s.csrf.token(w, r) }

// CheckCSRF reports whether the request's "csrf" form value is valid.
func (s *Server) CheckCSRF(r *http.Request) bool { return s.csrf.valid(r) }

// locationOf is the location of the client behind r, for branding; clients
// that cannot be resolved get the default location.
func (s *Server) locationOf(r *http.Request) location {
	if s.cfg.LocationFor != nil {
		if c, err := s.resolver.Resolve(r); err == nil {
			if l, ok := s.locs[s.cfg.LocationFor(c)]; ok {
				return l
			}
		}
	}
	return s.locs[s.cfg.DefaultLocation]
}

func (s *Server) locationFor(c Client) location {
	if s.cfg.LocationFor != nil {
		if l, ok := s.locs[s.cfg.LocationFor(c)]; ok {
			return l
		}
	}
	return s.locs[s.cfg.DefaultLocation]
}

// termsOf returns the terms paragraphs of loc in lang.
func (s *Server) termsOf(loc location, lang string) []string {
	text := loc.b.Terms[lang]
	if text == "" {
		text = loc.b.TermsText
	}
	if text == "" {
		text = s.tr(lang, "terms_default")
	}
	var out []string
	for _, p := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func setSecurityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}
