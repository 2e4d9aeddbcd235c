package config

import (
	"strings"
	"testing"
)

func TestFleetDoc(t *testing.T) {
	base := []byte("data_dir: /x\nplans:\n  - {plan: A, group: g}\ngroups:\n  - {name: g}\nradius:\n  auth_listen: [\"127.0.0.1:0\"]\n")
	sec, err := FleetSections(base)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(sec); !strings.Contains(s, "plans:") || !strings.Contains(s, "groups:") || strings.Contains(s, "radius") || strings.Contains(s, "data_dir") {
		t.Errorf("fleet sections:\n%s", s)
	}
	for _, bad := range []string{"radius:\n  clients: []\n", "- a\n", "", "plans: [\n", "roaming: {policy: all}\nsmtp: {host: x}\n"} {
		if err := CheckFleetDoc([]byte(bad)); err == nil {
			t.Errorf("CheckFleetDoc(%q) accepted", bad)
		}
	}
	if err := CheckFleetDoc([]byte("groups: [" + strings.Repeat("{name: x}, ", MaxFleetDoc/10) + "]")); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("oversized doc: %v", err)
	}
	merged, err := WithFleet(base, []byte("groups:\n  - {name: g, max_devices: 7}\nroaming: {policy: all}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(merged)
	for _, want := range []string{"max_devices: 7", "policy: all", "plan: A", "data_dir: /x", "auth_listen"} {
		if !strings.Contains(s, want) {
			t.Errorf("merged lacks %q:\n%s", want, s)
		}
	}
	if _, err := WithFleet(base, []byte("data_dir: /elsewhere\n")); err == nil {
		t.Error("a per-box key was merged")
	}
}
