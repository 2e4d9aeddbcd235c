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
	mapAuth := fs.String("map-auth", "127.0.0.1:22812", "")
	mapAcct := fs.String("map-acct", "127.0.0.1:22813", "")
	mapPID := fs.Int("map-pid", 0, "a `radload serve` (map-backed directory) to measure beside deskgate; 0: none")
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
	if *mapPID != 0 {
		targets = append(targets, target{"map", *mapAuth, *mapAcct, *mapPID})
	}
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
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	for _, mode := range strings.Split(*modes, ",") {
		for _, t := range targets {
			r, ok := sums[mode+"/"+t.label]
			if !ok {
				continue
			}
			fmt.Printf("%-6s %-10s %8.0f req/s  %6.1f µs CPU/req  %8.0f req/CPU-s  p50 %6.1f µs p99 %7.1f µs (saturation)", mode, t.label+":", r.sat.ReqPerSec, us(r.sat.CPUPerReq), r.sat.ReqPerCPUSecond, us(r.sat.P50), us(r.sat.P99))
			if r.half.OK > 0 {
				fmt.Printf("; half load %.0f req/s: %6.1f µs CPU/req (%.2f× saturated) p50 %6.1f µs p99 %7.1f µs (generator lateness p99 %.0f µs)",
					r.half.Rate, us(r.half.CPUPerReq), ratio(float64(r.half.CPUPerReq), float64(r.sat.CPUPerReq)), us(r.half.P50), us(r.half.P99), us(r.half.LateP99))
			}
			fmt.Println()
		}
		dg, fr := sums[mode+"/deskgate"], sums[mode+"/freeradius"]
		if fr.sat.OK > 0 {
			fmt.Printf("%-6s ratio deskgate/freeradius: req/CPU-s %.2f×  req/s %.2f×\n", mode, ratio(dg.sat.ReqPerCPUSecond, fr.sat.ReqPerCPUSecond), ratio(dg.sat.ReqPerSec, fr.sat.ReqPerSec))
		}
		if m := sums[mode+"/map"]; m.sat.OK > 0 {
			fmt.Printf("%-6s ratio deskgate/map-backed: req/CPU-s %.2f×\n", mode, ratio(dg.sat.ReqPerCPUSecond, m.sat.ReqPerCPUSecond))
		}
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
