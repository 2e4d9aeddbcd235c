package testepoch

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	now := time.Date(2031, 3, 2, 23, 59, 0, 0, time.FixedZone("x", -5*3600)) // 2031-03-03 04:59 UTC
	today := time.Date(2031, 3, 3, 15, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		spec string
		want time.Time
	}{
		{"", today},
		{"+400d", today.AddDate(0, 0, 400)},
		{"-2d", today.AddDate(0, 0, -2)},
		{"2027-01-08", time.Date(2027, 1, 8, 15, 0, 0, 0, time.UTC)},
		{"2027-01-08T04:30:00Z", time.Date(2027, 1, 8, 4, 30, 0, 0, time.UTC)},
		// 2031-03-09 02:00 EST becomes 03:00 EDT: 07:00 UTC.
		{"dst", time.Date(2031, 3, 9, 6, 0, 0, 0, time.UTC)},
		{"dst-10m", time.Date(2031, 3, 9, 6, 50, 0, 0, time.UTC)},
	} {
		got, err := Parse(c.spec, now)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("Parse(%q) = %v, %v; want %v", c.spec, got, err, c.want)
		}
	}
	for _, bad := range []string{"tomorrow", "+4", "+xd", "dst+1h", "dst-x", "2027-13-01"} {
		if _, err := Parse(bad, now); err == nil || !strings.Contains(err.Error(), Env) {
			t.Errorf("Parse(%q): err %v, want one naming %s", bad, err, Env)
		}
	}
}

func TestNextDSTChangeFall(t *testing.T) {
	from := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	got, err := NextDSTChange(DemoZone, from)
	// 2026-11-01 02:00 EDT becomes 01:00 EST: 06:00 UTC.
	if want := time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC); err != nil || !got.Equal(want) {
		t.Fatalf("NextDSTChange = %v, %v; want %v", got, err, want)
	}
}

// TestPeerEnv: a C program started with PeerEnv reads the faked wall clock.
func TestPeerEnv(t *testing.T) {
	want := time.Now().AddDate(1, 1, 0).UTC()
	env, err := PeerEnv(want)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err) // make test installs it; CI must not skip
		}
		t.Skip(err)
	}
	cmd := exec.Command("date", "-u", "+%Y-%m-%d")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != want.Format("2006-01-02") {
		t.Fatalf("date under PeerEnv printed %s, want %s", got, want.Format("2006-01-02"))
	}
}
