package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseBandwidth parses a rate such as "10mbit", "512kbit", "1gbit",
// "1.5mbit", "10M" or "512k" into kilobits per second (decimal units, as
// tc uses them: 1mbit = 1000kbit). "" is 0, meaning inherit/unlimited.
// Byte rates ("mbps", "MB") are refused because tc reads "mbps" as
// megabytes per second, a common and costly mix-up.
func ParseBandwidth(s string) (int, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, nil
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	if num == "" {
		return 0, fmt.Errorf("parse bandwidth %q: no number", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("parse bandwidth %q: bad number", s)
	}
	var mult float64
	switch unit {
	case "kbit", "Kbit", "k", "K", "kbit/s":
		mult = 1
	case "mbit", "Mbit", "m", "M", "mbit/s", "Mbit/s":
		mult = 1e3
	case "gbit", "Gbit", "g", "G", "gbit/s", "Gbit/s":
		mult = 1e6
	case "":
		return 0, fmt.Errorf("parse bandwidth %q: missing unit", s)
	default:
		return 0, fmt.Errorf("parse bandwidth %q: unknown unit %q", s, unit)
	}
	kbps := f * mult
	if kbps < 1 || kbps > 100e6 || math.IsNaN(kbps) {
		return 0, fmt.Errorf("parse bandwidth %q: out of range 1kbit..100gbit", s)
	}
	return int(math.Round(kbps)), nil
}
