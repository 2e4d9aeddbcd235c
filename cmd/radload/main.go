// Command radload is the RADIUS load generator and benchmark harness for
// deskgate's RADIUS server.
//
//	radload serve -auth 127.0.0.1:21812 -acct 127.0.0.1:21813 -users 10000
//	    runs appliance/radius on a temporary store with 10,000 accounts
//	radload load -mode pap|mschap|acct -target 127.0.0.1:21812 -pid N
//	    sends load like a NAS (a few sockets × 256 ids) and prints one line
//	    of figures: req/s, server CPU per request (from /proc/N/stat), p50/p99
//	radload bench -deskgate-pid N -freeradius-pid M ...
//	    runs each mode against both servers (3 runs each, at saturation and
//	    at half load) and prints medians and ratios
//
// Users are user00000 … user09999 with password pass00000 …; both servers
// must be provisioned with them (scripts/radius-bench/run.sh does).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "radload:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) < 2 {
		return fmt.Errorf("usage: radload serve|load|bench|users [flags]")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	args := os.Args[2:]
	switch os.Args[1] {
	case "serve":
		return serve(ctx, args)
	case "load":
		res, err := loadCmd(ctx, args)
		if err != nil {
			return err
		}
		fmt.Println(res)
		return nil
	case "bench":
		return bench(ctx, args)
	case "users":
		return users(args)
	}
	return fmt.Errorf("unknown subcommand %q", os.Args[1])
}
