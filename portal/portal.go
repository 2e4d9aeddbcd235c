package portal

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/deskgate/deskgate/internal/guestnet"
)

// Client identifies a device on the guest network.
type Client = guestnet.Client

// Session is a client's current guest-network session as the Backend sees it.
type Session = guestnet.Session

// Session kinds.
const (
	KindGuest   = guestnet.KindGuest
	KindDayPass = guestnet.KindDayPass
	KindMember  = guestnet.KindMember
)

// Backend owns codes, credentials and sessions (the guest lifecycle). It
// persists sessions, so they survive a restart of the daemon.
//
// The portal passes codes as typed, trimmed of surrounding white space and
// at most 64 bytes long: normalising case, spaces and dashes is the
// Backend's business. locationID is the location of the client's network
// (Config.LocationFor). The portal calls RecordTerms after a successful
// login and before Network.Allow, and Logout if recording fails. The portal
// treats a session whose Until has passed as over; a zero Until means no
// fixed end (no time left is shown and Allow gets the zero time).
type Backend interface {
	LoginCode(ctx context.Context, code string, c Client, locationID string) (Session, error)
	LoginMember(ctx context.Context, email, password string, c Client, locationID string) (Session, error)
	// SessionFor returns the current session of a client; ok is false when
	// it has none.
	SessionFor(ctx context.Context, c Client) (s Session, ok bool, err error)
	Logout(ctx context.Context, c Client) error
	RecordTerms(ctx context.Context, c Client, locationID, termsVersion string) error
}

// Errors a Backend returns (possibly wrapped); the portal maps them to
// friendly, translated messages. Any other error is shown as a generic
// failure and logged.
var (
	ErrBadCode        = guestnet.ErrBadCode
	ErrNotYetValid    = guestnet.ErrNotYetValid
	ErrExpired        = guestnet.ErrExpired
	ErrWrongLocation  = guestnet.ErrWrongLocation
	ErrDeviceLimit    = guestnet.ErrDeviceLimit
	ErrBadCredentials = guestnet.ErrBadCredentials
	ErrNoWiFi         = guestnet.ErrNoWiFi
)

// Network opens and closes the guest network for a client (netcfg).
type Network = guestnet.Network

// ClientResolver identifies the client behind a request: the IP from
// RemoteAddr and the MAC from the neighbour table or lease data.
type ClientResolver interface {
	Resolve(r *http.Request) (Client, error)
}

// Branding is how the portal looks and what it says at one location.
type Branding struct {
	Name string
	// LogoURL is shown in the header: a same-origin path (files in
	// TemplatesDir/static are served under /static/) or an absolute URL
	// the client can reach before login. Empty shows the name only.
	LogoURL string
	// PrimaryColor is "#rgb" or "#rrggbb"; the text on it is black or
	// white, whichever contrasts more.
	PrimaryColor string
	// TermsText is the terms of use as plain text (paragraphs separated by
	// blank lines); Terms holds translations by language and wins over
	// TermsText. When both are empty a built-in short text is shown.
	TermsText    string
	Terms        map[string]string
	TermsVersion string // recorded with each acceptance; "default" if empty
	VenueInfoURL string // RFC 8908 venue-info-url and a link on the pages
	TimeZone     string // IANA name for the "until" time; empty = local
}

// Config configures the portal. Zero values take the documented defaults.
type Config struct {
	Listen    string // plain HTTP listener, e.g. ":8080" (the DNAT target)
	ListenTLS string // HTTPS listener for the RFC 8908 API (and the pages)
	CertFile  string
	KeyFile   string

	// PublicURL is where probes and foreign hosts are redirected, e.g.
	// http://portal.deskgate.lan. Requests for any other host (except the
	// probes and the API) are redirected there. Empty disables that.
	PublicURL string
	// APIURL overrides the RFC 8908 API URI (see Server.APIURL).
	APIURL string

	Locations       map[string]Branding
	DefaultLocation string
	// LocationFor picks the location of a client; nil means DefaultLocation.
	LocationFor func(Client) string

	Languages    []string // supported, first is the fallback; default en, de
	TemplatesDir string   // operator overrides: *.html, messages.<lang>.json, static/

	MaxAttempts int           // wrong codes or credentials before lockout; default 5
	Lockout     time.Duration // default 15 min
	RateLimit   float64       // requests per second per client IP; default 5
	// CodeBudget is how many wrong codes all clients together may enter
	// per BudgetWindow before code logins are refused for everyone until
	// the window closes; default 30. MemberBudget is the same for wrong
	// member credentials, counted apart; default 30. BudgetWindow
	// defaults to 10 min.
	CodeBudget   int
	MemberBudget int
	BudgetWindow time.Duration
	RateBurst    int // bucket size; default 30

	OnboardURL func(memberID string) string // "set up the secure network" link

	CSRFKey     []byte // at least 32 bytes; or
	CSRFKeyFile string // created (0600) with a random key if missing

	Now func() time.Time // clock; default time.Now
}

// Server is the captive portal.
type Server struct {
	cfg      Config
	backend  Backend
	net      Network
	resolver ClientResolver
	log      *slog.Logger
	now      func() time.Time

	publicURL  string // without trailing slash
	portalHost string // hostname of PublicURL, lower case
	apiURL     string
	apiHost    string

	locs     map[string]location
	langs    []string
	msgs     map[string]map[string]string
	tmpl     map[string]*template.Template
	static   http.Handler
	csrf     *csrf
	limiter  *limiter
	lockouts *lockouts
	codes    *budget // wrong codes, all clients together
	members  *budget // wrong member credentials, all clients together
	handler  http.Handler
	mux      *http.ServeMux
}

type location struct {
	id    string
	b     Branding
	tz    *time.Location
	fg    string // text color on the primary color
	brand string
}

var colorRE = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// New checks cfg and builds a Server. It reads templates, messages and the
// CSRF key at once, so a broken override fails here, not on first request.
func New(cfg Config, b Backend, n Network, cr ClientResolver, log *slog.Logger) (*Server, error) {
	if b == nil || n == nil || cr == nil {
		return nil, errors.New("portal: backend, network and client resolver are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Lockout <= 0 {
		cfg.Lockout = 15 * time.Minute
	}
	if cfg.CodeBudget <= 0 {
		cfg.CodeBudget = 30
	}
	if cfg.MemberBudget <= 0 {
		cfg.MemberBudget = 30
	}
	if cfg.BudgetWindow <= 0 {
		cfg.BudgetWindow = 10 * time.Minute
	}
	if cfg.RateLimit <= 0 {
		cfg.RateLimit = 5
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = 30
	}
	if len(cfg.Languages) == 0 {
		cfg.Languages = []string{"en", "de"}
	}
	s := &Server{cfg: cfg, backend: b, net: n, resolver: cr, log: log, now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("portal: public URL %q: want http(s)://host[:port]", cfg.PublicURL)
		}
		s.publicURL = strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/")
		s.portalHost = strings.ToLower(u.Hostname())
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("portal: set both CertFile and KeyFile, or neither")
	}
	if cfg.ListenTLS != "" && cfg.CertFile == "" {
		return nil, errors.New("portal: ListenTLS needs CertFile and KeyFile")
	}
	s.apiURL = cfg.APIURL
	if s.apiURL == "" && s.portalHost != "" {
		if cfg.CertFile != "" && cfg.ListenTLS != "" {
			host := s.portalHost
			if _, port, err := net.SplitHostPort(cfg.ListenTLS); err == nil && port != "" && port != "443" {
				host = net.JoinHostPort(host, port)
			}
			s.apiURL = "https://" + host + apiPath
		} else {
			s.apiURL = s.publicURL + apiPath
		}
	}
	if s.apiURL != "" {
		u, err := url.Parse(s.apiURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("portal: API URL %q is not absolute", s.apiURL)
		}
		s.apiHost = strings.ToLower(u.Hostname())
	}
	if err := s.loadLocations(); err != nil {
		return nil, err
	}
	if err := s.loadMessages(); err != nil {
		return nil, err
	}
	if err := s.loadTemplates(); err != nil {
		return nil, err
	}
	key, err := csrfKey(cfg.CSRFKey, cfg.CSRFKeyFile)
	if err != nil {
		return nil, err
	}
	s.csrf = &csrf{key: key, secure: cfg.CertFile != "" && strings.HasPrefix(s.publicURL, "https:")}
	s.limiter = newLimiter(cfg.RateLimit, cfg.RateBurst, s.now)
	s.lockouts = newLockouts(cfg.MaxAttempts, cfg.Lockout, s.now)
	s.codes = newBudget("code", cfg.CodeBudget, cfg.BudgetWindow, s.now, log)
	s.members = newBudget("member", cfg.MemberBudget, cfg.BudgetWindow, s.now, log)
	s.handler = s.routes()
	return s, nil
}

func (s *Server) loadLocations() error {
	s.locs = make(map[string]location)
	if len(s.cfg.Locations) == 0 {
		s.cfg.Locations = map[string]Branding{s.cfg.DefaultLocation: {}}
	}
	if _, ok := s.cfg.Locations[s.cfg.DefaultLocation]; !ok {
		if len(s.cfg.Locations) != 1 {
			return fmt.Errorf("portal: default location %q is not among the %d configured locations", s.cfg.DefaultLocation, len(s.cfg.Locations))
		}
		for id := range s.cfg.Locations {
			s.cfg.DefaultLocation = id
		}
	}
	for id, b := range s.cfg.Locations {
		if b.Name == "" {
			b.Name = "Guest WiFi"
		}
		if b.PrimaryColor == "" {
			b.PrimaryColor = "#1d4ed8"
		}
		if !colorRE.MatchString(b.PrimaryColor) {
			return fmt.Errorf("portal: location %q: primary color %q: want #rgb or #rrggbb", id, b.PrimaryColor)
		}
		if b.TermsVersion == "" {
			b.TermsVersion = "default"
		}
		for _, u := range []string{b.LogoURL, b.VenueInfoURL} {
			if u == "" {
				continue
			}
			pu, err := url.Parse(u)
			if err != nil || !(pu.Scheme == "http" || pu.Scheme == "https" || (pu.Scheme == "" && pu.Host == "" && strings.HasPrefix(u, "/"))) {
				return fmt.Errorf("portal: location %q: URL %q: want http(s)://… or /path", id, u)
			}
		}
		l := location{id: id, b: b, tz: time.Local}
		if b.TimeZone != "" {
			tz, err := time.LoadLocation(b.TimeZone)
			if err != nil {
				return fmt.Errorf("portal: location %q: time zone: %w", id, err)
			}
			l.tz = tz
		}
		l.fg = contrastText(b.PrimaryColor)
		l.brand = fmt.Sprintf(":root{--brand:%s;--on-brand:%s}\n", strings.ToLower(b.PrimaryColor), l.fg)
		s.locs[id] = l
	}
	return nil
}

// contrastText returns #000 or #fff, whichever has the higher WCAG contrast
// ratio against the color hex.
func contrastText(hex string) string {
	h := strings.TrimPrefix(hex, "#")
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	var rgb [3]float64
	for i := range rgb {
		var v int
		fmt.Sscanf(h[2*i:2*i+2], "%02x", &v)
		c := float64(v) / 255
		if c <= 0.03928 {
			c /= 12.92
		} else {
			c = math.Pow((c+0.055)/1.055, 2.4)
		}
		rgb[i] = c
	}
	lum := 0.2126*rgb[0] + 0.7152*rgb[1] + 0.0722*rgb[2]
	if (lum+0.05)/0.05 > 1.05/(lum+0.05) {
		return "#000"
	}
	return "#fff"
}

// csrfKey returns the configured key, or reads (creating if needed) the key
// file, so forms rendered before a restart still submit after it.
func csrfKey(key []byte, file string) ([]byte, error) {
	if len(key) > 0 {
		if len(key) < 32 {
			return nil, errors.New("portal: CSRF key must have at least 32 bytes")
		}
		return key, nil
	}
	if file == "" {
		k := make([]byte, 32)
		rand.Read(k)
		return k, nil
	}
	k, err := os.ReadFile(file)
	if err == nil {
		if len(k) < 32 {
			return nil, fmt.Errorf("portal: CSRF key file %s: shorter than 32 bytes", file)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("portal: read CSRF key file: %w", err)
	}
	k = make([]byte, 32)
	rand.Read(k)
	tmp, err := os.CreateTemp(filepath.Dir(file), ".csrf-*")
	if err != nil {
		return nil, fmt.Errorf("portal: create CSRF key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(k)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		return nil, fmt.Errorf("portal: write CSRF key file: %w", err)
	}
	return k, nil
}

// Handler returns the portal's HTTP handler (probes, API, pages, assets).
func (s *Server) Handler() http.Handler { return s.handler }

// APIURL is the RFC 8908 API URI to announce in DHCP option 114 and IPv6
// RA option 37 (empty when neither PublicURL nor APIURL is configured).
func (s *Server) APIURL() string { return s.apiURL }

// Run serves on Config.Listen and, when a certificate is configured, on
// Config.ListenTLS, until ctx is cancelled; then it shuts the listeners down
// with a deadline. Cancellation is a clean exit (nil).
func (s *Server) Run(ctx context.Context) error {
	type srv struct {
		hs  *http.Server
		ln  net.Listener
		tls bool
	}
	var srvs []srv
	closeAll := func() {
		for _, x := range srvs {
			x.ln.Close()
		}
	}
	mk := func(addr string) (*http.Server, net.Listener, error) {
		ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("portal: listen %s: %w", addr, err)
		}
		hs := &http.Server{
			Handler:           s.handler,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      20 * time.Second,
			IdleTimeout:       60 * time.Second,
			MaxHeaderBytes:    32 << 10,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
			BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		}
		return hs, ln, nil
	}
	if s.cfg.Listen != "" {
		hs, ln, err := mk(s.cfg.Listen)
		if err != nil {
			return err
		}
		srvs = append(srvs, srv{hs, ln, false})
	}
	if s.cfg.ListenTLS != "" && s.cfg.CertFile != "" {
		hs, ln, err := mk(s.cfg.ListenTLS)
		if err != nil {
			closeAll()
			return err
		}
		srvs = append(srvs, srv{hs, ln, true})
	}
	if len(srvs) == 0 {
		return errors.New("portal: nothing to listen on (set Listen)")
	}
	errc := make(chan error, len(srvs))
	for _, x := range srvs {
		s.log.Info("portal listening", "addr", x.ln.Addr().String(), "tls", x.tls)
		go func() {
			var err error
			if x.tls {
				err = x.hs.ServeTLS(x.ln, s.cfg.CertFile, s.cfg.KeyFile)
			} else {
				err = x.hs.Serve(x.ln)
			}
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			errc <- err
		}()
	}
	var first error
	pending := len(srvs)
	select {
	case <-ctx.Done():
	case first = <-errc:
		pending--
		if first != nil {
			first = fmt.Errorf("portal: serve: %w", first)
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for _, x := range srvs {
		if err := x.hs.Shutdown(sctx); err != nil {
			x.hs.Close()
			if first == nil {
				first = fmt.Errorf("portal: shutdown: %w", err)
			}
		}
	}
	for range pending {
		if err := <-errc; err != nil && first == nil {
			first = fmt.Errorf("portal: serve: %w", err)
		}
	}
	return first
}
