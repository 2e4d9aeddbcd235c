// Package appliance is deskgate's composition root: it builds every part
// of the daemon from the configuration (store, OfficeRnD mirror, email
// sender, RADIUS and EAP, guest codes and the captive portal, the gateway,
// the fleet, the admin API and the member pages), runs them, and returns
// the first fatal error. Only cmd/deskgated imports it. What stays here is
// wiring: the adapters between the parts (adminapi.go answers the admin
// API, members.go the member pages, portal.go the portal and the guest
// lifecycle, radius.go and eapwire.go the RADIUS and EAP servers), the
// loop that turns store state into netcfg's desired state (net.go), and
// doctor's checks across the parts.
//
// Import rules (enforced by deps_test.go, which lists what every package
// of the module may import): appliance/* packages never import appliance
// itself or portal; only cmd/* imports appliance.
package appliance

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deskgate/deskgate/internal/atomicfile"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/deskgate/deskgate/appliance/access"
	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/appliance/devices"
	"github.com/deskgate/deskgate/appliance/mirror"
	"github.com/deskgate/deskgate/appliance/notify"
	"github.com/deskgate/deskgate/appliance/officernd"
	"github.com/deskgate/deskgate/appliance/onboard"
	"github.com/deskgate/deskgate/appliance/peer"
	"github.com/deskgate/deskgate/appliance/rollout"
	"github.com/deskgate/deskgate/appliance/store"
	"github.com/deskgate/deskgate/appliance/update"
	"github.com/deskgate/deskgate/portal"
)

// Version is set at build time (-ldflags "-X ...appliance.Version=...").
var Version = "dev"

// App is the running daemon.
type App struct {
	cfgPath string
	cfg     atomic.Pointer[config.Config]
	log     *slog.Logger
	now     func() time.Time
	started time.Time

	ownProcess   bool // see Options.OwnProcess
	demoSwitches bool // see Options.DemoSwitches
	// claimRetry: how often guests ask again to deliver a code no fleet
	// box has claimed (Options.FleetTakeoverEvery).
	claimRetry time.Duration

	store  *store.Store
	res    *access.Resolver
	api    *officernd.Client
	syncer *mirror.Syncer
	sender *notify.Sender
	mailer notify.Mailer
	reg    *prometheus.Registry
	fleet  *peer.Node
	// rollout: fleet updates (rollout.go; its routes: appliance/rollout)
	rollout *rollout.Agent
	// updater: this box's slots and update attempts; nil without slots
	updater *update.Updater

	adminSrv *admin.Server // the operator's API: routes, token, listeners

	hooks *mirror.Registrar // the OfficeRnD webhook: registration and secret

	radius  radiusPart
	net     netPart
	guests  guestPart
	console consolePart

	portalResolver portal.ClientResolver

	pages *onboard.Pages    // the member pages (onboarding, device setup)
	ppsk  *devices.Registry // PPSK devices (radius.ppsk)

	ready atomic.Bool // see ready.go
	// membersOff: no certificate for the member pages (onboard.ErrNoCert).
	membersOff bool
}

// Options are test seams; zero values mean the real thing.
type Options struct {
	Now func() time.Time
	// APISleep replaces the OfficeRnD client's waits (retry backoff,
	// rate-limit resets); tests pass one that advances their clock.
	APISleep func(ctx context.Context, d time.Duration) error
	// PortalResolver finds a portal client's MAC; nil reads the kernel's
	// neighbour table (tests on loopback have none).
	PortalResolver portal.ClientResolver
	// FleetTakeoverEvery is how often the fleet looks for welcome emails
	// and guest code deliveries to take over (default 15s).
	FleetTakeoverEvery time.Duration
	// Updater is what a fleet rollout installs with on this box; nil:
	// RAUC when the rauc tool is installed, else none.
	Updater *update.Updater
	// OwnProcess says the App is its process's only one (deskgated): it
	// sets the runtime's soft memory limit (memory_limit_mib) and gives
	// memory back (see trimMemory). In-process tests leave it off.
	OwnProcess bool
	// DemoSwitches offers switches only a demo or test wants, today the
	// fleet's partition switch (POST /v1/fleet/partition); deskgated sets
	// it from DESKGATE_DEMO_SWITCHES=1.
	DemoSwitches bool
}

// DemoSwitchesEnv is the environment variable with which deskgated offers
// the demo switches (Options.DemoSwitches).
const DemoSwitchesEnv = "DESKGATE_DEMO_SWITCHES"

// New opens the store and builds every part; it does not contact
// OfficeRnD (the box must start with the uplink down).
func New(ctx context.Context, cfgPath string, cfg *config.Config, log *slog.Logger, opts Options) (*App, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &App{cfgPath: cfgPath, log: log, now: opts.Now, started: opts.Now(), portalResolver: opts.PortalResolver, ownProcess: opts.OwnProcess, demoSwitches: opts.DemoSwitches, claimRetry: opts.FleetTakeoverEvery}
	a.guests.started = make(chan struct{})
	a.net.kick = make(chan struct{}, 1)
	a.cfg.Store(cfg)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", cfg.DataDir, err)
	}
	cfg = a.withFleetConfig(cfg)
	a.cfg.Store(cfg)
	st, err := store.Open(filepath.Join(cfg.DataDir, "deskgate.db"), store.Options{Now: opts.Now})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	a.store = st
	fpKey, err := loadOrCreateKey(filepath.Join(cfg.DataDir, "fingerprint.key"))
	if err != nil {
		st.Close()
		return nil, err
	}
	a.reg = prometheus.NewRegistry()
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.adminSrv, err = admin.NewServer(admin.Options{
		Backend:      adminAPI{a},
		TokenFile:    filepath.Join(cfg.DataDir, admin.TokenFile),
		AllowedHosts: func() []string { return a.Config().Admin.AllowedHosts },
		Metrics:      promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}),
		// No admin.tls_cert_file: a self-signed certificate (the console).
		SelfSignedDir: cfg.DataDir,
		Now:           opts.Now,
		Operators:     adminAPI{a},
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	a.fleet, err = peer.New(peer.Options{
		Store: st, DataDir: cfg.DataDir, Listen: cfg.Fleet.Listen, Advertise: cfg.Fleet.Advertise,
		Peers: cfg.Fleet.Peers, Locations: cfg.Fleet.Locations, Version: Version, Now: opts.Now, Log: log.With("component", "fleet"),
		Takeover:      func(m string) error { _, err := a.syncer.TakeOverWelcome(m); return err },
		TakeoverEvery: opts.FleetTakeoverEvery,
		RadiusName:    cfg.RADIUS.EAP.ServerName,
		OnHint:        func(box string, body []byte) { a.syncer.RelayedEvent(box, body) },
		OnApplied:     a.fleetApplied,
		CheckConfig:   a.checkFleetConfig,
		ApplyConfig:   a.applyFleetConfig,
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("fleet: %w", err)
	}
	u := opts.Updater
	if u == nil {
		u = boxUpdater(log.With("component", "update"), opts.Now)
	}
	a.updater = u
	a.rollout = newRollout(a, cfg.DataDir, u)
	a.rollout.Mount(a.adminSrv) // deskgate fleet update
	a.res = access.New(cfg)
	a.hooks = mirror.NewRegistrar(a.Config, opts.Now, log)
	scopes, readScopes := mirror.APIScopes(cfg)
	a.api, err = officernd.New(ctx, officernd.Config{
		APIBase:      cfg.OfficeRnD.APIBase,
		TokenURL:     cfg.OfficeRnD.TokenURL,
		OrgSlug:      cfg.OfficeRnD.OrgSlug,
		ClientID:     cfg.OfficeRnD.ClientID,
		ClientSecret: cfg.OfficeRnD.ClientSecret.Reveal(),
		Scopes:       scopes,
		ReadScopes:   readScopes,
		OnScopesReduced: func(refused error) {
			a.hooks.ScopesRefused(refused)
		},
		RequestTimeout: cfg.OfficeRnD.RequestTimeout,
		MaxRetries:     cfg.OfficeRnD.MaxRetries,
		Logger:         log.With("component", "officernd"),
		Now:            opts.Now,
		Sleep:          opts.APISleep,
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("officernd client: %w", err)
	}
	tmpl, err := notify.LoadTemplates(cfg.SMTP.TemplatesDir)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("email templates: %w", err)
	}
	a.mailer = newMailer(cfg, opts.Now)
	a.sender = notify.NewSender(st, a.mailer, tmpl, cfg.SMTP.From, log.With("component", "notify"))
	a.sender.Now = opts.Now
	a.sender.Claim = a.fleet.ClaimSend // in a fleet, a message goes out from one box only
	metrics := mirror.NewMetrics()
	if err := metrics.Register(a.reg); err != nil {
		st.Close()
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	a.reg.MustRegister(&appCollector{a: a})
	a.syncer = mirror.New(mirror.Options{
		Client:         a.api,
		Store:          st,
		Resolver:       a.res,
		Config:         a.Config,
		Log:            log.With("component", "sync"),
		Now:            opts.Now,
		KickMail:       a.sender.Kick,
		FingerprintKey: fpKey,
		WebhookSecret:  a.hooks.Secret,
		Metrics:        metrics,
		SpaceName:      cfg.OfficeRnD.OrgSlug,
		ServerName:     cfg.RADIUS.EAP.ServerName,
		ProfileURL:     func(u string) string { return a.ProfileURL(u) },
		Fleet:          a.fleet,
		Relay:          func(body []byte) { a.fleet.Relay(bytes.TrimSpace(body)) },
	})
	if err := a.newRadius(); err != nil {
		st.Close()
		return nil, err
	}
	a.ppsk = &devices.Registry{
		Store: st, Resolver: a.res, Config: a.Config, Now: opts.Now, Log: log.With("component", "devices"),
		Disconnect: func(ctx context.Context, member, mac string) error {
			if a.radius.srv == nil {
				return nil
			}
			return a.radius.srv.DisconnectMAC(ctx, member, mac)
		},
	}
	if ca := a.radius.ca; ca != nil {
		a.ppsk.LiveCerts = ca.LiveCount
	}
	a.pages = onboard.New(onboard.Options{
		Store: st, Resolver: a.res, CA: a.radius.ca, Config: a.Config, Now: opts.Now,
		Log: log.With("component", "members"), App: memberPages{a},
	})
	if err := a.newConsole(); err != nil {
		st.Close()
		return nil, err
	}
	return a, nil
}

// Config returns the current configuration.
func (a *App) Config() *config.Config { return a.cfg.Load() }

// Store exposes the store (tests, benchmarks).
func (a *App) Store() *store.Store { return a.store }

// Syncer exposes the sync (tests).
func (a *App) Syncer() *mirror.Syncer { return a.syncer }

func newMailer(cfg *config.Config, now func() time.Time) notify.Mailer {
	if cfg.SMTP.MailboxDir != "" {
		return notify.NewMailbox(cfg.SMTP.MailboxDir).WithClock(now)
	}
	return notify.NewSMTPMailer(notify.SMTPConfig{
		Host: cfg.SMTP.Host, Port: cfg.SMTP.Port, Username: cfg.SMTP.Username,
		Password: cfg.SMTP.Password.Reveal(), From: cfg.SMTP.From, TLS: cfg.SMTP.TLS,
		InsecureSkipVerify: cfg.SMTP.InsecureSkipVerify, Now: now,
	})
}

// Run starts everything and blocks until ctx is cancelled or a part fails.
func (a *App) Run(ctx context.Context) error {
	defer a.store.Close()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	cfg := a.Config()

	adminLn, sockLn, err := a.adminSrv.Listen(cfg.Admin.Listen, cfg.Admin.Socket, cfg.Admin.TLSCertFile, cfg.Admin.TLSKeyFile)
	if err != nil {
		return err
	}
	var hookLn net.Listener
	if cfg.Sync.Webhooks == nil || *cfg.Sync.Webhooks || cfg.Users.PasswordPolicy == "member" {
		hookLn, err = net.Listen("tcp", cfg.Sync.WebhookListen)
		if err != nil {
			adminLn.Close()
			sockLn.Close()
			return fmt.Errorf("listen for webhooks on %s: %w", cfg.Sync.WebhookListen, err)
		}
	}

	memberLn, err := a.pages.Listen(cfg)
	if errors.Is(err, onboard.ErrNoCert) {
		a.log.Warn(err.Error())
		a.membersOff, err = true, nil
	}
	if err != nil {
		adminLn.Close()
		sockLn.Close()
		if hookLn != nil {
			hookLn.Close()
		}
		return err
	}

	var wg sync.WaitGroup
	run := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
				a.log.Error("component failed", "component", name, "err", err)
				cancel(fmt.Errorf("%s: %w", name, err))
			}
		}()
	}
	adminTCP, adminSock := a.adminSrv.HTTPServer(), a.adminSrv.HTTPServer()
	run("admin", func(ctx context.Context) error { return serveHTTP(ctx, adminTCP, adminLn) })
	run("admin-socket", func(ctx context.Context) error { return serveHTTP(ctx, adminSock, sockLn) })
	if hookLn != nil {
		pub := a.publicServer()
		run("webhook", func(ctx context.Context) error { return serveHTTP(ctx, pub, hookLn) })
	}
	members := a.pages.Server()
	if memberLn != nil {
		run("members", func(ctx context.Context) error { return serveHTTP(ctx, members, memberLn) })
	}
	run("notify", a.sender.Run)
	run("sync", a.syncer.Run)
	run("radius", a.runRadius)
	run("watch", a.watchChanges)
	run("netcfg", a.runNet)
	run("guests", a.runGuests)
	run("fleet", a.fleet.Run)
	run("rollout", a.rollout.Run)
	run("console-stats", a.runConsoleStats)
	run("console-index", a.watchConsole)
	if a.ownProcess {
		a.applyMemoryLimit()
		run("memory", a.trimMemory)
	}
	go a.becomeReady(ctx)
	if cfg.Sync.WebhookPublicURL != "" && (cfg.Sync.Webhooks == nil || *cfg.Sync.Webhooks) {
		go a.hooks.Ensure(ctx, a.api)
	}
	a.log.Info("deskgated started", "version", Version, "admin", adminLn.Addr().String(), "socket", sockLn.Addr().String(), "members", listenAddr(memberLn))
	<-ctx.Done()
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// Reload re-reads the configuration file and applies what can change
// without a restart (NAS clients, plan/group/location mapping, sync
// settings). Listen addresses and the data dir need a restart.
func (a *App) Reload() error {
	cfg, err := a.loadConfig()
	if err != nil {
		return fmt.Errorf("reload %s: %w", a.cfgPath, err)
	}
	a.cfg.Store(cfg)
	a.res.SetConfig(cfg)
	if err := a.store.View(func(tx *store.Tx) error { return a.res.Rebuild(tx) }); err != nil {
		return fmt.Errorf("reload: rebuild rules: %w", err)
	}
	a.reloadRadius(cfg)
	a.kickNet()
	a.log.Info("configuration reloaded", "path", a.cfgPath)
	go func() {
		if err := a.syncer.ReconcileAll("reload", "configuration reloaded"); err != nil {
			a.log.Error("re-evaluate after reload", "err", err)
		}
	}()
	return nil
}

func serveHTTP(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	}
}

// AdminAddr is the admin API's TCP address once Run listens ("" before).
func (a *App) AdminAddr() string { return a.adminSrv.Addr(a.Config().Admin.Listen) }

// loadOrCreateKey returns a 32-byte key kept in path (0600).
func loadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) == 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	if err := atomicfile.Write(path, key, 0o600); err != nil {
		return nil, err
	}
	return key, nil
}

// listenAddr is ln's address, or "off" for a listener not opened.
func listenAddr(ln net.Listener) string {
	if ln == nil {
		return "off"
	}
	return ln.Addr().String()
}
