package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"github.com/deskgate/deskgate/appliance/creds"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/radius"
	"github.com/deskgate/deskgate/appliance/store"
)

func userName(i int) string { return fmt.Sprintf("user%05d", i) }
func password(i int) string { return fmt.Sprintf("pass%05d", i) }

// serve runs the deskgate RADIUS server on a fresh store with n accounts.
func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	auth := fs.String("auth", "127.0.0.1:21812", "authentication address")
	acct := fs.String("acct", "127.0.0.1:21813", "accounting address")
	n := fs.Int("users", 10000, "accounts")
	secret := fs.String("secret", "bench-secret", "shared secret of 127.0.0.0/8")
	dir := fs.String("dir", "", "store directory (default: a temporary one)")
	verbose := fs.Bool("v", false, "log at info level")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile here until exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "radload-store-")
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	st, err := store.Open(filepath.Join(*dir, "deskgate.db"), store.Options{})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer st.Close()
	pool, err := radius.NewStorePool(st)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	// The directory is the in-memory map the lead's store-backed Directory
	// would be fronted by; accounting goes to the real store, durably.
	d := radius.NewMapDirectory()
	for i := range *n {
		d.Put(radius.Subject{
			Account: model.Account{Username: userName(i), MemberID: fmt.Sprintf("m%05d", i), NTHash: creds.NTHash(password(i))},
			Decision: model.Decision{
				Allowed: true, MembershipID: fmt.Sprintf("ms%05d", i), PlanID: "hotdesk", Group: "hotdesk",
				Bandwidth:      model.Bandwidth{DownKbps: 50000, UpKbps: 10000},
				Locations:      []model.LocationAccess{{LocationID: "loc-a", VLAN: 100}},
				SessionTimeout: 12 * time.Hour, MaxDevices: 3,
			},
		})
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	srv, err := radius.New(radius.Config{
		AuthAddrs: []string{*auth}, AcctAddrs: []string{*acct},
		Clients: []radius.Client{{
			Name: "bench", Prefix: netip.MustParsePrefix("127.0.0.0/8"), Secret: []byte(*secret), LocationID: "loc-a",
		}},
		InterimInterval: 5 * time.Minute,
	}, d, radius.NewStoreSessions(st), pool, radius.NewStoreAuditor(st), log, nil)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if err := srv.Listen(ctx); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Printf("ready pid=%d\n", os.Getpid())
	return srv.Serve(ctx)
}

// users writes the FreeRADIUS files-module authorize file for the same
// accounts, with the reply attributes deskgate sends.
func users(args []string) error {
	fs := flag.NewFlagSet("users", flag.ContinueOnError)
	n := fs.Int("users", 10000, "accounts")
	out := fs.String("o", "authorize", "output file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := os.Create(*out)
	if err != nil {
		return fmt.Errorf("users: %w", err)
	}
	w := bufio.NewWriter(f)
	reply := strings.Join([]string{
		"Tunnel-Type = VLAN", "Tunnel-Medium-Type = IEEE-802", `Tunnel-Private-Group-Id = "100"`,
		"Session-Timeout = 43200", "Acct-Interim-Interval = 300", `Filter-Id = "hotdesk"`,
		"WISPr-Bandwidth-Max-Down = 50000000", "WISPr-Bandwidth-Max-Up = 10000000",
	}, ",\n\t")
	for i := range *n {
		fmt.Fprintf(w, "%s\tCleartext-Password := %q\n\t%s\n\n", userName(i), password(i), reply)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("users: %w", err)
	}
	return f.Close()
}
