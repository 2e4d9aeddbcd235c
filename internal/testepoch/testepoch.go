// Package testepoch owns the start time of the tests' injected clocks and
// the environment that makes an external peer (eapol_test, wpa_supplicant)
// share that clock. Only tests import it.
//
// DESKGATE_TEST_EPOCH sets the epoch:
//
//	(unset)               today (UTC) at 15:00 UTC
//	2027-01-08            that day at 15:00 UTC
//	2027-01-08T04:30:00Z  that instant (RFC 3339)
//	+400d, -30d           today at 15:00 UTC moved by whole days
//	dst, dst-2h           the next daylight-saving change in the demo time
//	                      zone (America/New_York) after today, minus 1 h
//	                      (or minus the given duration)
//
// A test that starts from Epoch passes on any date: .ci/run runs the
// clock-sensitive packages once with the default, once 400 days ahead and
// once just before a DST change.
package testepoch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Env is the variable that moves the epoch.
const Env = "DESKGATE_TEST_EPOCH"

// DemoZone is the time zone of the demo space; "dst" epochs use its changes.
const DemoZone = "America/New_York"

// timeOfDay is the fixed time of day of date-only epochs.
const timeOfDay = 15 * time.Hour

// Epoch returns the tests' start time; a malformed DESKGATE_TEST_EPOCH
// panics with the accepted forms, so no test silently runs on another date.
func Epoch() time.Time {
	t, err := Parse(os.Getenv(Env), time.Now())
	if err != nil {
		panic(err)
	}
	return t
}

// Parse reads an epoch specification relative to the wall clock now.
func Parse(spec string, now time.Time) (time.Time, error) {
	y, m, d := now.UTC().Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Add(timeOfDay)
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "":
		return today, nil
	case strings.HasPrefix(spec, "dst"):
		before := time.Hour
		if rest := strings.TrimPrefix(spec, "dst"); rest != "" {
			if !strings.HasPrefix(rest, "-") {
				return time.Time{}, fmt.Errorf("%s=%q: want dst or dst-<duration>", Env, spec)
			}
			d, err := time.ParseDuration(rest[1:])
			if err != nil || d < 0 {
				return time.Time{}, fmt.Errorf("%s=%q: want dst or dst-<duration>: %v", Env, spec, err)
			}
			before = d
		}
		tr, err := NextDSTChange(DemoZone, today)
		if err != nil {
			return time.Time{}, err
		}
		return tr.Add(-before), nil
	case strings.HasPrefix(spec, "+") || strings.HasPrefix(spec, "-"):
		n, err := strconv.Atoi(strings.TrimSuffix(spec[1:], "d"))
		if err != nil || !strings.HasSuffix(spec, "d") {
			return time.Time{}, fmt.Errorf("%s=%q: want +<days>d or -<days>d", Env, spec)
		}
		if spec[0] == '-' {
			n = -n
		}
		return today.AddDate(0, 0, n), nil
	}
	if t, err := time.Parse(time.RFC3339, spec); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", spec); err == nil {
		return t.Add(timeOfDay), nil
	}
	return time.Time{}, fmt.Errorf("%s=%q: want a date (2027-01-08), an RFC 3339 time, +<days>d or dst[-<duration>]", Env, spec)
}

// NextDSTChange returns the first instant after from at which zone's UTC
// offset changes, to the second.
func NextDSTChange(zone string, from time.Time) (time.Time, error) {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return time.Time{}, fmt.Errorf("load time zone %s: %w", zone, err)
	}
	_, off0 := from.In(loc).Zone()
	lo := from
	hi := from
	for i := 0; ; i++ {
		if i > 400 {
			return time.Time{}, fmt.Errorf("%s: no offset change within 400 days of %s", zone, from.Format(time.RFC3339))
		}
		hi = hi.Add(24 * time.Hour)
		if _, off := hi.In(loc).Zone(); off != off0 {
			break
		}
		lo = hi
	}
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2)
		if _, off := mid.In(loc).Zone(); off == off0 {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi.Truncate(time.Second), nil
}

// libfaketime is where Debian's libfaketime package puts the library.
var libfaketime = []string{
	"/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
	"/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
	"/usr/lib/faketime/libfaketime.so.1",
}

// ErrNoFaketime means libfaketime is not installed (Debian: faketime).
var ErrNoFaketime = errors.New("libfaketime not found (apt-get install faketime)")

// PeerEnv returns the environment for an external, dynamically linked peer
// (eapol_test, wpa_supplicant) whose wall clock must read now and then
// advance in real time, so that it checks certificates the daemon issued
// against the same clock as the daemon. Monotonic clocks are left alone.
func PeerEnv(now time.Time) ([]string, error) {
	for _, p := range libfaketime {
		if _, err := os.Stat(p); err == nil {
			return []string{
				"LD_PRELOAD=" + filepath.Clean(p),
				"FAKETIME=@" + now.UTC().Format("2006-01-02 15:04:05"),
				"FAKETIME_DONT_FAKE_MONOTONIC=1",
				"FAKETIME_DONT_RESET=1",
				"TZ=UTC",
			}, nil
		}
	}
	return nil, ErrNoFaketime
}
