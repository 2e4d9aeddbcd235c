package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/update"
)

const updateUsage = `usage: deskgate update <command> [flags]
  status                 the root slots, their versions, the last attempt and why it failed
  install FILE|URL       verify a signed bundle, write it into the other slot and reboot
                         (-no-reboot to stay)
  gate                   (run once per boot by init) mark the booted slot good once
                         deskgated serves, or roll back (-deadline 120s)
flags: -dir /data/update (state), -version-file /etc/deskgate/version
`

// runUpdate is `deskgate update ...`: it runs on the box itself (RAUC via
// appliance/update), not through the daemon, so it also works when the
// daemon does not.
func runUpdate(ctx context.Context, args []string, c *admin.Client, out io.Writer, asJSON bool) (int, error) {
	if len(args) == 0 {
		fmt.Fprint(out, updateUsage)
		return 2, nil
	}
	fs := flag.NewFlagSet("update "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("dir", envOr("DESKGATE_UPDATE_DIR", "/data/update"), "update state directory (data partition)")
	versionFile := fs.String("version-file", "/etc/deskgate/version", "version of the running software")
	noReboot := fs.Bool("no-reboot", false, "install: do not reboot afterwards")
	deadline := fs.Duration("deadline", 120*time.Second, "gate: how long deskgated may take to become healthy")
	interval := fs.Duration("interval", 2*time.Second, "gate: time between health checks")
	lastExit := fs.String("last-exit", "/run/deskgate/last-exit", "gate: the supervisor's note on deskgated's last exit")
	if err := fs.Parse(args[1:]); err != nil {
		fmt.Fprint(out, updateUsage)
		return 2, err
	}
	version := ""
	if b, err := os.ReadFile(*versionFile); err == nil {
		version = strings.TrimSpace(string(b))
	}
	u := &update.Updater{
		Backend:        update.Rauc{},
		Dir:            *dir,
		Now:            time.Now,
		Log:            slog.New(slog.NewTextHandler(os.Stderr, nil)),
		RunningVersion: version,
	}
	switch args[0] {
	case "status":
		r, err := u.Status(ctx)
		if err != nil {
			return 1, err
		}
		if asJSON {
			printJSON(out, r)
			return 0, nil
		}
		printUpdateStatus(out, r)
		return 0, nil
	case "install":
		if fs.NArg() != 1 {
			return 2, errors.New("usage: deskgate update install FILE|URL")
		}
		a, err := u.Install(ctx, fs.Arg(0), !*noReboot)
		if err != nil {
			return 1, err
		}
		fmt.Fprintf(out, "installed %s into slot %s", a.Version, a.To)
		if *noReboot {
			fmt.Fprintln(out, "; it boots on the next reboot")
		} else {
			fmt.Fprintln(out, "; rebooting")
		}
		return 0, nil
	case "gate":
		res, err := u.Gate(ctx, update.DaemonHealth(c, *lastExit), *deadline, *interval)
		if res.Decided != nil {
			fmt.Fprintf(out, "update %s into slot %s: %s: %s\n", res.Decided.Version, res.Decided.To, res.Decided.Result, res.Decided.Reason)
		}
		if err != nil {
			return 1, err
		}
		return 0, nil
	}
	fmt.Fprint(out, updateUsage)
	return 2, fmt.Errorf("unknown update command %q", args[0])
}

func printUpdateStatus(out io.Writer, r update.Report) {
	fmt.Fprintf(out, "running %s in slot %s", r.RunningVersion, r.Booted)
	if r.Primary != "" {
		fmt.Fprintf(out, "; next boot tries %s", r.Primary)
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLOT\tDEVICE\tBOOTED\tBOOT\tVERSION\tINSTALLED")
	for _, s := range r.Slots.Slots {
		boot := "bad"
		if s.Good {
			boot = "good"
		}
		inst := "-"
		if !s.Installed.IsZero() {
			inst = s.Installed.Local().Format("2006-01-02 15:04:05")
		}
		ver := s.Version
		if ver == "" {
			ver = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\n", s.Name, s.Device, s.Booted, boot, ver, inst)
	}
	tw.Flush()
	show := func(label string, a *update.Attempt) {
		if a == nil {
			return
		}
		fmt.Fprintf(out, "%s: %s %s -> slot %s from %s, started %s: %s", label, a.Version, a.Source, a.To, a.From, a.Started.Local().Format("2006-01-02 15:04:05"), a.Result)
		if a.Reason != "" {
			fmt.Fprintf(out, ": %s", a.Reason)
		}
		fmt.Fprintln(out)
	}
	show("in progress", r.Pending)
	show("last attempt", r.Last)
	if r.Pending == nil && r.Last == nil {
		fmt.Fprintln(out, "no update attempted yet")
	}
}
