package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deskgate/deskgate/appliance/officernd/officerndsim"
)

func TestParse(t *testing.T) {
	c, err := parse(nil)
	if err != nil || c.listen != "127.0.0.1:8990" || c.org != "demo-space" || !c.seed || c.extraMembers != 0 {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	c, err = parse([]string{"-seed=false", "-extra-members", "500", "-org", "acme"})
	if err != nil || c.seed || c.extraMembers != 500 || c.org != "acme" {
		t.Fatalf("flags: %+v %v", c, err)
	}
	for _, bad := range [][]string{{"-extra-members", "-1"}, {"-org", "a/b"}, {"-listen", "nope"}, {"extra"}} {
		if _, err := parse(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestSecret(t *testing.T) {
	t.Setenv("OFFICERND_SIM_CLIENT_SECRET", "")
	if s, _ := secret(config{}); s != officerndsim.DefaultClientSecret {
		t.Errorf("default %q", s)
	}
	t.Setenv("OFFICERND_SIM_CLIENT_SECRET", "from-env")
	if s, _ := secret(config{}); s != "from-env" {
		t.Errorf("env %q", s)
	}
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, _ := secret(config{secretFile: f}); s != "from-file" {
		t.Errorf("file %q", s)
	}
	if _, err := secret(config{secretFile: f + ".missing"}); err == nil {
		t.Error("missing file: no error")
	}
}

func TestSaveState(t *testing.T) {
	sim := officerndsim.New(officerndsim.Options{Seed: true})
	path := filepath.Join(t.TempDir(), "state.json")
	if err := saveState(sim, path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	again := officerndsim.New(officerndsim.Options{})
	if err := again.LoadState(f); err != nil {
		t.Fatal(err)
	}
	if got, want := again.Seeded().IDs["member:expired"], sim.Seeded().IDs["member:expired"]; got != want || !strings.HasPrefix(got, "65a47480") {
		t.Errorf("loaded id %q, want %q", got, want)
	}
}
