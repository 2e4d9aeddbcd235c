// Command officernd-sim serves a simulated OfficeRnD v2 ("Flex") API for
// demos and manual tests of deskgate (see package officerndsim for what it
// simulates and how faithfully).
//
// Usage:
//
//	officernd-sim [-listen 127.0.0.1:8990] [-org demo-space]
//	              [-client-id deskgate-demo] [-client-secret-file FILE]
//	              [-scopes a,b,...] [-seed=true] [-extra-members N] [-bench-accounts]
//	              [-state FILE] [-v2-payloads] [-log-level info]
//
// The client secret comes from -client-secret-file, else the environment
// variable OFFICERND_SIM_CLIENT_SECRET, else the demo default
// "deskgate-demo-secret". Point deskgate's officernd.api_base at
// http://<listen>/api/v2 and officernd.token_url at http://<listen>/oauth/token.
// With -state, the records (including registered webhooks) are loaded from
// FILE at start when it exists, instead of seeding, and saved to it on exit.
//
// Endpoints:
//
//	POST /oauth/token                             client credentials (form or basic auth)
//	GET|POST /api/v2/organizations/{org}/{resource}
//	GET  /api/v2/organizations/{org}/{resource}/count
//	GET|PUT|PATCH|DELETE /api/v2/organizations/{org}/{resource}/{id}
//	POST /api/v2/organizations/{org}/bookings/{id}/cancel
//
// Resources: members, companies, memberships, plans, locations, resources,
// bookings, visitors, passes, webhooks. Memberships and passes update with
// PUT, the others with PATCH.
//
// Control endpoints (no token; not affected by faults):
//
//	GET  /_sim/faults            the injected faults
//	POST /_sim/faults            set them: {"rateLimitPerMinute":100,
//	                             "fail500Every":10,"latency":"200ms",
//	                             "dropWebhooks":false,"down":false,
//	                             "closeConnections":false}
//	                             (omitted fields keep their values)
//	GET  /_sim/stats             request, token, 429, 500 and webhook counters
//	DELETE /_sim/stats           reset them
//	GET  /_sim/clock             the simulated time
//	POST /_sim/clock             {"now":"2026-12-01T09:00:00Z"} or {"advance":"24h"}
//	GET  /_sim/seed              ids of the seeded records by role
//	GET  /_sim/events            recent webhook events
//
// Example: curl -X POST localhost:8990/_sim/faults -d '{"down":true}'.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/deskgate/deskgate/appliance/officernd/officerndsim"
)

type config struct {
	listen       string
	org          string
	clientID     string
	secretFile   string
	scopes       string
	seed         bool
	extraMembers int
	benchAccts   bool
	statePath    string
	v2Payloads   bool
	logLevel     string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "officernd-sim:", err)
		os.Exit(1)
	}
}

func parse(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("officernd-sim", flag.ContinueOnError)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8990", "address to serve on")
	fs.StringVar(&c.org, "org", officerndsim.DefaultOrgSlug, "organization slug")
	fs.StringVar(&c.clientID, "client-id", officerndsim.DefaultClientID, "OAuth client id")
	fs.StringVar(&c.secretFile, "client-secret-file", "", "file holding the OAuth client secret (else $OFFICERND_SIM_CLIENT_SECRET, else the demo default)")
	fs.StringVar(&c.scopes, "scopes", "", "comma-separated scopes granted to the app, or \"read\" for a read-only app (default: all)")
	fs.BoolVar(&c.seed, "seed", true, "load the demo space")
	fs.IntVar(&c.extraMembers, "extra-members", 0, "add this many bulk members with active memberships")
	fs.BoolVar(&c.benchAccts, "bench-accounts", false, "bulk member i gets e-mail user%05d@bench.example and property wifiPassword=pass%05d (benchmarks)")
	fs.StringVar(&c.statePath, "state", "", "load records from this file if it exists, save them to it on exit")
	fs.BoolVar(&c.v2Payloads, "v2-payloads", false, "send v2 field names in webhook payloads (default: v1 office/team, like the real service)")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.extraMembers < 0 {
		return c, errors.New("-extra-members must not be negative")
	}
	if c.org == "" || strings.ContainsAny(c.org, "/?# ") {
		return c, fmt.Errorf("-org %q: want a slug", c.org)
	}
	if _, _, err := net.SplitHostPort(c.listen); err != nil {
		return c, fmt.Errorf("-listen %q: %w", c.listen, err)
	}
	return c, nil
}

func secret(c config) (string, error) {
	if c.secretFile != "" {
		b, err := os.ReadFile(c.secretFile)
		if err != nil {
			return "", fmt.Errorf("read client secret: %w", err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("client secret file %s is empty", c.secretFile)
		}
		return s, nil
	}
	if s := os.Getenv("OFFICERND_SIM_CLIENT_SECRET"); s != "" {
		return s, nil
	}
	return officerndsim.DefaultClientSecret, nil
}

func run() error {
	c, err := parse(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("component", "officernd-sim")
	sec, err := secret(c)
	if err != nil {
		return err
	}
	opts := officerndsim.Options{
		OrgSlug: c.org, ClientID: c.clientID, ClientSecret: sec,
		Seed: c.seed, ExtraMembers: c.extraMembers, BenchAccounts: c.benchAccts, Logger: log, V2Payloads: c.v2Payloads,
	}
	switch c.scopes {
	case "":
	case "read":
		opts.Scopes = officerndsim.ReadScopes // a read-only application
	default:
		opts.Scopes = strings.Split(c.scopes, ",")
	}
	var stateExists bool
	if c.statePath != "" {
		if _, err := os.Stat(c.statePath); err == nil {
			stateExists = true
			opts.Seed, opts.ExtraMembers = false, 0
		}
	}
	start := time.Now()
	sim := officerndsim.New(opts)
	if stateExists {
		f, err := os.Open(c.statePath)
		if err != nil {
			return err
		}
		err = sim.LoadState(f)
		f.Close()
		if err != nil {
			return err
		}
		log.Info("state loaded", "file", c.statePath)
	}

	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	seed := sim.Seeded()
	log.Info("serving",
		"addr", "http://"+ln.Addr().String(),
		"api_base", "http://"+ln.Addr().String()+"/api/v2",
		"token_url", "http://"+ln.Addr().String()+"/oauth/token",
		"org", c.org, "client_id", c.clientID,
		"members", len(seed.Members), "extra_members", seed.ExtraMembers, "setup", time.Since(start).Round(time.Millisecond))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if ferr := sim.Flush(sctx); ferr != nil {
		log.Warn("webhook deliveries still queued at exit", "err", ferr)
	}
	if c.statePath != "" {
		if serr := saveState(sim, c.statePath); serr != nil {
			return serr
		}
		log.Info("state saved", "file", c.statePath)
	}
	return err
}

// saveState writes the state atomically (temp file, fsync, rename).
func saveState(sim *officerndsim.Sim, path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".officernd-sim-state-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := sim.SaveState(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
