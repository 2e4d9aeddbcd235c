// Command deskgated is the deskgate daemon: it keeps a coworking
// location's WiFi in step with OfficeRnD and answers RADIUS from its local
// store, also while the uplink is down.
//
//	deskgated -config /etc/deskgate/deskgate.yaml
//	deskgated -config ... -check     validate the config and exit
//	deskgated -config ... -cleanup   remove the network state netcfg owns and exit
//	deskgated -config ... -cpuprofile FILE   profile the CPU until exit (benchmarks)
//
// SIGINT/SIGTERM stop it cleanly; SIGHUP reloads the configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/deskgate/deskgate/appliance"
	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/internal/rsasign"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "deskgated:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("deskgated", flag.ContinueOnError)
	cfgPath := fs.String("config", "/etc/deskgate/deskgate.yaml", "configuration file")
	check := fs.Bool("check", false, "validate the configuration and exit")
	version := fs.Bool("version", false, "print the version and exit")
	cleanup := fs.Bool("cleanup", false, "remove the network state (dg- chains, ipsets, classes, links) a crashed deskgated left, and exit")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile (pprof) to this file until exit (benchmarks)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version {
		fmt.Println(appliance.Version)
		fmt.Println("rsa signatures:", rsasign.Backend())
		return nil
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if *check {
		fmt.Printf("%s: OK\n", *cfgPath)
		return nil
	}
	if *cleanup {
		return appliance.CleanUpNet(context.Background(), cfg)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	log := newLogger(cfg)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	signal.Ignore(syscall.SIGPIPE)

	app, err := appliance.New(ctx, *cfgPath, cfg, log, appliance.Options{OwnProcess: true, DemoSwitches: os.Getenv(appliance.DemoSwitchesEnv) == "1"})
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			if err := app.Reload(); err != nil {
				log.Error("reload failed; keeping the running configuration", "err", err)
			}
		}
	}()
	if err := app.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("deskgated stopped")
	return nil
}

func newLogger(cfg *config.Config) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
