package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"
)

type target struct {
	label      string
	auth, acct string
	pid        int
}

// bench runs every mode against both servers and prints medians of runs
// and the ratios the issue sets targets for.
func bench(ctx context.Context, args []string) error {
	var c loadConfig
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	secret := loadFlags(fs, &c)
	dgAuth := fs.String("deskgate-auth", "127.0.0.1:21812", "")
	dgAcct := fs.String("deskgate-acct", "127.0.0.1:21813", "")
	dgPID := fs.Int("deskgate-pid", 0, "")
	frAuth := fs.String("freeradius-auth", "127.0.0.1:31812", "")
	frAcct := fs.String("freeradius-acct", "127.0.0.1:31813", "")
	frPID := fs.Int("freeradius-pid", 0, "")
	runs := fs.Int("runs", 3, "runs per figure (median)")
	modes := fs.String("modes", "pap,mschap,acct", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.Secret = []byte(*secret)
	targets := []target{{"deskgate", *dgAuth, *dgAcct, *dgPID}}
	if *frPID != 0 {
		targets = append(targets, target{"freeradius", *frAuth, *frAcct, *frPID})
	}
	type summary struct{ sat, half result }
	sums := map[string]summary{}
	for _, mode := range strings.Split(*modes, ",") {
		// Saturation first, for every server; then the same offered load
		// for every server: half of the lowest saturation rate (on 2 shared
		// cores the generator cannot pace half of a client-bound maximum).
		half := 0.0
		for _, t := range targets {
			cfg := c
			cfg.Mode, cfg.Label, cfg.PID, cfg.Target = mode, t.label, t.pid, t.auth
			if mode == "acct" {
				cfg.Target = t.acct
			}
			sat, err := medianOf(ctx, cfg, *runs)
			if err != nil {
				return err
			}
			fmt.Println("median", sat)
			sums[mode+"/"+t.label] = summary{sat: sat}
			if half == 0 || sat.ReqPerSec/2 < half {
				half = sat.ReqPerSec / 2
			}
		}
		if mode == "acct" || half == 0 {
			continue
		}
		for _, t := range targets {
			cfg := c
			cfg.Mode, cfg.Label, cfg.PID, cfg.Target, cfg.Rate = mode, t.label, t.pid, t.auth, half
			r, err := medianOf(ctx, cfg, *runs)
			if err != nil {
				return err
			}
			fmt.Println("median", r)
			sm := sums[mode+"/"+t.label]
			sm.half = r
			sums[mode+"/"+t.label] = sm
		}
	}
	fmt.Println()
	fmt.Println("== summary (medians of", *runs, "runs; server CPU from /proc/<pid>/stat) ==")
	for _, mode := range strings.Split(*modes, ",") {
		dg := sums[mode+"/deskgate"]
		fmt.Printf("%-6s deskgate:   %8.0f req/s  %6.1f µs CPU/req  %8.0f req/CPU-s  p50 %6.1f µs p99 %7.1f µs (saturation)", mode, dg.sat.ReqPerSec, us(dg.sat.CPUPerReq), dg.sat.ReqPerCPUSecond, us(dg.sat.P50), us(dg.sat.P99))
		if dg.half.OK > 0 {
			fmt.Printf("  p50 %6.1f µs p99 %7.1f µs at %.0f req/s (half load; generator lateness p99 %.0f µs)", us(dg.half.P50), us(dg.half.P99), dg.half.Rate, us(dg.half.LateP99))
		}
		fmt.Println()
		fr, ok := sums[mode+"/freeradius"]
		if !ok {
			continue
		}
		fmt.Printf("%-6s freeradius: %8.0f req/s  %6.1f µs CPU/req  %8.0f req/CPU-s  p50 %6.1f µs p99 %7.1f µs (saturation)", mode, fr.sat.ReqPerSec, us(fr.sat.CPUPerReq), fr.sat.ReqPerCPUSecond, us(fr.sat.P50), us(fr.sat.P99))
		if fr.half.OK > 0 {
			fmt.Printf("  p50 %6.1f µs p99 %7.1f µs at %.0f req/s (half load; generator lateness p99 %.0f µs)", us(fr.half.P50), us(fr.half.P99), fr.half.Rate, us(fr.half.LateP99))
		}
		fmt.Println()
		ratio := func(a, b float64) float64 {
			if b == 0 {
				return 0
			}
			return a / b
		}
		fmt.Printf("%-6s ratio deskgate/freeradius: req/CPU-s %.2f×  req/s %.2f×\n", mode, ratio(dg.sat.ReqPerCPUSecond, fr.sat.ReqPerCPUSecond), ratio(dg.sat.ReqPerSec, fr.sat.ReqPerSec))
	}
	return nil
}

// medianOf runs cfg n times and returns the run with the median req/s,
// with the other figures replaced by their own medians.
func medianOf(ctx context.Context, cfg loadConfig, n int) (result, error) {
	var rs []result
	for i := range n {
		r, err := runLoad(ctx, cfg)
		if err != nil {
			return result{}, err
		}
		fmt.Printf("run %d %s\n", i+1, r)
		rs = append(rs, r)
		time.Sleep(200 * time.Millisecond)
	}
	med := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	m := rs[0]
	m.ReqPerSec = med(func(r result) float64 { return r.ReqPerSec })
	m.ReqPerCPUSecond = med(func(r result) float64 { return r.ReqPerCPUSecond })
	m.CPUPerReq = time.Duration(med(func(r result) float64 { return float64(r.CPUPerReq) }))
	m.P50 = time.Duration(med(func(r result) float64 { return float64(r.P50) }))
	m.P99 = time.Duration(med(func(r result) float64 { return float64(r.P99) }))
	m.P999 = time.Duration(med(func(r result) float64 { return float64(r.P999) }))
	m.ServerCPUFraction = med(func(r result) float64 { return r.ServerCPUFraction })
	m.LateP99 = time.Duration(med(func(r result) float64 { return float64(r.LateP99) }))
	m.OK = int(med(func(r result) float64 { return float64(r.OK) }))
	m.Errors = int(med(func(r result) float64 { return float64(r.Errors) }))
	m.Lost = int(med(func(r result) float64 { return float64(r.Lost) }))
	return m, nil
}
